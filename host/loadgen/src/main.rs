//! `wasmeter-loadgen`: end-to-end benchmarks of a real `wasmeter` process, with
//! the bare floors (a tokio-tungstenite broadcast of appended lines, and notify's
//! own latency) measured in the same run. See BENCHMARKS.md.

mod backlog;
mod cluster;
mod cluster_phase;
mod cluster_redis;
mod cluster_report;
mod delta_savings;
mod export;
mod fanout_metrics;
mod fleet;
mod floor;
mod http_get;
mod notify_floor;
mod procstat;
mod producer;
mod report;
mod run;
mod sendlog;
mod stamp;
mod stats;
mod symbols;
mod symbols_report;
mod symbols_setup;
mod symbols_subs;
mod target;
mod wire;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};

use producer::FeedShape;
use report::Results;
use run::{Format, StreamSpec};
use target::{Binaries, Kind};

/// Load generator and benchmarks for wasmeter.
#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args)]
struct Common {
    /// The `wasmeter` binary (default: `$CARGO_TARGET_DIR/production/wasmeter`,
    /// else `target/production/wasmeter`: the build that is shipped).
    #[arg(long, global = true)]
    host_bin: Option<PathBuf>,
    /// Where results (JSON and markdown) are written.
    #[arg(long, global = true, default_value = "target/bench")]
    out: PathBuf,
    /// Measurement window of each streaming run, seconds.
    #[arg(long, global = true, default_value_t = 5.0)]
    secs: f64,
    /// Which servers to measure.
    #[arg(long, global = true, value_delimiter = ',', default_values = ["floor", "host"])]
    targets: Vec<Kind>,
    /// Keep the host's metric history (`[history] enabled`), as it does by default.
    #[arg(long, global = true, default_value_t = true, action = clap::ArgAction::Set)]
    history: bool,
    /// Shards of the host's pipeline (`shards` in its config; 1: not sharded),
    /// keyed by the symbol column.
    #[arg(long, global = true, default_value_t = 1)]
    shards: u32,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the whole matrix: notify floor, idle connections, latency, fan-out,
    /// fan-out with derived metrics, backlog catch-up, delta savings.
    All,
    /// Append-to-receive latency against subscriber count, host and floor.
    Latency {
        /// Records appended per second.
        #[arg(long, value_delimiter = ',', default_values = ["1000", "10000"])]
        rates: Vec<u64>,
        /// Subscriber counts.
        #[arg(long, value_delimiter = ',', default_values = ["1", "100", "1000", "10000"])]
        subscribers: Vec<usize>,
        /// Topics (symbols) the records go round robin over.
        #[arg(long, default_value_t = LATENCY_TOPICS)]
        topics: usize,
        /// Every subscriber takes every topic (`bench/*`) instead of one each.
        #[arg(long)]
        all_topics: bool,
        /// Files the topics are spread over (topic `t` goes to file `t % files`).
        #[arg(long, default_value_t = 1)]
        files: usize,
        /// Each record in a `write(2)` of its own, rather than the records due in
        /// the same millisecond in one write per file.
        #[arg(long)]
        one_per_write: bool,
        /// Runs each case this many times, the targets alternated (floor, host,
        /// floor, host, ...): each host run is compared with the floor run just
        /// before it, and the report adds the spread of those ratios.
        #[arg(long, default_value_t = 1)]
        rounds: usize,
        /// Derived-metric plugins of the demo to add to the host's pipeline
        /// (after the collector; the delta plugin is always there).
        #[arg(long, value_delimiter = ',')]
        metrics: Vec<fanout_metrics::Metric>,
        /// Writes every timed record's send time and latency of each run to a
        /// file in this directory (`<target>-<rate>-<start>.tsv`).
        #[arg(long)]
        timeline: Option<PathBuf>,
    },
    /// Most messages/s delivered against subscriber count, JSON and MessagePack.
    Fanout {
        /// Subscriber counts.
        #[arg(long, value_delimiter = ',', default_values = ["10", "100", "1000"])]
        subscribers: Vec<usize>,
        /// Formats.
        #[arg(long, value_delimiter = ',', default_values = ["json", "msgpack"])]
        formats: Vec<Format>,
    },
    /// Fan-out with the demo's derived metrics: floor, host, host with metrics.
    FanoutMetrics {
        /// Subscriber counts.
        #[arg(long, value_delimiter = ',', default_values = ["10", "100", "1000"])]
        subscribers: Vec<usize>,
        /// Formats.
        #[arg(long, value_delimiter = ',', default_values = ["json", "msgpack"])]
        formats: Vec<Format>,
    },
    /// Server memory per idle WebSocket connection.
    IdleConns {
        /// Idle connections to open.
        #[arg(long, default_value_t = 10_000)]
        connections: usize,
    },
    /// Backlog catch-up: records already appended, taken in as fast as possible.
    Backlog {
        /// Records in the backlog.
        #[arg(long, default_value_t = 1_000_000)]
        records: u64,
        /// Topics they are spread over.
        #[arg(long, default_value_t = 100)]
        topics: usize,
    },
    /// Bytes on the wire with deltas versus full snapshots, demo market feed.
    DeltaSavings {
        /// Demo trades per second.
        #[arg(long, default_value_t = 200)]
        rate: u32,
        /// Seconds to listen.
        #[arg(long, default_value_t = 20)]
        listen_secs: u64,
    },
    /// Bare notify latency: append to bytes read back after the event.
    FloorNotify {
        /// Appends to time.
        #[arg(long, default_value_t = 2000)]
        samples: usize,
    },
    /// Many symbols: memory, snapshots, topic listing and /metrics against the
    /// symbol count (each symbol a topic and four sample series).
    Symbols(symbols::SymbolsArgs),
    /// Samples/s an output sustains into VictoriaMetrics, against a bare client,
    /// and the host's CPU per 1,000 samples exported.
    Export(export::ExportArgs),
    /// Several hosts sharing topics through a real redis-server against one host
    /// with the memory broker, same feed and rate: delivered, latency, CPU, and
    /// Redis's time per publish.
    Cluster(cluster::ClusterArgs),
    /// (internal) The bare floor server on the feed files.
    FloorServer {
        /// The files to follow (one directory's).
        #[arg(long, required = true)]
        file: Vec<PathBuf>,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: std::net::SocketAddr,
    },
}

/// Topics of the latency runs: bulk subscribers take one each, round robin.
const LATENCY_TOPICS: usize = 100;
/// Topics of the fan-out runs: many, so that per-chunk coalescing merges little.
const FANOUT_TOPICS: usize = 1000;
/// Messages/s offered in fan-out runs (records/s x subscribers): twice the goal.
const FANOUT_OFFERED: u64 = 2_000_000;

fn main() -> Result<()> {
    let cli = Cli::parse();
    if let Command::FloorServer { file, listen } = &cli.command {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        return rt.block_on(floor::serve(file.clone(), *listen));
    }
    let nofile = procstat::raise_nofile();
    eprintln!("open-file limit: {nofile}");
    let common = &cli.common;
    let bins = Binaries {
        host: host_bin(common)?,
        plugin_cache: common.out.join("plugin-cache"),
        history: common.history,
        shards: common.shards,
        metrics: Vec::new(),
    };
    std::fs::create_dir_all(&common.out)?;
    let root = tempfile::tempdir()?;
    let mut res = Results {
        loadavg_before: report::loadavg(),
        ..Results::default()
    };
    let name = match &cli.command {
        Command::All => {
            res.notify_floor = Some(notify_floor::measure(root.path(), 2000)?);
            idle(&mut res, common, 10_000, root.path(), &bins)?;
            latency(
                &mut res,
                common,
                &[1000, 10_000],
                &[1, 100, 1000, 10_000],
                (DEFAULT_SHAPE, 1, None),
                root.path(),
                &bins,
            )?;
            fanout(
                &mut res,
                common,
                &[10, 100, 1000],
                &[Format::Json, Format::Msgpack],
                root.path(),
                &bins,
            )?;
            fanout_metrics::measure(
                &mut res.fanout_metrics,
                &[10, 100, 1000],
                &[Format::Json, Format::Msgpack],
                common.secs,
                root.path(),
                &bins,
            )?;
            backlog(&mut res, common, 1_000_000, 100, root.path(), &bins)?;
            res.delta_savings = delta_savings::measure(root.path(), &bins, 200, 20)?;
            symbols::run(&symbols::SymbolsArgs::default(), common, root.path(), &bins)?;
            "all"
        }
        Command::Latency {
            rates,
            subscribers,
            topics,
            all_topics,
            files,
            one_per_write,
            rounds,
            metrics,
            timeline,
        } => {
            res.latency_metrics = metrics.clone();
            let bins = Binaries {
                metrics: metrics.clone(),
                ..bins.clone()
            };
            let shape = Shape {
                topics: *topics,
                all_topics: *all_topics,
                feed: FeedShape {
                    files: (*files).max(1),
                    one_per_write: *one_per_write,
                },
            };
            latency(
                &mut res,
                common,
                rates,
                subscribers,
                (shape, (*rounds).max(1), timeline.as_deref()),
                root.path(),
                &bins,
            )?;
            "latency"
        }
        Command::Fanout {
            subscribers,
            formats,
        } => {
            fanout(&mut res, common, subscribers, formats, root.path(), &bins)?;
            "fanout"
        }
        Command::FanoutMetrics {
            subscribers,
            formats,
        } => {
            fanout_metrics::measure(
                &mut res.fanout_metrics,
                subscribers,
                formats,
                common.secs,
                root.path(),
                &bins,
            )?;
            "fanout-metrics"
        }
        Command::IdleConns { connections } => {
            idle(&mut res, common, *connections, root.path(), &bins)?;
            "idle-conns"
        }
        Command::Backlog { records, topics } => {
            backlog(&mut res, common, *records, *topics, root.path(), &bins)?;
            "backlog"
        }
        Command::DeltaSavings { rate, listen_secs } => {
            res.delta_savings = delta_savings::measure(root.path(), &bins, *rate, *listen_secs)?;
            "delta-savings"
        }
        Command::Symbols(args) => {
            symbols::run(args, common, root.path(), &bins)?;
            return Ok(());
        }
        Command::Export(args) => {
            export::run(args, &common.out, root.path(), &bins)?;
            return Ok(());
        }
        Command::Cluster(args) => {
            cluster::run(args, common.secs, &common.out, root.path(), &bins)?;
            return Ok(());
        }
        Command::FloorNotify { samples } => {
            res.notify_floor = Some(notify_floor::measure(root.path(), *samples)?);
            "floor-notify"
        }
        Command::FloorServer { .. } => unreachable!("handled above"),
    };
    res.loadavg_after = report::loadavg();
    let md = report::markdown(&res);
    println!("{md}");
    std::fs::write(common.out.join(format!("{name}.md")), &md)?;
    std::fs::write(
        common.out.join(format!("{name}.json")),
        serde_json::to_string_pretty(&res)?,
    )?;
    eprintln!("results in {}", common.out.display());
    Ok(())
}

fn host_bin(common: &Common) -> Result<PathBuf> {
    let bin = match &common.host_bin {
        Some(b) => b.clone(),
        None => std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("target"))
            .join("production/wasmeter"),
    };
    anyhow::ensure!(
        bin.is_file(),
        "no wasmeter binary at {} (build it: cargo build --profile production, or pass --host-bin)",
        bin.display()
    );
    Ok(bin)
}

fn idle(res: &mut Results, c: &Common, n: usize, root: &Path, bins: &Binaries) -> Result<()> {
    for &t in &c.targets {
        eprintln!("idle connections: {t:?} x {n}");
        res.idle
            .push(run::idle(t, n, root, bins).with_context(|| format!("idle {t:?}"))?);
    }
    Ok(())
}

fn backlog(
    res: &mut Results,
    c: &Common,
    records: u64,
    topics: usize,
    root: &Path,
    bins: &Binaries,
) -> Result<()> {
    for &t in &c.targets {
        eprintln!("backlog: {t:?}, {records} records over {topics} topics");
        let r = backlog::measure(t, records, topics, root, bins)
            .with_context(|| format!("backlog {t:?}"))?;
        eprintln!(
            "  {:.2} s, {:.0} records/s, coverage {:.2}%, server CPU {:.0}%",
            r.secs,
            r.records_per_sec,
            r.coverage * 100.0,
            r.server_cpu_pct
        );
        res.backlog.push(r);
    }
    Ok(())
}

fn stream(
    runs: &mut Vec<run::StreamResult>,
    spec: StreamSpec,
    root: &Path,
    bins: &Binaries,
) -> Result<()> {
    eprintln!(
        "{:?} {:?}: {} records/s, {} subscribers",
        spec.target, spec.format, spec.rate, spec.subscribers
    );
    let r = run::stream(&spec, root, bins).with_context(|| format!("{spec:?}"))?;
    eprintln!(
        "  p50 {} us, p99 {} us, delivered {:.0}/s, server CPU {:.0}%, generator CPU {:.0}%",
        r.latency.p50_us, r.latency.p99_us, r.delivered_per_sec, r.server_cpu_pct, r.gen_cpu_pct
    );
    runs.push(r);
    Ok(())
}

/// What the latency runs' subscribers take.
#[derive(Debug, Clone, Copy)]
struct Shape {
    /// Topics the records go round robin over.
    topics: usize,
    /// Every subscriber takes every topic.
    all_topics: bool,
    /// How the records are appended.
    feed: FeedShape,
}

const DEFAULT_SHAPE: Shape = Shape {
    topics: LATENCY_TOPICS,
    all_topics: false,
    feed: FeedShape::ONE_FILE,
};

/// Runs the latency cases: each (rate, subscribers) `rounds` times, the targets
/// alternated within each round.
fn latency(
    res: &mut Results,
    c: &Common,
    rates: &[u64],
    subscribers: &[usize],
    (shape, rounds, timeline): (Shape, usize, Option<&Path>),
    root: &Path,
    bins: &Binaries,
) -> Result<()> {
    for &rate in rates {
        for &subs in subscribers {
            for &target in (0..rounds).flat_map(|_| &c.targets) {
                let spec = StreamSpec {
                    target,
                    format: Format::Json,
                    rate,
                    feed: shape.feed,
                    topics: shape.topics,
                    subscribers: subs,
                    timing: subs.min(4),
                    bulk_all_topics: shape.all_topics,
                    secs: c.secs,
                    timeline: timeline.map(Path::to_path_buf),
                };
                stream(&mut res.latency, spec, root, bins)?;
            }
        }
    }
    Ok(())
}

fn fanout(
    res: &mut Results,
    c: &Common,
    subscribers: &[usize],
    formats: &[Format],
    root: &Path,
    bins: &Binaries,
) -> Result<()> {
    for &subs in subscribers {
        for &format in formats {
            for &target in &c.targets {
                let spec = StreamSpec {
                    target,
                    format,
                    rate: (FANOUT_OFFERED / subs as u64).clamp(1000, 50_000),
                    feed: FeedShape::ONE_FILE,
                    topics: FANOUT_TOPICS,
                    subscribers: subs,
                    timing: 2.min(subs),
                    bulk_all_topics: true,
                    secs: c.secs,
                    timeline: None,
                };
                stream(&mut res.fanout, spec, root, bins)?;
            }
        }
    }
    Ok(())
}
