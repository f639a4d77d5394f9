//! A topic's bounded history: the last N messages, found by sequence number.
//!
//! The ring holds the topic's newest messages in order, each naming the seq of
//! the one before it (consecutive, except across a restore that skipped seqs), so
//! "every message after seq S" is a binary search plus a check that S is the
//! position right before the first message returned. It is what a reconnecting
//! subscriber is replayed from and what a live subscriber reads its deltas from.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::message::Message;

/// How many of the newest messages [`History::first_after`] looks at one by one.
const NEAR_END: usize = 4;

/// The newest messages of one topic, in order. How many it keeps is decided at
/// each push (the hub shares its budgets among its topics, see
/// [`HubConfig::history_budget`](crate::HubConfig::history_budget) and
/// [`HubConfig::history_bytes`](crate::HubConfig::history_bytes)).
#[derive(Debug, Default)]
pub(crate) struct History {
    ring: VecDeque<Arc<Message>>,
    /// The [`Message::footprint`]s of the messages held, summed.
    bytes: usize,
}

/// How much a history may keep after a push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Capacity {
    /// Messages at most (0: none, not even the newest).
    pub(crate) messages: usize,
    /// Bytes ([`Message::footprint`]) at most, except that the newest message is
    /// always kept while `messages` is not 0.
    pub(crate) bytes: usize,
}

impl Capacity {
    /// At most `messages`, whatever their size.
    pub(crate) fn messages(messages: usize) -> Self {
        Self {
            messages,
            bytes: usize::MAX,
        }
    }
}

/// What the history holds after a given sequence number.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Coverage {
    /// Every message after the asked-for seq is held, starting at this ring index
    /// (equal to the ring's length when there is nothing newer).
    From(usize),
    /// Some message after the asked-for seq is no longer held (or the seq is from
    /// the future): a subscriber at that position needs a snapshot.
    Gap,
}

impl History {
    /// Appends the next message, keeping the newest that fit `capacity` (the
    /// oldest fall out; none is kept with 0 messages, the newest always
    /// otherwise). The ring gives memory back when it holds well below what it
    /// had grown to.
    pub(crate) fn push(&mut self, msg: Arc<Message>, capacity: Capacity) {
        debug_assert!(self.ring.back().is_none_or(|b| b.seq() == msg.prev_seq()));
        if capacity.messages == 0 {
            self.ring.clear();
            self.bytes = 0;
            return;
        }
        self.bytes += msg.footprint();
        self.ring.push_back(msg);
        while self.ring.len() > capacity.messages
            || (self.bytes > capacity.bytes && self.ring.len() > 1)
        {
            if let Some(old) = self.ring.pop_front() {
                self.bytes -= old.footprint();
            }
        }
        if self.ring.capacity() > 2 * self.ring.len() + 8 {
            self.ring.shrink_to(self.ring.len());
        }
    }

    /// The [`Message::footprint`]s of the messages held, summed.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Where the messages after `after` start, given that the newest seq is `last`.
    pub(crate) fn coverage(&self, after: u64, last: u64) -> Coverage {
        if after > last {
            return Coverage::Gap;
        }
        if after == last {
            return Coverage::From(self.ring.len());
        }
        let i = self.first_after(after);
        match self.ring.get(i) {
            // `after` is exactly the position before the first newer message.
            Some(next) if next.prev_seq() == after => Coverage::From(i),
            _ => Coverage::Gap,
        }
    }

    /// The ring index of the first message newer than `seq`. A live reader is
    /// usually a message or two behind the newest, so the last few are looked
    /// at first; a binary search finds the others.
    pub(crate) fn first_after(&self, seq: u64) -> usize {
        let len = self.ring.len();
        for i in (len.saturating_sub(NEAR_END)..len).rev() {
            if self.ring[i].seq() <= seq {
                return i + 1;
            }
        }
        self.ring.partition_point(|m| m.seq() <= seq)
    }

    /// The message at ring index `i` (see [`Coverage::From`]).
    pub(crate) fn get(&self, i: usize) -> Option<&Arc<Message>> {
        self.ring.get(i)
    }

    /// Number of messages held.
    pub(crate) fn len(&self) -> usize {
        self.ring.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::tests::msg;

    #[test]
    fn coverage_is_exact_at_the_edges() {
        let mut h = History::default();
        for seq in 1..=5 {
            h.push(msg(seq), Capacity::messages(3));
        }
        // Holds 3, 4, 5.
        assert_eq!(h.len(), 3);
        assert_eq!(h.coverage(5, 5), Coverage::From(3));
        assert_eq!(h.coverage(4, 5), Coverage::From(2));
        assert_eq!(h.coverage(2, 5), Coverage::From(0));
        assert_eq!(h.get(0).unwrap().seq(), 3);
        assert_eq!(h.coverage(1, 5), Coverage::Gap);
        assert_eq!(h.coverage(6, 5), Coverage::Gap);
    }

    #[test]
    fn a_skip_in_the_seqs_is_covered_only_from_the_position_before_it() {
        let mut h = History::default();
        for seq in 1..=3 {
            h.push(msg(seq), Capacity::messages(8));
        }
        // Restored after a crash: the next message skips to 1,000,003.
        let jump = crate::message::tests::msg_after(3, 1_000_003);
        h.push(jump, Capacity::messages(8));
        h.push(
            crate::message::tests::msg_after(1_000_003, 1_000_004),
            Capacity::messages(8),
        );
        assert_eq!(h.coverage(3, 1_000_004), Coverage::From(3));
        assert_eq!(h.coverage(2, 1_000_004), Coverage::From(2));
        // Positions that only existed before the crash are not covered.
        assert_eq!(h.coverage(4, 1_000_004), Coverage::Gap);
        assert_eq!(h.coverage(1_000_002, 1_000_004), Coverage::Gap);
        assert_eq!(h.coverage(1_000_003, 1_000_004), Coverage::From(4));
    }

    #[test]
    fn the_first_message_after_a_seq_is_found_near_the_end_and_far_from_it() {
        for held in [0, 1, 3, 4, 5, 9, 40] {
            let mut h = History::default();
            for seq in 1..=held {
                h.push(msg(seq), Capacity::messages(64));
            }
            // A skip in the seqs, as after a restore.
            h.push(
                crate::message::tests::msg_after(held, held + 100),
                Capacity::messages(64),
            );
            for seq in 0..=held + 101 {
                let expected = h.ring.partition_point(|m| m.seq() <= seq);
                assert_eq!(h.first_after(seq), expected, "{held} held, after {seq}");
            }
        }
    }

    #[test]
    fn zero_capacity_covers_only_the_present() {
        let mut h = History::default();
        h.push(msg(1), Capacity::messages(0));
        assert_eq!(h.coverage(1, 1), Coverage::From(0));
        assert_eq!(h.coverage(0, 1), Coverage::Gap);
    }

    #[test]
    fn a_smaller_capacity_drops_the_oldest_and_gives_memory_back() {
        let mut h = History::default();
        for seq in 1..=256 {
            h.push(msg(seq), Capacity::messages(256));
        }
        assert_eq!(h.len(), 256);
        h.push(msg(257), Capacity::messages(4));
        assert_eq!(h.len(), 4);
        assert_eq!(h.get(0).unwrap().seq(), 254, "the newest four remain");
        assert_eq!(h.coverage(253, 257), Coverage::From(0));
        assert_eq!(h.coverage(252, 257), Coverage::Gap);
        assert!(h.ring.capacity() < 64, "capacity {}", h.ring.capacity());
        // Growing again keeps everything up to the new capacity.
        for seq in 258..=300 {
            h.push(msg(seq), Capacity::messages(100));
        }
        assert_eq!(h.len(), 47);
    }
}
