//! The store's references of the series the writer has written, by series: a
//! known series is appended without building its labels or looking it up in
//! the store's catalog, and a batch is appended under one lock
//! ([`Store::append_refs`]). At 10,000 symbols a batch holds thousands of
//! series; building each one's labels was a seventh of the host's CPU.

use hashbrown::HashTable;
use wasmeter_core::sample::MetricKind;
use wasmeter_core::series_key::SeriesKey;
use wasmeter_tsdb::{Labels, SeriesRef, Store};

/// Why a series' samples cannot be written.
pub(crate) enum Unresolved {
    /// The series is refused (an invalid name or label, the store's series
    /// limit): its samples are counted as refused.
    Refused(wasmeter_tsdb::Error),
    /// The store failed: the batch is not written.
    Failed(wasmeter_tsdb::Error),
}

/// Series references by series key. Holds at most one entry per series of the
/// store (bounded by its `max_series`); the keys are shared with the batches
/// (and the collectors' declarations) they came from.
#[derive(Default)]
pub(crate) struct SeriesRefs {
    /// By [`SeriesKey::hash_value`] (seeded per process: which series collide
    /// cannot be chosen from outside).
    by_key: HashTable<Known>,
}

/// A series the store knows.
struct Known {
    /// The series (its key carries its hash: found without reading its bytes).
    key: SeriesKey,
    series: SeriesRef,
}

impl SeriesRefs {
    /// The store's reference for series `key`, created in the store if new.
    pub fn resolve(
        &mut self,
        store: &Store,
        key: &SeriesKey,
        kind: MetricKind,
    ) -> Result<SeriesRef, Unresolved> {
        let hash = key.hash_value();
        if let Some(known) = self.by_key.find(hash, |k| k.key == *key) {
            return Ok(known.series);
        }
        let labels = Labels::new(key.name(), key.labels()).map_err(Unresolved::Refused)?;
        let kind = match kind {
            MetricKind::Gauge => wasmeter_tsdb::MetricKind::Gauge,
            MetricKind::Counter => wasmeter_tsdb::MetricKind::Counter,
        };
        let r = store.series_ref(&labels, kind).map_err(|e| match e {
            e @ wasmeter_tsdb::Error::SeriesLimit { .. } => Unresolved::Refused(e),
            e => Unresolved::Failed(e),
        })?;
        let known = Known {
            key: key.clone(),
            series: r,
        };
        self.by_key
            .insert_unique(hash, known, |k| k.key.hash_value());
        Ok(r)
    }

    /// Forgets every reference (the store no longer knows one of them).
    pub fn clear(&mut self) {
        self.by_key = HashTable::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmeter_core::sample::Label;

    #[test]
    fn a_series_is_resolved_once_and_known_by_its_labels_in_any_order() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(dir.path(), Default::default()).unwrap();
        let mut refs = SeriesRefs::default();
        let a = [Label::new("symbol", "A"), Label::new("Venue", "x")];
        let b = [Label::new("Venue", "x"), Label::new("symbol", "A")];
        let first = refs
            .resolve(&store, &SeriesKey::new("price", &a), MetricKind::Gauge)
            .ok()
            .unwrap();
        let again = refs
            .resolve(&store, &SeriesKey::new("price", &b), MetricKind::Gauge)
            .ok()
            .unwrap();
        assert_eq!(first, again);
        assert_eq!(store.stats().series, 1);
        let other = refs
            .resolve(&store, &SeriesKey::new("volume", &a), MetricKind::Gauge)
            .ok()
            .unwrap();
        assert_ne!(first, other);
        // An empty label is no label to the store: the same series.
        let empty = [
            Label::new("symbol", "A"),
            Label::new("Venue", "x"),
            Label::new("e", ""),
        ];
        let same = refs
            .resolve(&store, &SeriesKey::new("price", &empty), MetricKind::Gauge)
            .ok()
            .unwrap();
        assert_eq!(same, first);
    }
}
