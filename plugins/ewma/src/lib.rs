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

use wasmeter_sdk::series::{self, Selection};
use wasmeter_sdk::state::{StateReader, StateWriter};
use wasmeter_sdk::{
    CollectOutput, Config, Label, Metric, MetricKind, PerSeries, Plugin, PluginInfo, PointFeed,
    Points, Sample, SeriesId,
};

const STATE_SCHEMA: &str = "ewma";

/// The running average of a series, and its output series once registered
/// (`Some(None)`: its name would be too long).
#[derive(Debug, Clone, PartialEq)]
struct Average {
    name: String,
    labels: Vec<Label>,
    value: f64,
    output: Option<Option<SeriesId>>,
}

impl Average {
    fn new(name: &str, labels: &[Label], value: f64) -> Self {
        Average {
            name: name.to_string(),
            labels: labels.to_vec(),
            value,
            output: None,
        }
    }

    /// The series `<name>_ewma` with the same labels, registered on first use.
    fn output(&mut self) -> Option<SeriesId> {
        let (name, labels) = (&self.name, &self.labels);
        *self
            .output
            .get_or_insert_with(|| CollectOutput::derived_gauge(name, "_ewma", labels))
    }
}

/// The plugin: selection, smoothing factor and the average per series.
#[derive(Debug)]
pub struct Ewma {
    selection: Selection,
    alpha: f64,
    series: PerSeries<Average>,
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
            series: PerSeries::new(),
        })
    }

    fn export_state(&self) -> Option<Vec<u8>> {
        let mut w = StateWriter::new(STATE_SCHEMA, 1);
        let all = self.series.sorted();
        w.count(all.len());
        for (_, a) in all {
            w.str(&a.name).labels(&a.labels).f64(a.value);
        }
        Some(w.finish())
    }

    fn import_state(&mut self, state: &[u8]) -> Result<(), String> {
        let mut r = StateReader::new(state, STATE_SCHEMA)?;
        let mut series = PerSeries::new();
        for _ in 0..r.count()? {
            let (name, labels, value) = (r.str()?, r.labels()?, r.f64()?);
            series.insert(
                series::key(&name, &labels),
                Average::new(&name, &labels, value),
            );
        }
        r.finish()?;
        self.series = series;
        Ok(())
    }
}

impl Metric for Ewma {
    fn reads(&self, name: &str, kind: MetricKind) -> bool {
        self.selection.reads(name, kind)
    }

    fn on_samples(&mut self, samples: Vec<Sample>) -> Result<Vec<Sample>, String> {
        PointFeed::default().call(self, samples)
    }

    /// Folds each point into its series' average and writes the `_ewma` point.
    fn on_points(&mut self, points: Points<'_>, out: &mut CollectOutput) -> Result<(), String> {
        self.series.start(&points);
        let alpha = self.alpha;
        for p in points.iter().filter(|p| p.value.is_finite()) {
            let mut new = false;
            let slot = self.series.slot(
                &p,
                || series::key(p.name, p.labels),
                || {
                    new = true;
                    Average::new(p.name, p.labels, p.value)
                },
            );
            let avg = self.series.get_mut(slot);
            if !new {
                avg.value = alpha * p.value + (1.0 - alpha) * avg.value;
            }
            if let Some(id) = avg.output() {
                out.point(id, avg.value, p.timestamp_ms);
            }
        }
        Ok(())
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
        let averages = |m: &Ewma| -> Vec<(String, f64)> {
            let all = m.series.sorted();
            all.into_iter()
                .map(|(k, a)| (k.to_string(), a.value))
                .collect()
        };
        assert_eq!(averages(&q), averages(&p));
        assert!(
            p.on_samples(vec![Sample::gauge("cpu_ewma", 1.0)])
                .unwrap()
                .is_empty()
        );
        assert!(Ewma::init(&Config::from_pairs(&[("alpha", "0")])).is_err());
        assert!(Ewma::init(&Config::from_pairs(&[("alpha", "1.5")])).is_err());
    }
}
