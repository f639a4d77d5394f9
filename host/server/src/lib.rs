//! The HTTP surface of wasmeter: live topic updates over WebSocket and SSE, topic
//! state over REST, and health probes. Built on axum; the fan-out itself lives in
//! [`wasmeter_hub`], which knows nothing about HTTP.
//!
//! Each WebSocket connection is one task running one loop (`ws`): it reads client
//! messages, and when the hub marks one of its topics dirty it reads the new
//! messages from the topic's history, feeds their shared, pre-encoded bytes to the
//! socket and flushes once per batch. A connection that falls behind is conflated
//! to a snapshot per topic; one whose socket accepts nothing for
//! [`ServerConfig::write_timeout_ms`] is closed as the last resort. The wire
//! protocol is described in `docs/PROTOCOL.md`.
//!
//! # Layout
//! - `auth`: [`Authenticator`], signed connection tokens to [`Grants`] (the
//!   topic patterns a subscriber may read, until when).
//! - `access`: a request's token (`?token=`, `Authorization: Bearer`) to its
//!   grants, 401 and 403 answers.
//! - `state`: [`ServerState`] (hub, config, readiness, counters, shutdown token,
//!   connection tracker) and the connection-limit permit.
//! - `config`: [`ServerConfig`], every limit and timing.
//! - `protocol`: control messages, error codes, [`close`] codes.
//! - `client`: one connection's state, transport-free: cursors, conflation,
//!   field subsets, rate limits, batching.
//! - `check`: `subscribe` validation, counts before items.
//! - `commands`: `subscribe`/`unsubscribe` effects.
//! - `deliver`: dirty slots to frames: conflation, replays, subsets, rate limits.
//! - `ws`: `GET /ws`, the connection loop, heartbeats, batch writes.
//! - `ws_close`: why a connection ends, close codes, the close handshake.
//! - `sse`: `GET /sse`, event ids that resume.
//! - `rest`: `GET /api/topics` (paged), `GET /api/topics/{*topic}`.
//! - `errors`: every error answer as JSON, axum's own rejections included.
//! - `health`: `GET /healthz`, `GET /readyz`.
//! - `metrics`: counters ([`MetricsSnapshot`]).
//! - `listen`: accepting connections, the plain HTTP limit, the header-read
//!   timeout, socket options.
//! - `write_watch`: since when a connection's writes wait (slow HTTP and SSE
//!   consumers are dropped after `write_timeout_ms`).
//! - `tls`: [`Tls`], certificate and key from PEM files, reloadable.
//! - `shutdown`: [`serve`], [`serve_tls`] and graceful shutdown.
//!
//! ```no_run
//! use std::sync::Arc;
//! use wasmeter_hub::{Hub, HubConfig};
//! use wasmeter_server::{ServerConfig, ServerState, router, serve};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let hub = Arc::new(Hub::new(HubConfig::default()));
//! let state = ServerState::new(hub.clone(), ServerConfig::default())?;
//! let app = router(state.clone()); // merge more routes here
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! state.set_ready(true);
//! serve(listener, app, state, async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(()) }
//! ```

mod access;
pub mod auth;
mod check;
mod client;
mod commands;
pub mod config;
mod deliver;
mod errors;
mod health;
mod listen;
pub mod metrics;
mod origin;
pub mod protocol;
mod rest;
mod shutdown;
mod sse;
mod state;
mod tls;
mod topic_slots;
mod write_watch;
mod ws;
mod ws_close;

use axum::Router;
use axum::routing::get;

pub use access::require_every_topic;
pub use auth::{AuthConfigError, AuthSettings, Authenticator, Grants};
pub use config::{ConfigError, ServerConfig};
pub use metrics::MetricsSnapshot;
pub use origin::check_origin_entry;
pub use protocol::close;
pub use shutdown::{serve, serve_tls};
pub use state::{DependencyCheck, ServerState};
pub use tls::{Tls, TlsError};

/// The routes: `/ws`, `/sse`, `/api/topics`, `/api/topics/{*topic}`, `/healthz`,
/// `/readyz`. Merge further routes into the returned router.
pub fn router(state: ServerState) -> Router {
    Router::new()
        .route("/ws", get(ws::handler))
        .route("/sse", get(sse::handler))
        .route("/api/topics", get(rest::list))
        .route("/api/topics/{*topic}", get(rest::get))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .with_state(state)
}

#[cfg(test)]
mod client_tests;
