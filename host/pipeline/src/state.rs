//! Topic state: the latest value of every field of every topic, with staleness.
//!
//! Entries live in a bounded `moka` cache (at most `max_topics`, the least
//! recently used dropped first; a topic idle for longer than `topic_idle` is
//! dropped) and every removal is reported. Each entry is locked on its own, so
//! pipelines writing different topics never contend.
//!
//! The state kept is the state subscribers hold: the previous state with the
//! published delta applied. A change the delta plugin decided not to send (within
//! its epsilon) is therefore compared again next time, never silently lost.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use moka::notification::RemovalCause;
use moka::policy::EvictionPolicy;
use moka::sync::Cache;
use wasmeter_core::change::TopicChange;
use wasmeter_core::delta::Delta;
use wasmeter_core::field::{FieldValue, TopicState};

use crate::samples::SeriesPoint;

/// Bounds and timing of the topic state.
#[derive(Debug, Clone, PartialEq)]
pub struct StateConfig {
    /// Most topics held at once; the least recently used beyond it are dropped.
    pub max_topics: u64,
    /// A topic not updated for this long is dropped.
    pub topic_idle: Duration,
    /// Whether fields can go stale (a TTL sweep runs): only then is the time
    /// each field was set kept.
    pub track_staleness: bool,
}

impl Default for StateConfig {
    fn default() -> Self {
        Self {
            max_topics: 100_000,
            topic_idle: Duration::from_secs(24 * 3600),
            track_staleness: true,
        }
    }
}

/// One topic's state and when each field was last set.
#[derive(Debug, Default)]
pub struct TopicEntry {
    state: Arc<TopicState>,
    /// When each field was last set, unordered. A topic has a few fields, so a
    /// linear search is as fast as a map, and a `BTreeMap`'s node (~500 bytes
    /// however few fields it holds) would be paid by each of 100,000 topics.
    updated: Vec<(Box<str>, Instant)>,
    stale: Vec<String>,
    /// Whether `updated` is kept (see [`StateConfig::track_staleness`]).
    tracked: bool,
}

impl TopicEntry {
    /// An empty entry; `tracked`: keep when each field was set.
    pub fn new(tracked: bool) -> Self {
        Self {
            tracked,
            ..Self::default()
        }
    }

    /// The state subscribers hold.
    pub fn state(&self) -> &Arc<TopicState> {
        &self.state
    }

    /// The state with `fields` merged in: what the delta is computed against.
    pub fn merged(&self, fields: &BTreeMap<String, FieldValue>) -> TopicState {
        self.state.with_fields(fields.iter())
    }

    /// The exact difference that setting `fields` makes: the fields whose value
    /// is new or changed (setting fields never removes one). Same as
    /// `exact_diff(state, merged(fields))`, without copying the state.
    pub fn exact_delta(&self, fields: &BTreeMap<String, FieldValue>) -> Delta {
        self.exact_delta_of(fields.iter().map(|(k, v)| (k.as_str(), v)))
    }

    /// [`TopicEntry::exact_delta`] of fields given by reference, in name order.
    fn exact_delta_of<'f>(&self, fields: impl Iterator<Item = (&'f str, &'f FieldValue)>) -> Delta {
        Delta {
            changed: fields
                .filter(|(k, v)| self.state.get(k) != Some(*v))
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            removed: Vec::new(),
        }
    }

    /// Applies a delta (computed for the new `fields`) and returns the change to
    /// publish, or `None` if nothing changed for subscribers. A field that was
    /// stale and is set again is always sent, so subscribers see it is fresh.
    /// `expected`: the state the caller built for the delta to lead to (the
    /// merged state a delta plugin was given); it becomes the new state as it is
    /// if applying the delta gives exactly it, saving a copy of the state.
    pub fn commit(
        &mut self,
        topic: &Arc<str>,
        delta: Delta,
        fields: BTreeMap<String, FieldValue>,
        expected: Option<TopicState>,
        at: (Instant, i64),
    ) -> Option<TopicChange> {
        let fields = fields.iter().map(|(k, v)| (k.as_str(), v));
        self.commit_to(topic, delta, fields, expected, at)
    }

    /// Commits a sample series' point (its fields `ts` and `value`) by the exact
    /// difference, as [`TopicEntry::commit`] of those two fields would, without
    /// making them a map of named fields first.
    pub(crate) fn commit_point(
        &mut self,
        topic: &Arc<str>,
        point: SeriesPoint,
        now: Instant,
        timestamp_ms: i64,
    ) -> Option<TopicChange> {
        let fields = [
            ("ts", FieldValue::Number(point.timestamp_ms as f64)),
            ("value", FieldValue::Number(point.value)),
        ];
        let by_ref = || fields.iter().map(|(k, v)| (*k, v));
        let delta = self.exact_delta_of(by_ref());
        self.commit_to(topic, delta, by_ref(), None, (now, timestamp_ms))
    }

    fn commit_to<'f>(
        &mut self,
        topic: &Arc<str>,
        mut delta: Delta,
        fields: impl Iterator<Item = (&'f str, &'f FieldValue)>,
        expected: Option<TopicState>,
        (now, timestamp_ms): (Instant, i64),
    ) -> Option<TopicChange> {
        for (name, value) in fields {
            if let Some(i) = self.stale.iter().position(|s| *s == name) {
                // Set again after going stale: subscribers learn it is fresh only
                // through the delta, so send it even if its value did not change.
                self.stale.swap_remove(i);
                if !delta.changed.iter().any(|(n, _)| *n == name) {
                    delta.changed.push((name.to_string(), value.clone()));
                }
            }
            self.touch(name, now);
        }
        for name in &delta.removed {
            self.updated.retain(|(n, _)| **n != **name);
            self.stale.retain(|s| s != name);
        }
        if delta.is_empty() {
            return None;
        }
        let state = match expected {
            Some(state) if delta.turns_into(&self.state, &state) => state,
            _ => {
                let mut state = (*self.state).clone();
                delta.apply_to(&mut state);
                state
            }
        };
        self.state = Arc::new(state);
        Some(TopicChange {
            topic: topic.clone(),
            delta,
            stale: Vec::new(),
            state: self.state.clone(),
            timestamp_ms,
            event: false,
        })
    }

    /// Records that field `name` was set at `now`.
    fn touch(&mut self, name: &str, now: Instant) {
        if !self.tracked {
            return;
        }
        match self.updated.iter_mut().find(|(n, _)| **n == *name) {
            Some((_, at)) => *at = now,
            None => self.updated.push((name.into(), now)),
        }
    }

    /// Takes the state of a saved topic: what its subscribers hold after a restart.
    /// Its fields count as set now (their TTL starts again).
    pub fn restore(&mut self, saved: &wasmeter_core::saved::SavedTopic) {
        let now = Instant::now();
        self.state = Arc::new(saved.state.clone());
        self.updated = match self.tracked {
            true => saved
                .state
                .keys()
                .map(|k| (k.as_str().into(), now))
                .collect(),
            false => Vec::new(),
        };
        self.stale = saved.stale.clone();
    }

    /// Records an event of a stream topic: the topic's state becomes the event
    /// (what a new subscriber's snapshot shows) and the event is published whole.
    /// Events never go stale.
    pub fn commit_event(
        &mut self,
        topic: &Arc<str>,
        fields: Vec<(String, FieldValue)>,
        timestamp_ms: i64,
    ) -> TopicChange {
        self.updated.clear();
        self.stale.clear();
        self.state = Arc::new(fields.iter().cloned().collect());
        TopicChange {
            topic: topic.clone(),
            delta: Delta {
                changed: fields,
                removed: Vec::new(),
            },
            stale: Vec::new(),
            state: self.state.clone(),
            timestamp_ms,
            event: true,
        }
    }

    /// Marks fields not set within `ttl` as stale; returns a change naming the
    /// newly stale fields, once per field.
    pub fn expire(
        &mut self,
        topic: &Arc<str>,
        ttl: Duration,
        now: Instant,
        timestamp_ms: i64,
    ) -> Option<TopicChange> {
        let mut newly: Vec<String> = self
            .updated
            .iter()
            .filter(|(name, at)| {
                now.duration_since(*at) >= ttl && !self.stale.iter().any(|s| **s == **name)
            })
            .map(|(name, _)| name.to_string())
            .collect();
        // In name order, as subscribers have always been told.
        newly.sort_unstable();
        if newly.is_empty() {
            return None;
        }
        self.stale.extend(newly.iter().cloned());
        Some(TopicChange {
            topic: topic.clone(),
            delta: Delta::default(),
            stale: newly,
            state: self.state.clone(),
            timestamp_ms,
            event: false,
        })
    }
}

/// The state of every topic, shared by all pipelines.
#[derive(Clone)]
pub struct TopicStore {
    cache: Cache<Arc<str>, Arc<Mutex<TopicEntry>>>,
    track_staleness: bool,
}

impl TopicStore {
    /// A store; `on_removed` is told about every topic dropped (idle or over capacity).
    pub fn new(config: &StateConfig, on_removed: impl Fn(&str) + Send + Sync + 'static) -> Self {
        // Plain LRU: moka's default admission policy (TinyLFU) may refuse a new
        // topic when the store is full, dropping the state just written instead
        // of the least recently used one.
        let cache = Cache::builder()
            .eviction_policy(EvictionPolicy::lru())
            .max_capacity(config.max_topics)
            .time_to_idle(config.topic_idle)
            .eviction_listener(move |topic: Arc<Arc<str>>, _, cause| {
                if cause != RemovalCause::Replaced {
                    on_removed(&topic);
                }
            })
            .build();
        Self {
            cache,
            track_staleness: config.track_staleness,
        }
    }

    /// The entry of `topic`, created empty if new.
    pub fn entry(&self, topic: &Arc<str>) -> Arc<Mutex<TopicEntry>> {
        self.cache.get_with_by_ref(topic, || {
            Arc::new(Mutex::new(TopicEntry::new(self.track_staleness)))
        })
    }

    /// Removes `topic` (its removal is reported like any other).
    pub fn remove(&self, topic: &str) {
        self.cache.invalidate(topic);
    }

    /// Whether `topic` exists (without counting as a use of it).
    pub fn contains(&self, topic: &str) -> bool {
        self.cache.contains_key(topic)
    }

    /// How long a topic may go unchanged before it is removed, if it may.
    pub fn idle(&self) -> Option<std::time::Duration> {
        self.cache.policy().time_to_idle()
    }

    /// The current state of `topic`, if it exists.
    pub fn get(&self, topic: &str) -> Option<Arc<TopicState>> {
        self.cache.get(topic).map(|e| lock(&e).state.clone())
    }

    /// Every topic with its entry.
    pub fn entries(&self) -> Vec<(Arc<str>, Arc<Mutex<TopicEntry>>)> {
        self.cache.iter().map(|(k, v)| ((*k).clone(), v)).collect()
    }

    /// Runs moka's pending maintenance (evictions and their notifications).
    pub fn run_pending_tasks(&self) {
        self.cache.run_pending_tasks();
    }
}

/// Locks an entry; a poisoned lock (a panic elsewhere) still holds valid state.
pub fn lock(entry: &Mutex<TopicEntry>) -> std::sync::MutexGuard<'_, TopicEntry> {
    entry.lock().unwrap_or_else(|e| e.into_inner())
}

/// The exact field-level difference, used when a pipeline has no delta plugin
/// (or its delta plugin failed): changed or new fields, and removed ones.
pub fn exact_diff(previous: &TopicState, current: &TopicState) -> Delta {
    Delta {
        changed: current
            .iter()
            .filter(|(k, v)| previous.get(k) != Some(v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        removed: previous
            .keys()
            .filter(|k| !current.contains_key(k))
            .cloned()
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "trades/BTC";

    fn fields(pairs: &[(&str, f64)]) -> BTreeMap<String, FieldValue> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), FieldValue::Number(*v)))
            .collect()
    }

    /// Sets fields the way the pipeline does: merge, exact diff, commit at `at`.
    fn set(entry: &mut TopicEntry, pairs: &[(&str, f64)], at: Instant) -> Option<TopicChange> {
        let update = fields(pairs);
        let delta = entry.exact_delta(&update);
        // The shortcut is the exact difference against the merged state.
        assert_eq!(delta, exact_diff(entry.state(), &entry.merged(&update)));
        entry.commit(&Arc::from(T), delta, update, None, (at, 0))
    }

    fn expire(entry: &mut TopicEntry, ttl_s: u64, at: Instant) -> Option<TopicChange> {
        entry.expire(&Arc::from(T), Duration::from_secs(ttl_s), at, 0)
    }

    fn secs(t0: Instant, s: u64) -> Instant {
        t0 + Duration::from_secs(s)
    }

    #[test]
    fn commit_publishes_only_real_changes_and_keeps_subscriber_state() {
        let mut entry = TopicEntry::new(true);
        let now = Instant::now();
        let change = set(&mut entry, &[("price", 1.0), ("qty", 2.0)], now).unwrap();
        assert_eq!(change.delta.changed.len(), 2);
        assert_eq!(
            *change.state,
            fields(&[("price", 1.0), ("qty", 2.0)]).into()
        );
        assert!(set(&mut entry, &[("price", 1.0)], now).is_none());
    }

    #[test]
    fn fields_go_stale_once_and_recover_when_set() {
        let mut entry = TopicEntry::new(true);
        let t0 = Instant::now();
        set(&mut entry, &[("a", 1.0), ("b", 2.0)], t0);
        assert!(expire(&mut entry, 10, secs(t0, 5)).is_none());
        set(&mut entry, &[("a", 3.0)], secs(t0, 8));
        let change = expire(&mut entry, 10, secs(t0, 12)).unwrap();
        assert_eq!(change.stale, ["b"]);
        assert!(change.delta.is_empty());
        assert!(expire(&mut entry, 10, secs(t0, 13)).is_none(), "told once");
        assert_eq!(expire(&mut entry, 10, secs(t0, 19)).unwrap().stale, ["a"]);
    }

    #[test]
    fn a_stale_field_set_again_to_the_same_value_is_sent() {
        let mut entry = TopicEntry::new(true);
        let t0 = Instant::now();
        set(&mut entry, &[("a", 1.0)], t0);
        assert_eq!(expire(&mut entry, 1, secs(t0, 2)).unwrap().stale, ["a"]);
        let change = set(&mut entry, &[("a", 1.0)], secs(t0, 3))
            .expect("the refreshed field is published although its value is unchanged");
        assert_eq!(
            change.delta.changed,
            vec![("a".to_string(), FieldValue::Number(1.0))]
        );
        assert!(set(&mut entry, &[("a", 1.0)], secs(t0, 3)).is_none());
    }

    #[test]
    fn without_staleness_no_field_times_are_kept_and_nothing_goes_stale() {
        let mut entry = TopicEntry::new(false);
        let t0 = Instant::now();
        set(&mut entry, &[("a", 1.0), ("b", 2.0)], t0);
        assert!(entry.updated.is_empty());
        assert!(expire(&mut entry, 1, secs(t0, 10)).is_none());
    }

    #[test]
    fn store_reports_evicted_topics() {
        let removed = Arc::new(Mutex::new(Vec::new()));
        let sink = removed.clone();
        let store = TopicStore::new(
            &StateConfig {
                max_topics: 1,
                topic_idle: Duration::from_secs(3600),
                track_staleness: true,
            },
            move |t| sink.lock().unwrap().push(t.to_string()),
        );
        for t in ["a", "b", "c"] {
            store.entry(&Arc::from(t));
            store.run_pending_tasks();
        }
        // The least recently used go: the topic written last stays.
        let kept: Vec<_> = store.entries().into_iter().map(|(t, _)| t).collect();
        assert_eq!(kept, [Arc::from("c")]);
        assert_eq!(*removed.lock().unwrap(), ["a", "b"]);
    }

    /// A point commits as its two fields set through a map would: the same
    /// changes (a field set again after going stale included) and states.
    #[test]
    fn a_point_commits_as_its_fields_would() {
        let t0 = Instant::now();
        let (mut by_map, mut by_point) = (TopicEntry::new(true), TopicEntry::new(true));
        let points = [
            (1.0, 10),
            (1.0, 11),
            (2.0, 11),
            (2.0, 11),
            (-0.0, 12),
            (0.0, 13),
        ];
        for (i, (value, timestamp_ms)) in points.into_iter().enumerate() {
            let at = secs(t0, 10 * i as u64);
            if i == 3 {
                // Both fields go stale; set again unchanged, they are sent.
                assert_eq!(expire(&mut by_map, 5, at), expire(&mut by_point, 5, at));
            }
            let point = SeriesPoint {
                value,
                timestamp_ms,
            };
            let fields = point.into_map();
            let delta = by_map.exact_delta(&fields);
            let expected = by_map.commit(&Arc::from(T), delta, fields, None, (at, 0));
            let got = by_point.commit_point(&Arc::from(T), point, at, 0);
            assert_eq!(got, expected, "point #{i}");
            assert_eq!(by_point.state(), by_map.state());
        }
    }
}
