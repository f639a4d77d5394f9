//! A connection's topics: its [`TopicSlot`]s, found by topic name.
//!
//! A hash table of the slots alone, hashed by the name their hub slot already
//! holds: a connection of 120 topics keeps 256 buckets, and a map keyed by a
//! copy of the name (a 16-byte `Arc<str>`) paid those bytes in every bucket.

use std::hash::BuildHasher;
use std::sync::Arc;

use foldhash::fast::RandomState;
use hashbrown::HashTable;
use hashbrown::hash_table::Entry;

use crate::client::TopicSlot;

/// The topics of one connection, by name.
#[derive(Debug, Default)]
pub(crate) struct TopicSlots {
    table: HashTable<TopicSlot>,
    hasher: RandomState,
}

impl TopicSlots {
    fn hash(&self, name: &str) -> u64 {
        self.hasher.hash_one(name)
    }

    /// The topic named `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&TopicSlot> {
        self.table
            .find(self.hash(name), |t| &**t.slot.topic() == name)
    }

    /// The topic named `name`, to change.
    pub(crate) fn get_mut(&mut self, name: &str) -> Option<&mut TopicSlot> {
        let hash = self.hash(name);
        self.table.find_mut(hash, |t| &**t.slot.topic() == name)
    }

    /// Keeps `topic` under its slot's name; gives back the one it replaces.
    pub(crate) fn insert(&mut self, topic: TopicSlot) -> Option<TopicSlot> {
        let hash = self.hash(topic.slot.topic());
        let hasher = &self.hasher;
        match self.table.entry(
            hash,
            |t| t.slot.topic() == topic.slot.topic(),
            |t| hasher.hash_one(&**t.slot.topic()),
        ) {
            Entry::Occupied(mut e) => Some(std::mem::replace(e.get_mut(), topic)),
            Entry::Vacant(e) => {
                e.insert(topic);
                None
            }
        }
    }

    /// Removes the topic named `name`.
    pub(crate) fn remove(&mut self, name: &str) -> Option<TopicSlot> {
        let hash = self.hash(name);
        match self.table.find_entry(hash, |t| &**t.slot.topic() == name) {
            Ok(e) => Some(e.remove().0),
            Err(_) => None,
        }
    }

    /// How many topics the connection holds.
    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    /// Every topic, in no order.
    pub(crate) fn values(&self) -> impl Iterator<Item = &TopicSlot> {
        self.table.iter()
    }

    /// Every topic's name, in no order.
    pub(crate) fn names(&self) -> Vec<Arc<str>> {
        self.table.iter().map(|t| t.slot.topic().clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::SubOptions;
    use wasmeter_core::change::TopicChange;
    use wasmeter_core::delta::Delta;
    use wasmeter_core::field::FieldValue;
    use wasmeter_hub::{Hub, HubConfig, Pattern, Slot, Subscriber};

    struct Nobody;
    impl Subscriber for Nobody {
        fn notify(&self, _: &Arc<Slot>) {}
        fn wants(&self, _: &str) -> bool {
            true
        }
    }

    fn publish(hub: &Hub, topic: &str) {
        let delta = Delta {
            changed: vec![("p".to_string(), FieldValue::Number(1.0))],
            removed: Vec::new(),
        };
        let mut state = Default::default();
        delta.apply_to(&mut state);
        hub.publish(TopicChange {
            topic: topic.into(),
            delta,
            stale: Vec::new(),
            state: Arc::new(state),
            timestamp_ms: 0,
            event: false,
        })
        .expect("a valid topic");
    }

    #[test]
    fn topics_are_found_replaced_and_removed_by_name() {
        let hub = Hub::new(HubConfig::default());
        let me: Arc<dyn Subscriber> = Arc::new(Nobody);
        let opts = Arc::new(SubOptions::default());
        let mut topics = TopicSlots::default();
        let names: Vec<String> = (0..300).map(|i| format!("t/{i}")).collect();
        for name in &names {
            publish(&hub, name);
            let (slots, _) = hub.attach_matching(&Pattern::parse(name).unwrap(), &me, 10);
            for slot in slots {
                assert!(topics.insert(TopicSlot::new(slot, opts.clone())).is_none());
            }
        }
        assert_eq!(topics.len(), 300);
        for name in &names {
            assert_eq!(&**topics.get(name).unwrap().slot.topic(), name.as_str());
        }
        assert!(topics.get("t/300").is_none());

        let again = topics.get("t/7").unwrap().slot.clone();
        let old = topics.insert(TopicSlot::new(again, opts.clone())).unwrap();
        assert_eq!(&**old.slot.topic(), "t/7");
        assert_eq!(topics.len(), 300);

        topics.get_mut("t/8").unwrap().cursor = 41;
        assert_eq!(topics.get("t/8").unwrap().cursor, 41);
        assert_eq!(&**topics.remove("t/9").unwrap().slot.topic(), "t/9");
        assert!(topics.remove("t/9").is_none() && topics.get("t/9").is_none());
        let mut left = topics.names();
        left.sort();
        left.dedup();
        assert_eq!(left.len(), 299);
        assert_eq!(topics.values().count(), 299);
    }
}
