//! What every node receives, and the node's local copy it is applied to.

use std::sync::Arc;

use wasmeter_core::change::TopicChange;

/// A change with its place in its topic: what every node receives.
#[derive(Debug, Clone, PartialEq)]
pub struct Positioned {
    /// The topic's epoch (one lifetime of it in Redis).
    pub epoch: Arc<str>,
    /// The seq of the message before it in the topic (`seq - 1`; 0 for the first).
    pub prev_seq: u64,
    /// Its seq: 1, 2, 3... within the epoch, without holes.
    pub seq: u64,
    /// The change, with the topic's full state after it.
    pub change: TopicChange,
}

/// A node's local copy of the topics (the hub implements it). Called from the
/// follower's task: every method must return quickly and never block on I/O.
pub trait Replica: Send + Sync + 'static {
    /// The topic's local epoch and newest seq, if it holds the topic.
    fn head(&self, topic: &str) -> Option<(Arc<str>, u64)>;
    /// Applies a message. `continuous`: it follows the local newest message of the
    /// same epoch (`seq == newest + 1`), or the topic is new here. When false the
    /// local history must be dropped first, so subscribers behind it get a snapshot
    /// (`msg.change.state`), never a wrong delta; a different epoch than the local
    /// one means the topic was recreated: replace it.
    fn apply(&self, msg: Positioned, continuous: bool);
    /// The topic was removed (by its producer, or it expired in Redis).
    fn remove(&self, topic: &str);
    /// Every topic held locally, for the periodic position check.
    fn topics(&self) -> Vec<Arc<str>>;
}
