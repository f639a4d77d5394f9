//! The bytes of a message: the body stored in history and the frame published.
//!
//! Body (JSON, written by the publisher, stored as-is in the stream and the topic
//! hash): `{"topic","delta","stale","state","ts","event"}`. The position is not in
//! the body: the publish script assigns it, so the frame on the channel is
//! `c|<seq>|<epoch>|<body>`; a removal is `r|<epoch>|<topic>`.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use wasmeter_core::change::TopicChange;
use wasmeter_core::delta::Delta;
use wasmeter_core::field::TopicState;

use crate::Positioned;

#[derive(Serialize)]
struct BodyOut<'a> {
    topic: &'a str,
    delta: &'a Delta,
    stale: &'a [String],
    state: &'a TopicState,
    ts: i64,
    event: bool,
}

#[derive(Deserialize)]
struct BodyIn {
    topic: String,
    delta: Delta,
    #[serde(default)]
    stale: Vec<String>,
    state: TopicState,
    ts: i64,
    #[serde(default)]
    event: bool,
}

/// The body of a change, as stored and published.
pub(crate) fn encode_body(c: &TopicChange) -> Vec<u8> {
    serde_json::to_vec(&BodyOut {
        topic: &c.topic,
        delta: &c.delta,
        stale: &c.stale,
        state: &c.state,
        ts: c.timestamp_ms,
        event: c.event,
    })
    .expect("a topic change always serialises")
}

/// A change read back from its body, at its position.
pub(crate) fn decode_body(epoch: Arc<str>, seq: u64, body: &[u8]) -> Result<Positioned, String> {
    let b: BodyIn = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    Ok(Positioned {
        epoch,
        prev_seq: seq.saturating_sub(1),
        seq,
        change: TopicChange {
            topic: b.topic.into(),
            delta: b.delta,
            stale: b.stale,
            state: Arc::new(b.state),
            timestamp_ms: b.ts,
            event: b.event,
        },
    })
}

/// What arrived on the change channel.
#[derive(Debug)]
pub(crate) enum Frame {
    /// A published change.
    Change(Positioned),
    /// A topic removed by its producer, in the epoch it had.
    Removed {
        /// The epoch removed.
        epoch: Arc<str>,
        /// The topic.
        topic: Arc<str>,
    },
}

/// Parses a frame published by the scripts.
pub(crate) fn decode_frame(bytes: &[u8]) -> Result<Frame, String> {
    let mut parts = bytes.splitn(4, |b| *b == b'|');
    let kind = parts.next().ok_or("empty frame")?;
    let text = |p: Option<&[u8]>, what: &str| -> Result<String, String> {
        let p = p.ok_or_else(|| format!("frame without {what}"))?;
        String::from_utf8(p.to_vec()).map_err(|_| format!("{what} is not UTF-8"))
    };
    match kind {
        b"c" => {
            let seq: u64 = text(parts.next(), "seq")?
                .parse()
                .map_err(|_| "seq is not a number".to_string())?;
            let epoch = text(parts.next(), "epoch")?;
            let body = parts.next().ok_or("frame without body")?;
            decode_body(epoch.into(), seq, body).map(Frame::Change)
        }
        b"r" => {
            let mut rest = bytes[2..].splitn(2, |b| *b == b'|');
            let epoch = text(rest.next(), "epoch")?;
            let topic = text(rest.next(), "topic")?;
            Ok(Frame::Removed {
                epoch: epoch.into(),
                topic: topic.into(),
            })
        }
        _ => Err("unknown frame kind".into()),
    }
}

/// A fresh random epoch: 128 bits, hex (never contains `|`).
pub(crate) fn fresh_epoch() -> String {
    format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmeter_core::field::FieldValue;

    #[test]
    fn frames_round_trip() {
        let mut state = TopicState::new();
        state.insert("p|x".into(), FieldValue::Number(1.5));
        let c = TopicChange {
            topic: "a|b".into(),
            delta: Delta {
                changed: vec![("p|x".into(), FieldValue::Number(1.5))],
                removed: vec!["q".into()],
            },
            stale: vec!["z".into()],
            state: Arc::new(state),
            timestamp_ms: 7,
            event: false,
        };
        let mut frame = b"c|42|ep|".to_vec();
        frame.extend(encode_body(&c));
        match decode_frame(&frame).unwrap() {
            Frame::Change(p) => {
                assert_eq!((&*p.epoch, p.prev_seq, p.seq), ("ep", 41, 42));
                assert_eq!(p.change, c);
            }
            f => panic!("{f:?}"),
        }
        match decode_frame(b"r|ep|a|b").unwrap() {
            Frame::Removed { epoch, topic } => assert_eq!((&*epoch, &*topic), ("ep", "a|b")),
            f => panic!("{f:?}"),
        }
        assert!(decode_frame(b"x|1").is_err());
        assert!(decode_frame(b"c|nope|e|{}").is_err());
    }
}
