//! The latest value of every sample series, for `/metrics`: bounded, shared by every
//! pipeline of a host, fed where a pipeline publishes its samples.
//!
//! Recorded on the data path for every sample, so a known series costs one hash,
//! one comparison and a store, without allocating; a pipeline takes the lock once
//! per batch. A new series beyond the bound evicts the least recently updated
//! tenth of the store at once (amortised).

use std::hash::{BuildHasher, Hash, Hasher};

use foldhash::{HashMap, HashMapExt};
use std::sync::{Arc, Mutex};

use wasmeter_core::sample::{Label, MetricKind, Sample, sort_labels};

/// Series kept by default; the least recently updated ones go first beyond it.
pub const DEFAULT_MAX_SERIES: u64 = 10_000;

/// A series: metric name and labels, sorted by label name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesKey {
    /// Metric name.
    pub name: String,
    /// `(name, value)` pairs, sorted by name.
    pub labels: Vec<(String, String)>,
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
    /// Series by the hash of name and sorted labels; collisions share a bucket.
    buckets: HashMap<u64, Vec<Entry>>,
    /// Seeded per store, so that which series collide cannot be chosen from outside.
    hasher: foldhash::fast::RandomState,
    len: usize,
    /// Increases with every update: the eviction order.
    clock: u64,
}

struct Entry {
    key: Arc<SeriesKey>,
    value: SeriesValue,
    touched: u64,
}

impl std::fmt::Debug for SeriesStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeriesStore")
            .field("series", &self.lock().len)
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

fn same(key: &SeriesKey, name: &str, labels: &[&Label]) -> bool {
    key.name == name
        && key.labels.len() == labels.len()
        && key
            .labels
            .iter()
            .zip(labels)
            .all(|((n, v), l)| *n == l.name && *v == l.value)
}

impl SeriesStore {
    /// A store of at most `max_series` series.
    pub fn new(max_series: u64) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Series {
                max: max_series.max(1) as usize,
                buckets: HashMap::new(),
                hasher: foldhash::fast::RandomState::default(),
                len: 0,
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
    pub fn all(&self) -> Vec<(Arc<SeriesKey>, SeriesValue)> {
        let series = self.lock();
        let mut all: Vec<_> = series
            .buckets
            .values()
            .flatten()
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
            .buckets
            .get_mut(&hash)
            .and_then(|b| b.iter_mut().find(|e| same(&e.key, name, labels)))
        {
            e.value = value;
            e.touched = touched;
            return;
        }
        if self.len >= self.max {
            self.evict_oldest();
        }
        let key = Arc::new(SeriesKey {
            name: name.to_string(),
            labels: labels
                .iter()
                .map(|l| (l.name.clone(), l.value.clone()))
                .collect(),
        });
        self.buckets.entry(hash).or_default().push(Entry {
            key,
            value,
            touched,
        });
        self.len += 1;
    }

    /// Drops the least recently updated tenth (at least one series).
    fn evict_oldest(&mut self) {
        let mut stamps: Vec<u64> = self.buckets.values().flatten().map(|e| e.touched).collect();
        let drop = (self.max / 10).max(1).min(stamps.len());
        let (_, cutoff, _) = stamps.select_nth_unstable(drop - 1);
        let cutoff = *cutoff;
        self.buckets.retain(|_, bucket| {
            bucket.retain(|e| e.touched > cutoff);
            !bucket.is_empty()
        });
        self.len = self.buckets.values().map(Vec::len).sum();
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
        assert_eq!(all[0].0.labels[0], ("a".to_string(), "1".to_string()));
        assert_eq!(all[0].0.labels[1].1, "BTC");
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
        let symbols: Vec<&str> = all.iter().map(|(k, _)| k.labels[1].1.as_str()).collect();
        assert!(symbols.contains(&"S0") && symbols.contains(&"NEW"));
        assert!(!symbols.contains(&"S1"), "{symbols:?}");
    }
}
