//! # rolling-minmax: minimum and maximum over a time window (world `metric`)
//!
//! ## Config
//!
//! | key         | default       | meaning                                            |
//! |-------------|---------------|----------------------------------------------------|
//! | `metrics`   | (every gauge) | comma list of metric names to follow               |
//! | `window_ms` | `60000`       | window length in milliseconds, `> 0`               |
//! | `buckets`   | `60`          | time buckets per window, integer from 1 to 3600    |
//!
//! ## Output
//!
//! On every selected sample, the gauges `<name>_min` and `<name>_max` (same labels and
//! timestamp) over the samples of that series in the window of the newest one. On each
//! tick, the window moves to `now`, and every series whose minimum or maximum changed
//! re-emits `_min` and `_max` stamped `now`; a series left without samples is forgotten
//! and emits nothing.
//!
//! ## The window, in time buckets
//!
//! Memory does not grow with the sample rate: the time axis is cut into buckets of
//! `width = ceil(window_ms / buckets)` ms (at least 1), aligned on the Unix epoch, and a
//! series keeps only the minimum and maximum of each bucket (and of the whole window,
//! so a sample costs O(1); a bucket leaving costs O(buckets)). The window of a reference
//! time `t` (the series' newest sample, or `now` on a tick) is `[t - window_ms, t]`, and a
//! bucket leaves it only once all of it is older than `t - window_ms`. So the result
//! covers every sample of the last `window_ms`, plus those of up to `width - 1` ms before
//! (the rest of the oldest bucket): a sample counts for at least `window_ms` and at most
//! `window_ms + width - 1` ms. The old edge moves in steps of one bucket; a series holds
//! at most `buckets + 1` buckets. All samples in one bucket give the exact result.
//!
//! A sample older than the newest of its series is counted at the newest timestamp
//! (windows only move forward). Samples without a timestamp use the host's clock. Without
//! `metrics`, names ending in `_min` or `_max` are skipped (the plugin's own output).
//!
//! State (schema `rolling-minmax`, version 2): the bucket width, then each series' name,
//! labels and buckets, O(buckets) per series. Version 1 (the monotonic deques of earlier
//! releases) is imported by putting its entries into buckets; a state of another bucket
//! width counts each old bucket as of its last millisecond.

mod state;

use std::collections::BTreeMap;

use wasmeter_sdk::series::{self, Selection};
use wasmeter_sdk::window::{Aggregate, BucketSpec, BucketWindow};
use wasmeter_sdk::{Config, Label, Metric, MetricKind, Plugin, PluginInfo, Sample};

/// What a bucket keeps of its samples.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Extremes {
    min: f64,
    max: f64,
}

impl Extremes {
    fn of(value: f64) -> Self {
        Extremes {
            min: value,
            max: value,
        }
    }
}

impl Aggregate for Extremes {
    fn merge(&mut self, other: &Self) {
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }
}

/// The name, labels and bucketed window of one series.
#[derive(Debug, Clone, Default, PartialEq)]
struct Series {
    name: String,
    labels: Vec<Label>,
    window: BucketWindow<Extremes>,
}

impl Series {
    /// The `_min` and `_max` samples stamped `ts` (names too long are dropped).
    fn samples(&self, ts: i64, out: &mut Vec<Sample>) {
        if let Some(e) = self.window.total() {
            for (suffix, value) in [("_min", e.min), ("_max", e.max)] {
                let name = format!("{}{suffix}", self.name);
                if series::is_valid_metric_name(&name) {
                    out.push(
                        Sample::gauge(name, value)
                            .with_labels(self.labels.clone())
                            .at(ts),
                    );
                }
            }
        }
    }
}

/// The plugin: selection, window and one window per series.
#[derive(Debug)]
pub struct RollingMinMax {
    selection: Selection,
    spec: BucketSpec,
    series: BTreeMap<String, Series>,
}

impl Plugin for RollingMinMax {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "rolling-minmax",
            env!("CARGO_PKG_VERSION"),
            "Minimum and maximum per series over a rolling time window",
        )
        .emits(["*_min", "*_max"])
        .stateful(true)
    }

    fn init(config: &Config) -> Result<Self, String> {
        let spec = BucketSpec::from_config(config, 60_000)?;
        Ok(RollingMinMax {
            selection: Selection::from_config(config, "metrics", MetricKind::Gauge)?
                .skipping_suffixes(&["_min", "_max"]),
            spec,
            series: BTreeMap::new(),
        })
    }

    fn export_state(&self) -> Option<Vec<u8>> {
        Some(state::export(&self.spec, &self.series))
    }

    fn import_state(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.series = state::import(&self.spec, bytes)?;
        Ok(())
    }
}

impl Metric for RollingMinMax {
    fn reads(&self, name: &str, kind: MetricKind) -> bool {
        self.selection.reads(name, kind)
    }

    fn on_samples(&mut self, samples: Vec<Sample>) -> Result<Vec<Sample>, String> {
        let mut out = Vec::new();
        for sample in samples {
            if !self.selection.matches(&sample) {
                continue;
            }
            let ts = series::timestamp_or_now(&sample);
            let s = self
                .series
                .entry(series::key_of(&sample))
                .or_insert_with(|| Series {
                    name: sample.name.clone(),
                    labels: sample.labels.clone(),
                    window: BucketWindow::new(),
                });
            s.window.add(&self.spec, ts, Extremes::of(sample.value));
            s.samples(sample.timestamp_ms, &mut out);
        }
        Ok(out)
    }

    fn on_tick(&mut self, now_ms: i64) -> Result<Vec<Sample>, String> {
        let mut out = Vec::new();
        let spec = self.spec;
        self.series.retain(|_, s| {
            let before = s.window.total().copied();
            if s.window.expire(&spec, now_ms) && s.window.total().copied() != before {
                s.samples(now_ms, &mut out);
            }
            !s.window.is_empty()
        });
        Ok(out)
    }
}

wasmeter_sdk::export_metric!(RollingMinMax);

#[cfg(test)]
mod tests;
