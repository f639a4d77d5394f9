//! Several hosts through Redis: what `[broker] type = "redis"` delivers and
//! costs against one host with the memory broker, in the same run.
//!
//! Every round measures, each in a fresh directory with a freshly seeded feed
//! (one record per topic) and the same producer rate:
//! 1. the bare floor server with `hosts x subscribers` subscribers (optional);
//! 2. one host with the memory broker (the default) for each count of
//!    `--single` subscribers;
//! 3. `hosts` hosts with `[broker] type = "redis"` on one shared feed,
//!    through a fresh `redis-server` (free loopback port, own directory, no
//!    persistence): the first started takes the pipeline's lease (checked on
//!    its `/metrics`) and so reads the feed and publishes; the others serve
//!    what Redis relays. `subscribers` subscribers on each host.
//!
//! Every subscriber takes `bench/*` (every topic); the subscribers are opened in
//! fleets of up to `subscribers` connections (one per host in the Redis phase,
//! the same split on the single host), each with 2 timing connections that
//! account for every record (see [`crate::fleet`]). The measurement itself is
//! [`crate::cluster_phase`]; the tables [`crate::cluster_report`].

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Serialize;

use crate::cluster_phase::{self as phase, PhaseResult};
use crate::cluster_redis::{self as redis_server, RedisServer};
use crate::http_get;
use crate::target::{Binaries, FEED, Kind, Target};

/// Longest wait for a host to take the lease or to serve the seeded topics.
const READY_BOUND: Duration = Duration::from_secs(60);

/// The options of `wasmeter-loadgen cluster`.
#[derive(Debug, Clone, clap::Args)]
pub struct ClusterArgs {
    /// Records appended per second, in every phase (200: 600,000 frames/s to
    /// 3,000 subscribers, below what 2 cores deliver).
    #[arg(long, default_value_t = 200)]
    pub rate: u64,
    /// Topics (symbols) the records go round robin over.
    #[arg(long, default_value_t = 100)]
    pub topics: usize,
    /// Hosts sharing the topics through Redis.
    #[arg(long, default_value_t = 3)]
    pub hosts: usize,
    /// Subscribers per host of the Redis phase (and per fleet everywhere).
    #[arg(long, default_value_t = 1000)]
    pub subscribers: usize,
    /// Subscriber counts of the single host with the memory broker.
    #[arg(long, value_delimiter = ',', default_values = ["1000", "3000"])]
    pub single: Vec<usize>,
    /// Also measure the bare floor server with `hosts x subscribers` subscribers.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub floor: bool,
    /// Every phase is measured this many times, in turn.
    #[arg(long, default_value_t = 2)]
    pub rounds: usize,
}

/// Which servers a phase runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PhaseKind {
    /// The bare floor server.
    Floor,
    /// One host, memory broker.
    Memory,
    /// Several hosts, Redis broker.
    Redis,
}

/// One phase of a round.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Phase {
    /// Which servers.
    pub kind: PhaseKind,
    /// How many of them.
    pub hosts: usize,
    /// Subscribers over all of them.
    pub subscribers: usize,
}

/// Runs the scenario; writes `cluster.{md,json}` to `out` and prints the tables.
pub fn run(args: &ClusterArgs, secs: f64, out: &Path, root: &Path, bins: &Binaries) -> Result<()> {
    anyhow::ensure!(args.hosts >= 1, "--hosts must be at least 1");
    anyhow::ensure!(
        args.subscribers > phase::TIMING,
        "--subscribers must be more than {} (the timing connections of a fleet)",
        phase::TIMING
    );
    if let Some(n) = args.single.iter().find(|&&n| n % args.subscribers != 0) {
        bail!(
            "--single {n} is not a multiple of --subscribers {}",
            args.subscribers
        );
    }
    // Before anything starts: a missing redis-server is the first error.
    let redis_bin = redis_server::find()?;
    let mut phases = Vec::new();
    if args.floor {
        phases.push(Phase {
            kind: PhaseKind::Floor,
            hosts: 1,
            subscribers: args.hosts * args.subscribers,
        });
    }
    phases.extend(args.single.iter().map(|&subscribers| Phase {
        kind: PhaseKind::Memory,
        hosts: 1,
        subscribers,
    }));
    phases.push(Phase {
        kind: PhaseKind::Redis,
        hosts: args.hosts,
        subscribers: args.hosts * args.subscribers,
    });
    let before = crate::report::loadavg();
    let mut results = Vec::new();
    for round in 0..args.rounds {
        for &p in &phases {
            eprintln!(
                "cluster round {round}: {:?} x {}, {} subscribers, {} records/s",
                p.kind, p.hosts, p.subscribers, args.rate
            );
            let r = run_phase(args, p, secs, &redis_bin, root, bins)
                .with_context(|| format!("round {round}, {p:?}"))?;
            eprintln!(
                "  delivered {:.0} frames/s ({:.0} records/s), p50 {:.1} ms, p99 {:.1} ms, \
                 coverage {:.2}%, hosts CPU {:.0}%, redis CPU {:.0}%",
                r.delivered_frames_per_sec,
                r.delivered_records_per_sec,
                r.latency.p50_us as f64 / 1e3,
                r.latency.p99_us as f64 / 1e3,
                r.coverage * 100.0,
                r.hosts_cpu_pct,
                r.redis_cpu_pct.unwrap_or(0.0)
            );
            results.push((round, r));
        }
    }
    let after = crate::report::loadavg();
    let md = crate::cluster_report::markdown(args, secs, &results, (&before, &after));
    println!("{md}");
    std::fs::write(out.join("cluster.md"), &md)?;
    let runs: Vec<_> = results
        .iter()
        .map(|(round, r)| serde_json::json!({ "round": round, "result": r }))
        .collect();
    let json = serde_json::json!({
        "rate": args.rate, "topics": args.topics, "secs": secs,
        "runs": runs, "loadavg": [before, after],
    });
    std::fs::write(
        out.join("cluster.json"),
        serde_json::to_string_pretty(&json)?,
    )?;
    Ok(())
}

/// Starts the servers of `p` in a fresh directory and measures them.
fn run_phase(
    args: &ClusterArgs,
    p: Phase,
    secs: f64,
    redis_bin: &Path,
    root: &Path,
    bins: &Binaries,
) -> Result<PhaseResult> {
    let dir = tempfile::tempdir_in(root)?;
    let log = crate::run::prepare(dir.path(), args.topics)?;
    let spec = phase::Spec {
        phase: p,
        rate: args.rate,
        topics: args.topics,
        per_fleet: args.subscribers,
        secs,
        feed: dir.path().join(FEED),
        log,
    };
    match p.kind {
        PhaseKind::Floor => {
            let floor = Target::start_with(Kind::Floor, dir.path(), bins, "")?;
            // The floor keeps nothing per record: its topics exist once read.
            std::thread::sleep(Duration::from_millis(500));
            phase::measure(&spec, &[&floor], &["floor"], None)
        }
        PhaseKind::Memory => {
            let config = crate::target::bench_config(bins.history, 1, args.topics, 0);
            let host = Target::start_with(Kind::Host, dir.path(), bins, &config)?;
            wait_serving(&host, args.topics)?;
            phase::measure(&spec, &[&host], &["memory"], None)
        }
        PhaseKind::Redis => {
            let redis = RedisServer::start(redis_bin, dir.path())?;
            let mut hosts = Vec::new();
            for i in 0..p.hosts {
                let node = format!("node{i}");
                let host_dir = dir.path().join(&node);
                std::fs::create_dir_all(&host_dir)?;
                let config =
                    redis_config(bins.history, args.topics, dir.path(), &redis.url, &node)?;
                let host = Target::start_with(Kind::Host, &host_dir, bins, &config)?;
                if i == 0 {
                    // The first host takes the lease: it is the producer.
                    wait_metric(&host, "wasmeter_broker_leases_held", 1.0)?;
                }
                hosts.push(host);
            }
            for host in &hosts {
                wait_serving(host, args.topics)?;
            }
            let roles: Vec<&str> = (0..p.hosts)
                .map(|i| if i == 0 { "leader" } else { "follower" })
                .collect();
            let refs: Vec<&Target> = hosts.iter().collect();
            let r = phase::measure(&spec, &refs, &roles, Some(&redis))?;
            // The lease did not move during the run: the leader produced it all.
            let held = phase::metric(hosts[0].addr, "wasmeter_broker_leases_held")?;
            anyhow::ensure!(
                held == 1.0,
                "the first host lost the pipeline's lease during the run"
            );
            Ok(r)
        }
    }
}

/// The bench host's config (see [`crate::target::bench_config`]) reading the
/// feed of `run_dir` (shared by every host), publishing through Redis at `url`
/// as `node`.
pub fn redis_config(
    history: bool,
    topics: usize,
    run_dir: &Path,
    url: &str,
    node: &str,
) -> Result<String> {
    let local = r#"include = ["feed/*.csv"]"#;
    let base = crate::target::bench_config(history, 1, topics, 0);
    anyhow::ensure!(
        base.contains(local),
        "the bench config no longer has `{local}`: the shared feed cannot be set"
    );
    let feed: PathBuf = run_dir.join("feed").join("*.csv");
    let shared = format!("include = [{:?}]", feed.display().to_string());
    Ok(format!(
        "{}\n[broker]\ntype = \"redis\"\nurl = \"{url}\"\nnode = \"{node}\"\n",
        base.replace(local, &shared)
    ))
}

/// Waits (at most [`READY_BOUND`]) until `/metrics` of `host` shows `value` for
/// `name`.
fn wait_metric(host: &Target, name: &str, value: f64) -> Result<()> {
    let deadline = Instant::now() + READY_BOUND;
    while phase::metric(host.addr, name)? != value {
        if Instant::now() > deadline {
            bail!(
                "{name} of the host at {} is not {value} after {READY_BOUND:?}",
                host.addr
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// Waits (at most [`READY_BOUND`]) until `host` serves the last seeded topic
/// with its record: every topic exists before subscribers come.
fn wait_serving(host: &Target, topics: usize) -> Result<()> {
    let last = topics - 1;
    let path = format!("/api/topics/bench/S{last}");
    let deadline = Instant::now() + READY_BOUND;
    loop {
        let a = http_get::get(host.addr, &path)?;
        if a.status == 200 {
            let v: serde_json::Value = serde_json::from_slice(&a.body)?;
            if v["state"]["recno"]
                .as_f64()
                .is_some_and(|n| n as usize >= last)
            {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            bail!(
                "the host at {} did not serve {path} within {READY_BOUND:?}",
                host.addr
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_host_reads_the_shared_feed_through_redis() {
        let config = redis_config(
            false,
            10,
            Path::new("/run/x"),
            "redis://127.0.0.1:7/0",
            "n1",
        )
        .unwrap();
        assert!(
            config.contains(r#"include = ["/run/x/feed/*.csv"]"#),
            "{config}"
        );
        assert!(!config.contains(r#"include = ["feed/*.csv"]"#), "{config}");
        let broker = config.split_once("[broker]").unwrap().1;
        assert!(
            broker.contains("type = \"redis\"\nurl = \"redis://127.0.0.1:7/0\"\nnode = \"n1\"")
        );
    }
}
