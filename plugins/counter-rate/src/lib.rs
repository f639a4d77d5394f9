//! # counter-rate: per-second rates of counters (world `metric`)
//!
//! ## Config
//!
//! | key       | default        | meaning                                                  |
//! |-----------|----------------|----------------------------------------------------------|
//! | `metrics` | (every counter)| comma list of metric names to derive rates from          |
//! | `suffix`  | `_per_second`  | appended to the name of the output; `[a-zA-Z0-9_:]*`     |
//! | `window_ms` | `10000`      | the rate is the increase over this window (> 0)          |
//!
//! ## Output
//!
//! Each later sample of a series (name + labels, in any order; larger timestamp)
//! emits the gauge `<name><suffix>` with the same labels and timestamp, valued
//! `increase / elapsed seconds` over the last `window_ms` (from the newest sample at
//! or before the window's start, so the whole window counts; like Prometheus's
//! `rate`). Over a window, a steady feed gives a steady rate: two samples close
//! together no longer make a spike. A value below the previous one is a counter
//! reset: the increase is then the new value. Samples not newer than the last one
//! are ignored; samples without a timestamp (0) are timed with the host's clock.
//! Outputs whose name would exceed 200 bytes are dropped.
//!
//! State: per series, the counter's points over the window (one per second at
//! most: a later sample in the same second replaces the earlier one).

use std::collections::VecDeque;

use wasmeter_sdk::series::{self, Selection};
use wasmeter_sdk::state::{StateReader, StateWriter};
use wasmeter_sdk::{
    CollectOutput, Config, InputPoint, Label, Metric, MetricKind, PerSeries, Plugin, PluginInfo,
    PointFeed, Points, Sample, SeriesId,
};

const STATE_SCHEMA: &str = "counter-rate";

/// A series' recent history: its raw value, and its points over the window as
/// `(ts, total)` where `total` counts every increase, resets included; and its
/// output series once registered (`Some(None)`: its name would be too long).
#[derive(Debug, Clone, PartialEq)]
struct Series {
    name: String,
    labels: Vec<Label>,
    value: f64,
    total: f64,
    points: VecDeque<(i64, f64)>,
    output: Option<Option<SeriesId>>,
}

impl Series {
    fn last_ts(&self) -> i64 {
        self.points.back().map_or(i64::MIN, |p| p.0)
    }
}

/// The plugin: which counters, the output suffix, the window and each series.
#[derive(Debug)]
pub struct CounterRate {
    selection: Selection,
    suffix: String,
    window_ms: i64,
    series: PerSeries<Series>,
}

impl CounterRate {
    /// Records `p` (timestamp `ts`) and writes its rate point, if any.
    fn observe(&mut self, p: &InputPoint<'_>, ts: i64, out: &mut CollectOutput) {
        let mut new = false;
        let slot = self.series.slot(
            p,
            || series::key(p.name, p.labels),
            || {
                new = true;
                Series {
                    name: p.name.to_string(),
                    labels: p.labels.to_vec(),
                    value: p.value,
                    total: 0.0,
                    points: VecDeque::from([(ts, 0.0)]),
                    output: None,
                }
            },
        );
        let s = self.series.get_mut(slot);
        if new || ts <= s.last_ts() {
            return;
        }
        s.total += if p.value >= s.value {
            p.value - s.value
        } else {
            p.value // reset
        };
        s.value = p.value;
        // At most one point a second: the newest of that second.
        if s.points.len() > 1 && s.points.back().is_some_and(|p| p.0 / 1000 == ts / 1000) {
            s.points.pop_back();
        }
        s.points.push_back((ts, s.total));
        // Keep the newest point at or before the window's start as the anchor.
        while s.points.len() > 2 && s.points[1].0 <= ts - self.window_ms {
            s.points.pop_front();
        }
        let (t0, total0) = s.points[0];
        let rate = (s.total - total0) / ((ts - t0) as f64 / 1000.0);
        let suffix = &self.suffix;
        let (name, labels) = (&s.name, &s.labels);
        let output = *s
            .output
            .get_or_insert_with(|| CollectOutput::derived_gauge(name, suffix, labels));
        if let Some(id) = output {
            out.point(id, rate, ts);
        }
    }
}

impl Plugin for CounterRate {
    fn info() -> PluginInfo {
        let suffix = Config::from_host()
            .get_or("suffix", "_per_second")
            .to_string();
        PluginInfo::new(
            "counter-rate",
            env!("CARGO_PKG_VERSION"),
            "Per-second rates of counters (resets handled)",
        )
        .emits([format!("*{suffix}")])
        .stateful(true)
    }

    fn init(config: &Config) -> Result<Self, String> {
        let suffix = config.get_or("suffix", "_per_second").trim().to_string();
        if !suffix
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b':')
        {
            return Err(format!(
                "config `suffix`: `{suffix}` may only contain [a-zA-Z0-9_:]"
            ));
        }
        let window = config.get_or("window_ms", "10000");
        let window_ms = window
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|w| *w > 0)
            .ok_or_else(|| format!("config `window_ms`: `{window}` is not a positive integer"))?;
        Ok(CounterRate {
            selection: Selection::from_config(config, "metrics", MetricKind::Counter)?,
            suffix,
            window_ms,
            series: PerSeries::new(),
        })
    }

    fn export_state(&self) -> Option<Vec<u8>> {
        let mut w = StateWriter::new(STATE_SCHEMA, 2);
        let all = self.series.sorted();
        w.count(all.len());
        for (_, s) in all {
            w.str(&s.name).labels(&s.labels).f64(s.value).f64(s.total);
            w.count(s.points.len());
            for (ts, total) in &s.points {
                w.i64(*ts).f64(*total);
            }
        }
        Some(w.finish())
    }

    /// Reads version 2, and version 1 (the last value and time of each series).
    fn import_state(&mut self, state: &[u8]) -> Result<(), String> {
        let mut r = StateReader::new(state, STATE_SCHEMA)?;
        let version = r.version();
        let mut map = PerSeries::new();
        for _ in 0..r.count()? {
            let (name, labels, value) = (r.str()?, r.labels()?, r.f64()?);
            let (total, points) = if version >= 2 {
                let total = r.f64()?;
                let mut points = VecDeque::new();
                for _ in 0..r.count()? {
                    points.push_back((r.i64()?, r.f64()?));
                }
                (total, points)
            } else {
                (0.0, VecDeque::from([(r.i64()?, 0.0)]))
            };
            if points.is_empty() {
                return Err(format!("state: series `{name}` has no points"));
            }
            let s = Series {
                name,
                labels,
                value,
                total,
                points,
                output: None,
            };
            map.insert(series::key(&s.name, &s.labels), s);
        }
        r.finish()?;
        self.series = map;
        Ok(())
    }
}

impl Metric for CounterRate {
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
            self.observe(&p, ts, out);
        }
        Ok(())
    }
}

wasmeter_sdk::export_metric!(CounterRate);

#[cfg(test)]
mod tests {
    use super::*;

    fn counter(value: f64, ts: i64) -> Sample {
        Sample::counter("bytes_total", value)
            .with_label("b", "2")
            .with_label("a", "1")
            .at(ts)
    }

    #[test]
    fn rates_resets_and_state() {
        let mut p = CounterRate::init(&Config::default()).unwrap();
        assert!(p.on_samples(vec![counter(100.0, 1000)]).unwrap().is_empty());
        let out = p
            .on_samples(vec![counter(300.0, 3000), Sample::gauge("g", 1.0).at(3000)])
            .unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].name, "bytes_total_per_second");
        assert_eq!(out[0].value, 100.0);
        assert_eq!(out[0].timestamp_ms, 3000);
        assert_eq!(out[0].kind, MetricKind::Gauge);
        // older sample ignored, reset counts the new value
        assert!(p.on_samples(vec![counter(1.0, 2000)]).unwrap().is_empty());
        let mut q = CounterRate::init(&Config::from_pairs(&[("suffix", "_rate")])).unwrap();
        q.import_state(&p.export_state().unwrap()).unwrap();
        // Over the window from 1 s: 200, then a reset to 50: 250 in 3 s.
        let out = q.on_samples(vec![counter(50.0, 4000)]).unwrap();
        assert_eq!(
            (out[0].name.as_str(), out[0].value),
            ("bytes_total_rate", 250.0 / 3.0)
        );
        assert!(CounterRate::init(&Config::from_pairs(&[("suffix", "-x")])).is_err());
        assert!(CounterRate::init(&Config::from_pairs(&[("window_ms", "0")])).is_err());
    }

    /// A steady feed of 10 trades a second at irregular moments (a trades counter
    /// counts one at a time): over the window the rate stays near 10, where the
    /// gap between two trades (5 to 95 ms) made it swing between 10 and 200.
    #[test]
    fn a_steady_feed_gives_a_steady_rate() {
        let mut p = CounterRate::init(&Config::default()).unwrap();
        let mut rates = Vec::new();
        for k in 0..300i64 {
            let jitter = [-45, 40, -20, 45, 0, -40, 30, -5, 20, -25][(k % 10) as usize];
            let t = 1_000_000 + k * 100 + jitter;
            rates.extend(p.on_samples(vec![counter(k as f64, t)]).unwrap());
        }
        // Once the window is full (after 10 s), the rate is the count over it.
        for r in rates.iter().filter(|r| r.timestamp_ms > 1_011_000) {
            assert!(
                (r.value - 10.0).abs() < 0.2,
                "{} at {}",
                r.value,
                r.timestamp_ms
            );
        }
    }

    /// Over the window: an increase before the window's start no longer counts;
    /// a reset counts the new value; the state carries the window across a swap,
    /// and version 1 state still reads.
    #[test]
    fn the_window_moves_and_resets_count() {
        const B: i64 = 1_000_000;
        let cfg = Config::from_pairs(&[("window_ms", "10000")]);
        let mut p = CounterRate::init(&cfg).unwrap();
        p.on_samples(vec![counter(0.0, B)]).unwrap();
        let r = p.on_samples(vec![counter(100.0, B + 1000)]).unwrap(); // a burst of 100
        assert_eq!(r[0].value, 100.0);
        let r = p.on_samples(vec![counter(100.0, B + 5000)]).unwrap();
        assert_eq!(r[0].value, 100.0 / 5.0, "the burst is in the window");
        let r = p.on_samples(vec![counter(100.0, B + 20_000)]).unwrap();
        assert_eq!(
            r[0].value, 0.0,
            "the burst is before the window (anchored at 5 s)"
        );
        let r = p.on_samples(vec![counter(5.0, B + 30_000)]).unwrap();
        assert_eq!(r[0].value, 5.0 / 10.0, "a reset counts the new value");
        let mut q = CounterRate::init(&cfg).unwrap();
        q.import_state(&p.export_state().unwrap()).unwrap();
        let history = |m: &CounterRate| -> Vec<String> {
            let all = m.series.sorted();
            all.into_iter()
                .map(|(k, s)| format!("{k} {} {} {:?}", s.value, s.total, s.points))
                .collect()
        };
        assert_eq!(history(&q), history(&p));
        let mut v1 = StateWriter::new(STATE_SCHEMA, 1);
        v1.count(1);
        v1.str("bytes_total")
            .labels(&[Label::new("a", "1"), Label::new("b", "2")])
            .f64(10.0)
            .i64(B + 1000);
        let mut old = CounterRate::init(&cfg).unwrap();
        old.import_state(&v1.finish()).unwrap();
        let r = old.on_samples(vec![counter(30.0, B + 3000)]).unwrap();
        assert_eq!(r[0].value, 10.0);
    }
}
