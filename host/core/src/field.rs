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
pub type TopicState = BTreeMap<String, FieldValue>;
