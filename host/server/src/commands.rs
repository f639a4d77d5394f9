//! Client commands: `subscribe`, `unsubscribe`, `ping`, `pong`, checked before
//! anything changes (a refused command changes nothing).

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::Arc;

use tokio::time::Instant;

use crate::check::{SubscribeRequest, check_count, check_subscribe, excerpt};
use crate::client::{Client, Kind, Next, Subscription, TopicSlot};
use crate::metrics::Event;
use crate::protocol::{ClientFrame, Rejection, ServerFrame, codes};

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
                let req = check_subscribe(id, topics, fields, max_rate_hz, since, &self.limits)?;
                self.check_permitted(&req)?;
                self.subscribe(req)
            }
            ClientFrame::Refresh { id, token } => self.refresh(id, &token),
            ClientFrame::Unsubscribe { id, topics } => self.unsubscribe(id, topics),
            ClientFrame::Ping { id } => {
                self.queue_control(Kind::Pong, &ServerFrame::Pong { id });
                Ok(())
            }
            ClientFrame::Pong { .. } => Ok(()),
        }
    }

    /// Refuses a `subscribe` naming a pattern the connection's token does not
    /// grant whole (nothing changes).
    fn check_permitted(&self, req: &SubscribeRequest) -> Result<(), Rejection> {
        match req.patterns.iter().find(|p| !self.grants.permits(p)) {
            None => Ok(()),
            Some(p) => {
                self.metrics.record(Event::Forbidden);
                Err(Rejection::new(
                    codes::FORBIDDEN,
                    format!(
                        "subscribe.topics: `{p}` is not permitted by the connection's token (permitted: {})",
                        self.grants.describe()
                    ),
                    req.id,
                ))
            }
        }
    }

    /// Replaces the connection's token. The new one must verify, be for the same
    /// subject, and grant every pattern held; otherwise the old one stays in force.
    fn refresh(&mut self, id: Option<u64>, token: &str) -> Result<(), Rejection> {
        let Some(auth) = &self.auth else {
            return Err(Rejection::new(
                codes::INVALID,
                "refresh: this host does not use tokens",
                id,
            ));
        };
        let unauthorized = |message: String| {
            self.metrics.record(Event::Unauthorized);
            Rejection::new(codes::UNAUTHORIZED, message, id)
        };
        let grants = auth
            .verify(token)
            .map_err(|e| unauthorized(format!("refresh.token: {e}")))?;
        if grants.subject() != self.grants.subject() {
            return Err(unauthorized(format!(
                "refresh.token: it is for {:?}, the connection's for {:?}",
                grants.subject().unwrap_or("no subject"),
                self.grants.subject().unwrap_or("no subject")
            )));
        }
        if let Some(s) = self.subs.iter().find(|s| !grants.permits(&s.pattern)) {
            self.metrics.record(Event::Forbidden);
            return Err(Rejection::new(
                codes::FORBIDDEN,
                format!(
                    "refresh.token: does not permit `{}`, which this connection subscribes to; unsubscribe it first",
                    s.pattern
                ),
                id,
            ));
        }
        let expires_at = grants.expires_at_ms();
        self.grants = grants;
        self.queue_control(Kind::Refreshed, &ServerFrame::Refreshed { id, expires_at });
        Ok(())
    }

    /// Subscribes: attaches existing matching topics (a snapshot each, or the
    /// resume asked for in `since`), and watches for topics created later.
    pub(crate) fn subscribe(&mut self, req: SubscribeRequest) -> Result<(), Rejection> {
        let held: HashSet<&str> = self.subs.iter().map(|s| s.pattern.as_str()).collect();
        let new = req
            .texts
            .iter()
            .filter(|t| !held.contains(t.as_str()))
            .count();
        drop(held);
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
        let patterns: Vec<_> = self.subs.iter().map(|s| s.pattern.clone()).collect();
        // Indexed by the hub: a new topic costs a lookup, not a question to
        // every connection about every pattern.
        self.hub.watch_patterns(&self.me, &patterns);
        self.shared.set_patterns(patterns);
        self.watching = true;

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
                            t.replay = None;
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
                        let old = self.topics.insert(TopicSlot::new(slot.clone(), opts));
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
                None => {
                    if self.unresumed.len() < self.limits.max_topics {
                        self.unresumed.insert(topic.as_str().into());
                    }
                    false
                }
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
                            t.replay = (!msgs.is_empty()).then(|| Box::new(msgs));
                            t.next = Next::Live;
                            t.due = None;
                        }
                        // A stream topic of the same epoch continues from its
                        // position: the subscriber is told of the events it
                        // missed (a `gap`), then gets every one still held.
                        None if resumable_stream(&t.slot, &pos.epoch, pos.seq) => {
                            t.cursor = pos.seq;
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
        check_count(
            "unsubscribe",
            topics.len(),
            self.limits.max_subscriptions,
            id,
        )?;
        let held: HashSet<&str> = self.subs.iter().map(|s| s.pattern.as_str()).collect();
        for (i, t) in topics.iter().enumerate() {
            if !held.contains(t.as_str()) {
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
        drop(held);
        let gone: HashSet<&str> = topics.iter().map(String::as_str).collect();
        self.subs.retain(|s| !gone.contains(s.pattern.as_str()));
        let patterns: Vec<_> = self.subs.iter().map(|s| s.pattern.clone()).collect();
        if self.watching && !patterns.is_empty() {
            self.hub.watch_patterns(&self.me, &patterns);
        }
        self.shared.set_patterns(patterns);
        let names = self.topics.names();
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
                        t.replay = None;
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

/// True when a stream topic's subscriber at `(epoch, seq)` can continue from
/// there after a gap: same epoch, and older than every event held (a position
/// among them that is not covered was lost with a crashed host: refused).
fn resumable_stream(slot: &wasmeter_hub::Slot, epoch: &str, seq: u64) -> bool {
    slot.is_stream() && **slot.epoch() == *epoch && slot.read(|log| seq < log.oldest().seq())
}
