//! Constructors and accessors for the generated data types (inherent impls must live in
//! the crate that defines the types, which is this one).

use crate::wasmeter::plugin::types::{
    Field, FieldValue, Label, MetricKind, RecordError, Sample, StreamEvent, TopicUpdate,
};

impl Label {
    /// A label `name = value`.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Label {
            name: name.into(),
            value: value.into(),
        }
    }
}

impl MetricKind {
    /// `"gauge"` or `"counter"`.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricKind::Gauge => "gauge",
            MetricKind::Counter => "counter",
        }
    }
}

impl Sample {
    /// A sample without labels, stamped by the host (`timestamp_ms = 0`).
    pub fn new(name: impl Into<String>, kind: MetricKind, value: f64) -> Self {
        Sample {
            name: name.into(),
            labels: Vec::new(),
            value,
            kind,
            timestamp_ms: 0,
        }
    }

    /// A gauge sample without labels, stamped by the host.
    pub fn gauge(name: impl Into<String>, value: f64) -> Self {
        Sample::new(name, MetricKind::Gauge, value)
    }

    /// A counter sample without labels, stamped by the host.
    pub fn counter(name: impl Into<String>, value: f64) -> Self {
        Sample::new(name, MetricKind::Counter, value)
    }

    /// Adds the label `name = value`.
    pub fn with_label(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.push(Label::new(name, value));
        self
    }

    /// Replaces all labels.
    pub fn with_labels(mut self, labels: Vec<Label>) -> Self {
        self.labels = labels;
        self
    }

    /// Sets the timestamp (Unix ms; 0 lets the host stamp the sample).
    pub fn at(mut self, timestamp_ms: i64) -> Self {
        self.timestamp_ms = timestamp_ms;
        self
    }

    /// The value of the label called `name`, if any.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|l| l.name == name)
            .map(|l| l.value.as_str())
    }
}

impl FieldValue {
    /// The number, if this is a `number`.
    pub fn as_number(&self) -> Option<f64> {
        match self {
            FieldValue::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// The text, if this is a `text`.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            FieldValue::Text(t) => Some(t),
            _ => None,
        }
    }

    /// The flag, if this is a `flag`.
    pub fn as_flag(&self) -> Option<bool> {
        match self {
            FieldValue::Flag(b) => Some(*b),
            _ => None,
        }
    }
}

impl From<f64> for FieldValue {
    fn from(value: f64) -> Self {
        FieldValue::Number(value)
    }
}

impl From<bool> for FieldValue {
    fn from(value: bool) -> Self {
        FieldValue::Flag(value)
    }
}

impl From<String> for FieldValue {
    fn from(value: String) -> Self {
        FieldValue::Text(value)
    }
}

impl From<&str> for FieldValue {
    fn from(value: &str) -> Self {
        FieldValue::Text(value.into())
    }
}

impl Field {
    /// A field `name = value`; `value` may be an `f64`, a `bool`, a string or a
    /// [`FieldValue`].
    pub fn new(name: impl Into<String>, value: impl Into<FieldValue>) -> Self {
        Field {
            name: name.into(),
            value: value.into(),
        }
    }
}

impl TopicUpdate {
    /// An update of `topic` without fields yet.
    pub fn new(topic: impl Into<String>) -> Self {
        TopicUpdate {
            topic: topic.into(),
            fields: Vec::new(),
        }
    }

    /// Adds the field `name = value` (builder style).
    pub fn field(mut self, name: impl Into<String>, value: impl Into<FieldValue>) -> Self {
        self.fields.push(Field::new(name, value));
        self
    }

    /// Adds the field `name = value`.
    pub fn push(&mut self, name: impl Into<String>, value: impl Into<FieldValue>) {
        self.fields.push(Field::new(name, value));
    }

    /// Sets the field `name` to `value`: replaces the value of the field of that
    /// name, or adds the field. The name is copied only when the field is new.
    pub fn set(&mut self, name: &str, value: impl Into<FieldValue>) -> &mut Self {
        let value = value.into();
        match self.fields.iter_mut().find(|f| f.name == name) {
            Some(field) => field.value = value,
            None => self.fields.push(Field::new(name, value)),
        }
        self
    }
}

impl StreamEvent {
    /// An event of the stream topic `topic` without fields yet.
    pub fn new(topic: impl Into<String>) -> Self {
        StreamEvent {
            topic: topic.into(),
            fields: Vec::new(),
        }
    }

    /// Adds the field `name = value` (builder style).
    pub fn field(mut self, name: impl Into<String>, value: impl Into<FieldValue>) -> Self {
        self.fields.push(Field::new(name, value));
        self
    }
}

impl RecordError {
    /// A problem with the record on 1-based `line` starting at byte `offset` of the chunk.
    pub fn new(line: u32, offset: u32, message: impl Into<String>) -> Self {
        RecordError {
            line,
            offset,
            message: message.into(),
        }
    }
}
