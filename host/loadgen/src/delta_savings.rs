//! Delta savings: bytes on the wire with deltas versus full snapshots for the
//! built-in demo market feed.
//!
//! Four subscribers take every topic of the demo: JSON and MessagePack, each with
//! the default (map) envelope and with the compact one. The bytes are counted per
//! category of topics: trade prints (`trades/*`, every field changes), 24 h
//! tickers (`ticker/*`, 2-3 of 20 fields change per update) and all. For each
//! `update` received, the subscriber applies the merge patch to the state it holds
//! and encodes, in the same format and envelope, the `snapshot` frame that would
//! have carried the whole new state at that position (what that subscriber would
//! have received instead). Both sizes count the WebSocket header.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde::Serialize;
use serde_json::{Map, Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::run::{Format, ws_path};
use crate::target::{Binaries, Target};
use crate::wire::{self, FrameReader};

/// Bytes of one category of topics in one format.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Bytes {
    /// Updates received.
    pub updates: u64,
    /// Wire bytes of those updates (deltas).
    pub delta_bytes: u64,
    /// Wire bytes the same updates would take as full snapshots.
    pub snapshot_bytes: u64,
}

impl Bytes {
    /// How many fewer bytes the deltas take, percent.
    pub fn saving_pct(&self) -> f64 {
        if self.snapshot_bytes == 0 {
            return 0.0;
        }
        100.0 * (1.0 - self.delta_bytes as f64 / self.snapshot_bytes as f64)
    }
}

/// The envelope of a subscriber's data frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Envelope {
    /// `{"type":"update","topic":...}` (the default).
    Map,
    /// `[1, topic, seq, ts, delta]` (`?envelope=compact`).
    Compact,
}

/// Savings of one format and envelope.
#[derive(Debug, Clone, Serialize)]
pub struct Savings {
    /// The format.
    pub format: Format,
    /// The envelope.
    pub envelope: Envelope,
    /// Market topics (`trades/*`).
    pub trades: Bytes,
    /// 24 h ticker topics (`ticker/*`).
    pub ticker: Bytes,
    /// Every topic (trades, derived metrics, system).
    pub all: Bytes,
}

/// Runs the demo at `rate` trades/s for `secs` and measures both formats, each
/// with both envelopes.
pub fn measure(root: &Path, bins: &Binaries, rate: u32, secs: u64) -> Result<Vec<Savings>> {
    let dir = tempfile::tempdir_in(root)?;
    let target = Target::demo(dir.path(), bins, rate)?;
    let addr = target.addr;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let out = rt.block_on(async move {
        let run = |format, envelope| async move { subscriber(addr, format, envelope, secs).await };
        let (json, msgpack, compact_json, compact_msgpack) = tokio::join!(
            run(Format::Json, Envelope::Map),
            run(Format::Msgpack, Envelope::Map),
            run(Format::Json, Envelope::Compact),
            run(Format::Msgpack, Envelope::Compact),
        );
        Ok::<_, anyhow::Error>(vec![json?, msgpack?, compact_json?, compact_msgpack?])
    })?;
    drop(target);
    Ok(out)
}

fn decode(format: Format, payload: &[u8]) -> Option<Value> {
    match format {
        Format::Json => serde_json::from_slice(payload).ok(),
        Format::Msgpack => rmp_serde::from_slice(payload).ok(),
    }
}

fn encoded_len(format: Format, v: &Value) -> usize {
    let payload = match format {
        Format::Json => serde_json::to_vec(v).map(|b| b.len()).unwrap_or(0),
        Format::Msgpack => rmp_serde::to_vec_named(v).map(|b| b.len()).unwrap_or(0),
    };
    payload + ws_header_len(payload)
}

/// The header of a server (unmasked) frame of `len` payload bytes.
fn ws_header_len(len: usize) -> usize {
    match len {
        n if n < 126 => 2,
        n if n <= u16::MAX as usize => 4,
        _ => 10,
    }
}

/// RFC 7396 merge patch of a flat state.
fn apply(state: &mut Map<String, Value>, delta: &Value) {
    for (k, v) in delta.as_object().into_iter().flatten() {
        if v.is_null() {
            state.remove(k);
        } else {
            state.insert(k.clone(), v.clone());
        }
    }
}

/// A data frame, whatever its envelope.
enum Frame {
    Snapshot {
        topic: String,
        epoch: Value,
        state: Map<String, Value>,
    },
    Update {
        topic: String,
        seq: Value,
        ts: Value,
        delta: Value,
    },
    Other,
}

impl Frame {
    fn parse(msg: &Value) -> Self {
        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
        let object = |v: &Value| v.as_object().cloned().unwrap_or_default();
        match (msg, msg["type"].as_str()) {
            (Value::Array(a), _) if a.len() >= 6 && a[0] == 0 => Frame::Snapshot {
                topic: text(&a[1]),
                epoch: a[2].clone(),
                state: object(&a[5]),
            },
            (Value::Array(a), _) if a.len() >= 5 && a[0] == 1 => Frame::Update {
                topic: text(&a[1]),
                seq: a[2].clone(),
                ts: a[3].clone(),
                delta: a[4].clone(),
            },
            (_, Some("snapshot")) => Frame::Snapshot {
                topic: text(&msg["topic"]),
                epoch: msg["epoch"].clone(),
                state: object(&msg["state"]),
            },
            (_, Some("update")) => Frame::Update {
                topic: text(&msg["topic"]),
                seq: msg["seq"].clone(),
                ts: msg["ts"].clone(),
                delta: msg["delta"].clone(),
            },
            _ => Frame::Other,
        }
    }
}

/// The `snapshot` frame `envelope` would carry for `state` at (epoch, seq, ts).
fn snapshot_frame(
    envelope: Envelope,
    topic: &str,
    (epoch, seq, ts): (&Value, &Value, &Value),
    state: &Map<String, Value>,
) -> Value {
    match envelope {
        Envelope::Map => json!({
            "type": "snapshot", "topic": topic, "epoch": epoch,
            "seq": seq, "ts": ts, "state": state,
        }),
        Envelope::Compact => json!([0, topic, epoch, seq, ts, state]),
    }
}

fn path(format: Format, envelope: Envelope) -> String {
    match envelope {
        Envelope::Map => ws_path(format),
        Envelope::Compact => format!("{}&envelope=compact", ws_path(format)),
    }
}

async fn subscriber(
    addr: std::net::SocketAddr,
    format: Format,
    envelope: Envelope,
    secs: u64,
) -> Result<Savings> {
    let (mut stream, left) = wire::connect(addr, None, &path(format, envelope)).await?;
    stream
        .write_all(&wire::text_frame(
            br#"{"type":"subscribe","topics":["**"]}"#,
        ))
        .await?;
    let mut reader = FrameReader::new(left, 256 * 1024);
    // Per topic: its epoch (from its snapshot) and state.
    let mut states: HashMap<String, (Value, Map<String, Value>)> = HashMap::new();
    let (mut trades, mut ticker, mut all) = (Bytes::default(), Bytes::default(), Bytes::default());
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        let n = match tokio::time::timeout(Duration::from_millis(200), stream.read(reader.spare()))
            .await
        {
            Err(_) => continue,
            Ok(Ok(0)) => bail!("the demo host closed the connection"),
            Ok(r) => r?,
        };
        reader.filled(n, |f| {
            let Some(msg) = decode(format, f.payload) else {
                return;
            };
            match Frame::parse(&msg) {
                Frame::Snapshot {
                    topic,
                    epoch,
                    state,
                } => {
                    states.insert(topic, (epoch, state));
                }
                Frame::Update {
                    topic,
                    seq,
                    ts,
                    delta,
                } => {
                    let (epoch, state) = states.entry(topic.clone()).or_default();
                    apply(state, &delta);
                    let snapshot = snapshot_frame(envelope, &topic, (epoch, &seq, &ts), state);
                    let full = encoded_len(format, &snapshot) as u64;
                    let category = if topic.starts_with("trades/") {
                        Some(&mut trades)
                    } else if topic.starts_with("ticker/") {
                        Some(&mut ticker)
                    } else {
                        None
                    };
                    for b in [&mut all].into_iter().chain(category) {
                        b.updates += 1;
                        b.delta_bytes += f.wire_len as u64;
                        b.snapshot_bytes += full;
                    }
                }
                Frame::Other => {}
            }
        });
    }
    Ok(Savings {
        format,
        envelope,
        trades,
        ticker,
        all,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_of_both_envelopes_parse_alike() {
        let map = json!({"type": "update", "topic": "t", "epoch": "e", "seq": 3, "ts": 9,
            "delta": {"a": 1}});
        let compact = json!([1, "t", 3, 9, {"a": 1}]);
        for msg in [map, compact] {
            let Frame::Update {
                topic, seq, delta, ..
            } = Frame::parse(&msg)
            else {
                panic!("{msg}")
            };
            assert_eq!(
                (topic.as_str(), seq, delta),
                ("t", json!(3), json!({"a": 1}))
            );
        }
        let snap = json!([0, "t", "e", 3, 9, {"a": 1}, {"stream": true}]);
        let Frame::Snapshot { epoch, state, .. } = Frame::parse(&snap) else {
            panic!("{snap}")
        };
        assert_eq!((&epoch, state.len()), (&json!("e"), 1));
        let at = (&epoch, &json!(3), &json!(9));
        assert_eq!(
            snapshot_frame(Envelope::Compact, "t", at, &state),
            json!([0, "t", "e", 3, 9, {"a": 1}])
        );
        assert!(matches!(
            Frame::parse(&json!({"type": "ping"})),
            Frame::Other
        ));
    }
}
