//! A delta plugin of contract 0.2.0 (one call per batch of topics) that computes
//! the exact difference, or refuses one topic.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, ready};
use wasmeter_core::plugin::{PluginInfo, PluginKind};
use wasmeter_pipeline::state::exact_diff;
use wasmeter_pipeline::{DeltaCalls, PluginCalls};
use wasmeter_plugin::{CallError, Deltas, HealthHandle, PluginLimits, TopicDiff};

use super::{info, limits};

/// A delta plugin computing the exact difference, except that it fails on one
/// topic if told to.
pub struct FakeDelta {
    name: String,
    info: PluginInfo,
    limits: PluginLimits,
    health: HealthHandle,
    calls: Arc<AtomicU64>,
    topics: Arc<AtomicU64>,
    fail_topic: Option<String>,
}

impl FakeDelta {
    /// A delta plugin named `name`.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            info: info("fake-delta", PluginKind::Delta, false),
            limits: limits(5),
            health: HealthHandle::default(),
            calls: Arc::default(),
            topics: Arc::default(),
            fail_topic: None,
        }
    }

    /// Refuses every diff of `topic`.
    pub fn fail_on(mut self, topic: &str) -> Self {
        self.fail_topic = Some(topic.to_string());
        self
    }

    /// Its `diff` calls that reached it.
    pub fn calls(&self) -> Arc<AtomicU64> {
        self.calls.clone()
    }

    /// The topic changes those calls held.
    pub fn topics(&self) -> Arc<AtomicU64> {
        self.topics.clone()
    }
}

impl PluginCalls for FakeDelta {
    identity!();

    fn record_failure(&mut self, message: &str) {
        let _ = self
            .health
            .count_call::<()>("diff", self.limits.quarantine_after, || {
                Err(CallError::Plugin(message.to_string()))
            });
    }

    fn export_state(&mut self) -> BoxFuture<'_, Result<Option<Vec<u8>>, CallError>> {
        ready(
            self.health
                .count_call("export-state", self.limits.quarantine_after, || Ok(None)),
        )
        .boxed()
    }

    fn import_state<'a>(&'a mut self, _: &'a [u8]) -> BoxFuture<'a, Result<(), CallError>> {
        ready(
            self.health
                .count_call("import-state", self.limits.quarantine_after, || Ok(())),
        )
        .boxed()
    }
}

impl DeltaCalls for FakeDelta {
    fn diff_many<'a>(
        &'a mut self,
        changes: &'a [TopicDiff<'a>],
    ) -> BoxFuture<'a, Result<Deltas, CallError>> {
        let result = self
            .health
            .count_call("diff", self.limits.quarantine_after, || {
                self.calls.fetch_add(1, Relaxed);
                self.topics.fetch_add(changes.len() as u64, Relaxed);
                Ok(changes
                    .iter()
                    .map(|c| match self.fail_topic.as_deref() == Some(c.topic) {
                        true => Err(format!("diff: cannot do {}", c.topic)),
                        false => Ok(exact_diff(c.previous, c.current)),
                    })
                    .collect::<Deltas>())
            });
        ready(result).boxed()
    }
}
