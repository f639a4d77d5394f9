//! Conversions between the generated WIT types of each contract version and
//! wasmeter's core types. The records they share are the same in 0.1.0 and 0.2.0,
//! so one macro writes both modules.

/// Conversions for the types module `$wit` of one contract version.
macro_rules! conversions {
    ($wit:path) => {
        use wasmeter_core::field::{Field, FieldValue, TopicState};
        use wasmeter_core::sample::{Label, MetricKind, Sample};
        use wasmeter_core::update::{RecordError, TopicUpdate};

        use crate::sandbox::unix_now_ms;
        use $wit as wit;

        pub(crate) fn sample_from_wit(s: wit::Sample, now_ms: i64) -> Sample {
            Sample {
                name: s.name,
                labels: s
                    .labels
                    .into_iter()
                    .map(|l| Label {
                        name: l.name,
                        value: l.value,
                    })
                    .collect(),
                value: s.value,
                kind: match s.kind {
                    wit::MetricKind::Gauge => MetricKind::Gauge,
                    wit::MetricKind::Counter => MetricKind::Counter,
                },
                timestamp_ms: if s.timestamp_ms == 0 {
                    now_ms
                } else {
                    s.timestamp_ms
                },
            }
        }

        /// Converts guest samples, stamping those with timestamp 0 with the current time.
        pub(crate) fn samples_from_wit(samples: Vec<wit::Sample>) -> Vec<Sample> {
            let now = unix_now_ms();
            samples
                .into_iter()
                .map(|s| sample_from_wit(s, now))
                .collect()
        }

        pub(crate) fn sample_to_wit(s: &Sample) -> wit::Sample {
            wit::Sample {
                name: s.name.clone(),
                labels: s
                    .labels
                    .iter()
                    .map(|l| wit::Label {
                        name: l.name.clone(),
                        value: l.value.clone(),
                    })
                    .collect(),
                value: s.value,
                kind: match s.kind {
                    MetricKind::Gauge => wit::MetricKind::Gauge,
                    MetricKind::Counter => wit::MetricKind::Counter,
                },
                timestamp_ms: s.timestamp_ms,
            }
        }

        pub(crate) fn field_from_wit(f: wit::Field) -> Field {
            let value = match f.value {
                wit::FieldValue::Number(n) => FieldValue::Number(n),
                wit::FieldValue::Text(t) => FieldValue::Text(t),
                wit::FieldValue::Flag(b) => FieldValue::Flag(b),
            };
            (f.name, value)
        }

        pub(crate) fn field_to_wit(name: &str, value: &FieldValue) -> wit::Field {
            wit::Field {
                name: name.to_string(),
                value: match value {
                    FieldValue::Number(n) => wit::FieldValue::Number(*n),
                    FieldValue::Text(t) => wit::FieldValue::Text(t.clone()),
                    FieldValue::Flag(b) => wit::FieldValue::Flag(*b),
                },
            }
        }

        /// A topic state as the sorted field list plugins receive.
        pub(crate) fn state_to_wit(state: &TopicState) -> Vec<wit::Field> {
            state.iter().map(|(k, v)| field_to_wit(k, v)).collect()
        }

        pub(crate) fn update_from_wit(u: wit::TopicUpdate) -> TopicUpdate {
            TopicUpdate {
                topic: u.topic,
                fields: u.fields.into_iter().map(field_from_wit).collect(),
            }
        }

        pub(crate) fn record_error_from_wit(e: wit::RecordError) -> RecordError {
            RecordError {
                line: e.line,
                offset: e.offset,
                message: e.message,
            }
        }
    };
}

/// Contract 0.1.0.
pub(crate) mod v1 {
    conversions!(crate::bindings::v1::types);

    /// A 0.1.0 self-description in the current contract's type (the same record).
    pub(crate) fn info_from_v1(i: wit::PluginInfo) -> crate::bindings::types::PluginInfo {
        use crate::bindings::types::PluginKind as K;
        crate::bindings::types::PluginInfo {
            name: i.name,
            version: i.version,
            kind: match i.kind {
                wit::PluginKind::Collector => K::Collector,
                wit::PluginKind::Delta => K::Delta,
                wit::PluginKind::Metric => K::Metric,
            },
            description: i.description,
            emits: i.emits,
            stateful: i.stateful,
        }
    }
}

/// Contract 0.2.0.
pub(crate) mod v2 {
    conversions!(crate::bindings::v2::types);

    /// A stream event as a core topic write.
    pub(crate) fn event_from_wit(e: wit::StreamEvent) -> TopicUpdate {
        TopicUpdate {
            topic: e.topic,
            fields: e.fields.into_iter().map(field_from_wit).collect(),
        }
    }
}
