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

use std::collections::BTreeMap;

use wasmeter_sdk::{Config, Delta, DeltaAlgorithm, Field, FieldValue, Plugin, PluginInfo};

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
}
