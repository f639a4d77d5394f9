//! The one owner of topics: their state on this host (what subscribers hold,
//! which the deltas are computed against; staleness; eviction) and, through a
//! [`Broker`], their positions, history and fan-out.
//!
//! The broker is the seam between producing changes and delivering them: the
//! host's in-memory hub (one host), or a broker several hosts share. A change
//! is handed over with [`Broker::publish`], which refuses what can never be
//! published (a bad name, a kind mismatch, a limit) and nothing else; a broker
//! that sends changes elsewhere may keep them until [`Broker::flush`], which
//! says whether they were accepted. A pipeline flushes after each chunk and
//! before each checkpoint, so offsets are saved only for records whose changes
//! the broker accepted.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use thiserror::Error;
use wasmeter_core::change::TopicChange;
use wasmeter_core::field::FieldValue;
use wasmeter_core::saved::{SavedTopic, TakenTopic};
use wasmeter_plugin::unix_now_ms;

use crate::samples::SeriesPoint;
use crate::state::{StateConfig, TopicEntry, TopicStore, lock};

/// A change the broker will never take (retrying cannot help).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("change to `{topic}` refused: {reason}")]
pub struct Refused {
    /// The topic.
    pub topic: String,
    /// Why, in words (the broker's own error).
    pub reason: String,
}

/// Why changes already handed over were not accepted.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FlushError {
    /// The broker cannot be reached now; the changes are kept and sent by a
    /// later flush.
    #[error("the broker is unavailable: {0}")]
    Unavailable(String),
    /// This host no longer holds the lease of the pipeline that produced them:
    /// another host produces its topics now. The changes are dropped.
    #[error("pipeline `{0}` is produced by another host now (its lease was lost)")]
    Fenced(String),
}

/// Where topic changes go: positions, history and fan-out.
pub trait Broker: Send + Sync + 'static {
    /// Hands over one change, in order after those handed over before.
    fn publish(&self, change: TopicChange) -> Result<(), Refused>;

    /// Removes a topic (evicted, expired, or its creator went away).
    fn remove_topic(&self, topic: &str);

    /// Whether a change of `topic` would reach a subscriber now: the topic has
    /// one, or, when it does not exist yet, one watches for it (by its name or a
    /// pattern). Changes of sample-series topics nobody reads are held and
    /// published once per tick, and a series topic nobody watches for is not
    /// created (see `unread.rs`). A broker that cannot tell (its subscribers are
    /// on other hosts) answers true, and every change is published at once.
    fn is_read(&self, _topic: &str) -> bool {
        true
    }

    /// A number that changes whenever a subscriber starts watching for topics
    /// to be created: a topic [`is_read`](Broker::is_read) said nobody watches
    /// for is still not watched for while it stays the same.
    fn watch_generation(&self) -> u64 {
        0
    }

    /// Says that the sample series' topic `topic` is not created until someone
    /// watches for it (`dormant`), or no longer is (created, or gone): a broker
    /// that lists topics lists it as dormant.
    fn set_dormant(&self, _topic: &Arc<str>, _dormant: bool) {}

    /// Waits until every change handed over so far is accepted. A broker that
    /// publishes at once (the in-memory hub) has nothing to wait for.
    fn flush(&self) -> BoxFuture<'_, Result<(), FlushError>> {
        Box::pin(async { Ok(()) })
    }

    /// The broker pipeline `pipeline` publishes through, when it differs per
    /// pipeline (a broker several hosts share fences each pipeline's changes
    /// with its lease). `None`: this one.
    fn for_pipeline(&self, _pipeline: &str) -> Option<Arc<dyn Broker>> {
        None
    }

    /// Whether the broker keeps copies of checkpoints ([`Broker::keep_checkpoint`]).
    fn keeps_checkpoints(&self) -> bool {
        false
    }

    /// Keeps a copy of a checkpoint the pipeline just wrote (its file's bytes)
    /// where another host that takes the pipeline over finds it. A broker of one
    /// host keeps none.
    fn keep_checkpoint(&self, _bytes: Vec<u8>) -> BoxFuture<'_, Result<(), FlushError>> {
        Box::pin(async { Ok(()) })
    }

    /// The durable part of `topic` (position, up to `max_messages` newest
    /// messages, state) to save with a checkpoint; `None` when the broker keeps
    /// its positions itself (or has no such topic).
    fn save_topic(&self, _topic: &str, _max_messages: usize) -> Option<SavedTopic> {
        None
    }

    /// [`Broker::save_topic`] taken for a checkpoint while the pipeline waits:
    /// a broker that can should hold on to what it will save and lend it in
    /// [`TakenTopic::with_saved`], which the checkpoint's writer calls on its
    /// own thread. By default the topic is saved at once.
    fn take_topic(&self, topic: &str, max_messages: usize) -> Option<Box<dyn TakenTopic>> {
        self.save_topic(topic, max_messages)
            .map(|saved| Box::new(saved) as Box<dyn TakenTopic>)
    }

    /// Brings back a saved topic before anything is published to it (`clean`:
    /// nothing was published to it after the save). False if it could not.
    fn restore_topic(&self, _saved: SavedTopic, _clean: bool) -> bool {
        false
    }
}

/// The topics of a host: the state store and the broker, kept in step (a topic
/// the store drops is removed from the broker). Cheap to clone.
#[derive(Clone)]
pub struct Topics {
    store: TopicStore,
    broker: Arc<dyn Broker>,
}

impl std::fmt::Debug for Topics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Topics").finish_non_exhaustive()
    }
}

impl Topics {
    /// Topics published through `broker`, their state bounded by `config`.
    pub fn new(config: &StateConfig, broker: Arc<dyn Broker>) -> Self {
        let on_removed = broker.clone();
        let store = TopicStore::new(config, move |topic| on_removed.remove_topic(topic));
        Self { store, broker }
    }

    /// The state store (what subscribers hold, per topic).
    pub fn store(&self) -> &TopicStore {
        &self.store
    }

    /// The broker.
    pub fn broker(&self) -> &dyn Broker {
        self.broker.as_ref()
    }

    /// The same topics, published through the broker of pipeline `pipeline`
    /// (see [`Broker::for_pipeline`]).
    pub fn for_pipeline(&self, pipeline: &str) -> Topics {
        match self.broker.for_pipeline(pipeline) {
            Some(broker) => Topics {
                store: self.store.clone(),
                broker,
            },
            None => self.clone(),
        }
    }

    /// Publishes a change already committed to the store. False, and logged, if
    /// the broker refused it.
    pub fn publish(&self, change: TopicChange) -> bool {
        match self.broker.publish(change) {
            Ok(()) => true,
            Err(refused) => {
                tracing::warn!(topic = %refused.topic, reason = %refused.reason, "change not published");
                false
            }
        }
    }

    /// Removes a topic from the store and the broker.
    pub fn remove(&self, topic: &str) {
        // The store's eviction listener removes it from the broker.
        self.store.remove(topic);
    }

    /// Waits until the broker accepted everything published so far.
    pub async fn flush(&self) -> Result<(), FlushError> {
        self.broker.flush().await
    }

    /// Sets fields of a topic outside any plugin (host notices, error
    /// summaries): commits them to the state and publishes the exact
    /// difference, if any. Returns whether something was published.
    pub fn set_fields(&self, topic: &Arc<str>, fields: BTreeMap<String, FieldValue>) -> bool {
        self.commit_on(topic, |e, at| {
            let delta = e.exact_delta(&fields);
            e.commit(topic, delta, fields, None, at)
        })
    }

    /// Commits a sample series' point on its topic by the exact difference
    /// (see [`TopicEntry::commit_point`]) and publishes the change; false if
    /// nothing was published.
    pub(crate) fn set_point(&self, topic: &Arc<str>, point: SeriesPoint) -> bool {
        self.commit_on(topic, |e, (now, ms)| e.commit_point(topic, point, now, ms))
    }

    /// Commits to `topic`'s entry under its lock, now, and publishes the change
    /// after the lock is released. Whether something was published.
    fn commit_on(
        &self,
        topic: &Arc<str>,
        commit: impl FnOnce(&mut TopicEntry, (Instant, i64)) -> Option<TopicChange>,
    ) -> bool {
        let entry = self.store.entry(topic);
        let change = commit(&mut lock(&entry), (Instant::now(), unix_now_ms()));
        change.is_some_and(|change| self.publish(change))
    }

    /// Marks fields not updated within `ttl` as stale and tells subscribers,
    /// once per field. Visits every topic: call it off the async runtime.
    pub fn sweep_stale(&self, ttl: Duration) {
        let now = Instant::now();
        let timestamp_ms = unix_now_ms();
        for (topic, entry) in self.store.entries() {
            let change = lock(&entry).expire(&topic, ttl, now, timestamp_ms);
            if let Some(change) = change {
                self.publish(change);
            }
        }
    }
}
