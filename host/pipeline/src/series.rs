//! The latest value of every sample series, for `/metrics`: bounded, shared by every
//! pipeline of a host, fed where a pipeline publishes its samples.

use std::sync::Arc;

use moka::sync::Cache;
use wasmeter_core::sample::{MetricKind, Sample};

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

/// The latest value per series (a `moka` cache: bounded, cheap to clone).
#[derive(Clone)]
pub struct SeriesStore {
    cache: Cache<Arc<SeriesKey>, SeriesValue>,
}

impl std::fmt::Debug for SeriesStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeriesStore")
            .field("series", &self.cache.entry_count())
            .finish()
    }
}

impl SeriesStore {
    /// A store of at most `max_series` series.
    pub fn new(max_series: u64) -> Self {
        Self {
            cache: Cache::builder().max_capacity(max_series).build(),
        }
    }

    /// Records the latest value of each sample's series.
    pub fn record(&self, samples: &[Sample]) {
        for s in samples {
            let mut labels: Vec<_> = s
                .labels
                .iter()
                .map(|l| (l.name.clone(), l.value.clone()))
                .collect();
            labels.sort();
            let key = Arc::new(SeriesKey {
                name: s.name.clone(),
                labels,
            });
            let value = SeriesValue {
                kind: s.kind,
                value: s.value,
                timestamp_ms: s.timestamp_ms,
            };
            self.cache.insert(key, value);
        }
    }

    /// Every series held, sorted by name and labels.
    pub fn all(&self) -> Vec<(Arc<SeriesKey>, SeriesValue)> {
        let mut all: Vec<_> = self.cache.iter().map(|(k, v)| ((*k).clone(), v)).collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
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
}
