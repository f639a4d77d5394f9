//! One measurement: `name{labels} value @ timestamp`.

use serde::{Deserialize, Serialize};

/// How a sample's value behaves over time (Prometheus semantics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricKind {
    /// A value that can go up and down.
    Gauge,
    /// A monotonically increasing total.
    Counter,
}

/// One label of a sample, e.g. `symbol="BTC-USD"`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Label {
    /// Label name.
    pub name: String,
    /// Label value.
    pub value: String,
}

impl Label {
    /// Builds a label from anything string-like.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// One measurement produced by a collector or a derived-metric plugin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`).
    pub name: String,
    /// Labels identifying the series within the metric.
    pub labels: Vec<Label>,
    /// The value; always finite once validated.
    pub value: f64,
    /// Gauge or counter.
    pub kind: MetricKind,
    /// Unix time in milliseconds; 0 until the host stamps it.
    pub timestamp_ms: i64,
}

impl Sample {
    /// The label value for `name`, if the sample has that label.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|l| l.name == name)
            .map(|l| l.value.as_str())
    }
}
