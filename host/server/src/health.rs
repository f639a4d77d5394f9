//! `/healthz` (the process runs) and `/readyz` (the embedding code said ready).

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::StatusCode;

use crate::state::ServerState;

/// 200 while the process serves requests.
pub(crate) async fn healthz() -> (StatusCode, &'static str) {
    (StatusCode::OK, "ok\n")
}

/// 200 once the readiness flag is set, 503 before (and after shutdown begins),
/// and 503 naming the reason while a service the host depends on fails its check.
pub(crate) async fn readyz(State(state): State<ServerState>) -> (StatusCode, String) {
    let inner = &state.inner;
    if !inner.ready.load(Ordering::Acquire) || inner.shutdown.is_cancelled() {
        return (StatusCode::SERVICE_UNAVAILABLE, "not ready\n".into());
    }
    let check = inner
        .dependency
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    match check.map_or(Ok(()), |c| (c.0)()) {
        Ok(()) => (StatusCode::OK, "ready\n".into()),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        ),
    }
}
