//! A topic as it is kept across restarts: its position, its newest messages and
//! its state, saved with a pipeline's checkpoint so that subscribers can resume
//! after the host restarted.

use serde::{Deserialize, Serialize};

use crate::delta::Delta;
use crate::field::TopicState;

/// One topic's durable part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedTopic {
    /// The topic's name.
    pub topic: String,
    /// Its epoch: positions saved under it stay valid after the restore.
    pub epoch: String,
    /// A stream topic (its messages are events).
    pub stream: bool,
    /// The lowest seq its next message may take (the newest seq + 1, or more
    /// after a restore that had to skip seqs).
    pub next_seq: u64,
    /// Its newest messages, oldest first; never empty.
    pub messages: Vec<SavedMessage>,
    /// The state after the newest message.
    pub state: TopicState,
    /// The fields stale after the newest message.
    pub stale: Vec<String>,
}

/// One message of a saved topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedMessage {
    /// Its seq.
    pub seq: u64,
    /// The seq of the message before it in the topic (`seq - 1`, except after a
    /// restore that could not be sure of what came last).
    pub prev_seq: u64,
    /// When it was published, Unix ms.
    pub timestamp_ms: i64,
    /// What it changed (for an event: the event's fields).
    pub delta: Delta,
    /// Fields it marked stale.
    pub stale: Vec<String>,
}

/// A topic taken for a checkpoint: its durable part as of that moment, made
/// whole later by the checkpoint's writer. The publishing task waits while a
/// checkpoint is taken, so taking a topic only holds on to what it will need
/// (copying and encoding a topic's newest messages at once was the pause).
pub trait TakenTopic: Send {
    /// The topic as it was when taken.
    fn saved(self: Box<Self>) -> SavedTopic;
}

/// A topic already copied whole when taken.
impl TakenTopic for SavedTopic {
    fn saved(self: Box<Self>) -> SavedTopic {
        *self
    }
}
