//! World `delta`: two states of a topic -> the change between them.

use wasmeter_core::delta::Delta;
use wasmeter_core::field::TopicState;
use wasmeter_core::validate::check_delta;

use super::convert::{field_from_wit, field_to_wit, state_to_wit};
use crate::bindings::delta::exports::wasmeter::plugin::diff as wit;
use crate::call::{CallKind, guest_call};
use crate::error::CallError;
use crate::instance::Instance;
use crate::lifecycle::lifecycle;

/// The `delta` world.
pub struct DeltaWorld;

lifecycle!(DeltaWorld, Delta, delta, Delta, DeltaPre);

impl Instance<DeltaWorld> {
    /// The change from `previous` to `current` for `topic`, validated.
    pub async fn diff(
        &mut self,
        topic: &str,
        previous: &TopicState,
        current: &TopicState,
    ) -> Result<Delta, CallError> {
        let previous = state_to_wit(previous);
        let current = state_to_wit(current);
        guest_call!(
            self,
            CallKind::Diff,
            |b, store| b
                .wasmeter_plugin_diff()
                .call_diff(store, topic, &previous, &current),
            |result, limits| {
                let d = result.map_err(CallError::Plugin)?;
                let delta = Delta {
                    changed: d.changed.into_iter().map(field_from_wit).collect(),
                    removed: d.removed,
                };
                check_delta(&delta, &limits.output)?;
                Ok(delta)
            }
        )
    }

    /// The plugin's own application of `delta` to `previous`, for verification.
    pub async fn apply(
        &mut self,
        previous: &TopicState,
        delta: &Delta,
    ) -> Result<TopicState, CallError> {
        let previous = state_to_wit(previous);
        let delta = wit::Delta {
            changed: delta
                .changed
                .iter()
                .map(|(k, v)| field_to_wit(k, v))
                .collect(),
            removed: delta.removed.clone(),
        };
        guest_call!(
            self,
            CallKind::Apply,
            |b, store| b
                .wasmeter_plugin_diff()
                .call_apply(store, &previous, &delta),
            |result, limits| {
                let fields: Vec<_> = result
                    .map_err(CallError::Plugin)?
                    .into_iter()
                    .map(field_from_wit)
                    .collect();
                check_delta(
                    &wasmeter_core::delta::Delta {
                        changed: fields.clone(),
                        removed: vec![],
                    },
                    &limits.output,
                )?;
                Ok(fields.into_iter().collect())
            }
        )
    }
}
