//! World `collector`: bytes appended to a source -> samples, topic updates and
//! stream events.

use wasmeter_core::update::CollectOutput;
use wasmeter_core::validate::check_collect_output;

use super::convert::{v1, v2};
use crate::bindings::ByVersion;
use crate::call::{CallKind, guest_call};
use crate::error::CallError;
use crate::instance::Instance;
use crate::lifecycle::lifecycle;

/// The `collector` world.
pub struct CollectorWorld;

lifecycle!(
    CollectorWorld,
    Collector,
    collector,
    Collector,
    CollectorPre
);

impl Instance<CollectorWorld> {
    /// Hands the plugin a chunk of whole records from `source`; returns what it
    /// produced, validated. Bad records come back in `errors`, good ones still count.
    pub async fn collect(
        &mut self,
        source: &str,
        chunk: &[u8],
    ) -> Result<CollectOutput, CallError> {
        guest_call!(
            self,
            CallKind::Collect,
            |b, store| async move {
                Ok(match b {
                    ByVersion::V1(b) => b
                        .wasmeter_plugin_collect()
                        .call_collect(store, source, chunk)
                        .await?
                        .map(|out| CollectOutput {
                            samples: v1::samples_from_wit(out.samples),
                            updates: out.updates.into_iter().map(v1::update_from_wit).collect(),
                            events: Vec::new(),
                            errors: out
                                .errors
                                .into_iter()
                                .map(v1::record_error_from_wit)
                                .collect(),
                        }),
                    ByVersion::V2(b) => b
                        .wasmeter_plugin_collect()
                        .call_collect(store, source, chunk)
                        .await?
                        .map(|out| CollectOutput {
                            samples: v2::samples_from_wit(out.samples),
                            updates: out.updates.into_iter().map(v2::update_from_wit).collect(),
                            events: out.events.into_iter().map(v2::event_from_wit).collect(),
                            errors: out
                                .errors
                                .into_iter()
                                .map(v2::record_error_from_wit)
                                .collect(),
                        }),
                })
            },
            |result, limits| {
                let mut out = result.map_err(CallError::Plugin)?;
                check_collect_output(&mut out, &limits.output)?;
                Ok(out)
            }
        )
    }
}
