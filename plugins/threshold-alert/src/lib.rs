//! # threshold-alert: alert when a metric crosses a threshold (world `metric`)
//!
//! ## Config
//!
//! | key           | default    | meaning                                                |
//! |---------------|------------|--------------------------------------------------------|
//! | `metric`      | (required) | metric name to watch                                   |
//! | `op`          | (required) | one of `>`, `>=`, `<`, `<=`, `==`, `!=`                |
//! | `threshold`   | (required) | finite number compared with each sample's value        |
//! | `for_samples` | `3`        | consecutive samples the condition must hold, `>= 1`    |
//! | `name`        | `alert`    | value of the `alert` label                             |
//!
//! ## Output
//!
//! Per series of `metric` (its labels, in any order): the alert fires when
//! `value <op> threshold` holds for `for_samples` consecutive samples, and clears on the
//! first sample where it does not. The gauge
//! `alert_state{alert="<name>",metric="<metric>",<series labels...>}` = 1 (firing) or 0 is
//! emitted whenever the state changes (stamped like the sample), and for every known series
//! on each tick (stamped `now`). A series starts not firing and is known from its first
//! sample. Series labels named `alert` or `metric` are dropped from the output.
//!
//! State: consecutive count and firing state of every series.

use std::collections::BTreeMap;

use wasmeter_sdk::series::{self, is_valid_metric_name};
use wasmeter_sdk::state::{StateReader, StateWriter};
use wasmeter_sdk::{Config, Label, Metric, MetricKind, Plugin, PluginInfo, Sample};

const STATE_SCHEMA: &str = "threshold-alert";

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `==`
    Eq,
    /// `!=`
    Ne,
}

impl Op {
    fn parse(text: &str) -> Result<Op, String> {
        Ok(match text.trim() {
            ">" => Op::Gt,
            ">=" => Op::Ge,
            "<" => Op::Lt,
            "<=" => Op::Le,
            "==" => Op::Eq,
            "!=" => Op::Ne,
            other => {
                return Err(format!(
                    "config `op`: `{other}` is not one of > >= < <= == !="
                ));
            }
        })
    }

    fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Op::Gt => value > threshold,
            Op::Ge => value >= threshold,
            Op::Lt => value < threshold,
            Op::Le => value <= threshold,
            Op::Eq => value == threshold,
            Op::Ne => value != threshold,
        }
    }
}

/// The alert state of one series.
#[derive(Debug, Clone, PartialEq)]
struct SeriesState {
    labels: Vec<Label>,
    consecutive: u64,
    firing: bool,
}

/// The plugin: the rule and the state per series.
#[derive(Debug)]
pub struct ThresholdAlert {
    metric: String,
    op: Op,
    threshold: f64,
    for_samples: u64,
    name: String,
    series: BTreeMap<String, SeriesState>,
}

impl ThresholdAlert {
    fn sample(&self, state: &SeriesState, ts: i64) -> Sample {
        let mut labels = vec![
            Label::new("alert", self.name.clone()),
            Label::new("metric", self.metric.clone()),
        ];
        labels.extend(
            state
                .labels
                .iter()
                .filter(|l| l.name != "alert" && l.name != "metric")
                .cloned(),
        );
        Sample::gauge("alert_state", if state.firing { 1.0 } else { 0.0 })
            .with_labels(labels)
            .at(ts)
    }
}

impl Plugin for ThresholdAlert {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "threshold-alert",
            env!("CARGO_PKG_VERSION"),
            "Fires when a metric crosses a threshold for N consecutive samples",
        )
        .emits(["alert_state"])
        .stateful(true)
    }

    fn init(config: &Config) -> Result<Self, String> {
        let metric = config.require("metric")?.trim().to_string();
        if !is_valid_metric_name(&metric) {
            return Err(format!(
                "config `metric`: `{metric}` is not a valid metric name"
            ));
        }
        let op = Op::parse(config.require("op")?)?;
        let threshold = config.parse_checked(
            "threshold",
            None,
            |t: &f64| t.is_finite(),
            "a finite number",
        )?;
        let for_samples = config.parse_checked("for_samples", Some(3u64), |n| *n >= 1, ">= 1")?;
        Ok(ThresholdAlert {
            metric,
            op,
            threshold,
            for_samples,
            name: config.get_or("name", "alert").to_string(),
            series: BTreeMap::new(),
        })
    }

    fn export_state(&self) -> Option<Vec<u8>> {
        let mut w = StateWriter::new(STATE_SCHEMA, 1);
        w.count(self.series.len());
        for s in self.series.values() {
            w.labels(&s.labels).u64(s.consecutive).bool(s.firing);
        }
        Some(w.finish())
    }

    fn import_state(&mut self, state: &[u8]) -> Result<(), String> {
        let mut r = StateReader::new(state, STATE_SCHEMA)?;
        let mut map = BTreeMap::new();
        for _ in 0..r.count()? {
            let s = SeriesState {
                labels: r.labels()?,
                consecutive: r.u64()?,
                firing: r.bool()?,
            };
            map.insert(series::key("", &s.labels), s);
        }
        r.finish()?;
        self.series = map;
        Ok(())
    }
}

impl Metric for ThresholdAlert {
    fn reads(&self, name: &str, _kind: MetricKind) -> bool {
        name == self.metric
    }

    fn on_samples(&mut self, samples: Vec<Sample>) -> Result<Vec<Sample>, String> {
        let mut out = Vec::new();
        for sample in samples {
            if sample.name != self.metric || !sample.value.is_finite() {
                continue;
            }
            let holds = self.op.holds(sample.value, self.threshold);
            let state = self
                .series
                .entry(series::key("", &sample.labels))
                .or_insert_with(|| SeriesState {
                    labels: sample.labels.clone(),
                    consecutive: 0,
                    firing: false,
                });
            let was_firing = state.firing;
            if holds {
                state.consecutive = state.consecutive.saturating_add(1);
                state.firing = state.firing || state.consecutive >= self.for_samples;
            } else {
                state.consecutive = 0;
                state.firing = false;
            }
            if state.firing != was_firing {
                let state = state.clone();
                out.push(self.sample(&state, sample.timestamp_ms));
            }
        }
        Ok(out)
    }

    fn on_tick(&mut self, now_ms: i64) -> Result<Vec<Sample>, String> {
        Ok(self
            .series
            .values()
            .map(|state| self.sample(state, now_ms))
            .collect())
    }
}

wasmeter_sdk::export_metric!(ThresholdAlert);

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &[(&str, &str)]) -> Config {
        let mut pairs = vec![("metric", "cpu"), ("op", ">"), ("threshold", "90")];
        pairs.extend_from_slice(extra);
        Config::from_pairs(&pairs)
    }

    #[test]
    fn fires_after_n_and_clears() {
        let mut p = ThresholdAlert::init(&config(&[("name", "hot")])).unwrap();
        let s = |v: f64| Sample::gauge("cpu", v).with_label("host", "a").at(1);
        assert!(p.on_samples(vec![s(95.0), s(96.0)]).unwrap().is_empty());
        let out = p.on_samples(vec![s(97.0), s(98.0)]).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].name, "alert_state");
        assert_eq!(out[0].value, 1.0);
        assert_eq!(out[0].label("alert"), Some("hot"));
        assert_eq!(out[0].label("metric"), Some("cpu"));
        assert_eq!(out[0].label("host"), Some("a"));
        let out = p.on_samples(vec![s(10.0)]).unwrap();
        assert_eq!(out[0].value, 0.0);
        let ticks = p.on_tick(5).unwrap();
        assert_eq!(
            (ticks.len(), ticks[0].value, ticks[0].timestamp_ms),
            (1, 0.0, 5)
        );
        let mut q = ThresholdAlert::init(&config(&[])).unwrap();
        q.import_state(&p.export_state().unwrap()).unwrap();
        assert_eq!(q.series, p.series);
    }

    #[test]
    fn config_errors() {
        assert!(
            ThresholdAlert::init(&Config::default())
                .unwrap_err()
                .contains("`metric`")
        );
        assert!(
            ThresholdAlert::init(&config(&[("op", "=>")]))
                .unwrap_err()
                .contains("`op`")
        );
        assert!(ThresholdAlert::init(&config(&[("threshold", "NaN")])).is_err());
        assert!(ThresholdAlert::init(&config(&[("for_samples", "0")])).is_err());
        let one = ThresholdAlert::init(&config(&[("for_samples", "1"), ("op", "<=")]));
        assert_eq!(one.unwrap().op, Op::Le);
    }
}
