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

use wasmeter_sdk::series::{self, Selection};
use wasmeter_sdk::window::{Aggregate, BucketSpec, BucketWindow};
use wasmeter_sdk::{
    CollectOutput, Config, Label, Metric, MetricKind, PerSeries, Plugin, PluginInfo, PointFeed,
    Points, Sample, SeriesId,
};

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

/// The `_min` and `_max` suffixes of a series' outputs.
const SUFFIXES: [&str; 2] = ["_min", "_max"];

/// The name, labels and bucketed window of one series, and its output series
/// once registered (`None` for a name that would be too long).
#[derive(Debug, Clone, Default, PartialEq)]
struct Series {
    name: String,
    labels: Vec<Label>,
    window: BucketWindow<Extremes>,
    outputs: Option<[Option<SeriesId>; 2]>,
}

impl Series {
    fn new(name: &str, labels: &[Label], window: BucketWindow<Extremes>) -> Self {
        Series {
            name: name.to_string(),
            labels: labels.to_vec(),
            window,
            outputs: None,
        }
    }

    /// The `_min` and `_max` points stamped `ts`, of series registered on first use.
    fn points(&mut self, ts: i64, out: &mut CollectOutput) {
        let Some(e) = self.window.total().copied() else {
            return;
        };
        let (name, labels) = (&self.name, &self.labels);
        let outputs = self.outputs.get_or_insert_with(|| {
            SUFFIXES.map(|suffix| CollectOutput::derived_gauge(name, suffix, labels))
        });
        for (id, value) in outputs.iter().zip([e.min, e.max]) {
            if let Some(id) = id {
                out.point(*id, value, ts);
            }
        }
    }

    /// The `_min` and `_max` samples stamped `ts` (names too long are dropped).
    fn samples(&self, ts: i64, out: &mut Vec<Sample>) {
        if let Some(e) = self.window.total() {
            for (suffix, value) in SUFFIXES.into_iter().zip([e.min, e.max]) {
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
    series: PerSeries<Series>,
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
            series: PerSeries::new(),
        })
    }

    fn export_state(&self) -> Option<Vec<u8>> {
        Some(state::export(&self.spec, &self.series.sorted()))
    }

    fn import_state(&mut self, bytes: &[u8]) -> Result<(), String> {
        let mut series = PerSeries::new();
        for (key, s) in state::import(&self.spec, bytes)? {
            series.insert(key, s);
        }
        self.series = series;
        Ok(())
    }
}

impl Metric for RollingMinMax {
    fn reads(&self, name: &str, kind: MetricKind) -> bool {
        self.selection.reads(name, kind)
    }

    fn on_samples(&mut self, samples: Vec<Sample>) -> Result<Vec<Sample>, String> {
        PointFeed::default().call(self, samples)
    }

    fn on_points(&mut self, points: Points<'_>, out: &mut CollectOutput) -> Result<(), String> {
        self.series.start(&points);
        for p in points.iter().filter(|p| p.value.is_finite()) {
            let ts = p.timestamp_or_now();
            let slot = self.series.slot(
                &p,
                || series::key(p.name, p.labels),
                || Series::new(p.name, p.labels, BucketWindow::new()),
            );
            let s = self.series.get_mut(slot);
            s.window.add(&self.spec, ts, Extremes::of(p.value));
            s.points(p.timestamp_ms, out);
        }
        Ok(())
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
