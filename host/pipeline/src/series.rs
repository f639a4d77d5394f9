//! The latest value of every sample series, for `/metrics`: bounded, shared by every
//! pipeline of a host, fed where a pipeline publishes its samples.
//!
//! Recorded on the data path for every sample, so a known series costs one hash,
//! one comparison and a store, without allocating; a pipeline takes the lock once
//! per batch. A new series beyond the bound evicts the least recently updated
//! tenth of the store at once (amortised). A series costs one allocation: its
//! name and labels packed into one key.

use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};

use hashbrown::HashTable;
use wasmeter_core::sample::{Label, MetricKind, Sample, sort_labels};
use wasmeter_core::series_key;

/// Series kept by default; the least recently updated ones go first beyond it.
pub const DEFAULT_MAX_SERIES: u64 = 10_000;

/// A series: metric name and labels, sorted by label name, packed into one
/// allocation ([`series_key`]). Keys order by name first, so the series of one
/// name are adjacent.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SeriesKey(Arc<[u8]>);

impl SeriesKey {
    fn pack(name: &str, labels: &[&Label]) -> Self {
        Self(series_key::pack(name, labels.iter().copied()).into())
    }

    fn parts(&self) -> impl Iterator<Item = &str> {
        series_key::parts(&self.0)
    }

    /// Metric name.
    pub fn name(&self) -> &str {
        self.parts().next().unwrap_or_default()
    }

    /// `(name, value)` pairs, sorted by name.
    pub fn labels(&self) -> impl Iterator<Item = (&str, &str)> {
        let mut parts = self.parts().skip(1);
        std::iter::from_fn(move || Some((parts.next()?, parts.next()?)))
    }

    /// Whether this is series `name{labels}`.
    fn is(&self, name: &str, labels: &[&Label]) -> bool {
        series_key::is(&self.0, name, labels.iter().copied())
    }
}

/// The latest sample of a series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SeriesValue {
    /// Gauge or counter.
    pub kind: MetricKind,
    /// The value.
    pub value: f64,
    /// The sample's time, Unix milliseconds.
    pub timestamp_ms: i64,
}

/// The latest value per series (bounded, cheap to clone).
#[derive(Clone)]
pub struct SeriesStore {
    inner: Arc<Mutex<Series>>,
}

struct Series {
    max: usize,
    entries: HashTable<Entry>,
    /// Seeded per store, so that which series collide cannot be chosen from outside.
    hasher: foldhash::fast::RandomState,
    /// Increases with every update: the eviction order.
    clock: u64,
}

struct Entry {
    /// The hash of name and sorted labels.
    hash: u64,
    key: SeriesKey,
    value: SeriesValue,
    touched: u64,
}

impl std::fmt::Debug for SeriesStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeriesStore")
            .field("series", &self.lock().entries.len())
            .finish()
    }
}

fn hash_of(hasher: &foldhash::fast::RandomState, name: &str, labels: &[&Label]) -> u64 {
    let mut h = hasher.build_hasher();
    name.hash(&mut h);
    for l in labels {
        l.name.hash(&mut h);
        l.value.hash(&mut h);
    }
    h.finish()
}

impl SeriesStore {
    /// A store of at most `max_series` series.
    pub fn new(max_series: u64) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Series {
                max: max_series.max(1) as usize,
                entries: HashTable::new(),
                hasher: foldhash::fast::RandomState::default(),
                clock: 0,
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Series> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records the latest value of each sample's series.
    pub fn record(&self, samples: &[Sample]) {
        let mut sorted = Vec::new();
        let mut series = self.lock();
        for s in samples {
            sort_labels(s, &mut sorted);
            let value = SeriesValue {
                kind: s.kind,
                value: s.value,
                timestamp_ms: s.timestamp_ms,
            };
            series.set(&s.name, &sorted, value);
        }
    }

    /// Every series held, sorted by name and labels.
    pub fn all(&self) -> Vec<(SeriesKey, SeriesValue)> {
        let series = self.lock();
        let mut all: Vec<_> = series
            .entries
            .iter()
            .map(|e| (e.key.clone(), e.value))
            .collect();
        drop(series);
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }
}

impl Series {
    fn set(&mut self, name: &str, labels: &[&Label], value: SeriesValue) {
        self.clock += 1;
        let touched = self.clock;
        let hash = hash_of(&self.hasher, name, labels);
        if let Some(e) = self
            .entries
            .find_mut(hash, |e| e.hash == hash && e.key.is(name, labels))
        {
            e.value = value;
            e.touched = touched;
            return;
        }
        if self.entries.len() >= self.max {
            self.evict_oldest();
        }
        let entry = Entry {
            hash,
            key: SeriesKey::pack(name, labels),
            value,
            touched,
        };
        self.entries.insert_unique(hash, entry, |e| e.hash);
    }

    /// Drops the least recently updated tenth (at least one series).
    fn evict_oldest(&mut self) {
        let mut stamps: Vec<u64> = self.entries.iter().map(|e| e.touched).collect();
        let drop = (self.max / 10).max(1).min(stamps.len());
        let (_, cutoff, _) = stamps.select_nth_unstable(drop - 1);
        let cutoff = *cutoff;
        self.entries.retain(|e| e.touched > cutoff);
    }
}

impl Default for SeriesStore {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_SERIES)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmeter_core::sample::Label;

    fn sample(name: &str, symbol: &str, value: f64) -> Sample {
        Sample {
            name: name.into(),
            labels: vec![Label::new("symbol", symbol), Label::new("a", "1")],
            value,
            kind: MetricKind::Gauge,
            timestamp_ms: 1,
        }
    }

    #[test]
    fn keeps_the_latest_value_per_series() {
        let store = SeriesStore::new(100);
        store.record(&[sample("p", "BTC", 1.0), sample("p", "ETH", 2.0)]);
        store.record(&[sample("p", "BTC", 3.0)]);
        let all = store.all();
        assert_eq!(all.len(), 2);
        let labels: Vec<_> = all[0].0.labels().collect();
        assert_eq!(labels, [("a", "1"), ("symbol", "BTC")]);
        assert_eq!(all[0].0.name(), "p");
        assert_eq!(all[0].1.value, 3.0);
        assert_eq!(all[1].1.value, 2.0);
    }

    #[test]
    fn beyond_the_bound_the_least_recently_updated_go() {
        let store = SeriesStore::new(10);
        for i in 0..10 {
            store.record(&[sample("p", &format!("S{i}"), 1.0)]);
        }
        // S0 is updated again: S1 is now the oldest.
        store.record(&[sample("p", "S0", 2.0)]);
        store.record(&[sample("p", "NEW", 3.0)]);
        let all = store.all();
        assert_eq!(all.len(), 10);
        let symbols: Vec<&str> = all
            .iter()
            .map(|(k, _)| k.labels().nth(1).unwrap().1)
            .collect();
        assert!(symbols.contains(&"S0") && symbols.contains(&"NEW"));
        assert!(!symbols.contains(&"S1"), "{symbols:?}");
    }

    #[test]
    fn a_key_gives_back_its_name_and_labels_whole() {
        let labels = [
            Label::new("a", ""),
            Label::new("b", "x\u{00ff}ÿ€"),
            Label::new("c", "1"),
        ];
        let sorted: Vec<&Label> = labels.iter().collect();
        let key = SeriesKey::pack("p_ÿ", &sorted);
        assert_eq!(key.name(), "p_ÿ");
        let back: Vec<_> = key.labels().collect();
        assert_eq!(back, [("a", ""), ("b", "x\u{00ff}ÿ€"), ("c", "1")]);
        assert!(key.is("p_ÿ", &sorted));
        assert!(!key.is("p_ÿ", &sorted[..2]), "a label fewer");
        assert!(!key.is("p", &sorted));
        let bare = SeriesKey::pack("p", &[]);
        assert_eq!(bare.labels().count(), 0);
        assert!(bare.is("p", &[]));
        assert!(!bare.is("p", &sorted[..1]));
    }

    #[test]
    fn series_of_one_name_sort_together() {
        let store = SeriesStore::new(100);
        for (name, symbol) in [("a", "X"), ("ab", "X"), ("a", "Y"), ("b", "X")] {
            store.record(&[sample(name, symbol, 1.0)]);
        }
        let names: Vec<String> = store
            .all()
            .iter()
            .map(|(k, _)| k.name().to_string())
            .collect();
        let firsts: Vec<usize> = ["a", "ab", "b"]
            .iter()
            .map(|n| names.iter().position(|x| x == n).unwrap())
            .collect();
        let lasts: Vec<usize> = ["a", "ab", "b"]
            .iter()
            .map(|n| names.iter().rposition(|x| x == n).unwrap())
            .collect();
        assert_eq!(lasts[0] - firsts[0], 1, "{names:?}");
        assert!(firsts.iter().zip(&lasts).all(|(f, l)| f <= l), "{names:?}");
    }
}
