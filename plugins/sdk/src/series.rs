//! Series identity and the host's validation rules for plugin output.
//!
//! A *series* is a metric name plus its labels; two samples with the same name and the
//! same labels in any order belong to the same series. Derived-metric plugins keep their
//! state per series, keyed by [`key`].

use std::collections::BTreeSet;

use crate::{Config, Label, MetricKind, Sample};

/// Maximum length of a metric or label name, in bytes.
pub const MAX_NAME_LEN: usize = 200;

/// Maximum number of labels of a sample.
pub const MAX_LABELS: usize = 16;

/// The labels sorted by name (then value).
pub fn sorted_labels(labels: &[Label]) -> Vec<Label> {
    let mut sorted = labels.to_vec();
    sorted.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.value.cmp(&b.value)));
    sorted
}

/// A canonical key of the series `name{labels}`: `name{a="x",b="y"}` with the labels
/// sorted and `\`, `"` and newlines in values escaped, so equal series give equal keys.
pub fn key(name: &str, labels: &[Label]) -> String {
    let mut out = String::with_capacity(name.len() + 2 + labels.len() * 16);
    out.push_str(name);
    out.push('{');
    // Sorted by reference, and only when there is something to sort: the labels
    // themselves are never copied.
    if labels.len() <= 1 {
        push_labels(&mut out, labels.iter());
    } else {
        let mut sorted: Vec<&Label> = labels.iter().collect();
        sorted.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.value.cmp(&b.value)));
        push_labels(&mut out, sorted.into_iter());
    }
    out.push('}');
    out
}

/// Appends `a="x",b="y"` to a key, escaping `\`, `"` and newlines in values.
fn push_labels<'a>(out: &mut String, labels: impl Iterator<Item = &'a Label>) {
    for (i, l) in labels.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&l.name);
        out.push_str("=\"");
        for c in l.value.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
}

/// The series key of a sample; see [`key`].
pub fn key_of(sample: &Sample) -> String {
    key(&sample.name, &sample.labels)
}

/// True if `name` is a valid metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`, at most 200 bytes.
pub fn is_valid_metric_name(name: &str) -> bool {
    valid_name(name, true)
}

/// True if `name` is a valid label name: `[a-zA-Z_][a-zA-Z0-9_]*`, at most 200 bytes.
pub fn is_valid_label_name(name: &str) -> bool {
    valid_name(name, false)
}

fn valid_name(name: &str, colon: bool) -> bool {
    let ok = |c: u8, first: bool| {
        c.is_ascii_alphabetic()
            || c == b'_'
            || (colon && c == b':')
            || (!first && c.is_ascii_digit())
    };
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_NAME_LEN
        && ok(b[0], true)
        && b[1..].iter().all(|&c| ok(c, false))
}

/// True if `segment` is a valid topic segment: non-empty `[A-Za-z0-9_.:-]+`.
pub fn is_valid_topic_segment(segment: &str) -> bool {
    !segment.is_empty()
        && segment
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b':' | b'-'))
}

/// True if `topic` is valid: `/`-separated valid segments, e.g. `trades/BTC-USD`.
pub fn is_valid_topic(topic: &str) -> bool {
    topic.split('/').all(is_valid_topic_segment)
}

/// The sample's timestamp, or the host's clock if the sample has none (0).
pub fn timestamp_or_now(sample: &Sample) -> i64 {
    if sample.timestamp_ms > 0 {
        sample.timestamp_ms
    } else {
        crate::now_ms()
    }
}

/// Which samples a derived-metric plugin consumes: the names listed in a config key
/// (usually `metrics`), or by default every sample of one kind.
#[derive(Debug, Clone)]
pub struct Selection {
    names: Option<BTreeSet<String>>,
    default_kind: MetricKind,
    skip_suffixes: Vec<String>,
}

impl Selection {
    /// Reads the comma list `key` of `config`; if it is not set (or empty), every sample
    /// of `default_kind` is selected.
    pub fn from_config(
        config: &Config,
        key: &str,
        default_kind: MetricKind,
    ) -> Result<Self, String> {
        let names = config.list(key).filter(|l| !l.is_empty());
        if let Some(bad) = names.iter().flatten().find(|n| !is_valid_metric_name(n)) {
            return Err(format!(
                "config `{key}`: `{bad}` is not a valid metric name"
            ));
        }
        Ok(Selection {
            names: names.map(|l| l.into_iter().collect()),
            default_kind,
            skip_suffixes: Vec::new(),
        })
    }

    /// In the default mode, also skips names ending in one of `suffixes` (a plugin's own
    /// output, so that it never derives from what it derived).
    pub fn skipping_suffixes(mut self, suffixes: &[&str]) -> Self {
        self.skip_suffixes = suffixes.iter().map(|s| s.to_string()).collect();
        self
    }

    /// True if the names were listed explicitly.
    pub fn is_explicit(&self) -> bool {
        self.names.is_some()
    }

    /// True if samples named `name` of `kind` are selected (whatever their
    /// value): what a plugin's [`crate::Metric::reads`] answers.
    pub fn reads(&self, name: &str, kind: MetricKind) -> bool {
        match &self.names {
            Some(names) => names.contains(name),
            None => {
                kind == self.default_kind
                    && !self
                        .skip_suffixes
                        .iter()
                        .any(|s| name.ends_with(s.as_str()))
            }
        }
    }

    /// True if `sample` is selected (non-finite values never are).
    pub fn matches(&self, sample: &Sample) -> bool {
        sample.value.is_finite() && self.reads(&sample.name, sample.kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_ignore_label_order() {
        let a = [Label::new("b", "2"), Label::new("a", "1\"")];
        let b = [Label::new("a", "1\""), Label::new("b", "2")];
        assert_eq!(key("m", &a), key("m", &b));
        assert_eq!(key("m", &a), "m{a=\"1\\\"\",b=\"2\"}");
        assert_eq!(key("m", &[]), "m{}");
        let one = [Label::new("s", "x\ny\\")];
        assert_eq!(key("m", &one), "m{s=\"x\\ny\\\\\"}");
    }

    #[test]
    fn names_and_topics() {
        assert!(is_valid_metric_name("a:b_1"));
        assert!(!is_valid_metric_name("1a"));
        assert!(!is_valid_metric_name("bad name!"));
        assert!(!is_valid_metric_name(&"a".repeat(201)));
        assert!(!is_valid_label_name("a:b"));
        assert!(is_valid_topic("trades/BTC-USD"));
        assert!(!is_valid_topic("trades//x"));
        assert!(!is_valid_topic("trades/BTC USD"));
    }

    #[test]
    fn selection() {
        let by_kind = Selection::from_config(&Config::default(), "metrics", MetricKind::Gauge)
            .unwrap()
            .skipping_suffixes(&["_ewma"]);
        assert!(by_kind.matches(&Sample::gauge("a", 1.0)));
        assert!(!by_kind.matches(&Sample::gauge("a_ewma", 1.0)));
        assert!(!by_kind.matches(&Sample::counter("a", 1.0)));
        assert!(!by_kind.matches(&Sample::gauge("a", f64::NAN)));
        let listed = Selection::from_config(
            &Config::from_pairs(&[("metrics", "c, d")]),
            "metrics",
            MetricKind::Gauge,
        )
        .unwrap();
        assert!(listed.matches(&Sample::counter("c", 1.0)));
        assert!(!listed.matches(&Sample::gauge("a", 1.0)));
        assert!(
            Selection::from_config(
                &Config::from_pairs(&[("metrics", "bad name")]),
                "metrics",
                MetricKind::Gauge
            )
            .is_err()
        );
    }
}
