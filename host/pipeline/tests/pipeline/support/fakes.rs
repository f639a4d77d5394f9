//! In-process plugins with the failure accounting of a wasm instance (through
//! `HealthHandle::count_call`): quarantined after `quarantine_after` consecutive
//! failures, failing at once while quarantined.
//!
//! Records are lines `topic,seq` (e.g. `feed/t0,3`). The collector turns each into
//! a topic update (`seq` = seq) and a sample `records{topic=<last part>}`; a line
//! without a comma is a malformed record. Every record of a successful call is
//! counted in a [`Ledger`] shared by all versions of the collector.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, ready};
use wasmeter_core::delta::Delta;
use wasmeter_core::field::{FieldValue, TopicState};
use wasmeter_core::plugin::{PluginInfo, PluginKind};
use wasmeter_core::sample::{Label, MetricKind, Sample};
use wasmeter_core::update::{CollectOutput, RecordError, TopicUpdate};
use wasmeter_pipeline::state::exact_diff;
use wasmeter_pipeline::{CollectorCalls, DeltaCalls, MetricCalls, PluginCalls};
use wasmeter_plugin::{CallError, HealthHandle, PluginLimits};

/// How many times each record came out of a successful `collect` call.
#[derive(Debug, Default)]
pub struct Ledger(Mutex<HashMap<String, u32>>);

impl Ledger {
    fn count(&self, records: &[String]) {
        let mut map = self.0.lock().unwrap();
        for r in records {
            *map.entry(r.clone()).or_default() += 1;
        }
    }

    /// Times `record` (a line without its newline) was collected.
    pub fn times(&self, record: &str) -> u32 {
        self.0.lock().unwrap().get(record).copied().unwrap_or(0)
    }

    /// Records collected more than once.
    pub fn repeated(&self) -> Vec<String> {
        let map = self.0.lock().unwrap();
        let mut r: Vec<_> = map
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(k, _)| k.clone())
            .collect();
        r.sort();
        r
    }
}

fn info(name: &str, kind: PluginKind, stateful: bool) -> PluginInfo {
    PluginInfo {
        name: name.to_string(),
        version: "0.1.0".into(),
        kind,
        description: "in-process test plugin".into(),
        emits: Vec::new(),
        stateful,
    }
}

fn limits(quarantine_after: u32) -> PluginLimits {
    PluginLimits {
        quarantine_after,
        ..PluginLimits::default()
    }
}

/// What a test controls and observes of a [`FakeCollector`] while it runs.
#[derive(Debug, Default)]
pub struct CollectorControl {
    /// Every call fails (a trap) while set.
    pub fail_all: AtomicBool,
    /// Calls that reached the plugin (not refused as quarantined).
    pub calls: AtomicU64,
}

/// A collector of `topic,seq` lines.
pub struct FakeCollector {
    name: String,
    info: PluginInfo,
    limits: PluginLimits,
    health: HealthHandle,
    ledger: Arc<Ledger>,
    control: Arc<CollectorControl>,
    poison: Option<String>,
    state: Option<Vec<u8>>,
}

impl FakeCollector {
    /// A stateless collector named `name`, quarantined after 5 failures in a row.
    pub fn new(name: &str, ledger: Arc<Ledger>) -> Self {
        Self {
            name: name.to_string(),
            info: info("fake-collector", PluginKind::Collector, false),
            limits: limits(5),
            health: HealthHandle::default(),
            ledger,
            control: Arc::default(),
            poison: None,
            state: None,
        }
    }

    /// Quarantined after `n` consecutive failures.
    pub fn quarantine_after(mut self, n: u32) -> Self {
        self.limits = limits(n);
        self
    }

    /// Fails every call whose chunk holds the line `record`.
    pub fn poison(mut self, record: &str) -> Self {
        self.poison = Some(record.to_string());
        self
    }

    /// Keeps a state of `bytes` bytes.
    pub fn stateful(mut self, bytes: usize) -> Self {
        self.info.stateful = true;
        self.state = Some(vec![7; bytes]);
        self
    }

    /// Its controls and counters.
    pub fn control(&self) -> Arc<CollectorControl> {
        self.control.clone()
    }

    /// Its health, as the pipeline sees it.
    pub fn health(&self) -> HealthHandle {
        self.health.clone()
    }

    fn parse(&self, chunk: &[u8]) -> Result<CollectOutput, CallError> {
        self.control.calls.fetch_add(1, Relaxed);
        if self.control.fail_all.load(Relaxed) {
            return Err(CallError::Trap {
                message: "unreachable executed".into(),
            });
        }
        let text = std::str::from_utf8(chunk).map_err(|e| CallError::Plugin(e.to_string()))?;
        let mut out = CollectOutput::default();
        let mut records = Vec::new();
        let mut offset = 0u32;
        for (i, line) in text.split_inclusive('\n').enumerate() {
            let record = line.trim_end_matches('\n');
            if self.poison.as_deref() == Some(record) {
                return Err(CallError::Trap {
                    message: format!("poisoned by line {}", i + 1),
                });
            }
            match record
                .split_once(',')
                .and_then(|(topic, seq)| seq.parse::<f64>().ok().map(|seq| (topic, seq)))
            {
                Some((topic, seq)) => {
                    out.updates.push(TopicUpdate {
                        topic: topic.to_string(),
                        fields: vec![("seq".into(), FieldValue::Number(seq))],
                    });
                    out.samples.push(Sample {
                        name: "records".into(),
                        labels: vec![Label {
                            name: "topic".into(),
                            value: topic.rsplit('/').next().unwrap_or(topic).into(),
                        }],
                        value: seq,
                        kind: MetricKind::Gauge,
                        timestamp_ms: 1,
                    });
                    records.push(record.to_string());
                }
                None => out.errors.push(RecordError {
                    line: i as u32 + 1,
                    offset,
                    message: format!("not `topic,seq`: {record:?}"),
                }),
            }
            offset += line.len() as u32;
        }
        self.ledger.count(&records);
        Ok(out)
    }
}

impl PluginCalls for FakeCollector {
    fn name(&self) -> &str {
        &self.name
    }

    fn info(&self) -> &PluginInfo {
        &self.info
    }

    fn limits(&self) -> &PluginLimits {
        &self.limits
    }

    fn health_handle(&self) -> HealthHandle {
        self.health.clone()
    }

    fn record_failure(&mut self, message: &str) {
        let _ = self
            .health
            .count_call::<()>("collect", self.limits.quarantine_after, || {
                Err(CallError::Plugin(message.to_string()))
            });
    }

    fn export_state(&mut self) -> BoxFuture<'_, Result<Option<Vec<u8>>, CallError>> {
        let state = self.state.clone();
        ready(
            self.health
                .count_call("export-state", self.limits.quarantine_after, || Ok(state)),
        )
        .boxed()
    }

    fn import_state<'a>(&'a mut self, state: &'a [u8]) -> BoxFuture<'a, Result<(), CallError>> {
        let result =
            self.health
                .count_call("import-state", self.limits.quarantine_after, || Ok(()));
        if result.is_ok() && self.state.is_some() {
            self.state = Some(state.to_vec());
        }
        ready(result).boxed()
    }
}

impl CollectorCalls for FakeCollector {
    fn collect<'a>(
        &'a mut self,
        _source: &'a str,
        chunk: &'a [u8],
    ) -> BoxFuture<'a, Result<CollectOutput, CallError>> {
        let result = self
            .health
            .count_call("collect", self.limits.quarantine_after, || {
                self.parse(chunk)
            });
        ready(result).boxed()
    }
}

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
    fn name(&self) -> &str {
        &self.name
    }

    fn info(&self) -> &PluginInfo {
        &self.info
    }

    fn limits(&self) -> &PluginLimits {
        &self.limits
    }

    fn health_handle(&self) -> HealthHandle {
        self.health.clone()
    }

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
        samples: &'a [Sample],
    ) -> BoxFuture<'a, Result<Vec<Sample>, CallError>> {
        let result =
            self.health.count_call(
                "on-samples",
                self.limits.quarantine_after,
                || Ok(Vec::new()),
            );
        if result.is_ok() {
            self.count += samples.len() as u64;
            self.control.seen.fetch_add(samples.len() as u64, Relaxed);
        }
        ready(result).boxed()
    }

    fn on_tick(&mut self, now_ms: i64) -> BoxFuture<'_, Result<Vec<Sample>, CallError>> {
        let control = &self.control;
        let name = self.name.clone();
        let result = self
            .health
            .count_call("on-tick", self.limits.quarantine_after, || {
                let ticks = control.ticks.fetch_add(1, Relaxed) + 1;
                Ok(vec![Sample {
                    name: "ticks".into(),
                    labels: vec![Label {
                        name: "plugin".into(),
                        value: name,
                    }],
                    value: ticks as f64,
                    kind: MetricKind::Counter,
                    timestamp_ms: now_ms,
                }])
            });
        ready(result).boxed()
    }
}

/// A delta plugin computing the exact difference, except that it fails on one
/// topic if told to.
pub struct FakeDelta {
    name: String,
    info: PluginInfo,
    limits: PluginLimits,
    health: HealthHandle,
    calls: Arc<AtomicU64>,
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
            fail_topic: None,
        }
    }

    /// Fails every `diff` of `topic`.
    pub fn fail_on(mut self, topic: &str) -> Self {
        self.fail_topic = Some(topic.to_string());
        self
    }

    /// Its `diff` calls that reached it.
    pub fn calls(&self) -> Arc<AtomicU64> {
        self.calls.clone()
    }
}

impl PluginCalls for FakeDelta {
    fn name(&self) -> &str {
        &self.name
    }

    fn info(&self) -> &PluginInfo {
        &self.info
    }

    fn limits(&self) -> &PluginLimits {
        &self.limits
    }

    fn health_handle(&self) -> HealthHandle {
        self.health.clone()
    }

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
    fn diff<'a>(
        &'a mut self,
        topic: &'a str,
        previous: &'a TopicState,
        current: &'a TopicState,
    ) -> BoxFuture<'a, Result<Delta, CallError>> {
        let result = self
            .health
            .count_call("diff", self.limits.quarantine_after, || {
                self.calls.fetch_add(1, Relaxed);
                if self.fail_topic.as_deref() == Some(topic) {
                    return Err(CallError::Plugin(format!("diff: cannot do {topic}")));
                }
                Ok(exact_diff(previous, current))
            });
        ready(result).boxed()
    }
}
