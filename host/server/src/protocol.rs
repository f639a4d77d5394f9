//! The wire protocol's control messages, error codes and close codes.
//!
//! Data frames (`snapshot`, `update`, `event`) are encoded once per wire by the hub
//! ([`wasmeter_hub::codec`]); this module has everything else. See
//! `docs/PROTOCOL.md` for the protocol as a client sees it.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use thiserror::Error;
use wasmeter_core::position::StreamPosition;
use wasmeter_hub::{Format, Wire, codec};

/// WebSocket subprotocol selecting JSON frames.
pub const SUBPROTOCOL_JSON: &str = "wasmeter.v1.json";
/// WebSocket subprotocol selecting MessagePack frames.
pub const SUBPROTOCOL_MSGPACK: &str = "wasmeter.v1.msgpack";
/// WebSocket subprotocol selecting JSON frames with the compact envelope.
pub const SUBPROTOCOL_COMPACT_JSON: &str = "wasmeter.v1.compact.json";
/// WebSocket subprotocol selecting MessagePack frames with the compact envelope.
pub const SUBPROTOCOL_COMPACT_MSGPACK: &str = "wasmeter.v1.compact.msgpack";

/// The subprotocol of each wire, by [`Wire::index`].
const SUBPROTOCOLS: [&str; 4] = [
    SUBPROTOCOL_JSON,
    SUBPROTOCOL_MSGPACK,
    SUBPROTOCOL_COMPACT_JSON,
    SUBPROTOCOL_COMPACT_MSGPACK,
];

/// The WebSocket subprotocol that names `wire`.
pub fn subprotocol(wire: Wire) -> &'static str {
    SUBPROTOCOLS[wire.index()]
}

/// The wire a WebSocket subprotocol names, if it is one of ours.
pub fn wire_of_subprotocol(name: &[u8]) -> Option<Wire> {
    Format::ALL
        .into_iter()
        .flat_map(|f| [Wire::from(f), Wire::compact(f)])
        .find(|w| subprotocol(*w).as_bytes() == name)
}

/// Close codes the server sends. Standard codes where one fits, otherwise the
/// 4000-4999 range reserved for applications.
pub mod close {
    /// The server is shutting down (standard "going away"). Reconnect later, with `since`.
    pub const GOING_AWAY: u16 = 1001;
    /// A text frame's payload is not valid UTF-8 (standard "invalid frame payload
    /// data"). Counted as a malformed message.
    pub const INVALID_PAYLOAD: u16 = 1007;
    /// A frame exceeded the frame size limit (standard "message too big"). Do not
    /// resend it.
    pub const MESSAGE_TOO_BIG: u16 = 1009;
    /// No message from the client within the heartbeat timeout. Reconnect with `since`.
    pub const HEARTBEAT_TIMEOUT: u16 = 4001;
    /// Too many consecutive invalid messages. Fix the client before reconnecting.
    pub const ABUSIVE: u16 = 4002;
    /// A batch of frames (at most `write_batch_bytes`) could not be written within
    /// the write timeout: the last resort for a consumer that stopped reading.
    /// Reconnect with `since`.
    pub const SLOW_CONSUMER: u16 = 4003;
    /// The connection's token expired and was not refreshed in time. Reconnect
    /// with a fresh token, and `since`.
    pub const TOKEN_EXPIRED: u16 = 4004;
}

/// A message from the client.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientFrame {
    /// Subscribe to topics or patterns.
    Subscribe {
        /// Echoed in the reply.
        #[serde(default)]
        id: Option<u64>,
        /// Topic names or patterns.
        topics: Vec<String>,
        /// Only these fields (default: all).
        #[serde(default)]
        fields: Option<Vec<String>>,
        /// At most this many updates per second per topic (default: no limit).
        #[serde(default)]
        max_rate_hz: Option<f64>,
        /// Positions to resume from, by topic.
        #[serde(default)]
        since: Option<BTreeMap<String, StreamPosition>>,
    },
    /// Unsubscribe from patterns subscribed before (spelled exactly as then).
    Unsubscribe {
        /// Echoed in the reply.
        #[serde(default)]
        id: Option<u64>,
        /// The patterns.
        topics: Vec<String>,
    },
    /// Asks the server for a `pong`.
    Ping {
        /// Echoed in the reply.
        #[serde(default)]
        id: Option<u64>,
    },
    /// Answers the server's `ping` (any message counts as a sign of life).
    Pong {
        /// Ignored; accepted so that clients may echo ids.
        #[serde(default)]
        id: Option<u64>,
    },
    /// Replaces the connection's token with a fresh one before it expires.
    Refresh {
        /// Echoed in the reply.
        #[serde(default)]
        id: Option<u64>,
        /// The new token.
        token: String,
    },
}

/// Why a client message was refused; the message names the problem.
#[derive(Debug, Clone, PartialEq, Error)]
#[error("{message}")]
pub struct Rejection {
    /// Machine-readable code, see [`codes`].
    pub code: &'static str,
    /// Human-readable, naming the offending part.
    pub message: String,
    /// The request's `id`, when it could be read.
    pub id: Option<u64>,
}

/// Error codes of `error` frames.
pub mod codes {
    /// The frame could not be decoded (bad JSON/MessagePack, unknown type, wrong shape).
    pub const MALFORMED: &str = "malformed";
    /// The message decoded but a value is not acceptable (bad pattern, field, rate).
    pub const INVALID: &str = "invalid";
    /// The subscription limit per connection would be exceeded.
    pub const TOO_MANY_SUBSCRIPTIONS: &str = "too_many_subscriptions";
    /// More topics matched than a connection may hold; the rest are not delivered.
    pub const TOO_MANY_TOPICS: &str = "too_many_topics";
    /// `unsubscribe` named a pattern that is not subscribed.
    pub const NOT_SUBSCRIBED: &str = "not_subscribed";
    /// A token was missing, invalid or expired (a `refresh` refused).
    pub const UNAUTHORIZED: &str = "unauthorized";
    /// A pattern or topic is outside the topics the connection's token grants.
    pub const FORBIDDEN: &str = "forbidden";
}

impl Rejection {
    /// A rejection with a code and message.
    pub fn new(code: &'static str, message: impl Into<String>, id: Option<u64>) -> Self {
        Self {
            code,
            message: message.into(),
            id,
        }
    }
}

/// Decodes a text frame (JSON) or a binary frame (MessagePack), whatever the
/// connection's output format.
pub fn decode(data: &[u8], binary: bool) -> Result<ClientFrame, Rejection> {
    let malformed = |m: String| Rejection::new(codes::MALFORMED, m, None);
    if binary {
        rmp_serde::from_slice(data)
            .map_err(|e| malformed(format!("invalid MessagePack message: {e}")))
    } else {
        serde_json::from_slice(data).map_err(|e| malformed(format!("invalid JSON message: {e}")))
    }
}

/// A control message from the server.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame<'a> {
    /// The reply to `subscribe`.
    Subscribed {
        /// The request's id.
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
        /// The patterns now subscribed by this request.
        topics: &'a [String],
        /// For each topic in `since`: whether it was resumed.
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        recovered: BTreeMap<&'a str, bool>,
    },
    /// The reply to `unsubscribe`.
    Unsubscribed {
        /// The request's id.
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
        /// The patterns no longer subscribed.
        topics: &'a [String],
    },
    /// A request was refused or something went wrong with a subscription.
    Error {
        /// The request's id, if any.
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
        /// See [`codes`].
        code: &'a str,
        /// Names the problem.
        message: &'a str,
    },
    /// A topic was removed from the host; nothing more comes for this epoch.
    Removed {
        /// The topic.
        topic: &'a str,
        /// Its (now ended) epoch.
        epoch: &'a str,
    },
    /// Heartbeat from the server: answer with any message, e.g. `pong`.
    Ping {},
    /// The answer to the client's `ping`.
    Pong {
        /// The request's id.
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
    },
    /// The answer to an accepted `refresh`.
    Refreshed {
        /// The request's id.
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
        /// When the new token expires, Unix milliseconds (with the leeway).
        #[serde(skip_serializing_if = "Option::is_none")]
        expires_at: Option<u64>,
    },
}

impl ServerFrame<'_> {
    /// Encodes the frame.
    pub fn encode(&self, format: Format) -> Bytes {
        codec::encode(format, self)
    }
}

/// The server's `ping`, encoded once per format.
pub fn ping_bytes(format: Format) -> Bytes {
    static PING: [std::sync::OnceLock<Bytes>; 2] =
        [std::sync::OnceLock::new(), std::sync::OnceLock::new()];
    PING[format.index()]
        .get_or_init(|| ServerFrame::Ping {}.encode(format))
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_every_client_message() {
        let f = decode(
            br#"{"type":"subscribe","id":7,"topics":["a/*"],"fields":["p"],"max_rate_hz":2.5,
                "since":{"a/b":{"epoch":"e","seq":3}}}"#,
            false,
        )
        .unwrap();
        let ClientFrame::Subscribe { id, since, .. } = f else {
            panic!("{f:?}")
        };
        assert_eq!(id, Some(7));
        assert_eq!(since.unwrap()["a/b"].seq, 3);
        assert_eq!(
            decode(br#"{"type":"pong"}"#, false).unwrap(),
            ClientFrame::Pong { id: None }
        );
        let mp = rmp_serde::to_vec_named(&serde_json::json!({"type":"ping","id":1})).unwrap();
        assert_eq!(
            decode(&mp, true).unwrap(),
            ClientFrame::Ping { id: Some(1) }
        );
    }

    #[test]
    fn decode_errors_name_the_problem() {
        let e = decode(b"not json", false).unwrap_err();
        assert_eq!(e.code, codes::MALFORMED);
        assert!(e.message.starts_with("invalid JSON message"), "{e}");
        let e = decode(br#"{"type":"subscrib","topics":[]}"#, false).unwrap_err();
        assert!(e.message.contains("unknown variant `subscrib`"), "{e}");
        let e = decode(br#"{"type":"subscribe"}"#, false).unwrap_err();
        assert!(e.message.contains("missing field `topics`"), "{e}");
        let e = decode(br#"{"type":"subscribe","topics":[],"bogus":1}"#, false).unwrap_err();
        assert!(e.message.contains("unknown field `bogus`"), "{e}");
        let e = decode(&[0xc1], true).unwrap_err();
        assert!(e.message.starts_with("invalid MessagePack message"), "{e}");
    }

    #[test]
    fn control_frames_encode_in_both_formats() {
        let topics = vec!["a/*".to_string()];
        let f = ServerFrame::Subscribed {
            id: Some(1),
            topics: &topics,
            recovered: BTreeMap::from([("a/b", true)]),
        };
        let j: serde_json::Value = serde_json::from_slice(&f.encode(Format::Json)).unwrap();
        assert_eq!(
            j,
            serde_json::json!({"type":"subscribed","id":1,"topics":["a/*"],"recovered":{"a/b":true}})
        );
        let m: serde_json::Value = rmp_serde::from_slice(&f.encode(Format::MsgPack)).unwrap();
        assert_eq!(m, j);
        assert_eq!(&ping_bytes(Format::Json)[..], br#"{"type":"ping"}"#);
    }

    #[test]
    fn subprotocols_name_every_wire_once() {
        for name in SUBPROTOCOLS {
            let wire = wire_of_subprotocol(name.as_bytes()).unwrap();
            assert_eq!(subprotocol(wire), name);
        }
        assert_eq!(
            wire_of_subprotocol(b"wasmeter.v1.compact.msgpack"),
            Some(Wire::compact(Format::MsgPack))
        );
        assert_eq!(wire_of_subprotocol(b"wasmeter.v1.compact"), None);
    }
}
