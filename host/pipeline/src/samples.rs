//! Samples as topics: every series is published on its topic
//! ([`series_topic`]) with the fields `value` and `ts`.

use wasmeter_core::field::FieldValue;
use wasmeter_core::sample::Sample;

pub use wasmeter_core::sample::{METRICS_PREFIX, series_topic};

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
