//! Samples as topics: every series `name{labels}` is published on the topic
//! `metrics/<name>/<label values...>` (label values in label-name order), with the
//! fields `value` and `ts`. So `metrics/trade_vwap/*` is the VWAP of every symbol.

use wasmeter_core::field::FieldValue;
use wasmeter_core::sample::Sample;

/// The topic prefix of sample series.
pub const METRICS_PREFIX: &str = "metrics";

/// The topic a sample's series is published on.
pub fn series_topic(sample: &Sample) -> String {
    let mut topic = format!("{METRICS_PREFIX}/{}", sample.name.replace(':', "_"));
    let mut labels: Vec<_> = sample.labels.iter().collect();
    labels.sort_by(|a, b| a.name.cmp(&b.name));
    for label in labels {
        topic.push('/');
        if label.value.is_empty() {
            topic.push('_');
        }
        topic.extend(label.value.chars().map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-') {
                c
            } else {
                '_'
            }
        }));
    }
    topic
}

/// The fields a sample sets on its series topic.
pub fn series_fields(sample: &Sample) -> [(String, FieldValue); 2] {
    [
        ("value".to_string(), FieldValue::Number(sample.value)),
        (
            "ts".to_string(),
            FieldValue::Number(sample.timestamp_ms as f64),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmeter_core::sample::{Label, MetricKind};
    use wasmeter_core::validate::is_topic_name;

    #[test]
    fn topics_are_valid_and_ordered_by_label_name() {
        let s = Sample {
            name: "ns:trade_vwap".into(),
            labels: vec![
                Label::new("venue", "x y"),
                Label::new("symbol", "BTC/USD"),
                Label::new("e", ""),
            ],
            value: 1.0,
            kind: MetricKind::Gauge,
            timestamp_ms: 7,
        };
        let topic = series_topic(&s);
        assert_eq!(topic, "metrics/ns_trade_vwap/_/BTC_USD/x_y");
        assert!(is_topic_name(&topic));
    }
}
