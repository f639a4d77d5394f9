//! Topics kept across restarts: each checkpoint also saves the pipeline's topics
//! (position, newest messages, state; see [`SavedTopic`]) and who created them,
//! consistently with its offsets (the task publishes nothing while it writes
//! one). At start they are restored into the topic state and the broker before
//! anything is read, so that a subscriber resumes with `since` after a restart:
//! every change after its position replayed when the saved history reaches back
//! to it, and the same epoch. After a crash, what was published after the last
//! checkpoint is lost: the broker then makes those positions unresumable
//! (`clean` is false), and the records are read and published again.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use wasmeter_core::saved::SavedTopic;

use crate::footprint::{Footprints, TopicKind};
use crate::state::lock;
use crate::topics::{Broker, Topics};

/// The checkpoint entry holding the topics (not a plugin name: those have no `:`).
pub(crate) const KEY: &str = "wasmeter:topics";

/// Version of the encoding below.
const VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Saved {
    version: u32,
    /// Written by the final checkpoint of a pipeline that stopped: nothing was
    /// published after it.
    clean: bool,
    topics: Vec<Entry>,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    /// The plugin instance that created it; empty for the pipeline's own topics.
    creator: String,
    kind: Kind,
    topic: SavedTopic,
}

#[derive(Clone, Copy, Serialize, Deserialize)]
enum Kind {
    Topic,
    Stream,
    Series,
}

impl From<TopicKind> for Kind {
    fn from(k: TopicKind) -> Self {
        match k {
            TopicKind::Topic => Kind::Topic,
            TopicKind::Stream => Kind::Stream,
            TopicKind::Series => Kind::Series,
        }
    }
}

impl From<Kind> for TopicKind {
    fn from(k: Kind) -> Self {
        match k {
            Kind::Topic => TopicKind::Topic,
            Kind::Stream => TopicKind::Stream,
            Kind::Series => TopicKind::Series,
        }
    }
}

/// The pipeline's topics (those its plugins created, and `own`, its error
/// summary) encoded for the checkpoint; `None` if the broker keeps no
/// positions.
pub(crate) fn save(
    footprints: &Footprints,
    own: &Arc<str>,
    broker: &dyn Broker,
    (max_messages, max_events): (usize, usize),
    clean: bool,
) -> Option<Vec<u8>> {
    let mut topics: Vec<Entry> = footprints
        .topics()
        .filter_map(|(topic, creator, kind)| {
            let max = match kind {
                TopicKind::Stream => max_events,
                _ => max_messages,
            };
            Some(Entry {
                creator: creator.to_string(),
                kind: kind.into(),
                topic: broker.save_topic(topic, max)?,
            })
        })
        .collect();
    if let Some(topic) = broker.save_topic(own, max_messages) {
        topics.push(Entry {
            creator: String::new(),
            kind: Kind::Topic,
            topic,
        });
    }
    if topics.is_empty() {
        return None;
    }
    let saved = Saved {
        version: VERSION,
        clean,
        topics,
    };
    match rmp_serde::to_vec_named(&saved) {
        Ok(bytes) => Some(bytes),
        Err(error) => {
            tracing::error!(%error, "cannot encode the pipeline's topics; they are not saved");
            None
        }
    }
}

/// A restored topic and the plugin instance that created it.
pub(crate) struct Created {
    pub topic: Arc<str>,
    pub creator: Arc<str>,
    pub kind: TopicKind,
}

/// What a restore brought back.
pub(crate) struct Restored {
    /// Who created each topic (for the pipeline's footprints).
    pub creators: Vec<Created>,
    /// The save was the final checkpoint of a pipeline that stopped.
    pub clean: bool,
}

/// Restores the topics of a checkpoint into the state store and the broker.
/// Topics that cannot be restored start afresh, with a new epoch, and the log
/// says why. A topic the broker already holds keeps the broker's state.
pub(crate) fn restore(pipeline: &str, bytes: &[u8], topics: &Topics) -> Restored {
    let afresh = Restored {
        creators: Vec::new(),
        clean: true,
    };
    let saved: Saved = match rmp_serde::from_slice(bytes) {
        Ok(s) => s,
        Err(error) => {
            tracing::warn!(%pipeline, %error, "the checkpoint's topics cannot be read; they start afresh (subscribers resync)");
            return afresh;
        }
    };
    if saved.version != VERSION {
        tracing::warn!(%pipeline, version = saved.version, "the checkpoint's topics are of an unknown version; they start afresh (subscribers resync)");
        return afresh;
    }
    let mut creators = Vec::new();
    let mut restored = 0usize;
    for entry in saved.topics {
        let name: Arc<str> = entry.topic.topic.as_str().into();
        // What subscribers hold is the broker's topic when it has one (a broker
        // several hosts share, or the pipeline restarted in a running host):
        // the deltas from here on are computed against that, never against an
        // older state in the checkpoint.
        match topics.broker().save_topic(&name, 1) {
            Some(held) => lock(&topics.store().entry(&name)).restore(&held),
            None => lock(&topics.store().entry(&name)).restore(&entry.topic),
        }
        if topics.broker().restore_topic(entry.topic, saved.clean) {
            restored += 1;
        }
        if !entry.creator.is_empty() {
            creators.push(Created {
                topic: name,
                creator: entry.creator.into(),
                kind: entry.kind.into(),
            });
        }
    }
    tracing::info!(%pipeline, topics = restored, clean = saved.clean, "topics restored from the checkpoint");
    Restored {
        creators,
        clean: saved.clean,
    }
}
