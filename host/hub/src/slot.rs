//! Conflating slots: one subscriber's place on one topic.
//!
//! Publishing never queues anything per subscriber. It appends the message to the
//! topic's history and marks each subscriber's [`Slot`] dirty; only the first mark
//! since the subscriber last read calls [`Subscriber::notify`]. The subscriber later
//! reads every message after its own position from the history, or, when it fell
//! further behind than the history reaches, the latest state. However slow a
//! subscriber is, the hub holds nothing more for it than this flag.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::message::Message;
use crate::topic::{LogView, Topic};

/// Something that receives updates from the hub: typically one client connection.
///
/// Both methods are called from the publisher's thread, with hub locks held: they
/// must be quick, must not block and must not call back into the hub.
pub trait Subscriber: Send + Sync + 'static {
    /// `slot` has news (new messages, or its topic was removed). Called once per
    /// clean-to-dirty transition, so a subscriber that is behind is not called again
    /// until it has called [`Slot::clear_dirty`].
    fn notify(&self, slot: &Arc<Slot>);

    /// Whether this subscriber wants `topic`, which was just created. Only asked of
    /// subscribers registered with [`Hub::watch`](crate::Hub::watch); a `true`
    /// attaches a slot, which is then notified with the topic's first message.
    fn wants(&self, topic: &str) -> bool;
}

/// True when both handles point to the same subscriber object.
pub(crate) fn same_subscriber(a: &Arc<dyn Subscriber>, b: &Arc<dyn Subscriber>) -> bool {
    std::ptr::addr_eq(Arc::as_ptr(a), Arc::as_ptr(b))
}

/// One subscriber's attachment to one topic.
pub struct Slot {
    topic: Arc<Topic>,
    subscriber: Arc<dyn Subscriber>,
    dirty: AtomicBool,
    /// The subscriber's own word (see [`Slot::local`]); the hub never reads it.
    local: AtomicU64,
}

impl fmt::Debug for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Slot")
            .field("topic", &self.topic.name)
            .field("epoch", &self.topic.epoch)
            .field("dirty", &self.dirty.load(Ordering::Relaxed))
            .finish()
    }
}

impl Slot {
    pub(crate) fn new(topic: Arc<Topic>, subscriber: Arc<dyn Subscriber>) -> Self {
        Self {
            topic,
            subscriber,
            dirty: AtomicBool::new(false),
            local: AtomicU64::new(0),
        }
    }

    pub(crate) fn subscriber(&self) -> &Arc<dyn Subscriber> {
        &self.subscriber
    }

    /// Sets the dirty flag; notifies the subscriber if it was clean.
    pub(crate) fn mark(self: &Arc<Self>) {
        if !self.dirty.swap(true, Ordering::AcqRel) {
            self.subscriber.notify(self);
        }
    }

    /// Marks the slot clean. Call it *before* reading: a message published after
    /// the read marks the slot again, so no update is ever missed.
    pub fn clear_dirty(&self) {
        self.dirty.store(false, Ordering::SeqCst);
    }

    /// A word that belongs to the subscriber (0 until it sets one), e.g. its
    /// position on the topic. It lives in the slot, which a subscriber touches
    /// anyway when it is notified, so reading it costs no lookup in the
    /// subscriber's own per-topic tables (a cache miss per message with many topics).
    pub fn local(&self) -> u64 {
        self.local.load(Ordering::Relaxed)
    }

    /// Sets the subscriber's word (see [`Slot::local`]).
    pub fn set_local(&self, value: u64) {
        self.local.store(value, Ordering::Relaxed);
    }

    /// The topic's name.
    pub fn topic(&self) -> &Arc<str> {
        &self.topic.name
    }

    /// The topic's epoch (fixed for the slot's lifetime).
    pub fn epoch(&self) -> &Arc<str> {
        &self.topic.epoch
    }

    /// True for a stream topic: every event is delivered, never merged or
    /// conflated; a subscriber too far behind is told of the gap.
    pub fn is_stream(&self) -> bool {
        self.topic.stream
    }

    /// True once the topic was removed from the hub; the slot receives nothing more.
    pub fn is_removed(&self) -> bool {
        self.topic.is_removed()
    }

    /// The topic's newest message.
    pub fn latest(&self) -> Arc<Message> {
        self.topic.latest()
    }

    /// `f` of the topic's newest message, while it is the newest: what needs
    /// the topic's state (a snapshot), which only the newest message keeps. `f`
    /// returning `None` means a newer message retired this one meanwhile; it is
    /// then run once more under the log's read lock, where the newest message
    /// cannot be retired. `None` only if `f` refuses the newest message there.
    pub fn with_current<R>(
        &self,
        f: impl Fn(&Arc<Message>) -> Option<R>,
    ) -> Option<(Arc<Message>, R)> {
        let latest = self.latest();
        if let Some(r) = f(&latest) {
            return Some((latest, r));
        }
        self.read(|log| {
            let latest = log.latest().clone();
            f(&latest).map(|r| (latest, r))
        })
    }

    /// Runs `f` on the topic's log, under its read lock (keep `f` short).
    pub fn read<R>(&self, f: impl FnOnce(LogView<'_>) -> R) -> R {
        self.topic.with_log(f)
    }
}
