//! One measured run against one server: a fresh directory and feed, the server,
//! the subscribers, the producer at a fixed rate, and readings of the server's
//! and the generator's CPU and memory over the measurement window.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use serde::Serialize;

use crate::fleet::{Fleet, FleetSpec, Timings};
use crate::procstat;
use crate::producer::{self, Feed, FeedShape, Producer};
use crate::sendlog::SendLog;
use crate::stamp;
use crate::stats::{Percentiles, ratio};
use crate::target::{Binaries, Kind, Target};

/// Wire format of the subscribers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// JSON text frames.
    Json,
    /// MessagePack binary frames.
    Msgpack,
}

/// What one streaming run does.
#[derive(Debug, Clone, Serialize)]
pub struct StreamSpec {
    /// Which server.
    pub target: Kind,
    /// Wire format.
    pub format: Format,
    /// Records appended per second.
    pub rate: u64,
    /// How they are appended: files, records per write.
    pub feed: FeedShape,
    /// Topics the records are spread over (round robin).
    pub topics: usize,
    /// Subscriber connections in all (timing ones included).
    pub subscribers: usize,
    /// Of which timing connections (subscribed to every topic).
    pub timing: usize,
    /// Bulk connections subscribe to every topic (fan-out) rather than one each.
    pub bulk_all_topics: bool,
    /// Length of the measurement window, seconds (after a 1 s warm-up).
    pub secs: f64,
    /// Where to write every timed record's send time and latency (see
    /// [`write_timeline`]), if anywhere.
    #[serde(skip)]
    pub timeline: Option<PathBuf>,
}

/// What one streaming run measured.
#[derive(Debug, Clone, Serialize)]
pub struct StreamResult {
    /// The run.
    pub spec: StreamSpec,
    /// Append-to-receive latency of every record of the window at the timing
    /// connections, merged records included (at the frame that carried them).
    pub latency: Percentiles,
    /// Records of the window represented by frames the timing connections
    /// received / records produced in the window (per connection): below 1,
    /// records never reached them.
    pub coverage: f64,
    /// Update frames per record represented: below 1, records were merged
    /// (several appended in one chunk, or conflated).
    pub frames_per_record: f64,
    /// Snapshots the timing connections got instead of updates (conflation).
    pub timing_snapshots: u64,
    /// Frames whose record was not newer than one received before for the
    /// topic (repeats or reordering).
    pub repeated: u64,
    /// Frames received per second by all subscribers together.
    pub delivered_per_sec: f64,
    /// Received bytes per frame, on average (headers included).
    pub bytes_per_frame: f64,
    /// Records the producer wrote per second.
    pub produced_per_sec: f64,
    /// Server CPU, percent of one core.
    pub server_cpu_pct: f64,
    /// Server resident memory at the end of the window, MiB.
    pub server_rss_mib: f64,
    /// Generator (this process) CPU, percent of one core.
    pub gen_cpu_pct: f64,
    /// Time to open and subscribe every connection, seconds.
    pub connect_secs: f64,
}

/// Longest wait, after the window, for its last records to reach the timing
/// connections.
const DRAIN: Duration = Duration::from_secs(2);

/// Bulk readers read every `tick`: often enough not to fill socket buffers,
/// rarely enough that one read returns many frames.
fn bulk_tick(subscribers: usize) -> Duration {
    Duration::from_millis((subscribers as u64 / 100).clamp(5, 100))
}

fn subscribe(topics: &[String]) -> String {
    serde_json::json!({"type": "subscribe", "topics": topics}).to_string()
}

/// A fresh run directory with an empty feed of one file, seeded with one
/// record per topic; returns the producer's log.
pub fn prepare(dir: &Path, topics: usize) -> Result<Arc<SendLog>> {
    prepare_feed(&FeedShape::ONE_FILE.at(dir), topics)
}

/// Seeds `feed` (its files new) with one record per topic; returns the
/// producer's log.
pub fn prepare_feed(feed: &Feed, topics: usize) -> Result<Arc<SendLog>> {
    for path in &feed.paths {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
    }
    producer::seed(feed, topics)
}

/// The request path for a format.
pub fn ws_path(format: Format) -> String {
    match format {
        Format::Json => "/ws?format=json".into(),
        Format::Msgpack => "/ws?format=msgpack".into(),
    }
}

/// Runs one streaming measurement in a new directory under `root`.
pub fn stream(spec: &StreamSpec, root: &Path, bins: &Binaries) -> Result<StreamResult> {
    let dir = tempfile::tempdir_in(root)?;
    let feed = spec.feed.at(dir.path());
    let log = prepare_feed(&feed, spec.topics)?;
    let target = Target::start(spec.target, dir.path(), bins)?;
    // Let the server take in the seed records (topics exist before subscribers).
    std::thread::sleep(Duration::from_millis(500));
    let all = vec!["bench/*".to_string()];
    let bulk_n = spec.subscribers - spec.timing;
    let bulk = (0..bulk_n)
        .map(|i| {
            if spec.bulk_all_topics {
                subscribe(&all)
            } else {
                subscribe(&[format!("bench/S{}", i % spec.topics)])
            }
        })
        .collect();
    let connecting = std::time::Instant::now();
    let fleet = Fleet::start(FleetSpec {
        addr: target.addr,
        path: ws_path(spec.format),
        bulk,
        timing: vec![subscribe(&all); spec.timing],
        tick: bulk_tick(spec.subscribers),
        topics: spec.topics,
        log: log.clone(),
        frames_merge: spec.target == Kind::Host,
        timeline: spec.timeline.is_some(),
    })?;
    let connect_secs = connecting.elapsed().as_secs_f64();
    // Snapshots of the subscribe are delivered before measuring.
    std::thread::sleep(Duration::from_millis(300));
    let producer = Producer::start(&feed, spec.rate, spec.topics, log.clone())?;
    std::thread::sleep(Duration::from_secs(1));

    let (server0, gen0) = (procstat::read(Some(target.pid()))?, procstat::read(None)?);
    let (frames0, bytes0) = fleet.received();
    let from = log.next();
    fleet.window.open(from);
    eprintln!("  connected and subscribed in {connect_secs:.2} s; measuring");
    std::thread::sleep(Duration::from_secs_f64(spec.secs));
    let to = log.next();
    fleet.window.close(to);
    let (frames1, bytes1) = fleet.received();
    let (server1, gen1) = (procstat::read(Some(target.pid()))?, procstat::read(None)?);

    // The window's last records get time to arrive; what has not by then is
    // counted as not delivered (coverage), not left out.
    let _ = fleet.drain(DRAIN);
    let produced_per_sec = producer.stop()?;
    let mut timings = fleet.finish()?;
    if let Some(dir) = &spec.timeline {
        write_timeline(dir, spec, &timings)?;
    }
    let expected = (to - from) * timings.connections;
    drop(target);
    let window = server1.at.duration_since(server0.at).as_secs_f64();
    let frames = (frames1 - frames0) as f64;
    Ok(StreamResult {
        spec: spec.clone(),
        latency: Percentiles::of(&mut timings.latencies_us),
        coverage: ratio(timings.represented as f64, expected as f64).unwrap_or(0.0),
        frames_per_record: ratio(timings.update_frames as f64, timings.represented as f64)
            .unwrap_or(0.0),
        timing_snapshots: timings.snapshots,
        repeated: timings.repeated,
        delivered_per_sec: frames / window,
        bytes_per_frame: if frames > 0.0 {
            (bytes1 - bytes0) as f64 / frames
        } else {
            0.0
        },
        produced_per_sec,
        server_cpu_pct: procstat::cpu_percent(&server0, &server1),
        server_rss_mib: server1.rss_bytes as f64 / (1 << 20) as f64,
        gen_cpu_pct: procstat::cpu_percent(&gen0, &gen1),
        connect_secs,
    })
}

/// What the idle-connection run measured.
#[derive(Debug, Clone, Serialize)]
pub struct IdleResult {
    /// Which server.
    pub target: Kind,
    /// Idle connections opened (after 100 warm-up connections).
    pub connections: usize,
    /// Server RSS before and after, MiB.
    pub rss_before_mib: f64,
    /// Server RSS with every connection open and idle, MiB.
    pub rss_after_mib: f64,
    /// (after - before) / connections.
    pub bytes_per_connection: f64,
}

/// Opens `connections` idle subscribers (each subscribed to one of 100 topics,
/// its snapshot received) and reads the server's RSS before and after.
pub fn idle(target: Kind, connections: usize, root: &Path, bins: &Binaries) -> Result<IdleResult> {
    const TOPICS: usize = 100;
    let dir = tempfile::tempdir_in(root)?;
    let log = prepare(dir.path(), TOPICS)?;
    let server = Target::start(target, dir.path(), bins)?;
    std::thread::sleep(Duration::from_millis(500));
    let spec = |n: usize| FleetSpec {
        addr: server.addr,
        path: ws_path(Format::Json),
        bulk: (0..n)
            .map(|i| subscribe(&[format!("bench/S{}", i % TOPICS)]))
            .collect(),
        timing: vec![],
        tick: Duration::from_millis(200),
        topics: TOPICS,
        log: log.clone(),
        frames_merge: target == Kind::Host,
        timeline: false,
    };
    let settle = || std::thread::sleep(Duration::from_secs(2));
    // Warm-up: lazily allocated runtime and allocator structures.
    let warm = Fleet::start(spec(100))?;
    settle();
    let before = procstat::read(Some(server.pid()))?;
    let fleet = Fleet::start(spec(connections))?;
    settle();
    let after = procstat::read(Some(server.pid()))?;
    fleet.finish()?;
    warm.finish()?;
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    Ok(IdleResult {
        target,
        connections,
        rss_before_mib: mib(before.rss_bytes),
        rss_after_mib: mib(after.rss_bytes),
        bytes_per_connection: (after.rss_bytes as f64 - before.rss_bytes as f64)
            / connections as f64,
    })
}

/// Writes every timed record of a run to `dir/<target>-<rate>-<start>.tsv`
/// (`sent_us`, `latency_us`; ordered by send time, one line per record and
/// timing connection): enough to see whether a tail is spread over the window
/// or made of stalls, and when they came.
fn write_timeline(dir: &Path, spec: &StreamSpec, timings: &Timings) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut rows: Vec<(u64, u64)> = timings
        .sent_us
        .iter()
        .copied()
        .zip(timings.latencies_us.iter().copied())
        .collect();
    rows.sort_unstable();
    let start = rows.first().map_or_else(stamp::now_us, |r| r.0) / 1_000_000;
    // The target's name on the command line (`--targets host`).
    let target = clap::ValueEnum::to_possible_value(&spec.target)
        .map_or_else(|| format!("{:?}", spec.target), |v| v.get_name().to_owned());
    let path = dir.join(format!("{target}-{}-{start}.tsv", spec.rate));
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path)?);
    writeln!(out, "sent_us\tlatency_us")?;
    for (sent, latency) in rows {
        writeln!(out, "{sent}\t{latency}")?;
    }
    out.flush()?;
    eprintln!("  timeline: {}", path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeline_lists_every_timed_record_by_send_time() {
        let dir = tempfile::tempdir().unwrap();
        let spec = StreamSpec {
            target: Kind::Host,
            format: Format::Json,
            rate: 30_000,
            feed: FeedShape::ONE_FILE,
            topics: 10,
            subscribers: 2,
            timing: 2,
            bulk_all_topics: false,
            secs: 1.0,
            timeline: Some(dir.path().to_path_buf()),
        };
        // Two connections' records, each in the order it received them.
        let timings = Timings {
            latencies_us: vec![300, 250, 900, 410],
            sent_us: vec![2_000_000_100, 2_000_000_050, 2_000_000_000, 2_000_000_100],
            ..Timings::default()
        };
        write_timeline(dir.path(), &spec, &timings).unwrap();
        let file = dir.path().join("host-30000-2000.tsv");
        let text = std::fs::read_to_string(&file).unwrap();
        assert_eq!(
            text,
            "sent_us\tlatency_us\n\
             2000000000\t900\n\
             2000000050\t250\n\
             2000000100\t300\n\
             2000000100\t410\n"
        );
    }
}
