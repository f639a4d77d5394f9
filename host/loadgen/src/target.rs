//! The server under test, as a child process: the real `wasmeter` binary with a
//! generated config, or this tool's own bare floor server. Both print
//! `...: listening on http://ADDR` as their first line of stdout.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result, anyhow};

use crate::fanout_metrics::Metric;
use crate::stamp;

/// Which server a run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// `wasmeter serve`: source, CSV collector, state, field delta, hub, server.
    Host,
    /// The bare floor: read appended bytes, broadcast each line pre-encoded.
    Floor,
}

/// The feed file every run appends to, relative to its directory.
pub const FEED: &str = "feed/bench.csv";

/// A running server; killed when dropped.
#[derive(Debug)]
pub struct Target {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
}

/// Paths a run needs.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// The `wasmeter` binary (the shipped build).
    pub host: PathBuf,
    /// Compiled-plugin cache shared by every host start (compiling is not measured).
    pub plugin_cache: PathBuf,
    /// The host keeps its metric history.
    pub history: bool,
    /// Shards of the host's pipeline (1: not sharded), keyed by symbol.
    pub shards: u32,
    /// Derived-metric plugins of the demo in the host's pipeline
    /// ([`crate::fanout_metrics::host_config`]).
    pub metrics: Vec<Metric>,
}

/// Symbols the bench host's quotas make room for unless a scenario says otherwise.
const DEFAULT_SYMBOLS: usize = 20_000;

/// The host's config for bench runs (see [`bench_config`]), with room for
/// 20,000 symbols and no stale-field sweep.
pub fn host_config(history: bool, shards: u32) -> String {
    bench_config(history, shards, DEFAULT_SYMBOLS, 0)
}

/// The host's config for bench runs: the built-in CSV collector (with the send
/// time as an extra column) and field delta, heartbeats far apart so that idle
/// connections stay idle, room for 10,000+ connections, quotas for `symbols`
/// symbols (each a topic and four sample series), the stale-field TTL asked for
/// (0: none), and `shards` shards keyed by the symbol column (1: not sharded).
pub fn bench_config(history: bool, shards: u32, symbols: usize, field_ttl_ms: u64) -> String {
    let quota = symbols * 5 + 1_000;
    let state = quota + 2_000;
    let shards = match shards {
        0 | 1 => String::new(),
        n => format!("shards = {n}\nshard_key = {{ csv_column = 0 }}\n"),
    };
    format!(
        r#"data_dir = "data"

[history]
enabled = {history}

[server]
listen = "127.0.0.1:0"

[server.limits]
max_connections = 30000
max_topics_per_connection = {quota}
ping_interval_ms = 3600000
client_timeout_ms = 7200000

[runtime]
max_topics_per_plugin = {quota}
max_series_per_plugin = {quota}

[state]
max_topics = {state}
field_ttl_ms = {field_ttl_ms}

[plugins.csv]
builtin = "csv-collector"
config = {{ topic_prefix = "bench", columns = "{columns}" }}

[plugins.delta]
builtin = "field-delta"

[sources.feed]
type = "file"
include = ["feed/*.csv"]
start_at = "beginning"

[pipelines.feed]
sources = ["feed"]
collector = "csv"
topics = ["bench"]
delta = "delta"
max_topics = {quota}
{shards}"#,
        columns = stamp::COLUMNS
    )
}

impl Target {
    /// Starts `kind` on the feed of `dir` (which must exist).
    pub fn start(kind: Kind, dir: &Path, bins: &Binaries) -> Result<Target> {
        let config = crate::fanout_metrics::host_config(bins.history, bins.shards, &bins.metrics);
        Self::start_with(kind, dir, bins, &config)
    }

    /// Starts `kind` on the feed of `dir`: the host with `config` (written to
    /// `dir/wasmeter.toml`, the plugin cache shared), or the floor server.
    pub fn start_with(kind: Kind, dir: &Path, bins: &Binaries, config: &str) -> Result<Target> {
        let data_dir = dir.join("data");
        let cmd = match kind {
            Kind::Host => {
                let path = dir.join("wasmeter.toml");
                std::fs::write(&path, config)?;
                share_cache(&data_dir, bins)?;
                let mut c = Command::new(&bins.host);
                c.args(["--log-level", "warn", "serve", "--config"])
                    .arg(&path)
                    .args(["--admin-listen", "127.0.0.1:0"]);
                c
            }
            Kind::Floor => {
                let mut c = Command::new(std::env::current_exe()?);
                c.arg("floor-server");
                for file in feed_files(dir)? {
                    c.arg("--file").arg(file);
                }
                c
            }
        };
        let target = spawn(kind, cmd, dir)?;
        if kind == Kind::Host {
            // The host compiled what the shared cache lacked before it listened.
            link_new(&data_dir.join("cache"), &bins.plugin_cache)?;
        }
        Ok(target)
    }

    /// Starts the host once on an empty feed with `config` and stops it, so
    /// that the shared plugin cache holds every plugin `config` loads: a
    /// measured host then loads compiled code, as every start but a host's
    /// first does, and neither its start nor its memory counts compilation.
    pub fn warm_cache(bins: &Binaries, config: &str, root: &Path) -> Result<()> {
        let dir = tempfile::tempdir_in(root)?;
        std::fs::create_dir_all(dir.path().join("feed"))?;
        std::fs::write(dir.path().join(FEED), b"")?;
        drop(Self::start_with(Kind::Host, dir.path(), bins, config)?);
        Ok(())
    }

    /// Starts `wasmeter serve` without a config: the built-in demo (market feed
    /// of six symbols at `rate` trades/s, every built-in plugin) in `dir`.
    pub fn demo(dir: &Path, bins: &Binaries, rate: u32) -> Result<Target> {
        share_cache(dir, bins)?;
        let mut c = Command::new(&bins.host);
        c.args(["--log-level", "warn", "serve", "--listen", "127.0.0.1:0"])
            .args(["--admin-listen", "127.0.0.1:0"])
            .arg("--demo-rate")
            .arg(rate.to_string())
            .arg("--data-dir")
            .arg(dir);
        let target = spawn(Kind::Host, c, dir)?;
        link_new(&dir.join("cache"), &bins.plugin_cache)?;
        Ok(target)
    }

    /// The process id, for CPU and memory readings.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// The feed files of the run directory `dir` (`dir/feed/*.csv`, seeded before
/// a server starts), in name order; at least `dir/feed/bench.csv`.
fn feed_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("feed"))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|e| e == "csv"))
        .collect();
    files.sort();
    if files.is_empty() {
        files.push(dir.join(FEED));
    }
    Ok(files)
}

/// Fills `data_dir/cache` with the shared compiled-plugin cache. The host only
/// trusts a private directory of its own (a symlink to one is refused, and the
/// host would compile every plugin at every start), so each artifact is hard
/// linked in: the same file, no copy.
fn share_cache(data_dir: &Path, bins: &Binaries) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::create_dir_all(&bins.plugin_cache)?;
    let cache = data_dir.join("cache");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&cache)?;
    link_new(&bins.plugin_cache, &cache)
}

/// Hard links every compiled plugin (`*.cwasm`) of `from` that `to` lacks
/// (not a file the host is still writing under another name).
fn link_new(from: &Path, to: &Path) -> Result<()> {
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        let compiled = entry.path().extension().is_some_and(|e| e == "cwasm");
        if compiled && entry.file_type()?.is_file() && !target.exists() {
            std::fs::hard_link(entry.path(), &target).with_context(|| {
                format!("link {} into {}", entry.path().display(), to.display())
            })?;
        }
    }
    Ok(())
}

/// Spawns `cmd` and reads the address from its first line of stdout.
fn spawn(kind: Kind, mut cmd: Command, dir: &Path) -> Result<Target> {
    let log = std::fs::File::create(dir.join(format!("{kind:?}.log")))?;
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .with_context(|| format!("start {kind:?}: {cmd:?}"))?;
    let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
    let mut first = String::new();
    stdout.read_line(&mut first)?;
    let addr = first
        .trim()
        .split_once("http://")
        .and_then(|(_, a)| a.trim_end_matches('/').parse().ok())
        .ok_or_else(|| {
            let _ = child.kill();
            anyhow!(
                "{kind:?} did not start (stdout: {first:?}); see {}",
                dir.display()
            )
        })?;
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in stdout.lines() {});
    Ok(Target { child, addr })
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
