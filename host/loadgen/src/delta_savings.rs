//! Delta savings: bytes on the wire with deltas versus full snapshots for the
//! built-in demo market feed.
//!
//! A JSON and a MessagePack subscriber take every topic of the demo; the bytes are
//! counted per category of topics: trade prints (`trades/*`, every field changes),
//! 24 h tickers (`ticker/*`, 2-3 of 20 fields change per update) and all. For each
//! `update` received, the subscriber applies the merge patch to the state it holds
//! and encodes, in the same format, the `snapshot` frame that would have carried
//! the whole new state at that position. Both sizes count the WebSocket header.

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

/// Savings of one format.
#[derive(Debug, Clone, Serialize)]
pub struct Savings {
    /// The format.
    pub format: Format,
    /// Market topics (`trades/*`).
    pub trades: Bytes,
    /// 24 h ticker topics (`ticker/*`).
    pub ticker: Bytes,
    /// Every topic (trades, derived metrics, system).
    pub all: Bytes,
}

/// Runs the demo at `rate` trades/s for `secs` and measures both formats.
pub fn measure(root: &Path, bins: &Binaries, rate: u32, secs: u64) -> Result<Vec<Savings>> {
    let dir = tempfile::tempdir_in(root)?;
    let target = Target::demo(dir.path(), bins, rate)?;
    let addr = target.addr;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let out = rt.block_on(async move {
        let run = |format| async move { subscriber(addr, format, secs).await };
        let (json, msgpack) = tokio::join!(run(Format::Json), run(Format::Msgpack));
        Ok::<_, anyhow::Error>(vec![json?, msgpack?])
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

async fn subscriber(addr: std::net::SocketAddr, format: Format, secs: u64) -> Result<Savings> {
    let (mut stream, left) = wire::connect(addr, None, &ws_path(format)).await?;
    stream
        .write_all(&wire::text_frame(
            br#"{"type":"subscribe","topics":["**"]}"#,
        ))
        .await?;
    let mut reader = FrameReader::new(left, 256 * 1024);
    let mut states: HashMap<String, Map<String, Value>> = HashMap::new();
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
            let topic = msg["topic"].as_str().unwrap_or_default().to_string();
            match msg["type"].as_str() {
                Some("snapshot") => {
                    let state = msg["state"].as_object().cloned().unwrap_or_default();
                    states.insert(topic, state);
                }
                Some("update") => {
                    let state = states.entry(topic.clone()).or_default();
                    apply(state, &msg["delta"]);
                    let snapshot = json!({
                        "type": "snapshot", "topic": topic, "epoch": msg["epoch"],
                        "seq": msg["seq"], "ts": msg["ts"], "state": state,
                    });
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
                _ => {}
            }
        });
    }
    Ok(Savings {
        format,
        trades,
        ticker,
        all,
    })
}
