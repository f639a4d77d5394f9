//! # field-delta: per-field topic deltas (world `delta`)
//!
//! ## Config
//!
//! | key       | default | meaning                                                        |
//! |-----------|---------|----------------------------------------------------------------|
//! | `epsilon` | `0`     | absolute tolerance for numbers; finite and `>= 0`              |
//!
//! ## diff(previous, current)
//!
//! * `changed`: the fields of `current` that are new, or whose value differs from
//!   `previous` (numbers: `|a - b| > epsilon`, NaN equal only to NaN; text and flags: `!=`;
//!   a change of type always counts);
//! * `removed`: the names present in `previous` but not in `current`.
//!
//! Both are sorted by name. With `epsilon > 0` small numeric moves are not sent, so a
//! subscriber's value may lag the source by at most `epsilon`.
//!
//! ## apply(previous, delta)
//!
//! `previous` with the `changed` fields overwritten or added and the `removed` ones
//! deleted, sorted by name. A name both changed and removed is an error. Stateless.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use wasmeter_sdk::{
    Config, Delta, DeltaAlgorithm, Field, FieldNames, FieldValue, IndexedField, Plugin, PluginInfo,
};

/// The delta algorithm and its tolerance.
#[derive(Debug, Clone, Copy)]
pub struct FieldDelta {
    epsilon: f64,
}

/// True if `current` is a change from `previous` under `epsilon`.
fn differs(previous: &FieldValue, current: &FieldValue, epsilon: f64) -> bool {
    match (previous, current) {
        (FieldValue::Number(a), FieldValue::Number(b)) => {
            if a.is_nan() || b.is_nan() {
                a.is_nan() != b.is_nan()
            } else {
                a != b && (a - b).abs() > epsilon
            }
        }
        (FieldValue::Text(a), FieldValue::Text(b)) => a != b,
        (FieldValue::Flag(a), FieldValue::Flag(b)) => a != b,
        _ => true,
    }
}

/// Computes the delta from `previous` to `current` (inputs in any order; last duplicate
/// wins).
pub fn diff(previous: Vec<Field>, current: Vec<Field>, epsilon: f64) -> Delta {
    if sorted_by_name(&previous) && sorted_by_name(&current) {
        diff_sorted(previous, current, epsilon)
    } else {
        diff_any_order(previous, current, epsilon)
    }
}

/// [`diff`] of fields numbered into the call's `names`, as the host sends them:
/// in name order, they are compared by number and only the names of what
/// changed are copied. An error if a field's number names nothing.
pub fn diff_indexed(
    names: &FieldNames,
    previous: Vec<IndexedField>,
    current: Vec<IndexedField>,
    epsilon: f64,
) -> Result<Delta, String> {
    if !(names.in_order(&previous)? && names.in_order(&current)?) {
        return Ok(diff(names.named(previous)?, names.named(current)?, epsilon));
    }
    let mut delta = Delta::default();
    walk_sorted(
        previous,
        current,
        |p, c| names.cmp(p, c),
        |f| &f.value,
        epsilon,
        |f| delta.changed.push(Field::new(names.name(f.name), f.value)),
        |f| delta.removed.push(names.name(f.name).to_owned()),
    );
    Ok(delta)
}

/// True if the names strictly increase: what the host sends (the states are
/// sorted by name, each name once).
fn sorted_by_name(fields: &[Field]) -> bool {
    fields.windows(2).all(|w| w[0].name < w[1].name)
}

/// [`diff`] of two lists sorted by name: the fields move into the delta
/// without copies.
fn diff_sorted(previous: Vec<Field>, current: Vec<Field>, epsilon: f64) -> Delta {
    let mut delta = Delta::default();
    walk_sorted(
        previous,
        current,
        |p, c| p.name.cmp(&c.name),
        |f| &f.value,
        epsilon,
        |f| delta.changed.push(f),
        |f| delta.removed.push(f.name),
    );
    delta
}

/// Walks two lists sorted by `order` side by side (no maps), handing each
/// field of `current` that is new or differs to `changed`, and each field of
/// `previous` that `current` lacks to `removed`, both in order.
fn walk_sorted<F>(
    previous: Vec<F>,
    current: Vec<F>,
    order: impl Fn(&F, &F) -> Ordering,
    value: impl Fn(&F) -> &FieldValue,
    epsilon: f64,
    mut changed: impl FnMut(F),
    mut removed: impl FnMut(F),
) {
    let mut previous = previous.into_iter().peekable();
    for field in current {
        while let Some(gone) = previous.next_if(|p| order(p, &field) == Ordering::Less) {
            removed(gone);
        }
        match previous.next_if(|p| order(p, &field) == Ordering::Equal) {
            Some(old) if !differs(value(&old), value(&field), epsilon) => {}
            _ => changed(field),
        }
    }
    previous.for_each(removed);
}

/// [`diff`] of lists in any order.
fn diff_any_order(previous: Vec<Field>, current: Vec<Field>, epsilon: f64) -> Delta {
    let previous: BTreeMap<String, FieldValue> =
        previous.into_iter().map(|f| (f.name, f.value)).collect();
    let current: BTreeMap<String, FieldValue> =
        current.into_iter().map(|f| (f.name, f.value)).collect();
    let removed = previous
        .keys()
        .filter(|name| !current.contains_key(*name))
        .cloned()
        .collect();
    let changed = current
        .into_iter()
        .filter(|(name, value)| match previous.get(name) {
            Some(old) => differs(old, value, epsilon),
            None => true,
        })
        .map(|(name, value)| Field { name, value })
        .collect();
    Delta { changed, removed }
}

/// Applies `delta` to `previous`; the result is sorted by name.
pub fn apply(previous: Vec<Field>, delta: Delta) -> Result<Vec<Field>, String> {
    let mut state: BTreeMap<String, FieldValue> =
        previous.into_iter().map(|f| (f.name, f.value)).collect();
    for name in &delta.removed {
        if delta.changed.iter().any(|f| &f.name == name) {
            return Err(format!("field `{name}` is both changed and removed"));
        }
        state.remove(name);
    }
    for f in delta.changed {
        state.insert(f.name, f.value);
    }
    Ok(state
        .into_iter()
        .map(|(name, value)| Field { name, value })
        .collect())
}

impl Plugin for FieldDelta {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "field-delta",
            env!("CARGO_PKG_VERSION"),
            "Changed and removed fields of a topic, with an optional numeric epsilon",
        )
    }

    fn init(config: &Config) -> Result<Self, String> {
        let epsilon = config.parse_checked(
            "epsilon",
            Some(0.0f64),
            |e| e.is_finite() && *e >= 0.0,
            "a finite number >= 0",
        )?;
        Ok(FieldDelta { epsilon })
    }
}

impl DeltaAlgorithm for FieldDelta {
    fn diff(
        &mut self,
        _topic: &str,
        previous: Vec<Field>,
        current: Vec<Field>,
    ) -> Result<Delta, String> {
        Ok(diff(previous, current, self.epsilon))
    }

    fn diff_indexed(
        &mut self,
        _topic: &str,
        names: &FieldNames,
        previous: Vec<IndexedField>,
        current: Vec<IndexedField>,
    ) -> Result<Delta, String> {
        diff_indexed(names, previous, current, self.epsilon)
    }

    fn apply(&mut self, previous: Vec<Field>, delta: Delta) -> Result<Vec<Field>, String> {
        apply(previous, delta)
    }
}

wasmeter_sdk::export_delta!(FieldDelta);

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(list: &[(&str, FieldValue)]) -> Vec<Field> {
        list.iter()
            .map(|(n, v)| Field::new(*n, v.clone()))
            .collect()
    }

    /// Field `n`'s value in variant `v`: equal, within the tests' epsilon of
    /// 0.1, changed, or of another type.
    fn value(n: usize, v: u32) -> FieldValue {
        use FieldValue::*;
        match v % 4 {
            0 => Number(n as f64),
            1 => Number(n as f64 + 0.05),
            2 => Number(n as f64 + 1.0),
            _ => Text(n.to_string()),
        }
    }

    #[test]
    fn diff_and_apply_round_trip() {
        use FieldValue::*;
        let previous = fields(&[
            ("a", Number(1.0)),
            ("b", Text("x".into())),
            ("c", Flag(true)),
            ("d", Number(5.0)),
        ]);
        let current = fields(&[
            ("a", Number(1.05)),
            ("b", Number(1.0)),
            ("d", Number(5.0)),
            ("e", Flag(false)),
        ]);
        let delta = diff(previous.clone(), current.clone(), 0.1);
        assert_eq!(
            delta.changed,
            fields(&[("b", Number(1.0)), ("e", Flag(false))])
        );
        assert_eq!(delta.removed, vec!["c".to_string()]);
        let applied = apply(previous.clone(), delta).unwrap();
        assert_eq!(
            applied,
            fields(&[
                ("a", Number(1.0)),
                ("b", Number(1.0)),
                ("d", Number(5.0)),
                ("e", Flag(false))
            ])
        );

        let exact = diff(previous.clone(), current.clone(), 0.0);
        assert_eq!(apply(previous, exact).unwrap(), current);
        assert!(FieldDelta::init(&Config::from_pairs(&[("epsilon", "-1")])).is_err());
        assert!(FieldDelta::init(&Config::from_pairs(&[("epsilon", "x")])).is_err());
    }

    #[test]
    fn sorted_lists_give_what_maps_give() {
        use FieldValue::*;
        // Every pattern of five names each present or not in either state, with
        // values equal, within epsilon, changed or of another type.
        let names = ["a", "b", "c", "d", "e"];
        let mut cases = 0;
        for mask in 0u32..1024 {
            let pick = |side: u32| -> Vec<Field> {
                names
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| mask >> (2 * i + side as usize) & 1 == 1)
                    .map(|(i, n)| Field::new(*n, value(i, side * mask.count_ones() + i as u32)))
                    .collect()
            };
            let (previous, current) = (pick(0), pick(1));
            assert!(sorted_by_name(&previous) && sorted_by_name(&current));
            let sorted = diff_sorted(previous.clone(), current.clone(), 0.1);
            let maps = diff_any_order(previous, current, 0.1);
            assert_eq!(sorted, maps, "mask {mask:#b}");
            cases += 1;
        }
        assert_eq!(cases, 1024);
        // Out of order or with a name twice: the maps decide.
        let unsorted = fields(&[("b", Number(1.0)), ("a", Number(1.0)), ("a", Number(2.0))]);
        assert!(!sorted_by_name(&unsorted));
        let delta = diff(fields(&[("a", Number(1.0))]), unsorted, 0.0);
        assert_eq!(
            delta.changed,
            fields(&[("a", Number(2.0)), ("b", Number(1.0))])
        );
    }

    #[test]
    fn numbered_fields_give_what_named_fields_give() {
        use FieldValue::*;
        // The call's names numbered out of name order, one name twice (numbers
        // 1 and 5 both name "a"), as a host other than this one might send.
        let call = ["d", "a", "e", "b", "c", "a"];
        let names = FieldNames::new(call.iter().map(|n| n.to_string()).collect());
        let by_name = [1, 3, 4, 0, 2]; // a, b, c, d, e
        // Bits 0-9: which names either state has; bits 10 and 11: whether
        // "a" is number 5 in the previous and the current state.
        for mask in 0u32..4096 {
            let pick = |side: u32| -> Vec<IndexedField> {
                by_name
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| mask >> (2 * i + side as usize) & 1 == 1)
                    .map(|(i, number)| IndexedField {
                        // "a" by either of its numbers.
                        name: if *number == 1 && mask >> (10 + side) & 1 == 1 {
                            5
                        } else {
                            *number
                        },
                        value: value(i, side * mask.count_ones() + i as u32),
                    })
                    .collect()
            };
            let (previous, current) = (pick(0), pick(1));
            let named = diff(
                names.named(previous.clone()).unwrap(),
                names.named(current.clone()).unwrap(),
                0.1,
            );
            assert_eq!(
                diff_indexed(&names, previous, current, 0.1),
                Ok(named),
                "mask {mask:#b}"
            );
        }
        // Out of order: named, then the maps decide; a number naming nothing
        // is an error.
        let field = |name, value| IndexedField { name, value };
        let unsorted = vec![field(0, Number(1.0)), field(1, Number(1.0))];
        assert_eq!(
            diff_indexed(&names, vec![], unsorted, 0.0).unwrap().changed,
            fields(&[("a", Number(1.0)), ("d", Number(1.0))])
        );
        assert_eq!(
            diff_indexed(&names, vec![field(6, Flag(true))], vec![], 0.0),
            Err("field name #6 of 6 given in the call".to_string())
        );
    }
}
