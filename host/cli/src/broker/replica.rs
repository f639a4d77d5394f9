//! This host's hub as the replica a Redis follower keeps in step.

use std::sync::Arc;

use wasmeter_hub::Hub;
use wasmeter_redis::{Positioned, Replica};

/// The hub, taking every change at the position Redis gave it.
pub struct HubReplica(pub Arc<Hub>);

impl Replica for HubReplica {
    fn head(&self, topic: &str) -> Option<(Arc<str>, u64)> {
        self.0.head(topic)
    }

    fn apply(&self, msg: Positioned, continuous: bool) {
        let topic = msg.change.topic.clone();
        let position = (msg.prev_seq, msg.seq);
        if let Err(error) = self.0.apply(&msg.epoch, position, msg.change, continuous) {
            tracing::warn!(%topic, %error, "a change from Redis was not taken");
        }
    }

    fn remove(&self, topic: &str) {
        self.0.remove_topic(topic);
    }

    fn topics(&self) -> Vec<Arc<str>> {
        self.0.topic_names()
    }
}
