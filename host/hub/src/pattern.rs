//! Topic patterns: which topics a subscription covers.
//!
//! A pattern is a topic name in which whole segments may be wildcards:
//! - `*` matches exactly one segment: `trades/*` matches `trades/BTC-USD` but not
//!   `trades/BTC-USD/1m` nor `trades`;
//! - `**`, only as the last segment, matches one or more segments: `trades/**`
//!   matches `trades/BTC-USD` and `trades/BTC-USD/1m` but not `trades`; `**` alone
//!   matches every topic.
//!
//! A pattern without wildcards is an exact topic name; it matches that topic
//! whenever it exists, including after it is created or recreated.

use std::fmt;

use thiserror::Error;

/// Longest pattern accepted, in bytes (the same bound as a topic name).
pub const MAX_PATTERN_BYTES: usize = 256;

/// Why a string is not a valid pattern; the message names the problem.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PatternError {
    /// The pattern is empty.
    #[error("the topic pattern is empty")]
    Empty,
    /// Longer than [`MAX_PATTERN_BYTES`].
    #[error("topic pattern of {0} bytes is longer than {MAX_PATTERN_BYTES} bytes")]
    TooLong(usize),
    /// A segment is empty (`a//b`, `/a`, `a/`).
    #[error("`{0}` has an empty segment")]
    EmptySegment(String),
    /// A segment has a character outside `[A-Za-z0-9_.:-]`, or a partial wildcard.
    #[error(
        "`{pattern}` is not a valid topic pattern: segment `{segment}` may contain only A-Z a-z 0-9 _ . : - or be exactly `*` (or a final `**`)"
    )]
    BadSegment {
        /// The whole pattern.
        pattern: String,
        /// The offending segment.
        segment: String,
    },
    /// `**` somewhere other than the last segment.
    #[error("`{0}`: `**` may only be the last segment")]
    InnerRest(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Segment {
    Literal(Box<str>),
    One,
    Rest,
}

/// A parsed topic pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Pattern {
    text: Box<str>,
    segments: Box<[Segment]>,
}

impl Pattern {
    /// Parses a pattern; see the module docs for the syntax.
    pub fn parse(text: &str) -> Result<Self, PatternError> {
        if text.is_empty() {
            return Err(PatternError::Empty);
        }
        if text.len() > MAX_PATTERN_BYTES {
            return Err(PatternError::TooLong(text.len()));
        }
        let count = text.split('/').count();
        let mut segments = Vec::with_capacity(count);
        for (i, seg) in text.split('/').enumerate() {
            let parsed = match seg {
                "" => return Err(PatternError::EmptySegment(text.to_string())),
                "*" => Segment::One,
                "**" if i + 1 == count => Segment::Rest,
                "**" => return Err(PatternError::InnerRest(text.to_string())),
                _ if seg.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-')
                }) =>
                {
                    Segment::Literal(seg.into())
                }
                _ => {
                    return Err(PatternError::BadSegment {
                        pattern: text.to_string(),
                        segment: seg.to_string(),
                    });
                }
            };
            segments.push(parsed);
        }
        Ok(Self {
            text: text.into(),
            segments: segments.into_boxed_slice(),
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// True when the pattern has no wildcard: it names exactly one topic.
    pub fn is_exact(&self) -> bool {
        self.segments
            .iter()
            .all(|s| matches!(s, Segment::Literal(_)))
    }

    /// The literal segments before the first wildcard, each with its `/`
    /// (`trades/*` gives `trades/`, `**` gives nothing): every topic the
    /// pattern matches starts with it. The whole text for an exact pattern.
    pub fn literal_prefix(&self) -> &str {
        let mut end = 0;
        for seg in self.segments.iter() {
            match seg {
                Segment::Literal(l) => end += l.len() + 1,
                Segment::One | Segment::Rest => return &self.text[..end],
            }
        }
        &self.text
    }

    /// True when `topic` is covered by this pattern.
    pub fn matches(&self, topic: &str) -> bool {
        let mut parts = topic.split('/');
        for seg in self.segments.iter() {
            match seg {
                Segment::Rest => return parts.next().is_some_and(|p| !p.is_empty()),
                Segment::One => match parts.next() {
                    Some(p) if !p.is_empty() => {}
                    _ => return false,
                },
                Segment::Literal(lit) => match parts.next() {
                    Some(p) if p == &**lit => {}
                    _ => return false,
                },
            }
        }
        parts.next().is_none()
    }
}

impl Pattern {
    /// True when every topic `other` matches is matched by this pattern too
    /// (`trades/*` covers `trades/BTC` and `trades/*`, not `trades/**`; `**`
    /// covers everything). Decided segment by segment, so a pattern covered only
    /// by the union of several others is not covered by any one of them.
    pub fn covers(&self, other: &Pattern) -> bool {
        let (mine, theirs) = (&*self.segments, &*other.segments);
        for (i, seg) in mine.iter().enumerate() {
            match (seg, theirs.get(i)) {
                // One or more segments: `other` must have at least one more, and
                // whatever it matches there (a literal, `*`, `**`) is one or more.
                (Segment::Rest, rest) => return rest.is_some(),
                (_, None | Some(Segment::Rest)) => return false,
                (Segment::One, Some(_)) => {}
                (Segment::Literal(a), Some(Segment::Literal(b))) if a == b => {}
                (Segment::Literal(_), Some(_)) => return false,
            }
        }
        mine.len() == theirs.len()
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, t: &str) -> bool {
        Pattern::parse(p).unwrap().matches(t)
    }

    fn covers(a: &str, b: &str) -> bool {
        Pattern::parse(a)
            .unwrap()
            .covers(&Pattern::parse(b).unwrap())
    }

    #[test]
    fn a_pattern_covers_what_it_matches_and_nothing_more() {
        for (a, b) in [
            ("trades/*", "trades/BTC"),
            ("trades/*", "trades/*"),
            ("trades/**", "trades/BTC/1m"),
            ("trades/**", "trades/*"),
            ("trades/**", "trades/*/1m"),
            ("trades/**", "trades/**"),
            ("trades/**", "trades/*/**"),
            ("**", "**"),
            ("**", "a"),
            ("*/x", "a/x"),
            ("a/b", "a/b"),
        ] {
            assert!(covers(a, b), "{a} should cover {b}");
        }
        for (a, b) in [
            ("trades/*", "trades/**"),
            ("trades/*", "trades/BTC/1m"),
            ("trades/*", "trades"),
            ("trades/**", "trades"),
            ("trades/BTC", "trades/*"),
            ("trades/*", "system/cpu"),
            ("a/b", "a/b/c"),
            ("*", "**"),
            ("*/x", "*/y"),
        ] {
            assert!(!covers(a, b), "{a} should not cover {b}");
        }
        // Whatever it covers, it matches: checked against sample topics.
        let topics = ["trades", "trades/BTC", "trades/BTC/1m", "system/cpu", "a/x"];
        for (a, b) in [("trades/**", "trades/*/1m"), ("*/x", "a/x"), ("**", "*")] {
            let (pa, pb) = (Pattern::parse(a).unwrap(), Pattern::parse(b).unwrap());
            for t in topics {
                assert!(
                    !pb.matches(t) || pa.matches(t),
                    "{a} covers {b} but not {t}"
                );
            }
        }
    }

    #[test]
    fn exact_and_single_segment_wildcards() {
        assert!(m("trades/BTC-USD", "trades/BTC-USD"));
        assert!(!m("trades/BTC-USD", "trades/BTC-USDT"));
        assert!(m("trades/*", "trades/ETH"));
        assert!(!m("trades/*", "trades"));
        assert!(!m("trades/*", "trades/ETH/1m"));
        assert!(m("*/cpu", "system/cpu"));
        assert!(Pattern::parse("a/b").unwrap().is_exact());
        assert!(!Pattern::parse("a/*").unwrap().is_exact());
    }

    #[test]
    fn trailing_rest_matches_one_or_more() {
        assert!(m("trades/**", "trades/ETH"));
        assert!(m("trades/**", "trades/ETH/1m"));
        assert!(!m("trades/**", "trades"));
        assert!(m("**", "anything/at/all"));
    }

    #[test]
    fn the_literal_prefix_starts_every_match() {
        let prefix = |p: &str| Pattern::parse(p).unwrap().literal_prefix().to_string();
        assert_eq!(prefix("trades/*"), "trades/");
        assert_eq!(prefix("a/b/*/c"), "a/b/");
        assert_eq!(prefix("a/**"), "a/");
        assert_eq!(prefix("**"), "");
        assert_eq!(prefix("*/cpu"), "");
        assert_eq!(prefix("a/b"), "a/b");
        for (p, t) in [("a/*", "a/x"), ("a/b/*/c", "a/b/x/c"), ("a/**", "a/x/y")] {
            assert!(m(p, t) && t.starts_with(&prefix(p)), "{p} {t}");
        }
    }

    #[test]
    fn errors_name_the_problem() {
        assert_eq!(Pattern::parse(""), Err(PatternError::Empty));
        let e = Pattern::parse("a b").unwrap_err().to_string();
        assert!(e.contains("`a b` is not a valid topic pattern"), "{e}");
        assert!(matches!(
            Pattern::parse("a//b"),
            Err(PatternError::EmptySegment(_))
        ));
        assert!(matches!(
            Pattern::parse("**/a"),
            Err(PatternError::InnerRest(_))
        ));
        assert!(matches!(
            Pattern::parse("tr*des"),
            Err(PatternError::BadSegment { .. })
        ));
        assert!(matches!(
            Pattern::parse(&"a".repeat(300)),
            Err(PatternError::TooLong(300))
        ));
    }
}
