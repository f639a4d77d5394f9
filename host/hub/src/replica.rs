//! The hub as a replica of topics positioned elsewhere: when several hosts share
//! topics through a broker, the broker gives each change its `(epoch, seq)` and
//! every host's hub takes it at that position, so that all hosts serve the same
//! positions and states. The hub keeps its history and fans out as for its own
//! publishes; resuming subscribers are served from it.

use std::sync::Arc;

use wasmeter_core::change::TopicChange;

use crate::hub::{Hub, PublishError, check_kind};
use crate::topic::Topic;

/// What [`Hub::apply`] did with a positioned change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The topic was new here: it starts at the change's position.
    Created,
    /// The change followed the newest message held.
    Appended,
    /// The change did not follow the newest message held: the history was
    /// dropped, so subscribers at an older position get a snapshot.
    Reset,
    /// The topic here had another epoch (it was recreated): it was replaced.
    Replaced,
    /// The position is not newer than the newest held: nothing changed.
    Duplicate,
}

impl Hub {
    /// Takes a change at the position a broker gave it: `(prev_seq, seq)` of
    /// `epoch`. `continuous`: the caller knows nothing is missing between the
    /// newest message held and this one (it is checked too: the change's
    /// `prev_seq` must be the newest seq held); otherwise the topic's history is
    /// dropped first. A change of another epoch replaces the topic: its
    /// subscribers are told it was removed, and watchers of its name get the new one.
    pub fn apply(
        &self,
        epoch: &str,
        position: (u64, u64),
        change: TopicChange,
        continuous: bool,
    ) -> Result<Applied, PublishError> {
        let mut replaced = false;
        if let Some(topic) = self.topic(&change.topic) {
            if *topic.epoch != *epoch {
                self.remove_topic(&change.topic);
                replaced = true;
            } else {
                check_kind(&topic, &change)?;
                if position.1 <= topic.latest().seq() {
                    return Ok(Applied::Duplicate);
                }
                let capacity = self.history_capacity(topic.stream);
                let follows = continuous && position.0 == topic.latest().seq();
                match topic.append_at(change, position, follows, capacity) {
                    Ok(_) => {
                        self.count_published();
                        topic.notify_all();
                        return Ok(match follows {
                            true => Applied::Appended,
                            false => Applied::Reset,
                        });
                    }
                    // Removed meanwhile: start it afresh below.
                    Err(back) => return self.apply(epoch, position, back, continuous),
                }
            }
        }
        let made = self.insert_new(change, |history, change| {
            Topic::positioned(
                change.topic.clone(),
                epoch.into(),
                position,
                history,
                change,
            )
        })?;
        if let Err(back) = made {
            // Created meanwhile by another caller: take it as a change to that.
            return self.apply(epoch, position, back, continuous);
        }
        Ok(if replaced {
            Applied::Replaced
        } else {
            Applied::Created
        })
    }

    /// Every topic's name, in name order.
    pub fn topic_names(&self) -> Vec<Arc<str>> {
        self.read().order.keys().cloned().collect()
    }

    /// The topic's epoch and newest seq.
    pub fn head(&self, topic: &str) -> Option<(Arc<str>, u64)> {
        let t = self.topic(topic)?;
        let seq = t.latest().seq();
        Some((t.epoch.clone(), seq))
    }
}
