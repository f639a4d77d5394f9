//! Conversions between the generated WIT types of each contract version and
//! wasmeter's core types. The records they share are the same in every version,
//! so one macro writes the modules.

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
                name: s.name.into(),
                labels: s
                    .labels
                    .into_iter()
                    .map(|l| Label {
                        name: l.name.into(),
                        value: l.value.into(),
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

        /// A series key's labels, sorted by name.
        pub(crate) fn labels_to_wit(key: &wasmeter_core::series_key::SeriesKey) -> Vec<wit::Label> {
            key.labels()
                .map(|(name, value)| wit::Label {
                    name: name.to_string(),
                    value: value.to_string(),
                })
                .collect()
        }

        pub(crate) fn kind_to_wit(kind: MetricKind) -> wit::MetricKind {
            match kind {
                MetricKind::Gauge => wit::MetricKind::Gauge,
                MetricKind::Counter => wit::MetricKind::Counter,
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

        pub(crate) fn value_to_wit(value: &FieldValue) -> wit::FieldValue {
            match value {
                FieldValue::Number(n) => wit::FieldValue::Number(*n),
                FieldValue::Text(t) => wit::FieldValue::Text(t.clone()),
                FieldValue::Flag(b) => wit::FieldValue::Flag(*b),
            }
        }

        pub(crate) fn field_to_wit(name: &str, value: &FieldValue) -> wit::Field {
            wit::Field {
                name: name.to_string(),
                value: value_to_wit(value),
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

/// The whole samples a derive call takes and gives before 0.4.0.
macro_rules! whole_samples {
    () => {
        /// Converts guest samples, stamping those with timestamp 0 with the current time.
        pub(crate) fn samples_from_wit(samples: Vec<wit::Sample>) -> Vec<Sample> {
            let now = unix_now_ms();
            samples
                .into_iter()
                .map(|s| sample_from_wit(s, now))
                .collect()
        }

        /// The samples of `batch`, whole, straight from its series keys.
        pub(crate) fn batch_to_samples(
            batch: &wasmeter_core::sample_batch::SampleBatch,
        ) -> Vec<wit::Sample> {
            batch
                .points()
                .iter()
                .map(|p| {
                    let series = batch.series_of(p);
                    wit::Sample {
                        name: series.key.name().to_string(),
                        labels: labels_to_wit(&series.key),
                        value: p.value,
                        kind: kind_to_wit(series.kind),
                        timestamp_ms: p.timestamp_ms,
                    }
                })
                .collect()
        }
    };
}

/// The self-description of an earlier contract version in the current one's
/// type (the same record).
macro_rules! earlier_info {
    ($name:ident) => {
        /// A self-description of this version in the current contract's type.
        pub(crate) fn $name(i: wit::PluginInfo) -> crate::bindings::types::PluginInfo {
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
    };
}

/// Stream events (since 0.2.0).
macro_rules! stream_events {
    () => {
        /// A stream event as a core topic write.
        pub(crate) fn event_from_wit(e: wit::StreamEvent) -> TopicUpdate {
            TopicUpdate {
                topic: e.topic,
                fields: e.fields.into_iter().map(field_from_wit).collect(),
            }
        }
    };
}

/// A 0.1.0 or 0.2.0 collector's output (only whole samples); `$events` takes
/// the stream events out of it.
macro_rules! collector_output {
    ($version:ident, |$out:ident| $events:expr) => {
        /// A collector's output.
        pub(crate) fn output_from_wit(
            $out: crate::bindings::$version::collector::exports::wasmeter::plugin::collect::CollectOutput,
        ) -> wasmeter_core::update::CollectOutput {
            wasmeter_core::update::CollectOutput {
                samples: samples_from_wit($out.samples),
                updates: $out.updates.into_iter().map(update_from_wit).collect(),
                events: $events,
                errors: $out.errors.into_iter().map(record_error_from_wit).collect(),
                points: Default::default(),
            }
        }
    };
}

/// Contract 0.1.0.
pub(crate) mod v1 {
    conversions!(crate::bindings::v1::types);
    whole_samples!();
    earlier_info!(info_from_v1);

    collector_output!(v1, |out| Vec::new());
}

/// Contract 0.2.0.
pub(crate) mod v2 {
    conversions!(crate::bindings::v2::types);
    whole_samples!();
    earlier_info!(info_from_v2);
    stream_events!();

    collector_output!(v2, |out| out
        .events
        .into_iter()
        .map(event_from_wit)
        .collect());
}

/// The output of a collector that may declare series (since 0.3.0); `$series`
/// is the version's `series` record.
macro_rules! declared_output {
    ($version:ident, $series:ty) => {
        use wasmeter_core::sample_batch::SampleBatch;
        use wasmeter_core::update::CollectOutput;
        use wasmeter_core::validate::{OutputError, OutputLimits};

        use crate::bindings::$version::collector::exports::wasmeter::plugin::collect as wire;
        use crate::kinds::series::{DeclaredSeries, Point};

        pub(crate) fn series_from_wit(s: $series) -> Sample {
            sample_from_wit(
                wit::Sample {
                    name: s.name,
                    labels: s.labels,
                    value: 0.0,
                    kind: s.kind,
                    timestamp_ms: 0,
                },
                0,
            )
        }

        /// A collector's output: its declarations go into `declared` first (whatever
        /// follows: the guest counts them as made), then its whole samples are
        /// converted (the output, still to be checked) and the samples of its points
        /// (checked here: their series were checked when declared). The count of
        /// samples and points is checked before either is converted.
        pub(crate) fn output_from_wit(
            out: wire::CollectOutput,
            declared: &mut DeclaredSeries,
            limits: &OutputLimits,
        ) -> Result<CollectOutput, OutputError> {
            declared.declare(
                out.series_reset,
                out.series.into_iter().map(series_from_wit),
                limits,
            );
            let (whole, points) = (out.samples.len(), out.points.len());
            if whole + points > limits.max_samples {
                let item = match points {
                    0 => format!("{whole} samples"),
                    _ => format!("{whole} samples and {points} points"),
                };
                return Err(OutputError {
                    item,
                    problem: format!("more than the limit of {} per call", limits.max_samples),
                });
            }
            let now = unix_now_ms();
            let mut from_points = SampleBatch::new();
            from_points.reserve(out.points.len());
            let points = out.points.into_iter().map(|p| Point {
                series: p.series,
                value: p.value,
                timestamp_ms: p.timestamp_ms,
            });
            declared.points_into(points, now, &mut from_points)?;
            Ok(CollectOutput {
                samples: out
                    .samples
                    .into_iter()
                    .map(|s| sample_from_wit(s, now))
                    .collect(),
                updates: out.updates.into_iter().map(update_from_wit).collect(),
                events: out.events.into_iter().map(event_from_wit).collect(),
                errors: out.errors.into_iter().map(record_error_from_wit).collect(),
                points: from_points,
            })
        }
    };
}

/// Contract 0.3.0.
pub(crate) mod v3 {
    conversions!(crate::bindings::v3::types);
    whole_samples!();
    earlier_info!(info_from_v3);
    stream_events!();

    declared_output!(
        v3,
        crate::bindings::v3::collector::exports::wasmeter::plugin::collect::Series
    );
}

/// Contract 0.4.0, the current one.
pub(crate) mod v4 {
    conversions!(crate::bindings::v4::types);
    stream_events!();

    declared_output!(v4, wit::Series);

    use crate::bindings::v4::delta::exports::wasmeter::plugin::diff::{IndexedField, TopicChange};
    use crate::kinds::delta::TopicDiff;
    use crate::kinds::given::GivenBatch;

    /// Field numbers by name, for one call.
    type Numbers<'a> = std::collections::HashMap<&'a str, u32, foldhash::fast::RandomState>;

    /// A batch of topic changes with every field name once: the names, then
    /// the changes whose fields refer to them.
    pub(crate) fn changes_to_wit<'a>(changes: &[TopicDiff<'a>]) -> (Vec<String>, Vec<TopicChange>) {
        let mut names = Vec::new();
        let mut numbers = Numbers::default();
        let input = changes
            .iter()
            .map(|c| TopicChange {
                topic: c.topic.to_string(),
                previous: indexed(c.previous, &mut names, &mut numbers),
                current: indexed(c.current, &mut names, &mut numbers),
            })
            .collect();
        (names, input)
    }

    /// `state`'s fields by the number of their names, numbering new names.
    fn indexed<'a>(
        state: &'a TopicState,
        names: &mut Vec<String>,
        numbers: &mut Numbers<'a>,
    ) -> Vec<IndexedField> {
        state
            .iter()
            .map(|(name, value)| IndexedField {
                name: *numbers.entry(name.as_str()).or_insert_with(|| {
                    names.push(name.clone());
                    names.len() as u32 - 1
                }),
                value: value_to_wit(value),
            })
            .collect()
    }

    /// A point of a derive call's input.
    pub(crate) fn point_to_wit(series: u32, value: f64, timestamp_ms: i64) -> wit::Point {
        wit::Point {
            series,
            value,
            timestamp_ms,
        }
    }

    /// A derive call's input in the instance's numbering.
    pub(crate) fn batch_to_wit(given: GivenBatch<'_, wit::Point>) -> wit::SampleBatch {
        wit::SampleBatch {
            series_reset: given.reset,
            series: given
                .series
                .into_iter()
                .map(|(key, kind)| wit::Series {
                    name: key.name().to_string(),
                    labels: labels_to_wit(key),
                    kind: kind_to_wit(kind),
                })
                .collect(),
            points: given.points,
        }
    }

    /// A derive call's output: its declarations go into `declared` first
    /// (whatever follows: the guest counts them as made), then its points
    /// become samples of `SampleBatch` (checked: their series were checked when
    /// declared). The count of points is checked before any is converted.
    pub(crate) fn batch_from_wit(
        out: wit::SampleBatch,
        declared: &mut DeclaredSeries,
        limits: &OutputLimits,
    ) -> Result<SampleBatch, OutputError> {
        declared.declare(
            out.series_reset,
            out.series.into_iter().map(series_from_wit),
            limits,
        );
        if out.points.len() > limits.max_samples {
            return Err(OutputError {
                item: format!("{} points", out.points.len()),
                problem: format!("more than the limit of {} per call", limits.max_samples),
            });
        }
        let mut batch = SampleBatch::new();
        batch.reserve(out.points.len());
        let points = out.points.into_iter().map(|p| Point {
            series: p.series,
            value: p.value,
            timestamp_ms: p.timestamp_ms,
        });
        declared.points_into(points, unix_now_ms(), &mut batch)?;
        Ok(batch)
    }
}

#[cfg(test)]
mod tests {
    use wasmeter_core::field::{FieldValue, TopicState};

    use super::v4;
    use crate::bindings::v4::delta::exports::wasmeter::plugin::diff::IndexedField;
    use crate::kinds::delta::TopicDiff;

    fn state(fields: &[(&str, f64)]) -> TopicState {
        fields
            .iter()
            .map(|(k, v)| (k.to_string(), FieldValue::Number(*v)))
            .collect()
    }

    #[test]
    fn a_batch_of_topic_changes_names_each_field_once() {
        let (a0, a1) = (
            state(&[("price", 1.0), ("qty", 2.0)]),
            state(&[("price", 3.0), ("qty", 2.0)]),
        );
        let (b0, b1) = (state(&[]), state(&[("count", 1.0), ("price", 4.0)]));
        let changes = [
            TopicDiff {
                topic: "t/A",
                previous: &a0,
                current: &a1,
            },
            TopicDiff {
                topic: "t/B",
                previous: &b0,
                current: &b1,
            },
        ];
        let (names, input) = v4::changes_to_wit(&changes);
        assert_eq!(names, ["price", "qty", "count"]);
        let named = |fields: &[IndexedField]| -> Vec<(String, f64)> {
            fields
                .iter()
                .map(|f| match f.value {
                    crate::bindings::v4::types::FieldValue::Number(n) => {
                        (names[f.name as usize].clone(), n)
                    }
                    _ => unreachable!(),
                })
                .collect()
        };
        assert_eq!(input[1].topic, "t/B");
        assert!(input[1].previous.is_empty());
        assert_eq!(
            named(&input[1].current),
            [("count".to_string(), 1.0), ("price".to_string(), 4.0)],
            "sorted by name, as the states are"
        );
        assert_eq!(
            named(&input[0].previous),
            [("price".to_string(), 1.0), ("qty".to_string(), 2.0)]
        );
        assert_eq!(
            named(&input[0].current),
            [("price".to_string(), 3.0), ("qty".to_string(), 2.0)]
        );
    }
}
