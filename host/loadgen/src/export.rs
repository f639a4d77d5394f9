//! Export to a time-series database: samples/s an output sustains into a real
//! VictoriaMetrics, and the host's CPU per 1,000 samples exported.
//!
//! Each round, against a fresh VictoriaMetrics (Debian's `victoria-metrics`, its
//! own temp storage, a free loopback port):
//! 1. floor: the same samples the host will make, encoded as the output encodes
//!    them (remote_write, `batch` samples a request) before the clock starts,
//!    then posted one request after another over one connection;
//! 2. host without an output: `records` CSV records (4 samples each) appended at
//!    once, timed until the pipeline has made every sample (the pipeline's own
//!    cost, for the CPU difference);
//! 3. host with a remote_write output of every sample: the same, timed until the
//!    output has every sample acknowledged by the database.
//!
//! CPU comes from `/proc/<pid>/stat` of the host process; the database's CPU is
//! reported next to it (all share the machine's cores).

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Serialize;
use wasmeter_core::sample::{Label, MetricKind, Sample};

use crate::procstat;
use crate::target::{Binaries, Kind, Target, bench_config};

/// The goal: the plans' insert rate.
pub const GOAL_SAMPLES_PER_SEC: f64 = 100_000.0;

/// Longest any phase may take.
const BOUND: Duration = Duration::from_secs(300);

/// `export` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct ExportArgs {
    /// CSV records appended (4 samples each).
    #[arg(long, default_value_t = 250_000)]
    pub records: u64,
    /// Symbols they are spread over.
    #[arg(long, default_value_t = 100)]
    pub symbols: u64,
    /// Samples per request.
    #[arg(long, default_value_t = 5000)]
    pub batch: usize,
    /// Rounds (each: floor, host without, host with the output).
    #[arg(long, default_value_t = 2)]
    pub rounds: usize,
    /// The VictoriaMetrics binary.
    #[arg(long, default_value = "victoria-metrics")]
    pub victoria_metrics: PathBuf,
}

/// One round's figures.
#[derive(Debug, Clone, Serialize)]
pub struct ExportRound {
    /// Samples written.
    pub samples: u64,
    /// Floor: samples/s of a bare client posting the same batches.
    pub floor_per_sec: f64,
    /// Host without an output: samples made per second (the pipeline alone).
    pub pipeline_per_sec: f64,
    /// Host CPU seconds for that.
    pub pipeline_cpu_secs: f64,
    /// Host with the output: samples acknowledged by the database per second.
    pub host_per_sec: f64,
    /// Host CPU seconds for that.
    pub host_cpu_secs: f64,
    /// The database's CPU seconds while the host exported.
    pub db_cpu_secs: f64,
    /// Host CPU ms per 1,000 samples, with the output.
    pub cpu_ms_per_1000: f64,
    /// Of which the output's share: the difference to the run without.
    pub export_cpu_ms_per_1000: f64,
}

/// Runs the rounds and prints a markdown table.
pub fn run(args: &ExportArgs, out: &Path, root: &Path, bins: &Binaries) -> Result<()> {
    let load_before = crate::report::loadavg();
    let mut rounds = Vec::new();
    for round in 0..args.rounds {
        let r = one_round(args, root, bins).with_context(|| format!("round {round}"))?;
        eprintln!("round {round}: {r:?}");
        rounds.push(r);
    }
    let md = markdown(args, &rounds, &load_before, &crate::report::loadavg());
    println!("{md}");
    std::fs::create_dir_all(out)?;
    std::fs::write(out.join("export.md"), &md)?;
    std::fs::write(
        out.join("export.json"),
        serde_json::to_string_pretty(&rounds)?,
    )?;
    Ok(())
}

fn one_round(args: &ExportArgs, root: &Path, bins: &Binaries) -> Result<ExportRound> {
    let samples = args.records * 4;
    let base_ts = now_ms() - 3_600_000;
    // 1. The floor.
    let floor_per_sec = {
        let dir = tempfile::tempdir_in(root)?;
        let vm = Vm::start(&args.victoria_metrics, dir.path())?;
        let bodies = floor_bodies(args, base_ts);
        let agent = ureq::Agent::new_with_defaults();
        let url = format!("http://{}/api/v1/write", vm.addr);
        let started = Instant::now();
        for body in &bodies {
            let response = agent
                .post(&url)
                .header("Content-Encoding", "snappy")
                .header("Content-Type", "application/x-protobuf")
                .header("X-Prometheus-Remote-Write-Version", "0.1.0")
                .send(&body[..])?;
            if !response.status().is_success() {
                bail!("floor: HTTP {}", response.status());
            }
        }
        samples as f64 / started.elapsed().as_secs_f64()
    };
    // 2. The host without an output.
    let (pipeline_secs, pipeline_cpu_secs, _) = host_run(args, root, bins, base_ts, None)?;
    // 3. The host with one.
    let dir = tempfile::tempdir_in(root)?;
    let vm = Vm::start(&args.victoria_metrics, dir.path())?;
    let (host_secs, host_cpu_secs, db_cpu_secs) = host_run(args, root, bins, base_ts, Some(&vm))?;
    let per_1000 = |cpu: f64| cpu * 1000.0 / (samples as f64 / 1000.0);
    Ok(ExportRound {
        samples,
        floor_per_sec,
        pipeline_per_sec: samples as f64 / pipeline_secs,
        pipeline_cpu_secs,
        host_per_sec: samples as f64 / host_secs,
        host_cpu_secs,
        db_cpu_secs,
        cpu_ms_per_1000: per_1000(host_cpu_secs),
        export_cpu_ms_per_1000: per_1000(host_cpu_secs - pipeline_cpu_secs),
    })
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Record `n`: symbol, price, and its timestamp (a ms apart).
fn record(n: u64, symbols: u64, base_ts: i64) -> (String, f64, i64) {
    (
        format!("S{}", n % symbols),
        100.0 + (n % 997) as f64 * 0.25,
        base_ts + n as i64,
    )
}

/// The samples the CSV collector makes of the records, encoded in batches.
fn floor_bodies(args: &ExportArgs, base_ts: i64) -> Vec<Vec<u8>> {
    let mut counts = vec![0u64; args.symbols as usize];
    let mut all = Vec::with_capacity(args.records as usize * 4);
    for n in 0..args.records {
        let (symbol, price, ts) = record(n, args.symbols, base_ts);
        let c = &mut counts[(n % args.symbols) as usize];
        *c += 1;
        for (name, value, kind) in [
            ("trade_price", price, MetricKind::Gauge),
            ("trade_qty", 1.0, MetricKind::Gauge),
            ("trades_total", *c as f64, MetricKind::Counter),
            ("trade_volume_total", *c as f64, MetricKind::Counter),
        ] {
            all.push(Sample {
                name: name.into(),
                labels: vec![Label::new("symbol", symbol.clone())],
                value,
                kind,
                timestamp_ms: ts,
            });
        }
    }
    let refs: Vec<&Sample> = all.iter().collect();
    refs.chunks(args.batch)
        .map(|c| wasmeter_export::remote_write::encode(c, &[]))
        .collect()
}

/// Starts a host (with an output to `vm`, if given), appends the records at once
/// and waits until every sample is made (no output) or acknowledged (output).
/// Returns seconds, host CPU seconds and the database's CPU seconds.
fn host_run(
    args: &ExportArgs,
    root: &Path,
    bins: &Binaries,
    base_ts: i64,
    vm: Option<&Vm>,
) -> Result<(f64, f64, f64)> {
    let dir = tempfile::tempdir_in(root)?;
    std::fs::create_dir_all(dir.path().join("feed"))?;
    let mut config = bench_config(false, 1, args.symbols as usize, 0);
    let counter = match vm {
        Some(vm) => {
            config.push_str(&format!(
                "\n[outputs.vm]\nprotocol = \"remote_write\"\nurl = \"http://{}/api/v1/write\"\nbatch_samples = {}\nflush_ms = 200\n",
                vm.addr, args.batch
            ));
            "wasmeter_output_samples_sent_total"
        }
        None => "wasmeter_pipeline_samples_total",
    };
    let host = Target::start_with(Kind::Host, dir.path(), bins, &config)?;
    let mut feed = Vec::with_capacity(args.records as usize * 40);
    for n in 0..args.records {
        let (symbol, price, ts) = record(n, args.symbols, base_ts);
        writeln!(feed, "{symbol},{price},1,{ts},{n}")?;
    }
    let want = (args.records * 4) as f64;
    let host0 = procstat::read(Some(host.pid()))?;
    let db0 = vm.map(|v| procstat::read(Some(v.pid()))).transpose()?;
    let started = Instant::now();
    std::fs::write(dir.path().join("feed/export.csv"), &feed)?;
    loop {
        if crate::http_get::metric(host.addr, counter)? >= want {
            break;
        }
        if started.elapsed() > BOUND {
            bail!("{counter} did not reach {want} within {BOUND:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let secs = started.elapsed().as_secs_f64();
    let host1 = procstat::read(Some(host.pid()))?;
    let db_cpu = match (db0, vm) {
        (Some(d0), Some(v)) => procstat::read(Some(v.pid()))?.cpu_secs - d0.cpu_secs,
        _ => 0.0,
    };
    drop(host);
    Ok((secs, host1.cpu_secs - host0.cpu_secs, db_cpu))
}

/// A VictoriaMetrics process, killed when dropped.
struct Vm {
    child: Child,
    addr: SocketAddr,
}

impl Vm {
    fn start(bin: &Path, dir: &Path) -> Result<Vm> {
        let addr: SocketAddr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let child = Command::new(bin)
            .arg(format!("-storageDataPath={}", dir.join("vm").display()))
            .arg(format!("-httpListenAddr={addr}"))
            .arg("-loggerLevel=ERROR")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| {
                format!("start {} (Debian package victoria-metrics)", bin.display())
            })?;
        let vm = Vm { child, addr };
        let started = Instant::now();
        while crate::http_get::get(addr, "/health").map(|a| a.status).ok() != Some(200) {
            if started.elapsed() > Duration::from_secs(30) {
                bail!("victoria-metrics did not answer on {addr}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(vm)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn markdown(args: &ExportArgs, rounds: &[ExportRound], before: &str, after: &str) -> String {
    let mut md = format!(
        "### Export to VictoriaMetrics: {} records ({} samples) over {} symbols, remote_write, {} samples a request\n\n\
         Load average before: {before}; after: {after}.\n\n\
         | round | floor samples/s | host samples/s | / floor | / goal 100,000/s | pipeline alone samples/s | host CPU ms / 1,000 samples | of which export | DB CPU s |\n\
         |---|---|---|---|---|---|---|---|---|\n",
        args.records,
        args.records * 4,
        args.symbols,
        args.batch
    );
    for (i, r) in rounds.iter().enumerate() {
        md.push_str(&format!(
            "| {i} | {:.0} | {:.0} | {:.2} | {:.2} | {:.0} | {:.3} | {:.3} | {:.2} |\n",
            r.floor_per_sec,
            r.host_per_sec,
            r.host_per_sec / r.floor_per_sec,
            r.host_per_sec / GOAL_SAMPLES_PER_SEC,
            r.pipeline_per_sec,
            r.cpu_ms_per_1000,
            r.export_cpu_ms_per_1000,
            r.db_cpu_secs
        ));
    }
    md
}
