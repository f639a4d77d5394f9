//! `GET /metrics` and `GET /api/plugins`.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use wasmeter_server::ServerState;

use super::Monitor;
use super::exposition::Format;
use super::render::{Views, render};

#[derive(Clone)]
struct Routes {
    monitor: Monitor,
    server: ServerState,
    views: Views,
}

/// The routes `/metrics` and `/api/plugins`, to merge into the server's router.
pub fn router(monitor: Monitor, server: ServerState, views: Views) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/api/plugins", get(plugins))
        .with_state(Routes {
            monitor,
            server,
            views,
        })
}

async fn metrics(State(r): State<Routes>, headers: HeaderMap) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let format = Format::negotiate(accept);
    let body = render(&r.monitor, &r.server, &r.views, format);
    ([(header::CONTENT_TYPE, format.content_type())], body).into_response()
}

/// Every plugin instance: what it is and its health (the dashboard reads this shape).
pub fn plugins_json(monitor: &Monitor) -> Value {
    let plugins: Vec<Value> = monitor
        .plugin_instances()
        .into_iter()
        .map(|(pipeline, r)| {
            let h = r.health.snapshot();
            json!({
                "name": r.name,
                "pipeline": pipeline,
                "role": r.role.to_string(),
                "plugin": r.plugin,
                "version": r.version,
                "kind": r.role.to_string(),
                "state": if h.quarantined { "quarantined" } else { "active" },
                "calls": h.calls,
                "failures": h.failures,
                "rebuilds": h.rebuilds,
                "recycles": h.recycles,
                "busy_seconds": h.busy.as_secs_f64(),
                "last_error": h.last_error,
            })
        })
        .collect();
    json!({ "plugins": plugins })
}

async fn plugins(State(r): State<Routes>) -> Response {
    Json(plugins_json(&r.monitor)).into_response()
}
