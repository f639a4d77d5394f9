//! Backlog catch-up: how fast a server takes in records that are already there.
//!
//! The server starts on a feed seeded with one record per topic; one timing
//! connection subscribes to every topic; then the whole backlog (e.g. 1,000,000
//! records) is appended in one `write(2)`. The run ends when the subscriber has
//! received the last record of every topic (each frame stands for the records of
//! its topic since the previous one, see [`crate::sendlog`]), at the bound, or
//! when nothing arrived for [`crate::fleet::STALL`]; records not represented by
//! then lower the coverage, even if they arrive later.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde::Serialize;

use crate::fleet::{Fleet, FleetSpec};
use crate::http_get;
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
    /// With the host's metric history on: from the append to the history
    /// holding every sample of the backlog, seconds (`None`: no history, or
    /// not all within the bound).
    pub history_secs: Option<f64>,
    /// Samples the history stored during the run / the backlog's samples.
    pub history_coverage: Option<f64>,
}

/// Samples the bench collector makes of each record (`trade_price`,
/// `trade_qty`, `trades_total`, `trade_volume_total`).
const SAMPLES_PER_RECORD: u64 = 4;

/// The host's counters of samples its history stored and refused (none
/// should be: see the records' timestamps).
const HISTORY_TAKEN: [&str; 2] = [
    "wasmeter_history_samples_written_total",
    "wasmeter_history_samples_refused_total",
];

/// Samples the host's history took: `[stored, refused]`.
fn history_taken(addr: std::net::SocketAddr) -> Result<[f64; 2]> {
    Ok([
        http_get::metric(addr, HISTORY_TAKEN[0])?,
        http_get::metric(addr, HISTORY_TAKEN[1])?,
    ])
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
        timeline: false,
    })?;
    std::thread::sleep(Duration::from_millis(300));

    let first = log.next();
    let end = first + records;
    let mut backlog = Vec::with_capacity(records as usize * 40);
    let sent = stamp::now_us();
    // A backlog spans time: each series' records are a millisecond apart,
    // after the seed's (a series' samples must be newer than its last), so
    // that the history stores every sample rather than refusing all but one
    // per series as duplicates of one millisecond.
    let now_ms = sent / 1000 + 1;
    for n in first..end {
        let ts_ms = now_ms + (n - first) / topics as u64;
        stamp::record_at(&mut backlog, topics, n, ts_ms);
    }
    fleet.window.open(first);
    fleet.window.close(end);
    log.wrote(first, end, sent);
    let history = target == Kind::Host && bins.history;
    let taken0 = match history {
        true => history_taken(server.addr)?,
        false => [0.0; 2],
    };
    let server0 = procstat::read(Some(server.pid()))?;
    let started = Instant::now();
    std::fs::OpenOptions::new()
        .append(true)
        .open(dir.path().join(FEED))?
        .write_all(&backlog)?;
    let drained = fleet.drain(BOUND);
    let secs = drained.at.duration_since(started).as_secs_f64();
    // Delivered is not done: the history must hold every sample too.
    let (history_secs, history_coverage) = match history {
        true => {
            let want = (records * SAMPLES_PER_RECORD) as f64;
            let (secs, stored) = history_catch_up(server.addr, taken0, want, started)?;
            (secs, Some(stored / want))
        }
        false => (None, None),
    };
    let server1 = procstat::read(Some(server.pid()))?;
    let timings = fleet.finish()?;
    let late = timings.represented.saturating_sub(drained.represented);
    if !drained.complete && late > 0 {
        eprintln!(
            "  {late} records arrived after the subscriber had received nothing for {} s: \
             they count as not delivered",
            crate::fleet::STALL.as_secs()
        );
    }
    drop(server);
    // What had arrived when the wait ended, not what came after it: a stall
    // must not shorten the time a run is measured over while its records count.
    let delivered = drained.represented.min(timings.represented);
    Ok(BacklogResult {
        target,
        records,
        topics,
        secs,
        records_per_sec: delivered as f64 / secs,
        coverage: delivered as f64 / records as f64,
        server_cpu_pct: procstat::cpu_percent(&server0, &server1),
        history_secs,
        history_coverage,
    })
}

/// Polls the host until its history took (stored or refused) `want` samples
/// more than `before` (or [`BOUND`] after `started`): when, counted from
/// `started` (`None`: not within the bound), and how many it stored.
fn history_catch_up(
    addr: std::net::SocketAddr,
    before: [f64; 2],
    want: f64,
    started: Instant,
) -> Result<(Option<f64>, f64)> {
    loop {
        let [stored, refused] = history_taken(addr)?;
        let stored = stored - before[0];
        if stored + refused - before[1] >= want {
            return Ok((Some(started.elapsed().as_secs_f64()), stored));
        }
        if started.elapsed() > BOUND {
            return Ok((None, stored));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
