//! # counter-rate: per-second rates of counters (world `metric`)
//!
//! ## Config
//!
//! | key       | default        | meaning                                                  |
//! |-----------|----------------|----------------------------------------------------------|
//! | `metrics` | (every counter)| comma list of metric names to derive rates from          |
//! | `suffix`  | `_per_second`  | appended to the name of the output; `[a-zA-Z0-9_:]*`     |
//!
//! ## Output
//!
//! For each series (name + labels, in any order) the plugin keeps the last value and
//! timestamp. A later sample of the series (larger timestamp) emits the gauge
//! `<name><suffix>` with the same labels and timestamp, valued
//! `increase / elapsed seconds`. A value below the previous one is a counter reset: the
//! increase is then the new value. Samples not newer than the last one are ignored;
//! samples without a timestamp (0) are timed with the host's clock. Outputs whose name
//! would exceed 200 bytes are dropped.
//!
//! State: the last value and timestamp of every series.

use std::collections::BTreeMap;

use wasmeter_sdk::series::{self, Selection};
use wasmeter_sdk::state::{StateReader, StateWriter};
use wasmeter_sdk::{Config, Label, Metric, MetricKind, Plugin, PluginInfo, Sample};

const STATE_SCHEMA: &str = "counter-rate";

/// The last observation of a series.
#[derive(Debug, Clone, PartialEq)]
struct Last {
    name: String,
    labels: Vec<Label>,
    value: f64,
    ts: i64,
}

/// The plugin: which counters, the output suffix and the last observation per series.
#[derive(Debug)]
pub struct CounterRate {
    selection: Selection,
    suffix: String,
    series: BTreeMap<String, Last>,
}

impl CounterRate {
    /// Records `sample` (timestamp `ts`) and returns its rate sample, if any.
    fn observe(&mut self, sample: Sample, ts: i64) -> Option<Sample> {
        let key = series::key_of(&sample);
        let Some(last) = self.series.get_mut(&key) else {
            self.series.insert(
                key,
                Last {
                    name: sample.name,
                    labels: sample.labels,
                    value: sample.value,
                    ts,
                },
            );
            return None;
        };
        if ts <= last.ts {
            return None;
        }
        let increase = if sample.value >= last.value {
            sample.value - last.value
        } else {
            sample.value // reset
        };
        let rate = increase / ((ts - last.ts) as f64 / 1000.0);
        last.value = sample.value;
        last.ts = ts;
        let name = format!("{}{}", sample.name, self.suffix);
        series::is_valid_metric_name(&name)
            .then(|| Sample::gauge(name, rate).with_labels(sample.labels).at(ts))
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
        Ok(CounterRate {
            selection: Selection::from_config(config, "metrics", MetricKind::Counter)?,
            suffix,
            series: BTreeMap::new(),
        })
    }

    fn export_state(&self) -> Option<Vec<u8>> {
        let mut w = StateWriter::new(STATE_SCHEMA, 1);
        w.count(self.series.len());
        for last in self.series.values() {
            w.str(&last.name)
                .labels(&last.labels)
                .f64(last.value)
                .i64(last.ts);
        }
        Some(w.finish())
    }

    fn import_state(&mut self, state: &[u8]) -> Result<(), String> {
        let mut r = StateReader::new(state, STATE_SCHEMA)?;
        let mut map = BTreeMap::new();
        for _ in 0..r.count()? {
            let last = Last {
                name: r.str()?,
                labels: r.labels()?,
                value: r.f64()?,
                ts: r.i64()?,
            };
            map.insert(series::key(&last.name, &last.labels), last);
        }
        r.finish()?;
        self.series = map;
        Ok(())
    }
}

impl Metric for CounterRate {
    fn on_samples(&mut self, samples: Vec<Sample>) -> Result<Vec<Sample>, String> {
        let mut out = Vec::new();
        for sample in samples {
            if self.selection.matches(&sample) {
                let ts = series::timestamp_or_now(&sample);
                out.extend(self.observe(sample, ts));
            }
        }
        Ok(out)
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
        let out = q.on_samples(vec![counter(50.0, 4000)]).unwrap();
        assert_eq!(
            (out[0].name.as_str(), out[0].value),
            ("bytes_total_rate", 50.0)
        );
        assert!(CounterRate::init(&Config::from_pairs(&[("suffix", "-x")])).is_err());
    }
}
