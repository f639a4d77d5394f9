//! The store's references of the series the writer has written, by series: a
//! known series is appended without building its labels or looking it up in
//! the store's catalog, and a batch is appended under one lock
//! ([`Store::append_refs`]). At 10,000 symbols a batch holds thousands of
//! series; building each one's labels was a seventh of the host's CPU.

use hashbrown::HashTable;
use wasmeter_core::sample::{Label, MetricKind};
use wasmeter_tsdb::{Labels, METRIC_NAME, SeriesRef, Store};

use crate::group::SeriesGroup;

/// Why a group's samples cannot be written.
pub(crate) enum Unresolved {
    /// The series is refused (an invalid name or label, the store's series
    /// limit): its samples are counted as refused.
    Refused(wasmeter_tsdb::Error),
    /// The store failed: the batch is not written.
    Failed(wasmeter_tsdb::Error),
}

/// Series references by the hash of name and sorted labels. Holds at most one
/// entry per series of the store (bounded by its `max_series`); the labels are
/// shared with the store's catalog.
#[derive(Default)]
pub(crate) struct SeriesRefs {
    by_hash: HashTable<Known>,
}

/// A series the store knows.
struct Known {
    /// The hash of its name and sorted labels (see [`SeriesGroup::hash`]).
    hash: u64,
    labels: Labels,
    series: SeriesRef,
}

impl SeriesRefs {
    /// The store's reference for `group`'s series, created in the store if new.
    pub fn resolve(
        &mut self,
        store: &Store,
        group: &SeriesGroup<'_>,
    ) -> Result<SeriesRef, Unresolved> {
        let hash = group.hash;
        if let Some(known) = self.by_hash.find(hash, |k| {
            k.hash == hash && is_series(&k.labels, group.name, &group.labels)
        }) {
            return Ok(known.series);
        }
        let labels = Labels::new(
            group.name,
            group
                .labels
                .iter()
                .map(|l| (l.name.as_str(), l.value.as_str())),
        )
        .map_err(Unresolved::Refused)?;
        let kind = match group.kind {
            MetricKind::Gauge => wasmeter_tsdb::MetricKind::Gauge,
            MetricKind::Counter => wasmeter_tsdb::MetricKind::Counter,
        };
        let r = store.series_ref(&labels, kind).map_err(|e| match e {
            e @ wasmeter_tsdb::Error::SeriesLimit { .. } => Unresolved::Refused(e),
            e => Unresolved::Failed(e),
        })?;
        let known = Known {
            hash,
            labels,
            series: r,
        };
        self.by_hash.insert_unique(hash, known, |k| k.hash);
        Ok(r)
    }

    /// Forgets every reference (the store no longer knows one of them).
    pub fn clear(&mut self) {
        self.by_hash = HashTable::new();
    }
}

/// Whether the store's `labels` are series `name{sorted}`: the store holds the
/// name as label `__name__` and drops labels with empty values.
fn is_series(labels: &Labels, name: &str, sorted: &[&Label]) -> bool {
    let mut theirs = labels.iter().filter(|l| l.name != METRIC_NAME);
    let mut ours = sorted.iter().filter(|l| !l.value.is_empty());
    labels.metric_name() == name
        && loop {
            match (theirs.next(), ours.next()) {
                (None, None) => break true,
                (Some(a), Some(b)) if a.name == b.name && a.value == b.value => {}
                _ => break false,
            }
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_series_is_recognised_by_name_and_non_empty_labels() {
        let labels = Labels::new("price", [("symbol", "A"), ("Venue", "x")]).unwrap();
        let (symbol, venue, empty) = (
            Label::new("symbol", "A"),
            Label::new("Venue", "x"),
            Label::new("e", ""),
        );
        // Sorted by name as a group sorts them: `Venue` before `e` before `symbol`.
        assert!(is_series(&labels, "price", &[&venue, &empty, &symbol]));
        assert!(is_series(&labels, "price", &[&venue, &symbol]));
        assert!(!is_series(&labels, "volume", &[&venue, &symbol]));
        assert!(!is_series(&labels, "price", &[&symbol]));
        assert!(!is_series(
            &labels,
            "price",
            &[&venue, &symbol, &Label::new("z", "1")]
        ));
        assert!(!is_series(
            &labels,
            "price",
            &[&Label::new("Venue", "y"), &symbol]
        ));
    }
}
