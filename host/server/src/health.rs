//! `/healthz` (the process runs) and `/readyz` (the embedding code said ready).

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::StatusCode;

use crate::state::ServerState;

/// 200 while the process serves requests.
pub(crate) async fn healthz() -> (StatusCode, &'static str) {
    (StatusCode::OK, "ok\n")
}

/// 200 once the readiness flag is set, 503 before (and after shutdown begins).
pub(crate) async fn readyz(State(state): State<ServerState>) -> (StatusCode, &'static str) {
    let inner = &state.inner;
    if inner.ready.load(Ordering::Acquire) && !inner.shutdown.is_cancelled() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}
