//! The admin API: an authenticated HTTP API, on its own listener (loopback by
//! default), through which operators change plugins and reload the config of a
//! running host; and the `wasmeter plugin` commands that call it.
//!
//! - `auth`: where the bearer token comes from, and checking it.
//! - `routes`: the HTTP routes, calling the control plane's `Supervisor`.
//! - `client`: the HTTP client the commands use.
//! - `command`: `wasmeter plugin ...` and `wasmeter reload-config`.

pub mod auth;
pub mod client;
pub mod command;
pub mod routes;

use std::path::PathBuf;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use wasmeter_control::Supervisor;

/// Serves the admin API on `listener` until `stop`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    supervisor: Arc<Supervisor>,
    config_path: Option<PathBuf>,
    token: String,
    stop: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, routes::router(supervisor, config_path, token))
        .with_graceful_shutdown(stop.cancelled_owned())
        .await
}
