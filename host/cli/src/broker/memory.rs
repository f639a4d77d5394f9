//! `[broker] type = "memory"`: this host's hub orders every change (epoch, seq),
//! keeps the history and fans out, in-process.

use std::sync::Arc;

use wasmeter_core::change::TopicChange;
use wasmeter_core::saved::{SavedTopic, TakenTopic};
use wasmeter_hub::Hub;
use wasmeter_pipeline::{Broker, Refused};

/// The hub as the pipelines' broker: a change is published when it is handed
/// over, so there is never anything to flush.
pub struct HubBroker(pub Arc<Hub>);

impl Broker for HubBroker {
    fn publish(&self, change: TopicChange) -> Result<(), Refused> {
        let topic = change.topic.clone();
        self.0.publish(change).map(drop).map_err(|error| Refused {
            topic: topic.to_string(),
            reason: error.to_string(),
        })
    }

    fn remove_topic(&self, topic: &str) {
        self.0.remove_topic(topic);
    }

    fn is_read(&self, topic: &str) -> bool {
        self.0.is_read(topic)
    }

    fn watch_generation(&self) -> u64 {
        self.0.watch_generation()
    }

    fn set_dormant(&self, topic: &Arc<str>, dormant: bool) {
        self.0.set_dormant(topic, dormant);
    }

    fn save_topic(&self, topic: &str, max_messages: usize) -> Option<SavedTopic> {
        self.0.save_topic(topic, max_messages)
    }

    fn take_topic(&self, topic: &str, max_messages: usize) -> Option<Box<dyn TakenTopic>> {
        self.0.take_topic(topic, max_messages)
    }

    fn restore_topic(&self, saved: SavedTopic, clean: bool) -> bool {
        self.0.restore_topic(saved, clean)
    }
}
