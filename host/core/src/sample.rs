//! One measurement: `name{labels} value @ timestamp`, and the topic its series is
//! published on: `metrics/<name>/<label values...>` (label values in label-name
//! order), so `metrics/trade_vwap/*` is the VWAP of every symbol.

use serde::{Deserialize, Serialize};

/// The string type of sample names and labels: up to 24 bytes held inline, so
/// that a sample of a trade feed allocates its label vector only.
pub use compact_str::CompactString;

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
    pub name: CompactString,
    /// Label value.
    pub value: CompactString,
}

impl Label {
    /// Builds a label from anything string-like.
    pub fn new(name: impl Into<CompactString>, value: impl Into<CompactString>) -> Self {
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
    pub name: CompactString,
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

/// The topic prefix of sample series.
pub const METRICS_PREFIX: &str = "metrics";

/// Whether a label value's character is kept as is in a series topic.
fn kept_in_topic(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-')
}

/// Appends `value` as a series topic segment: every character that may not be
/// in a topic becomes `_`, one byte each; an empty value becomes `_`.
fn push_segment(topic: &mut String, value: &str) {
    if value.is_empty() {
        topic.push('_');
    } else if value.bytes().all(|b| kept_in_topic(b as char)) {
        topic.push_str(value);
    } else {
        topic.extend(
            value
                .chars()
                .map(|c| if kept_in_topic(c) { c } else { '_' }),
        );
    }
}

/// The topic a sample's series is published on.
pub fn series_topic(sample: &Sample) -> String {
    let mut topic = String::with_capacity(series_topic_len(sample));
    write_series_topic(sample, &mut topic, &mut Vec::new());
    topic
}

/// [`series_topic`] into `topic` (cleared first), with `order` as scratch for
/// the label order (both buffers can be reused). The data path writes a
/// series' topic from its key ([`crate::series_key::SeriesKey::write_topic`]).
pub fn write_series_topic(sample: &Sample, topic: &mut String, order: &mut Vec<usize>) {
    order.clear();
    order.extend(0..sample.labels.len());
    order.sort_by(|&a, &b| sample.labels[a].name.cmp(&sample.labels[b].name));
    let values = order.iter().map(|&i| sample.labels[i].value.as_str());
    write_topic_of(&sample.name, values, topic);
}

/// The series topic of metric `name` whose label values, in label-name order,
/// are `values`, into `topic` (cleared first).
pub fn write_topic_of<'a>(name: &str, values: impl Iterator<Item = &'a str>, topic: &mut String) {
    topic.clear();
    topic.push_str(METRICS_PREFIX);
    topic.push('/');
    if name.contains(':') {
        topic.extend(name.chars().map(|c| if c == ':' { '_' } else { c }));
    } else {
        topic.push_str(name);
    }
    for value in values {
        topic.push('/');
        push_segment(topic, value);
    }
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

    #[test]
    fn series_topics_written_into_reused_buffers_are_built_afresh() {
        let (mut topic, mut order) = (String::new(), Vec::new());
        let wide = sample(
            "ns:trade_vwap",
            vec![
                Label::new("venue", "x y"),
                Label::new("symbol", "BTC-USD"),
                Label::new("e", "\u{e9}t\u{e9}"),
            ],
        );
        write_series_topic(&wide, &mut topic, &mut order);
        assert_eq!(topic, "metrics/ns_trade_vwap/_t_/BTC-USD/x_y");
        let narrow = sample("trade_price", vec![Label::new("symbol", "ETH")]);
        write_series_topic(&narrow, &mut topic, &mut order);
        assert_eq!(topic, "metrics/trade_price/ETH");
        assert_eq!(topic, series_topic(&narrow));
    }
}
