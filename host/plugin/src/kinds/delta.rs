//! World `delta`: states of topics -> the changes between them.
//!
//! Contract 0.2.0 and later diff every topic a chunk changed in one call; a 0.1.0 plugin
//! is called once per topic, each call supervised on its own. Since 0.4.0 a call
//! names each field once (`names`) and the topics' fields refer to it by index.

use wasmeter_core::delta::Delta;
use wasmeter_core::field::TopicState;
use wasmeter_core::validate::check_delta;

use super::convert::{v1, v2, v3, v4};
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

/// `deltas_of!(version, expected)`: the check of a batched `diff` call's
/// results: one per change, each delta valid.
macro_rules! deltas_of {
    ($version:ident, $expected:ident) => {
        |results: Vec<Result<_, String>>, limits: &crate::PluginLimits| {
            if results.len() != $expected {
                return Err(CallError::Plugin(format!(
                    "returned {} deltas for {} topic changes",
                    results.len(),
                    $expected
                )));
            }
            results
                .into_iter()
                .map(|r| match r {
                    Ok(d) => {
                        let delta = Delta {
                            changed: d
                                .changed
                                .into_iter()
                                .map($version::field_from_wit)
                                .collect(),
                            removed: d.removed,
                        };
                        check_delta(&delta, &limits.output)?;
                        Ok(Ok(delta))
                    }
                    Err(refused) => Ok(Err(refused)),
                })
                .collect()
        }
    };
}

/// `diff_batch!(name, version, Variant)`: the one call per batch of topics of
/// contracts 0.2.0 and 0.3.0 (whole fields), for the bindings of `version`.
macro_rules! diff_batch {
    ($name:ident, $version:ident, $variant:ident) => {
        async fn $name(&mut self, changes: &[TopicDiff<'_>]) -> Result<Deltas, CallError> {
            use crate::bindings::$version::delta::exports::wasmeter::plugin::diff::TopicChange;
            let input: Vec<TopicChange> = changes
                .iter()
                .map(|c| TopicChange {
                    topic: c.topic.to_string(),
                    previous: $version::state_to_wit(c.previous),
                    current: $version::state_to_wit(c.current),
                })
                .collect();
            let expected = changes.len();
            guest_call!(
                self,
                CallKind::Diff,
                |b, store| async move {
                    let ByVersion::$variant(b) = b else {
                        unreachable!("the contract version decides the bindings")
                    };
                    b.wasmeter_plugin_diff().call_diff(store, &input).await
                },
                deltas_of!($version, expected)
            )
        }
    };
}

/// `apply_with!(version, bindings, store, previous, delta)`: one `apply` call
/// with the bindings of `version`.
macro_rules! apply_with {
    ($version:ident, $b:ident, $store:ident, $previous:ident, $delta:ident) => {{
        use crate::bindings::$version::delta::exports::wasmeter::plugin::diff as wit;
        let previous = $version::state_to_wit($previous);
        let delta = wit::Delta {
            changed: $delta
                .changed
                .iter()
                .map(|(k, v)| $version::field_to_wit(k, v))
                .collect(),
            removed: $delta.removed.clone(),
        };
        $b.wasmeter_plugin_diff()
            .call_apply($store, &previous, &delta)
            .await?
            .map(|fields| fields.into_iter().map($version::field_from_wit).collect())
    }};
}

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
            Contract::V0_3 => self.diff_batch_v3(changes).await,
            Contract::V0_4 => self.diff_batch_v4(changes).await,
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

    diff_batch!(diff_batch_v2, v2, V2);
    diff_batch!(diff_batch_v3, v3, V3);

    /// The one call per batch of contract 0.4.0: every field name once per call.
    async fn diff_batch_v4(&mut self, changes: &[TopicDiff<'_>]) -> Result<Deltas, CallError> {
        let (names, input) = v4::changes_to_wit(changes);
        let expected = changes.len();
        guest_call!(
            self,
            CallKind::Diff,
            |b, store| async move {
                let ByVersion::V4(b) = b else {
                    unreachable!("the contract version decides the bindings")
                };
                b.wasmeter_plugin_diff()
                    .call_diff(store, &names, &input)
                    .await
            },
            deltas_of!(v4, expected)
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
                    ByVersion::V1(b) => apply_with!(v1, b, store, previous, delta),
                    ByVersion::V2(b) => apply_with!(v2, b, store, previous, delta),
                    ByVersion::V3(b) => apply_with!(v3, b, store, previous, delta),
                    ByVersion::V4(b) => apply_with!(v4, b, store, previous, delta),
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
