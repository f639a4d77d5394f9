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

/// A [`SavedTopic`] lent rather than copied: encoded as a `SavedTopic` is (field
/// for field), so a checkpoint writes a topic's newest changes without a copy of
/// each.
#[derive(Debug, Serialize)]
pub struct SavedTopicRef<'a> {
    /// See [`SavedTopic::topic`].
    pub topic: &'a str,
    /// See [`SavedTopic::epoch`].
    pub epoch: &'a str,
    /// See [`SavedTopic::stream`].
    pub stream: bool,
    /// See [`SavedTopic::next_seq`].
    pub next_seq: u64,
    /// See [`SavedTopic::messages`].
    pub messages: Vec<SavedMessageRef<'a>>,
    /// See [`SavedTopic::state`].
    pub state: &'a TopicState,
    /// See [`SavedTopic::stale`].
    pub stale: &'a [String],
}

/// A [`SavedMessage`] lent rather than copied (see [`SavedTopicRef`]).
#[derive(Debug, Serialize)]
pub struct SavedMessageRef<'a> {
    /// See [`SavedMessage::seq`].
    pub seq: u64,
    /// See [`SavedMessage::prev_seq`].
    pub prev_seq: u64,
    /// See [`SavedMessage::timestamp_ms`].
    pub timestamp_ms: i64,
    /// See [`SavedMessage::delta`].
    pub delta: &'a Delta,
    /// See [`SavedMessage::stale`].
    pub stale: &'a [String],
}

impl SavedTopicRef<'_> {
    /// The saved topic, copied.
    pub fn to_owned(&self) -> SavedTopic {
        SavedTopic {
            topic: self.topic.to_string(),
            epoch: self.epoch.to_string(),
            stream: self.stream,
            next_seq: self.next_seq,
            messages: self
                .messages
                .iter()
                .map(|m| SavedMessage {
                    seq: m.seq,
                    prev_seq: m.prev_seq,
                    timestamp_ms: m.timestamp_ms,
                    delta: m.delta.clone(),
                    stale: m.stale.to_vec(),
                })
                .collect(),
            state: self.state.clone(),
            stale: self.stale.to_vec(),
        }
    }
}

impl SavedTopic {
    /// This topic lent.
    pub fn as_ref(&self) -> SavedTopicRef<'_> {
        SavedTopicRef {
            topic: &self.topic,
            epoch: &self.epoch,
            stream: self.stream,
            next_seq: self.next_seq,
            messages: self
                .messages
                .iter()
                .map(|m| SavedMessageRef {
                    seq: m.seq,
                    prev_seq: m.prev_seq,
                    timestamp_ms: m.timestamp_ms,
                    delta: &m.delta,
                    stale: &m.stale,
                })
                .collect(),
            state: &self.state,
            stale: &self.stale,
        }
    }
}

/// A topic taken for a checkpoint: its durable part as of that moment, lent to
/// the checkpoint's writer when it encodes it. The publishing task waits while a
/// checkpoint is taken, so taking a topic only holds on to what it will need
/// (copying and encoding a topic's newest changes at once was the pause).
pub trait TakenTopic: Send {
    /// Calls `f` with the topic as it was when taken; returns what `f` returns.
    fn with_saved(&self, f: &mut dyn FnMut(&SavedTopicRef<'_>) -> bool) -> bool;

    /// The topic as it was when taken, copied.
    fn saved(&self) -> Option<SavedTopic> {
        let mut saved = None;
        self.with_saved(&mut |topic| {
            saved = Some(topic.to_owned());
            true
        });
        saved
    }
}

/// A topic already copied whole when taken.
impl TakenTopic for SavedTopic {
    fn with_saved(&self, f: &mut dyn FnMut(&SavedTopicRef<'_>) -> bool) -> bool {
        f(&self.as_ref())
    }
}
