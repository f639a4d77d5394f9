//! Shared fixtures: a server on port 0, a WebSocket client, raw HTTP.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Map, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use wasmeter_core::change::TopicChange;
use wasmeter_core::delta::Delta;
use wasmeter_core::field::{FieldValue, TopicState};
use wasmeter_core::position::StreamPosition;
use wasmeter_hub::{Hub, HubConfig};
use wasmeter_server::{ServerConfig, ServerState, router};

/// Long enough for a loaded CI machine; only reached when something is broken.
pub const WAIT: Duration = Duration::from_secs(20);

/// A config with short heartbeats for tests.
pub fn config() -> ServerConfig {
    ServerConfig {
        ping_interval_ms: 10_000,
        client_timeout_ms: 30_000,
        close_timeout_ms: 2_000,
        ..ServerConfig::default()
    }
}

/// A server on 127.0.0.1:0 plus a model of every topic's state.
pub struct TestServer {
    pub addr: SocketAddr,
    pub state: ServerState,
    pub hub: Arc<Hub>,
    model: Mutex<BTreeMap<String, TopicState>>,
    handle: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    pub async fn start(config: ServerConfig, hub: HubConfig) -> Self {
        Self::start_with_auth(config, hub, None).await
    }

    /// A server whose subscribers need tokens verified by `auth`.
    pub async fn start_with_auth(
        config: ServerConfig,
        hub: HubConfig,
        auth: Option<wasmeter_server::Authenticator>,
    ) -> Self {
        Self::start_full(config, hub, auth, None).await
    }

    /// A server over TLS.
    pub async fn start_tls(config: ServerConfig, tls: wasmeter_server::Tls) -> Self {
        Self::start_full(config, HubConfig::default(), None, Some(tls)).await
    }

    async fn start_full(
        config: ServerConfig,
        hub: HubConfig,
        auth: Option<wasmeter_server::Authenticator>,
        tls: Option<wasmeter_server::Tls>,
    ) -> Self {
        let hub = Arc::new(Hub::new(hub));
        let state = ServerState::with_auth(hub.clone(), config, auth).unwrap();
        state.set_ready(true);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = router(state.clone());
        let handle = tokio::spawn(wasmeter_server::serve_tls(
            listener,
            app,
            state.clone(),
            tls,
            std::future::pending(),
        ));
        Self {
            addr,
            state,
            hub,
            model: Mutex::new(BTreeMap::new()),
            handle: Some(handle),
        }
    }

    pub async fn default() -> Self {
        Self::start(config(), HubConfig::default()).await
    }

    /// Publishes a change and returns its position.
    pub fn publish(
        &self,
        topic: &str,
        changed: &[(&str, FieldValue)],
        removed: &[&str],
    ) -> StreamPosition {
        let delta = Delta {
            changed: changed
                .iter()
                .map(|(n, v)| (n.to_string(), v.clone()))
                .collect(),
            removed: removed.iter().map(|n| n.to_string()).collect(),
        };
        let mut model = self.model.lock().unwrap();
        let state = model.entry(topic.to_string()).or_default();
        delta.apply_to(state);
        self.hub
            .publish(TopicChange {
                topic: topic.into(),
                delta,
                stale: vec![],
                state: Arc::new(state.clone()),
                timestamp_ms: 1_700_000_000_000,
                event: false,
            })
            .unwrap()
    }

    /// Publishes one event of the stream topic `topic` (fields in order).
    pub fn publish_event(&self, topic: &str, fields: &[(&str, FieldValue)]) -> StreamPosition {
        let fields: Vec<(String, FieldValue)> = fields
            .iter()
            .map(|(n, v)| (n.to_string(), v.clone()))
            .collect();
        self.hub
            .publish(TopicChange {
                topic: topic.into(),
                state: Arc::new(fields.iter().cloned().collect()),
                delta: Delta {
                    changed: fields,
                    removed: vec![],
                },
                stale: vec![],
                timestamp_ms: 1_700_000_000_000,
                event: true,
            })
            .unwrap()
    }

    /// The hub's current state of `topic` as JSON.
    pub fn state_json(&self, topic: &str) -> Value {
        serde_json::to_value(&*self.hub.snapshot(topic).unwrap().1).unwrap()
    }

    /// Cancels the server and waits until `serve` has returned.
    pub async fn shutdown(&mut self) {
        self.state.shutdown_token().cancel();
        if let Some(h) = self.handle.take() {
            tokio::time::timeout(WAIT, h)
                .await
                .unwrap()
                .unwrap()
                .unwrap();
        }
    }

    /// Waits until `cond` holds, polling; panics with `what` after [`WAIT`].
    pub async fn eventually(&self, what: &str, mut cond: impl FnMut(&Self) -> bool) {
        let start = tokio::time::Instant::now();
        while !cond(self) {
            assert!(start.elapsed() < WAIT, "timed out waiting for: {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

pub fn num(x: f64) -> FieldValue {
    FieldValue::Number(x)
}

pub fn text(s: &str) -> FieldValue {
    FieldValue::Text(s.to_string())
}

type Stream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A WebSocket client that decodes JSON text and MessagePack binary frames alike.
pub struct Ws {
    pub inner: Stream,
    /// Received `ping`s are answered with `pong` automatically when true.
    pub auto_pong: bool,
}

/// How a `Ws` stream ended.
#[derive(Debug)]
pub enum Ended {
    Close(Option<CloseFrame>),
    Eof,
}

impl Ws {
    pub async fn connect(addr: SocketAddr, query: &str) -> Self {
        Self::connect_with(addr, query, None, None).await
    }

    /// Connects with an optional subprotocol and an optional small receive buffer.
    pub async fn connect_with(
        addr: SocketAddr,
        query: &str,
        subprotocol: Option<&str>,
        recv_buffer: Option<u32>,
    ) -> Self {
        let mut req = format!("ws://{addr}/ws{query}")
            .into_client_request()
            .unwrap();
        if let Some(p) = subprotocol {
            req.headers_mut()
                .insert("sec-websocket-protocol", p.parse().unwrap());
        }
        let socket = TcpSocket::new_v4().unwrap();
        if let Some(size) = recv_buffer {
            socket.set_recv_buffer_size(size).unwrap();
        }
        let tcp = socket.connect(addr).await.unwrap();
        let (inner, _resp) = tokio_tungstenite::client_async(req, MaybeTlsStream::Plain(tcp))
            .await
            .unwrap();
        Self {
            inner,
            auto_pong: true,
        }
    }

    pub async fn send(&mut self, v: Value) {
        self.inner.send(Message::text(v.to_string())).await.unwrap();
    }

    pub async fn send_msgpack(&mut self, v: Value) {
        let b = rmp_serde::to_vec_named(&v).unwrap();
        self.inner.send(Message::binary(b)).await.unwrap();
    }

    pub async fn send_raw(&mut self, m: Message) {
        self.inner.send(m).await.unwrap();
    }

    /// The next protocol frame (skipping server `ping`s, answered if `auto_pong`),
    /// or how the stream ended.
    pub async fn next(&mut self) -> Result<Value, Ended> {
        loop {
            let m = tokio::time::timeout(WAIT, self.inner.next())
                .await
                .expect("timed out waiting for a frame");
            let v: Value = match m {
                None | Some(Err(_)) => return Err(Ended::Eof),
                Some(Ok(Message::Close(f))) => return Err(Ended::Close(f)),
                Some(Ok(Message::Text(t))) => serde_json::from_str(t.as_str()).unwrap(),
                Some(Ok(Message::Binary(b))) => rmp_serde::from_slice(&b).unwrap(),
                Some(Ok(_)) => continue,
            };
            if v["type"] == "ping" {
                if self.auto_pong {
                    self.send(serde_json::json!({"type":"pong"})).await;
                }
                continue;
            }
            return Ok(v);
        }
    }

    /// The next frame, which must be one.
    pub async fn recv(&mut self) -> Value {
        match self.next().await {
            Ok(v) => v,
            Err(e) => panic!("stream ended: {e:?}"),
        }
    }

    /// The next raw message, including pings and binary/text distinction.
    pub async fn recv_raw(&mut self) -> Message {
        tokio::time::timeout(WAIT, self.inner.next())
            .await
            .expect("timed out")
            .expect("stream ended")
            .expect("websocket error")
    }

    /// Reads until the server closes (within [`WAIT`] in all, heartbeats
    /// included); returns the close code.
    pub async fn close_code(&mut self) -> Option<u16> {
        let closed = async {
            loop {
                match self.next().await {
                    Ok(_) => continue,
                    Err(Ended::Close(f)) => return f.map(|f| u16::from(f.code)),
                    Err(Ended::Eof) => return None,
                }
            }
        };
        tokio::time::timeout(WAIT, closed)
            .await
            .expect("timed out waiting for the server to close")
    }

    /// Subscribes and returns the `subscribed` reply.
    pub async fn subscribe(&mut self, req: Value) -> Value {
        let mut req = req;
        req["type"] = "subscribe".into();
        self.send(req).await;
        let reply = self.recv().await;
        assert_eq!(reply["type"], "subscribed", "{reply}");
        reply
    }

    pub async fn close(mut self) {
        let _ = self.inner.close(None).await;
        // Drain until the server's close reply / EOF.
        let _ = tokio::time::timeout(WAIT, async {
            while let Some(Ok(_)) = self.inner.next().await {}
        })
        .await;
    }
}

/// Applies `snapshot` and `update` frames to a client-side state.
#[derive(Debug, Default)]
pub struct Applied {
    pub topics: BTreeMap<String, (Map<String, Value>, u64)>,
}

impl Applied {
    pub fn apply(&mut self, f: &Value) {
        let topic = f["topic"].as_str().unwrap_or_default().to_string();
        match f["type"].as_str() {
            Some("snapshot") => {
                let state = f["state"].as_object().unwrap().clone();
                self.topics
                    .insert(topic, (state, f["seq"].as_u64().unwrap()));
            }
            Some("update") => {
                let (state, seq) = self.topics.get_mut(&topic).expect("update before snapshot");
                let new_seq = f["seq"].as_u64().unwrap();
                assert!(new_seq > *seq, "seq went from {seq} to {new_seq}");
                *seq = new_seq;
                for (k, v) in f["delta"].as_object().unwrap() {
                    if v.is_null() {
                        state.remove(k);
                    } else {
                        state.insert(k.clone(), v.clone());
                    }
                }
            }
            _ => {}
        }
    }

    pub fn state(&self, topic: &str) -> Value {
        Value::Object(self.topics[topic].0.clone())
    }

    pub fn seq(&self, topic: &str) -> u64 {
        self.topics.get(topic).map_or(0, |t| t.1)
    }
}

/// A plain HTTP/1.0 GET (the server closes after the response): status and body.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    http_get_with(addr, path, &[]).await
}

/// [`http_get`] with request headers.
pub async fn http_get_with(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, String)],
) -> (u16, String) {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let mut req = format!("GET {path} HTTP/1.0\r\nHost: test\r\n");
    for (name, value) in headers {
        req.push_str(&format!("{name}: {value}\r\n"));
    }
    req.push_str("\r\n");
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, tcp.read_to_end(&mut raw))
        .await
        .unwrap()
        .unwrap();
    let raw = String::from_utf8(raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_string())
}

/// One server-sent event.
#[derive(Debug, Default, Clone)]
pub struct Event {
    pub event: String,
    pub id: Option<String>,
    pub data: Value,
}

/// A raw-TCP SSE client (HTTP/1.0, so the body is plain, not chunked).
pub struct Sse {
    reader: BufReader<TcpStream>,
    pub status: u16,
}

impl Sse {
    pub async fn connect(addr: SocketAddr, path: &str, last_event_id: Option<&str>) -> Self {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let mut req = format!("GET {path} HTTP/1.0\r\nHost: test\r\nAccept: text/event-stream\r\n");
        if let Some(id) = last_event_id {
            req.push_str(&format!("Last-Event-ID: {id}\r\n"));
        }
        req.push_str("\r\n");
        tcp.write_all(req.as_bytes()).await.unwrap();
        let mut reader = BufReader::new(tcp);
        let mut status_line = String::new();
        reader.read_line(&mut status_line).await.unwrap();
        let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).await.unwrap();
            if line == "\r\n" || line.is_empty() {
                break;
            }
        }
        Self { reader, status }
    }

    /// The next event (comments such as `: ping` skipped); `None` at end of stream.
    pub async fn next(&mut self) -> Option<Event> {
        let mut ev = Event::default();
        let mut has_data = false;
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(WAIT, self.reader.read_line(&mut line))
                .await
                .expect("timed out waiting for an event")
                .unwrap();
            if n == 0 {
                return None;
            }
            let line = line.trim_end_matches('\n');
            if line.is_empty() {
                if has_data {
                    return Some(ev);
                }
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = line.split_once(": ").unwrap_or((line, ""));
            match field {
                "event" => ev.event = value.to_string(),
                "id" => ev.id = Some(value.to_string()),
                "data" => {
                    ev.data = serde_json::from_str(value).unwrap();
                    has_data = true;
                }
                _ => {}
            }
        }
    }
}

/// The error type of a WebSocket handshake, to check refusals.
pub async fn ws_handshake_status(addr: SocketAddr, query: &str) -> Option<u16> {
    match tokio_tungstenite::connect_async(format!("ws://{addr}/ws{query}")).await {
        Ok(_) => None,
        Err(tungstenite::Error::Http(resp)) => Some(resp.status().as_u16()),
        Err(e) => panic!("unexpected handshake error: {e}"),
    }
}
