//! One measured phase of the cluster scenario ([`crate::cluster`]): the
//! subscribers (fleets of up to `per_fleet` connections, spread over the
//! servers in turn), the producer at a fixed rate on the feed, and readings of
//! every server's, Redis's and the generator's CPU over the window, with
//! Redis's own command statistics of the window.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use serde::Serialize;

use crate::cluster::{Phase, PhaseKind};
use crate::cluster_redis::{CommandStat, RedisServer};
use crate::fleet::{Fleet, FleetSpec, Timings};
use crate::procstat;
use crate::producer::{Feed, Producer};
use crate::sendlog::SendLog;
use crate::stats::{Percentiles, ratio};
use crate::target::Target;

/// Timing connections per fleet.
pub const TIMING: usize = 2;
/// Longest wait, after the window, for its last records to reach the timing
/// connections of one fleet.
const DRAIN: Duration = Duration::from_secs(2);
/// The Redis broker's counters read from every host at the end of a run.
const BROKER_METRICS: [&str; 6] = [
    "wasmeter_broker_redis_published",
    "wasmeter_broker_redis_messages_applied",
    "wasmeter_broker_redis_duplicates",
    "wasmeter_broker_redis_gaps_repaired",
    "wasmeter_broker_redis_gaps_reset",
    "wasmeter_broker_redis_overflows",
];

/// What a phase does.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Which servers, how many subscribers.
    pub phase: Phase,
    /// Records appended per second.
    pub rate: u64,
    /// Topics the records go round robin over.
    pub topics: usize,
    /// Connections per fleet.
    pub per_fleet: usize,
    /// The measured window, seconds (after a 1 s warm-up).
    pub secs: f64,
    /// The feed file the producer appends to.
    pub feed: PathBuf,
    /// The producer's log, seeded.
    pub log: Arc<SendLog>,
}

/// One server of a phase.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ServerResult {
    /// `floor`, `memory`, `leader` (holds the lease, reads the feed, publishes)
    /// or `follower` (serves what Redis relays).
    pub role: String,
    /// Its subscribers.
    pub subscribers: usize,
    /// Frames its subscribers received per second.
    pub frames_per_sec: f64,
    /// Append-to-receive latency at its timing connections.
    pub latency: Percentiles,
    /// Records represented at its timing connections / records produced.
    pub coverage: f64,
    /// CPU over the window, percent of one core.
    pub cpu_pct: f64,
    /// Resident memory at the end of the window, MiB.
    pub rss_mib: f64,
    /// The Redis broker's counters at the end ([`BROKER_METRICS`], without the
    /// `wasmeter_broker_redis_` prefix), for Redis-phase hosts.
    pub broker: Vec<(String, f64)>,
}

/// What a phase measured.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseResult {
    /// The phase.
    pub phase: Phase,
    /// Records written per second.
    pub produced_per_sec: f64,
    /// Frames received per second by every subscriber.
    pub delivered_frames_per_sec: f64,
    /// Records a received frame stands for, on average, at the timing
    /// connections (above 1: records merged into one frame, or conflated).
    pub records_per_frame: f64,
    /// `delivered_frames_per_sec x records_per_frame`.
    pub delivered_records_per_sec: f64,
    /// Records represented at every timing connection / records produced.
    pub coverage: f64,
    /// Latency over every timing connection.
    pub latency: Percentiles,
    /// Frames not newer than one received before for their topic.
    pub repeated: u64,
    /// Snapshots the timing connections got instead of updates (conflation).
    pub timing_snapshots: u64,
    /// Every server's CPU together, percent of one core.
    pub hosts_cpu_pct: f64,
    /// `redis-server`'s CPU (Redis phase).
    pub redis_cpu_pct: Option<f64>,
    /// The generator's CPU (subscribers and producer).
    pub gen_cpu_pct: f64,
    /// Time to open and subscribe every connection, seconds.
    pub connect_secs: f64,
    /// Redis's `INFO commandstats` over the window (Redis phase).
    pub redis_commands: Vec<CommandStat>,
    /// Each server.
    pub servers: Vec<ServerResult>,
}

fn subscribe_all() -> String {
    serde_json::json!({"type": "subscribe", "topics": ["bench/*"]}).to_string()
}

/// The sum of the samples of `name` (a counter's `name_total`; any labels) on
/// `/metrics` of `addr`; 0 when absent.
pub fn metric(addr: SocketAddr, name: &str) -> Result<f64> {
    let a = crate::http_get::get(addr, "/metrics")?;
    anyhow::ensure!(a.status == 200, "/metrics of {addr}: status {}", a.status);
    Ok(sum_of(&String::from_utf8_lossy(&a.body), name))
}

/// The sum of the samples of `name` (or `name_total`) in exposition `text`.
fn sum_of(text: &str, name: &str) -> f64 {
    text.lines()
        .filter_map(|l| l.strip_prefix(name))
        .map(|rest| rest.strip_prefix("_total").unwrap_or(rest))
        .filter(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        .filter_map(|rest| rest.rsplit(' ').next()?.parse::<f64>().ok())
        .fold(0.0, |a, b| a + b)
}

/// Merges the timings of several fleets.
fn merge(all: &mut Timings, t: Timings) {
    all.latencies_us.extend(t.latencies_us);
    all.represented += t.represented;
    all.update_frames += t.update_frames;
    all.snapshots += t.snapshots;
    all.repeated += t.repeated;
    all.connections += t.connections;
}

/// Measures `servers` (with their `roles`) under the subscribers and rate of
/// `spec`; `redis` is read too when given.
pub fn measure(
    spec: &Spec,
    servers: &[&Target],
    roles: &[&str],
    redis: Option<&RedisServer>,
) -> Result<PhaseResult> {
    let fleets_n = spec.phase.subscribers.div_ceil(spec.per_fleet).max(1);
    let frames_merge = spec.phase.kind != PhaseKind::Floor;
    let connecting = std::time::Instant::now();
    let mut fleets = Vec::new();
    for i in 0..fleets_n {
        let n = spec
            .per_fleet
            .min(spec.phase.subscribers - i * spec.per_fleet);
        let server = i % servers.len();
        let fleet = Fleet::start(FleetSpec {
            addr: servers[server].addr,
            path: crate::run::ws_path(crate::run::Format::Json),
            bulk: vec![subscribe_all(); n.saturating_sub(TIMING)],
            timing: vec![subscribe_all(); TIMING.min(n)],
            tick: Duration::from_millis((n as u64 / 100).clamp(5, 100)),
            topics: spec.topics,
            log: spec.log.clone(),
            frames_merge,
            timeline: false,
        })?;
        fleets.push((server, n, fleet));
    }
    let connect_secs = connecting.elapsed().as_secs_f64();
    eprintln!("  connected and subscribed in {connect_secs:.2} s");
    // Snapshots of the subscribe are delivered before measuring.
    std::thread::sleep(Duration::from_millis(300));
    let producer = Producer::start(
        &Feed::single(spec.feed.clone()),
        spec.rate,
        spec.topics,
        spec.log.clone(),
    )?;
    std::thread::sleep(Duration::from_secs(1));

    let pids: Vec<u32> = servers.iter().map(|s| s.pid()).collect();
    let read_all = || -> Result<Vec<procstat::Reading>> {
        pids.iter().map(|&p| procstat::read(Some(p))).collect()
    };
    if let Some(r) = redis {
        r.reset_stats()?;
    }
    let s0 = read_all()?;
    let g0 = procstat::read(None)?;
    let r0 = redis.map(|r| procstat::read(Some(r.pid()))).transpose()?;
    let f0: Vec<u64> = fleets.iter().map(|(_, _, f)| f.received().0).collect();
    let from = spec.log.next();
    for (_, _, f) in &fleets {
        f.window.open(from);
    }
    std::thread::sleep(Duration::from_secs_f64(spec.secs));
    let to = spec.log.next();
    for (_, _, f) in &fleets {
        f.window.close(to);
    }
    let f1: Vec<u64> = fleets.iter().map(|(_, _, f)| f.received().0).collect();
    let s1 = read_all()?;
    let g1 = procstat::read(None)?;
    let r1 = redis.map(|r| procstat::read(Some(r.pid()))).transpose()?;
    let redis_commands = match redis {
        Some(r) => r.command_stats()?,
        None => Vec::new(),
    };

    // The window's last records get time to arrive; what has not by then is
    // counted as not delivered (coverage), not left out.
    for (_, _, f) in &fleets {
        let _ = f.drain(DRAIN);
    }
    let produced_per_sec = producer.stop()?;
    let window = s1[0].at.duration_since(s0[0].at).as_secs_f64();
    let mut out: Vec<ServerResult> = roles
        .iter()
        .enumerate()
        .map(|(i, role)| ServerResult {
            role: role.to_string(),
            cpu_pct: procstat::cpu_percent(&s0[i], &s1[i]),
            rss_mib: s1[i].rss_bytes as f64 / (1 << 20) as f64,
            ..ServerResult::default()
        })
        .collect();
    let mut per_server: Vec<Timings> = servers.iter().map(|_| Timings::default()).collect();
    for (k, (server, n, fleet)) in fleets.into_iter().enumerate() {
        out[server].subscribers += n;
        out[server].frames_per_sec += (f1[k] - f0[k]) as f64 / window;
        merge(&mut per_server[server], fleet.finish()?);
    }
    let expected = to - from;
    let mut all = Timings::default();
    for (s, mut t) in out.iter_mut().zip(per_server) {
        s.coverage = ratio(t.represented as f64, (expected * t.connections) as f64).unwrap_or(0.0);
        s.latency = Percentiles::of(&mut t.latencies_us);
        merge(&mut all, t);
    }
    if spec.phase.kind == PhaseKind::Redis {
        for (s, server) in out.iter_mut().zip(servers) {
            for name in BROKER_METRICS {
                let short = name.trim_start_matches("wasmeter_broker_redis_");
                s.broker
                    .push((short.to_string(), metric(server.addr, name)?));
            }
        }
    }
    let delivered_frames_per_sec: f64 = out.iter().map(|s| s.frames_per_sec).sum();
    let records_per_frame = ratio(
        all.represented as f64,
        (all.update_frames + all.snapshots) as f64,
    )
    .unwrap_or(0.0);
    Ok(PhaseResult {
        phase: spec.phase,
        produced_per_sec,
        delivered_frames_per_sec,
        records_per_frame,
        delivered_records_per_sec: delivered_frames_per_sec * records_per_frame,
        coverage: ratio(all.represented as f64, (expected * all.connections) as f64).unwrap_or(0.0),
        latency: Percentiles::of(&mut all.latencies_us),
        repeated: all.repeated,
        timing_snapshots: all.snapshots,
        hosts_cpu_pct: out.iter().map(|s| s.cpu_pct).sum(),
        redis_cpu_pct: r0.zip(r1).map(|(a, b)| procstat::cpu_percent(&a, &b)),
        gen_cpu_pct: procstat::cpu_percent(&g0, &g1),
        connect_secs,
        redis_commands,
        servers: out,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn sums_a_metric_and_its_counter_samples_only() {
        let text = "# TYPE wasmeter_broker_redis_published counter\n\
            wasmeter_broker_redis_published_total 120\n\
            wasmeter_broker_redis_published_bytes_total 9\n\
            wasmeter_broker_leases_held 1\n\
            wasmeter_pipeline_x{pipeline=\"a\"} 2\n\
            wasmeter_pipeline_x{pipeline=\"b\"} 3\n";
        assert_eq!(
            super::sum_of(text, "wasmeter_broker_redis_published"),
            120.0
        );
        assert_eq!(super::sum_of(text, "wasmeter_broker_leases_held"), 1.0);
        assert_eq!(super::sum_of(text, "wasmeter_pipeline_x"), 5.0);
        assert_eq!(super::sum_of(text, "wasmeter_absent"), 0.0);
    }
}
