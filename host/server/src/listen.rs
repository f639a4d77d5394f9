//! Accepting TCP connections and serving HTTP/1 on them with hyper (over TLS
//! when configured): the plain HTTP connection limit, the header-read timeout
//! (which also bounds a TLS handshake), socket options, and each connection's
//! graceful end.
//!
//! Every accepted connection first takes an [`HttpSlot`]; without one it gets a
//! fixed 503 and is closed before anything is read. Then hyper serves it with a
//! header-read timeout (request line and headers of every request, upgrades
//! included), so a half-sent request cannot hold a descriptor forever.

use std::io;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::ServerConfig;
use crate::metrics::Event;
use crate::state::{HttpSlot, ServerState};
use crate::tls::Tls;
use crate::write_watch::WriteWatch;

/// The response a connection over `max_http_connections` gets before it is
/// closed, built once per server.
fn refusal(max: usize) -> Vec<u8> {
    let body = serde_json::json!({"error": {
        "code": "too_many_connections",
        "message": format!(
            "the server already holds its limit of {max} plain HTTP connections (max_http_connections)"
        ),
    }})
    .to_string();
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Largest request head (request line and headers) a connection may buffer;
/// a larger one is answered 431 and the connection closed. Bounds memory per
/// connection: without it a head may fill hyper's whole read buffer (~400 KiB).
pub(crate) const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Pause after an accept error that is not the connection's own (e.g. out of
/// descriptors), so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Accepts connections until `stop` is cancelled; each connection is a task of
/// `conns`. Returns once the listener is no longer polled (the caller waits for
/// `conns`).
pub(crate) async fn accept_loop(
    listener: TcpListener,
    app: Router,
    state: ServerState,
    tls: Option<Tls>,
    conns: &TaskTracker,
    stop: &CancellationToken,
) {
    let refused = refusal(state.config().max_http_connections);
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(state.config().header_read_timeout())
        .max_header_size(MAX_HEAD_BYTES);
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let tcp = match accepted {
            Ok((tcp, _peer)) => tcp,
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(ACCEPT_BACKOFF) => continue,
                }
            }
        };
        let Some(slot) = HttpSlot::acquire(&state) else {
            // Best effort and never waits: a fresh socket's send buffer takes it
            // whole. Nothing is read; dropping the socket closes it.
            let _ = tcp.try_write(&refused);
            continue;
        };
        tune(&tcp, state.config());
        let (builder, app, state, tls) = (builder.clone(), app.clone(), state.clone(), tls.clone());
        conns.spawn(async move {
            let Some(tls) = tls else {
                return serve_connection(&builder, tcp, app, slot, state).await;
            };
            // In the connection's own task, bounded like a request head, so a
            // client that never finishes its handshake holds nothing for long.
            let bound = state.config().header_read_timeout();
            match tokio::time::timeout(bound, tls.accept(tcp)).await {
                Ok(Ok(stream)) => serve_connection(&builder, stream, app, slot, state).await,
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "TLS handshake failed");
                    slot.release();
                }
                Err(_) => {
                    tracing::debug!("TLS handshake not complete within header_read_timeout_ms");
                    slot.release();
                }
            }
        });
    }
}

/// Serves one connection until it ends (or is upgraded), then gives its slot
/// back. A response (an SSE stream above all) whose write waits for room in the
/// socket longer than `write_timeout_ms` is a slow consumer: the connection is
/// dropped (a WebSocket, once upgraded, has its own). At shutdown it ends
/// gracefully: the request in progress is answered, then the connection closes;
/// one still busy after `write_timeout_ms` is dropped.
fn serve_connection<T>(
    builder: &http1::Builder,
    tcp: T,
    app: Router,
    slot: HttpSlot,
    state: ServerState,
) -> impl std::future::Future<Output = ()> + Send + 'static
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let request_slot = slot.clone();
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(request_slot.clone());
        tower_service::Service::call(&mut app.clone(), req)
    });
    let tcp = WriteWatch::new(tcp);
    let blocked = tcp.blocked();
    let conn = builder
        .serve_connection(TokioIo::new(tcp), service)
        .with_upgrades();
    async move {
        let stop = state.shutdown_token();
        let write_timeout = state.config().write_timeout();
        let mut conn = std::pin::pin!(conn);
        tokio::select! {
            result = conn.as_mut() => log_end(result),
            _ = blocked.longer_than(write_timeout) => {
                state.inner.metrics.record(Event::SlowConsumer);
                tracing::debug!(
                    waited_ms = write_timeout.as_millis() as u64,
                    "http connection dropped: a slow consumer, its writes waited too long"
                );
            }
            _ = stop.cancelled() => {
                conn.as_mut().graceful_shutdown();
                match tokio::time::timeout(state.config().write_timeout(), conn).await {
                    Ok(result) => log_end(result),
                    Err(_) => tracing::debug!("connection dropped: still busy at shutdown"),
                }
            }
        }
        slot.release();
    }
}

fn log_end(result: Result<(), hyper::Error>) {
    if let Err(e) = result {
        tracing::debug!(error = %e, "http connection ended with an error");
    }
}

/// Socket options of an accepted connection: no Nagle (frames are coalesced by
/// the connection itself), and bounded unsent bytes so a stalled reader's
/// backlog stays with the server, where it is conflated.
fn tune(tcp: &TcpStream, cfg: &ServerConfig) {
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(error = %e, "set TCP_NODELAY failed");
    }
    let sock = socket2::SockRef::from(tcp);
    if cfg.send_buffer_bytes > 0
        && let Err(e) = sock.set_send_buffer_size(cfg.send_buffer_bytes)
    {
        tracing::debug!(error = %e, "set SO_SNDBUF failed");
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if cfg.tcp_notsent_lowat_bytes > 0
        && let Err(e) = sock.set_tcp_notsent_lowat(cfg.tcp_notsent_lowat_bytes)
    {
        tracing::debug!(error = %e, "set TCP_NOTSENT_LOWAT failed");
    }
}

/// Errors that concern one connection only (the listener is fine).
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

#[cfg(test)]
mod tests {
    use super::refusal;

    #[test]
    fn the_refusal_is_a_complete_response_naming_the_limit() {
        let bytes = refusal(7);
        let text = std::str::from_utf8(&bytes).unwrap();
        assert!(text.starts_with("HTTP/1.1 503 "), "{text}");
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(body.len(), length);
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["error"]["code"], "too_many_connections");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("limit of 7")
        );
    }
}
