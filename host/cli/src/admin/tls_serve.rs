//! The admin API over HTTPS: accept, a bounded TLS handshake in the
//! connection's own task, HTTP/1.1 with hyper, and a graceful end at `stop`.

use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// A handshake or request head not complete by then drops the connection.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A request still running at shutdown gets this long to finish.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` over TLS until `stop`; returns once every
/// connection has ended.
pub(super) async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    tls: wasmeter_server::Tls,
    stop: CancellationToken,
) {
    let conns = TaskTracker::new();
    loop {
        let tcp = tokio::select! {
            _ = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(error) => {
                    tracing::debug!(%error, "admin API: accept failed");
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        _ = tokio::time::sleep(Duration::from_millis(100)) => continue,
                    }
                }
            },
        };
        let (app, tls, stop) = (app.clone(), tls.clone(), stop.clone());
        conns.spawn(async move {
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(tcp)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(error)) => {
                    tracing::debug!(%error, "admin API: TLS handshake failed");
                    return;
                }
                Err(_) => return,
            };
            let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                tower_service::Service::call(&mut app.clone(), req)
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HANDSHAKE_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(%error, "admin API connection ended with an error");
                    }
                }
                _ = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(DRAIN_TIMEOUT, conn).await;
                }
            }
        });
    }
    conns.close();
    conns.wait().await;
}
