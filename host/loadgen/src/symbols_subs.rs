//! The subscribers of the many-symbols scenario ([`crate::symbols`]): who
//! subscribes to what, and the timing of one subscriber's snapshots.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::fleet::FleetSpec;
use crate::sendlog::SendLog;
use crate::target::Kind;
use crate::wire::{self, FrameReader};

/// Longest a subscriber may wait for its snapshots.
const SNAPSHOT_BOUND: Duration = Duration::from_secs(300);

/// Who subscribes: a few subscribers of every symbol (dashboards, recorders;
/// up to 2 of them are timing connections) and many with a watchlist of a few
/// symbols each (exact names, spread evenly over the symbols).
#[derive(Debug, Clone, Serialize)]
pub struct Mix {
    /// Subscribers in all.
    pub subscribers: usize,
    /// Of which subscribers of every symbol (`bench/*`).
    pub all: usize,
    /// Symbols on each other subscriber's watchlist.
    pub watch: usize,
}

impl Mix {
    /// Topic subscriptions (hub slots) the mix makes with `symbols` symbols.
    pub fn slots(&self, symbols: usize) -> u64 {
        let watchers = self.subscribers.saturating_sub(self.all);
        (self.all * symbols + watchers * self.watch.min(symbols)) as u64
    }
}

fn subscribe(topics: &[String]) -> String {
    serde_json::json!({"type": "subscribe", "topics": topics}).to_string()
}

/// The fleet of `mix` over `symbols` symbols (JSON).
pub fn fleet_spec(
    addr: SocketAddr,
    mix: &Mix,
    symbols: usize,
    log: Arc<SendLog>,
    target: Kind,
) -> FleetSpec {
    let all = subscribe(&["bench/*".to_string()]);
    let timing = mix.all.min(2);
    let watchers = mix.subscribers.saturating_sub(mix.all);
    let watch = mix.watch.min(symbols);
    let mut bulk = vec![all.clone(); mix.all - timing];
    bulk.extend((0..watchers).map(|i| {
        let names: Vec<String> = (0..watch)
            .map(|j| format!("bench/S{}", (i * watch + j) % symbols))
            .collect();
        subscribe(&names)
    }));
    FleetSpec {
        addr,
        path: "/ws?format=json".into(),
        bulk,
        timing: vec![all; timing],
        tick: Duration::from_millis((mix.subscribers as u64 / 100).clamp(5, 100)),
        topics: symbols,
        log,
        frames_merge: target == Kind::Host,
        timeline: false,
    }
}

/// One subscriber of every symbol: from its `subscribe` to its last snapshot.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct SnapshotTiming {
    /// Seconds.
    pub secs: f64,
    /// Snapshot frames received.
    pub frames: u64,
    /// Their bytes on the wire (headers included).
    pub bytes: u64,
}

/// Subscribes to `bench/*` and times the arrival of all `symbols` snapshots.
pub fn time_snapshots(addr: SocketAddr, symbols: usize) -> Result<SnapshotTiming> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(async move {
            let (mut stream, left) = wire::connect(addr, None, "/ws?format=json").await?;
            let mut reader = FrameReader::new(left, 1 << 20);
            let mut out = SnapshotTiming::default();
            let started = Instant::now();
            let msg = subscribe(&["bench/*".to_string()]);
            stream.write_all(&wire::text_frame(msg.as_bytes())).await?;
            while out.frames < symbols as u64 {
                let left = SNAPSHOT_BOUND.saturating_sub(started.elapsed());
                let n = match tokio::time::timeout(left, stream.read(reader.spare())).await {
                    Err(_) => bail!(
                        "{} of {symbols} snapshots within {SNAPSHOT_BOUND:?}",
                        out.frames
                    ),
                    Ok(Ok(0)) => bail!("closed after {} of {symbols} snapshots", out.frames),
                    Ok(n) => n?,
                };
                reader.filled(n, |f| {
                    let head = &f.payload[..f.payload.len().min(40)];
                    if head.windows(10).any(|w| w == b"\"snapshot\"") {
                        out.frames += 1;
                        out.bytes += f.wire_len as u64;
                    }
                });
            }
            out.secs = started.elapsed().as_secs_f64();
            Ok(out)
        })
}
