//! The hub: topics by name, positions, and who is attached to what.

use std::collections::{BTreeMap, BTreeSet};

use foldhash::HashMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use thiserror::Error;
use wasmeter_core::change::TopicChange;
use wasmeter_core::field::TopicState;
use wasmeter_core::position::StreamPosition;
use wasmeter_core::saved::{SavedTopic, TakenTopic};
use wasmeter_core::validate::is_topic_name;

use crate::history::Capacity;
use crate::message::Message;
use crate::pattern::Pattern;
use crate::slot::{Slot, Subscriber};
use crate::topic::Topic;
use crate::watch::Watchers;

/// Bounds of the hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubConfig {
    /// Messages kept per topic for resuming subscribers and for subscribers that are
    /// a little behind. A subscriber further behind gets a snapshot instead.
    pub history_per_topic: usize,
    /// Messages kept in the histories of all state topics together: with many
    /// topics each keeps `history_budget / topics` (at least 1, at most
    /// `history_per_topic`), so that the histories' memory does not grow with
    /// the number of topics. A topic's history shrinks at its next change.
    pub history_budget: usize,
    /// Bytes the histories of all state topics hold together (each message
    /// counted by [`Message::footprint`](crate::Message::footprint): itself,
    /// its delta and one encoded frame): with many topics or large messages
    /// each topic keeps `history_bytes / topics` worth, but always its newest
    /// message. Whichever of this and `history_budget` is reached first bounds
    /// a topic's history.
    pub history_bytes: usize,
    /// Topics the hub holds at most; publishing to a new topic beyond it fails.
    pub max_topics: usize,
    /// Events kept per stream topic: how far behind a subscriber may fall, or
    /// how long it may be away, before it is told of a gap.
    pub stream_history: usize,
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            history_per_topic: 256,
            history_budget: 65_536,
            history_bytes: 16 << 20,
            max_topics: 100_000,
            stream_history: 4096,
        }
    }
}

/// Why a change was not published.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PublishError {
    /// The topic name breaks the rules of [`is_topic_name`].
    #[error("`{0}` is not a valid topic name")]
    InvalidTopic(String),
    /// An event for a topic that holds state, or a state change for a stream topic.
    #[error("`{topic}` is a {is} topic: it cannot take {offered}")]
    KindMismatch {
        /// The topic.
        topic: String,
        /// What it is: `stream` or `state`.
        is: &'static str,
        /// What was published: `events` or `state changes`.
        offered: &'static str,
    },
    /// The topic would exceed [`HubConfig::max_topics`].
    #[error("cannot create topic `{topic}`: the hub already holds its limit of {limit} topics")]
    TooManyTopics {
        /// The topic that was refused.
        topic: String,
        /// The configured limit.
        limit: usize,
    },
}

/// What the hub knows about a topic (for listings).
#[derive(Debug, Clone, PartialEq)]
pub struct TopicInfo {
    /// Topic name.
    pub name: Arc<str>,
    /// Position of the newest update.
    pub position: StreamPosition,
    /// Number of fields in the current state.
    pub fields: usize,
    /// When the newest update was made, Unix milliseconds.
    pub updated_at_ms: i64,
    /// Slots (subscribers) attached.
    pub subscribers: usize,
    /// A stream topic (events), not a state topic.
    pub stream: bool,
    /// A sample series' topic not created yet (see [`Hub::set_dormant`]): it has
    /// no position, state or subscribers.
    pub dormant: bool,
}

/// Counters for tests and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HubStats {
    /// Topics held.
    pub topics: usize,
    /// Slots attached, over all topics.
    pub slots: usize,
    /// Subscribers watching for new topics.
    pub watchers: usize,
    /// Messages published since start.
    pub published: u64,
    /// Messages held in the histories of all topics.
    pub history_messages: usize,
    /// Their footprint ([`Message::footprint`](crate::Message::footprint)), in bytes.
    pub history_bytes: usize,
}

/// Makes epochs: unique per topic lifetime and per process start.
#[derive(Debug)]
struct Epochs {
    prefix: String,
    next: AtomicU64,
}

impl Epochs {
    fn new() -> Self {
        use std::hash::{BuildHasher, Hasher};
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        // RandomState is seeded randomly per process: two hosts started in the same
        // nanosecond still get different epochs.
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(nanos);
        h.write_u32(std::process::id());
        Self {
            prefix: base36(h.finish() & 0xFFFF_FFFF_FFFF),
            next: AtomicU64::new(1),
        }
    }

    fn make(&self) -> Arc<str> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!("{}-{}", self.prefix, base36(n)).into()
    }
}

fn base36(mut n: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

#[derive(Default)]
pub(crate) struct Registry {
    topics: HashMap<Arc<str>, Arc<Topic>>,
    /// The same topics in name order: listings and patterns read ranges of it
    /// (a page costs its own length, not the number of topics).
    pub(crate) order: BTreeMap<Arc<str>, Arc<Topic>>,
    watchers: Watchers,
    /// Topics not created yet that a producer will create once someone watches
    /// for them (see [`Hub::set_dormant`]), in name order; none is in `topics`.
    dormant: BTreeSet<Arc<str>>,
    /// Changes whenever a topic is created or removed, or a dormant one is
    /// added or dropped.
    generation: u64,
}

/// Fan-out of topic changes to subscribers: assigns each change its position,
/// keeps a bounded history per topic and wakes the subscribers' slots.
pub struct Hub {
    config: HubConfig,
    epochs: Epochs,
    registry: RwLock<Registry>,
    published: AtomicU64,
    /// State topics held (the history budget is shared among them).
    state_topics: AtomicUsize,
    /// Changes whenever a subscriber starts watching for topics to be created
    /// (see [`Hub::watch_generation`]).
    watch_generation: AtomicU64,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("config", &self.config)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Hub {
    /// An empty hub.
    pub fn new(config: HubConfig) -> Self {
        Self {
            config,
            epochs: Epochs::new(),
            registry: RwLock::new(Registry::default()),
            published: AtomicU64::new(0),
            state_topics: AtomicUsize::new(0),
            watch_generation: AtomicU64::new(0),
        }
    }

    /// What a topic's history keeps now: a stream topic its `stream_history`
    /// events; a state topic its share of the budgets.
    pub(crate) fn history_capacity(&self, stream: bool) -> Capacity {
        if stream {
            return Capacity::messages(self.config.stream_history);
        }
        let per_topic = self.config.history_per_topic;
        if per_topic == 0 {
            return Capacity::messages(0);
        }
        let topics = self.state_topics.load(Ordering::Relaxed).max(1);
        Capacity {
            messages: (self.config.history_budget / topics).clamp(1, per_topic),
            bytes: self.config.history_bytes / topics,
        }
    }

    /// Counts a state topic in or out of the budget's share.
    fn count_state_topic(&self, stream: bool, added: bool) {
        if stream {
            return;
        }
        match added {
            true => self.state_topics.fetch_add(1, Ordering::Relaxed),
            false => self.state_topics.fetch_sub(1, Ordering::Relaxed),
        };
    }

    /// The hub's bounds.
    pub fn config(&self) -> &HubConfig {
        &self.config
    }

    // The registry only holds `Arc`s that are inserted or removed whole: a panic
    // elsewhere cannot leave it half-updated, so a poisoned lock is recovered.
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, Registry> {
        self.registry.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Registry> {
        self.registry.write().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn topic(&self, name: &str) -> Option<Arc<Topic>> {
        self.read().topics.get(name).cloned()
    }

    /// Publishes a change: gives it the next seq of its topic (creating the topic,
    /// with a new epoch, on first use), keeps it in the history and wakes the
    /// topic's subscribers. Returns the change's position.
    pub fn publish(&self, mut change: TopicChange) -> Result<StreamPosition, PublishError> {
        loop {
            let topic = match self.topic(&change.topic) {
                Some(t) => t,
                None => match self.create(change)? {
                    Ok(pos) => return Ok(pos),
                    Err(back) => {
                        change = back;
                        continue;
                    }
                },
            };
            check_kind(&topic, &change)?;
            match topic.append(change, self.history_capacity(topic.stream)) {
                Ok(msg) => {
                    self.count_published();
                    topic.notify_all();
                    return Ok(msg.position());
                }
                // Removed between the lookup and the append: publish to the
                // topic's next lifetime instead.
                Err(back) => change = back,
            }
        }
    }

    /// Creates the topic with `change` as its first message. The inner `Err`
    /// hands the change back when another publisher created the topic first.
    fn create(
        &self,
        change: TopicChange,
    ) -> Result<Result<StreamPosition, TopicChange>, PublishError> {
        // The first message's position, read before the topic is registered:
        // once it is, another publisher may append to it before this returns.
        let mut first = StreamPosition::default();
        let made = self.insert_new(change, |history, change| {
            let topic = Topic::new(change.topic.clone(), self.epochs.make(), history, change);
            first = topic.latest().position();
            topic
        })?;
        Ok(made.map(|_| first))
    }

    /// Inserts the topic `make` builds from `change` (given the history it may
    /// keep), tells its watchers and wakes its subscribers. The inner `Err` hands
    /// the change back when the topic exists.
    pub(crate) fn insert_new(
        &self,
        change: TopicChange,
        make: impl FnOnce(Capacity, TopicChange) -> Topic,
    ) -> Result<Result<Arc<Topic>, TopicChange>, PublishError> {
        if !is_topic_name(&change.topic) {
            return Err(PublishError::InvalidTopic(change.topic.to_string()));
        }
        let topic = {
            let mut reg = self.write();
            if reg.topics.contains_key(&change.topic) {
                return Ok(Err(change));
            }
            if reg.topics.len() >= self.config.max_topics {
                return Err(PublishError::TooManyTopics {
                    topic: change.topic.to_string(),
                    limit: self.config.max_topics,
                });
            }
            let name = change.topic.clone();
            self.count_state_topic(change.event, true);
            let history = self.history_capacity(change.event);
            let topic = Arc::new(make(history, change));
            reg.watchers.wanting(&name, |w| {
                topic.attach(w);
            });
            reg.dormant.remove(&name);
            reg.order.insert(name.clone(), topic.clone());
            reg.topics.insert(name, topic.clone());
            reg.generation += 1;
            topic
        };
        self.count_published();
        topic.notify_all();
        Ok(Ok(topic))
    }

    /// Counts one message published.
    pub(crate) fn count_published(&self) {
        self.published.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether a change of `topic` would reach a subscriber now: a topic that
    /// exists has one, or one that does not exist yet is watched for (by name,
    /// by a pattern, or by a subscriber asked about every new topic).
    pub fn is_read(&self, topic: &str) -> bool {
        let reg = self.read();
        match reg.topics.get(topic) {
            Some(t) => t.slot_count() > 0,
            None => reg.watchers.any_wants(topic),
        }
    }

    /// Says that `topic` does not exist but will be created by its producer
    /// once someone watches for it (`dormant`: a sample series nobody reads, see
    /// the pipeline's `unread.rs`), or no longer. Listings show it as dormant; a
    /// topic that exists is never dormant.
    pub fn set_dormant(&self, topic: &Arc<str>, dormant: bool) {
        let mut reg = self.write();
        let changed = match dormant {
            true => !reg.topics.contains_key(topic) && reg.dormant.insert(topic.clone()),
            false => reg.dormant.remove(topic),
        };
        if changed {
            reg.generation += 1;
        }
    }

    /// Whether `topic` is dormant (see [`Hub::set_dormant`]).
    pub fn is_dormant(&self, topic: &str) -> bool {
        self.read().dormant.contains(topic)
    }

    /// A number that changes whenever a subscriber starts watching for topics
    /// to be created: a topic nobody watched for at one generation is still
    /// not watched for while it stays the same.
    pub fn watch_generation(&self) -> u64 {
        self.watch_generation.load(Ordering::Acquire)
    }

    /// The durable part of `topic` (position, up to `max_messages` newest
    /// messages, state), to save with a checkpoint. `None` if there is no such topic.
    pub fn save_topic(&self, topic: &str, max_messages: usize) -> Option<SavedTopic> {
        self.take_topic(topic, max_messages).and_then(|t| t.saved())
    }

    /// [`Hub::save_topic`] taken for a checkpoint: what it will save as of now,
    /// lent later ([`TakenTopic::with_saved`]) while the hub goes on. Taking it
    /// copies nothing.
    pub fn take_topic(&self, topic: &str, max_messages: usize) -> Option<Box<dyn TakenTopic>> {
        self.topic(topic)
            .map(|t| Box::new(t.take(max_messages)) as Box<dyn TakenTopic>)
    }

    /// Brings back a topic saved by [`Hub::save_topic`], with its epoch and seqs,
    /// so that subscribers resume across a restart. `clean`: nothing was
    /// published to it after the save (else the next seq skips far ahead, so that
    /// no position lost with the old process can be resumed from). False if the
    /// topic already exists (it is left as it is) or `saved` holds no message.
    pub fn restore_topic(&self, saved: SavedTopic, clean: bool) -> bool {
        let mut reg = self.write();
        if reg.topics.contains_key(saved.topic.as_str())
            || reg.topics.len() >= self.config.max_topics
            || saved.messages.is_empty()
        {
            return false;
        }
        let stream = saved.stream;
        self.count_state_topic(stream, true);
        let Some(topic) = Topic::restore(saved, self.history_capacity(stream), clean) else {
            self.count_state_topic(stream, false);
            return false;
        };
        let topic = Arc::new(topic);
        reg.order.insert(topic.name.clone(), topic.clone());
        reg.topics.insert(topic.name.clone(), topic);
        reg.generation += 1;
        true
    }

    /// Removes a topic: its subscribers are told (their slots report
    /// [`Slot::is_removed`]); publishing to the name again starts a new epoch.
    /// Returns false if there was no such topic.
    pub fn remove_topic(&self, topic: &str) -> bool {
        let removed = {
            let mut reg = self.write();
            if reg.dormant.remove(topic) {
                reg.generation += 1;
            }
            let removed = reg.topics.remove(topic);
            if let Some(t) = &removed {
                reg.order.remove(topic);
                reg.generation += 1;
                self.count_state_topic(t.stream, false);
            }
            removed
        };
        let Some(t) = removed else {
            return false;
        };
        t.remove();
        true
    }

    /// The topic's current position and state.
    pub fn snapshot(&self, topic: &str) -> Option<(StreamPosition, Arc<TopicState>)> {
        let (latest, state) = self.topic(topic)?.current();
        Some((latest.position(), state))
    }

    /// Up to `limit` of the topic's held messages newer than `seq`, oldest first,
    /// its epoch, and whether the history still reaches back to `seq` (nothing
    /// newer than it is missing). `None` if there is no such topic.
    pub fn history(
        &self,
        topic: &str,
        seq: u64,
        limit: usize,
    ) -> Option<(Arc<str>, Vec<Arc<Message>>, bool)> {
        let t = self.topic(topic)?;
        let (held, complete) = t.with_log(|log| log.held_after(seq, limit));
        Some((t.epoch.clone(), held, complete))
    }

    /// What the hub knows about one topic.
    pub fn topic_info(&self, topic: &str) -> Option<TopicInfo> {
        self.topic(topic).map(|t| info(&t))
    }

    /// One page of the topics sorted by name: those that start with `prefix` and
    /// sort after `after`, at most `limit` of them; and whether more follow. Read
    /// from the topics kept in name order: a page costs its own length, however
    /// many topics there are.
    pub fn topics_page(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> (Vec<TopicInfo>, bool) {
        let start = match after {
            Some(a) if a >= prefix => Bound::Excluded(a),
            _ => Bound::Included(prefix),
        };
        let reg = self.read();
        let under = |name: &Arc<str>| name.starts_with(prefix);
        let mut topics = reg
            .order
            .range::<str, _>((start, Bound::Unbounded))
            .take_while(|(name, _)| under(name))
            .peekable();
        let mut dormant = reg
            .dormant
            .range::<str, _>((start, Bound::Unbounded))
            .take_while(|name| under(name))
            .peekable();
        // The two name-ordered sets merged (no name is in both).
        let mut page: Vec<Result<Arc<Topic>, Arc<str>>> = Vec::new();
        while page.len() <= limit {
            let next = match (topics.peek(), dormant.peek()) {
                (Some((t, _)), Some(d)) if d < t => dormant.next().map(|d| Err(d.clone())),
                (Some(_), _) => topics.next().map(|(_, t)| Ok(t.clone())),
                (None, Some(_)) => dormant.next().map(|d| Err(d.clone())),
                (None, None) => None,
            };
            match next {
                Some(item) => page.push(item),
                None => break,
            }
        }
        drop(reg);
        let more = page.len() > limit;
        page.truncate(limit);
        let page = page
            .into_iter()
            .map(|item| match item {
                Ok(t) => info(&t),
                Err(name) => dormant_info(name),
            })
            .collect();
        (page, more)
    }

    /// Attaches `sub` to an existing topic (idempotent: an existing slot of the same
    /// subscriber is returned). `None` if the topic does not exist.
    pub fn attach(&self, topic: &str, sub: &Arc<dyn Subscriber>) -> Option<Arc<Slot>> {
        self.topic(topic)?.attach(sub)
    }

    /// Attaches `sub` to existing topics matching `pattern`, at most `limit` of them
    /// (sorted by name). The flag is true when more topics matched than `limit`.
    pub fn attach_matching(
        &self,
        pattern: &Pattern,
        sub: &Arc<dyn Subscriber>,
        limit: usize,
    ) -> (Vec<Arc<Slot>>, bool) {
        // In name order already.
        let topics = self.matching(pattern);
        let truncated = topics.len() > limit;
        let slots = topics
            .iter()
            .take(limit)
            .filter_map(|t| t.attach(sub))
            .collect();
        (slots, truncated)
    }

    /// The topics `pattern` matches now, in name order: only those under the
    /// pattern's literal prefix are looked at.
    fn matching(&self, pattern: &Pattern) -> Vec<Arc<Topic>> {
        if pattern.is_exact() {
            return self.topic(pattern.as_str()).into_iter().collect();
        }
        let prefix = pattern.literal_prefix();
        self.read()
            .order
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(|(name, _)| name.starts_with(prefix))
            .filter(|(name, _)| pattern.matches(name))
            .map(|(_, t)| t.clone())
            .collect()
    }

    /// Detaches a slot: its subscriber gets nothing more from that topic.
    pub fn detach(&self, slot: &Arc<Slot>) {
        if let Some(t) = self.topic(slot.topic())
            && *t.epoch == **slot.epoch()
        {
            t.detach(slot);
        }
    }

    /// Detaches `sub` from every topic matching `pattern`. Together with
    /// [`unwatch`](Self::unwatch) first, this finds every slot a watcher could have
    /// been given, including one whose notification is still on its way.
    pub fn detach_matching(&self, pattern: &Pattern, sub: &Arc<dyn Subscriber>) {
        let topics = self.matching(pattern);
        for t in topics {
            t.detach_subscriber(sub);
        }
    }

    /// Asks `sub` about every topic created from now on ([`Subscriber::wants`]).
    pub fn watch(&self, sub: Arc<dyn Subscriber>) {
        let mut reg = self.write();
        reg.watchers.ask(sub);
        self.watch_generation.fetch_add(1, Ordering::Release);
    }

    /// Attaches `sub` to every topic created from now on that one of `patterns`
    /// matches, replacing the patterns it watched before (none: it watches
    /// nothing more). Unlike [`watch`](Self::watch), creating a topic then costs
    /// a lookup per exact name and a match per wildcard pattern, not a question
    /// to every watcher; [`Subscriber::wants`] is not asked.
    pub fn watch_patterns(&self, sub: &Arc<dyn Subscriber>, patterns: &[Pattern]) {
        let mut reg = self.write();
        reg.watchers.set_patterns(sub, patterns);
        self.watch_generation.fetch_add(1, Ordering::Release);
    }

    /// Stops telling `sub` about new topics (asked or by its patterns).
    pub fn unwatch(&self, sub: &Arc<dyn Subscriber>) {
        self.write().watchers.remove(sub);
    }

    /// A number that changes whenever a topic is created or removed: a listing
    /// taken at the same generation holds the same topics.
    pub fn generation(&self) -> u64 {
        self.read().generation
    }

    /// Counters for tests and metrics.
    pub fn stats(&self) -> HubStats {
        let reg = self.read();
        let (history_messages, history_bytes) = reg
            .topics
            .values()
            .map(|t| t.held())
            .fold((0, 0), |(m, b), (tm, tb)| (m + tm, b + tb));
        HubStats {
            topics: reg.topics.len(),
            slots: reg.topics.values().map(|t| t.slot_count()).sum(),
            history_messages,
            history_bytes,
            watchers: reg.watchers.len(),
            published: self.published.load(Ordering::Relaxed),
        }
    }
}

/// Refuses an event for a state topic and a state change for a stream topic.
pub(crate) fn check_kind(topic: &Topic, change: &TopicChange) -> Result<(), PublishError> {
    if topic.stream == change.event {
        return Ok(());
    }
    Err(PublishError::KindMismatch {
        topic: change.topic.to_string(),
        is: if topic.stream { "stream" } else { "state" },
        offered: if change.event {
            "events"
        } else {
            "state changes"
        },
    })
}

fn info(t: &Topic) -> TopicInfo {
    let (latest, state) = t.current();
    TopicInfo {
        name: t.name.clone(),
        position: latest.position(),
        fields: state.len(),
        updated_at_ms: latest.timestamp_ms(),
        subscribers: t.slot_count(),
        stream: t.stream,
        dormant: false,
    }
}

fn dormant_info(name: Arc<str>) -> TopicInfo {
    TopicInfo {
        name,
        position: StreamPosition::default(),
        fields: 0,
        updated_at_ms: 0,
        subscribers: 0,
        stream: false,
        dormant: true,
    }
}
