//! Samples as topics: every series is published on its topic
//! ([`series_topic`]) with the fields `value` and `ts`.

use std::collections::BTreeMap;

use wasmeter_core::field::FieldValue;

pub use wasmeter_core::sample::{METRICS_PREFIX, series_topic};

/// What a sample sets on its series topic: its value and time. Carried as two
/// numbers until the topic is committed, so that a sample costs no field names.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct SeriesPoint {
    /// The sample's value.
    pub value: f64,
    /// The sample's time, Unix milliseconds.
    pub timestamp_ms: i64,
}

impl SeriesPoint {
    /// The fields it sets, in field order.
    pub fn fields(self) -> [(String, FieldValue); 2] {
        [
            (
                "ts".to_string(),
                FieldValue::Number(self.timestamp_ms as f64),
            ),
            ("value".to_string(), FieldValue::Number(self.value)),
        ]
    }

    /// The fields it sets, as a topic's new values.
    pub fn into_map(self) -> BTreeMap<String, FieldValue> {
        self.fields().into_iter().collect()
    }
}
