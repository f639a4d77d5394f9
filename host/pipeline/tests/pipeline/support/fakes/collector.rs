//! A collector of `topic,seq` lines that can fail on a record, on every call,
//! and keep a state.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU64};

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, ready};
use wasmeter_core::field::FieldValue;
use wasmeter_core::plugin::{PluginInfo, PluginKind};
use wasmeter_core::sample::{Label, MetricKind, Sample};
use wasmeter_core::series_key::SeriesKey;
use wasmeter_core::update::{CollectOutput, RecordError, TopicUpdate};
use wasmeter_core::validate::OutputError;
use wasmeter_pipeline::{CollectorCalls, PluginCalls};
use wasmeter_plugin::{CallError, HealthHandle, PluginLimits};

use super::{Ledger, info, limits};

/// What a test controls and observes of a [`FakeCollector`] while it runs.
#[derive(Debug, Default)]
pub struct CollectorControl {
    /// Every call fails (a trap) while set.
    pub fail_all: AtomicBool,
    /// Calls that reached the plugin (not refused as quarantined).
    pub calls: AtomicU64,
    /// The most records one call was given.
    pub most_records: AtomicU64,
    /// Calls whose output the "host" refused for its size.
    pub refused: AtomicU64,
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
    /// Sends its samples as points of their series, as a 0.3.0 collector does.
    as_points: bool,
    /// A label its samples of odd `seq`s carry besides `topic`.
    odd_label: Option<Label>,
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
            as_points: false,
            odd_label: None,
        }
    }

    /// Gives its samples of odd `seq`s the label `name=value` as well.
    pub fn labelling_odd_seqs(mut self, name: &str, value: &str) -> Self {
        self.odd_label = Some(Label::new(name, value));
        self
    }

    /// Sends its samples as points of their series (`CollectOutput::points`),
    /// as a 0.3.0 collector does, instead of whole samples.
    pub fn sending_points(mut self) -> Self {
        self.as_points = true;
        self
    }

    /// May write at most `n` sample series (a quota: going past it quarantines).
    pub fn series_quota(mut self, n: usize) -> Self {
        self.limits.max_series = n;
        self
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

    /// Limits its output to `samples` samples per call, checked after the call
    /// ran, as the host checks a wasm instance's output: a refused call has
    /// already counted its records (its state moved), like a real stateful
    /// collector whose output the host refuses.
    pub fn output_cap(mut self, samples: usize) -> Self {
        self.limits.output.max_samples = samples;
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
                    let mut labels = vec![Label {
                        name: "topic".into(),
                        value: topic.rsplit('/').next().unwrap_or(topic).into(),
                    }];
                    if seq % 2.0 == 1.0 {
                        labels.extend(self.odd_label.clone());
                    }
                    out.samples.push(Sample {
                        name: "records".into(),
                        labels,
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
        if self.as_points {
            for sample in std::mem::take(&mut out.samples) {
                let key = SeriesKey::of(&sample);
                let series = out.points.series_number(&key, sample.kind);
                out.points.push(series, sample.value, sample.timestamp_ms);
            }
        }
        self.control
            .most_records
            .fetch_max(records.len() as u64, Relaxed);
        self.ledger.count(&records);
        let samples = out.samples.len() + out.points.len();
        if samples > self.limits.output.max_samples {
            self.control.refused.fetch_add(1, Relaxed);
            return Err(CallError::InvalidOutput(OutputError {
                item: "samples".into(),
                problem: format!(
                    "{samples} samples, more than the limit of {}",
                    self.limits.output.max_samples
                ),
            }));
        }
        Ok(out)
    }
}

impl PluginCalls for FakeCollector {
    identity!();

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
