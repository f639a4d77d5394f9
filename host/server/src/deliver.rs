//! Delivery: turning dirty slots into frames, with conflation, replays, field
//! subsets and rate limits. Runs inside [`Client::fill`]; pure logic.

use std::sync::Arc;

use tokio::time::Instant;
use wasmeter_hub::codec::{self, FrameHead};
use wasmeter_hub::{Format, Message, Slot, Wire};

use crate::client::{Client, Kind, Next, Out, TopicSlot};
use crate::metrics::Event;

/// What reading a topic's log after a cursor yielded.
enum Got {
    Nothing,
    Messages {
        more: bool,
    },
    /// The cursor is further behind than allowed or than the history reaches:
    /// the latest message, and the oldest the history still holds.
    Gap {
        latest: Arc<Message>,
        oldest: Arc<Message>,
    },
}

/// How far behind a subscriber may be before it is conflated: stream topics
/// never are (their subscribers are told of a gap when the history runs out).
fn conflate_limit(slot: &Slot, conflate_after: u64) -> u64 {
    if slot.is_stream() {
        u64::MAX
    } else {
        conflate_after
    }
}

/// The kind of frame a message is sent as.
fn frame_kind(m: &Message) -> Kind {
    if m.is_event() {
        Kind::Event
    } else {
        Kind::Update
    }
}

impl Client {
    /// Appends the next frames to `out`: replies first, then data, up to the
    /// batch limits.
    pub(crate) fn fill(&mut self, now: Instant, out: &mut Vec<Out>) {
        let mut bytes = 0;
        let (max_frames, max_bytes) = (self.limits.batch_frames, self.limits.batch_bytes);
        let full = |out: &Vec<Out>, bytes: usize| out.len() >= max_frames || bytes >= max_bytes;
        while !full(out, bytes) {
            let Some(c) = self.control.pop_front() else {
                break;
            };
            bytes += c.bytes.len();
            out.push(c);
        }
        self.release_due(now);
        while !full(out, bytes) {
            if self.taken.is_empty() {
                self.shared.take(max_frames, &mut self.taken);
            }
            let Some(slot) = self.taken.pop_front() else {
                break;
            };
            let before = out.len();
            self.serve(slot, now, out);
            bytes += out[before..].iter().map(|o| o.bytes.len()).sum::<usize>();
        }
    }

    fn release_due(&mut self, now: Instant) {
        let topics = &mut self.topics;
        let shared = &self.shared;
        self.deferred.retain(|s| match topics.get_mut(s.topic()) {
            Some(t) if t.due.is_some_and(|d| d > now) => true,
            Some(t) => {
                t.deferred = false;
                shared.push(s.clone());
                false
            }
            None => false,
        });
    }

    /// Frames for one dirty (or locally queued) slot.
    fn serve(&mut self, slot: Arc<Slot>, now: Instant, out: &mut Vec<Out>) {
        if slot.local() != 0 && self.serve_plain(&slot, out) {
            return;
        }
        let name = slot.topic().clone();
        match self.topics.get(&name) {
            None => return self.adopt(slot),
            Some(t) if !Arc::ptr_eq(&t.slot, &slot) => {
                if t.slot.is_removed() {
                    // The old lifetime ended and a new one began: say so, then
                    // start over with the new slot.
                    if let Some(mut t) = self.topics.remove(&name) {
                        t.reclaim_cursor();
                        out.push(self.removed_frame(&t.slot));
                    }
                    self.adopt(slot);
                }
                return;
            }
            Some(_) => {}
        }
        slot.clear_dirty();
        if slot.is_removed() {
            self.topics.remove(&name);
            out.push(self.removed_frame(&slot));
            return;
        }
        let budget = self.limits.batch_frames.saturating_sub(out.len()).max(1);
        let wire = self.wire;
        let track = self.track_positions;
        let stream = slot.is_stream();
        let Some(t) = self.topics.get_mut(&name) else {
            return;
        };
        t.reclaim_cursor();
        // Events are never merged: a rate limit does not apply to stream topics.
        let limited = t.opts.interval.is_some() && !stream;
        'serve: {
            if let Next::Snapshot(recovered) = t.next {
                out.extend(snapshot(wire, track, t, &slot, recovered, now));
                break 'serve;
            }
            if t.replay.is_some() {
                if replay(wire, track, t, limited, budget, now, out) {
                    self.shared.push(slot);
                }
                break 'serve;
            }
            if limited && t.due.is_some_and(|d| d > now) {
                if !t.deferred {
                    t.deferred = true;
                    self.deferred.push(slot);
                }
                break 'serve;
            }
            let (max, conflate_after) = if limited {
                (usize::MAX, u64::MAX)
            } else {
                (budget, conflate_limit(&slot, self.limits.conflate_after))
            };
            match read_new(&slot, t.cursor, max, conflate_after, &mut self.scratch) {
                Got::Nothing => {}
                Got::Gap { latest, oldest } if stream => {
                    // Told, then continued from the oldest event still held.
                    self.metrics.record(Event::StreamGap);
                    out.push(gap(wire.format, &latest, t.cursor, &oldest));
                    t.cursor = oldest.prev_seq();
                    self.shared.push(slot.clone());
                }
                Got::Gap { .. } => {
                    self.metrics.record(Event::Conflated);
                    out.extend(snapshot(wire, track, t, &slot, None, now));
                }
                Got::Messages { more } => {
                    if limited {
                        composed(wire, track, t, &self.scratch, now, out);
                    } else {
                        for m in &self.scratch {
                            push_update(wire, track, t, m, out);
                        }
                    }
                    self.scratch.clear();
                    if more {
                        self.shared.push(slot);
                    }
                }
            }
        }
        t.lend_cursor(track);
    }

    /// Serves a topic whose cursor is lent to its slot ([`TopicSlot::lend_cursor`])
    /// from the slot alone. False when it needs the full path: the topic was
    /// removed, or the subscriber fell behind (conflation).
    fn serve_plain(&mut self, slot: &Arc<Slot>, out: &mut Vec<Out>) -> bool {
        let mut cursor = slot.local() - 1;
        slot.clear_dirty();
        if slot.is_removed() {
            return false;
        }
        let budget = self.limits.batch_frames.saturating_sub(out.len()).max(1);
        let conflate_after = conflate_limit(slot, self.limits.conflate_after);
        match read_new(slot, cursor, budget, conflate_after, &mut self.scratch) {
            Got::Nothing => true,
            Got::Gap { .. } => false,
            Got::Messages { more } => {
                for m in self.scratch.drain(..) {
                    cursor = m.seq();
                    out.push(Out {
                        kind: frame_kind(&m),
                        bytes: m.update_bytes(self.wire),
                        msg: None,
                    });
                }
                slot.set_local(cursor + 1);
                if more {
                    self.shared.push(slot.clone());
                }
                true
            }
        }
    }

    /// A slot this client has no state for: a topic created after subscribing.
    fn adopt(&mut self, slot: Arc<Slot>) {
        if slot.is_removed() {
            return;
        }
        let Some(opts) = self.resolve(slot.topic()) else {
            // No subscription wants it any more (unsubscribed meanwhile).
            self.hub.detach(&slot);
            return;
        };
        if self.topics.len() >= self.limits.max_topics {
            self.hub.detach(&slot);
            self.report_topic_limit(slot.topic());
            return;
        }
        // A topic a `since` asked for before it existed: its snapshot says the
        // position was not recovered. A stream's events come from its first,
        // under an epoch the subscriber sees is new.
        let unresumed = self.unresumed.remove(slot.topic());
        let topic = match slot.is_stream() {
            true => TopicSlot::from_first_event(slot.clone(), opts),
            false if unresumed => TopicSlot {
                next: Next::Snapshot(Some(false)),
                ..TopicSlot::new(slot.clone(), opts)
            },
            false => TopicSlot::new(slot.clone(), opts),
        };
        self.topics.insert(topic);
        self.shared.push(slot);
    }
}

/// Reads what is new after `cursor` under the topic's lock (only `Arc` clones
/// happen there): up to `max` messages into `scratch`, or a gap when the
/// subscriber is more than `conflate_after` behind or the history no longer
/// reaches back to the cursor.
fn read_new(
    slot: &Slot,
    cursor: u64,
    max: usize,
    conflate_after: u64,
    scratch: &mut Vec<Arc<Message>>,
) -> Got {
    slot.read(|log| {
        let latest = log.latest();
        let behind = latest.seq().saturating_sub(cursor);
        if latest.seq() == cursor {
            return Got::Nothing;
        }
        let gap = || Got::Gap {
            latest: latest.clone(),
            oldest: log.oldest().clone(),
        };
        // `behind` is exact unless a restore skipped seqs: then count.
        if behind > conflate_after
            && log
                .count_after(cursor)
                .is_none_or(|n| n as u64 > conflate_after)
        {
            return gap();
        }
        match log.after(cursor) {
            None => gap(),
            Some(it) => {
                scratch.extend(it.take(max).cloned());
                Got::Messages {
                    more: behind > max as u64,
                }
            }
        }
    })
}

/// The snapshot of the topic's newest message (the only one that keeps the
/// state); `None`, leaving the topic to be served again, only if no snapshot
/// could be taken.
fn snapshot(
    wire: Wire,
    track: bool,
    t: &mut TopicSlot,
    slot: &Slot,
    recovered: Option<bool>,
    now: Instant,
) -> Option<Out> {
    let fields = t.opts.fields.clone();
    let taken = slot.with_current(|m| match (recovered, &fields) {
        (Some(_), f) => m.unrecovered_snapshot(wire, f.as_deref()),
        (None, Some(f)) => m.filtered_snapshot(wire, f),
        (None, None) => m.snapshot_bytes(wire),
    });
    let Some((latest, bytes)) = taken else {
        t.next = Next::Snapshot(recovered);
        return None;
    };
    t.cursor = latest.seq();
    t.next = Next::Live;
    t.due = t.opts.interval.map(|i| now + i);
    Some(Out {
        kind: Kind::Snapshot,
        bytes,
        msg: track.then_some(latest),
    })
}

fn push_update(wire: Wire, track: bool, t: &mut TopicSlot, m: &Arc<Message>, out: &mut Vec<Out>) {
    t.cursor = m.seq();
    let bytes = match &t.opts.fields {
        None => Some(m.update_bytes(wire)),
        Some(f) => m.filtered_update(wire, f),
    };
    if let Some(bytes) = bytes {
        out.push(Out {
            kind: frame_kind(m),
            bytes,
            msg: track.then(|| m.clone()),
        });
    }
}

/// A `gap` frame: the events after `cursor` and before `oldest` are gone (those
/// that existed: a restore may have skipped seqs).
fn gap(format: Format, latest: &Message, cursor: u64, oldest: &Message) -> Out {
    let missed = oldest.prev_seq().saturating_sub(cursor);
    Out {
        kind: Kind::Gap,
        bytes: codec::encode_gap(
            format,
            latest.topic(),
            latest.epoch(),
            (cursor, oldest.seq()),
            missed,
        ),
        msg: None,
    }
}

/// Sends a resumed topic's replay: all of it (merged into one update under a rate
/// limit, `limited`) or up to `budget` frames. True when some remain.
fn replay(
    wire: Wire,
    track: bool,
    t: &mut TopicSlot,
    limited: bool,
    budget: usize,
    now: Instant,
    out: &mut Vec<Out>,
) -> bool {
    let Some(mut queue) = t.replay.take() else {
        return false;
    };
    if limited {
        let all: Vec<Arc<Message>> = queue.drain(..).collect();
        composed(wire, track, t, &all, now, out);
        return false;
    }
    for _ in 0..budget {
        let Some(m) = queue.pop_front() else { break };
        push_update(wire, track, t, &m, out);
    }
    // Once sent, the memory goes back: a replay can be as long as the history.
    let more = !queue.is_empty();
    if more {
        t.replay = Some(queue);
    }
    more
}

/// Under a rate limit: every message since the last send, merged into one update.
fn composed(
    wire: Wire,
    track: bool,
    t: &mut TopicSlot,
    msgs: &[Arc<Message>],
    now: Instant,
    out: &mut Vec<Out>,
) {
    let Some(last) = msgs.last() else { return };
    t.cursor = last.seq();
    t.due = t.opts.interval.map(|i| now + i);
    if let [only] = msgs {
        return push_update(wire, track, t, only, out);
    }
    let (delta, stale) = codec::compose(msgs.iter().map(|m| (m.delta(), m.stale())));
    let head = FrameHead {
        topic: last.topic(),
        epoch: last.epoch(),
        seq: last.seq(),
        ts: last.timestamp_ms(),
    };
    if let Some(bytes) = codec::encode_update(wire, head, &delta, &stale, t.opts.fields.as_deref())
    {
        out.push(Out {
            kind: Kind::Update,
            bytes,
            msg: track.then(|| last.clone()),
        });
    }
}
