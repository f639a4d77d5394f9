//! World `collector`: bytes appended to a source -> samples, topic updates and
//! stream events.

use wasmeter_core::update::CollectOutput;
use wasmeter_core::validate::{OutputError, check_collect_output};

use super::convert::{v1, v2, v3, v4};
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
    /// The points of a plugin of 0.3.0 or later come as `points`, samples of the
    /// series it declared.
    pub async fn collect(
        &mut self,
        source: &str,
        chunk: &[u8],
    ) -> Result<CollectOutput, CallError> {
        let output_limits = self.limits.output.clone();
        guest_call!(
            self,
            CallKind::Collect,
            |b, store| async move {
                Ok(match b {
                    ByVersion::V1(b) => b
                        .wasmeter_plugin_collect()
                        .call_collect(store, source, chunk)
                        .await?
                        .map(|out| Ok(v1::output_from_wit(out))),
                    ByVersion::V2(b) => b
                        .wasmeter_plugin_collect()
                        .call_collect(store, source, chunk)
                        .await?
                        .map(|out| Ok(v2::output_from_wit(out))),
                    ByVersion::V3(b) => {
                        let out = b
                            .wasmeter_plugin_collect()
                            .call_collect(&mut *store, source, chunk)
                            .await?;
                        let declared = &mut store.data_mut().series;
                        out.map(|out| v3::output_from_wit(out, declared, &output_limits))
                    }
                    ByVersion::V4(b) => {
                        let out = b
                            .wasmeter_plugin_collect()
                            .call_collect(&mut *store, source, chunk)
                            .await?;
                        let declared = &mut store.data_mut().series;
                        out.map(|out| v4::output_from_wit(out, declared, &output_limits))
                    }
                })
            },
            |result: Result<Result<_, OutputError>, String>, limits| {
                let mut out = result.map_err(CallError::Plugin)??;
                // The points were checked with their series, when declared.
                check_collect_output(&mut out, &limits.output)?;
                Ok(out)
            }
        )
    }
}
