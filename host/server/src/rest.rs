//! `GET /api/topics` and `GET /api/topics/{*topic}`: topic state over plain HTTP.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::state::ServerState;

/// An error body: `{"error": {"code": ..., "message": ...}}`.
pub(crate) fn json_error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body = json!({ "error": { "code": code, "message": message.into() } });
    (status, Json(body)).into_response()
}

/// Every topic with its position, field count and last update time.
pub(crate) async fn list(State(state): State<ServerState>) -> Response {
    let topics: Vec<_> = state
        .hub()
        .topics()
        .into_iter()
        .map(|t| {
            json!({
                "name": &*t.name,
                "epoch": t.position.epoch,
                "seq": t.position.seq,
                "fields": t.fields,
                "updated_at_ms": t.updated_at_ms,
                "subscribers": t.subscribers,
            })
        })
        .collect();
    Json(json!({ "topics": topics })).into_response()
}

/// One topic's current state and position; 404 naming the topic if unknown.
pub(crate) async fn get(State(state): State<ServerState>, Path(topic): Path<String>) -> Response {
    let hub = state.hub();
    match (hub.snapshot(&topic), hub.topic_info(&topic)) {
        (Some((pos, fields)), Some(info)) => Json(json!({
            "topic": topic,
            "epoch": pos.epoch,
            "seq": pos.seq,
            "updated_at_ms": info.updated_at_ms,
            "state": &*fields,
        }))
        .into_response(),
        _ => json_error(
            StatusCode::NOT_FOUND,
            "unknown_topic",
            format!("topic `{topic}` does not exist"),
        ),
    }
}
