//! A topic's slots, one per subscriber, found by the subscriber's address.
//!
//! A hash table of the slots alone: the key (the address of the subscriber the
//! slot holds) is read from the slot, not stored beside it. Attaching and
//! detaching are O(1), which a storm of reconnecting subscribers needs; a
//! topic of a dozen subscribers keeps 16 buckets of one pointer each.

use std::hash::BuildHasher;
use std::sync::Arc;

use foldhash::fast::FixedState;
use hashbrown::HashTable;

use crate::slot::{Slot, Subscriber};

/// The key of a subscriber's slot: the address of the subscriber, stable while
/// its slot (which holds it) exists.
pub(crate) fn key(sub: &Arc<dyn Subscriber>) -> usize {
    Arc::as_ptr(sub).cast::<()>() as usize
}

fn hash(key: usize) -> u64 {
    FixedState::default().hash_one(key)
}

fn is(key: usize) -> impl Fn(&Arc<Slot>) -> bool {
    move |s| self::key(s.subscriber()) == key
}

/// The slots of one topic.
#[derive(Debug, Default)]
pub(crate) struct SlotSet {
    table: HashTable<Arc<Slot>>,
}

impl SlotSet {
    /// The slot of `sub`, made by `make` if it has none.
    pub(crate) fn attach(
        &mut self,
        sub: &Arc<dyn Subscriber>,
        make: impl FnOnce() -> Arc<Slot>,
    ) -> &Arc<Slot> {
        let key = key(sub);
        self.table
            .entry(hash(key), is(key), |s| hash(self::key(s.subscriber())))
            .or_insert_with(make)
            .into_mut()
    }

    /// Removes the slot of `sub` if `remove` says so; true if one was removed.
    pub(crate) fn remove_if(
        &mut self,
        sub: &Arc<dyn Subscriber>,
        remove: impl FnOnce(&Arc<Slot>) -> bool,
    ) -> bool {
        let key = key(sub);
        match self.table.find_entry(hash(key), is(key)) {
            Ok(e) if remove(e.get()) => {
                e.remove();
                true
            }
            _ => false,
        }
    }

    /// Every slot, in no order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Arc<Slot>> {
        self.table.iter()
    }

    /// How many slots there are.
    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }
}
