//! The fair service order of a source's files.
//!
//! Files with work to do are served round robin from `ready`. A file that needs a
//! descriptor when none is free moves to `waiting` (first in, first out); whenever a
//! descriptor is released, the file that has waited longest gets it next. A file that
//! still has bytes to read when others wait gives its descriptor up after its turn and
//! joins the back of `waiting`, so with more files than descriptors every file is served
//! in turn (least recently served first) and none can hog a descriptor.

use std::collections::{HashMap, VecDeque};

/// Where a queued file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Ready,
    Waiting,
}

/// Two FIFO lists over file ids; each id is in at most one of them, at most once.
#[derive(Debug)]
pub(crate) struct FairQueue<Id> {
    ready: VecDeque<Id>,
    waiting: VecDeque<Id>,
    place: HashMap<Id, Place>,
}

impl<Id: Copy + Eq + std::hash::Hash> Default for FairQueue<Id> {
    fn default() -> Self {
        FairQueue {
            ready: VecDeque::new(),
            waiting: VecDeque::new(),
            place: HashMap::new(),
        }
    }
}

impl<Id: Copy + Eq + std::hash::Hash> FairQueue<Id> {
    /// Queues `id` to be served, unless it is already queued or waiting.
    pub(crate) fn push_ready(&mut self, id: Id) {
        if let std::collections::hash_map::Entry::Vacant(e) = self.place.entry(id) {
            e.insert(Place::Ready);
            self.ready.push_back(id);
        }
    }

    /// Puts `id` at the back of the descriptor queue (moving it out of `ready` if there).
    pub(crate) fn push_waiting(&mut self, id: Id) {
        match self.place.insert(id, Place::Waiting) {
            Some(Place::Waiting) => return,
            Some(Place::Ready) => self.ready.retain(|x| *x != id),
            None => {}
        }
        self.waiting.push_back(id);
    }

    /// Puts `id` back at the front of the descriptor queue (its open was refused).
    pub(crate) fn unpop_waiting(&mut self, id: Id) {
        if self.place.insert(id, Place::Waiting).is_none() {
            self.waiting.push_front(id);
        }
    }

    /// The next file to serve.
    pub(crate) fn pop_ready(&mut self) -> Option<Id> {
        let id = self.ready.pop_front()?;
        self.place.remove(&id);
        Some(id)
    }

    /// The file that has waited longest for a descriptor.
    pub(crate) fn pop_waiting(&mut self) -> Option<Id> {
        let id = self.waiting.pop_front()?;
        self.place.remove(&id);
        Some(id)
    }

    /// Forgets `id` wherever it is.
    pub(crate) fn remove(&mut self, id: Id) {
        match self.place.remove(&id) {
            Some(Place::Ready) => self.ready.retain(|x| *x != id),
            Some(Place::Waiting) => self.waiting.retain(|x| *x != id),
            None => {}
        }
    }

    /// Whether files are ready to be served.
    pub(crate) fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    /// How many files wait for a descriptor.
    pub(crate) fn waiting_len(&self) -> usize {
        self.waiting.len()
    }

    /// Whether `id` is queued in either list.
    pub(crate) fn contains(&self, id: Id) -> bool {
        self.place.contains_key(&id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_id_is_queued_once_in_order() {
        let mut q = FairQueue::default();
        q.push_ready(1);
        q.push_ready(2);
        q.push_ready(1);
        q.push_waiting(3);
        q.push_waiting(2); // moves out of ready
        assert_eq!(q.waiting_len(), 2);
        assert_eq!(q.pop_ready(), Some(1));
        assert_eq!(q.pop_ready(), None);
        q.push_ready(3); // already waiting: stays there
        assert_eq!(q.pop_waiting(), Some(3));
        q.unpop_waiting(3);
        assert_eq!(q.pop_waiting(), Some(3), "a refused open keeps its turn");
        assert_eq!(q.pop_waiting(), Some(2));
        assert!(!q.contains(2) && !q.has_ready());
    }

    #[test]
    fn remove_forgets_everywhere() {
        let mut q = FairQueue::default();
        q.push_ready(1);
        q.push_waiting(2);
        q.remove(1);
        q.remove(2);
        assert_eq!((q.pop_ready(), q.pop_waiting()), (None, None));
    }
}
