//! World `collector`: bytes appended to a source -> samples and topic updates.

use wasmeter_core::update::CollectOutput;
use wasmeter_core::validate::check_collect_output;

use super::convert::{record_error_from_wit, samples_from_wit, update_from_wit};
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
            |b, store| b
                .wasmeter_plugin_collect()
                .call_collect(store, source, chunk),
            |result, limits| {
                let out = result.map_err(CallError::Plugin)?;
                let mut out = CollectOutput {
                    samples: samples_from_wit(out.samples),
                    updates: out.updates.into_iter().map(update_from_wit).collect(),
                    errors: out.errors.into_iter().map(record_error_from_wit).collect(),
                };
                check_collect_output(&mut out, &limits.output)?;
                Ok(out)
            }
        )
    }
}
