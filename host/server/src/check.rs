//! Checking a `subscribe` (or the size of any command) before anything is
//! parsed or changed: counts first, then each item; errors name the offending
//! part.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use wasmeter_core::position::StreamPosition;
use wasmeter_core::validate::{is_label_name, is_topic_name};
use wasmeter_hub::{FieldSet, Pattern};

use crate::client::{Limits, SubOptions};
use crate::protocol::{Rejection, codes};

/// Field names one subscription may list.
const MAX_FIELDS: usize = 256;

/// A validated `subscribe`.
#[derive(Debug)]
pub(crate) struct SubscribeRequest {
    pub(crate) id: Option<u64>,
    pub(crate) texts: Vec<String>,
    pub(crate) patterns: Vec<Pattern>,
    pub(crate) opts: Arc<SubOptions>,
    pub(crate) since: BTreeMap<String, StreamPosition>,
}

/// Refuses a command naming more patterns than a connection may hold, before
/// any of them is looked at: the cost of checking a command is then bounded by
/// the limit, not by what fits in a frame.
pub(crate) fn check_count(
    command: &str,
    count: usize,
    max_subscriptions: usize,
    id: Option<u64>,
) -> Result<(), Rejection> {
    if count > max_subscriptions {
        return Err(Rejection::new(
            codes::TOO_MANY_SUBSCRIPTIONS,
            format!(
                "{command}.topics: {count} patterns is more than the limit of {max_subscriptions} per connection (max_subscriptions)"
            ),
            id,
        ));
    }
    Ok(())
}

/// Checks a `subscribe`; errors name the offending part (`subscribe.topics[2]: ...`).
/// Every count is checked before the items it counts are parsed.
pub(crate) fn check_subscribe(
    id: Option<u64>,
    topics: Vec<String>,
    fields: Option<Vec<String>>,
    max_rate_hz: Option<f64>,
    since: Option<BTreeMap<String, StreamPosition>>,
    limits: &Limits,
) -> Result<SubscribeRequest, Rejection> {
    let invalid = |m: String| Rejection::new(codes::INVALID, m, id);
    if topics.is_empty() {
        return Err(invalid(
            "subscribe.topics: is empty; name at least one topic or pattern".into(),
        ));
    }
    check_count("subscribe", topics.len(), limits.max_subscriptions, id)?;
    let max_topics = limits.max_topics;
    // At most `max_subscriptions` entries from here on: a set finds duplicates.
    let mut seen: HashSet<String> = HashSet::with_capacity(topics.len());
    let mut texts: Vec<String> = Vec::with_capacity(topics.len());
    let mut patterns = Vec::with_capacity(topics.len());
    for (i, t) in topics.into_iter().enumerate() {
        let p = Pattern::parse(&t).map_err(|e| invalid(format!("subscribe.topics[{i}]: {e}")))?;
        if seen.insert(t.clone()) {
            texts.push(t);
            patterns.push(p);
        }
    }
    let fields = match fields {
        None => None,
        Some(f) if f.is_empty() => {
            return Err(invalid(
                "subscribe.fields: is empty; leave it out to receive every field".into(),
            ));
        }
        Some(f) if f.len() > MAX_FIELDS => {
            return Err(invalid(format!(
                "subscribe.fields: {} names is more than the limit of {MAX_FIELDS}",
                f.len()
            )));
        }
        Some(f) => {
            if let Some((i, n)) = f.iter().enumerate().find(|(_, n)| !is_label_name(n)) {
                return Err(invalid(format!(
                    "subscribe.fields[{i}]: `{}` is not a valid field name ([A-Za-z_][A-Za-z0-9_]*)",
                    excerpt(n)
                )));
            }
            Some(Arc::new(FieldSet::new(f)))
        }
    };
    let interval = match max_rate_hz {
        None => None,
        Some(hz) if hz.is_finite() && hz > 0.0 => Some(Duration::from_secs_f64(1.0 / hz)),
        Some(hz) => {
            return Err(invalid(format!(
                "subscribe.max_rate_hz: {hz} is not a positive, finite number of updates per second"
            )));
        }
    };
    let since = since.unwrap_or_default();
    if since.len() > max_topics {
        return Err(invalid(format!(
            "subscribe.since: {} positions is more than the limit of {max_topics} topics",
            since.len()
        )));
    }
    for topic in since.keys() {
        if !is_topic_name(topic) {
            return Err(invalid(format!(
                "subscribe.since[`{}`]: not a valid topic name",
                excerpt(topic)
            )));
        }
        if !patterns.iter().any(|p| p.matches(topic)) {
            return Err(invalid(format!(
                "subscribe.since[`{topic}`]: the topic is not covered by subscribe.topics"
            )));
        }
    }
    Ok(SubscribeRequest {
        id,
        texts,
        patterns,
        opts: Arc::new(SubOptions { fields, interval }),
        since,
    })
}

pub(crate) fn excerpt(s: &str) -> String {
    if s.len() <= 60 {
        return s.to_string();
    }
    let mut end = 60;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}
