//! The fields of a topic and a topic's complete state.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The value of one field of a topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FieldValue {
    /// A number; always finite once validated.
    Number(f64),
    /// Free text.
    Text(String),
    /// A boolean.
    Flag(bool),
}

impl fmt::Display for FieldValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldValue::Number(n) => write!(f, "{n}"),
            FieldValue::Text(t) => f.write_str(t),
            FieldValue::Flag(b) => write!(f, "{b}"),
        }
    }
}

/// A named field.
pub type Field = (String, FieldValue);

/// The complete state of a topic: its fields by name, sorted (the order plugins see).
///
/// A sorted vector rather than a `BTreeMap`: a topic holds a handful of fields
/// (a sample series two), and a map's node takes ~640 bytes however few it
/// holds. At 10,000 symbols (50,000 topics, each state also kept by the
/// messages of its history) the maps were the largest part of the heap. Look-ups
/// are binary searches; an insert moves the fields after it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TopicState {
    fields: Vec<(String, FieldValue)>,
}

impl TopicState {
    /// A state without fields.
    pub fn new() -> Self {
        Self::default()
    }

    fn find(&self, name: &str) -> Result<usize, usize> {
        self.fields.binary_search_by(|(n, _)| n.as_str().cmp(name))
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// True if the state has no field.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The value of field `name`.
    pub fn get(&self, name: &str) -> Option<&FieldValue> {
        self.find(name).ok().map(|i| &self.fields[i].1)
    }

    /// Field `name` and its value.
    pub fn get_key_value(&self, name: &str) -> Option<(&String, &FieldValue)> {
        self.find(name).ok().map(|i| {
            let (n, v) = &self.fields[i];
            (n, v)
        })
    }

    /// True if the state has field `name`.
    pub fn contains_key(&self, name: &str) -> bool {
        self.find(name).is_ok()
    }

    /// This state with `fields` set: `fields` come in name order, each name
    /// once (a `BTreeMap`'s). One pass over both, each name copied once, into a
    /// vector of the exact size (states are long-lived: each message of a
    /// topic's history holds one).
    pub fn with_fields<'f>(
        &self,
        fields: impl Iterator<Item = (&'f String, &'f FieldValue)> + Clone,
    ) -> TopicState {
        let mut merged = Vec::with_capacity(self.fields.len() + self.absent(fields.clone()));
        let mut old = self.fields.iter().peekable();
        for (name, value) in fields {
            while let Some((n, v)) = old.next_if(|(n, _)| n < name) {
                merged.push((n.clone(), v.clone()));
            }
            old.next_if(|(n, _)| n == name);
            merged.push((name.clone(), value.clone()));
        }
        merged.extend(old.cloned());
        TopicState { fields: merged }
    }

    /// How many of `names` (in name order, each once) the state lacks: one
    /// pass over both, as the merge that follows makes (a binary search per
    /// name compared names twice as often).
    fn absent<'f, V: 'f>(&self, names: impl Iterator<Item = (&'f String, V)>) -> usize {
        let mut old = self.fields.iter().peekable();
        names
            .filter(|(name, _)| {
                while old.next_if(|(n, _)| n < *name).is_some() {}
                old.next_if(|(n, _)| n == *name).is_none()
            })
            .count()
    }

    /// Sets field `name`; returns its previous value.
    pub fn insert(&mut self, name: String, value: FieldValue) -> Option<FieldValue> {
        match self.find(&name) {
            Ok(i) => Some(std::mem::replace(&mut self.fields[i].1, value)),
            Err(i) => {
                self.fields.insert(i, (name, value));
                None
            }
        }
    }

    /// Removes field `name`; returns its value.
    pub fn remove(&mut self, name: &str) -> Option<FieldValue> {
        self.find(name).ok().map(|i| self.fields.remove(i).1)
    }

    /// The fields in name order.
    pub fn iter(
        &self,
    ) -> impl DoubleEndedIterator<Item = (&String, &FieldValue)> + ExactSizeIterator {
        self.fields.iter().map(|(n, v)| (n, v))
    }

    /// The field names in order.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &String> + ExactSizeIterator {
        self.fields.iter().map(|(n, _)| n)
    }

    /// The values in field-name order.
    pub fn values(&self) -> impl DoubleEndedIterator<Item = &FieldValue> + ExactSizeIterator {
        self.fields.iter().map(|(_, v)| v)
    }
}

impl std::ops::Index<&str> for TopicState {
    type Output = FieldValue;

    /// The value of field `name`; panics if there is none, as a map does.
    fn index(&self, name: &str) -> &FieldValue {
        self.get(name)
            .expect("no field of that name in the topic state")
    }
}

impl FromIterator<(String, FieldValue)> for TopicState {
    /// Later values of a name win, as with a map.
    fn from_iter<I: IntoIterator<Item = (String, FieldValue)>>(iter: I) -> Self {
        let mut fields: Vec<(String, FieldValue)> = iter.into_iter().collect();
        // Stable: of equal names the last one stays after the dedup below.
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        let mut unique: Vec<(String, FieldValue)> = Vec::with_capacity(fields.len());
        for field in fields {
            match unique.last_mut() {
                Some(last) if last.0 == field.0 => *last = field,
                _ => unique.push(field),
            }
        }
        TopicState { fields: unique }
    }
}

impl Extend<(String, FieldValue)> for TopicState {
    fn extend<I: IntoIterator<Item = (String, FieldValue)>>(&mut self, iter: I) {
        for (name, value) in iter {
            self.insert(name, value);
        }
    }
}

impl<const N: usize> From<[(String, FieldValue); N]> for TopicState {
    fn from(fields: [(String, FieldValue); N]) -> Self {
        fields.into_iter().collect()
    }
}

impl From<BTreeMap<String, FieldValue>> for TopicState {
    fn from(map: BTreeMap<String, FieldValue>) -> Self {
        // Already sorted and unique.
        Self {
            fields: map.into_iter().collect(),
        }
    }
}

impl IntoIterator for TopicState {
    type Item = (String, FieldValue);
    type IntoIter = std::vec::IntoIter<(String, FieldValue)>;

    fn into_iter(self) -> Self::IntoIter {
        self.fields.into_iter()
    }
}

impl<'a> IntoIterator for &'a TopicState {
    type Item = (&'a String, &'a FieldValue);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (String, FieldValue)>,
        fn(&'a (String, FieldValue)) -> (&'a String, &'a FieldValue),
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.fields.iter().map(|(n, v)| (n, v))
    }
}

impl Serialize for TopicState {
    /// As a map, in name order (as a `BTreeMap` was).
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for TopicState {
    /// From a map; a repeated name keeps its last value.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Fields;
        impl<'de> serde::de::Visitor<'de> for Fields {
            type Value = TopicState;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of field names to values")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<TopicState, A::Error> {
                let mut fields: Vec<(String, FieldValue)> =
                    Vec::with_capacity(map.size_hint().unwrap_or(0).min(1024));
                while let Some(entry) = map.next_entry()? {
                    fields.push(entry);
                }
                Ok(fields.into_iter().collect())
            }
        }
        deserializer.deserialize_map(Fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(x: f64) -> FieldValue {
        FieldValue::Number(x)
    }

    #[test]
    fn fields_stay_sorted_and_unique_as_in_a_map() {
        let mut state = TopicState::new();
        assert_eq!(state.insert("qty".into(), n(1.0)), None);
        assert_eq!(state.insert("price".into(), n(2.0)), None);
        assert_eq!(state.insert("ts".into(), n(3.0)), None);
        assert_eq!(state.insert("price".into(), n(4.0)), Some(n(2.0)));
        let keys: Vec<&str> = state.keys().map(String::as_str).collect();
        assert_eq!(keys, ["price", "qty", "ts"]);
        assert_eq!(state.get("price"), Some(&n(4.0)));
        assert_eq!(state.remove("qty"), Some(n(1.0)));
        assert_eq!(state.remove("qty"), None);
        assert!(!state.contains_key("qty"));
        assert_eq!(state.len(), 2);
        let map: BTreeMap<String, FieldValue> = [
            ("b".to_string(), n(1.0)),
            ("a".to_string(), n(2.0)),
            ("b".to_string(), n(3.0)),
        ]
        .into_iter()
        .collect();
        let collected: TopicState = [
            ("b".to_string(), n(1.0)),
            ("a".to_string(), n(2.0)),
            ("b".to_string(), n(3.0)),
        ]
        .into_iter()
        .collect();
        assert_eq!(collected, TopicState::from(map));
    }

    #[test]
    fn with_fields_is_the_state_with_each_field_inserted() {
        // Every pattern of five names present or not in the state and in the
        // fields set on it.
        let names = ["a", "b", "c", "d", "e"];
        for in_state in 0..32u32 {
            for in_fields in 0..32u32 {
                let pick = |mask: u32, base: f64| -> BTreeMap<String, FieldValue> {
                    (0..5)
                        .filter(|i| mask & (1 << i) != 0)
                        .map(|i| (names[i].to_string(), n(base + i as f64)))
                        .collect()
                };
                let state = TopicState::from(pick(in_state, 0.0));
                let fields = pick(in_fields, 10.0);
                let mut expected = state.clone();
                expected.extend(fields.clone());
                let merged = state.with_fields(fields.iter());
                assert_eq!(merged, expected, "{in_state:05b} with {in_fields:05b}");
                assert_eq!(merged.fields.capacity(), merged.len(), "no room to spare");
            }
        }
    }

    #[test]
    fn serialises_as_the_map_it_replaces_and_reads_repeated_names_as_a_map_does() {
        let map = BTreeMap::from([
            ("side".to_string(), FieldValue::Text("buy".into())),
            ("price".to_string(), n(1.5)),
            ("open".to_string(), FieldValue::Flag(true)),
        ]);
        let state = TopicState::from(map.clone());
        assert_eq!(
            serde_json::to_string(&state).unwrap(),
            serde_json::to_string(&map).unwrap()
        );
        let back: TopicState =
            serde_json::from_str(&serde_json::to_string(&state).unwrap()).unwrap();
        assert_eq!(back, state);
        let repeated: TopicState = serde_json::from_str(r#"{"b": 1, "a": 2, "b": 3}"#).unwrap();
        let as_map: BTreeMap<String, FieldValue> =
            serde_json::from_str(r#"{"b": 1, "a": 2, "b": 3}"#).unwrap();
        assert_eq!(repeated, TopicState::from(as_map));
    }
}
