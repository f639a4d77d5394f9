//! # rolling-minmax: minimum and maximum over a time window (world `metric`)
//!
//! ## Config
//!
//! | key         | default       | meaning                                    |
//! |-------------|---------------|--------------------------------------------|
//! | `metrics`   | (every gauge) | comma list of metric names to follow       |
//! | `window_ms` | `60000`       | window length in milliseconds, `> 0`       |
//!
//! ## Output
//!
//! On every selected sample, the gauges `<name>_min` and `<name>_max` (same labels and
//! timestamp) over the samples of that series whose timestamp is within `window_ms` of the
//! newest one. On each tick, entries older than `now - window_ms` expire, and every series
//! whose window lost an entry that could hold its minimum or maximum re-emits `_min` and
//! `_max` stamped `now`; a series left without samples is forgotten and emits nothing.
//!
//! Monotonic deques keep this O(1) amortised per sample. A sample older than the newest of
//! its series is counted at the newest timestamp (windows only move forward). Samples
//! without a timestamp use the host's clock. Without `metrics`, names ending in `_min` or
//! `_max` are skipped (the plugin's own output).
//!
//! State: the deques of every series.

use std::collections::{BTreeMap, VecDeque};

use wasmeter_sdk::series::{self, Selection};
use wasmeter_sdk::state::{StateReader, StateWriter};
use wasmeter_sdk::{Config, Label, Metric, MetricKind, Plugin, PluginInfo, Sample};

const STATE_SCHEMA: &str = "rolling-minmax";

/// The window of one series. `mins` holds increasing values, `maxs` decreasing values;
/// both are ordered by time, and the newest entry is always the back of both.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Window {
    name: String,
    labels: Vec<Label>,
    newest: i64,
    mins: VecDeque<(i64, f64)>,
    maxs: VecDeque<(i64, f64)>,
}

impl Window {
    /// Adds a value at `ts` and drops what is outside `window_ms` of the newest.
    fn push(&mut self, ts: i64, value: f64, window_ms: i64) {
        let ts = ts.max(self.newest);
        self.newest = ts;
        while self.mins.back().is_some_and(|&(_, v)| v >= value) {
            self.mins.pop_back();
        }
        self.mins.push_back((ts, value));
        while self.maxs.back().is_some_and(|&(_, v)| v <= value) {
            self.maxs.pop_back();
        }
        self.maxs.push_back((ts, value));
        self.expire(ts - window_ms);
    }

    /// Drops entries older than `cutoff`; true if any was dropped.
    fn expire(&mut self, cutoff: i64) -> bool {
        let mut dropped = false;
        for deque in [&mut self.mins, &mut self.maxs] {
            while deque.front().is_some_and(|&(ts, _)| ts < cutoff) {
                deque.pop_front();
                dropped = true;
            }
        }
        dropped
    }

    fn is_empty(&self) -> bool {
        self.mins.is_empty()
    }

    /// `(min, max)` of the window.
    fn min_max(&self) -> Option<(f64, f64)> {
        Some((self.mins.front()?.1, self.maxs.front()?.1))
    }

    /// The `_min` and `_max` samples stamped `ts` (names too long are dropped).
    fn samples(&self, ts: i64, out: &mut Vec<Sample>) {
        if let Some((min, max)) = self.min_max() {
            for (suffix, value) in [("_min", min), ("_max", max)] {
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

/// The plugin: selection, window length and one window per series.
#[derive(Debug)]
pub struct RollingMinMax {
    selection: Selection,
    window_ms: i64,
    series: BTreeMap<String, Window>,
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
        let window_ms = config.parse_checked("window_ms", Some(60_000i64), |w| *w > 0, "> 0")?;
        Ok(RollingMinMax {
            selection: Selection::from_config(config, "metrics", MetricKind::Gauge)?
                .skipping_suffixes(&["_min", "_max"]),
            window_ms,
            series: BTreeMap::new(),
        })
    }

    fn export_state(&self) -> Option<Vec<u8>> {
        let mut w = StateWriter::new(STATE_SCHEMA, 1);
        w.count(self.series.len());
        for s in self.series.values() {
            w.str(&s.name).labels(&s.labels).i64(s.newest);
            for deque in [&s.mins, &s.maxs] {
                w.count(deque.len());
                for &(ts, v) in deque {
                    w.i64(ts).f64(v);
                }
            }
        }
        Some(w.finish())
    }

    fn import_state(&mut self, state: &[u8]) -> Result<(), String> {
        let mut r = StateReader::new(state, STATE_SCHEMA)?;
        let mut map = BTreeMap::new();
        for _ in 0..r.count()? {
            let mut s = Window {
                name: r.str()?,
                labels: r.labels()?,
                newest: r.i64()?,
                ..Window::default()
            };
            for deque in [&mut s.mins, &mut s.maxs] {
                for _ in 0..r.count()? {
                    deque.push_back((r.i64()?, r.f64()?));
                }
            }
            map.insert(series::key(&s.name, &s.labels), s);
        }
        r.finish()?;
        self.series = map;
        Ok(())
    }
}

impl Metric for RollingMinMax {
    fn on_samples(&mut self, samples: Vec<Sample>) -> Result<Vec<Sample>, String> {
        let mut out = Vec::new();
        for sample in samples {
            if !self.selection.matches(&sample) {
                continue;
            }
            let ts = series::timestamp_or_now(&sample);
            let window = self
                .series
                .entry(series::key_of(&sample))
                .or_insert_with(|| Window {
                    name: sample.name.clone(),
                    labels: sample.labels.clone(),
                    ..Window::default()
                });
            window.push(ts, sample.value, self.window_ms);
            window.samples(sample.timestamp_ms, &mut out);
        }
        Ok(out)
    }

    fn on_tick(&mut self, now_ms: i64) -> Result<Vec<Sample>, String> {
        let mut out = Vec::new();
        let cutoff = now_ms - self.window_ms;
        self.series.retain(|_, window| {
            if window.expire(cutoff) && !window.is_empty() {
                window.samples(now_ms, &mut out);
            }
            !window.is_empty()
        });
        Ok(out)
    }
}

wasmeter_sdk::export_metric!(RollingMinMax);

#[cfg(test)]
mod tests {
    use super::*;

    fn values(out: &[Sample]) -> Vec<(String, f64)> {
        out.iter().map(|s| (s.name.clone(), s.value)).collect()
    }

    #[test]
    fn window_and_ticks() {
        let mut p = RollingMinMax::init(&Config::from_pairs(&[("window_ms", "1000")])).unwrap();
        let g = |v: f64, ts: i64| Sample::gauge("p", v).at(ts);
        p.on_samples(vec![g(5.0, 1000), g(1.0, 1500), g(3.0, 1800)])
            .unwrap();
        let out = p.on_samples(vec![g(4.0, 2600)]).unwrap();
        // 1000 and 1500 are out of the window [1600, 2600]
        assert_eq!(
            values(&out),
            vec![("p_min".into(), 3.0), ("p_max".into(), 4.0)]
        );
        assert!(p.on_tick(2700).unwrap().is_empty());
        let out = p.on_tick(2900).unwrap(); // 1800 expires
        assert_eq!(
            values(&out),
            vec![("p_min".into(), 4.0), ("p_max".into(), 4.0)]
        );
        assert_eq!(out[0].timestamp_ms, 2900);
        let mut q = RollingMinMax::init(&Config::default()).unwrap();
        q.import_state(&p.export_state().unwrap()).unwrap();
        assert_eq!(q.series, p.series);
        assert!(p.on_tick(4000).unwrap().is_empty());
        assert!(p.series.is_empty());
        assert!(RollingMinMax::init(&Config::from_pairs(&[("window_ms", "0")])).is_err());
    }
}
