//! Backlog catch-up: how fast a server takes in records that are already there.
//!
//! The server starts on a feed seeded with one record per topic; one timing
//! connection subscribes to every topic; then the whole backlog (e.g. 1,000,000
//! records) is appended in one `write(2)`. The run ends when the subscriber has
//! received the last record of every topic (each frame stands for the records of
//! its topic since the previous one, see [`crate::sendlog`]), or at the bound;
//! records not represented by then lower the coverage.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde::Serialize;

use crate::fleet::{Fleet, FleetSpec};
use crate::procstat;
use crate::run::{Format, prepare, ws_path};
use crate::stamp;
use crate::target::{Binaries, FEED, Kind, Target};

/// Longest a catch-up may take.
const BOUND: Duration = Duration::from_secs(180);

/// What one catch-up run measured.
#[derive(Debug, Clone, Serialize)]
pub struct BacklogResult {
    /// Which server.
    pub target: Kind,
    /// Records in the backlog.
    pub records: u64,
    /// Topics they are spread over.
    pub topics: usize,
    /// From the append to the last record of every topic received, seconds.
    pub secs: f64,
    /// Records represented by received frames per second of catch-up.
    pub records_per_sec: f64,
    /// Records represented by received frames / records appended.
    pub coverage: f64,
    /// Server CPU over the catch-up, percent of one core.
    pub server_cpu_pct: f64,
}

/// Appends `records` records over `topics` topics at once and times the catch-up.
pub fn measure(
    target: Kind,
    records: u64,
    topics: usize,
    root: &Path,
    bins: &Binaries,
) -> Result<BacklogResult> {
    let dir = tempfile::tempdir_in(root)?;
    let log = prepare(dir.path(), topics)?;
    let server = Target::start(target, dir.path(), bins)?;
    // Let the server take in the seed records (topics exist before subscribers).
    std::thread::sleep(Duration::from_millis(500));
    let fleet = Fleet::start(FleetSpec {
        addr: server.addr,
        path: ws_path(Format::Json),
        bulk: Vec::new(),
        timing: vec![serde_json::json!({"type": "subscribe", "topics": ["bench/*"]}).to_string()],
        tick: Duration::from_millis(100),
        topics,
        log: log.clone(),
        frames_merge: target == Kind::Host,
    })?;
    std::thread::sleep(Duration::from_millis(300));

    let first = log.next();
    let end = first + records;
    let mut backlog = Vec::with_capacity(records as usize * 40);
    let sent = stamp::now_us();
    for n in first..end {
        stamp::record(&mut backlog, topics, n, sent);
    }
    fleet.window.open(first);
    fleet.window.close(end);
    log.wrote(first, end, sent);
    let server0 = procstat::read(Some(server.pid()))?;
    let started = Instant::now();
    std::fs::OpenOptions::new()
        .append(true)
        .open(dir.path().join(FEED))?
        .write_all(&backlog)?;
    let last = fleet.drain(BOUND);
    let secs = last.duration_since(started).as_secs_f64();
    let server1 = procstat::read(Some(server.pid()))?;
    let timings = fleet.finish()?;
    drop(server);
    Ok(BacklogResult {
        target,
        records,
        topics,
        secs,
        records_per_sec: timings.represented as f64 / secs,
        coverage: timings.represented as f64 / records as f64,
        server_cpu_pct: procstat::cpu_percent(&server0, &server1),
    })
}
