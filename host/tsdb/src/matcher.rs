//! Label matchers with Prometheus semantics.
//!
//! A series without a label is treated as having it with the empty value, so
//! a matcher that matches `""` also matches series that lack the label.
//! Regexes are fully anchored (`^(?s:…)$`), as in Prometheus.

use std::fmt;

use regex::Regex;

use crate::error::{Error, Result};
use crate::labels::{Labels, METRIC_NAME, is_valid_label_name};

/// How a matcher compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchOp {
    /// `=`
    Equal,
    /// `!=`
    NotEqual,
    /// `=~`
    Regex,
    /// `!~`
    NotRegex,
}

impl MatchOp {
    /// The operator as written in PromQL.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        }
    }
}

/// One label matcher, e.g. `job=~"api|web"`.
#[derive(Debug, Clone)]
pub struct Matcher {
    name: String,
    op: MatchOp,
    value: String,
    re: Option<Regex>,
}

impl Matcher {
    /// A matcher `name op value`; regexes are compiled (and size-limited) here.
    pub fn new(op: MatchOp, name: &str, value: &str) -> Result<Matcher> {
        let shown = format!("{name}{}{value:?}", op.as_str());
        if name != METRIC_NAME && !is_valid_label_name(name) {
            return Err(Error::InvalidMatcher {
                matcher: shown,
                reason: "invalid label name".into(),
            });
        }
        let re = match op {
            MatchOp::Regex | MatchOp::NotRegex => Some(
                regex::RegexBuilder::new(&format!("^(?s:{value})$"))
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|e| Error::InvalidMatcher {
                        matcher: shown,
                        reason: e.to_string(),
                    })?,
            ),
            _ => None,
        };
        Ok(Matcher {
            name: name.to_string(),
            op,
            value: value.to_string(),
            re,
        })
    }

    /// `name="value"`.
    pub fn equal(name: &str, value: &str) -> Result<Matcher> {
        Matcher::new(MatchOp::Equal, name, value)
    }

    /// `__name__="metric"`.
    pub fn metric(metric: &str) -> Result<Matcher> {
        Matcher::equal(METRIC_NAME, metric)
    }

    /// The label name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The operator.
    pub fn op(&self) -> MatchOp {
        self.op
    }

    /// The value or pattern as given.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// Whether a label value (`""` for a missing label) matches.
    pub fn matches(&self, v: &str) -> bool {
        match self.op {
            MatchOp::Equal => v == self.value,
            MatchOp::NotEqual => v != self.value,
            MatchOp::Regex => self.re.as_ref().is_some_and(|r| r.is_match(v)),
            MatchOp::NotRegex => !self.re.as_ref().is_some_and(|r| r.is_match(v)),
        }
    }

    /// Whether the matcher matches series that lack the label.
    pub fn matches_empty(&self) -> bool {
        self.matches("")
    }

    /// Whether the series matches.
    pub fn matches_series(&self, labels: &Labels) -> bool {
        self.matches(labels.get(&self.name).unwrap_or(""))
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{:?}", self.name, self.op.as_str(), self.value)
    }
}

/// Formats matchers as a PromQL selector body.
pub(crate) fn show(ms: &[Matcher]) -> String {
    let parts: Vec<String> = ms.iter().map(|m| m.to_string()).collect();
    format!("{{{}}}", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semantics() {
        let m = Matcher::new(MatchOp::Regex, "job", "a|b").unwrap();
        assert!(m.matches("a") && !m.matches("ab") && !m.matches(""));
        let m = Matcher::new(MatchOp::Regex, "job", ".*").unwrap();
        assert!(m.matches_empty());
        let m = Matcher::new(MatchOp::NotEqual, "job", "x").unwrap();
        assert!(m.matches_empty());
        let m = Matcher::new(MatchOp::NotRegex, "job", "a.*").unwrap();
        assert!(!m.matches("abc") && m.matches("ba"));
        assert!(Matcher::new(MatchOp::Regex, "job", "(").is_err());
        assert!(Matcher::new(MatchOp::Equal, "1job", "x").is_err());
    }
}
