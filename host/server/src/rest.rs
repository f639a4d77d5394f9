//! `GET /api/topics`, `GET /api/topics/{*topic}` and
//! `GET /api/topics/{*topic}/history`: topic state and recent changes over plain
//! HTTP.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use wasmeter_hub::{Hub, Pattern, Slot, Subscriber};

use crate::access::{Access, forbidden};
use crate::state::ServerState;

/// An error body: `{"error": {"code": ..., "message": ...}}`.
pub(crate) fn json_error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body = json!({ "error": { "code": code, "message": message.into() } });
    (status, Json(body)).into_response()
}

/// Topics a page holds unless `limit` says otherwise.
pub const DEFAULT_PAGE: usize = 1_000;
/// The largest page.
pub const MAX_PAGE: usize = 10_000;

/// The query of `GET /api/topics`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ListQuery {
    /// Only topics whose name starts with this.
    prefix: String,
    /// Only topics whose name sorts after this (the `next` of the previous page).
    after: Option<String>,
    /// At most this many topics (1 to [`MAX_PAGE`]; default [`DEFAULT_PAGE`]).
    limit: Option<usize>,
    /// Answer only `{"unchanged": true}` if the hub's topic set is still at this
    /// `generation` (of an earlier listing): a poller refetches only on change.
    unless_generation: Option<u64>,
    /// The subscriber token (read by [`Access`]).
    #[allow(dead_code)]
    token: Option<String>,
}

/// A page of topics sorted by name, each with its position, field count and last
/// update time; `next` is the `after` of the next page, `null` on the last one.
pub(crate) async fn list(
    State(state): State<ServerState>,
    Access(grants): Access,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let bad = |message: String| json_error(StatusCode::BAD_REQUEST, "bad_query", message);
    let Query(query) = match query {
        Ok(q) => q,
        Err(e) => return bad(format!("query string: {}", e.body_text())),
    };
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return bad(format!("limit: {limit}: expected 1 to {MAX_PAGE}"));
    }
    // Read first: a topic created while listing makes the next poll refetch.
    let generation = state.hub().generation();
    if query.unless_generation == Some(generation) {
        return Json(json!({ "unchanged": true, "generation": generation })).into_response();
    }
    let (page, more) = state
        .hub()
        .topics_page(&query.prefix, query.after.as_deref(), limit);
    let next = more
        .then(|| page.last().map(|t| t.name.to_string()))
        .flatten();
    // A page holds only the granted topics: it may be shorter than `limit`
    // while `next` says more follow.
    let topics: Vec<_> = page
        .into_iter()
        .filter(|t| grants.permits_topic(&t.name))
        .map(|t| {
            if t.dormant {
                // A sample series' topic, created once someone asks for it.
                return json!({ "name": &*t.name, "dormant": true });
            }
            json!({
                "name": &*t.name,
                "epoch": t.position.epoch,
                "seq": t.position.seq,
                "fields": t.fields,
                "updated_at_ms": t.updated_at_ms,
                "subscribers": t.subscribers,
                "stream": t.stream,
            })
        })
        .collect();
    Json(json!({ "topics": topics, "next": next, "generation": generation })).into_response()
}

/// Changes a history page holds unless `limit` says otherwise.
pub const DEFAULT_HISTORY_PAGE: usize = 100;
/// The largest history page.
pub const MAX_HISTORY_PAGE: usize = 1_000;

/// The query of `GET /api/topics/{*topic}/history`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct HistoryQuery {
    /// Only changes after this seq (default: every change held).
    since: u64,
    /// At most this many (1 to [`MAX_HISTORY_PAGE`]).
    limit: Option<usize>,
    /// The subscriber token (read by [`Access`]).
    #[allow(dead_code)]
    token: Option<String>,
}

/// One topic's current state and position, or (a path ending in `/history`
/// that is not itself a topic) its recent changes; 404 naming the topic if
/// unknown.
pub(crate) async fn get(
    State(state): State<ServerState>,
    Access(grants): Access,
    Path(topic): Path<String>,
    query: Result<Query<HistoryQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let hub = state.hub();
    // The topic itself, or the one whose history a `/history` path asks for.
    let read = match topic.strip_suffix("/history") {
        Some(of) if hub.topic_info(&topic).is_none() => of,
        _ => topic.as_str(),
    };
    if !grants.permits_topic(read) {
        return forbidden(&state, &format!("topic `{read}`"), &grants);
    }
    if hub.is_dormant(&topic) {
        awaken(hub, &topic).await;
    }
    match (hub.snapshot(&topic), hub.topic_info(&topic)) {
        (Some((pos, fields)), Some(info)) => Json(json!({
            "topic": topic,
            "epoch": pos.epoch,
            "seq": pos.seq,
            "updated_at_ms": info.updated_at_ms,
            "stream": info.stream,
            "state": &*fields,
        }))
        .into_response(),
        _ => match topic.strip_suffix("/history") {
            Some(of) => history(&state, of, query),
            None => json_error(
                StatusCode::NOT_FOUND,
                "unknown_topic",
                format!("topic `{topic}` does not exist"),
            ),
        },
    }
}

/// How long `GET /api/topics/{topic}` of a dormant topic waits for it to be
/// created (its producer creates it at its next tick once someone watches for it).
pub const DORMANT_WAIT: Duration = Duration::from_secs(5);

/// Wakes when the topic it watches for is created.
struct Awaited(Notify);

impl Subscriber for Awaited {
    fn notify(&self, _: &Arc<Slot>) {
        self.0.notify_one();
    }

    fn wants(&self, _: &str) -> bool {
        false
    }
}

/// A watch for one topic, taken back when dropped (also when the request that
/// waits on it goes away).
struct Watch<'a> {
    hub: &'a Hub,
    pattern: Pattern,
    sub: Arc<dyn Subscriber>,
}

impl Drop for Watch<'_> {
    fn drop(&mut self) {
        self.hub.unwatch(&self.sub);
        self.hub.detach_matching(&self.pattern, &self.sub);
    }
}

/// Watches for the dormant `topic` (which makes its producer create it) until
/// it is created, for at most [`DORMANT_WAIT`].
async fn awaken(hub: &Hub, topic: &str) {
    let Ok(pattern) = Pattern::parse(topic) else {
        return;
    };
    let awaited = Arc::new(Awaited(Notify::new()));
    let sub: Arc<dyn Subscriber> = awaited.clone();
    hub.watch_patterns(&sub, std::slice::from_ref(&pattern));
    let _watch = Watch { hub, pattern, sub };
    if hub.topic_info(topic).is_none() {
        // A creation between the check and the wait leaves a permit: not lost.
        let _ = tokio::time::timeout(DORMANT_WAIT, awaited.0.notified()).await;
    }
}

/// The changes of `topic` after `since` still held, oldest first, as the
/// `update` (or `event`) frames subscribers got; `next` is the `since` of the
/// next page; `complete` is false when changes after `since` are no longer held.
fn history(
    state: &ServerState,
    topic: &str,
    query: Result<Query<HistoryQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let bad = |message: String| json_error(StatusCode::BAD_REQUEST, "bad_query", message);
    let Query(query) = match query {
        Ok(q) => q,
        Err(e) => return bad(format!("query string: {}", e.body_text())),
    };
    let limit = query.limit.unwrap_or(DEFAULT_HISTORY_PAGE);
    if !(1..=MAX_HISTORY_PAGE).contains(&limit) {
        return bad(format!("limit: {limit}: expected 1 to {MAX_HISTORY_PAGE}"));
    }
    let Some((epoch, held, complete)) = state.hub().history(topic, query.since, limit + 1) else {
        return json_error(
            StatusCode::NOT_FOUND,
            "unknown_topic",
            format!("topic `{topic}` does not exist"),
        );
    };
    let more = held.len() > limit;
    let page = &held[..held.len().min(limit)];
    let next = match (more, page.last()) {
        (true, Some(m)) => m.seq().to_string(),
        _ => "null".to_string(),
    };
    // The frames are JSON already: spliced in as they are.
    let mut body = format!(
        "{{\"topic\":{},\"epoch\":{},\"complete\":{complete},\"next\":{next},\"messages\":[",
        json!(topic),
        json!(&*epoch)
    )
    .into_bytes();
    for (i, m) in page.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(&m.update_bytes(wasmeter_hub::Format::Json));
    }
    body.extend_from_slice(b"]}");
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use wasmeter_core::change::TopicChange;
    use wasmeter_core::delta::Delta;
    use wasmeter_core::field::{FieldValue, TopicState};
    use wasmeter_hub::HubConfig;

    use super::*;

    fn created(topic: &str) -> TopicChange {
        let value = ("value".to_string(), FieldValue::Number(1.0));
        TopicChange {
            topic: topic.into(),
            delta: Delta {
                changed: vec![value.clone()],
                removed: vec![],
            },
            stale: vec![],
            state: Arc::new(TopicState::from([value])),
            timestamp_ms: 0,
            event: false,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_read_of_a_dormant_topic_watches_for_it_until_created_or_given_up() {
        let hub = Hub::new(HubConfig::default());
        let (a, b, c): (Arc<str>, Arc<str>, Arc<str>) = (
            "metrics/p/a".into(),
            "metrics/p/b".into(),
            "metrics/p/c".into(),
        );
        for t in [&a, &b, &c] {
            hub.set_dormant(t, true);
            assert!(!hub.is_read(t));
        }

        // Created while the read waits: the read returns, and watches no more.
        let create = async {
            tokio::task::yield_now().await;
            assert!(hub.is_read(&a), "watched for while the read waits");
            hub.publish(created(&a)).unwrap();
        };
        let started = tokio::time::Instant::now();
        tokio::join!(awaken(&hub, &a), create);
        assert!(started.elapsed() < DORMANT_WAIT);
        assert_eq!(hub.stats().watchers, 0);
        assert_eq!(hub.stats().slots, 0);

        // Never created: given up after the wait.
        awaken(&hub, &b).await;
        assert_eq!(started.elapsed(), DORMANT_WAIT);
        assert!(!hub.is_read(&b));

        // A read that goes away (its client hung up) stops watching too.
        tokio::select! {
            _ = awaken(&hub, &c) => unreachable!("not created"),
            _ = tokio::time::sleep(DORMANT_WAIT / 2) => {}
        }
        assert!(!hub.is_read(&c));
        assert_eq!(hub.stats().watchers, 0);
    }
}
