//! Limits and timings of the server, one documented field each.

use std::time::Duration;

use serde::Deserialize;
use thiserror::Error;

/// Configuration of the HTTP surface. Every limit exists so that no client can
/// make the host grow without bound.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Open WebSocket and SSE connections at most; more are refused with HTTP 503.
    pub max_connections: usize,
    /// Plain HTTP connections at most: every accepted TCP connection counts until
    /// it becomes a WebSocket or SSE subscriber (which count against
    /// `max_connections` instead) or ends. Over the limit a connection gets a fixed
    /// HTTP 503 and is closed before anything is read from it.
    pub max_http_connections: usize,
    /// A request line and headers (of every request, and of a WebSocket upgrade)
    /// not received completely within this are dropped with the connection.
    pub header_read_timeout_ms: u64,
    /// `TCP_NOTSENT_LOWAT` of every connection (Linux): unsent bytes the kernel
    /// keeps per socket at most before a write waits. Small keeps a stalled
    /// reader's backlog in the server, where it is conflated, instead of in the
    /// kernel as stale frames; large saves wake-ups on fast links. 0 leaves the
    /// system default (no limit).
    pub tcp_notsent_lowat_bytes: u32,
    /// `SO_SNDBUF` of every connection; 0 leaves the kernel's auto-tuning. A
    /// bound also caps bytes in flight, which lowers throughput on long, fast
    /// links; prefer `tcp_notsent_lowat_bytes`.
    pub send_buffer_bytes: usize,
    /// Largest incoming WebSocket message. A bigger one closes the connection with
    /// 1009: its remaining bytes cannot be skipped safely.
    pub max_frame_bytes: usize,
    /// Patterns one connection may subscribe to.
    pub max_subscriptions: usize,
    /// Topics one connection may receive (over all its patterns).
    pub max_topics_per_connection: usize,
    /// Consecutive invalid messages after which a client is closed as abusive (4002).
    pub max_consecutive_errors: u32,
    /// Interval of the server's application-level `ping`.
    pub ping_interval_ms: u64,
    /// A client that sends nothing for this long is closed (4001). A write that
    /// had to wait for a full socket and then completed counts as a sign of life
    /// (the client is reading): a stalled reader is the slow-consumer path
    /// (conflation, then 4003 after `write_timeout_ms`), not a silent one.
    pub client_timeout_ms: u64,
    /// A batch write (at most `write_batch_bytes`) that does not complete within
    /// this is the last resort: the connection is closed as a slow consumer (4003).
    /// An SSE stream or HTTP response whose write waits this long is dropped.
    pub write_timeout_ms: u64,
    /// How long the server waits for the client's reply to a close frame.
    pub close_timeout_ms: u64,
    /// Frames written per flush at most (writes are coalesced up to this).
    pub write_batch_frames: usize,
    /// Bytes written per flush at most (a single larger frame is still written).
    pub write_batch_bytes: usize,
    /// A subscriber this many updates behind on a topic gets one snapshot instead
    /// (conflation), even when the history still holds the updates.
    pub conflate_after_updates: u64,
    /// Initial read buffer of a WebSocket; small keeps idle connections small.
    pub ws_read_buffer_bytes: usize,
    /// Bytes buffered before the WebSocket writes to the socket (flushes always write).
    pub ws_write_buffer_bytes: usize,
    /// Control replies (subscribed, errors, pong) queued per connection at most;
    /// while full, the connection reads no further client messages.
    pub max_queued_replies: usize,
    /// SSE: topics whose positions fit in an event id. With more topics, events
    /// carry an empty id and a reconnect starts with fresh snapshots.
    pub sse_max_id_topics: usize,
    /// Web origins (`scheme://host[:port]`, or `*`) whose pages may read from the
    /// host besides its own (see `origin.rs`). Set from `[server] allowed_origins`.
    #[serde(skip)]
    pub allowed_origins: Vec<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            max_http_connections: 1_024,
            header_read_timeout_ms: 10_000,
            tcp_notsent_lowat_bytes: 16 * 1024,
            send_buffer_bytes: 0,
            max_frame_bytes: 64 * 1024,
            max_subscriptions: 64,
            max_topics_per_connection: 10_000,
            max_consecutive_errors: 10,
            ping_interval_ms: 15_000,
            client_timeout_ms: 45_000,
            write_timeout_ms: 30_000,
            close_timeout_ms: 1_000,
            write_batch_frames: 64,
            write_batch_bytes: 64 * 1024,
            conflate_after_updates: 64,
            ws_read_buffer_bytes: 1024,
            ws_write_buffer_bytes: 16 * 1024,
            max_queued_replies: 32,
            sse_max_id_topics: 32,
            allowed_origins: Vec::new(),
        }
    }
}

/// A configuration value that cannot work; the message names the field.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("server config: `{field}` {problem}")]
pub struct ConfigError {
    /// The field.
    pub field: &'static str,
    /// What is wrong.
    pub problem: String,
}

impl ServerConfig {
    /// Checks the invariants between fields.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            ("max_connections", self.max_connections as u64),
            ("max_http_connections", self.max_http_connections as u64),
            ("header_read_timeout_ms", self.header_read_timeout_ms),
            ("max_frame_bytes", self.max_frame_bytes as u64),
            ("max_subscriptions", self.max_subscriptions as u64),
            (
                "max_topics_per_connection",
                self.max_topics_per_connection as u64,
            ),
            ("max_consecutive_errors", self.max_consecutive_errors as u64),
            ("ping_interval_ms", self.ping_interval_ms),
            ("write_timeout_ms", self.write_timeout_ms),
            ("write_batch_frames", self.write_batch_frames as u64),
            ("write_batch_bytes", self.write_batch_bytes as u64),
            ("conflate_after_updates", self.conflate_after_updates),
            ("max_queued_replies", self.max_queued_replies as u64),
        ];
        for (field, v) in positive {
            if v == 0 {
                return Err(ConfigError {
                    field,
                    problem: "must be greater than 0".into(),
                });
            }
        }
        if self.client_timeout_ms <= self.ping_interval_ms {
            return Err(ConfigError {
                field: "client_timeout_ms",
                problem: format!(
                    "({}) must be longer than ping_interval_ms ({}), or clients time out between pings",
                    self.client_timeout_ms, self.ping_interval_ms
                ),
            });
        }
        Ok(())
    }

    pub(crate) fn ping_interval(&self) -> Duration {
        Duration::from_millis(self.ping_interval_ms)
    }

    pub(crate) fn client_timeout(&self) -> Duration {
        Duration::from_millis(self.client_timeout_ms)
    }

    pub(crate) fn write_timeout(&self) -> Duration {
        Duration::from_millis(self.write_timeout_ms)
    }

    pub(crate) fn close_timeout(&self) -> Duration {
        Duration::from_millis(self.close_timeout_ms)
    }

    pub(crate) fn header_read_timeout(&self) -> Duration {
        Duration::from_millis(self.header_read_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_errors_name_the_field() {
        ServerConfig::default().validate().unwrap();
        let bad = ServerConfig {
            client_timeout_ms: 10,
            ping_interval_ms: 20,
            ..Default::default()
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("`client_timeout_ms`")
        );
        let zero = ServerConfig {
            write_batch_frames: 0,
            ..Default::default()
        };
        assert_eq!(zero.validate().unwrap_err().field, "write_batch_frames");
    }
}
