//! One measurement: `name{labels} value @ timestamp`, and the topic its series is
//! published on: `metrics/<name>/<label values...>` (label values in label-name
//! order), so `metrics/trade_vwap/*` is the VWAP of every symbol.

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

/// The sample's labels sorted by name (then value), into `sorted` (a buffer
/// reused between samples): the series' identity whatever order the labels
/// came in.
pub fn sort_labels<'a>(sample: &'a Sample, sorted: &mut Vec<&'a Label>) {
    sorted.clear();
    sorted.extend(sample.labels.iter());
    sorted.sort_by(|a, b| (&a.name, &a.value).cmp(&(&b.name, &b.value)));
}

/// The topic prefix of sample series.
pub const METRICS_PREFIX: &str = "metrics";

/// The character a label value's character becomes in a series topic.
fn topic_char(c: char) -> char {
    if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-') {
        c
    } else {
        '_'
    }
}

fn sorted_labels(sample: &Sample) -> Vec<&Label> {
    let mut labels: Vec<_> = sample.labels.iter().collect();
    labels.sort_by(|a, b| a.name.cmp(&b.name));
    labels
}

/// The topic a sample's series is published on.
pub fn series_topic(sample: &Sample) -> String {
    let mut topic = String::with_capacity(series_topic_len(sample));
    topic.push_str(METRICS_PREFIX);
    topic.push('/');
    topic.extend(sample.name.chars().map(|c| if c == ':' { '_' } else { c }));
    for label in sorted_labels(sample) {
        topic.push('/');
        if label.value.is_empty() {
            topic.push('_');
        }
        topic.extend(label.value.chars().map(topic_char));
    }
    topic
}

/// The length in bytes of [`series_topic`], without building it: every character
/// of a label value becomes one byte of the topic.
pub fn series_topic_len(sample: &Sample) -> usize {
    METRICS_PREFIX.len()
        + 1
        + sample.name.len()
        + sample
            .labels
            .iter()
            .map(|l| 1 + l.value.chars().count().max(1))
            .sum::<usize>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::is_topic_name;

    fn sample(name: &str, labels: Vec<Label>) -> Sample {
        Sample {
            name: name.into(),
            labels,
            value: 1.0,
            kind: MetricKind::Gauge,
            timestamp_ms: 7,
        }
    }

    #[test]
    fn series_topics_are_valid_and_ordered_by_label_name() {
        let s = sample(
            "ns:trade_vwap",
            vec![
                Label::new("venue", "x y"),
                Label::new("symbol", "BTC/USD"),
                Label::new("e", ""),
            ],
        );
        let topic = series_topic(&s);
        assert_eq!(topic, "metrics/ns_trade_vwap/_/BTC_USD/x_y");
        assert!(is_topic_name(&topic));
    }

    #[test]
    fn series_topic_len_is_the_built_length() {
        for s in [
            sample("a", vec![]),
            sample("b", vec![Label::new("x", "")]),
            sample(
                "c:d",
                vec![Label::new("x", "héllo wörld"), Label::new("y", "€")],
            ),
        ] {
            assert_eq!(series_topic_len(&s), series_topic(&s).len(), "{s:?}");
        }
    }
}
