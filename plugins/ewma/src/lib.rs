//! # ewma: exponentially weighted moving averages (world `metric`)
//!
//! ## Config
//!
//! | key       | default        | meaning                                           |
//! |-----------|----------------|---------------------------------------------------|
//! | `metrics` | (every gauge)  | comma list of metric names to average             |
//! | `alpha`   | `0.2`          | weight of the newest sample, `0 < alpha <= 1`     |
//!
//! ## Output
//!
//! On every selected sample, the gauge `<name>_ewma` with the same labels and timestamp:
//! `ewma = alpha * value + (1 - alpha) * previous ewma` per series (name + labels); the
//! first sample of a series starts the average at its value. Without `metrics`, names
//! already ending in `_ewma` are skipped; outputs whose name would exceed 200 bytes are
//! dropped.
//!
//! State: the average of every series.

use std::collections::BTreeMap;

use wasmeter_sdk::series::{self, Selection};
use wasmeter_sdk::state::{StateReader, StateWriter};
use wasmeter_sdk::{Config, Label, Metric, MetricKind, Plugin, PluginInfo, Sample};

const STATE_SCHEMA: &str = "ewma";

/// The running average of a series.
#[derive(Debug, Clone, PartialEq)]
struct Average {
    name: String,
    labels: Vec<Label>,
    value: f64,
}

/// The plugin: selection, smoothing factor and the average per series.
#[derive(Debug)]
pub struct Ewma {
    selection: Selection,
    alpha: f64,
    series: BTreeMap<String, Average>,
}

impl Ewma {
    /// Folds `sample` into its series' average and returns the `_ewma` sample.
    fn observe(&mut self, sample: Sample) -> Option<Sample> {
        let alpha = self.alpha;
        let avg = self
            .series
            .entry(series::key_of(&sample))
            .and_modify(|a| a.value = alpha * sample.value + (1.0 - alpha) * a.value)
            .or_insert_with(|| Average {
                name: sample.name.clone(),
                labels: sample.labels.clone(),
                value: sample.value,
            });
        let name = format!("{}_ewma", sample.name);
        series::is_valid_metric_name(&name).then(|| {
            Sample::gauge(name, avg.value)
                .with_labels(sample.labels)
                .at(sample.timestamp_ms)
        })
    }
}

impl Plugin for Ewma {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "ewma",
            env!("CARGO_PKG_VERSION"),
            "Exponentially weighted moving average per series",
        )
        .emits(["*_ewma"])
        .stateful(true)
    }

    fn init(config: &Config) -> Result<Self, String> {
        let alpha = config.parse_checked(
            "alpha",
            Some(0.2f64),
            |a| *a > 0.0 && *a <= 1.0,
            "in (0, 1]",
        )?;
        Ok(Ewma {
            selection: Selection::from_config(config, "metrics", MetricKind::Gauge)?
                .skipping_suffixes(&["_ewma"]),
            alpha,
            series: BTreeMap::new(),
        })
    }

    fn export_state(&self) -> Option<Vec<u8>> {
        let mut w = StateWriter::new(STATE_SCHEMA, 1);
        w.count(self.series.len());
        for a in self.series.values() {
            w.str(&a.name).labels(&a.labels).f64(a.value);
        }
        Some(w.finish())
    }

    fn import_state(&mut self, state: &[u8]) -> Result<(), String> {
        let mut r = StateReader::new(state, STATE_SCHEMA)?;
        let mut map = BTreeMap::new();
        for _ in 0..r.count()? {
            let a = Average {
                name: r.str()?,
                labels: r.labels()?,
                value: r.f64()?,
            };
            map.insert(series::key(&a.name, &a.labels), a);
        }
        r.finish()?;
        self.series = map;
        Ok(())
    }
}

impl Metric for Ewma {
    fn reads(&self, name: &str, kind: MetricKind) -> bool {
        self.selection.reads(name, kind)
    }

    fn on_samples(&mut self, samples: Vec<Sample>) -> Result<Vec<Sample>, String> {
        let mut out = Vec::new();
        for sample in samples {
            if self.selection.matches(&sample) {
                out.extend(self.observe(sample));
            }
        }
        Ok(out)
    }
}

wasmeter_sdk::export_metric!(Ewma);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn averages_per_series() {
        let mut p = Ewma::init(&Config::from_pairs(&[("alpha", "0.5")])).unwrap();
        let g = |v: f64, host: &str| Sample::gauge("cpu", v).with_label("host", host).at(7);
        let out = p
            .on_samples(vec![
                g(10.0, "a"),
                g(20.0, "a"),
                g(1.0, "b"),
                Sample::counter("c", 1.0),
            ])
            .unwrap();
        let values: Vec<f64> = out.iter().map(|s| s.value).collect();
        assert_eq!(values, vec![10.0, 15.0, 1.0]);
        assert_eq!(out[0].name, "cpu_ewma");
        assert_eq!(out[0].timestamp_ms, 7);
        let mut q = Ewma::init(&Config::from_pairs(&[("alpha", "1")])).unwrap();
        q.import_state(&p.export_state().unwrap()).unwrap();
        assert_eq!(q.series, p.series);
        assert!(
            p.on_samples(vec![Sample::gauge("cpu_ewma", 1.0)])
                .unwrap()
                .is_empty()
        );
        assert!(Ewma::init(&Config::from_pairs(&[("alpha", "0")])).is_err());
        assert!(Ewma::init(&Config::from_pairs(&[("alpha", "1.5")])).is_err());
    }
}
