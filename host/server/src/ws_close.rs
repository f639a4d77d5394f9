//! How a WebSocket connection ends: the reasons, the close frame each one sends,
//! the counter it bumps, and the close handshake.

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::{SinkExt, StreamExt};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Error as WsError;

use crate::metrics::Event;
use crate::protocol::close;
use crate::state::ServerState;

/// Why a connection's loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// The client sent a close frame.
    ClientClosed,
    /// The socket failed or the stream ended.
    Gone,
    /// Server shutdown.
    Shutdown,
    /// No client message within the heartbeat timeout.
    HeartbeatTimeout,
    /// Too many consecutive invalid messages.
    Abusive,
    /// A frame over the size limit.
    TooBig,
    /// A text frame whose payload is not UTF-8.
    InvalidUtf8,
    /// A write did not complete within the write timeout.
    SlowConsumer,
    /// The connection's token expired without a `refresh`.
    TokenExpired,
}

impl End {
    /// How a read error ends the connection: the library refusing a frame over
    /// the size limit, or a text frame that is not UTF-8, get their close codes;
    /// anything else means the socket is gone.
    pub(crate) fn from_read_error(e: &axum::Error) -> Self {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
        while let Some(s) = source {
            match s.downcast_ref::<WsError>() {
                Some(WsError::Capacity(_)) => return End::TooBig,
                Some(WsError::Utf8(_)) => return End::InvalidUtf8,
                _ => {}
            }
            source = s.source();
        }
        End::Gone
    }
}

/// Sends the close frame for `end` (if any) and waits briefly for the reply.
pub(crate) async fn finish(socket: &mut WebSocket, end: End, state: &ServerState) {
    let cfg = state.config();
    let metrics = &state.inner.metrics;
    let (code, reason) = match end {
        End::ClientClosed | End::Gone => {
            // Lets the library's reply to a client's close frame go out.
            let _ = timeout(cfg.close_timeout(), socket.flush()).await;
            return;
        }
        End::Shutdown => (close::GOING_AWAY, "server shutting down".to_string()),
        End::HeartbeatTimeout => {
            metrics.record(Event::HeartbeatTimeout);
            (
                close::HEARTBEAT_TIMEOUT,
                format!(
                    "no message from the client for {} ms",
                    cfg.client_timeout_ms
                ),
            )
        }
        End::Abusive => {
            metrics.record(Event::Abusive);
            (
                close::ABUSIVE,
                format!("{} invalid messages in a row", cfg.max_consecutive_errors),
            )
        }
        End::TooBig => {
            metrics.record(Event::Abusive);
            (
                close::MESSAGE_TOO_BIG,
                format!(
                    "a message exceeded the limit of {} bytes",
                    cfg.max_frame_bytes
                ),
            )
        }
        End::InvalidUtf8 => {
            metrics.record(Event::Malformed);
            metrics.record(Event::Abusive);
            (
                close::INVALID_PAYLOAD,
                "a text frame is not valid UTF-8".to_string(),
            )
        }
        End::SlowConsumer => {
            metrics.record(Event::SlowConsumer);
            (
                close::SLOW_CONSUMER,
                format!(
                    "a write did not complete within {} ms",
                    cfg.write_timeout_ms
                ),
            )
        }
        End::TokenExpired => {
            metrics.record(Event::TokenExpired);
            (
                close::TOKEN_EXPIRED,
                "the token expired; reconnect with a fresh one".to_string(),
            )
        }
    };
    tracing::debug!(code, %reason, "closing websocket");
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    if let Ok(Ok(())) = timeout(
        cfg.close_timeout(),
        socket.send(Message::Close(Some(frame))),
    )
    .await
    {
        // The close handshake: read until the client's close frame (or the end).
        let _ = timeout(cfg.close_timeout(), async {
            while let Some(Ok(m)) = socket.next().await {
                if matches!(m, Message::Close(_)) {
                    break;
                }
            }
        })
        .await;
    }
}
