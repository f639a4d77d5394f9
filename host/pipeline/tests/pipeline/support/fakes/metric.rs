//! A stateful metric that counts samples and can fail its exports.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, ready};
use wasmeter_core::plugin::{PluginInfo, PluginKind};
use wasmeter_core::sample::{Label, MetricKind, Sample};
use wasmeter_core::sample_batch::SampleBatch;
use wasmeter_pipeline::{MetricCalls, PluginCalls};
use wasmeter_plugin::{CallError, HealthHandle, PluginLimits};

use super::{info, limits};

/// What a test controls and observes of a [`FakeMetric`] while it runs.
#[derive(Debug, Default)]
pub struct MetricControl {
    /// `export-state` fails while set.
    pub fail_export: AtomicBool,
    /// Samples this instance was fed.
    pub seen: AtomicU64,
    /// `on-tick` calls.
    pub ticks: AtomicU64,
    /// Successful exports.
    pub exports: AtomicU64,
    /// The count it imported, if it imported a state.
    pub imported: Mutex<Option<u64>>,
}

/// A stateful metric: its state is the number of samples it has seen (the
/// versions before it included, when carried), padded to a chosen size. It
/// derives nothing from samples; each tick it emits `ticks` (so that a pipeline
/// has something to checkpoint without input).
pub struct FakeMetric {
    name: String,
    info: PluginInfo,
    limits: PluginLimits,
    health: HealthHandle,
    control: Arc<MetricControl>,
    count: u64,
    state_bytes: usize,
}

impl FakeMetric {
    /// A metric named `name` with an 8-byte state, quarantined after 5 failures.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            info: info("fake-metric", PluginKind::Metric, true),
            limits: limits(5),
            health: HealthHandle::default(),
            control: Arc::default(),
            count: 0,
            state_bytes: 8,
        }
    }

    /// Exports a state of `bytes` bytes (at least 8).
    pub fn state_bytes(mut self, bytes: usize) -> Self {
        self.state_bytes = bytes.max(8);
        self.limits.state_bytes = self.limits.state_bytes.max(bytes);
        self
    }

    /// Quarantined after `n` consecutive failures.
    pub fn quarantine_after(mut self, n: u32) -> Self {
        self.limits.quarantine_after = n;
        self
    }

    /// Its controls and counters.
    pub fn control(&self) -> Arc<MetricControl> {
        self.control.clone()
    }

    /// Its health, as the pipeline sees it.
    pub fn health(&self) -> HealthHandle {
        self.health.clone()
    }
}

impl PluginCalls for FakeMetric {
    identity!();

    fn record_failure(&mut self, message: &str) {
        let _ = self
            .health
            .count_call::<()>("on-samples", self.limits.quarantine_after, || {
                Err(CallError::Plugin(message.to_string()))
            });
    }

    fn export_state(&mut self) -> BoxFuture<'_, Result<Option<Vec<u8>>, CallError>> {
        let control = &self.control;
        let (count, size) = (self.count, self.state_bytes);
        let result = self
            .health
            .count_call("export-state", self.limits.quarantine_after, || {
                if control.fail_export.load(Relaxed) {
                    return Err(CallError::Plugin(
                        "export-state: disk of the mind full".into(),
                    ));
                }
                control.exports.fetch_add(1, Relaxed);
                let mut state = count.to_le_bytes().to_vec();
                state.resize(size, 0);
                Ok(Some(state))
            });
        ready(result).boxed()
    }

    fn import_state<'a>(&'a mut self, state: &'a [u8]) -> BoxFuture<'a, Result<(), CallError>> {
        let result = self
            .health
            .count_call("import-state", self.limits.quarantine_after, || {
                let bytes: [u8; 8] = state
                    .get(..8)
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(|| CallError::Plugin("import-state: short state".into()))?;
                Ok(u64::from_le_bytes(bytes))
            });
        ready(result.map(|count| {
            self.count = count;
            *self.control.imported.lock().unwrap() = Some(count);
        }))
        .boxed()
    }
}

impl MetricCalls for FakeMetric {
    fn on_samples<'a>(
        &'a mut self,
        samples: &'a SampleBatch,
    ) -> BoxFuture<'a, Result<SampleBatch, CallError>> {
        let result = self
            .health
            .count_call("on-samples", self.limits.quarantine_after, || {
                Ok(SampleBatch::new())
            });
        if result.is_ok() {
            self.count += samples.len() as u64;
            self.control.seen.fetch_add(samples.len() as u64, Relaxed);
        }
        ready(result).boxed()
    }

    fn on_tick(&mut self, now_ms: i64) -> BoxFuture<'_, Result<SampleBatch, CallError>> {
        let control = &self.control;
        let name = self.name.clone();
        let result = self
            .health
            .count_call("on-tick", self.limits.quarantine_after, || {
                let ticks = control.ticks.fetch_add(1, Relaxed) + 1;
                Ok(SampleBatch::from(
                    &[Sample {
                        name: "ticks".into(),
                        labels: vec![Label {
                            name: "plugin".into(),
                            value: name.into(),
                        }],
                        value: ticks as f64,
                        kind: MetricKind::Counter,
                        timestamp_ms: now_ms,
                    }][..],
                ))
            });
        ready(result).boxed()
    }
}
