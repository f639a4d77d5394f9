//! The latest value of every sample series, for `/metrics`: bounded, shared by every
//! pipeline of a host, fed where a pipeline publishes its samples.
//!
//! Recorded on the data path for every sample, so a known series costs a look-up
//! by the hash its key carries and a store, without allocating; a pipeline takes the lock once
//! per batch. A new series beyond the bound evicts the least recently updated
//! tenth of the store at once (amortised). A series costs one allocation: its
//! name and labels packed into one key.

use std::sync::{Arc, Mutex};

use hashbrown::HashTable;
use wasmeter_core::sample::MetricKind;
use wasmeter_core::sample_batch::SampleBatch;

pub use wasmeter_core::series_key::SeriesKey;

/// Series kept by default; the least recently updated ones go first beyond it.
pub const DEFAULT_MAX_SERIES: u64 = 10_000;

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
    /// By [`SeriesKey::hash_value`] (seeded per process: which series collide
    /// cannot be chosen from outside).
    entries: HashTable<Entry>,
    /// Increases with every update: the eviction order.
    clock: u64,
}

struct Entry {
    /// The series (its key carries its hash: found without reading its bytes).
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

impl SeriesStore {
    /// A store of at most `max_series` series.
    pub fn new(max_series: u64) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Series {
                max: max_series.max(1) as usize,
                entries: HashTable::new(),
                clock: 0,
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Series> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records the latest value of each series of a batch.
    pub fn record(&self, batch: &SampleBatch) {
        let last = batch.last_points();
        let mut series = self.lock();
        for p in last {
            let s = batch.series_of(&p);
            let value = SeriesValue {
                kind: s.kind,
                value: p.value,
                timestamp_ms: p.timestamp_ms,
            };
            series.set(&s.key, value);
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
    fn set(&mut self, key: &SeriesKey, value: SeriesValue) {
        self.clock += 1;
        let touched = self.clock;
        let hash = key.hash_value();
        if let Some(e) = self.entries.find_mut(hash, |e| e.key == *key) {
            e.value = value;
            e.touched = touched;
            return;
        }
        if self.entries.len() >= self.max {
            self.evict_oldest();
        }
        let entry = Entry {
            key: key.clone(),
            value,
            touched,
        };
        self.entries
            .insert_unique(hash, entry, |e| e.key.hash_value());
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
    use wasmeter_core::sample::{Label, Sample};

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
        store.record(&SampleBatch::from(
            &[sample("p", "BTC", 1.0), sample("p", "ETH", 2.0)][..],
        ));
        store.record(&SampleBatch::from(&[sample("p", "BTC", 3.0)][..]));
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
            store.record(&SampleBatch::from(
                &[sample("p", &format!("S{i}"), 1.0)][..],
            ));
        }
        // S0 is updated again: S1 is now the oldest.
        store.record(&SampleBatch::from(&[sample("p", "S0", 2.0)][..]));
        store.record(&SampleBatch::from(&[sample("p", "NEW", 3.0)][..]));
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
    fn series_of_one_name_sort_together() {
        let store = SeriesStore::new(100);
        for (name, symbol) in [("a", "X"), ("ab", "X"), ("a", "Y"), ("b", "X")] {
            store.record(&SampleBatch::from(&[sample(name, symbol, 1.0)][..]));
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
