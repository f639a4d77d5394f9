//! Committing a batch to the topic state and publishing the changes: events of
//! stream topics one by one, in order; sample-series topics (`value`, `ts`) by
//! the exact difference, or held until the next tick while nobody subscribes to
//! them, or not created while nobody watches for them (see [`UnreadSeries`]);
//! without a delta plugin, every topic by the exact difference; the other
//! topics through the delta plugin, all of a batch in one call (contract 0.2.0;
//! a 0.1.0 plugin is called per topic), at most [`DIFF_BATCH`] topics a call.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use wasmeter_core::change::TopicChange;
use wasmeter_core::field::{FieldValue, TopicState};
use wasmeter_plugin::{TopicDiff, unix_now_ms};

use crate::batch::{Batch, Coalesced, Written};
use crate::calls::DeltaCalls;
use crate::footprint::TopicKind;
use crate::samples::SeriesPoint;
use crate::state::{TopicEntry, exact_diff, lock};
use crate::stats::PipelineStats;
use crate::topics::Topics;
use crate::unread::UnreadSeries;

/// Most topic changes in one call of the delta plugin: bounds the call's input
/// and output like the collector's call sizing bounds a chunk.
pub const DIFF_BATCH: usize = 512;

/// Where a batch's changes go, and what they are counted on.
pub(crate) struct Committer<'a> {
    pub topics: &'a Topics,
    pub stats: &'a PipelineStats,
}

/// A topic on its way through the delta plugin.
struct Pending {
    topic: Arc<str>,
    entry: Arc<Mutex<TopicEntry>>,
    previous: Arc<TopicState>,
    current: TopicState,
    fields: BTreeMap<String, FieldValue>,
}

impl Committer<'_> {
    /// Publishes a batch's events, then commits its topic writes.
    pub async fn commit_batch(
        &self,
        delta: Option<&mut dyn DeltaCalls>,
        mut batch: Batch,
        unread: &mut UnreadSeries,
    ) {
        let timestamp_ms = unix_now_ms();
        for (topic, fields) in std::mem::take(&mut batch.events) {
            let change =
                lock(&self.topics.store().entry(&topic)).commit_event(&topic, fields, timestamp_ms);
            self.publish(change);
        }
        self.commit_all(delta, batch.coalesced(), unread).await;
    }

    /// Commits every topic of a batch, in order within each kind of commit.
    async fn commit_all(
        &self,
        delta: Option<&mut dyn DeltaCalls>,
        writes: Vec<Coalesced>,
        unread: &mut UnreadSeries,
    ) {
        let mut through_delta = Vec::new();
        for w in writes {
            match w.kind {
                TopicKind::Series => self.commit_series(w, unread),
                TopicKind::Topic if delta.is_some() => through_delta.push(w),
                _ => {
                    let topic = w.topic.clone();
                    self.commit_exact(&topic, w.into_fields())
                }
            }
        }
        let Some(delta) = delta else {
            return;
        };
        let mut rest = through_delta.into_iter().peekable();
        while rest.peek().is_some() {
            let group: Vec<Coalesced> = rest.by_ref().take(DIFF_BATCH).collect();
            self.commit_through(delta, group).await;
        }
    }

    /// Commits new field values of one topic by their exact difference.
    pub fn commit_exact(&self, topic: &Arc<str>, fields: BTreeMap<String, FieldValue>) {
        self.count(self.topics.set_fields(topic, fields));
    }

    /// Commits a sample series' point by the exact difference.
    fn commit_point(&self, topic: &Arc<str>, point: SeriesPoint) {
        self.count(self.topics.set_point(topic, point));
    }

    /// Counts a change as published, or else as refused.
    fn count(&self, published: bool) {
        match published {
            true => PipelineStats::add(&self.stats.changes, 1),
            false => self.count_refusal(),
        }
    }

    /// Commits a sample series' new values if its topic has a subscriber (or is
    /// watched for); else holds them for the next tick (merged with what is
    /// held) if the topic exists, or keeps them dormant if it does not.
    /// (A topic written with other fields in the same batch is committed at once.)
    fn commit_series(&self, w: Coalesced, unread: &mut UnreadSeries) {
        match w.written {
            Written::Point(point) if unread.refresh_dormant(&w.topic, point) => {
                PipelineStats::add(&self.stats.series_changes_held, 1);
            }
            Written::Point(point) if !self.topics.broker().is_read(&w.topic) => {
                PipelineStats::add(&self.stats.series_changes_held, 1);
                if self.topics.store().contains(&w.topic) {
                    unread.hold(w.topic, point);
                } else {
                    self.topics.broker().set_dormant(&w.topic, true);
                    unread.keep_dormant(w.topic, point);
                }
            }
            // A point sets both of a series topic's fields: whatever was held for
            // the topic is superseded.
            Written::Point(point) => {
                unread.forget(&w.topic);
                self.commit_point(&w.topic, point);
            }
            written => {
                let fields = unread.merged_with(&w.topic, written.into_fields());
                self.commit_exact(&w.topic, fields);
            }
        }
    }

    /// Commits everything held for unread series topics, and creates the
    /// dormant ones someone watches for now. True if it committed anything.
    pub fn commit_held(&self, unread: &mut UnreadSeries) -> bool {
        let mut committed = false;
        for (topic, fields) in unread.take_all() {
            self.commit_exact(&topic, fields);
            committed = true;
        }
        let broker = self.topics.broker();
        let watched = unread.take_watched(broker.watch_generation(), |t| broker.is_read(t));
        for (topic, fields) in watched {
            self.commit_exact(&topic, fields);
            committed = true;
        }
        committed
    }

    /// Diffs a group of topics in one call and commits each.
    async fn commit_through(&self, delta: &mut dyn DeltaCalls, group: Vec<Coalesced>) {
        let pending: Vec<Pending> = group
            .into_iter()
            .map(|w| {
                let topic = w.topic.clone();
                let fields = w.into_fields();
                let entry = self.topics.store().entry(&topic);
                let (previous, current) = {
                    let e = lock(&entry);
                    (e.state().clone(), e.merged(&fields))
                };
                Pending {
                    topic,
                    entry,
                    previous,
                    current,
                    fields,
                }
            })
            .collect();
        let changes: Vec<TopicDiff<'_>> = pending
            .iter()
            .map(|p| TopicDiff {
                topic: &p.topic,
                previous: &p.previous,
                current: &p.current,
            })
            .collect();
        let deltas = delta.diff_many(&changes).await;
        drop(changes);
        let mut deltas = match deltas {
            Ok(deltas) => deltas.into_iter().map(Some).collect(),
            Err(error) => {
                tracing::debug!(plugin = delta.name(), %error, topics = pending.len(), "delta plugin failed; sending the exact differences");
                vec![None; pending.len()]
            }
        }
        .into_iter();
        for p in pending {
            let delta = match deltas.next().flatten() {
                Some(Ok(delta)) => delta,
                refused => {
                    if let Some(Err(error)) = refused {
                        tracing::debug!(topic = %p.topic, %error, "delta plugin refused a topic; sending the exact difference");
                    }
                    PipelineStats::add(&self.stats.delta_fallbacks, 1);
                    exact_diff(&p.previous, &p.current)
                }
            };
            let mut e = lock(&p.entry);
            // Another pipeline may have changed the topic meanwhile: then the delta
            // was computed against an old state; recompute it exactly.
            let delta = if Arc::ptr_eq(e.state(), &p.previous) {
                delta
            } else {
                e.exact_delta(&p.fields)
            };
            let at = (Instant::now(), unix_now_ms());
            let change = e.commit(&p.topic, delta, p.fields, Some(p.current), at);
            drop(e);
            if let Some(change) = change {
                self.publish(change);
            }
        }
    }

    /// Publishes a committed change and counts it, or counts its refusal.
    fn publish(&self, change: TopicChange) {
        self.count(self.topics.publish(change));
    }

    fn count_refusal(&self) {
        PipelineStats::add(&self.stats.changes_refused, 1);
    }
}
