//! A series' name and labels packed into one byte string: the name, then a
//! separator before each label name and each label value. The separator, 0xFF,
//! never occurs in UTF-8, so every part comes back exactly. Tables of many
//! series (a collector instance's declarations, `/metrics`' latest values) keep
//! one such key per series: one allocation instead of one per string.
//!
//! [`SeriesKey`] is the shared form with the labels sorted: a series' identity,
//! made once and then cloned by every table that keeps the series.

use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::{Arc, OnceLock};

use crate::sample::{Label, MetricKind, Sample, write_topic_of};

/// Separates the parts of a key.
const SEPARATOR: u8 = 0xFF;

/// The key of series `name{labels}` (labels in the order given).
pub fn pack<'a>(name: &str, labels: impl IntoIterator<Item = &'a Label> + Clone) -> Vec<u8> {
    let len = name.len()
        + labels
            .clone()
            .into_iter()
            .map(|l| 2 + l.name.len() + l.value.len())
            .sum::<usize>();
    let mut key = Vec::with_capacity(len);
    pack_into(name, labels, &mut key);
    key
}

/// [`pack`] appended to `key` (a buffer reused between series).
pub fn pack_into<'a>(name: &str, labels: impl IntoIterator<Item = &'a Label>, key: &mut Vec<u8>) {
    key.extend_from_slice(name.as_bytes());
    for label in labels {
        key.push(SEPARATOR);
        key.extend_from_slice(label.name.as_bytes());
        key.push(SEPARATOR);
        key.extend_from_slice(label.value.as_bytes());
    }
}

/// The parts of a key made by [`pack`]: the name, then each label's name and
/// value.
pub fn parts(key: &[u8]) -> impl Iterator<Item = &str> {
    // Every part was a `&str` and the separator never occurs in UTF-8, so each
    // part is valid UTF-8 again (checked all the same: short strings, and no
    // `unsafe` for a key that did not come from `pack`).
    key.split(|&b| b == SEPARATOR)
        .map(|part| std::str::from_utf8(part).unwrap_or_default())
}

/// The number of labels of a key made by [`pack`].
pub fn label_count(key: &[u8]) -> usize {
    key.iter().filter(|&&b| b == SEPARATOR).count() / 2
}

/// The hash of a packed key, as [`SeriesKey::hash_value`] gives it: seeded once
/// per process, so which keys collide cannot be chosen by a plugin.
pub fn hash_bytes(packed: &[u8]) -> u64 {
    static SEED: OnceLock<foldhash::fast::RandomState> = OnceLock::new();
    SEED.get_or_init(Default::default).hash_one(packed)
}

/// A series' identity: its name and its labels sorted by name (then value),
/// packed by [`pack`] into one shared allocation (in [`label_order`]). Cheap to
/// clone; keys order by name first, so the series of one name are adjacent.
///
/// The key carries the hash of its bytes ([`hash_bytes`]), made with it: a table
/// of many series finds one without reading its bytes (at tens of thousands of
/// series, each read a cache miss), and [`Hash`] writes only that.
#[derive(Debug, Clone)]
pub struct SeriesKey {
    bytes: Arc<[u8]>,
    hash: u64,
}

impl PartialEq for SeriesKey {
    fn eq(&self, other: &Self) -> bool {
        // The same allocation (the common case: clones of one key) compares
        // without reading the bytes.
        self.hash == other.hash && self.bytes == other.bytes
    }
}

impl Eq for SeriesKey {}

impl PartialOrd for SeriesKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SeriesKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.bytes.cmp(&other.bytes)
    }
}

impl Hash for SeriesKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl SeriesKey {
    /// The key of series `name{labels}`, whatever order the labels are in.
    pub fn new(name: &str, labels: &[Label]) -> Self {
        let mut sorted: Vec<&Label> = labels.iter().collect();
        sorted.sort_by(|a, b| label_order(a, b));
        Self::from_packed(&pack(name, sorted))
    }

    /// The key of a sample's series.
    pub fn of(sample: &Sample) -> Self {
        Self::new(&sample.name, &sample.labels)
    }

    /// The key from its packed bytes (made by [`pack`] of sorted labels).
    pub fn from_packed(packed: &[u8]) -> Self {
        Self {
            bytes: packed.into(),
            hash: hash_bytes(packed),
        }
    }

    /// The packed bytes: equal exactly when the series are.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The hash of [`Self::bytes`] ([`hash_bytes`]), without reading them.
    pub fn hash_value(&self) -> u64 {
        self.hash
    }

    /// Metric name.
    pub fn name(&self) -> &str {
        parts(&self.bytes).next().unwrap_or_default()
    }

    /// `(name, value)` pairs, sorted by name.
    pub fn labels(&self) -> impl Iterator<Item = (&str, &str)> {
        let mut parts = parts(&self.bytes).skip(1);
        std::iter::from_fn(move || Some((parts.next()?, parts.next()?)))
    }

    /// This series with the labels of `extra` it lacks (by name) added; `None`
    /// if it has them all.
    pub fn with_labels(&self, extra: &[Label]) -> Option<SeriesKey> {
        let has = |name: &str| self.labels().any(|(n, _)| n == name);
        if extra.iter().all(|l| has(&l.name)) {
            return None;
        }
        let mut labels: Vec<Label> = self.labels().map(|(n, v)| Label::new(n, v)).collect();
        labels.extend(extra.iter().filter(|l| !has(&l.name)).cloned());
        Some(Self::new(self.name(), &labels))
    }

    /// A sample of this series.
    pub fn sample(&self, kind: MetricKind, value: f64, timestamp_ms: i64) -> Sample {
        let mut parts = parts(&self.bytes);
        let name = parts.next().unwrap_or_default().into();
        // Exactly as many labels as there are: a pushed-to empty vector holds four.
        let mut labels = Vec::with_capacity(label_count(&self.bytes));
        while let (Some(label), Some(label_value)) = (parts.next(), parts.next()) {
            labels.push(Label::new(label, label_value));
        }
        Sample {
            name,
            labels,
            value,
            kind,
            timestamp_ms,
        }
    }

    /// The topic this series is published on ([`crate::sample::series_topic`]),
    /// into `topic` (cleared first).
    pub fn write_topic(&self, topic: &mut String) {
        write_topic_of(self.name(), self.labels().map(|(_, v)| v), topic);
    }
}

/// The order of a series' labels in its key: by name, then value.
pub fn label_order(a: &Label, b: &Label) -> std::cmp::Ordering {
    (&a.name, &a.value).cmp(&(&b.name, &b.value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_gives_back_its_name_and_labels_whole() {
        let labels = [
            Label::new("a", ""),
            Label::new("b", "x\u{00ff}ÿ€"),
            Label::new("c", "1"),
        ];
        let key = pack("p_ÿ", &labels);
        let back: Vec<&str> = parts(&key).collect();
        assert_eq!(back, ["p_ÿ", "a", "", "b", "x\u{00ff}ÿ€", "c", "1"]);
        assert_eq!(label_count(&key), 3);
        let bare = pack("p", &[]);
        assert_eq!(parts(&bare).collect::<Vec<_>>(), ["p"]);
        assert_eq!(label_count(&bare), 0);
    }

    fn sample(name: &str, labels: &[(&str, &str)]) -> Sample {
        Sample {
            name: name.into(),
            labels: labels.iter().map(|(n, v)| Label::new(*n, *v)).collect(),
            value: 1.0,
            kind: MetricKind::Gauge,
            timestamp_ms: 1,
        }
    }

    #[test]
    fn a_series_key_is_the_same_whatever_the_label_order() {
        let a = SeriesKey::of(&sample("p", &[("s", "A"), ("v", "x"), ("b", "")]));
        let b = SeriesKey::of(&sample("p", &[("b", ""), ("v", "x"), ("s", "A")]));
        assert_eq!(a, b);
        assert_eq!(a.hash_value(), b.hash_value());
        assert_eq!(a.hash_value(), hash_bytes(a.bytes()));
        assert_eq!(a.name(), "p");
        assert_eq!(
            a.labels().collect::<Vec<_>>(),
            [("b", ""), ("s", "A"), ("v", "x")]
        );
        assert_ne!(a, SeriesKey::of(&sample("p", &[("s", "A"), ("v", "x")])));
        let back = a.sample(MetricKind::Counter, 2.0, 3);
        assert_eq!(SeriesKey::of(&back), a);
        assert_eq!(
            (back.kind, back.value, back.timestamp_ms),
            (MetricKind::Counter, 2.0, 3)
        );
    }

    #[test]
    fn a_series_key_adds_only_the_labels_it_lacks() {
        let key = SeriesKey::of(&sample("p", &[("symbol", "A")]));
        let extra = [Label::new("symbol", "Z"), Label::new("host", "h1")];
        let with = key.with_labels(&extra).expect("host is added");
        assert_eq!(
            with.labels().collect::<Vec<_>>(),
            [("host", "h1"), ("symbol", "A")],
            "the series' own symbol wins"
        );
        assert_eq!(with.with_labels(&extra), None, "nothing left to add");
        assert_eq!(key.with_labels(&[]), None);
    }

    #[test]
    fn a_series_key_writes_the_topic_of_its_samples() {
        let s = sample(
            "ns:v",
            &[("venue", "x y"), ("symbol", "BTC/USD"), ("e", "")],
        );
        let mut topic = String::from("stale");
        SeriesKey::of(&s).write_topic(&mut topic);
        assert_eq!(topic, crate::sample::series_topic(&s));
    }
}
