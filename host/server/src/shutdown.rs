//! Running the server and shutting it down gracefully.
//!
//! Shutdown, step by step:
//! 1. the signal future completes (or someone cancels [`ServerState::shutdown_token`]);
//! 2. the token is cancelled: every WebSocket connection sends a close frame with
//!    1001 (going away) and waits briefly for the reply; every SSE stream ends;
//! 3. axum stops accepting and waits for the HTTP connections to finish;
//! 4. [`serve`] waits on the connection tracker until the last connection, upgraded
//!    or not, has ended. Nothing the server started outlives `serve`.

use std::future::Future;

use axum::Router;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;

use crate::state::ServerState;

/// Serves `app` (usually [`router`](crate::router) plus the embedder's routes) on
/// `listener` until `signal` completes or the state's shutdown token is cancelled,
/// then shuts down gracefully and returns once every connection has ended.
/// A state serves once: after `serve` returns its shutdown token stays cancelled.
pub async fn serve<S>(
    listener: TcpListener,
    app: Router,
    state: ServerState,
    signal: S,
) -> std::io::Result<()>
where
    S: Future<Output = ()> + Send + 'static,
{
    let token = state.shutdown_token();
    let stop = {
        let token = token.clone();
        async move {
            tokio::select! {
                _ = signal => {}
                _ = token.cancelled() => {}
            }
            token.cancel();
        }
    };
    // Frames are coalesced by the connection itself; Nagle would only add latency.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "set TCP_NODELAY failed");
        }
    });
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await;
    // Also on error: make every connection close, then wait for them.
    token.cancel();
    let tracker = &state.inner.tracker;
    tracker.close();
    tracker.wait().await;
    result
}
