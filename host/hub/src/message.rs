//! One published update, encoded at most once per wire (format and envelope).
//!
//! A [`Message`] is shared (`Arc`) by the topic's history and by every subscriber
//! that sends it; its frames are encoded lazily, on first use, and the resulting
//! [`Bytes`] are cloned (a reference count) into each subscriber's socket. Field
//! subsets get their own encodings, cached per (field set, kind, wire) so that
//! subscribers asking for the same subset share bytes too. Only the JSON map
//! frame (the default wire) has a cell in the message itself; the other wires'
//! update frames and the filtered encodings live behind a box allocated on first
//! use, so a host whose subscribers all take the default pays one empty pointer
//! (8 bytes) for them per message.
//!
//! Only a topic's newest message is ever sent as a snapshot, so only it keeps
//! the topic's state: when a newer message follows, the older one is retired
//! ([`Message::retire`]) and lets go of its state and snapshot encodings. A
//! message in a history then costs its delta and its update frames, not a copy
//! of the whole state (with many topics, most of a history's memory).

use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use wasmeter_core::change::TopicChange;
use wasmeter_core::delta::Delta;
use wasmeter_core::field::{FieldValue, TopicState};
use wasmeter_core::position::StreamPosition;

use crate::codec::{self, FieldSet, Format, FrameHead, Wire};

/// Distinct filtered encodings kept per message; more are encoded per subscriber.
const FILTER_CACHE: usize = 4;

/// One update of one topic: its position, the delta, and the state after it.
///
/// Kept small: a history holds tens of thousands of these. What most messages
/// never need lives behind boxes allocated on first use: the stale lists, the
/// encodings of wires other than JSON with the map envelope (the default), and
/// the cache of field-filtered encodings.
#[derive(Debug)]
pub struct Message {
    topic: Arc<str>,
    epoch: Arc<str>,
    seq: u64,
    /// The seq of the message before this one in the topic (0 for the first).
    prev_seq: u64,
    timestamp_ms: i64,
    delta: Delta,
    /// `None` when no field is stale, before or after this message.
    stale: Option<Box<Stale>>,
    /// An event of a stream topic (see [`TopicChange::event`]).
    event: bool,
    /// [`Message::footprint`], computed once from what the message holds.
    footprint: u32,
    /// The JSON map frame: what subscribers ask for by default.
    json_update: OnceLock<Bytes>,
    /// Every other wire's frames and the filtered encodings, once asked for.
    other: OnceLock<Box<OtherEncodings>>,
    /// The state after this message and its snapshot encodings, while this is
    /// the topic's newest message; `None` once retired.
    current: Mutex<Option<Box<Current>>>,
}

/// Stale fields of a message.
#[derive(Debug, Default)]
struct Stale {
    /// Fields that became stale with this message.
    marked: Vec<String>,
    /// Every field of the topic that is stale after this message (for snapshots).
    now: Vec<String>,
}

/// The encodings a message makes only when a subscriber asks for them.
#[derive(Debug, Default)]
struct OtherEncodings {
    /// Update frames by [`Wire::index`] (that of the JSON map frame unused).
    update: [OnceLock<Bytes>; 4],
    filtered: Mutex<Vec<Filtered>>,
}

/// What only the newest message of a topic keeps.
#[derive(Debug)]
struct Current {
    state: Arc<TopicState>,
    /// By [`Wire::index`].
    snapshot: [Option<Bytes>; 4],
}

#[derive(Debug)]
struct Filtered {
    fields: Arc<FieldSet>,
    snapshot: bool,
    wire: Wire,
    bytes: Option<Bytes>,
}

impl Message {
    /// A message at `seq` in the topic's stream `epoch`, following the message
    /// at `prev_seq`; `stale_before` is the topic's stale set before it (fields
    /// set or removed since are no longer stale, fields the change marks are).
    pub fn new(
        topic: Arc<str>,
        epoch: Arc<str>,
        (prev_seq, seq): (u64, u64),
        change: TopicChange,
        stale_before: &[String],
    ) -> Self {
        let refreshed = |name: &String| {
            change.delta.removed.contains(name)
                || change.delta.changed.iter().any(|(n, _)| n == name)
        };
        let mut stale_now: Vec<String> = stale_before
            .iter()
            .filter(|n| !refreshed(n))
            .cloned()
            .collect();
        for name in &change.stale {
            if !stale_now.contains(name) {
                stale_now.push(name.clone());
            }
        }
        stale_now.sort();
        let stale = match change.stale.is_empty() && stale_now.is_empty() {
            true => None,
            false => Some(Box::new(Stale {
                marked: change.stale,
                now: stale_now,
            })),
        };
        let mut msg = Self {
            stale,
            topic,
            epoch,
            seq,
            prev_seq,
            timestamp_ms: change.timestamp_ms,
            delta: change.delta,
            event: change.event,
            footprint: 0,
            json_update: OnceLock::new(),
            other: OnceLock::new(),
            current: Mutex::new(Some(Box::new(Current {
                state: change.state,
                snapshot: Default::default(),
            }))),
        };
        msg.footprint = u32::try_from(msg.estimate_footprint()).unwrap_or(u32::MAX);
        msg
    }

    /// Lets go of the state and the snapshot encodings: a newer message of the
    /// topic now has them. A retired message still gives its update frames;
    /// its snapshot functions return `None`.
    pub(crate) fn retire(&self) {
        let current = lock(&self.current).take();
        if let Some(other) = self.other.get() {
            lock(&other.filtered).retain(|f| !f.snapshot);
        }
        drop(current);
    }

    /// The topic.
    pub fn topic(&self) -> &Arc<str> {
        &self.topic
    }

    /// The topic's epoch.
    pub fn epoch(&self) -> &Arc<str> {
        &self.epoch
    }

    /// Sequence number within the epoch, from 1.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The seq of the message before this one in the topic: `seq - 1`, except
    /// for the first message after a restore from a checkpoint older than what
    /// was published (the seqs between never existed as far as anyone can tell).
    pub fn prev_seq(&self) -> u64 {
        self.prev_seq
    }

    /// When the change was made, Unix milliseconds.
    pub fn timestamp_ms(&self) -> i64 {
        self.timestamp_ms
    }

    /// The change this message carries.
    pub fn delta(&self) -> &Delta {
        &self.delta
    }

    /// Fields that became stale with this message.
    pub fn stale(&self) -> &[String] {
        self.stale.as_ref().map_or(&[], |s| &s.marked)
    }

    /// Every stale field of the topic after this message.
    pub fn stale_now(&self) -> &[String] {
        self.stale.as_ref().map_or(&[], |s| &s.now)
    }

    /// The topic's complete state after this message; `None` once a newer
    /// message of the topic has replaced this one as the newest (only the
    /// newest message keeps the state).
    pub fn state(&self) -> Option<Arc<TopicState>> {
        lock(&self.current).as_ref().map(|c| c.state.clone())
    }

    /// True for an event of a stream topic: sent as an `event` frame, never
    /// merged with another.
    pub fn is_event(&self) -> bool {
        self.event
    }

    /// This message's position.
    pub fn position(&self) -> StreamPosition {
        StreamPosition {
            epoch: self.epoch.to_string(),
            seq: self.seq,
        }
    }

    fn head(&self) -> FrameHead<'_> {
        FrameHead {
            topic: &self.topic,
            epoch: &self.epoch,
            seq: self.seq,
            ts: self.timestamp_ms,
        }
    }

    /// About the memory this message holds in a topic's history, in bytes: the
    /// message itself, its delta (and stale lists) and one encoded update frame
    /// (made when a subscriber first reads it; counted from the start, as an
    /// estimate: the names and values again, with the envelope). The same
    /// every time it is asked (computed when the message is made).
    pub fn footprint(&self) -> usize {
        self.footprint as usize
    }

    fn estimate_footprint(&self) -> usize {
        const ENTRY: usize = std::mem::size_of::<(String, FieldValue)>();
        const NAME: usize = std::mem::size_of::<String>();
        /// A frame's envelope (type, topic and epoch keys, seq, ts, braces).
        const ENVELOPE: usize = 64;
        /// A field's share of a frame besides its name: quotes, separators and
        /// a number's digits.
        const PER_FIELD: usize = 24;
        let value = |v: &FieldValue| match v {
            FieldValue::Text(t) => t.len(),
            FieldValue::Number(_) | FieldValue::Flag(_) => 0,
        };
        let changed: usize = self
            .delta
            .changed
            .iter()
            .map(|(n, v)| n.len() + value(v))
            .sum();
        let removed: usize = self.delta.removed.iter().map(String::len).sum();
        let fields = self.delta.changed.len() + self.delta.removed.len();
        let stale = self.stale.as_ref().map_or(0, |s| {
            std::mem::size_of::<Stale>()
                + s.marked
                    .iter()
                    .chain(&s.now)
                    .map(|n| NAME + n.len())
                    .sum::<usize>()
        });
        let frame =
            ENVELOPE + self.topic.len() + self.epoch.len() + changed + removed + PER_FIELD * fields;
        // The `Arc`'s two counts, the message, its delta's entries and text.
        2 * std::mem::size_of::<usize>()
            + std::mem::size_of::<Self>()
            + ENTRY * self.delta.changed.len()
            + NAME * self.delta.removed.len()
            + changed
            + removed
            + stale
            + frame
    }

    /// The `update` frame (an `event` frame for an event), encoded once per
    /// wire and shared.
    pub fn update_bytes(&self, wire: impl Into<Wire>) -> Bytes {
        let wire = wire.into();
        let cell = match wire == Wire::from(Format::Json) {
            true => &self.json_update,
            false => &self.other_encodings().update[wire.index()],
        };
        cell.get_or_init(|| self.encode_update(wire, None).unwrap_or_default())
            .clone()
    }

    fn encode_update(&self, wire: Wire, fields: Option<&FieldSet>) -> Option<Bytes> {
        match self.event {
            true => {
                let opens_epoch = self.prev_seq == 0;
                codec::encode_event(wire, self.head(), &self.delta.changed, fields, opens_epoch)
            }
            false => codec::encode_update(wire, self.head(), &self.delta, self.stale(), fields),
        }
    }

    /// The `snapshot` frame of the state after this message, encoded once per
    /// wire and shared; `None` once the message is retired (a newer one has
    /// the state: take the snapshot of that one).
    pub fn snapshot_bytes(&self, wire: impl Into<Wire>) -> Option<Bytes> {
        let wire = wire.into();
        let state = {
            let current = lock(&self.current);
            let c = current.as_ref()?;
            if let Some(b) = &c.snapshot[wire.index()] {
                return Some(b.clone());
            }
            c.state.clone()
        };
        // Encoded outside the lock; two subscribers racing may both encode, once.
        let bytes = codec::encode_snapshot(
            wire,
            self.head(),
            &state,
            self.stale_now(),
            None,
            None,
            self.event,
        );
        if let Some(c) = lock(&self.current).as_mut() {
            c.snapshot[wire.index()].get_or_insert(bytes.clone());
        }
        Some(bytes)
    }

    /// The `update` (or `event`) frame restricted to `fields`; `None` when none
    /// of them changed (or the event has none of them).
    pub fn filtered_update(&self, wire: impl Into<Wire>, fields: &Arc<FieldSet>) -> Option<Bytes> {
        let wire = wire.into();
        self.cached(wire, fields, false, || {
            self.encode_update(wire, Some(fields))
        })
    }

    /// The `snapshot` frame restricted to `fields`; `None` once retired.
    pub fn filtered_snapshot(
        &self,
        wire: impl Into<Wire>,
        fields: &Arc<FieldSet>,
    ) -> Option<Bytes> {
        let wire = wire.into();
        let state = self.state()?;
        self.cached(wire, fields, true, || {
            Some(codec::encode_snapshot(
                wire,
                self.head(),
                &state,
                self.stale_now(),
                Some(fields),
                None,
                self.event,
            ))
        })
    }

    /// A `snapshot` frame for a subscriber whose resume failed (`recovered:
    /// false`); `None` once retired.
    pub fn unrecovered_snapshot(
        &self,
        wire: impl Into<Wire>,
        fields: Option<&FieldSet>,
    ) -> Option<Bytes> {
        let state = self.state()?;
        Some(codec::encode_snapshot(
            wire,
            self.head(),
            &state,
            self.stale_now(),
            fields,
            Some(false),
            self.event,
        ))
    }

    fn cached(
        &self,
        wire: Wire,
        fields: &Arc<FieldSet>,
        snapshot: bool,
        make: impl FnOnce() -> Option<Bytes>,
    ) -> Option<Bytes> {
        let hit = |e: &Filtered| {
            e.wire == wire
                && e.snapshot == snapshot
                && (Arc::ptr_eq(&e.fields, fields) || *e.fields == **fields)
        };
        if let Some(e) = self.lock().iter().find(|e| hit(e)) {
            return e.bytes.clone();
        }
        // Encoded outside the lock; two subscribers racing may both encode, once.
        let bytes = make();
        let mut cache = self.lock();
        // A snapshot encoded while the message was retired is not kept.
        let retired = snapshot && lock(&self.current).is_none();
        if !retired && cache.len() < FILTER_CACHE && !cache.iter().any(hit) {
            cache.push(Filtered {
                fields: fields.clone(),
                snapshot,
                wire,
                bytes: bytes.clone(),
            });
        }
        bytes
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Filtered>> {
        lock(&self.other_encodings().filtered)
    }

    fn other_encodings(&self) -> &OtherEncodings {
        self.other.get_or_init(Default::default)
    }
}

/// Both locks of a message guard values that are only ever replaced whole
/// (finished encodings, the state's `Arc`): a panic elsewhere cannot leave them
/// inconsistent, so a poisoned lock is still usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use wasmeter_core::field::FieldValue;

    #[test]
    fn a_footprint_is_near_what_the_message_holds_with_its_frame() {
        // A trade-like update: five fields, numbers and a text.
        let changed: Vec<(String, FieldValue)> = [
            ("price", FieldValue::Number(64_123.25)),
            ("qty", FieldValue::Number(0.015)),
            ("count", FieldValue::Number(1_234.0)),
            ("side", FieldValue::Text("buy".into())),
            ("ts_exchange", FieldValue::Number(1_764_950_000_123.0)),
        ]
        .into_iter()
        .map(|(n, v)| (n.to_string(), v))
        .collect();
        let held = 2 * std::mem::size_of::<usize>()
            + std::mem::size_of::<Message>()
            + changed.len() * std::mem::size_of::<(String, FieldValue)>()
            + changed.iter().map(|(n, _)| n.len()).sum::<usize>()
            + 3;
        let m = Message::new(
            "bench/S1234".into(),
            "m1k2j3h4g5-17".into(),
            (41, 42),
            TopicChange {
                topic: "bench/S1234".into(),
                delta: Delta {
                    changed,
                    removed: vec![],
                },
                stale: vec![],
                state: Arc::new(TopicState::default()),
                timestamp_ms: 1_764_950_000_456,
                event: false,
            },
            &[],
        );
        let actual = held + m.update_bytes(Format::Json).len();
        let estimate = m.footprint();
        let ratio = estimate as f64 / actual as f64;
        assert!((0.8..1.25).contains(&ratio), "{estimate} for {actual}");
    }

    pub(crate) fn msg(seq: u64) -> Arc<Message> {
        msg_after(seq - 1, seq)
    }

    pub(crate) fn msg_after(prev_seq: u64, seq: u64) -> Arc<Message> {
        let state = TopicState::from([("n".to_string(), FieldValue::Number(seq as f64))]);
        Arc::new(Message::new(
            "t".into(),
            "e".into(),
            (prev_seq, seq),
            TopicChange {
                topic: "t".into(),
                delta: Delta {
                    changed: vec![("n".into(), FieldValue::Number(seq as f64))],
                    removed: vec![],
                },
                stale: vec![],
                state: Arc::new(state),
                timestamp_ms: 0,
                event: false,
            },
            &[],
        ))
    }

    #[test]
    fn encodings_are_shared_bytes() {
        let m = msg(3);
        let a = m.update_bytes(Format::Json);
        let b = m.update_bytes(Format::Json);
        assert_eq!(a.as_ptr(), b.as_ptr(), "encoded once, shared");
        assert_ne!(m.update_bytes(Format::MsgPack), a);

        let f1 = Arc::new(FieldSet::new(["n"]));
        let f2 = Arc::new(FieldSet::new(["n"]));
        let x = m.filtered_update(Format::Json, &f1).unwrap();
        let y = m.filtered_update(Format::Json, &f2).unwrap();
        assert_eq!(x.as_ptr(), y.as_ptr(), "equal field sets share bytes");
        let none = Arc::new(FieldSet::new(["other"]));
        assert!(m.filtered_update(Format::Json, &none).is_none());
        let s = m.filtered_snapshot(Format::Json, &none).unwrap();
        assert!(std::str::from_utf8(&s).unwrap().contains("\"state\":{}"));
    }

    #[test]
    fn compact_frames_are_encoded_only_when_asked_for_and_then_shared() {
        let m = msg(3);
        m.update_bytes(Format::Json);
        m.snapshot_bytes(Format::Json).unwrap();
        assert!(
            m.other.get().is_none(),
            "JSON map subscribers allocate no other encodings"
        );
        m.update_bytes(Format::MsgPack);
        let compact_encoded = |m: &Message| {
            let other = m.other.get().expect("the MessagePack frame is encoded");
            [Format::Json, Format::MsgPack]
                .iter()
                .any(|&f| other.update[Wire::compact(f).index()].get().is_some())
        };
        assert!(
            !compact_encoded(&m),
            "map subscribers encode no compact frame"
        );

        let wire = Wire::compact(Format::Json);
        let a = m.update_bytes(wire);
        assert!(compact_encoded(&m));
        let b = m.update_bytes(wire);
        assert_eq!(a.as_ptr(), b.as_ptr(), "encoded once, shared");
        assert_eq!(&a[..], br#"[1,"t",3,0,{"n":3.0}]"#);
        assert_ne!(m.update_bytes(Wire::compact(Format::MsgPack)), a);
        assert_ne!(m.update_bytes(Format::Json), a, "the map frame is its own");

        let s1 = m.snapshot_bytes(wire).unwrap();
        let s2 = m.snapshot_bytes(wire).unwrap();
        assert_eq!(s1.as_ptr(), s2.as_ptr());
        assert_eq!(&s1[..], br#"[0,"t","e",3,0,{"n":3.0}]"#);
        assert!(m.snapshot_bytes(Format::Json).unwrap().starts_with(b"{"));

        let f = Arc::new(FieldSet::new(["n"]));
        let x = m.filtered_update(wire, &f).unwrap();
        assert_eq!(x, a);
        assert!(
            m.filtered_update(Format::Json, &f)
                .unwrap()
                .starts_with(b"{")
        );
    }
}
