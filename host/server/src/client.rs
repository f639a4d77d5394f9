//! One subscriber connection's state, whatever the transport (WebSocket or SSE).
//!
//! This is pure logic over values: the transport feeds it client messages
//! ([`Client::handle`]) and asks it for the next frames to write ([`Client::fill`]).
//! The hub wakes it through [`Shared`], which is the connection's
//! [`Subscriber`]: a queue of dirty slots plus a [`Notify`].
//!
//! Per topic the client keeps a cursor (the last seq it delivered). When it gets to
//! a dirty slot it reads every message after the cursor from the topic's history.
//! When it is too far behind (`conflate_after_updates`) or the history no longer
//! holds what it needs, it sends one snapshot of the current state instead:
//! conflation. Nothing is ever queued per message, so a slow connection costs no
//! memory beyond its cursors, and the state it ends with is always right.

use std::collections::VecDeque;

use foldhash::{HashSet, HashSetExt};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Notify;
use tokio::time::Instant;
use wasmeter_hub::codec::FieldSet;
use wasmeter_hub::{Format, Hub, Message, Pattern, Slot, Subscriber, Wire};

use crate::auth::{Authenticator, Grants};
use crate::config::ServerConfig;
use crate::metrics::{Event, Metrics};
use crate::protocol::{self, ClientFrame, Rejection, ServerFrame, codes};
use crate::topic_slots::TopicSlots;

/// The part of a connection the hub talks to.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    ready: Mutex<VecDeque<Arc<Slot>>>,
    /// Woken when `ready` gets a slot.
    pub(crate) wake: Notify,
    patterns: RwLock<Vec<Pattern>>,
}

impl Shared {
    // Both locks guard plain collections that each operation leaves consistent, so
    // a poisoned lock (a panic elsewhere) is recovered rather than propagated.
    fn ready(&self) -> MutexGuard<'_, VecDeque<Arc<Slot>>> {
        self.ready.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a slot; true if the queue was empty.
    pub(crate) fn push(&self, slot: Arc<Slot>) -> bool {
        let mut ready = self.ready();
        let was_empty = ready.is_empty();
        ready.push_back(slot);
        was_empty
    }

    /// Moves up to `max` slots, the oldest first, to `into`: one lock for a
    /// batch (the hub's side pushes under the same lock, from another thread).
    pub(crate) fn take(&self, max: usize, into: &mut VecDeque<Arc<Slot>>) {
        let mut ready = self.ready();
        let n = ready.len().min(max);
        into.extend(ready.drain(..n));
    }

    pub(crate) fn set_patterns(&self, patterns: Vec<Pattern>) {
        *self.patterns.write().unwrap_or_else(|p| p.into_inner()) = patterns;
    }
}

impl Subscriber for Shared {
    /// Queues the slot; wakes the connection only when the queue was empty.
    /// A connection waits for the wake only after finding the queue empty
    /// (`has_work`), and it alone takes from the queue: after that, the first
    /// slot queued is the one that wakes it, and the notification is kept if
    /// it is not waiting yet. A wake for every slot of a busy feed cost an
    /// atomic operation on a line the connection's thread also writes.
    fn notify(&self, slot: &Arc<Slot>) {
        if self.push(slot.clone()) {
            self.wake.notify_one();
        }
    }

    fn wants(&self, topic: &str) -> bool {
        self.patterns
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .any(|p| p.matches(topic))
    }
}

/// What kind of frame an [`Out`] is (the SSE event name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Snapshot,
    Update,
    /// An event of a stream topic.
    Event,
    /// Events of a stream topic this subscriber will not get.
    Gap,
    Removed,
    Subscribed,
    Unsubscribed,
    Error,
    Ping,
    Pong,
    Refreshed,
}

impl Kind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Snapshot => "snapshot",
            Kind::Update => "update",
            Kind::Event => "event",
            Kind::Gap => "gap",
            Kind::Removed => "removed",
            Kind::Subscribed => "subscribed",
            Kind::Unsubscribed => "unsubscribed",
            Kind::Error => "error",
            Kind::Ping => "ping",
            Kind::Pong => "pong",
            Kind::Refreshed => "refreshed",
        }
    }
}

/// One frame to write: shared bytes, plus the message it reflects when the
/// transport tracks positions (SSE event ids).
#[derive(Debug)]
pub(crate) struct Out {
    pub(crate) kind: Kind,
    pub(crate) bytes: Bytes,
    pub(crate) msg: Option<Arc<Message>>,
}

/// Options of one subscription.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct SubOptions {
    pub(crate) fields: Option<Arc<FieldSet>>,
    pub(crate) interval: Option<Duration>,
}

#[derive(Debug)]
pub(crate) struct Subscription {
    pub(crate) pattern: Pattern,
    pub(crate) opts: Arc<SubOptions>,
}

/// What a topic's next frame must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// A snapshot; `Some(false)` marks a resume that failed.
    Snapshot(Option<bool>),
    /// Updates after the cursor.
    Live,
}

/// A connection's place on one topic.
#[derive(Debug)]
pub(crate) struct TopicSlot {
    pub(crate) slot: Arc<Slot>,
    pub(crate) opts: Arc<SubOptions>,
    /// The seq of the last update delivered (or resumed from).
    pub(crate) cursor: u64,
    pub(crate) next: Next,
    /// Messages of a successful resume, still to send (taken whole from history);
    /// boxed, as most slots never resume and a connection may hold thousands.
    #[allow(
        clippy::box_collection,
        reason = "8 bytes per slot instead of a 32-byte empty queue; the rare resume pays the extra allocation"
    )]
    pub(crate) replay: Option<Box<VecDeque<Arc<Message>>>>,
    /// With a rate limit: the earliest time of the next update.
    pub(crate) due: Option<Instant>,
    pub(crate) deferred: bool,
}

/// Per-connection limits, from [`ServerConfig`].
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    pub(crate) max_subscriptions: usize,
    pub(crate) max_topics: usize,
    pub(crate) max_consecutive_errors: u32,
    pub(crate) conflate_after: u64,
    pub(crate) batch_frames: usize,
    pub(crate) batch_bytes: usize,
    pub(crate) max_queued_replies: usize,
}

impl From<&ServerConfig> for Limits {
    fn from(c: &ServerConfig) -> Self {
        Self {
            max_subscriptions: c.max_subscriptions,
            max_topics: c.max_topics_per_connection,
            max_consecutive_errors: c.max_consecutive_errors,
            conflate_after: c.conflate_after_updates,
            batch_frames: c.write_batch_frames,
            batch_bytes: c.write_batch_bytes,
            max_queued_replies: c.max_queued_replies,
        }
    }
}

/// The result of handling one client message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Carry on (an error reply may have been queued).
    Continue,
    /// Too many invalid messages in a row: close with [`protocol::close::ABUSIVE`].
    Abusive,
}

/// One connection's subscriptions, cursors and pending replies.
pub(crate) struct Client {
    pub(crate) hub: Arc<Hub>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) me: Arc<dyn Subscriber>,
    /// Data frames' format and envelope; control frames are maps in its format.
    pub(crate) wire: Wire,
    pub(crate) limits: Limits,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) track_positions: bool,
    pub(crate) subs: Vec<Subscription>,
    pub(crate) topics: TopicSlots,
    /// Topics a `since` named that did not exist then: when they appear, their
    /// first frame is a snapshot marked `recovered: false` (bounded by the
    /// subscription limits: at most `max_topics` are kept).
    pub(crate) unresumed: HashSet<Arc<str>>,
    pub(crate) control: VecDeque<Out>,
    pub(crate) deferred: Vec<Arc<Slot>>,
    /// Dirty slots taken from [`Shared`]'s queue a batch at a time, not yet
    /// served (at most a write batch's frames).
    pub(crate) taken: VecDeque<Arc<Slot>>,
    pub(crate) scratch: Vec<Arc<Message>>,
    pub(crate) watching: bool,
    pub(crate) topic_limit_reported: bool,
    /// What the connection may read (everything on a host without tokens).
    pub(crate) grants: Grants,
    /// Verifies a `refresh`'s token; `None` on a host without tokens.
    pub(crate) auth: Option<Arc<Authenticator>>,
    error_streak: u32,
}

impl Client {
    /// A client with no subscriptions. `track_positions` attaches the message to
    /// every data frame (SSE needs it for event ids).
    pub(crate) fn new(
        hub: Arc<Hub>,
        wire: impl Into<Wire>,
        limits: Limits,
        metrics: Arc<Metrics>,
        track_positions: bool,
    ) -> Self {
        let shared = Arc::new(Shared::default());
        let me: Arc<dyn Subscriber> = shared.clone();
        Self {
            hub,
            shared,
            me,
            wire: wire.into(),
            limits,
            metrics,
            track_positions,
            subs: Vec::new(),
            topics: TopicSlots::default(),
            unresumed: HashSet::new(),
            control: VecDeque::new(),
            deferred: Vec::new(),
            taken: VecDeque::new(),
            scratch: Vec::new(),
            watching: false,
            topic_limit_reported: false,
            grants: Grants::everything(),
            auth: None,
            error_streak: 0,
        }
    }

    /// Sets what the connection may read, and the verifier of its refreshes.
    pub(crate) fn set_access(&mut self, grants: Grants, auth: Option<Arc<Authenticator>>) {
        self.grants = grants;
        self.auth = auth;
    }

    /// When the connection's permission ends, on the runtime's clock.
    pub(crate) fn expires_at(&self) -> Option<Instant> {
        let at = self.grants.expires_at()?;
        let left = at
            .duration_since(std::time::SystemTime::now())
            .unwrap_or_default();
        Some(Instant::now() + left)
    }

    /// The wire format of this connection.
    pub(crate) fn format(&self) -> Format {
        self.wire.format
    }

    /// The notifier to await for new work.
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// False while too many replies wait: stop reading client messages until the
    /// writer catches up (backpressure instead of an unbounded queue).
    pub(crate) fn can_read(&self) -> bool {
        self.control.len() < self.limits.max_queued_replies
    }

    /// The earliest time a rate-limited topic may send again.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.deferred
            .iter()
            .filter_map(|s| self.topics.get(s.topic()).and_then(|t| t.due))
            .min()
    }

    /// True when [`fill`](Self::fill) has something to do now.
    pub(crate) fn has_work(&self, now: Instant) -> bool {
        !self.control.is_empty()
            || !self.taken.is_empty()
            || !self.shared.ready().is_empty()
            || self.next_due().is_some_and(|d| d <= now)
    }

    /// Queues the server's heartbeat.
    pub(crate) fn queue_ping(&mut self) {
        self.control.push_back(Out {
            kind: Kind::Ping,
            bytes: protocol::ping_bytes(self.wire.format),
            msg: None,
        });
    }

    pub(crate) fn queue_control(&mut self, kind: Kind, frame: &ServerFrame<'_>) {
        let bytes = frame.encode(self.wire.format);
        self.control.push_back(Out {
            kind,
            bytes,
            msg: None,
        });
    }

    pub(crate) fn queue_error(&mut self, rejection: &Rejection) {
        self.queue_control(
            Kind::Error,
            &ServerFrame::Error {
                id: rejection.id,
                code: rejection.code,
                message: &rejection.message,
            },
        );
    }

    /// Handles one client message (a text frame is JSON, a binary one MessagePack).
    ///
    /// The error streak: every refused message counts; an accepted `subscribe` or
    /// `unsubscribe` resets it; `ping` and `pong` do neither, so interleaving them
    /// with invalid messages cannot keep an abusive client open.
    pub(crate) fn handle(&mut self, data: &[u8], binary: bool, now: Instant) -> Verdict {
        let frame = match protocol::decode(data, binary) {
            Ok(frame) => frame,
            Err(rejection) => return self.refuse(&rejection, Event::Malformed),
        };
        let heartbeat = matches!(frame, ClientFrame::Ping { .. } | ClientFrame::Pong { .. });
        match self.apply(frame, now) {
            Ok(()) if heartbeat => Verdict::Continue,
            Ok(()) => {
                self.error_streak = 0;
                Verdict::Continue
            }
            Err(rejection) => self.refuse(&rejection, Event::RefusedMessage),
        }
    }

    /// Answers a refused message with its error, counted as `event`; too many in
    /// a row make the client abusive.
    fn refuse(&mut self, rejection: &Rejection, event: Event) -> Verdict {
        self.metrics.record(event);
        self.queue_error(rejection);
        self.error_streak += 1;
        if self.error_streak >= self.limits.max_consecutive_errors {
            Verdict::Abusive
        } else {
            Verdict::Continue
        }
    }

    pub(crate) fn report_topic_limit(&mut self, topic: &str) {
        if self.topic_limit_reported {
            return;
        }
        self.topic_limit_reported = true;
        let r = Rejection::new(
            codes::TOO_MANY_TOPICS,
            format!(
                "topic `{topic}` (and any further ones) not delivered: this connection already receives its limit of {} topics",
                self.limits.max_topics
            ),
            None,
        );
        self.queue_error(&r);
    }

    /// The options of the first subscription whose pattern matches `topic`.
    pub(crate) fn resolve(&self, topic: &str) -> Option<Arc<SubOptions>> {
        self.subs
            .iter()
            .find(|s| s.pattern.matches(topic))
            .map(|s| s.opts.clone())
    }

    pub(crate) fn removed_frame(&self, slot: &Arc<Slot>) -> Out {
        Out {
            kind: Kind::Removed,
            bytes: ServerFrame::Removed {
                topic: slot.topic(),
                epoch: slot.epoch(),
            }
            .encode(self.wire.format),
            msg: self.track_positions.then(|| slot.latest()),
        }
    }
}

impl TopicSlot {
    pub(crate) fn new(slot: Arc<Slot>, opts: Arc<SubOptions>) -> Self {
        Self {
            slot,
            opts,
            cursor: 0,
            next: Next::Snapshot(None),
            replay: None,
            due: None,
            deferred: false,
        }
    }

    /// A stream topic created after subscribing: every event from its first,
    /// with no snapshot (a subscriber slower than the history is told of the gap).
    pub(crate) fn from_first_event(slot: Arc<Slot>, opts: Arc<SubOptions>) -> Self {
        Self {
            next: Next::Live,
            ..Self::new(slot, opts)
        }
    }

    /// Lends the cursor to the slot when the topic is delivered plainly (live,
    /// whole updates, no rate limit, no replay, no positions to track): the slot's
    /// word is then `cursor + 1` and [`Client::fill`] serves the topic from the
    /// slot alone, without looking the topic up in [`Client::topics`] (with many
    /// topics per connection that lookup was a cache miss per message). Otherwise
    /// the word is 0.
    pub(crate) fn lend_cursor(&self, track_positions: bool) {
        let plain = !track_positions
            && self.next == Next::Live
            && self.replay.is_none()
            && self.opts.interval.is_none()
            && self.opts.fields.is_none()
            && !self.deferred
            && self.due.is_none();
        self.slot.set_local(if plain { self.cursor + 1 } else { 0 });
    }

    /// Takes the cursor back from the slot (see [`TopicSlot::lend_cursor`]).
    /// Call it before reading or changing anything of the topic's delivery.
    pub(crate) fn reclaim_cursor(&mut self) {
        let word = self.slot.local();
        if word != 0 {
            self.cursor = word - 1;
            self.slot.set_local(0);
        }
    }
}

impl Drop for Client {
    /// Detaches every slot of this connection from the hub, including any a new
    /// topic gave it whose notification has not arrived yet, and breaks the
    /// reference cycle slot -> subscriber -> ready queue -> slot.
    fn drop(&mut self) {
        if self.watching {
            self.hub.unwatch(&self.me);
        }
        for s in &self.subs {
            self.hub.detach_matching(&s.pattern, &self.me);
        }
        for t in self.topics.values() {
            self.hub.detach(&t.slot);
        }
        self.shared.ready().clear();
    }
}
