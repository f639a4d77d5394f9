//! A topic's bounded history: the last N messages, found by sequence number.
//!
//! The ring holds consecutive sequence numbers, oldest first, so finding "every
//! message after seq S" is an index computation. It is what a reconnecting
//! subscriber is replayed from and what a live subscriber reads its deltas from.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::message::Message;

/// The last `capacity` messages of one topic, with consecutive sequence numbers.
#[derive(Debug)]
pub(crate) struct History {
    ring: VecDeque<Arc<Message>>,
    capacity: usize,
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
    /// An empty history that keeps at most `capacity` messages.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            ring: VecDeque::new(),
            capacity,
        }
    }

    /// Appends the next message; the oldest falls out when full.
    pub(crate) fn push(&mut self, msg: Arc<Message>) {
        if self.capacity == 0 {
            return;
        }
        debug_assert!(self.ring.back().is_none_or(|b| b.seq() + 1 == msg.seq()));
        if self.ring.len() == self.capacity {
            self.ring.pop_front();
        }
        self.ring.push_back(msg);
    }

    /// Where the messages after `after` start, given that the newest seq is `last`.
    pub(crate) fn coverage(&self, after: u64, last: u64) -> Coverage {
        if after > last {
            return Coverage::Gap;
        }
        if after == last {
            return Coverage::From(self.ring.len());
        }
        match self.ring.front() {
            Some(first) if after + 1 >= first.seq() => {
                Coverage::From((after + 1 - first.seq()) as usize)
            }
            _ => Coverage::Gap,
        }
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
        let mut h = History::new(3);
        for seq in 1..=5 {
            h.push(msg(seq));
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
    fn zero_capacity_covers_only_the_present() {
        let mut h = History::new(0);
        h.push(msg(1));
        assert_eq!(h.coverage(1, 1), Coverage::From(0));
        assert_eq!(h.coverage(0, 1), Coverage::Gap);
    }
}
