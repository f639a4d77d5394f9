//! Client commands: `subscribe`, `unsubscribe`, `ping`, `pong`, checked before
//! anything changes (a refused command changes nothing).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use wasmeter_core::position::StreamPosition;
use wasmeter_core::validate::{is_label_name, is_topic_name};
use wasmeter_hub::{FieldSet, Pattern};

use crate::client::{Client, Kind, Next, SubOptions, Subscription, TopicSlot};
use crate::protocol::{ClientFrame, Rejection, ServerFrame, codes};

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

/// Checks a `subscribe`; errors name the offending part (`subscribe.topics[2]: ...`).
pub(crate) fn check_subscribe(
    id: Option<u64>,
    topics: Vec<String>,
    fields: Option<Vec<String>>,
    max_rate_hz: Option<f64>,
    since: Option<BTreeMap<String, StreamPosition>>,
    max_topics: usize,
) -> Result<SubscribeRequest, Rejection> {
    let invalid = |m: String| Rejection::new(codes::INVALID, m, id);
    if topics.is_empty() {
        return Err(invalid(
            "subscribe.topics: is empty; name at least one topic or pattern".into(),
        ));
    }
    let mut texts: Vec<String> = Vec::with_capacity(topics.len());
    let mut patterns = Vec::with_capacity(topics.len());
    for (i, t) in topics.into_iter().enumerate() {
        let p = Pattern::parse(&t).map_err(|e| invalid(format!("subscribe.topics[{i}]: {e}")))?;
        if !texts.contains(&t) {
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

fn excerpt(s: &str) -> String {
    if s.len() <= 60 {
        return s.to_string();
    }
    let mut end = 60;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

impl Client {
    /// Applies one decoded client message.
    pub(crate) fn apply(&mut self, frame: ClientFrame, _now: Instant) -> Result<(), Rejection> {
        match frame {
            ClientFrame::Subscribe {
                id,
                topics,
                fields,
                max_rate_hz,
                since,
            } => {
                let req = check_subscribe(
                    id,
                    topics,
                    fields,
                    max_rate_hz,
                    since,
                    self.limits.max_topics,
                )?;
                self.subscribe(req)
            }
            ClientFrame::Unsubscribe { id, topics } => self.unsubscribe(id, topics),
            ClientFrame::Ping { id } => {
                self.queue_control(Kind::Pong, &ServerFrame::Pong { id });
                Ok(())
            }
            ClientFrame::Pong { .. } => Ok(()),
        }
    }

    /// Subscribes: attaches existing matching topics (a snapshot each, or the
    /// resume asked for in `since`), and watches for topics created later.
    pub(crate) fn subscribe(&mut self, req: SubscribeRequest) -> Result<(), Rejection> {
        let new = req
            .texts
            .iter()
            .filter(|t| !self.subs.iter().any(|s| s.pattern.as_str() == t.as_str()))
            .count();
        if self.subs.len() + new > self.limits.max_subscriptions {
            return Err(Rejection::new(
                codes::TOO_MANY_SUBSCRIPTIONS,
                format!(
                    "subscribe: {} more subscriptions would exceed the limit of {} per connection ({} held)",
                    new,
                    self.limits.max_subscriptions,
                    self.subs.len()
                ),
                req.id,
            ));
        }
        for p in &req.patterns {
            match self.subs.iter_mut().find(|s| s.pattern == *p) {
                Some(s) => s.opts = req.opts.clone(),
                None => self.subs.push(Subscription {
                    pattern: p.clone(),
                    opts: req.opts.clone(),
                }),
            }
        }
        self.shared
            .set_patterns(self.subs.iter().map(|s| s.pattern.clone()).collect());
        if !self.watching {
            self.hub.watch(self.me.clone());
            self.watching = true;
        }

        let mut truncated_at = None;
        for p in &req.patterns {
            let (slots, truncated) = self
                .hub
                .attach_matching(p, &self.me, self.limits.max_topics);
            for slot in slots {
                let Some(opts) = self.resolve(slot.topic()) else {
                    continue;
                };
                let held = self
                    .topics
                    .get(slot.topic())
                    .map(|t| Arc::ptr_eq(&t.slot, &slot));
                match held {
                    Some(true) => {
                        let Some(t) = self.topics.get_mut(slot.topic()) else {
                            continue;
                        };
                        t.reclaim_cursor();
                        if !Arc::ptr_eq(&t.opts, &opts) {
                            t.opts = opts;
                            t.next = Next::Snapshot(None);
                            t.replay = VecDeque::new();
                            t.due = None;
                            self.shared_push(&slot);
                        }
                    }
                    None if self.topics.len() >= self.limits.max_topics => {
                        self.hub.detach(&slot);
                        truncated_at.get_or_insert_with(|| slot.topic().clone());
                    }
                    // New, or a new lifetime of a topic whose old one ended.
                    _ => {
                        let old = self
                            .topics
                            .insert(slot.topic().clone(), TopicSlot::new(slot.clone(), opts));
                        if let Some(mut old) = old {
                            old.reclaim_cursor();
                        }
                        self.shared_push(&slot);
                    }
                }
            }
            if truncated && truncated_at.is_none() {
                truncated_at = Some(p.as_str().into());
            }
        }

        let mut recovered = BTreeMap::new();
        for (topic, pos) in &req.since {
            let ok = match self.topics.get_mut(topic.as_str()) {
                None => false,
                Some(t) => {
                    t.reclaim_cursor();
                    let resumed = (*pos.epoch == **t.slot.epoch())
                        .then(|| {
                            t.slot.read(|log| {
                                log.after(pos.seq).map(|it| {
                                    (log.latest().seq(), it.cloned().collect::<VecDeque<_>>())
                                })
                            })
                        })
                        .flatten();
                    let ok = resumed.is_some();
                    match resumed {
                        Some((last, msgs)) => {
                            t.cursor = last;
                            t.replay = msgs;
                            t.next = Next::Live;
                            t.due = None;
                        }
                        None => t.next = Next::Snapshot(Some(false)),
                    }
                    let slot = t.slot.clone();
                    self.shared_push(&slot);
                    ok
                }
            };
            recovered.insert(topic.as_str(), ok);
        }
        let frame = ServerFrame::Subscribed {
            id: req.id,
            topics: &req.texts,
            recovered,
        };
        self.queue_control(Kind::Subscribed, &frame);
        if let Some(topic) = truncated_at {
            self.report_topic_limit(&topic);
        }
        Ok(())
    }

    fn shared_push(&self, slot: &Arc<wasmeter_hub::Slot>) {
        use wasmeter_hub::Subscriber;
        // Not through the dirty flag: this is the client's own work item.
        self.shared.notify(slot);
    }

    /// Unsubscribes patterns; topics no other subscription covers are detached.
    pub(crate) fn unsubscribe(
        &mut self,
        id: Option<u64>,
        topics: Vec<String>,
    ) -> Result<(), Rejection> {
        if topics.is_empty() {
            return Err(Rejection::new(
                codes::INVALID,
                "unsubscribe.topics: is empty",
                id,
            ));
        }
        for (i, t) in topics.iter().enumerate() {
            if !self.subs.iter().any(|s| s.pattern.as_str() == t) {
                return Err(Rejection::new(
                    codes::NOT_SUBSCRIBED,
                    format!(
                        "unsubscribe.topics[{i}]: `{}` is not subscribed",
                        excerpt(t)
                    ),
                    id,
                ));
            }
        }
        self.subs
            .retain(|s| !topics.iter().any(|t| t == s.pattern.as_str()));
        self.shared
            .set_patterns(self.subs.iter().map(|s| s.pattern.clone()).collect());
        let names: Vec<Arc<str>> = self.topics.keys().cloned().collect();
        for name in names {
            match self.resolve(&name) {
                None => {
                    if let Some(mut t) = self.topics.remove(&name) {
                        t.reclaim_cursor();
                        self.hub.detach(&t.slot);
                    }
                }
                Some(opts) => {
                    let Some(t) = self.topics.get_mut(&name) else {
                        continue;
                    };
                    t.reclaim_cursor();
                    if !Arc::ptr_eq(&t.opts, &opts) {
                        t.opts = opts;
                        t.next = Next::Snapshot(None);
                        t.replay = VecDeque::new();
                        t.due = None;
                        let slot = t.slot.clone();
                        self.shared_push(&slot);
                    }
                }
            }
        }
        if self.subs.is_empty() && self.watching {
            self.hub.unwatch(&self.me);
            self.watching = false;
        }
        if self.topics.len() < self.limits.max_topics {
            self.topic_limit_reported = false;
        }
        self.queue_control(
            Kind::Unsubscribed,
            &ServerFrame::Unsubscribed {
                id,
                topics: &topics,
            },
        );
        Ok(())
    }
}
