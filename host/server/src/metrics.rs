//! The server's self-metrics: counters with their names in one place.

use std::sync::atomic::{AtomicU64, Ordering};

use wasmeter_hub::Format;

/// Live counters, shared by every connection.
#[derive(Debug, Default)]
pub struct Metrics {
    connections_active: AtomicU64,
    connections_total: AtomicU64,
    connections_refused: AtomicU64,
    http_connections_active: AtomicU64,
    http_connections_refused: AtomicU64,
    messages_sent: [AtomicU64; 2],
    bytes_sent: [AtomicU64; 2],
    conflations: AtomicU64,
    stream_gaps: AtomicU64,
    malformed_messages: AtomicU64,
    refused_messages: AtomicU64,
    slow_consumer_disconnects: AtomicU64,
    heartbeat_timeouts: AtomicU64,
    abusive_disconnects: AtomicU64,
    unauthorized: AtomicU64,
    forbidden: AtomicU64,
    token_expiries: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// WebSocket and SSE connections open now.
    pub connections_active: u64,
    /// Connections accepted since start.
    pub connections_total: u64,
    /// Connections refused by the connection limit.
    pub connections_refused: u64,
    /// Plain HTTP connections open now (not yet, or never, a subscriber).
    pub http_connections_active: u64,
    /// TCP connections refused by `max_http_connections` (answered 503, closed).
    pub http_connections_refused: u64,
    /// Connection tasks and SSE streams alive now (including those closing).
    pub connection_tasks: usize,
    /// Frames sent in JSON.
    pub messages_sent_json: u64,
    /// Frames sent in MessagePack.
    pub messages_sent_msgpack: u64,
    /// Payload bytes sent in JSON.
    pub bytes_sent_json: u64,
    /// Payload bytes sent in MessagePack.
    pub bytes_sent_msgpack: u64,
    /// Times a subscriber behind on a topic got a snapshot instead of the updates.
    pub conflations: u64,
    /// `gap` frames sent: a subscriber of a stream topic fell behind further than
    /// the topic's history reaches and missed events.
    pub stream_gaps: u64,
    /// Client messages that do not parse (not JSON or MessagePack, an unknown
    /// `type` or field) and text frames that are not UTF-8.
    pub malformed_messages: u64,
    /// Well-formed client messages refused (an invalid pattern or field name, a
    /// limit, unsubscribing what is not subscribed).
    pub refused_messages: u64,
    /// Connections closed because writes stalled (4003).
    pub slow_consumer_disconnects: u64,
    /// Connections closed for silence (4001).
    pub heartbeat_timeouts: u64,
    /// Connections closed as abusive (4002), for an oversized frame (1009) or for
    /// a text frame that is not UTF-8 (1007).
    pub abusive_disconnects: u64,
    /// Requests and refreshes refused for a missing, invalid or expired token (401,
    /// or an `unauthorized` error frame).
    pub unauthorized: u64,
    /// Subscriptions and topic reads refused as outside the token's topics (403,
    /// or a `forbidden` error frame).
    pub forbidden: u64,
    /// Connections closed because their token expired (4004, or the end of an
    /// SSE stream).
    pub token_expiries: u64,
}

/// One thing that happened, to be counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    Opened,
    Closed,
    Refused,
    HttpOpened,
    HttpClosed,
    HttpRefused,
    Conflated,
    StreamGap,
    Malformed,
    RefusedMessage,
    SlowConsumer,
    HeartbeatTimeout,
    Abusive,
    Unauthorized,
    Forbidden,
    TokenExpired,
}

impl Metrics {
    pub(crate) fn record(&self, event: Event) {
        let counter = match event {
            Event::Opened => {
                self.connections_total.fetch_add(1, Ordering::Relaxed);
                &self.connections_active
            }
            Event::Closed => {
                self.connections_active.fetch_sub(1, Ordering::Relaxed);
                return;
            }
            Event::Refused => &self.connections_refused,
            Event::HttpOpened => &self.http_connections_active,
            Event::HttpClosed => {
                self.http_connections_active.fetch_sub(1, Ordering::Relaxed);
                return;
            }
            Event::HttpRefused => &self.http_connections_refused,
            Event::Conflated => &self.conflations,
            Event::StreamGap => &self.stream_gaps,
            Event::Malformed => &self.malformed_messages,
            Event::RefusedMessage => &self.refused_messages,
            Event::SlowConsumer => &self.slow_consumer_disconnects,
            Event::HeartbeatTimeout => &self.heartbeat_timeouts,
            Event::Abusive => &self.abusive_disconnects,
            Event::Unauthorized => &self.unauthorized,
            Event::Forbidden => &self.forbidden,
            Event::TokenExpired => &self.token_expiries,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one written batch (one add per batch, not per frame).
    pub(crate) fn sent(&self, format: Format, frames: u64, bytes: u64) {
        self.messages_sent[format.index()].fetch_add(frames, Ordering::Relaxed);
        self.bytes_sent[format.index()].fetch_add(bytes, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self, connection_tasks: usize) -> MetricsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        MetricsSnapshot {
            connections_active: get(&self.connections_active),
            connections_total: get(&self.connections_total),
            connections_refused: get(&self.connections_refused),
            http_connections_active: get(&self.http_connections_active),
            http_connections_refused: get(&self.http_connections_refused),
            connection_tasks,
            messages_sent_json: get(&self.messages_sent[0]),
            messages_sent_msgpack: get(&self.messages_sent[1]),
            bytes_sent_json: get(&self.bytes_sent[0]),
            bytes_sent_msgpack: get(&self.bytes_sent[1]),
            conflations: get(&self.conflations),
            stream_gaps: get(&self.stream_gaps),
            malformed_messages: get(&self.malformed_messages),
            refused_messages: get(&self.refused_messages),
            slow_consumer_disconnects: get(&self.slow_consumer_disconnects),
            heartbeat_timeouts: get(&self.heartbeat_timeouts),
            abusive_disconnects: get(&self.abusive_disconnects),
            unauthorized: get(&self.unauthorized),
            forbidden: get(&self.forbidden),
            token_expiries: get(&self.token_expiries),
        }
    }
}
