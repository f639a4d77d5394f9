//! Sample-series topics nobody subscribes to: their new values are held here,
//! merged per topic, and published once per tick (and before every checkpoint)
//! instead of once per sample.
//!
//! Every record of a CSV trade makes four sample series, and a derived metric
//! more; most of them are read through `/metrics` and the metric history (which
//! get every sample regardless), not subscribed to. Publishing each of their
//! changes costs as much as a topic change a subscriber waits for. A series whose
//! topic has a subscriber is published at once, as before; a held value is then
//! merged into the next one. The broker says which topics have subscribers
//! ([`Broker::is_read`](crate::Broker::is_read)); one that cannot tell holds none.

use std::collections::BTreeMap;

use foldhash::HashMap;
use std::sync::Arc;

use wasmeter_core::field::FieldValue;

use crate::samples::SeriesPoint;

/// The newest point of each unread series topic, waiting for the next refresh.
/// Holds at most one entry per series topic the pipeline publishes (bounded by
/// its plugins' series quotas): a topic name and two numbers.
#[derive(Debug, Default)]
pub(crate) struct UnreadSeries {
    held: HashMap<Arc<str>, SeriesPoint>,
}

impl UnreadSeries {
    /// Holds `point` for `topic`, replacing an older one.
    pub fn hold(&mut self, topic: Arc<str>, point: SeriesPoint) {
        self.held.insert(topic, point);
    }

    /// `fields` with what is held for `topic` merged under them (the held values
    /// are older); the topic is no longer held.
    pub fn merged_with(
        &mut self,
        topic: &str,
        mut fields: BTreeMap<String, FieldValue>,
    ) -> BTreeMap<String, FieldValue> {
        if let Some(held) = self.held.remove(topic) {
            for (name, value) in held.fields() {
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

    /// Drops what is held for topics that `keep` refuses (their topics are being removed).
    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.held.retain(|topic, _| keep(topic));
    }

    /// True if nothing is held.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
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
        assert!(unread.is_empty());
        unread.hold(t.clone(), point(4.0, 4));
        assert_eq!(
            unread.take_all().collect::<Vec<_>>(),
            vec![(t, point(4.0, 4).into_map())]
        );
        assert!(unread.is_empty());
    }
}
