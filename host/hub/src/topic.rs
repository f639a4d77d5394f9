//! One topic: its stream position, history and the slots of its subscribers.

use std::sync::atomic::{AtomicBool, Ordering};

use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use wasmeter_core::field::TopicState;
use wasmeter_core::saved::{SavedMessageRef, SavedTopic, SavedTopicRef, TakenTopic};

use wasmeter_core::change::TopicChange;

use crate::history::{Capacity, Coverage, History};
use crate::message::Message;
use crate::slot::{Slot, Subscriber};
use crate::slot_set::SlotSet;

/// A topic: one epoch of one named stream.
#[derive(Debug)]
pub(crate) struct Topic {
    pub(crate) name: Arc<str>,
    pub(crate) epoch: Arc<str>,
    /// A stream topic (its messages are events), fixed by its first message.
    pub(crate) stream: bool,
    log: RwLock<Log>,
    slots: Mutex<SlotSet>,
    removed: AtomicBool,
}

/// How far the first seq after a restore from an unclean checkpoint skips: past
/// any seq published after the checkpoint and lost with the process (no topic
/// publishes 2^32 changes between two checkpoints), so that no position a
/// subscriber saw then can be mistaken for one published now.
pub(crate) const RESTORE_SKIP: u64 = 1 << 32;

/// The ordered part of a topic, under one lock: publishing is a short write.
#[derive(Debug)]
pub(crate) struct Log {
    last: Arc<Message>,
    history: History,
    /// The lowest seq the next message may take: the newest + 1, except after a
    /// restore from an unclean checkpoint (see [`RESTORE_SKIP`]).
    next_min: u64,
}

/// A read-only look at a topic's log, held under its lock: keep the work short
/// (clone the `Arc`s you need) and do not call into the hub from inside.
pub struct LogView<'a> {
    log: &'a Log,
}

impl LogView<'_> {
    /// The newest message; its state is the topic's current state.
    pub fn latest(&self) -> &Arc<Message> {
        &self.log.last
    }

    /// The oldest message still held.
    pub fn oldest(&self) -> &Arc<Message> {
        self.log.history.get(0).unwrap_or(&self.log.last)
    }

    /// Up to `limit` of the held messages newer than `seq`, oldest first, and
    /// whether none newer than `seq` is missing from them (the history still
    /// reaches back to `seq`).
    pub fn held_after(&self, seq: u64, limit: usize) -> (Vec<Arc<Message>>, bool) {
        let last = self.log.last.seq();
        let complete =
            seq >= last || matches!(self.log.history.coverage(seq, last), Coverage::From(_));
        let start = self.log.history.first_after(seq);
        let held = (start..self.log.history.len())
            .filter_map(|i| self.log.history.get(i))
            .take(limit)
            .cloned()
            .collect();
        (held, complete)
    }

    /// How many messages follow `seq`, or `None` when some of them are no longer
    /// held (see [`LogView::after`]).
    pub fn count_after(&self, seq: u64) -> Option<usize> {
        match self.log.history.coverage(seq, self.log.last.seq()) {
            Coverage::Gap => None,
            Coverage::From(start) => Some(self.log.history.len() - start),
        }
    }

    /// Every message after `seq`, oldest first, or `None` when some of them are no
    /// longer held (or `seq` is newer than the newest): never a partial list.
    pub fn after(&self, seq: u64) -> Option<impl Iterator<Item = &Arc<Message>> + '_> {
        match self.log.history.coverage(seq, self.log.last.seq()) {
            Coverage::Gap => None,
            Coverage::From(start) => {
                let end = self.log.history.len();
                Some((start..end).filter_map(move |i| self.log.history.get(i)))
            }
        }
    }
}

impl Topic {
    /// A topic whose first message is `change` at seq 1; a stream topic if
    /// `change` is an event.
    pub(crate) fn new(
        name: Arc<str>,
        epoch: Arc<str>,
        history: Capacity,
        change: TopicChange,
    ) -> Self {
        Self::positioned(name, epoch, (0, 1), history, change)
    }

    /// A topic positioned elsewhere (by a broker several hosts share): its first
    /// message here is `change` at `(prev_seq, seq)` of `epoch`.
    pub(crate) fn positioned(
        name: Arc<str>,
        epoch: Arc<str>,
        (prev_seq, seq): (u64, u64),
        history: Capacity,
        change: TopicChange,
    ) -> Self {
        let stream = change.event;
        let first = Arc::new(Message::new(
            name.clone(),
            epoch.clone(),
            (prev_seq, seq),
            change,
            &[],
        ));
        let mut h = History::default();
        h.push(first.clone(), history);
        Self::from_log(name, epoch, stream, h, first, seq + 1)
    }

    fn from_log(
        name: Arc<str>,
        epoch: Arc<str>,
        stream: bool,
        history: History,
        last: Arc<Message>,
        next_min: u64,
    ) -> Self {
        Self {
            name,
            epoch,
            stream,
            log: RwLock::new(Log {
                last,
                history,
                next_min,
            }),
            slots: Mutex::new(SlotSet::default()),
            removed: AtomicBool::new(false),
        }
    }

    /// A topic as it was saved, with its epoch, seqs and newest messages. After
    /// an unclean stop (`clean` false: things may have been published after the
    /// save), the next seq skips [`RESTORE_SKIP`] past the lowest one it could
    /// have taken, so that each unclean restore of the same save skips further
    /// once the restored topic is saved again. `None` if `saved` holds no message.
    pub(crate) fn restore(saved: SavedTopic, history: Capacity, clean: bool) -> Option<Self> {
        let name: Arc<str> = saved.topic.into();
        let epoch: Arc<str> = saved.epoch.into();
        let state = Arc::new(saved.state);
        let mut h = History::default();
        let count = saved.messages.len();
        let next_min = match clean {
            true => saved.next_seq,
            false => saved.next_seq.saturating_add(RESTORE_SKIP),
        };
        let mut last = None;
        // Only the newest message keeps the state (snapshots); the others are
        // retired as soon as the next one follows.
        for (i, m) in saved.messages.into_iter().enumerate() {
            let stale_before = if i + 1 == count {
                &saved.stale[..]
            } else {
                &[]
            };
            let msg = Arc::new(Message::new(
                name.clone(),
                epoch.clone(),
                (m.prev_seq, m.seq),
                TopicChange {
                    topic: name.clone(),
                    delta: m.delta,
                    stale: m.stale,
                    state: state.clone(),
                    timestamp_ms: m.timestamp_ms,
                    event: saved.stream,
                },
                stale_before,
            ));
            if let Some(prev) = last.replace(msg.clone()) {
                prev.retire();
            }
            h.push(msg, history);
        }
        let last = last?;
        let next_min = next_min.max(last.seq() + 1);
        Some(Self::from_log(name, epoch, saved.stream, h, last, next_min))
    }

    /// The topic taken for a checkpoint: its newest message, state and position
    /// now; the messages before the newest are read from the history when
    /// [`TakenTopic::with_saved`] lends it, so taking it copies nothing.
    pub(crate) fn take(self: &Arc<Self>, max_messages: usize) -> Taken {
        let log = self.read_log();
        Taken {
            topic: self.clone(),
            // The newest message is never retired while the log is locked.
            state: log.last.state(),
            last: log.last.clone(),
            next_seq: log.next_min.max(log.last.seq() + 1),
            max_messages,
        }
    }

    // The locks below guard data that is only ever replaced whole (an `Arc`, a
    // `Vec` of `Arc`s), so a panic elsewhere cannot leave it half-written: a
    // poisoned lock is recovered rather than propagated.
    fn read_log(&self) -> RwLockReadGuard<'_, Log> {
        self.log.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write_log(&self) -> RwLockWriteGuard<'_, Log> {
        self.log.write().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_slots(&self) -> MutexGuard<'_, SlotSet> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends the next message, keeping what fits `capacity` in the history;
    /// gives the change back if the topic was removed.
    pub(crate) fn append(
        &self,
        change: TopicChange,
        capacity: Capacity,
    ) -> Result<Arc<Message>, TopicChange> {
        let mut log = self.write_log();
        if self.removed.load(Ordering::Acquire) {
            return Err(change);
        }
        let prev = log.last.seq();
        let seq = (prev + 1).max(log.next_min);
        let msg = Arc::new(Message::new(
            self.name.clone(),
            self.epoch.clone(),
            (prev, seq),
            change,
            log.last.stale_now(),
        ));
        log.history.push(msg.clone(), capacity);
        std::mem::replace(&mut log.last, msg.clone()).retire();
        Ok(msg)
    }

    /// Appends a message positioned elsewhere at `(prev_seq, seq)`. Unless it is
    /// `continuous` (it follows the newest message held), the history is dropped
    /// first: subscribers at an older position then get a snapshot. Gives the
    /// change back if the topic was removed.
    pub(crate) fn append_at(
        &self,
        change: TopicChange,
        (prev_seq, seq): (u64, u64),
        continuous: bool,
        capacity: Capacity,
    ) -> Result<Arc<Message>, TopicChange> {
        let mut log = self.write_log();
        if self.removed.load(Ordering::Acquire) {
            return Err(change);
        }
        let continuous = continuous && prev_seq == log.last.seq();
        let stale_before = match continuous {
            true => log.last.stale_now().to_vec(),
            false => Vec::new(),
        };
        let msg = Arc::new(Message::new(
            self.name.clone(),
            self.epoch.clone(),
            (prev_seq, seq),
            change,
            &stale_before,
        ));
        if !continuous {
            log.history = History::default();
        }
        log.history.push(msg.clone(), capacity);
        log.next_min = seq + 1;
        std::mem::replace(&mut log.last, msg.clone()).retire();
        Ok(msg)
    }

    /// Wakes every subscriber of the topic (each at most once until it reads).
    pub(crate) fn notify_all(&self) {
        for slot in self.lock_slots().iter() {
            slot.mark();
        }
    }

    /// Marks the topic removed, wakes its subscribers (they see [`Slot::is_removed`])
    /// and drops them from the topic.
    pub(crate) fn remove(&self) -> usize {
        {
            let _log = self.write_log();
            self.removed.store(true, Ordering::Release);
        }
        let slots = std::mem::take(&mut *self.lock_slots());
        for slot in slots.iter() {
            slot.mark();
        }
        slots.len()
    }

    pub(crate) fn is_removed(&self) -> bool {
        self.removed.load(Ordering::Acquire)
    }

    pub(crate) fn latest(&self) -> Arc<Message> {
        self.read_log().last.clone()
    }

    /// The newest message and the state after it, read together (the newest
    /// message is never retired while the log is locked).
    pub(crate) fn current(&self) -> (Arc<Message>, Arc<wasmeter_core::field::TopicState>) {
        let log = self.read_log();
        let state = log.last.state().unwrap_or_default();
        (log.last.clone(), state)
    }

    /// Messages in the history now, and their footprint in bytes.
    pub(crate) fn held(&self) -> (usize, usize) {
        let log = self.read_log();
        (log.history.len(), log.history.bytes())
    }

    pub(crate) fn with_log<R>(&self, f: impl FnOnce(LogView<'_>) -> R) -> R {
        f(LogView {
            log: &self.read_log(),
        })
    }

    /// The subscriber's slot on this topic, created if it has none.
    pub(crate) fn attach(self: &Arc<Self>, sub: &Arc<dyn Subscriber>) -> Option<Arc<Slot>> {
        let mut slots = self.lock_slots();
        if self.is_removed() {
            return None;
        }
        let slot = slots.attach(sub, || Arc::new(Slot::new(self.clone(), sub.clone())));
        Some(slot.clone())
    }

    pub(crate) fn detach(&self, slot: &Arc<Slot>) -> bool {
        self.lock_slots()
            .remove_if(slot.subscriber(), |s| Arc::ptr_eq(s, slot))
    }

    pub(crate) fn detach_subscriber(&self, sub: &Arc<dyn Subscriber>) {
        self.lock_slots().remove_if(sub, |_| true);
    }

    pub(crate) fn slot_count(&self) -> usize {
        self.lock_slots().len()
    }
}

/// A topic as a checkpoint took it ([`Topic::take`]).
pub(crate) struct Taken {
    topic: Arc<Topic>,
    /// The newest message then.
    last: Arc<Message>,
    /// The state after it.
    state: Option<Arc<TopicState>>,
    next_seq: u64,
    max_messages: usize,
}

impl TakenTopic for Taken {
    /// Up to `max_messages` of the topic's messages up to the newest when it was
    /// taken (at least that one), oldest first, with the state and position of
    /// then. Messages published since are left out; if the history has since
    /// dropped some of the older ones, fewer are saved.
    fn with_saved(&self, f: &mut dyn FnMut(&SavedTopicRef<'_>) -> bool) -> bool {
        // Held by `Arc` (the log's lock released) while they are encoded.
        let messages: Vec<Arc<Message>> = {
            let log = self.topic.read_log();
            let end = log.history.first_after(self.last.seq());
            let held = end > 0
                && log
                    .history
                    .get(end - 1)
                    .is_some_and(|m| Arc::ptr_eq(m, &self.last));
            let keep = self.max_messages.max(1);
            match held {
                true => (end.saturating_sub(keep)..end)
                    .filter_map(|i| log.history.get(i).cloned())
                    .collect(),
                false => vec![self.last.clone()],
            }
        };
        let empty = TopicState::default();
        f(&SavedTopicRef {
            topic: &self.topic.name,
            epoch: &self.topic.epoch,
            stream: self.topic.stream,
            next_seq: self.next_seq,
            messages: messages
                .iter()
                .map(|m| SavedMessageRef {
                    seq: m.seq(),
                    prev_seq: m.prev_seq(),
                    timestamp_ms: m.timestamp_ms(),
                    delta: m.delta(),
                    stale: m.stale(),
                })
                .collect(),
            state: self.state.as_deref().unwrap_or(&empty),
            stale: self.last.stale_now(),
        })
    }
}
