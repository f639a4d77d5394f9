//! `GET /ws`: the WebSocket endpoint. One connection is one task running one
//! loop that reads client messages, writes batches of frames and keeps time.
//!
//! Heartbeats: a client that sends nothing for `client_timeout_ms` while the
//! server can write to it is closed (4001). A write that had to wait for a full
//! socket and then completed counts as a sign of life: that client is reading,
//! slowly, and is the slow-consumer path instead (conflated while it lags,
//! closed with 4003 only when one batch waits past `write_timeout_ms`).

use std::collections::HashMap;

use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use tokio::time::{Instant, timeout};
use wasmeter_hub::{Envelope, Format, Wire};

use crate::access::Access;
use crate::auth::Grants;
use crate::client::{Client, Limits, Out, Verdict};
use crate::protocol::{subprotocol, wire_of_subprotocol};
use crate::rest::json_error;
use crate::state::{Permit, ServerState};
use crate::ws_close::{End, finish};

/// A batch buffer larger than this is dropped when the connection goes idle, so
/// idle connections stay small.
const IDLE_BATCH_CAPACITY: usize = 4;

/// Upgrades to a WebSocket. The first of our subprotocols the client offers
/// chooses the format and the envelope (default: JSON, maps); `?format=json|msgpack`
/// and `?envelope=map|compact` override either.
pub(crate) async fn handler(
    State(state): State<ServerState>,
    Access(grants): Access,
    Query(query): Query<HashMap<String, String>>,
    mut ws: WebSocketUpgrade,
) -> Response {
    let offered = ws
        .requested_protocols()
        .find_map(|h| wire_of_subprotocol(h.as_bytes()))
        .unwrap_or(Wire::from(Format::Json));
    let wire = match wire_from_query(&query, offered) {
        Ok(wire) => wire,
        Err(message) => return json_error(StatusCode::BAD_REQUEST, "bad_request", message),
    };
    let protocol = subprotocol(wire);
    if ws
        .requested_protocols()
        .any(|h| h.as_bytes() == protocol.as_bytes())
    {
        ws.set_selected_protocol(HeaderValue::from_static(protocol));
    }
    let permit = match Permit::acquire(&state) {
        Ok(permit) => permit,
        Err(refused) => return refused,
    };
    let cfg = state.config();
    ws.read_buffer_size(cfg.ws_read_buffer_bytes)
        .write_buffer_size(cfg.ws_write_buffer_bytes)
        .max_message_size(cfg.max_frame_bytes)
        .max_frame_size(cfg.max_frame_bytes)
        .on_upgrade(move |socket| connection(socket, state, wire, grants, permit))
}

/// `offered` with what `?format=` and `?envelope=` say instead; an unknown value
/// is an error naming it.
fn wire_from_query(query: &HashMap<String, String>, offered: Wire) -> Result<Wire, String> {
    let mut wire = offered;
    if let Some(name) = query.get("format") {
        wire.format = Format::from_name(name).ok_or_else(|| {
            format!("query parameter format: `{name}` is not `json` or `msgpack`")
        })?;
    }
    if let Some(name) = query.get("envelope") {
        wire.envelope = Envelope::from_name(name).ok_or_else(|| {
            format!("query parameter envelope: `{name}` is not `map` or `compact`")
        })?;
    }
    Ok(wire)
}

/// One connection, from upgrade to close. Everything it started ends here.
async fn connection(
    mut socket: WebSocket,
    state: ServerState,
    wire: Wire,
    grants: Grants,
    permit: Permit,
) {
    let inner = &state.inner;
    let mut client = Client::new(
        inner.hub.clone(),
        wire,
        Limits::from(&inner.config),
        inner.metrics.clone(),
        false,
    );
    client.set_access(grants, inner.auth.clone());
    let end = drive(&mut socket, &mut client, &state).await;
    // Leave the hub before the (possibly slow) close handshake.
    drop(client);
    finish(&mut socket, end, &state).await;
    drop(permit);
}

async fn drive(socket: &mut WebSocket, client: &mut Client, state: &ServerState) -> End {
    let cfg = state.config();
    let cancel = &state.inner.shutdown;
    let shared = client.shared().clone();
    let ping_every = cfg.ping_interval();
    let timeout_after = cfg.client_timeout();
    let mut heard = Instant::now();
    let mut next_ping = heard + ping_every;
    let mut deadline = next_ping;
    let timer = tokio::time::sleep_until(deadline);
    tokio::pin!(timer);
    let mut out: Vec<Out> = Vec::new();
    loop {
        let now = Instant::now();
        if client.has_work(now) {
            client.fill(now, &mut out);
            if !out.is_empty() {
                match write(socket, &mut out, client.format(), state).await {
                    Err(end) => return end,
                    // The socket was full and drained: the client reads, so it is
                    // alive even if its pongs are still behind what we wrote.
                    Ok(Wrote { waited: true }) => heard = Instant::now(),
                    Ok(Wrote { waited: false }) => {}
                }
            }
        } else if out.capacity() > IDLE_BATCH_CAPACITY {
            out = Vec::new();
        }
        let busy = client.has_work(Instant::now());
        let mut wanted = next_ping.min(heard + timeout_after);
        if let Some(due) = client.next_due() {
            wanted = wanted.min(due);
        }
        // Read again every turn: a `refresh` moves it.
        let expires = client.expires_at();
        if let Some(expires) = expires {
            wanted = wanted.min(expires);
        }
        if wanted != deadline {
            deadline = wanted;
            timer.as_mut().reset(deadline);
        }
        tokio::select! {
            _ = cancel.cancelled() => return End::Shutdown,
            msg = socket.next(), if client.can_read() => {
                let now = Instant::now();
                heard = now;
                let verdict = match msg {
                    None => return End::Gone,
                    Some(Err(e)) => return End::from_read_error(&e),
                    Some(Ok(Message::Text(t))) => client.handle(t.as_bytes(), false, now),
                    Some(Ok(Message::Binary(b))) => client.handle(&b, true, now),
                    Some(Ok(Message::Close(_))) => return End::ClientClosed,
                    // WebSocket-level ping/pong: answered by the library; a sign of life.
                    Some(Ok(_)) => Verdict::Continue,
                };
                if verdict == Verdict::Abusive {
                    return End::Abusive;
                }
            }
            _ = shared.wake.notified(), if !busy => {}
            _ = std::future::ready(()), if busy => {}
            _ = &mut timer => {
                let now = Instant::now();
                if expires.is_some_and(|at| now >= at) {
                    return End::TokenExpired;
                }
                if now >= heard + timeout_after {
                    return End::HeartbeatTimeout;
                }
                if now >= next_ping {
                    client.queue_ping();
                    next_ping = now + ping_every;
                }
            }
        }
    }
}

/// A batch that was written.
struct Wrote {
    /// The socket was full at some point: the write waited for the client to
    /// read.
    waited: bool,
}

/// Writes a batch: feeds every frame, then flushes once.
async fn write(
    socket: &mut WebSocket,
    out: &mut Vec<Out>,
    format: Format,
    state: &ServerState,
) -> Result<Wrote, End> {
    let mut frames = 0u64;
    let mut bytes = 0u64;
    let io = async {
        for o in out.drain(..) {
            frames += 1;
            bytes += o.bytes.len() as u64;
            let msg = match format {
                Format::MsgPack => Message::Binary(o.bytes),
                // Encoded by serde_json: always UTF-8.
                Format::Json => match Utf8Bytes::try_from(o.bytes) {
                    Ok(text) => Message::Text(text),
                    Err(_) => continue,
                },
            };
            socket.feed(msg).await?;
        }
        socket.flush().await
    };
    let mut waited = false;
    let result = {
        // Unconstrained: then the write is pending only when the socket is full,
        // not when the task's cooperative budget runs out. A batch is bounded.
        let mut io = std::pin::pin!(tokio::task::unconstrained(io));
        let io = std::future::poll_fn(|cx| {
            let poll = io.as_mut().poll(cx);
            waited |= poll.is_pending();
            poll
        });
        timeout(state.config().write_timeout(), io).await
    };
    state.inner.metrics.sent(format, frames, bytes);
    match result {
        Ok(Ok(())) => Ok(Wrote { waited }),
        Ok(Err(_)) => Err(End::Gone),
        Err(_) => Err(End::SlowConsumer),
    }
}
