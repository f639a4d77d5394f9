//! The change between two states of a topic, with RFC 7396 merge-patch semantics.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use crate::field::{Field, FieldValue, TopicState};

/// Fields to set and fields to delete.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Delta {
    /// Fields whose value is new or changed.
    pub changed: Vec<Field>,
    /// Fields that no longer exist (`null` in a merge patch).
    pub removed: Vec<String>,
}

impl Delta {
    /// True when applying the delta changes nothing.
    pub fn is_empty(&self) -> bool {
        self.changed.is_empty() && self.removed.is_empty()
    }

    /// Whether [`Delta::apply_to`] would make `state` of `previous`, found without
    /// copying either: then a state built beforehand stands for the result.
    /// Numbers compare bit for bit (`-0.0` is not `0.0`), so it is exactly what
    /// applying the delta gives.
    pub fn turns_into(&self, previous: &TopicState, state: &TopicState) -> bool {
        self.turns_into_in_order(previous, state)
            .unwrap_or_else(|| self.turns_into_any_order(previous, state))
    }

    /// [`Delta::turns_into`] in one pass over the three name-ordered lists, each
    /// name compared about once; `None` unless the delta's `changed` and
    /// `removed` names strictly increase (the host's deltas and `field-delta`'s
    /// do; a field set again after going stale is appended out of order). A
    /// topic's commit asks this of every change: looking each name up in the
    /// other lists compared names dozens of times per topic.
    fn turns_into_in_order(&self, previous: &TopicState, state: &TopicState) -> Option<bool> {
        let changed_in_order = self.changed.is_sorted_by(|(a, _), (b, _)| a < b);
        if !changed_in_order || !self.removed.is_sorted_by(|a, b| a < b) {
            return None;
        }
        let mut old = previous.iter().peekable();
        let mut set = self.changed.iter().peekable();
        let mut removed = self.removed.iter().peekable();
        let mut result = state.iter();
        loop {
            // The next field of what `apply_to` would give, in name order: a field
            // set replaces the previous one and undoes a removal.
            let order = match (old.peek(), set.peek()) {
                (None, None) => return Some(result.next().is_none()),
                (None, Some(_)) => Ordering::Greater,
                (Some(_), None) => Ordering::Less,
                (Some((o, _)), Some((s, _))) => o.as_str().cmp(s),
            };
            let (name, value) = match order {
                Ordering::Less => {
                    let (name, value) = old.next()?;
                    while removed.next_if(|r| *r < name).is_some() {}
                    if removed.next_if(|r| *r == name).is_some() {
                        continue;
                    }
                    (name, value)
                }
                Ordering::Equal | Ordering::Greater => {
                    if order == Ordering::Equal {
                        old.next();
                    }
                    let (name, value) = set.next()?;
                    (name, value)
                }
            };
            match result.next() {
                Some((n, v)) if n == name && same(v, value) => {}
                _ => return Some(false),
            }
        }
    }

    /// [`Delta::turns_into`] for a delta in any order, duplicates included.
    fn turns_into_any_order(&self, previous: &TopicState, state: &TopicState) -> bool {
        let removed = |name: &str| self.removed.iter().any(|r| r == name);
        // `apply_to` removes, then sets in order: the last value set wins.
        let set = |name: &str| self.changed.iter().rev().find(|(n, _)| n == name);
        let expected = |name: &str| match set(name) {
            Some((_, value)) => Some(value),
            None if removed(name) => None,
            None => previous.get(name),
        };
        let as_expected = state
            .iter()
            .all(|(name, value)| expected(name).is_some_and(|e| same(e, value)));
        // Nothing the result would hold is missing from `state`.
        as_expected
            && self.changed.iter().all(|(n, _)| state.contains_key(n))
            && previous
                .keys()
                .all(|k| removed(k) && set(k).is_none() || state.contains_key(k))
    }

    /// Applies the delta to `state` in place: the state subscribers end up with.
    pub fn apply_to(&self, state: &mut TopicState) {
        for name in &self.removed {
            state.remove(name);
        }
        for (name, value) in &self.changed {
            state.insert(name.clone(), value.clone());
        }
    }
}

/// Equal values, numbers bit for bit.
fn same(a: &FieldValue, b: &FieldValue) -> bool {
    match (a, b) {
        (FieldValue::Number(x), FieldValue::Number(y)) => x.to_bits() == y.to_bits(),
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_sets_and_removes() {
        let mut state = TopicState::from([
            ("a".to_string(), FieldValue::Number(1.0)),
            ("b".to_string(), FieldValue::Flag(true)),
        ]);
        Delta {
            changed: vec![("a".into(), FieldValue::Number(2.0))],
            removed: vec!["b".into()],
        }
        .apply_to(&mut state);
        assert_eq!(
            state,
            TopicState::from([("a".to_string(), FieldValue::Number(2.0))])
        );
    }

    /// States equal field by field, numbers bit for bit (`Debug` writes `-0.0`).
    fn identical(a: &TopicState, b: &TopicState) -> bool {
        format!("{a:?}") == format!("{b:?}")
    }

    /// `turns_into` agrees with applying the delta, over states and deltas drawn
    /// from a few names and values (`-0.0` among them), with the candidate either
    /// the true result or the true result disturbed.
    #[test]
    fn turns_into_says_whether_applying_gives_the_state() {
        let names = ["a", "b", "c", "d"];
        let values = [
            FieldValue::Number(1.0),
            FieldValue::Number(0.0),
            FieldValue::Number(-0.0),
            FieldValue::Flag(true),
            FieldValue::Text("x".into()),
        ];
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let (mut agreed, mut held, mut in_order, mut one_pass) = (0, 0, 0, 0);
        for _ in 0..20_000 {
            let mut previous = TopicState::new();
            for name in names {
                if next(2) == 0 {
                    previous.insert(name.into(), values[next(values.len())].clone());
                }
            }
            let mut delta = Delta::default();
            for _ in 0..next(4) {
                let field = (names[next(4)].into(), values[next(values.len())].clone());
                delta.changed.push(field);
            }
            for _ in 0..next(3) {
                delta.removed.push(names[next(4)].into());
            }
            if next(2) == 0 {
                // In name order, each name once (the last value set wins), as the
                // host's deltas and field-delta's are.
                delta.changed.reverse();
                delta.changed.sort_by(|(a, _), (b, _)| a.cmp(b));
                delta.changed.dedup_by(|(a, _), (b, _)| a == b);
                delta.removed.sort();
                delta.removed.dedup();
                in_order += 1;
            }
            let mut result = previous.clone();
            delta.apply_to(&mut result);
            let mut candidate = result.clone();
            match next(4) {
                0 => {}
                1 => {
                    candidate.insert(names[next(4)].into(), values[next(values.len())].clone());
                }
                2 => {
                    candidate.remove(names[next(4)]);
                }
                _ => candidate = previous.clone(),
            }
            let expected = identical(&result, &candidate);
            let case = format!("previous {previous:?}, delta {delta:?}, candidate {candidate:?}");
            assert_eq!(delta.turns_into(&previous, &candidate), expected, "{case}");
            assert_eq!(
                delta.turns_into_any_order(&previous, &candidate),
                expected,
                "{case}"
            );
            if let Some(answer) = delta.turns_into_in_order(&previous, &candidate) {
                assert_eq!(answer, expected, "in one pass: {case}");
                one_pass += 1;
            }
            agreed += 1;
            held += usize::from(expected);
        }
        // Both answers came up often, and every delta in name order was
        // answered in one pass (as were some drawn in order by chance).
        assert!(held > 2_000 && agreed - held > 2_000, "{held} of {agreed}");
        assert!(
            one_pass >= in_order && in_order > 5_000,
            "{one_pass}, {in_order}"
        );
    }
}
