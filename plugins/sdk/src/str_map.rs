//! A map from strings, for the per-record look-ups of a collector (a trade's
//! symbol, an update's topic): keys are compared eight bytes at a time. In a
//! guest, the `memcmp` that `String`'s equality calls compares one byte at a
//! time, and was a tenth of a trade collector's time.

use std::hash::BuildHasher;

use foldhash::fast::RandomState;
use hashbrown::HashTable;

/// `a == b`, eight bytes at a time.
pub(crate) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let ((a_words, a_rest), (b_words, b_rest)) = (a.as_chunks::<8>(), b.as_chunks::<8>());
    a_words
        .iter()
        .zip(b_words)
        .all(|(x, y)| u64::from_ne_bytes(*x) == u64::from_ne_bytes(*y))
        && a_rest.iter().zip(b_rest).all(|(x, y)| x == y)
}

/// Values by string key.
#[derive(Debug, Clone)]
pub(crate) struct StrMap<V> {
    entries: HashTable<(String, V)>,
    /// Seeded per map, so that which keys collide cannot be chosen from outside.
    hasher: RandomState,
}

impl<V> Default for StrMap<V> {
    fn default() -> Self {
        Self {
            entries: HashTable::new(),
            hasher: RandomState::default(),
        }
    }
}

impl<V> StrMap<V> {
    fn hash(&self, key: &str) -> u64 {
        self.hasher.hash_one(key.as_bytes())
    }

    /// The value of `key`.
    pub(crate) fn get(&self, key: &str) -> Option<&V> {
        let hash = self.hash(key);
        let found = self
            .entries
            .find(hash, |(k, _)| same_bytes(k.as_bytes(), key.as_bytes()));
        found.map(|(_, v)| v)
    }

    /// The value of `key`, to change.
    pub(crate) fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        let hash = self.hash(key);
        let found = self
            .entries
            .find_mut(hash, |(k, _)| same_bytes(k.as_bytes(), key.as_bytes()));
        found.map(|(_, v)| v)
    }

    /// Sets `key` to `value`.
    pub(crate) fn insert(&mut self, key: String, value: V) {
        if let Some(held) = self.get_mut(&key) {
            *held = value;
            return;
        }
        let hash = self.hash(&key);
        let hasher = &self.hasher;
        self.entries
            .insert_unique(hash, (key, value), |(k, _)| hasher.hash_one(k.as_bytes()));
    }

    /// Every key and value, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&String, &V)> {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    /// Removes every key.
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }
}

impl<V: PartialEq> PartialEq for StrMap<V> {
    fn eq(&self, other: &Self) -> bool {
        self.entries.len() == other.entries.len()
            && self.iter().all(|(k, v)| other.get(k) == Some(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_equal_exactly_when_every_byte_is() {
        let a: Vec<u8> = (0..40).collect();
        for len in 0..a.len() {
            assert!(same_bytes(&a[..len], &a[..len]));
            assert!(!same_bytes(&a[..len], &a[..len + 1]));
            for at in 0..len {
                let mut b = a[..len].to_vec();
                b[at] ^= 1;
                assert!(!same_bytes(&a[..len], &b), "differs at {at} of {len}");
            }
        }
    }

    #[test]
    fn a_key_holds_its_latest_value() {
        let mut map = StrMap::default();
        for i in 0..1_000 {
            map.insert(format!("key-{i}"), i);
        }
        map.insert("key-7".to_string(), 70);
        assert_eq!(map.get("key-7"), Some(&70));
        assert_eq!(map.get("key-999"), Some(&999));
        assert_eq!(map.get("key-1000"), None);
        *map.get_mut("key-1").unwrap() += 10;
        assert_eq!(map.get("key-1"), Some(&11));
        assert_eq!(map.iter().count(), 1_000);
        let mut other = map.clone();
        assert!(map == other);
        other.insert("key-2".to_string(), 0);
        assert!(map != other);
        map.clear();
        assert_eq!(map.get("key-7"), None);
    }
}
