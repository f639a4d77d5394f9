//! A collector's output, and how it crosses to the host.
//!
//! [`CollectOutput`] holds samples, topic updates, stream events and record errors.
//! Samples can be given whole ([`CollectOutput::samples`], a name and labels each) or
//! written with [`CollectOutput::sample`], which copies the name and labels into one
//! buffer instead of allocating strings, or, for a series registered once with
//! [`CollectOutput::series`], with [`CollectOutput::point`], which copies nothing.
//! Topic updates made with [`CollectOutput::update`] merge per topic and call. When
//! the call returns, the SDK declares each
//! series it has not declared before to the host once (contract 0.3.0 and later) and sends
//! every sample of it as a number, a value and a timestamp: a trade's four samples
//! cross as four points instead of twelve strings. The numbering is per instance
//! ([`SeriesNumbers`]); a fresh instance starts over, as does the host's.

use std::cell::RefCell;
use std::collections::HashSet;
use std::hash::BuildHasher;

use foldhash::fast::RandomState;
use hashbrown::HashTable;

use crate::bindings::collector::exports::wasmeter::plugin::collect as wire;
use crate::str_map::{StrMap, same_bytes};
use crate::{Label, MetricKind, RecordError, Sample, StreamEvent, TopicUpdate};

/// The most series an instance keeps numbered (the host's bound, since contract 0.3.0);
/// past it the SDK starts the numbering over.
pub const MAX_SERIES: usize = 65_536;

/// Separates the parts of a series key. It never occurs in UTF-8 text.
const SEPARATOR: u8 = 0xFF;

/// Everything one `collect` call produced: samples, topic updates, stream events,
/// record errors.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CollectOutput {
    /// Samples given whole. The host receives them before those written with
    /// [`CollectOutput::sample`].
    pub samples: Vec<Sample>,
    /// Topic updates, in order.
    pub updates: Vec<TopicUpdate>,
    /// Events of stream topics, in order.
    pub events: Vec<StreamEvent>,
    /// Per-record problems; the records not listed here were used.
    pub errors: Vec<RecordError>,
    /// The series keys of the samples written with [`CollectOutput::sample`].
    keys: Vec<u8>,
    /// Those samples, in order.
    points: Vec<KeyedPoint>,
    /// Where the last update of each topic is in `updates`, for
    /// [`CollectOutput::update`].
    last_update: StrMap<usize>,
    /// How many of `updates` `last_update` has seen.
    indexed: usize,
}

/// A sample written with [`CollectOutput::sample`] or [`CollectOutput::point`]:
/// its series, its value and its timestamp.
#[derive(Debug, Clone, Copy, PartialEq)]
struct KeyedPoint {
    series: PointSeries,
    value: f64,
    timestamp_ms: i64,
}

/// Where a point's series key is.
#[derive(Debug, Clone, Copy, PartialEq)]
enum PointSeries {
    /// In the output's `keys`, from..to.
    Key(u32, u32),
    /// In the instance's registry.
    Registered(SeriesId),
}

/// A series registered with [`CollectOutput::series`]; its samples are written
/// with [`CollectOutput::point`], which neither copies nor looks up its name and
/// labels. Valid for the life of the instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SeriesId(u32);

/// The series registered in this instance, by id. Registering a series again
/// gives the same id, so the registry holds each series once.
#[derive(Debug, Default)]
struct Registry {
    keys: Vec<u8>,
    spans: Vec<(u32, u32)>,
    ids: KeyTable,
}

impl Registry {
    fn register(&mut self, key: &[u8]) -> SeriesId {
        if let Some(id) = self.ids.get(key) {
            return SeriesId(id);
        }
        let id = self.spans.len() as u32;
        let start = self.keys.len() as u32;
        self.keys.extend_from_slice(key);
        self.spans.push((start, self.keys.len() as u32));
        self.ids.insert(key, id);
        SeriesId(id)
    }

    fn key(&self, id: SeriesId) -> &[u8] {
        let (from, to) = self.spans[id.0 as usize];
        &self.keys[from as usize..to as usize]
    }
}

thread_local! {
    /// The registry of this instance (a component has one instance).
    static REGISTRY: RefCell<Registry> = RefCell::new(Registry::default());
}

/// Appends the key of series `name{labels}` of `kind` to `keys`.
fn push_key(keys: &mut Vec<u8>, kind: MetricKind, name: &str, labels: &[(&str, &str)]) {
    keys.push(kind as u8);
    keys.extend_from_slice(name.as_bytes());
    for (label, label_value) in labels {
        keys.push(SEPARATOR);
        keys.extend_from_slice(label.as_bytes());
        keys.push(SEPARATOR);
        keys.extend_from_slice(label_value.as_bytes());
    }
}

impl CollectOutput {
    /// An empty output.
    pub fn new() -> Self {
        CollectOutput::default()
    }

    /// Appends a sample of the series `name{labels}`. Nothing is allocated for a
    /// series seen before: the name and labels are copied into a buffer, and the
    /// host gets the series once per instance and then only its number. A
    /// timestamp of 0 lets the host stamp the sample.
    pub fn sample(
        &mut self,
        kind: MetricKind,
        name: &str,
        labels: &[(&str, &str)],
        value: f64,
        timestamp_ms: i64,
    ) {
        let start = self.keys.len() as u32;
        push_key(&mut self.keys, kind, name, labels);
        self.points.push(KeyedPoint {
            series: PointSeries::Key(start, self.keys.len() as u32),
            value,
            timestamp_ms,
        });
    }

    /// Registers the series `name{labels}` of `kind` with this instance, for
    /// [`CollectOutput::point`]: for the series a collector writes again and
    /// again (a symbol's), kept with what it keeps per symbol. The same series
    /// always gets the same id; the registry holds every series registered for
    /// the life of the instance, so one-off series are better written with
    /// [`CollectOutput::sample`].
    pub fn series(kind: MetricKind, name: &str, labels: &[(&str, &str)]) -> SeriesId {
        let mut key = Vec::new();
        push_key(&mut key, kind, name, labels);
        REGISTRY.with(|registry| registry.borrow_mut().register(&key))
    }

    /// [`CollectOutput::series`] of labels given whole (a derived metric's
    /// output series, labelled as its input).
    pub fn series_labelled(kind: MetricKind, name: &str, labels: &[Label]) -> SeriesId {
        let labels: Vec<(&str, &str)> = labels
            .iter()
            .map(|l| (l.name.as_str(), l.value.as_str()))
            .collect();
        Self::series(kind, name, &labels)
    }

    /// The gauge `<input><suffix>` labelled `labels` (a derived metric's output
    /// of series `input`), registered; `None` when that name is not a valid
    /// metric name (too long).
    pub fn derived_gauge(input: &str, suffix: &str, labels: &[Label]) -> Option<SeriesId> {
        let name = format!("{input}{suffix}");
        crate::series::is_valid_metric_name(&name)
            .then(|| Self::series_labelled(MetricKind::Gauge, &name, labels))
    }

    /// Appends a sample of a registered series, as [`CollectOutput::sample`] does
    /// with the same name and labels, without copying or looking them up.
    pub fn point(&mut self, series: SeriesId, value: f64, timestamp_ms: i64) {
        self.points.push(KeyedPoint {
            series: PointSeries::Registered(series),
            value,
            timestamp_ms,
        });
    }

    /// This output's update of `topic`, made if it has none yet: set its fields
    /// with [`TopicUpdate::set`]. The records of a call that update one topic thus
    /// cross to the host as one update, later values winning, which is what the
    /// host makes of a call's updates of one topic anyway (a chunk reaches
    /// subscribers as one change per topic): a busy topic's thousand records in a
    /// chunk cross as one update instead of a thousand. Events of stream topics
    /// are never merged.
    ///
    /// Updates pushed onto [`CollectOutput::updates`] directly are taken into
    /// account: this merges into the last update of `topic`, wherever it came from.
    pub fn update(&mut self, topic: &str) -> &mut TopicUpdate {
        // The common case: the index is up to date and holds the topic.
        if self.indexed == self.updates.len()
            && let Some(&at) = self.last_update.get(topic)
            && self
                .updates
                .get(at)
                .is_some_and(|u| same_bytes(u.topic.as_bytes(), topic.as_bytes()))
        {
            return &mut self.updates[at];
        }
        let stale = self.indexed > self.updates.len()
            || self.last_update.get(topic).is_some_and(|&at| {
                self.updates
                    .get(at)
                    .is_none_or(|u| !same_bytes(u.topic.as_bytes(), topic.as_bytes()))
            });
        if stale {
            self.last_update.clear();
            self.indexed = 0;
        }
        for (at, update) in self.updates.iter().enumerate().skip(self.indexed) {
            self.last_update.insert(update.topic.clone(), at);
        }
        self.indexed = self.updates.len();
        let at = match self.last_update.get(topic) {
            Some(&at) => at,
            None => {
                self.last_update
                    .insert(topic.to_string(), self.updates.len());
                self.updates.push(TopicUpdate::new(topic));
                self.indexed += 1;
                self.updates.len() - 1
            }
        };
        &mut self.updates[at]
    }

    /// True if there are no samples, updates, events or errors.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
            && self.points.is_empty()
            && self.updates.is_empty()
            && self.events.is_empty()
            && self.errors.is_empty()
    }

    /// Appends everything of `other`.
    pub fn append(&mut self, mut other: CollectOutput) {
        let base = self.keys.len() as u32;
        self.keys.append(&mut other.keys);
        self.points
            .extend(other.points.into_iter().map(|p| match p.series {
                PointSeries::Key(from, to) => KeyedPoint {
                    series: PointSeries::Key(from + base, to + base),
                    ..p
                },
                PointSeries::Registered(_) => p,
            }));
        self.samples.append(&mut other.samples);
        self.updates.append(&mut other.updates);
        self.events.append(&mut other.events);
        self.errors.append(&mut other.errors);
    }

    /// Every sample, as the host receives them: those given whole, then those
    /// written with [`CollectOutput::sample`].
    pub fn all_samples(&self) -> Vec<Sample> {
        let mut all = self.samples.clone();
        REGISTRY.with(|registry| {
            let registry = registry.borrow();
            all.extend(self.points.iter().map(|p| {
                let mut sample = series_of(key_of(&self.keys, &registry, p));
                sample.value = p.value;
                sample.timestamp_ms = p.timestamp_ms;
                sample
            }));
        });
        all
    }
}

/// The series key of `point`, from the output's `keys` or the registry.
fn key_of<'a>(keys: &'a [u8], registry: &'a Registry, point: &KeyedPoint) -> &'a [u8] {
    match point.series {
        PointSeries::Key(from, to) => &keys[from as usize..to as usize],
        PointSeries::Registered(id) => registry.key(id),
    }
}

/// The series of a key, as a sample with value and timestamp 0.
fn series_of(key: &[u8]) -> Sample {
    let kind = if key[0] == MetricKind::Counter as u8 {
        MetricKind::Counter
    } else {
        MetricKind::Gauge
    };
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    let mut parts = key[1..].split(|b| *b == SEPARATOR);
    let name = text(parts.next().unwrap_or_default());
    let mut labels = Vec::new();
    while let (Some(label), Some(value)) = (parts.next(), parts.next()) {
        labels.push(Label::new(text(label), text(value)));
    }
    Sample::new(name, kind, 0.0).with_labels(labels)
}

/// The series an instance has declared to the host, by key.
#[derive(Debug, Default)]
pub struct SeriesNumbers {
    numbers: KeyTable,
    /// The number of each registered series declared since the last reset, by
    /// id ([`NOT_DECLARED`] if none).
    by_id: Vec<u32>,
}

/// A registered series not declared since the last reset.
const NOT_DECLARED: u32 = u32::MAX;

/// Series keys and their numbers. Every sample written with
/// [`CollectOutput::sample`] is looked up here when its call returns; keys are
/// compared a word at a time, where a `HashMap` of byte strings would call the
/// guest's `memcmp`, which compares a byte at a time (a trade's four keys are
/// ~30 bytes each).
#[derive(Debug, Default)]
struct KeyTable {
    table: HashTable<(Box<[u8]>, u32)>,
    hasher: RandomState,
}

impl KeyTable {
    fn get(&self, key: &[u8]) -> Option<u32> {
        let hash = self.hasher.hash_one(key);
        self.table
            .find(hash, |(held, _)| same_bytes(held, key))
            .map(|&(_, number)| number)
    }

    fn contains_key(&self, key: &[u8]) -> bool {
        self.get(key).is_some()
    }

    /// Numbers `key`, which is not held yet.
    fn insert(&mut self, key: &[u8], number: u32) {
        let hash = self.hasher.hash_one(key);
        let hasher = &self.hasher;
        self.table
            .insert_unique(hash, (key.into(), number), |(held, _)| {
                hasher.hash_one(held)
            });
    }

    fn len(&self) -> usize {
        self.table.len()
    }

    fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    fn clear(&mut self) {
        self.table.clear();
    }
}

impl SeriesNumbers {
    /// `out` as the host receives it: series not declared before are declared, and
    /// the samples written with [`CollectOutput::sample`] become points. When the
    /// call would take the instance past [`MAX_SERIES`], the numbering starts over
    /// first (`series-reset`); a call with more new series than that sends the
    /// rest whole.
    pub fn wire(&mut self, out: CollectOutput) -> wire::CollectOutput {
        REGISTRY.with(|registry| self.wire_with(out, &registry.borrow()))
    }

    fn wire_with(&mut self, out: CollectOutput, registry: &Registry) -> wire::CollectOutput {
        let CollectOutput {
            mut samples,
            updates,
            events,
            errors,
            keys,
            points: keyed,
            ..
        } = out;
        let key = |p: &KeyedPoint| key_of(&keys, registry, p);
        // Only a call that could take the table past its bound counts its new
        // series first (a set of keys); the others go straight to numbering.
        let series_reset = self.numbers.len() + keyed.len() > MAX_SERIES && {
            let fresh: HashSet<&[u8], RandomState> = keyed
                .iter()
                .map(key)
                .filter(|k| !self.numbers.contains_key(k))
                .collect();
            !self.numbers.is_empty() && self.numbers.len() + fresh.len() > MAX_SERIES
        };
        if series_reset {
            self.numbers.clear();
            self.by_id.clear();
        }
        let mut series = Vec::new();
        let mut points = Vec::with_capacity(keyed.len());
        for p in &keyed {
            // A registered series declared before: its number, without its key.
            let id = match p.series {
                PointSeries::Registered(SeriesId(id)) => Some(id as usize),
                PointSeries::Key(..) => None,
            };
            let known = id.and_then(|id| self.by_id.get(id).copied());
            if let Some(number) = known.filter(|&n| n != NOT_DECLARED) {
                points.push(wire::Point {
                    series: number,
                    value: p.value,
                    timestamp_ms: p.timestamp_ms,
                });
                continue;
            }
            let key = key(p);
            let number = match self.numbers.get(key) {
                Some(number) => number,
                None if self.numbers.len() < MAX_SERIES => {
                    let number = self.numbers.len() as u32;
                    self.numbers.insert(key, number);
                    let whole = series_of(key);
                    series.push(wire::Series {
                        name: whole.name,
                        labels: whole.labels,
                        kind: whole.kind,
                    });
                    number
                }
                None => {
                    let mut whole = series_of(key);
                    whole.value = p.value;
                    whole.timestamp_ms = p.timestamp_ms;
                    samples.push(whole);
                    continue;
                }
            };
            if let Some(id) = id {
                if self.by_id.len() <= id {
                    self.by_id.resize(id + 1, NOT_DECLARED);
                }
                self.by_id[id] = number;
            }
            points.push(wire::Point {
                series: number,
                value: p.value,
                timestamp_ms: p.timestamp_ms,
            });
        }
        wire::CollectOutput {
            samples,
            series_reset,
            series,
            points,
            updates,
            events,
            errors,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trade(out: &mut CollectOutput, symbol: &str, price: f64) {
        out.sample(MetricKind::Gauge, "price", &[("symbol", symbol)], price, 7);
        out.sample(
            MetricKind::Counter,
            "trades_total",
            &[("symbol", symbol)],
            1.0,
            0,
        );
    }

    fn fields(update: &TopicUpdate) -> Vec<(&str, f64)> {
        update
            .fields
            .iter()
            .map(|f| match f.value {
                crate::FieldValue::Number(n) => (f.name.as_str(), n),
                _ => panic!("a number"),
            })
            .collect()
    }

    #[test]
    fn updates_of_one_topic_merge_into_its_last_update() {
        let mut out = CollectOutput::new();
        out.update("t/A").set("p", 1.0).set("q", 1.0);
        out.update("t/B").set("p", 2.0);
        out.update("t/A").set("p", 3.0).set("r", 3.0);
        let topics: Vec<_> = out.updates.iter().map(|u| u.topic.as_str()).collect();
        assert_eq!(topics, ["t/A", "t/B"]);
        assert_eq!(
            fields(&out.updates[0]),
            [("p", 3.0), ("q", 1.0), ("r", 3.0)]
        );

        // An update pushed directly comes after the merged one: later sets of its
        // topic go into it, so that it does not override them.
        out.updates.push(TopicUpdate::new("t/A").field("p", 4.0));
        out.update("t/A").set("q", 5.0);
        assert_eq!(out.updates.len(), 3);
        assert_eq!(fields(&out.updates[2]), [("p", 4.0), ("q", 5.0)]);
        assert_eq!(
            fields(&out.updates[0]),
            [("p", 3.0), ("q", 1.0), ("r", 3.0)]
        );

        // Updates removed or reordered by hand: the index is rebuilt.
        out.updates.swap(0, 2);
        out.updates.truncate(2);
        out.update("t/A").set("r", 6.0);
        let topics: Vec<_> = out.updates.iter().map(|u| u.topic.as_str()).collect();
        assert_eq!(topics, ["t/A", "t/B"]);
        assert_eq!(
            fields(&out.updates[0]),
            [("p", 4.0), ("q", 5.0), ("r", 6.0)]
        );
        out.updates.clear();
        out.update("t/B").set("p", 7.0);
        assert_eq!(out.updates.len(), 1);
        assert_eq!(fields(&out.updates[0]), [("p", 7.0)]);
    }

    fn sent(out: &wire::CollectOutput) -> Vec<(u32, f64)> {
        out.points.iter().map(|p| (p.series, p.value)).collect()
    }

    #[test]
    fn registered_series_are_declared_once_and_numbered_with_written_ones() {
        let mut numbers = SeriesNumbers::default();
        let labels = [("symbol", "A")];
        let price = CollectOutput::series(MetricKind::Gauge, "price", &labels);
        assert_eq!(
            price,
            CollectOutput::series(MetricKind::Gauge, "price", &labels)
        );
        let trades = CollectOutput::series(MetricKind::Counter, "trades_total", &labels);
        assert_ne!(price, trades);

        let mut out = CollectOutput::new();
        out.sample(MetricKind::Gauge, "price", &labels, 1.0, 7);
        out.point(price, 2.0, 8);
        out.point(trades, 3.0, 9);
        let all = out.all_samples();
        let read: Vec<_> = all
            .iter()
            .map(|s| (s.name.as_str(), s.kind, s.value, s.timestamp_ms))
            .collect();
        assert_eq!(
            read,
            [
                ("price", MetricKind::Gauge, 1.0, 7),
                ("price", MetricKind::Gauge, 2.0, 8),
                ("trades_total", MetricKind::Counter, 3.0, 9),
            ]
        );
        assert!(all.iter().all(|s| s.label("symbol") == Some("A")));
        let first = numbers.wire(out);
        let declared: Vec<_> = first.series.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(declared, ["price", "trades_total"]);
        assert_eq!(sent(&first), [(0, 1.0), (0, 2.0), (1, 3.0)]);

        let mut out = CollectOutput::new();
        out.point(trades, 4.0, 10);
        out.point(price, 5.0, 11);
        let second = numbers.wire(out);
        assert!(second.series.is_empty());
        assert_eq!(sent(&second), [(1, 4.0), (0, 5.0)]);
    }

    #[test]
    fn a_registered_series_is_declared_again_after_the_numbering_starts_over() {
        let mut numbers = SeriesNumbers::default();
        let late = CollectOutput::series(MetricKind::Gauge, "late", &[]);
        let mut out = CollectOutput::new();
        out.point(late, 1.0, 1);
        for i in 0..MAX_SERIES - 2 {
            out.sample(MetricKind::Gauge, "p", &[("i", &i.to_string())], 1.0, 1);
        }
        numbers.wire(out);
        let mut out = CollectOutput::new();
        out.sample(MetricKind::Gauge, "new", &[], 2.0, 2);
        out.sample(MetricKind::Gauge, "newer", &[], 3.0, 3);
        out.point(late, 4.0, 4);
        let next = numbers.wire(out);
        assert!(next.series_reset);
        let declared: Vec<_> = next.series.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(declared, ["new", "newer", "late"]);
        assert_eq!(sent(&next), [(0, 2.0), (1, 3.0), (2, 4.0)]);
        let mut out = CollectOutput::new();
        out.point(late, 5.0, 5);
        let after = numbers.wire(out);
        assert!(after.series.is_empty());
        assert_eq!(sent(&after), [(2, 5.0)]);
    }

    #[test]
    fn a_series_is_declared_once_per_instance() {
        let mut numbers = SeriesNumbers::default();
        let mut out = CollectOutput::new();
        trade(&mut out, "A", 1.0);
        trade(&mut out, "B", 2.0);
        trade(&mut out, "A", 3.0);
        let first = numbers.wire(out);
        assert!(!first.series_reset);
        let declared: Vec<_> = first
            .series
            .iter()
            .map(|s| (s.name.as_str(), s.labels[0].value.as_str(), s.kind))
            .collect();
        assert_eq!(
            declared,
            [
                ("price", "A", MetricKind::Gauge),
                ("trades_total", "A", MetricKind::Counter),
                ("price", "B", MetricKind::Gauge),
                ("trades_total", "B", MetricKind::Counter),
            ]
        );
        let sent: Vec<_> = first.points.iter().map(|p| (p.series, p.value)).collect();
        assert_eq!(
            sent,
            [(0, 1.0), (1, 1.0), (2, 2.0), (3, 1.0), (0, 3.0), (1, 1.0)]
        );

        let mut out = CollectOutput::new();
        trade(&mut out, "B", 4.0);
        trade(&mut out, "C", 5.0);
        let second = numbers.wire(out);
        assert_eq!(second.series.len(), 2, "only C's series are new");
        let sent: Vec<_> = second.points.iter().map(|p| (p.series, p.value)).collect();
        assert_eq!(sent, [(2, 4.0), (3, 1.0), (4, 5.0), (5, 1.0)]);
    }

    #[test]
    fn the_numbering_starts_over_before_it_would_pass_the_bound() {
        let mut numbers = SeriesNumbers::default();
        let mut out = CollectOutput::new();
        for i in 0..MAX_SERIES - 1 {
            out.sample(MetricKind::Gauge, "p", &[("i", &i.to_string())], 1.0, 1);
        }
        assert!(!numbers.wire(out).series_reset);

        let mut out = CollectOutput::new();
        trade(&mut out, "A", 1.0);
        let next = numbers.wire(out);
        assert!(next.series_reset);
        assert_eq!(next.series.len(), 2);
        let sent: Vec<_> = next.points.iter().map(|p| p.series).collect();
        assert_eq!(sent, [0, 1]);
    }

    #[test]
    fn many_samples_of_known_series_do_not_start_over() {
        let mut numbers = SeriesNumbers::default();
        let mut out = CollectOutput::new();
        for i in 0..MAX_SERIES - 1 {
            out.sample(MetricKind::Gauge, "p", &[("i", &i.to_string())], 1.0, 1);
        }
        numbers.wire(out);
        let mut out = CollectOutput::new();
        for _ in 0..10 {
            for i in 0..100 {
                out.sample(MetricKind::Gauge, "p", &[("i", &i.to_string())], 2.0, 2);
            }
        }
        let again = numbers.wire(out);
        assert!(!again.series_reset && again.series.is_empty());
        assert_eq!(again.points.len(), 1000);
    }

    #[test]
    fn a_call_with_more_new_series_than_the_bound_sends_the_rest_whole() {
        let mut numbers = SeriesNumbers::default();
        let mut out = CollectOutput::new();
        for i in 0..MAX_SERIES + 2 {
            out.sample(
                MetricKind::Gauge,
                "p",
                &[("i", &i.to_string())],
                i as f64,
                1,
            );
        }
        let sent = numbers.wire(out);
        assert_eq!(sent.series.len(), MAX_SERIES);
        assert_eq!(sent.points.len(), MAX_SERIES);
        let whole: Vec<_> = sent.samples.iter().map(|s| s.value).collect();
        assert_eq!(whole, [MAX_SERIES as f64, MAX_SERIES as f64 + 1.0]);
        assert_eq!(sent.samples[1].label("i"), Some("65537"));
    }

    #[test]
    fn all_samples_reads_back_whole_samples_then_points() {
        let mut out = CollectOutput::new();
        out.samples.push(Sample::gauge("whole", 1.0));
        let mut other = CollectOutput::new();
        other.sample(
            MetricKind::Counter,
            "n",
            &[("a", "x\u{e9}"), ("b", "")],
            2.0,
            9,
        );
        out.sample(MetricKind::Gauge, "first", &[], 0.5, 3);
        out.append(other);
        let all = out.all_samples();
        assert_eq!(all.len(), 3);
        assert_eq!((all[0].name.as_str(), all[0].value), ("whole", 1.0));
        assert_eq!((all[1].name.as_str(), all[1].value), ("first", 0.5));
        assert!(all[1].labels.is_empty());
        assert_eq!(all[2].kind, MetricKind::Counter);
        assert_eq!(all[2].label("a"), Some("x\u{e9}"));
        assert_eq!(all[2].label("b"), Some(""));
        assert_eq!(all[2].timestamp_ms, 9);
    }
}
