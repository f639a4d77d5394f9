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
/// its plugins' series quotas), each the few fields written (`value`, `ts`) as
/// a small vector: 40,000 held series held 20 MiB as maps, ~7 MiB so.
#[derive(Debug, Default)]
pub(crate) struct UnreadSeries {
    held: HashMap<Arc<str>, Vec<(String, FieldValue)>>,
}

impl UnreadSeries {
    /// Holds the values `written` to `topic` (in order), merged over what it
    /// already holds: later values win.
    pub fn hold(&mut self, topic: Arc<str>, written: Vec<(String, FieldValue)>) {
        let held = self.held.entry(topic).or_default();
        for (name, value) in written {
            match held.iter_mut().find(|(n, _)| *n == name) {
                Some((_, v)) => *v = value,
                None => held.push((name, value)),
            }
        }
    }

    /// `fields` with what is held for `topic` merged under them (the held values
    /// are older); the topic is no longer held.
    pub fn merged_with(
        &mut self,
        topic: &str,
        mut fields: BTreeMap<String, FieldValue>,
    ) -> BTreeMap<String, FieldValue> {
        for (name, value) in self.held.remove(topic).unwrap_or_default() {
            fields.entry(name).or_insert(value);
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
            .map(|(topic, held)| (topic, held.into_iter().collect()))
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

    fn written(pairs: &[(&str, f64)]) -> Vec<(String, FieldValue)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), FieldValue::Number(*v)))
            .collect()
    }

    fn fields(pairs: &[(&str, f64)]) -> BTreeMap<String, FieldValue> {
        written(pairs).into_iter().collect()
    }

    #[test]
    fn later_values_win_and_a_published_topic_is_no_longer_held() {
        let mut unread = UnreadSeries::default();
        let t: Arc<str> = Arc::from("metrics/p");
        unread.hold(t.clone(), written(&[("value", 1.0), ("ts", 1.0)]));
        unread.hold(t.clone(), written(&[("value", 2.0), ("value", 2.5)]));
        assert_eq!(
            unread.merged_with(&t, fields(&[("value", 3.0)])),
            fields(&[("value", 3.0), ("ts", 1.0)])
        );
        assert!(unread.is_empty());
        unread.hold(t.clone(), written(&[("value", 4.0)]));
        assert_eq!(
            unread.take_all().collect::<Vec<_>>(),
            vec![(t, fields(&[("value", 4.0)]))]
        );
        assert!(unread.is_empty());
    }
}
