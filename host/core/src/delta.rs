//! The change between two states of a topic, with RFC 7396 merge-patch semantics.

use serde::{Deserialize, Serialize};

use crate::field::{Field, TopicState};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field::FieldValue;

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
}
