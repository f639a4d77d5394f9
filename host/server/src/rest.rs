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

/// Watches for the dormant `topic` (which makes its producer create it) until
/// it is created, for at most [`DORMANT_WAIT`].
async fn awaken(hub: &Hub, topic: &str) {
    let Ok(pattern) = Pattern::parse(topic) else {
        return;
    };
    let awaited = Arc::new(Awaited(Notify::new()));
    let sub: Arc<dyn Subscriber> = awaited.clone();
    hub.watch_patterns(&sub, std::slice::from_ref(&pattern));
    if hub.topic_info(topic).is_none() {
        // A creation between the check and the wait leaves a permit: not lost.
        let _ = tokio::time::timeout(DORMANT_WAIT, awaited.0.notified()).await;
    }
    hub.unwatch(&sub);
    hub.detach_matching(&pattern, &sub);
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
