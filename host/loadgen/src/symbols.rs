//! Many symbols: what topics, subscriptions and listings cost when a feed has
//! 1,000, 10,000 or 100,000 symbols (each trade makes a topic `bench/S<n>` and
//! four sample series `metrics/trade_*/S<n>`, whose topics the host creates
//! only once someone subscribes to them: nobody here does).
//!
//! One run per (server, symbol count), in a fresh directory:
//! 1. the feed holds one record per symbol plus `rounds` more rounds of them
//!    before the server starts (the host's plugins compiled by a start before,
//!    as for a host restarted); the host takes them in (its ingest time is
//!    timed, until the last record's topic shows it over REST);
//! 2. once the server is idle (checkpoints written), its RSS with the topics
//!    and no subscriber;
//! 3. (host) `GET /api/topics` paged through, 1,000 a page, every topic checked
//!    to come once and in order (the best of three passes); one largest page
//!    (10,000); `GET /metrics` scraped three times;
//! 4. (host) one subscriber of `bench/*` (every symbol): time and bytes until
//!    it has every snapshot, twice (the first encodes them, the second finds
//!    them encoded);
//! 5. the subscribers (see [`crate::symbols_subs`]), server RSS once they are
//!    settled, then a live window at `rate` records/s over every symbol with
//!    per-record accounting at the timing connections, RSS at its end and its
//!    peak over the window (checkpoints and snapshots come in bursts);
//! 6. server CPU over an idle window (no records): the background work that
//!    grows with topics (the TTL sweep, checkpoints).
//!
//! The floors: the bare broadcast server for RSS and the live window, and for
//! the per-topic costs (snapshot, paging, scrape) the same figure per topic at
//! the smallest symbol count of the invocation, so superlinear growth shows as
//! a ratio above 1.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Serialize;

use crate::fleet::Fleet;
use crate::http_get;
use crate::procstat;
use crate::producer::{FeedShape, Producer};
use crate::stats::{Percentiles, ratio};
use crate::symbols_setup as setup;
use crate::symbols_subs::{self as subs, Mix, SnapshotTiming};
use crate::target::{Binaries, FEED, Kind};

/// Longest the host may take to ingest the seed and rounds.
const INGEST_BOUND: Duration = Duration::from_secs(900);
/// Pause before reading memory, so that freed memory and settled tasks show.
const SETTLE: Duration = Duration::from_secs(2);
/// Longest wait for the server to become idle before costs are measured.
const SETTLE_BOUND: Duration = Duration::from_secs(60);
/// Below this CPU (percent of one core) the server counts as idle.
const IDLE_CPU_PCT: f64 = 15.0;
/// Topics per page when paging through `/api/topics` (the default page).
const PAGE: usize = 1_000;

/// What the scenario does, for every symbol count.
#[derive(Debug, Clone, Serialize)]
pub struct SymbolsSpec {
    /// Symbol counts, one run each per server.
    pub symbols: Vec<usize>,
    /// Rounds of one record per symbol appended after the seed, before start.
    pub rounds: u64,
    /// Who subscribes (see [`Mix`]).
    pub mix: Mix,
    /// Records per second over every symbol in the live window.
    pub rate: u64,
    /// Length of the live and idle windows, seconds.
    pub secs: f64,
    /// The host's `state.field_ttl_ms` (0: no TTL sweep).
    pub field_ttl_ms: u64,
}

/// What one run measured.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SymbolsResult {
    /// Which server.
    pub target: Option<Kind>,
    /// Symbols.
    pub symbols: usize,
    /// Topics the host lists (symbols and their sample series).
    pub topics: usize,
    /// Records in the feed before the start (seed + rounds).
    pub records: u64,
    /// Start of the server to the last record's topic being visible, seconds.
    pub ingest_secs: f64,
    /// Server RSS with the topics and no subscriber, MiB.
    pub rss_topics_mib: f64,
    /// Server RSS with every subscriber settled, MiB.
    pub rss_subscribed_mib: f64,
    /// Server RSS at the end of the live window, MiB.
    pub rss_live_mib: f64,
    /// Server peak RSS over the live window (`VmHWM` from its start), MiB: the
    /// bursts (checkpoints, snapshots) that a reading at its end can miss.
    pub rss_live_peak_mib: f64,
    /// Topic subscriptions over all subscribers (slots).
    pub slots: u64,
    /// Time to open and subscribe every subscriber, seconds.
    pub subscribe_secs: f64,
    /// `/api/topics` paged through.
    pub paging: Option<Paging>,
    /// `/metrics`, three scrapes: milliseconds each.
    pub metrics_ms: Vec<f64>,
    /// Bytes of a `/metrics` answer.
    pub metrics_bytes: usize,
    /// A subscriber of every symbol: first (encodes) and second (encoded).
    pub snapshots: Vec<SnapshotTiming>,
    /// Live window: latency of every record at the timing connections.
    pub latency: Percentiles,
    /// Records represented at the timing connections / records produced.
    pub coverage: f64,
    /// Frames received per second by all subscribers.
    pub delivered_per_sec: f64,
    /// Records written per second.
    pub produced_per_sec: f64,
    /// Server CPU in the live window, percent of one core.
    pub live_cpu_pct: f64,
    /// Server CPU with nothing appended, percent of one core.
    pub idle_cpu_pct: f64,
}

/// `/api/topics` paged through.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Paging {
    /// Pages of [`PAGE`] read.
    pub pages: usize,
    /// Topics listed (each once, in order: checked).
    pub topics: usize,
    /// Every page, seconds (the best of three passes).
    pub secs: f64,
    /// Slowest page over every pass, milliseconds.
    pub max_page_ms: f64,
    /// Bytes of every page together (the unpaged answer's size, about).
    pub bytes: usize,
    /// One page of 10,000 topics, milliseconds and bytes.
    pub big_page_ms: f64,
    /// Bytes of that page.
    pub big_page_bytes: usize,
}

/// The options of `wasmeter-loadgen symbols`.
#[derive(Debug, Clone, clap::Args)]
pub struct SymbolsArgs {
    /// Symbol counts (each a topic and four sample series).
    #[arg(long, value_delimiter = ',', default_values = ["1000", "10000"])]
    pub symbols: Vec<usize>,
    /// Rounds of one record per symbol in the feed before the start.
    #[arg(long, default_value_t = 10)]
    pub rounds: u64,
    /// Subscribers in all.
    #[arg(long, default_value_t = 1000)]
    pub subscribers: usize,
    /// Of which subscribers of every symbol (2 of them timing connections).
    #[arg(long, default_value_t = 10)]
    pub all: usize,
    /// Symbols on each other subscriber's watchlist.
    #[arg(long, default_value_t = 20)]
    pub watch: usize,
    /// Records per second over every symbol in the live window.
    #[arg(long, default_value_t = 10_000)]
    pub rate: u64,
    /// The host's `state.field_ttl_ms` (0: no TTL sweep).
    #[arg(long, default_value_t = 0)]
    pub field_ttl_ms: u64,
}

impl Default for SymbolsArgs {
    fn default() -> Self {
        Self {
            symbols: vec![1_000, 10_000],
            rounds: 10,
            subscribers: 1_000,
            all: 10,
            watch: 20,
            rate: 10_000,
            field_ttl_ms: 0,
        }
    }
}

/// Runs the scenario with `args` and the global options, writes
/// `symbols.{md,json}` to the output directory and prints the tables.
pub fn run(args: &SymbolsArgs, common: &crate::Common, root: &Path, bins: &Binaries) -> Result<()> {
    anyhow::ensure!(
        args.all <= args.subscribers,
        "--all {} is more than --subscribers {}",
        args.all,
        args.subscribers
    );
    let spec = SymbolsSpec {
        symbols: args.symbols.clone(),
        rounds: args.rounds,
        mix: Mix {
            subscribers: args.subscribers,
            all: args.all,
            watch: args.watch,
        },
        rate: args.rate,
        secs: common.secs,
        field_ttl_ms: args.field_ttl_ms,
    };
    let before = crate::report::loadavg();
    let runs = measure(&spec, &common.targets, root, bins)?;
    let after = crate::report::loadavg();
    let md = crate::symbols_report::markdown(&spec, &runs, (&before, &after));
    println!("{md}");
    std::fs::write(common.out.join("symbols.md"), &md)?;
    let json = serde_json::json!({ "spec": spec, "runs": runs, "loadavg": [before, after] });
    std::fs::write(
        common.out.join("symbols.json"),
        serde_json::to_string_pretty(&json)?,
    )?;
    Ok(())
}

/// Runs every symbol count against every target; returns the results.
pub fn measure(
    spec: &SymbolsSpec,
    targets: &[Kind],
    root: &Path,
    bins: &Binaries,
) -> Result<Vec<SymbolsResult>> {
    let mut out = Vec::new();
    for &symbols in &spec.symbols {
        for &target in targets {
            eprintln!("symbols: {target:?}, {symbols} symbols");
            let r = run_one(spec, target, symbols, root, bins)
                .with_context(|| format!("symbols {target:?} {symbols}"))?;
            eprintln!(
                "  topics {}, RSS {:.0} / {:.0} / {:.0} MiB (topics / subscribed / live), live peak {:.0} MiB, ingest {:.1} s",
                r.topics,
                r.rss_topics_mib,
                r.rss_subscribed_mib,
                r.rss_live_mib,
                r.rss_live_peak_mib,
                r.ingest_secs
            );
            out.push(r);
        }
    }
    Ok(out)
}

fn mib(r: &procstat::Reading) -> f64 {
    r.rss_bytes as f64 / (1 << 20) as f64
}

fn run_one(
    spec: &SymbolsSpec,
    target: Kind,
    symbols: usize,
    root: &Path,
    bins: &Binaries,
) -> Result<SymbolsResult> {
    let dir = tempfile::tempdir_in(root)?;
    let log = crate::run::prepare(dir.path(), symbols)?;
    let records = symbols as u64 * (1 + spec.rounds);
    if spec.rounds > 0 {
        setup::append_rounds(&dir.path().join(FEED), &log, symbols, spec.rounds)?;
    }
    let config = crate::target::bench_config(bins.history, 1, symbols, spec.field_ttl_ms);
    if target == Kind::Host {
        crate::target::Target::warm_cache(bins, &config, root)?;
    }
    let started = Instant::now();
    let server = crate::target::Target::start_with(target, dir.path(), bins, &config)?;
    let addr = server.addr;
    let mut r = SymbolsResult {
        target: Some(target),
        symbols,
        records,
        ..SymbolsResult::default()
    };
    match target {
        Kind::Host => wait_ingested(addr, symbols, records)?,
        // The floor keeps nothing per record: its topics exist once read.
        Kind::Floor => std::thread::sleep(Duration::from_secs(1)),
    }
    r.ingest_secs = started.elapsed().as_secs_f64();
    std::thread::sleep(SETTLE);
    // Checkpoints and the history writer finish what the ingest left them.
    settle(server.pid())?;
    r.rss_topics_mib = mib(&procstat::read(Some(server.pid()))?);

    if target == Kind::Host {
        // The best of three passes: the machine is shared.
        for _ in 0..3 {
            let p = page_through(addr)?;
            let best = r.paging.as_ref().is_none_or(|b| p.secs < b.secs);
            let slowest = r.paging.as_ref().map_or(0.0, |b| b.max_page_ms);
            if best {
                r.paging = Some(p);
            }
            if let Some(b) = r.paging.as_mut() {
                b.max_page_ms = b.max_page_ms.max(slowest);
            }
        }
        r.topics = r.paging.as_ref().map_or(0, |p| p.topics);
        for _ in 0..3 {
            let t = Instant::now();
            let a = http_get::get(addr, "/metrics")?;
            r.metrics_ms.push(t.elapsed().as_secs_f64() * 1e3);
            r.metrics_bytes = a.body.len();
        }
        for _ in 0..2 {
            r.snapshots.push(subs::time_snapshots(addr, symbols)?);
        }
    }

    let connecting = Instant::now();
    let fleet = Fleet::start(subs::fleet_spec(
        addr,
        &spec.mix,
        symbols,
        log.clone(),
        target,
    ))?;
    r.subscribe_secs = connecting.elapsed().as_secs_f64();
    r.slots = spec.mix.slots(symbols);
    std::thread::sleep(SETTLE);
    r.rss_subscribed_mib = mib(&procstat::read(Some(server.pid()))?);

    procstat::reset_peak_rss(Some(server.pid()))?;
    let producer = Producer::start(
        &FeedShape::ONE_FILE.at(dir.path()),
        spec.rate,
        symbols,
        log.clone(),
    )?;
    std::thread::sleep(Duration::from_secs(1));
    let s0 = procstat::read(Some(server.pid()))?;
    let (frames0, _) = fleet.received();
    let from = log.next();
    fleet.window.open(from);
    std::thread::sleep(Duration::from_secs_f64(spec.secs));
    let to = log.next();
    fleet.window.close(to);
    let (frames1, _) = fleet.received();
    let s1 = procstat::read(Some(server.pid()))?;
    let _ = fleet.drain(Duration::from_secs(5));
    r.produced_per_sec = producer.stop()?;
    r.rss_live_mib = mib(&procstat::read(Some(server.pid()))?);
    r.rss_live_peak_mib = procstat::peak_rss_bytes(Some(server.pid()))? as f64 / (1 << 20) as f64;
    r.live_cpu_pct = procstat::cpu_percent(&s0, &s1);
    let window = s1.at.duration_since(s0.at).as_secs_f64();
    r.delivered_per_sec = (frames1 - frames0) as f64 / window;

    std::thread::sleep(SETTLE);
    let i0 = procstat::read(Some(server.pid()))?;
    std::thread::sleep(Duration::from_secs_f64(spec.secs));
    let i1 = procstat::read(Some(server.pid()))?;
    r.idle_cpu_pct = procstat::cpu_percent(&i0, &i1);

    let mut timings = fleet.finish()?;
    let expected = (to - from) * timings.connections;
    r.latency = Percentiles::of(&mut timings.latencies_us);
    r.coverage = ratio(timings.represented as f64, expected as f64).unwrap_or(0.0);
    drop(server);
    Ok(r)
}

/// Waits (at most [`SETTLE_BOUND`]) until the server uses less than
/// [`IDLE_CPU_PCT`] of a core over half a second.
fn settle(pid: u32) -> Result<()> {
    let deadline = Instant::now() + SETTLE_BOUND;
    let mut last = procstat::read(Some(pid))?;
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        let now = procstat::read(Some(pid))?;
        if procstat::cpu_percent(&last, &now) < IDLE_CPU_PCT {
            return Ok(());
        }
        last = now;
    }
    eprintln!("  (still busy after {SETTLE_BOUND:?}; measuring anyway)");
    Ok(())
}

/// Polls the topic of the last record until it shows that record: the
/// pipeline takes records in order, so every earlier one is in too.
fn wait_ingested(addr: std::net::SocketAddr, symbols: usize, records: u64) -> Result<()> {
    let last = records - 1;
    let path = format!("/api/topics/bench/S{}", last % symbols as u64);
    let deadline = Instant::now() + INGEST_BOUND;
    loop {
        let a = http_get::get(addr, &path)?;
        if a.status == 200 {
            let v: serde_json::Value = serde_json::from_slice(&a.body)?;
            if v["state"]["recno"]
                .as_f64()
                .is_some_and(|n| n as u64 >= last)
            {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            bail!("the host did not take in {records} records within {INGEST_BOUND:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Pages through every topic, [`PAGE`] at a time, checking each is listed once
/// and in order; then reads one largest page.
fn page_through(addr: std::net::SocketAddr) -> Result<Paging> {
    let mut p = Paging::default();
    let mut after: Option<String> = None;
    let started = Instant::now();
    loop {
        let path = match &after {
            None => format!("/api/topics?limit={PAGE}"),
            Some(a) => format!(
                "/api/topics?limit={PAGE}&after={}",
                percent_encoding::utf8_percent_encode(a, percent_encoding::NON_ALPHANUMERIC)
            ),
        };
        let t = Instant::now();
        let (v, bytes) = http_get::get_json(addr, &path)?;
        p.max_page_ms = p.max_page_ms.max(t.elapsed().as_secs_f64() * 1e3);
        p.pages += 1;
        p.bytes += bytes;
        let topics = v["topics"].as_array().context("no `topics`")?;
        for t in topics {
            let name = t["name"].as_str().context("a topic without a name")?;
            if after.as_deref().is_some_and(|a| name <= a) {
                bail!("/api/topics: `{name}` listed out of order or twice");
            }
            after = Some(name.to_string());
            p.topics += 1;
        }
        match v["next"].as_str() {
            Some(next) if Some(next) == after.as_deref() => {}
            Some(next) => bail!("/api/topics: next `{next}` is not the page's last topic"),
            None => break,
        }
    }
    p.secs = started.elapsed().as_secs_f64();
    let t = Instant::now();
    let (_, bytes) = http_get::get_json(addr, "/api/topics?limit=10000")?;
    p.big_page_ms = t.elapsed().as_secs_f64() * 1e3;
    p.big_page_bytes = bytes;
    Ok(p)
}
