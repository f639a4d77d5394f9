//! Sample-series topics nobody subscribes to.
//!
//! Every record of a CSV trade makes four sample series, and a derived metric
//! more; most of them are read through `/metrics` and the metric history (which
//! get every sample regardless), not subscribed to. So:
//! - a series topic nobody watches for is not created: its newest point waits
//!   here, *dormant* (a topic in the state store and the broker costs about a
//!   kilobyte; a dormant series its name and two numbers), until a subscriber
//!   watches for it (by its name or by a pattern such as `metrics/**`); the
//!   next tick then creates it with its newest value. The broker's watch
//!   generation says when the dormant series are worth asking about again;
//! - a series topic that exists but has no subscriber has its new values held,
//!   merged per topic, and published once per tick (and before every
//!   checkpoint) instead of once per sample;
//! - a series topic with a subscriber is published at once; what is held for
//!   it is merged under its next value.
//!
//! The broker says which topics have subscribers or are watched for
//! ([`Broker::is_read`](crate::Broker::is_read)); one that cannot tell holds
//! nothing and creates every topic. Dormant series are saved with the
//! checkpoint and forgotten once idle for as long as topics are.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use foldhash::HashMap;
use std::sync::Arc;

use wasmeter_core::field::FieldValue;

use crate::samples::SeriesPoint;

/// A series topic not created yet: its newest point and when it came.
#[derive(Debug, Clone, Copy)]
struct Dormant {
    point: SeriesPoint,
    touched: Instant,
}

/// The newest point of each unread series topic: held until the next refresh,
/// or dormant until someone watches for the topic. Holds at most one entry per
/// series topic the pipeline publishes (bounded by its plugins' series quotas).
#[derive(Debug)]
pub(crate) struct UnreadSeries {
    held: HashMap<Arc<str>, SeriesPoint>,
    dormant: HashMap<Arc<str>, Dormant>,
    /// The broker's watch generation when the dormant series were last asked about.
    asked_at: Option<u64>,
    /// What dormant points are stamped with (see [`UnreadSeries::tick`]).
    clock: Instant,
}

impl Default for UnreadSeries {
    fn default() -> Self {
        Self {
            held: HashMap::default(),
            dormant: HashMap::default(),
            asked_at: None,
            clock: Instant::now(),
        }
    }
}

impl UnreadSeries {
    /// Holds `point` for `topic`, which exists, replacing an older one.
    pub fn hold(&mut self, topic: Arc<str>, point: SeriesPoint) {
        self.held.insert(topic, point);
    }

    /// Sets the time dormant points are stamped with from now on (each tick:
    /// expiry needs no finer time, and a point then costs no clock read).
    pub fn tick(&mut self, now: Instant) {
        self.clock = now;
    }

    /// Keeps `point` as the newest of `topic`, which does not exist and nobody
    /// watches for.
    pub fn keep_dormant(&mut self, topic: Arc<str>, point: SeriesPoint) {
        let touched = self.clock;
        self.dormant.insert(topic, Dormant { point, touched });
    }

    /// Replaces the point of `topic` if it is dormant; false if it is not.
    pub fn refresh_dormant(&mut self, topic: &str, point: SeriesPoint) -> bool {
        let touched = self.clock;
        match self.dormant.get_mut(topic) {
            Some(d) => {
                *d = Dormant { point, touched };
                true
            }
            None => false,
        }
    }

    /// Whether `topic` is dormant.
    pub fn is_dormant(&self, topic: &str) -> bool {
        self.dormant.contains_key(topic)
    }

    /// How many series are dormant.
    pub fn dormant_count(&self) -> usize {
        self.dormant.len()
    }

    /// The newest point of `topic` if it is dormant.
    pub fn dormant_point(&self, topic: &str) -> Option<SeriesPoint> {
        self.dormant.get(topic).map(|d| d.point)
    }

    /// Forgets what is held or kept dormant for `topic` (a point that sets all
    /// its fields is being committed).
    pub fn forget(&mut self, topic: &str) {
        self.held.remove(topic);
        self.dormant.remove(topic);
    }

    /// `fields` with what is held or dormant for `topic` merged under them (those
    /// values are older); the topic is neither held nor dormant any more.
    pub fn merged_with(
        &mut self,
        topic: &str,
        mut fields: BTreeMap<String, FieldValue>,
    ) -> BTreeMap<String, FieldValue> {
        let older =
            (self.held.remove(topic)).or_else(|| self.dormant.remove(topic).map(|d| d.point));
        if let Some(older) = older {
            for (name, value) in older.fields() {
                fields.entry(name).or_insert(value);
            }
        }
        fields
    }

    /// Everything held, to publish now, one topic at a time; nothing is held
    /// once it has been iterated.
    pub fn take_all(
        &mut self,
    ) -> impl Iterator<Item = (Arc<str>, BTreeMap<String, FieldValue>)> + '_ {
        self.held
            .drain()
            .map(|(topic, point)| (topic, point.into_map()))
    }

    /// The dormant series someone watches for now (`is_read`), no longer
    /// dormant, to create with their newest values. Asks only when the broker's
    /// watch `generation` changed since the last time.
    pub fn take_watched(
        &mut self,
        generation: u64,
        mut is_read: impl FnMut(&str) -> bool,
    ) -> Vec<(Arc<str>, BTreeMap<String, FieldValue>)> {
        if self.asked_at == Some(generation) {
            return Vec::new();
        }
        self.asked_at = Some(generation);
        self.dormant
            .extract_if(|topic, _| is_read(topic))
            .map(|(topic, d)| (topic, d.point.into_map()))
            .collect()
    }

    /// Forgets the dormant series without a new point for `idle` (as of the
    /// last [`tick`](Self::tick)), as topics idle that long are removed;
    /// returns them.
    pub fn expire(&mut self, idle: Duration) -> Vec<Arc<str>> {
        let now = self.clock;
        self.dormant
            .extract_if(|_, d| now.saturating_duration_since(d.touched) >= idle)
            .map(|(topic, _)| topic)
            .collect()
    }

    /// Drops what is held or dormant for topics that `keep` refuses (their
    /// topics are being removed); returns the dormant ones dropped.
    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) -> Vec<Arc<str>> {
        self.held.retain(|topic, _| keep(topic));
        self.dormant
            .extract_if(|topic, _| !keep(topic))
            .map(|(topic, _)| topic)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(value: f64, timestamp_ms: i64) -> SeriesPoint {
        SeriesPoint {
            value,
            timestamp_ms,
        }
    }

    #[test]
    fn later_points_win_and_a_published_topic_is_no_longer_held() {
        let mut unread = UnreadSeries::default();
        let t: Arc<str> = Arc::from("metrics/p");
        unread.hold(t.clone(), point(1.0, 1));
        unread.hold(t.clone(), point(2.0, 2));
        // A write of other fields gets the held point's under it.
        let other = BTreeMap::from([("value".to_string(), FieldValue::Number(3.0))]);
        assert_eq!(
            unread.merged_with(&t, other),
            BTreeMap::from([
                ("ts".to_string(), FieldValue::Number(2.0)),
                ("value".to_string(), FieldValue::Number(3.0)),
            ])
        );
        assert_eq!(unread.take_all().count(), 0);
        unread.hold(t.clone(), point(4.0, 4));
        assert_eq!(
            unread.take_all().collect::<Vec<_>>(),
            vec![(t, point(4.0, 4).into_map())]
        );
        assert_eq!(unread.take_all().count(), 0);
    }

    #[test]
    fn dormant_series_are_asked_about_once_per_watch_generation() {
        let mut unread = UnreadSeries::default();
        let (a, b): (Arc<str>, Arc<str>) = (Arc::from("metrics/a"), Arc::from("metrics/b"));
        unread.keep_dormant(a.clone(), point(1.0, 1));
        unread.keep_dormant(b.clone(), point(1.0, 1));
        assert!(unread.refresh_dormant(&a, point(2.0, 2)));
        assert!(!unread.refresh_dormant("metrics/c", point(2.0, 2)));

        let mut asked = 0;
        let none = unread.take_watched(1, |_| {
            asked += 1;
            false
        });
        assert!(none.is_empty());
        assert_eq!(asked, 2);
        // The same generation: nobody started watching, nothing is asked.
        let same = unread.take_watched(1, |_| panic!("asked again"));
        assert!(same.is_empty());
        // A new one: the watched series leaves with its newest point.
        let watched = unread.take_watched(2, |t| t == "metrics/a");
        assert_eq!(watched, vec![(a.clone(), point(2.0, 2).into_map())]);
        assert!(!unread.is_dormant(&a) && unread.is_dormant(&b));
        assert_eq!(unread.dormant_count(), 1);
    }

    #[test]
    fn dormant_series_expire_when_idle_and_merge_under_a_write() {
        let mut unread = UnreadSeries::default();
        let t: Arc<str> = Arc::from("metrics/p");
        unread.keep_dormant(t.clone(), point(1.0, 1));
        assert!(unread.expire(Duration::from_secs(3600)).is_empty());
        assert_eq!(unread.dormant_point(&t), Some(point(1.0, 1)));
        let other = BTreeMap::from([("value".to_string(), FieldValue::Number(3.0))]);
        assert_eq!(
            unread.merged_with(&t, other),
            BTreeMap::from([
                ("ts".to_string(), FieldValue::Number(1.0)),
                ("value".to_string(), FieldValue::Number(3.0)),
            ])
        );
        assert!(!unread.is_dormant(&t));
        unread.keep_dormant(t.clone(), point(1.0, 1));
        assert_eq!(unread.expire(Duration::ZERO), std::slice::from_ref(&t));
        assert!(!unread.is_dormant(&t));
    }
}
