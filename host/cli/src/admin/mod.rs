//! The admin API: an authenticated HTTP API, on its own listener (loopback by
//! default), through which operators change plugins and reload the config of a
//! running host; and the `wasmeter plugin` commands that call it.
//!
//! - `auth`: where the bearer token comes from, and checking it.
//! - `routes`: the HTTP routes, calling the control plane's `Supervisor`.
//! - `client`: the HTTP client the commands use.
//! - `command`: `wasmeter plugin ...` and `wasmeter reload-config`.
//! - `tls_serve`: the API over HTTPS (`[admin.tls]`).

pub mod auth;
pub mod client;
pub mod command;
pub mod routes;

mod tls_serve;

use std::path::PathBuf;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use wasmeter_control::Supervisor;

/// Serves the admin API on `listener` (over TLS when given) until `stop`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    supervisor: Arc<Supervisor>,
    config_path: Option<PathBuf>,
    token: String,
    tls: Option<wasmeter_server::Tls>,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let app = routes::router(supervisor, config_path, token);
    match tls {
        Some(tls) => {
            tls_serve::serve(listener, app, tls, stop).await;
            Ok(())
        }
        None => {
            axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
        }
    }
}
