//! Running the server and shutting it down gracefully.
//!
//! Shutdown, step by step:
//! 1. the signal future completes (or someone cancels [`ServerState::shutdown_token`]);
//! 2. the token is cancelled: the listener stops accepting; every WebSocket
//!    connection sends a close frame with 1001 (going away) and waits briefly for
//!    the reply; every SSE stream ends; every HTTP connection finishes the request
//!    in progress and closes (one still busy after `write_timeout_ms` is dropped);
//! 3. [`serve`] waits for the HTTP connection tasks, then on the connection
//!    tracker until the last connection, upgraded or not, has ended. Nothing the
//!    server started outlives `serve`.

use std::future::Future;

use axum::Router;
use tokio::net::TcpListener;
use tokio_util::task::TaskTracker;

use crate::listen::accept_loop;
use crate::state::ServerState;
use crate::tls::Tls;

/// Serves `app` (usually [`router`](crate::router) plus the embedder's routes) on
/// `listener` until `signal` completes or the state's shutdown token is cancelled,
/// then shuts down gracefully and returns once every connection has ended.
/// A state serves once: after `serve` returns its shutdown token stays cancelled.
///
/// Connections are limited by `max_http_connections` (plain HTTP) and
/// `max_connections` (subscribers); request headers must arrive within
/// `header_read_timeout_ms`.
pub async fn serve<S>(
    listener: TcpListener,
    app: Router,
    state: ServerState,
    signal: S,
) -> std::io::Result<()>
where
    S: Future<Output = ()> + Send + 'static,
{
    serve_tls(listener, app, state, None, signal).await
}

/// [`serve`] over TLS when `tls` is given (HTTPS and `wss://`).
pub async fn serve_tls<S>(
    listener: TcpListener,
    app: Router,
    state: ServerState,
    tls: Option<Tls>,
    signal: S,
) -> std::io::Result<()>
where
    S: Future<Output = ()> + Send + 'static,
{
    let token = state.shutdown_token();
    let conns = TaskTracker::new();
    let app = app
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::origin::guard,
        ))
        .layer(axum::middleware::map_response(crate::errors::json_errors));
    tokio::select! {
        _ = signal => {}
        _ = accept_loop(listener, app, state.clone(), tls, &conns, &token) => {}
    }
    // Make every connection close, then wait for them.
    token.cancel();
    conns.close();
    conns.wait().await;
    let tracker = &state.inner.tracker;
    tracker.close();
    tracker.wait().await;
    Ok(())
}
