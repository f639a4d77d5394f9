//! One batch of plugin output on its way to the topic state: every item is
//! admitted first (ownership, quotas; see [`footprint`](crate::footprint)), then
//! the batch is coalesced per topic and published.

use std::collections::BTreeMap;
use std::sync::Arc;

use wasmeter_core::field::{Field, FieldValue};
use wasmeter_core::sample::{Label, Sample};
use wasmeter_core::sample_batch::SampleBatch;
use wasmeter_core::series_key::SeriesKey;
use wasmeter_core::update::TopicUpdate;

use crate::calls::PluginCalls;
use crate::footprint::{Footprints, Refusal, TopicKind};
use crate::samples::SeriesPoint;
use crate::stats::PipelineStats;

/// What a batch writes to one topic.
#[derive(Debug)]
pub(crate) enum Written {
    /// Field values, in order: a field written twice appears twice. Kept as
    /// written until the topic is committed ([`Coalesced::into_fields`]), so
    /// that a large batch holds no map per topic: a chunk of 30,000 records
    /// over 10,000 symbols held 21 MiB of `BTreeMap` nodes at once.
    Fields(Vec<(String, FieldValue)>),
    /// A sample series' newest point.
    Point(SeriesPoint),
}

impl Written {
    /// Adds a later write (later values win).
    fn then(&mut self, later: Written) {
        match (&mut *self, later) {
            (Written::Point(p), Written::Point(q)) => *p = q,
            (Written::Fields(f), Written::Fields(g)) => f.extend(g),
            (Written::Fields(f), Written::Point(q)) => f.extend(q.fields()),
            (Written::Point(p), Written::Fields(g)) => {
                let mut f = p.fields().to_vec();
                f.extend(g);
                *self = Written::Fields(f);
            }
        }
    }

    /// The new value of each field (later writes win).
    pub fn into_fields(self) -> BTreeMap<String, FieldValue> {
        match self {
            Written::Point(p) => p.into_map(),
            Written::Fields(written) => {
                let mut fields = BTreeMap::new();
                for (name, value) in written {
                    fields.insert(name, value);
                }
                fields
            }
        }
    }
}

/// What one item of a batch writes: the topic, whether it is a topic or a
/// series, and the values.
pub(crate) type Write = (Arc<str>, TopicKind, Written);

/// One topic's new values, coalesced over a batch.
pub(crate) struct Coalesced {
    pub topic: Arc<str>,
    pub kind: TopicKind,
    pub written: Written,
}

impl Coalesced {
    /// The new value of each field (later writes win).
    pub fn into_fields(self) -> BTreeMap<String, FieldValue> {
        self.written.into_fields()
    }
}

/// One plugin call's output, before it is admitted.
pub(crate) struct Output {
    /// Whole samples.
    pub samples: Vec<Sample>,
    /// Samples of declared series; they follow `samples`.
    pub points: SampleBatch,
    pub updates: Vec<TopicUpdate>,
    /// Events of stream topics.
    pub events: Vec<TopicUpdate>,
}

impl Output {
    /// A metric plugin's output: samples only.
    pub fn points(points: SampleBatch) -> Self {
        Self {
            samples: Vec::new(),
            points,
            updates: Vec::new(),
            events: Vec::new(),
        }
    }
}

/// Admitted output of one chunk or tick, in the order it was produced.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    /// Every admitted sample: what metric plugins see next, the series store
    /// and the history.
    pub samples: SampleBatch,
    /// Field writes per topic, in order (later values win when coalesced).
    pub writes: Vec<Write>,
    /// Events per stream topic, in order; never coalesced.
    pub events: Vec<(Arc<str>, Vec<Field>)>,
}

impl Batch {
    /// True if nothing is to be published.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty() && self.events.is_empty()
    }

    /// Its topic writes, events and samples.
    pub fn items(&self) -> usize {
        self.writes.len() + self.events.len() + self.samples.len()
    }

    /// Appends a later batch: its writes, events and samples after these.
    pub fn append(&mut self, later: Batch) {
        if self.items() == 0 {
            *self = later;
            return;
        }
        self.samples.extend(&later.samples);
        self.writes.extend(later.writes);
        self.events.extend(later.events);
    }

    /// The writes coalesced per topic, in the order each topic first appeared.
    pub fn coalesced(self) -> Vec<Coalesced> {
        let mut order: Vec<Coalesced> = Vec::new();
        let mut index: foldhash::HashMap<Arc<str>, usize> = foldhash::HashMap::default();
        for (topic, kind, written) in self.writes {
            match index.get(&topic) {
                Some(&at) => order[at].written.then(written),
                None => {
                    index.insert(topic.clone(), order.len());
                    order.push(Coalesced {
                        topic,
                        kind,
                        written,
                    });
                }
            }
        }
        order
    }
}

/// Admits one plugin call's output into `batch`: refused items are dropped,
/// counted and charged to the plugin (a quota quarantines it; a topic it may not
/// write counts as a failed call).
#[allow(
    clippy::too_many_arguments,
    reason = "the pipeline's fields, borrowed apart"
)]
pub(crate) fn admit<P: PluginCalls + ?Sized>(
    footprints: &mut Footprints,
    stats: &PipelineStats,
    labels: &[Label],
    plugin: &mut P,
    output: Output,
    batch: &mut Batch,
) {
    let Output {
        samples,
        points,
        updates,
        events,
    } = output;
    // The call's samples as points of its series: each series is admitted once.
    let call = if samples.is_empty() {
        points
    } else {
        let mut call = SampleBatch::from(&samples[..]);
        call.extend(&points);
        call
    };
    // Room for everything at once: a backlog's chunk brings ~100,000 samples, and
    // growing by doubling copied each vector's contents again and again.
    batch.writes.reserve(updates.len() + call.series().len());
    batch.events.reserve(events.len());
    let limits = plugin.limits();
    let (max_topics, max_series) = (limits.max_topics, limits.max_series);
    let name = plugin.name().to_string();
    let mut refused: Option<(String, Refusal)> = None;
    let mut count = 0u64;
    let mut refuse = |item: String, refusal: Refusal, items: u64| {
        count += items;
        // Keep the first refusal, unless a later one quarantines.
        if refused
            .as_ref()
            .is_none_or(|(_, r)| !r.quarantines() && refusal.quarantines())
        {
            refused = Some((item, refusal));
        }
    };
    for update in updates {
        match footprints.admit(&name, max_topics, &update.topic, TopicKind::Topic) {
            Ok(topic) => {
                batch
                    .writes
                    .push((topic, TopicKind::Topic, Written::Fields(update.fields)))
            }
            Err(refusal) => refuse(format!("topic update `{}`", update.topic), refusal, 1),
        }
    }
    for event in events {
        match footprints.admit(&name, max_topics, &event.topic, TopicKind::Stream) {
            Ok(topic) => batch.events.push((topic, event.fields)),
            Err(refusal) => refuse(format!("stream event `{}`", event.topic), refusal, 1),
        }
    }
    // Each series of the call is admitted once, and its topic written once with
    // its newest point, in the order those came (two series that the pipeline's
    // labels make one: the later point wins); its samples join the batch's as
    // samples of its number there (`None`: refused).
    // Per series of the call: `None` if refused, else the key the pipeline's
    // labels made of it (`Some(None)`: its own).
    let mut kept: Vec<Option<Option<SeriesKey>>> = vec![None; call.series().len()];
    // Points per series of the call, counted if a series is refused.
    let mut points_of: Option<Vec<u64>> = None;
    let mut topic = String::new();
    for newest in call.last_points() {
        let series = call.series_of(&newest);
        let with_labels = series.key.with_labels(labels);
        let key = with_labels.as_ref().unwrap_or(&series.key);
        // A series admitted before by its declared number costs no topic name.
        let admitted = match call.declared_number(newest.series) {
            Some(declared) => {
                let topic = &mut topic;
                footprints.admit_declared(&name, max_series, declared, move || {
                    key.write_topic(topic);
                    topic.as_str()
                })
            }
            None => {
                key.write_topic(&mut topic);
                footprints.admit(&name, max_series, &topic, TopicKind::Series)
            }
        };
        match admitted {
            Ok(topic) => {
                let point = SeriesPoint {
                    value: newest.value,
                    timestamp_ms: newest.timestamp_ms,
                };
                batch
                    .writes
                    .push((topic, TopicKind::Series, Written::Point(point)));
                kept[newest.series as usize] = Some(with_labels);
            }
            Err(refusal) => {
                let points_of = points_of.get_or_insert_with(|| call.points_per_series());
                // Refused: the slow path ran and wrote the topic's name.
                let item = format!("sample `{}` (series `{topic}`)", key.name());
                refuse(item, refusal, points_of[newest.series as usize]);
            }
        }
    }
    if batch.samples.is_empty() && kept.iter().all(|k| matches!(k, Some(None))) {
        // Every series admitted as it came (a collector's output, the first of
        // a batch): the call's samples are the batch's, series and all.
        batch.samples = call;
    } else {
        batch.samples.reserve(call.len());
        let numbers: Vec<Option<u32>> = kept
            .into_iter()
            .zip(call.series())
            .map(|(kept, series)| {
                let key = kept?.unwrap_or_else(|| series.key.clone());
                Some(batch.samples.series_number(&key, series.kind))
            })
            .collect();
        for p in call.points() {
            if let Some(number) = numbers[p.series as usize] {
                batch.samples.push(number, p.value, p.timestamp_ms);
            }
        }
    }
    let Some((item, refusal)) = refused else {
        return;
    };
    PipelineStats::add(&stats.refused_outputs, count);
    let error = refusal.to_output_error(&item);
    if refusal.quarantines() {
        tracing::error!(plugin = %name, refused = count, %error, "plugin over its quota; quarantined");
        plugin.health_handle().quarantine(&error.to_string());
    } else {
        tracing::warn!(plugin = %name, refused = count, %error, "plugin output refused");
        plugin.record_failure(&error.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(topic: &Arc<str>, pairs: &[(&str, f64)]) -> Write {
        let fields = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), FieldValue::Number(*v)))
            .collect();
        (topic.clone(), TopicKind::Topic, Written::Fields(fields))
    }

    #[test]
    fn writes_coalesce_per_topic_in_first_seen_order_and_later_values_win() {
        let (a, b): (Arc<str>, Arc<str>) = ("t/a".into(), "t/b".into());
        let batch = Batch {
            writes: vec![
                write(&a, &[("x", 1.0), ("y", 1.0)]),
                write(&b, &[("x", 5.0)]),
                write(&a, &[("x", 2.0)]),
            ],
            ..Batch::default()
        };
        let coalesced = batch.coalesced();
        let topics: Vec<&str> = coalesced.iter().map(|c| &*c.topic).collect();
        assert_eq!(topics, ["t/a", "t/b"]);
        let a_fields = coalesced.into_iter().next().unwrap().into_fields();
        assert_eq!(
            a_fields,
            BTreeMap::from([
                ("x".to_string(), FieldValue::Number(2.0)),
                ("y".to_string(), FieldValue::Number(1.0)),
            ])
        );
    }

    #[test]
    fn series_points_coalesce_to_the_newest_and_merge_into_fields_written_alongside() {
        let (s, t): (Arc<str>, Arc<str>) = ("metrics/s".into(), "metrics/t".into());
        let point = |value: f64, timestamp_ms: i64| SeriesPoint {
            value,
            timestamp_ms,
        };
        let batch = Batch {
            writes: vec![
                (s.clone(), TopicKind::Series, Written::Point(point(1.0, 1))),
                (t.clone(), TopicKind::Series, Written::Point(point(5.0, 5))),
                (s.clone(), TopicKind::Series, Written::Point(point(2.0, 2))),
                // A topic written as a series and with fields (another kind's
                // write admitted to it) keeps both, later values winning.
                write(&t, &[("value", 6.0), ("note", 1.0)]),
            ],
            ..Batch::default()
        };
        let mut coalesced = batch.coalesced().into_iter();
        let s_fields = coalesced.next().unwrap();
        assert!(matches!(s_fields.written, Written::Point(p) if p == point(2.0, 2)));
        assert_eq!(
            coalesced.next().unwrap().into_fields(),
            BTreeMap::from([
                ("note".to_string(), FieldValue::Number(1.0)),
                ("ts".to_string(), FieldValue::Number(5.0)),
                ("value".to_string(), FieldValue::Number(6.0)),
            ])
        );
    }
}
