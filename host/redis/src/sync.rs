//! Keeping a replica in step with Redis: each message, gap repair, position checks.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::broker::RedisBroker;
use crate::error::BrokerError;
use crate::replica::{Positioned, Replica};
use crate::status::StatusCell;
use crate::wire::Frame;

/// Messages read per history page while repairing.
const PAGE: usize = 500;
/// Topics per `heads` round trip.
const CHECK_BATCH: usize = 1000;

/// Applies frames and repairs a replica (used by the follower's task only).
pub(crate) struct Syncer {
    pub(crate) broker: RedisBroker,
    pub(crate) replica: Arc<dyn Replica>,
    pub(crate) status: Arc<StatusCell>,
    /// Topics a periodic check found behind Redis, with the local head then. A
    /// topic behind at one check may only have its changes waiting in the
    /// buffer; it is repaired if it is still behind, at the same local head, at
    /// the next check.
    pub(crate) suspects: Mutex<HashMap<Arc<str>, Option<Head>>>,
}

/// A topic's epoch and newest seq.
type Head = (Arc<str>, u64);

/// Why topics are compared with Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// After a (re)subscribe, or messages were lost: repair at once.
    Hydrate,
    /// The periodic check: repair what stayed behind since the previous one.
    Periodic,
}

impl Syncer {
    fn apply(&self, m: Positioned, continuous: bool) {
        self.replica.apply(m, continuous);
        self.status.update(|s| {
            s.applied += 1;
            if !continuous {
                s.gaps_reset += 1;
            }
        });
    }

    /// One frame from the change channel.
    pub(crate) async fn on_frame(&self, frame: Frame) {
        match frame {
            Frame::Change(m) => self.on_change(m).await,
            Frame::Removed { epoch, topic } => {
                if self.replica.head(&topic).is_some_and(|(e, _)| e == epoch) {
                    self.replica.remove(&topic);
                    self.status.update(|s| s.removals += 1);
                }
            }
        }
    }

    async fn on_change(&self, m: Positioned) {
        match self.replica.head(&m.change.topic) {
            Some((e, n)) if e == m.epoch => {
                if m.seq <= n {
                    self.status.update(|s| s.duplicates += 1);
                } else if m.seq == n + 1 {
                    self.apply(m, true);
                } else {
                    let topic = m.change.topic.clone();
                    self.repair(&topic, Some(m)).await;
                }
            }
            None if m.seq == 1 => self.apply(m, true),
            Some(_) if m.seq == 1 => self.apply(m, false),
            _ => {
                let topic = m.change.topic.clone();
                self.repair(&topic, Some(m)).await;
            }
        }
    }

    /// Brings one topic up to Redis's head from its history. `hint`: the message
    /// that revealed the gap, applied without continuity if Redis cannot be read.
    /// Returns whether anything was applied.
    pub(crate) async fn repair(&self, topic: &str, hint: Option<Positioned>) -> bool {
        match self.try_repair(topic).await {
            Ok(applied) => applied,
            Err(e) => {
                self.status.error(format!("repairing `{topic}`: {e}"));
                // Safe without history: the message carries the full state.
                match hint {
                    Some(m) => {
                        self.apply(m, false);
                        true
                    }
                    None => false,
                }
            }
        }
    }

    async fn try_repair(&self, topic: &str) -> Result<bool, BrokerError> {
        let local = self.replica.head(topic);
        let after = local.as_ref().map_or(0, |(_, n)| *n);
        let Some(mut h) = self.broker.history(topic, after, PAGE).await? else {
            return Ok(false);
        };
        let same_epoch = local.as_ref().is_some_and(|(e, _)| *e == h.epoch);
        if !same_epoch && after != 0 {
            // Recreated: read it from its oldest held message.
            match self.broker.history(topic, 0, PAGE).await? {
                Some(again) => h = again,
                None => return Ok(false),
            }
        }
        if same_epoch && !h.complete {
            // Trimmed past our newest (or Redis is behind us): the newest only.
            return match self.broker.latest(topic).await? {
                Some(m) if m.epoch == h.epoch => {
                    self.apply(m, false);
                    Ok(true)
                }
                _ => Ok(false),
            };
        }
        if h.messages.is_empty() {
            if (h.head > after || !same_epoch)
                && let Some(m) = self.broker.latest(topic).await?
            {
                let continuous = local.is_none();
                self.apply(m, continuous);
                return Ok(true);
            }
            return Ok(false);
        }
        // Same epoch: continues our newest. New here: starts the topic. Other
        // epoch: replaces it.
        let mut continuous = same_epoch || local.is_none();
        let epoch = h.epoch.clone();
        let mut applied = 0u64;
        loop {
            let full = h.messages.len() == PAGE;
            let last = h.messages.last().map(|m| m.seq);
            for m in h.messages {
                self.apply(m, continuous);
                continuous = true;
                applied += 1;
            }
            match (full, last) {
                (true, Some(last)) => match self.broker.history(topic, last, PAGE).await? {
                    Some(next) if next.epoch == epoch && next.complete => h = next,
                    _ => break,
                },
                _ => break,
            }
        }
        if same_epoch && applied > 0 {
            self.status.update(|s| s.gaps_repaired += 1);
        }
        Ok(applied > 0)
    }

    /// Compares the topics' positions with Redis's heads and repairs those behind
    /// (see [`Check`]); topics Redis no longer holds are removed.
    pub(crate) async fn check(&self, topics: &[Arc<str>], why: Check) -> Result<(), BrokerError> {
        // Suspects of topics this check does not look at (a full check's) stay.
        let mut suspects =
            std::mem::take(&mut *self.suspects.lock().unwrap_or_else(|e| e.into_inner()));
        for chunk in topics.chunks(CHECK_BATCH) {
            let heads = self.broker.heads(chunk).await?;
            for (topic, head) in chunk.iter().zip(heads) {
                let local = self.replica.head(topic);
                let suspected = suspects.remove(topic);
                match (head, local) {
                    (None, None) => {}
                    (None, Some(_)) => {
                        self.replica.remove(topic);
                        self.status.update(|s| s.removals += 1);
                    }
                    (Some((e, s)), Some((le, ls))) if e == le && s <= ls => {}
                    (Some(_), local) => {
                        let stayed = suspected.as_ref() == Some(&local);
                        if why == Check::Periodic && !stayed {
                            suspects.insert(topic.clone(), local);
                            continue;
                        }
                        if self.repair(topic, None).await && why == Check::Hydrate {
                            self.status.update(|s| s.hydrated += 1);
                        }
                    }
                }
            }
        }
        *self.suspects.lock().unwrap_or_else(|e| e.into_inner()) = suspects;
        if why == Check::Periodic {
            self.status.update(|s| s.checks += 1);
        }
        Ok(())
    }

    /// Every topic of Redis and of the replica: `why` Hydrate after a
    /// (re)subscribe or when messages were lost; Periodic now and then, to find
    /// a new topic whose only message was lost.
    pub(crate) async fn check_all(&self, why: Check) -> Result<(), BrokerError> {
        let mut all = self.broker.topics().await?;
        all.extend(self.replica.topics());
        all.sort();
        all.dedup();
        self.check(&all, why).await
    }
}
