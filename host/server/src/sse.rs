//! `GET /sse`: the same snapshots and updates as the WebSocket, as Server-Sent Events.
//!
//! Each data event's `id` lists the position of every topic of the stream, as
//! `topic@epoch@seq` joined by `,`. A browser's `EventSource` sends the last id back
//! as `Last-Event-ID` when it reconnects; the server then resumes each listed topic
//! exactly (or sends a `snapshot` with `"recovered": false`), and snapshots the rest.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::sync::Arc;

use axum::Extension;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use bytes::{BufMut, Bytes, BytesMut};
use tokio::time::Instant;
use wasmeter_core::position::StreamPosition;
use wasmeter_hub::{Format, Pattern};

use crate::access::{Access, forbidden};
use crate::check::{check_count, check_subscribe};
use crate::client::{Client, Kind, Limits, Out};
use crate::metrics::Event;
use crate::rest::json_error;
use crate::state::{HttpSlot, Permit, ServerState};

/// Parses an event id (`topic@epoch@seq,...`); entries that do not parse are ignored.
pub(crate) fn parse_event_id(id: &str) -> BTreeMap<String, StreamPosition> {
    id.split(',')
        .filter_map(|entry| {
            let mut parts = entry.rsplitn(3, '@');
            let seq = parts.next()?.parse().ok()?;
            let epoch = parts.next()?.to_string();
            let topic = parts.next()?.to_string();
            Some((topic, StreamPosition { epoch, seq }))
        })
        .collect()
}

fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

/// Opens an event stream: `?topics=a/*,b&fields=x,y&max_rate_hz=2`.
pub(crate) async fn handler(
    State(state): State<ServerState>,
    Access(grants): Access,
    Query(query): Query<HashMap<String, String>>,
    http_slot: Option<Extension<HttpSlot>>,
    headers: HeaderMap,
) -> Response {
    let bad = |m: String| json_error(StatusCode::BAD_REQUEST, "bad_request", m);
    let Some(topics) = query.get("topics").map(|t| split_list(t)) else {
        return bad(
            "query parameter `topics` is required (e.g. ?topics=trades/*,system/cpu)".into(),
        );
    };
    let fields = query.get("fields").map(|f| split_list(f));
    let rate = match query.get("max_rate_hz").map(|r| r.parse::<f64>()) {
        None => None,
        Some(Ok(r)) => Some(r),
        Some(Err(_)) => return bad("query parameter `max_rate_hz` is not a number".into()),
    };
    // SSE data frames stay maps: the compact envelope is a /ws option.
    if let Some(name) = query.get("envelope").filter(|n| n.as_str() != "map") {
        return bad(format!(
            "query parameter envelope: `{name}` is not `map` (/sse sends map frames only; \
             the compact envelope is a /ws option)"
        ));
    }
    let limits = Limits::from(state.config());
    if let Err(e) = check_count("subscribe", topics.len(), limits.max_subscriptions, None) {
        return bad(e.message.replacen("subscribe.", "", 1));
    }
    // Resume what the last event id lists and this request still covers.
    let patterns: Vec<Pattern> = topics
        .iter()
        .filter_map(|t| Pattern::parse(t).ok())
        .collect();
    let since: BTreeMap<String, StreamPosition> = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(parse_event_id)
        .unwrap_or_default()
        .into_iter()
        .filter(|(t, _)| patterns.iter().any(|p| p.matches(t)))
        .collect();
    // The resumed topics keep their positions in the ids to come, also those
    // without a new event, so that the next resume replays them too.
    let seed: BTreeMap<Arc<str>, (Arc<str>, u64)> = since
        .iter()
        .map(|(t, p)| (t.as_str().into(), (p.epoch.as_str().into(), p.seq)))
        .collect();
    let since = (!since.is_empty()).then_some(since);
    let req = match check_subscribe(None, topics, fields, rate, since, &limits) {
        Ok(r) => r,
        Err(e) => return bad(e.message.replacen("subscribe.", "", 1)),
    };
    if let Some(p) = req.patterns.iter().find(|p| !grants.permits(p)) {
        return forbidden(&state, &format!("topics: `{p}`"), &grants);
    }
    let permit = match Permit::acquire(&state) {
        Ok(permit) => permit,
        Err(refused) => return refused,
    };
    // A subscriber now: it counts against max_connections, no longer as plain HTTP.
    if let Some(Extension(slot)) = http_slot {
        slot.release();
    }
    let mut client = Client::new(
        state.hub().clone(),
        Format::Json,
        limits,
        state.inner.metrics.clone(),
        true,
    );
    client.set_access(grants, None);
    if let Err(e) = client.subscribe(req) {
        return json_error(StatusCode::BAD_REQUEST, e.code, e.message);
    }
    let conn = SseConn {
        expires: client.expires_at(),
        expired: false,
        client,
        positions: seed,
        next_ping: Instant::now() + state.config().ping_interval(),
        state,
        _permit: permit,
    };
    let stream = futures_util::stream::unfold(conn, |mut c| async move {
        let chunk = c.next_chunk().await?;
        Some((Ok::<Bytes, Infallible>(chunk), c))
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .header("x-accel-buffering", "no")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|e| {
            json_error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
        })
}

/// The last event of a stream whose token expired.
const TOKEN_EXPIRED_EVENT: &[u8] = b"event: error\ndata: {\"type\":\"error\",\"code\":\"token_expired\",\"message\":\"the token expired; reconnect with a fresh one and Last-Event-ID\"}\n\n";

/// One SSE stream. Dropped by hyper when the client goes away, which detaches it.
struct SseConn {
    client: Client,
    positions: BTreeMap<Arc<str>, (Arc<str>, u64)>,
    next_ping: Instant,
    /// When the token expires: the stream then ends with an `error` event
    /// (`token_expired`); the client reconnects with a fresh token.
    expires: Option<Instant>,
    /// The `token_expired` event was sent: the stream ends.
    expired: bool,
    state: ServerState,
    _permit: Permit,
}

impl SseConn {
    /// The next bytes to send; `None` ends the stream (shutdown, or after the
    /// `token_expired` event).
    async fn next_chunk(&mut self) -> Option<Bytes> {
        let shared = self.client.shared().clone();
        let cancel = self.state.inner.shutdown.clone();
        let mut out = Vec::new();
        loop {
            if cancel.is_cancelled() {
                return None;
            }
            let now = Instant::now();
            if self.expires.is_some_and(|at| now >= at) {
                if self.expired {
                    return None;
                }
                self.expired = true;
                self.state.inner.metrics.record(Event::TokenExpired);
                return Some(Bytes::from_static(TOKEN_EXPIRED_EVENT));
            }
            if self.client.has_work(now) {
                self.client.fill(now, &mut out);
                if !out.is_empty() {
                    return Some(self.render(&mut out));
                }
            }
            if now >= self.next_ping {
                self.next_ping = now + self.state.config().ping_interval();
                return Some(Bytes::from_static(b": ping\n\n"));
            }
            let busy = self.client.has_work(Instant::now());
            let mut deadline = self.next_ping;
            if let Some(due) = self.client.next_due() {
                deadline = deadline.min(due);
            }
            if let Some(at) = self.expires {
                deadline = deadline.min(at);
            }
            tokio::select! {
                _ = cancel.cancelled() => return None,
                _ = shared.wake.notified(), if !busy => {}
                _ = std::future::ready(()), if busy => {}
                _ = tokio::time::sleep_until(deadline) => {}
            }
        }
    }

    fn render(&mut self, out: &mut Vec<Out>) -> Bytes {
        let state = self.state.clone();
        let max_id_topics = state.config().sse_max_id_topics;
        let mut buf = BytesMut::new();
        let frames = out.len() as u64;
        for o in out.drain(..) {
            buf.put_slice(b"event: ");
            buf.put_slice(o.kind.name().as_bytes());
            buf.put_u8(b'\n');
            if let Some(m) = &o.msg {
                if o.kind == Kind::Removed {
                    self.positions.remove(m.topic());
                } else {
                    self.positions
                        .insert(m.topic().clone(), (m.epoch().clone(), m.seq()));
                }
                buf.put_slice(b"id: ");
                if self.positions.len() <= max_id_topics {
                    self.write_id(&mut buf);
                }
                buf.put_u8(b'\n');
            }
            buf.put_slice(b"data: ");
            buf.put_slice(&o.bytes);
            buf.put_slice(b"\n\n");
        }
        state
            .inner
            .metrics
            .sent(Format::Json, frames, buf.len() as u64);
        buf.freeze()
    }

    fn write_id(&self, buf: &mut BytesMut) {
        for (i, (topic, (epoch, seq))) in self.positions.iter().enumerate() {
            if i > 0 {
                buf.put_u8(b',');
            }
            buf.put_slice(topic.as_bytes());
            buf.put_u8(b'@');
            buf.put_slice(epoch.as_bytes());
            buf.put_u8(b'@');
            buf.put_slice(seq.to_string().as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_round_trip_and_junk_is_ignored() {
        let got = parse_event_id("trades/BTC@k1-2@42,sys:cpu@k1-3@7,junk,a@b@notnum");
        assert_eq!(got.len(), 2);
        assert_eq!(
            got["trades/BTC"],
            StreamPosition {
                epoch: "k1-2".into(),
                seq: 42
            }
        );
        assert_eq!(got["sys:cpu"].seq, 7);
    }
}
