//! Series identity: a metric name and a sorted set of labels.

use std::fmt;
use std::sync::Arc;

use crate::error::{Error, Result};

/// The label that holds the metric name.
pub const METRIC_NAME: &str = "__name__";
/// Most labels in one series (name included).
pub const MAX_LABELS: usize = 64;
/// Longest label value, in bytes.
pub const MAX_VALUE_BYTES: usize = 4096;
/// Longest label name, in bytes.
pub const MAX_NAME_BYTES: usize = 256;

/// One label.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Label {
    /// Label name, `[a-zA-Z_][a-zA-Z0-9_]*` (or `__name__`).
    pub name: String,
    /// Label value, any UTF-8, never empty (an empty value means "no label").
    pub value: String,
}

/// A series' identity: labels sorted by name, names unique, the metric name
/// held as label `__name__`. Built only through validating constructors;
/// immutable, so a clone shares them (the catalog keeps a series' labels both
/// by id and as the key of its lookup).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Labels(Arc<[Label]>);

/// Whether `s` is a valid label name.
pub fn is_valid_label_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    match bytes.next() {
        Some(b) if b.is_ascii_alphabetic() || b == b'_' => {}
        _ => return false,
    }
    s.len() <= MAX_NAME_BYTES && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Whether `s` is a valid metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`).
pub fn is_valid_metric_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    match bytes.next() {
        Some(b) if b.is_ascii_alphabetic() || b == b'_' || b == b':' => {}
        _ => return false,
    }
    s.len() <= MAX_VALUE_BYTES && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
}

impl Labels {
    /// A series `metric{labels}`. Labels with empty values are dropped (as in
    /// Prometheus); names are validated and must be unique.
    pub fn new<N, V>(metric: &str, labels: impl IntoIterator<Item = (N, V)>) -> Result<Labels>
    where
        N: Into<String>,
        V: Into<String>,
    {
        let mut all = vec![(METRIC_NAME.to_string(), metric.to_string())];
        all.extend(labels.into_iter().map(|(n, v)| (n.into(), v.into())));
        Labels::from_pairs(all)
    }

    /// A series from label pairs, one of which must be `__name__`.
    pub fn from_pairs<N, V>(pairs: impl IntoIterator<Item = (N, V)>) -> Result<Labels>
    where
        N: Into<String>,
        V: Into<String>,
    {
        let mut v: Vec<Label> = pairs
            .into_iter()
            .map(|(n, v)| Label {
                name: n.into(),
                value: v.into(),
            })
            .filter(|l| !l.value.is_empty())
            .collect();
        v.sort();
        let shown = || {
            let mut s = String::new();
            for l in v.iter().take(8) {
                s.push_str(&format!("{}={:?} ", l.name, truncate(&l.value, 64)));
            }
            s.trim_end().to_string()
        };
        for w in v.windows(2) {
            if w[0].name == w[1].name {
                return Err(Error::DuplicateLabel {
                    name: w[0].name.clone(),
                    series: shown(),
                });
            }
        }
        for l in &v {
            if l.name == METRIC_NAME {
                if !is_valid_metric_name(&l.value) {
                    return Err(Error::InvalidMetricName {
                        name: truncate(&l.value, 256).to_string(),
                    });
                }
            } else if !is_valid_label_name(&l.name) {
                return Err(Error::InvalidLabelName {
                    name: truncate(&l.name, 256).to_string(),
                    series: shown(),
                });
            }
            if l.value.len() > MAX_VALUE_BYTES {
                return Err(Error::SeriesTooLarge {
                    series: shown(),
                    reason: format!(
                        "label {} has a {}-byte value (limit {MAX_VALUE_BYTES})",
                        l.name,
                        l.value.len()
                    ),
                });
            }
        }
        if !v.iter().any(|l| l.name == METRIC_NAME) {
            return Err(Error::InvalidMetricName {
                name: String::new(),
            });
        }
        if v.len() > MAX_LABELS {
            return Err(Error::SeriesTooLarge {
                series: shown(),
                reason: format!("{} labels (limit {MAX_LABELS})", v.len()),
            });
        }
        Ok(Labels(v.into()))
    }

    /// The metric name.
    pub fn metric_name(&self) -> &str {
        self.get(METRIC_NAME).unwrap_or("")
    }

    /// The value of label `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|l| l.name.as_str().cmp(name))
            .ok()
            .map(|i| self.0[i].value.as_str())
    }

    /// The labels, sorted by name (`__name__` included).
    pub fn iter(&self) -> impl Iterator<Item = &Label> {
        self.0.iter()
    }

    /// Number of labels (`__name__` included).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no labels (only for `Labels::default()`).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Builds labels read back from the catalog, re-validating them.
    pub(crate) fn from_stored(v: Vec<(String, String)>) -> Result<Labels> {
        Labels::from_pairs(v)
    }
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

impl fmt::Display for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.metric_name())?;
        f.write_str("{")?;
        let mut first = true;
        for l in self.0.iter().filter(|l| l.name != METRIC_NAME) {
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            write!(f, "{}={:?}", l.name, l.value)?;
        }
        f.write_str("}")
    }
}

/// Whether the samples of a series are a gauge or a counter (kept as metadata;
/// storage and downsampling are the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MetricKind {
    /// Not said.
    #[default]
    Unknown,
    /// A value that goes up and down.
    Gauge,
    /// A monotonically increasing count (resets on restart).
    Counter,
}

impl MetricKind {
    pub(crate) fn to_byte(self) -> u8 {
        match self {
            MetricKind::Unknown => 0,
            MetricKind::Gauge => 1,
            MetricKind::Counter => 2,
        }
    }

    pub(crate) fn from_byte(b: u8) -> MetricKind {
        match b {
            1 => MetricKind::Gauge,
            2 => MetricKind::Counter,
            _ => MetricKind::Unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation() {
        let l = Labels::new("up", [("job", "a"), ("inst", "b"), ("empty", "")]).unwrap();
        assert_eq!(l.len(), 3);
        assert_eq!(l.get("job"), Some("a"));
        assert_eq!(l.to_string(), "up{inst=\"b\", job=\"a\"}");
        assert!(matches!(
            Labels::new("up", [("1x", "a")]),
            Err(Error::InvalidLabelName { .. })
        ));
        assert!(matches!(
            Labels::new("up", [("a-b", "a")]),
            Err(Error::InvalidLabelName { .. })
        ));
        assert!(matches!(
            Labels::new("up", [("a", "1"), ("a", "2")]),
            Err(Error::DuplicateLabel { .. })
        ));
        assert!(matches!(
            Labels::new("9up", [("a", "1")]),
            Err(Error::InvalidMetricName { .. })
        ));
        assert!(Labels::new("ns:up_total", [("_a9", "1")]).is_ok());
    }
}
