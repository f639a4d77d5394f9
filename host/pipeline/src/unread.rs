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

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use wasmeter_core::field::FieldValue;

/// New field values of unread series topics, waiting for the next refresh.
/// Holds at most one entry per series topic the pipeline publishes (bounded by
/// its plugins' series quotas).
#[derive(Debug, Default)]
pub(crate) struct UnreadSeries {
    held: HashMap<Arc<str>, BTreeMap<String, FieldValue>>,
}

impl UnreadSeries {
    /// Holds `fields` for `topic`, merged over what it already holds (later values win).
    pub fn hold(&mut self, topic: Arc<str>, fields: BTreeMap<String, FieldValue>) {
        match self.held.get_mut(&topic) {
            Some(held) => held.extend(fields),
            None => {
                self.held.insert(topic, fields);
            }
        }
    }

    /// `fields` with what is held for `topic` merged under them (the held values
    /// are older); the topic is no longer held.
    pub fn merged_with(
        &mut self,
        topic: &str,
        fields: BTreeMap<String, FieldValue>,
    ) -> BTreeMap<String, FieldValue> {
        match self.held.remove(topic) {
            Some(mut held) => {
                held.extend(fields);
                held
            }
            None => fields,
        }
    }

    /// Everything held, to publish now; nothing is held after.
    pub fn take_all(&mut self) -> Vec<(Arc<str>, BTreeMap<String, FieldValue>)> {
        self.held.drain().collect()
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

    fn fields(pairs: &[(&str, f64)]) -> BTreeMap<String, FieldValue> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), FieldValue::Number(*v)))
            .collect()
    }

    #[test]
    fn later_values_win_and_a_published_topic_is_no_longer_held() {
        let mut unread = UnreadSeries::default();
        let t: Arc<str> = Arc::from("metrics/p");
        unread.hold(t.clone(), fields(&[("value", 1.0), ("ts", 1.0)]));
        unread.hold(t.clone(), fields(&[("value", 2.0)]));
        assert_eq!(
            unread.merged_with(&t, fields(&[("value", 3.0)])),
            fields(&[("value", 3.0), ("ts", 1.0)])
        );
        assert!(unread.is_empty());
        unread.hold(t.clone(), fields(&[("value", 4.0)]));
        assert_eq!(unread.take_all(), vec![(t, fields(&[("value", 4.0)]))]);
        assert!(unread.is_empty());
    }
}
