//! The seam between whoever produces changes and the node-local fan-out.
//!
//! The pipeline publishes through [`Broker`], never through the hub's fan-out
//! internals. Today the only implementation is the in-memory [`Hub`] itself: it
//! orders changes (epoch, seq), keeps the history and fans out, all in-process.
//!
//! Several hosts would share updates through an existing broker (NATS, Redis
//! pub/sub) by implementing this trait: `publish` sends the change to the broker,
//! which orders it; every host consumes the broker's stream and hands each
//! positioned change to its local hub, whose history then serves as the local
//! cache that subscribers resume from. Nothing above this trait (the pipeline) or
//! below the hub (the server's connections) has to change for that.

use wasmeter_core::change::TopicChange;
use wasmeter_core::position::StreamPosition;

use crate::hub::{Hub, PublishError};

/// Where changes are published.
pub trait Broker: Send + Sync + 'static {
    /// Publishes a change; returns the position it was given in its topic.
    fn publish(&self, change: TopicChange) -> Result<StreamPosition, PublishError>;

    /// Removes a topic; false if it did not exist.
    fn remove_topic(&self, topic: &str) -> bool;
}

impl Broker for Hub {
    fn publish(&self, change: TopicChange) -> Result<StreamPosition, PublishError> {
        Hub::publish(self, change)
    }

    fn remove_topic(&self, topic: &str) -> bool {
        Hub::remove_topic(self, topic)
    }
}
