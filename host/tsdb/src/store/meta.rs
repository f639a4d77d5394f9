//! Metadata reads (`select`, label names and values, a series' kind) and the
//! store's statistics.

use std::collections::BTreeSet;

use super::{Store, StoreStats};
use crate::error::{Error, Result};
use crate::labels::{Labels, MetricKind};
use crate::matcher::{self, Matcher};
use crate::tier::Tier;

impl Store {
    /// The kind recorded for a series.
    pub fn kind(&self, labels: &Labels) -> Option<MetricKind> {
        let cat = self.inner.catalog.read();
        cat.get(labels).and_then(|id| cat.entry(id)).map(|e| e.kind)
    }

    /// Series matching `matchers` with data in `[start_ms, end_ms]`
    /// (`/api/v1/series`). At least one matcher must not match the empty string.
    pub fn select(&self, matchers: &[Matcher], start_ms: i64, end_ms: i64) -> Result<Vec<Labels>> {
        require_selector(matchers)?;
        let mut series = Vec::new();
        self.for_each_matching(matchers, start_ms, end_ms, |labels| {
            series.push(labels.clone())
        });
        Ok(series)
    }

    /// Label names (`__name__` included) of the series matching `matchers`
    /// (all series if empty) with data in `[start_ms, end_ms]`, sorted
    /// (`/api/v1/labels`).
    pub fn label_names(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<String>> {
        let mut names = BTreeSet::new();
        self.for_each_matching(matchers, start_ms, end_ms, |labels| {
            for l in labels.iter() {
                if !names.contains(&l.name) {
                    names.insert(l.name.clone());
                }
            }
        });
        Ok(names.into_iter().collect())
    }

    /// Values of label `name` among the series matching `matchers` (all if
    /// empty) with data in `[start_ms, end_ms]`, sorted (`/api/v1/label/<name>/values`).
    pub fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<String>> {
        let mut values = BTreeSet::new();
        self.for_each_matching(matchers, start_ms, end_ms, |labels| {
            if let Some(v) = labels.get(name)
                && !values.contains(v)
            {
                values.insert(v.to_string());
            }
        });
        Ok(values.into_iter().collect())
    }

    /// Calls `each` with the labels of every series matching `matchers` with
    /// data in `[start_ms, end_ms]`, under the catalog's read lock.
    fn for_each_matching(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
        mut each: impl FnMut(&Labels),
    ) {
        let ids = self.inner.select_ids(matchers, start_ms, end_ms);
        let cat = self.inner.catalog.read();
        for id in ids {
            if let Some(e) = cat.entry(id) {
                each(&e.labels);
            }
        }
    }

    /// The oldest timestamp held per tier (`i64::MAX` if none), as
    /// [`StoreStats::tier_min_ms`], without the writer's lock [`Store::stats`]
    /// takes: a query can ask it without waiting for a commit.
    pub fn tier_min_ms(&self) -> [i64; 4] {
        self.inner.parts.read().tier_min
    }

    /// Counters and sizes.
    pub fn stats(&self) -> StoreStats {
        let w = self.inner.writer.lock();
        let mut st = StoreStats {
            series: self.inner.catalog.read().len(),
            now_ms: self.inner.head.read().now,
            ..StoreStats::default()
        };
        {
            let parts = self.inner.parts.read();
            for tier in Tier::ALL {
                st.partitions[tier.index()] = parts.tiers[tier.index()].len();
                st.partition_bytes[tier.index()] = parts.tiers[tier.index()]
                    .values()
                    .map(|p| p.size_bytes())
                    .sum();
                st.chunks[tier.index()] = parts.tiers[tier.index()]
                    .values()
                    .map(|p| p.chunk_count())
                    .sum();
            }
            st.tier_min_ms = parts.tier_min;
        }
        st.wal_bytes = w.wal.size_bytes();
        st.checkpoint_bytes = w.checkpoint_bytes;
        st.catalog_bytes = self.inner.catalog.read().size_bytes();
        st.disk_bytes = self.inner.disk_bytes(&w);
        st.deleted_by_age = w.deleted_by_age;
        st.deleted_by_size = w.deleted_by_size;
        st.series_dropped = w.series_dropped;
        let cs = self.inner.state.lock();
        st.durable_seq = cs.durable;
        st.last_commit_error = cs.last_error.clone();
        st
    }
}

/// Refuses a selector that every series would match (as Prometheus does).
pub(super) fn require_selector(matchers: &[Matcher]) -> Result<()> {
    if matchers.iter().all(|m| m.matches_empty()) {
        return Err(Error::EmptySelector {
            matchers: matcher::show(matchers),
        });
    }
    Ok(())
}

impl super::Inner {
    /// Ids of series matching `matchers` (all if empty) with data in `[start, end]`.
    fn select_ids(&self, matchers: &[Matcher], start: i64, end: i64) -> Vec<u32> {
        let cat = self.catalog.read();
        let ids = cat.select(matchers);
        let head = self.head.read();
        ids.into_iter()
            .filter(|&id| {
                head.series
                    .get(id as usize)
                    .is_some_and(|s| s.last_t != i64::MIN && s.min_t <= end && s.last_t >= start)
            })
            .collect()
    }
}
