//! World `delta`: states of topics -> the changes between them.
//!
//! Contract 0.2.0 diffs every topic a chunk changed in one call; a 0.1.0 plugin
//! is called once per topic, each call supervised on its own.

use wasmeter_core::delta::Delta;
use wasmeter_core::field::TopicState;
use wasmeter_core::validate::check_delta;

use super::convert::{v1, v2};
use crate::bindings::ByVersion;
use crate::call::{CallKind, guest_call};
use crate::error::CallError;
use crate::instance::Instance;
use crate::lifecycle::lifecycle;
use crate::world::Contract;

/// The `delta` world.
pub struct DeltaWorld;

lifecycle!(DeltaWorld, Delta, delta, Delta, DeltaPre);

/// One topic whose state changed: its complete states before and after.
#[derive(Debug, Clone, Copy)]
pub struct TopicDiff<'a> {
    /// The topic's name.
    pub topic: &'a str,
    /// The state subscribers hold.
    pub previous: &'a TopicState,
    /// The state they must end up with.
    pub current: &'a TopicState,
}

/// The plugin's answer for each topic of a batch, in order: its delta, validated,
/// or why it gave none for that topic.
pub type Deltas = Vec<Result<Delta, String>>;

impl Instance<DeltaWorld> {
    /// The deltas of `changes`, one per change, in order. `Err` means the call
    /// failed as a whole (a 0.2.0 plugin trapped, ran out of time, or returned an
    /// invalid delta); an inner `Err` costs only its topic, like a collector's
    /// record error: it is not a failed call (a 0.1.0 plugin's `err` is one, as
    /// each of its calls is one topic).
    pub async fn diff_many(&mut self, changes: &[TopicDiff<'_>]) -> Result<Deltas, CallError> {
        match self.plugin().meta().contract {
            Contract::V0_1 => {
                let mut deltas = Vec::with_capacity(changes.len());
                for c in changes {
                    deltas.push(
                        self.diff_one_v1(c.topic, c.previous, c.current)
                            .await
                            .map_err(|e| e.to_string()),
                    );
                }
                Ok(deltas)
            }
            Contract::V0_2 => self.diff_batch_v2(changes).await,
        }
    }

    /// The change from `previous` to `current` for `topic`, validated.
    pub async fn diff(
        &mut self,
        topic: &str,
        previous: &TopicState,
        current: &TopicState,
    ) -> Result<Delta, CallError> {
        let change = TopicDiff {
            topic,
            previous,
            current,
        };
        let mut deltas = self.diff_many(&[change]).await?;
        deltas
            .pop()
            .expect("one delta per change")
            .map_err(CallError::Plugin)
    }

    async fn diff_one_v1(
        &mut self,
        topic: &str,
        previous: &TopicState,
        current: &TopicState,
    ) -> Result<Delta, CallError> {
        let previous = v1::state_to_wit(previous);
        let current = v1::state_to_wit(current);
        guest_call!(
            self,
            CallKind::Diff,
            |b, store| async move {
                let ByVersion::V1(b) = b else {
                    unreachable!("the contract version decides the bindings")
                };
                b.wasmeter_plugin_diff()
                    .call_diff(store, topic, &previous, &current)
                    .await
            },
            |result, limits| {
                let d = result.map_err(CallError::Plugin)?;
                let delta = Delta {
                    changed: d.changed.into_iter().map(v1::field_from_wit).collect(),
                    removed: d.removed,
                };
                check_delta(&delta, &limits.output)?;
                Ok(delta)
            }
        )
    }

    async fn diff_batch_v2(&mut self, changes: &[TopicDiff<'_>]) -> Result<Deltas, CallError> {
        use crate::bindings::v2::delta::exports::wasmeter::plugin::diff::TopicChange;
        let input: Vec<TopicChange> = changes
            .iter()
            .map(|c| TopicChange {
                topic: c.topic.to_string(),
                previous: v2::state_to_wit(c.previous),
                current: v2::state_to_wit(c.current),
            })
            .collect();
        let expected = changes.len();
        guest_call!(
            self,
            CallKind::Diff,
            |b, store| async move {
                let ByVersion::V2(b) = b else {
                    unreachable!("the contract version decides the bindings")
                };
                b.wasmeter_plugin_diff().call_diff(store, &input).await
            },
            |results: Vec<Result<_, String>>, limits| {
                if results.len() != expected {
                    return Err(CallError::Plugin(format!(
                        "returned {} deltas for {expected} topic changes",
                        results.len()
                    )));
                }
                results
                    .into_iter()
                    .map(|r| match r {
                        Ok(d) => {
                            let delta = Delta {
                                changed: d.changed.into_iter().map(v2::field_from_wit).collect(),
                                removed: d.removed,
                            };
                            check_delta(&delta, &limits.output)?;
                            Ok(Ok(delta))
                        }
                        Err(refused) => Ok(Err(refused)),
                    })
                    .collect()
            }
        )
    }

    /// The plugin's own application of `delta` to `previous`, for verification.
    pub async fn apply(
        &mut self,
        previous: &TopicState,
        delta: &Delta,
    ) -> Result<TopicState, CallError> {
        guest_call!(
            self,
            CallKind::Apply,
            |b, store| async move {
                Ok(match b {
                    ByVersion::V1(b) => {
                        use crate::bindings::v1::delta::exports::wasmeter::plugin::diff as wit;
                        let previous = v1::state_to_wit(previous);
                        let delta = wit::Delta {
                            changed: delta
                                .changed
                                .iter()
                                .map(|(k, v)| v1::field_to_wit(k, v))
                                .collect(),
                            removed: delta.removed.clone(),
                        };
                        b.wasmeter_plugin_diff()
                            .call_apply(store, &previous, &delta)
                            .await?
                            .map(|fields| fields.into_iter().map(v1::field_from_wit).collect())
                    }
                    ByVersion::V2(b) => {
                        use crate::bindings::v2::delta::exports::wasmeter::plugin::diff as wit;
                        let previous = v2::state_to_wit(previous);
                        let delta = wit::Delta {
                            changed: delta
                                .changed
                                .iter()
                                .map(|(k, v)| v2::field_to_wit(k, v))
                                .collect(),
                            removed: delta.removed.clone(),
                        };
                        b.wasmeter_plugin_diff()
                            .call_apply(store, &previous, &delta)
                            .await?
                            .map(|fields| fields.into_iter().map(v2::field_from_wit).collect())
                    }
                })
            },
            |result: Result<Vec<_>, String>, limits| {
                let as_delta = Delta {
                    changed: result.map_err(CallError::Plugin)?,
                    removed: vec![],
                };
                check_delta(&as_delta, &limits.output)?;
                Ok(as_delta.changed.into_iter().collect())
            }
        )
    }
}
