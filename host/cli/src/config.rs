//! The TOML configuration: sources, plugins, pipelines, server, limits.
//!
//! Parsed into plain serde structs (`deny_unknown_fields`, units in the key
//! names), then checked once by [`Config::validate`]. Every error names the file,
//! the key and the problem. See `docs/CONFIG.md` for the reference.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;
use wasmeter_control::known;

/// A configuration problem, naming where it is.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {cause}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why (in the message, not a separate cause: it would be printed twice).
        cause: std::io::Error,
    },
    /// The TOML did not parse or did not fit the schema.
    #[error("{origin}: {message}")]
    Parse {
        /// The file (or "built-in default").
        origin: String,
        /// toml's message: line, column, key and problem.
        message: String,
    },
    /// A value is inconsistent with the rest.
    #[error("{origin}: {key}: {problem}")]
    Invalid {
        /// The file.
        origin: String,
        /// The dotted key, e.g. `pipelines.trades.collector`.
        key: String,
        /// What is wrong.
        problem: String,
    },
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where checkpoints and the compiled-plugin cache live. Relative paths are
    /// resolved against the config file's directory.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// The HTTP/WebSocket server.
    #[serde(default)]
    pub server: ServerSection,
    /// Plugin runtime defaults.
    #[serde(default)]
    pub runtime: RuntimeSection,
    /// Topic state.
    #[serde(default)]
    pub state: StateSection,
    /// Plugins by name.
    #[serde(default)]
    pub plugins: BTreeMap<String, PluginSection>,
    /// Sources by name.
    #[serde(default)]
    pub sources: BTreeMap<String, SourceSection>,
    /// Pipelines by name.
    #[serde(default)]
    pub pipelines: BTreeMap<String, PipelineSection>,
    /// The admin API (plugin swaps, config reload).
    #[serde(default)]
    pub admin: AdminSection,
    /// The metric history and its query API.
    #[serde(default)]
    pub history: crate::history::HistorySection,
    /// Subscriber tokens.
    #[serde(default)]
    pub auth: crate::tokens::AuthSection,
    /// Time-series databases samples are written to, by name.
    #[serde(default)]
    pub outputs: BTreeMap<String, crate::export_config::OutputSection>,
    /// Alert delivery to Alertmanager and webhooks.
    #[serde(default)]
    pub alerts: crate::export_config::AlertsSection,
    /// Where topics are published: this host's hub, or Redis shared by hosts.
    #[serde(default)]
    pub broker: crate::broker::BrokerSection,
    /// The file as parsed, to tell which sections a reload changed.
    #[serde(skip)]
    pub raw: toml::Table,
    /// Where relative paths are resolved from (the config file's directory).
    #[serde(skip)]
    pub base_dir: PathBuf,
    /// The file name, for error messages.
    #[serde(skip)]
    pub origin: String,
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("wasmeter-data")
}

/// A TOML error's message with the key it is about on its last line (`sources.feed.include:
/// invalid type ...`), after the snippet that shows where: inside a `[sources.*]` table the
/// snippet points at the table, not the value.
fn name_the_key(message: &str, key: &str) -> String {
    if key.is_empty() || key == "." {
        return message.to_string();
    }
    match message.rsplit_once('\n') {
        Some((head, last)) => format!("{head}\n{key}: {last}"),
        None => format!("{key}: {message}"),
    }
}

/// `[server]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    /// Address of the HTTP server (WebSocket, SSE, REST, health).
    pub listen: SocketAddr,
    /// Updates kept per topic for resuming clients.
    pub history_per_topic: usize,
    /// Updates kept in all (state) topics' histories together: with many topics
    /// each keeps its share, at least 1 (bounds the histories' memory).
    pub history_budget: usize,
    /// Bytes all (state) topics' histories hold together, each update counted
    /// with its delta and one encoded frame: with many topics or large updates
    /// each keeps its share, at least its newest update.
    pub history_bytes: usize,
    /// Events kept per stream topic: how far behind, or how long away, a
    /// subscriber may be before it is told of a gap.
    pub stream_history: usize,
    /// Web origins (`scheme://host[:port]`, or `*`) whose pages may subscribe and
    /// read besides the host's own; requests without `Origin` are always served.
    pub allowed_origins: Vec<String>,
    /// `[server.limits]`: connections, frames, heartbeats, conflation.
    pub limits: wasmeter_server::ServerConfig,
    /// `[server.tls]`: serve HTTPS and `wss://` with this certificate.
    pub tls: Option<TlsSection>,
}

/// `[server.tls]` and `[admin.tls]`: PEM files, read at start and again on SIGHUP.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// The certificate chain, leaf first.
    pub cert_file: PathBuf,
    /// Its private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
}

impl Default for ServerSection {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            history_per_topic: 256,
            history_budget: wasmeter_hub::HubConfig::default().history_budget,
            history_bytes: wasmeter_hub::HubConfig::default().history_bytes,
            stream_history: 4096,
            allowed_origins: Vec::new(),
            limits: wasmeter_server::ServerConfig::default(),
            tls: None,
        }
    }
}

impl Config {
    /// The server's TLS, loaded from `[server.tls]`; errors name the key and file.
    pub fn server_tls(&self) -> anyhow::Result<Option<wasmeter_server::Tls>> {
        self.load_tls("server.tls", self.server.tls.as_ref())
    }

    /// The admin API's TLS, loaded from `[admin.tls]`.
    pub fn admin_tls(&self) -> anyhow::Result<Option<wasmeter_server::Tls>> {
        self.load_tls("admin.tls", self.admin.tls.as_ref())
    }

    fn load_tls(
        &self,
        key: &str,
        tls: Option<&TlsSection>,
    ) -> anyhow::Result<Option<wasmeter_server::Tls>> {
        let Some(tls) = tls else {
            return Ok(None);
        };
        wasmeter_server::Tls::load(&self.resolve(&tls.cert_file), &self.resolve(&tls.key_file))
            .map(Some)
            .map_err(|e| anyhow::anyhow!("{}: {key}: {e}", self.origin))
    }
}

/// `[admin]`: the authenticated admin API and hot reload of plugin files.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AdminSection {
    /// Serve the admin API at all.
    pub enabled: bool,
    /// Address of the admin API. A non-loopback address needs a configured token.
    pub listen: SocketAddr,
    /// The bearer token. Without `token`, `token_file` or `WASMETER_ADMIN_TOKEN`, a
    /// random token is written to `<data_dir>/admin.token` (mode 0600).
    pub token: Option<String>,
    /// A file holding the bearer token.
    pub token_file: Option<PathBuf>,
    /// The only directory `load` and `swap` may name files in (relative to the
    /// config file).
    pub plugins_dir: PathBuf,
    /// Swap a `path` plugin in when its file is replaced (a finished write or a rename).
    pub watch_plugins: bool,
    /// Longest the control plane waits for a pipeline to answer a change (a swap,
    /// a removal), and for another change to finish, before it gives up.
    pub reply_timeout_ms: u64,
    /// `[admin.tls]`: serve the admin API over HTTPS, so its bearer token does not
    /// cross the network in clear.
    pub tls: Option<TlsSection>,
}

impl Default for AdminSection {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 9091)),
            token: None,
            token_file: None,
            plugins_dir: PathBuf::from("plugins"),
            watch_plugins: true,
            reply_timeout_ms: 5_000,
            tls: None,
        }
    }
}

/// `[runtime]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeSection {
    /// Longest a plugin call may run.
    pub call_timeout_ms: u64,
    /// Linear-memory cap of each plugin instance.
    pub memory_limit_bytes: usize,
    /// Consecutive failures after which a plugin is quarantined.
    pub quarantine_after: u32,
    /// Plugin instances that may exist at once.
    pub max_instances: u32,
    /// Distinct topics (other than sample series) one plugin instance may create;
    /// beyond it its output is refused and it is quarantined.
    pub max_topics_per_plugin: usize,
    /// Distinct sample series one plugin instance may create; likewise.
    pub max_series_per_plugin: usize,
    /// Log bytes per second one plugin instance may write (log import, stdout,
    /// stderr together); beyond it lines are dropped and counted.
    pub log_bytes_per_sec: u64,
    /// Largest state one plugin instance may export (checkpoints, hot swaps).
    pub state_limit_bytes: usize,
    /// Longest the pipelines may take to drain at shutdown (or when a reload stops
    /// one); those still running then are aborted.
    pub shutdown_timeout_ms: u64,
}

impl Default for RuntimeSection {
    fn default() -> Self {
        Self {
            call_timeout_ms: 200,
            memory_limit_bytes: 64 << 20,
            quarantine_after: 5,
            max_instances: 256,
            max_topics_per_plugin: 10_000,
            max_series_per_plugin: 10_000,
            log_bytes_per_sec: 64 << 10,
            state_limit_bytes: 16 << 20,
            shutdown_timeout_ms: 10_000,
        }
    }
}

impl RuntimeSection {
    /// The limits every plugin runs under unless its section overrides them.
    pub fn limits(&self) -> wasmeter_plugin::PluginLimits {
        wasmeter_plugin::PluginLimits {
            call_timeout: std::time::Duration::from_millis(self.call_timeout_ms),
            memory_bytes: self.memory_limit_bytes,
            quarantine_after: self.quarantine_after,
            max_topics: self.max_topics_per_plugin,
            max_series: self.max_series_per_plugin,
            log_bytes_per_sec: self.log_bytes_per_sec,
            state_bytes: self.state_limit_bytes,
            ..wasmeter_plugin::PluginLimits::default()
        }
    }

    /// The plugin runtime's settings, compiled code cached in `cache_dir` (`None`:
    /// in memory only).
    pub fn runtime_config(&self, cache_dir: Option<PathBuf>) -> wasmeter_plugin::RuntimeConfig {
        wasmeter_plugin::RuntimeConfig {
            cache_dir,
            limits: self.limits(),
            max_instances: self.max_instances,
            max_memory_bytes: self.memory_limit_bytes.max(64 << 20),
            ..wasmeter_plugin::RuntimeConfig::default()
        }
    }
}

/// `[state]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StateSection {
    /// Most topics held.
    pub max_topics: u64,
    /// A topic not updated for this long is dropped.
    pub topic_idle_secs: u64,
    /// A field not updated for this long is marked stale (0: never).
    pub field_ttl_ms: u64,
}

impl Default for StateSection {
    fn default() -> Self {
        Self {
            max_topics: 100_000,
            topic_idle_secs: 24 * 3600,
            field_ttl_ms: 0,
        }
    }
}

/// `[plugins.NAME]`: a component file or a built-in plugin, its config and limits.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PluginSection {
    /// A `.wasm` component (relative to the config file).
    pub path: Option<PathBuf>,
    /// A plugin shipped inside the binary (see `wasmeter plugins`), e.g. `csv-collector`.
    pub builtin: Option<String>,
    /// The plugin's own configuration; nested tables become dotted keys.
    #[serde(default)]
    pub config: toml::Table,
    /// Overrides `runtime.call_timeout_ms` for this plugin.
    pub call_timeout_ms: Option<u64>,
    /// Overrides `runtime.memory_limit_bytes` for this plugin.
    pub memory_limit_bytes: Option<usize>,
    /// Overrides `runtime.max_topics_per_plugin` for this plugin.
    pub max_topics: Option<usize>,
    /// Overrides `runtime.max_series_per_plugin` for this plugin.
    pub max_series: Option<usize>,
    /// Overrides `runtime.log_bytes_per_sec` for this plugin.
    pub log_bytes_per_sec: Option<u64>,
    /// Overrides `runtime.state_limit_bytes` for this plugin.
    pub state_limit_bytes: Option<usize>,
}

impl PluginSection {
    /// This plugin's limits where they differ from `[runtime]`'s.
    pub fn overrides(&self) -> wasmeter_control::LimitOverrides {
        wasmeter_control::LimitOverrides {
            call_timeout: self.call_timeout_ms.map(std::time::Duration::from_millis),
            memory_bytes: self.memory_limit_bytes,
            max_topics: self.max_topics,
            max_series: self.max_series,
            log_bytes_per_sec: self.log_bytes_per_sec,
            state_bytes: self.state_limit_bytes,
        }
    }
}

/// `[sources.NAME]`, by its `type`.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceSection {
    /// Files appended by producers.
    File(FileSourceSection),
    /// /proc, read on an interval.
    System(SystemSourceSection),
}

/// Read by its `type`, then as that kind's table, so that an error names the key
/// in it (serde's internally tagged enums lose the path into the variant).
impl<'de> Deserialize<'de> for SourceSection {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut table = toml::Table::deserialize(d)?;
        let kind = match table.remove("type") {
            Some(toml::Value::String(kind)) => kind,
            Some(other) => {
                return Err(D::Error::custom(format!(
                    "type: expected \"file\" or \"system\", found {other}"
                )));
            }
            None => return Err(D::Error::custom("type: missing: \"file\" or \"system\"")),
        };
        fn section<T: serde::de::DeserializeOwned, E: Error>(table: toml::Table) -> Result<T, E> {
            serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
                let key = e.path().to_string();
                let inner = e.into_inner().to_string();
                let first = inner.lines().next().unwrap_or_default();
                E::custom(name_the_key(first, &key))
            })
        }
        match kind.as_str() {
            "file" => section(table).map(SourceSection::File),
            "system" => section(table).map(SourceSection::System),
            other => Err(D::Error::custom(format!(
                "type: unknown source type `{other}`: expected \"file\" or \"system\""
            ))),
        }
    }
}

/// `type = "file"`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileSourceSection {
    /// Glob patterns or directories (relative to the config file).
    pub include: Vec<String>,
    /// Glob patterns to leave out.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Where to start in files without a checkpoint: `beginning` or `end`.
    #[serde(default = "default_start_at")]
    pub start_at: String,
    /// Interval of the full rescan (inotify is a hint, not the truth).
    #[serde(default = "default_reconcile_ms")]
    pub reconcile_interval_ms: u64,
    /// Largest chunk read at once; the pipeline hands it to the collector in calls
    /// sized to the collector's output limits and deadline.
    #[serde(default = "default_chunk_bytes")]
    pub max_chunk_bytes: usize,
    /// A longer line is skipped and reported.
    #[serde(default = "default_chunk_bytes")]
    pub max_line_bytes: usize,
}

fn default_start_at() -> String {
    "beginning".into()
}
fn default_reconcile_ms() -> u64 {
    1_000
}
fn default_chunk_bytes() -> usize {
    1 << 20
}

/// `type = "system"`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SystemSourceSection {
    /// How often /proc is read.
    #[serde(default = "default_system_interval_ms")]
    pub interval_ms: u64,
}

fn default_system_interval_ms() -> u64 {
    1_000
}

/// `[pipelines.NAME]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PipelineSection {
    /// Sources feeding the pipeline (each source feeds one pipeline).
    pub sources: Vec<String>,
    /// The collector plugin.
    pub collector: String,
    /// Metric plugins, in order (each sees the samples of those before it).
    #[serde(default)]
    pub metrics: Vec<String>,
    /// The delta plugin; without one, deltas are the exact field difference.
    pub delta: Option<String>,
    /// Interval of metric plugins' `on-tick`.
    #[serde(default = "default_tick_ms")]
    pub tick_ms: u64,
    /// Interval of checkpoints while data flows.
    #[serde(default = "default_tick_ms")]
    pub checkpoint_interval_ms: u64,
    /// Checkpoint bytes per second to write at most: a large checkpoint (plugin
    /// states of megabytes) waits `size / this` seconds before the next one.
    #[serde(default = "default_checkpoint_bytes_per_sec")]
    pub checkpoint_bytes_per_sec: u64,
    /// Topic prefixes the pipeline owns (`trades` owns `trades` and `trades/...`);
    /// its plugins' topic updates elsewhere are refused. Default: the pipeline's
    /// name. Sample series (`metrics/...`) belong to the first pipeline that
    /// publishes them; `_wasmeter/` to the host.
    pub topics: Option<Vec<String>>,
    /// Most topics, sample series included, the pipeline may create. The
    /// pipelines' quotas must fit in `state.max_topics`.
    #[serde(default = "default_pipeline_max_topics")]
    pub max_topics: usize,
    /// Labels added to every sample the pipeline publishes (unless the sample has
    /// one of that name), so that two pipelines reading the same symbols from
    /// different feeds publish distinct series: `labels = { feed = "binance" }`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Newest changes per topic saved with each checkpoint, so that subscribers
    /// resume across a restart (0: positions and states only).
    #[serde(default = "default_durable_history")]
    pub durable_history: usize,
    /// The same for stream topics: events saved per stream topic.
    #[serde(default = "default_durable_stream_history")]
    pub durable_stream_history: usize,
    /// Shards the pipeline runs as, in parallel (1: not sharded). Each shard runs
    /// its own plugin instances over the records whose `shard_key` hashes to it,
    /// so all records of a key go to one shard, in order.
    #[serde(default = "default_shards")]
    pub shards: u32,
    /// Where a record's shard key is (needed when `shards` > 1).
    pub shard_key: Option<ShardKeySection>,
}

/// `shard_key`: one CSV column, or one top-level JSON field.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ShardKeySection {
    /// The column, from 0, of a delimited line.
    pub csv_column: Option<usize>,
    /// The column separator (one ASCII character; default `,`).
    pub delimiter: Option<String>,
    /// A top-level field of a JSON-lines record.
    pub json_field: Option<String>,
}

impl ShardKeySection {
    /// The key, or what is wrong with the section.
    pub fn key(&self) -> Result<wasmeter_pipeline::ShardKey, String> {
        match (self.csv_column, &self.json_field) {
            (Some(index), None) => {
                let delimiter = match self.delimiter.as_deref() {
                    None => b',',
                    Some(d) if d.len() == 1 && d.is_ascii() && d != "\n" && d != "\"" => d.as_bytes()[0],
                    Some(d) => {
                        return Err(format!(
                            "delimiter `{d}`: expected one ASCII character other than a newline or a quote"
                        ));
                    }
                };
                Ok(wasmeter_pipeline::ShardKey::CsvColumn { index, delimiter })
            }
            (None, Some(field)) if self.delimiter.is_none() && !field.is_empty() => {
                Ok(wasmeter_pipeline::ShardKey::JsonField(field.clone()))
            }
            (None, Some(_)) if self.delimiter.is_some() => {
                Err("`delimiter` goes with `csv_column`, not `json_field`".into())
            }
            _ => Err("expected either `csv_column` (and an optional `delimiter`) or a non-empty `json_field`".into()),
        }
    }
}

fn default_shards() -> u32 {
    1
}

/// Most shards of one pipeline.
pub const MAX_SHARDS: u32 = 64;

fn default_durable_stream_history() -> usize {
    1024
}

fn default_durable_history() -> usize {
    32
}

fn default_tick_ms() -> u64 {
    1_000
}
fn default_checkpoint_bytes_per_sec() -> u64 {
    4 << 20
}
fn default_pipeline_max_topics() -> usize {
    10_000
}

/// Topics kept for the host's own notices (`_wasmeter/...`) within `state.max_topics`.
pub const HOST_TOPICS: u64 = 1_000;

impl PipelineSection {
    /// The topic prefixes the pipeline `name` owns, normalised.
    pub fn owned_prefixes(&self, name: &str) -> Result<Vec<String>, wasmeter_pipeline::ClaimError> {
        match &self.topics {
            Some(topics) => topics
                .iter()
                .map(|t| wasmeter_pipeline::normalize_prefix(t))
                .collect(),
            None => Ok(vec![wasmeter_pipeline::normalize_prefix(name)?]),
        }
    }
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|cause| ConfigError::Read {
            path: path.to_path_buf(),
            cause,
        })?;
        // Absolute, so that paths in errors, checkpoints and file events all agree.
        let parent = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let base = std::path::absolute(parent).unwrap_or_else(|_| parent.to_path_buf());
        Self::parse(&text, &path.display().to_string(), &base)
    }

    /// Parses and validates config text; relative paths resolve against `base_dir`.
    pub fn parse(text: &str, origin: &str, base_dir: &Path) -> Result<Config, ConfigError> {
        let parse_error = |e: toml::de::Error| ConfigError::Parse {
            origin: origin.to_string(),
            message: e.to_string().trim_end().to_string(),
        };
        let de = toml::Deserializer::parse(text).map_err(parse_error)?;
        let mut config: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            let message = e.into_inner().to_string();
            ConfigError::Parse {
                origin: origin.to_string(),
                message: name_the_key(message.trim_end(), &key),
            }
        })?;
        config.raw = toml::from_str(text).map_err(parse_error)?;
        config.base_dir = base_dir.to_path_buf();
        config.origin = origin.to_string();
        config.validate()?;
        Ok(config)
    }

    fn invalid(&self, key: impl Into<String>, problem: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            origin: self.origin.clone(),
            key: key.into(),
            problem: problem.into(),
        }
    }

    /// Resolves a path from the config against the config file's directory.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else if path == Path::new(".") {
            self.base_dir.clone()
        } else {
            self.base_dir.join(path)
        }
    }

    /// Resolves a glob pattern like [`Config::resolve`].
    pub fn resolve_pattern(&self, pattern: &str) -> String {
        self.resolve(Path::new(pattern))
            .to_string_lossy()
            .into_owned()
    }

    /// Checks cross-references and invariants.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.broker.validate(self)?;
        for (name, p) in &self.plugins {
            let key = format!("plugins.{name}");
            match (&p.path, &p.builtin) {
                (Some(_), Some(_)) => {
                    return Err(self.invalid(key, "set either `path` or `builtin`, not both"));
                }
                (None, None) => {
                    return Err(self.invalid(key, "set `path` (a .wasm component) or `builtin`"));
                }
                (None, Some(b)) if crate::defaults::builtin(b).is_none() => {
                    return Err(self.invalid(
                        format!("{key}.builtin"),
                        format!(
                            "no built-in plugin `{b}` (built-ins: {})",
                            crate::defaults::builtin_names().join(", ")
                        ),
                    ));
                }
                _ => {}
            }
            if p.call_timeout_ms == Some(0) {
                return Err(self.invalid(format!("{key}.call_timeout_ms"), "must be > 0"));
            }
            flatten_config(&p.config)
                .map_err(|problem| self.invalid(format!("{key}.config"), problem))?;
        }
        for (name, s) in &self.sources {
            let key = format!("sources.{name}");
            match s {
                SourceSection::File(f) => {
                    if f.include.is_empty() {
                        return Err(
                            self.invalid(format!("{key}.include"), "needs at least one pattern")
                        );
                    }
                    if f.start_at != "beginning" && f.start_at != "end" {
                        return Err(self.invalid(
                            format!("{key}.start_at"),
                            format!("`{}`: expected `beginning` or `end`", f.start_at),
                        ));
                    }
                    if f.max_chunk_bytes < 1024 {
                        return Err(
                            self.invalid(format!("{key}.max_chunk_bytes"), "must be at least 1024")
                        );
                    }
                    if f.reconcile_interval_ms == 0 {
                        return Err(
                            self.invalid(format!("{key}.reconcile_interval_ms"), "must be > 0")
                        );
                    }
                }
                SourceSection::System(s) if s.interval_ms == 0 => {
                    return Err(self.invalid(format!("{key}.interval_ms"), "must be > 0"));
                }
                SourceSection::System(_) => {}
            }
        }
        let mut feeds: BTreeMap<&str, &str> = BTreeMap::new();
        for (name, p) in &self.pipelines {
            let key = format!("pipelines.{name}");
            if p.sources.is_empty() {
                return Err(self.invalid(format!("{key}.sources"), "needs at least one source"));
            }
            for s in &p.sources {
                if !self.sources.contains_key(s) {
                    return Err(self.invalid(
                        format!("{key}.sources"),
                        format!("no source named `{s}` ({})", known(self.sources.keys())),
                    ));
                }
                if let Some(other) = feeds.insert(s, name) {
                    return Err(self.invalid(
                        format!("{key}.sources"),
                        format!("source `{s}` already feeds pipeline `{other}`"),
                    ));
                }
            }
            let plugin_refs = std::iter::once(("collector", &p.collector))
                .chain(p.metrics.iter().map(|m| ("metrics", m)))
                .chain(p.delta.iter().map(|d| ("delta", d)));
            for (field, plugin) in plugin_refs {
                if !self.plugins.contains_key(plugin) {
                    return Err(self.invalid(
                        format!("{key}.{field}"),
                        format!(
                            "no plugin named `{plugin}` ({})",
                            known(self.plugins.keys())
                        ),
                    ));
                }
            }
            if p.tick_ms == 0 || p.checkpoint_interval_ms == 0 {
                return Err(self.invalid(key, "tick_ms and checkpoint_interval_ms must be > 0"));
            }
            for (label, value) in &p.labels {
                if !wasmeter_core::validate::is_label_name(label) || value.len() > 200 {
                    return Err(self.invalid(
                        format!("{key}.labels.{label}"),
                        "a label name is [a-zA-Z_][a-zA-Z0-9_]*, its value at most 200 bytes",
                    ));
                }
            }
            if p.checkpoint_bytes_per_sec == 0 {
                return Err(self.invalid(format!("{key}.checkpoint_bytes_per_sec"), "must be > 0"));
            }
            self.validate_shards(&key, p)?;
        }
        self.validate_topic_ownership()?;
        self.server
            .limits
            .validate()
            .map_err(|e| self.invalid(format!("server.limits.{}", e.field), e.problem))?;
        if self.server.history_per_topic == 0 {
            return Err(self.invalid("server.history_per_topic", "must be > 0"));
        }
        if let Some((key, problem)) = self.history.problem() {
            return Err(self.invalid(key, problem));
        }
        if let Some((key, problem)) = crate::export_config::problem(&self.outputs, &self.alerts) {
            return Err(self.invalid(key, problem));
        }
        for origin in &self.server.allowed_origins {
            wasmeter_server::check_origin_entry(origin)
                .map_err(|e| self.invalid("server.allowed_origins", e))?;
        }
        if self.server.stream_history == 0 {
            return Err(self.invalid("server.stream_history", "must be > 0"));
        }
        if self.runtime.call_timeout_ms == 0 {
            return Err(self.invalid("runtime.call_timeout_ms", "must be > 0"));
        }
        if self.runtime.shutdown_timeout_ms == 0 {
            return Err(self.invalid("runtime.shutdown_timeout_ms", "must be > 0"));
        }
        if self.admin.reply_timeout_ms == 0 {
            return Err(self.invalid("admin.reply_timeout_ms", "must be > 0"));
        }
        Ok(())
    }

    /// `shards` and `shard_key` of one pipeline.
    fn validate_shards(&self, key: &str, p: &PipelineSection) -> Result<(), ConfigError> {
        if key.contains('#') {
            return Err(self.invalid(
                key,
                "a pipeline's name cannot contain `#` (the host names shards `<pipeline>#<n>`)",
            ));
        }
        if p.shards == 0 || p.shards > MAX_SHARDS {
            return Err(self.invalid(
                format!("{key}.shards"),
                format!("must be 1 to {MAX_SHARDS}"),
            ));
        }
        match (&p.shard_key, p.shards) {
            (Some(k), _) => {
                k.key()
                    .map_err(|e| self.invalid(format!("{key}.shard_key"), e))?;
            }
            (None, 1) => {}
            (None, _) => {
                return Err(self.invalid(
                    format!("{key}.shard_key"),
                    "needed with `shards` > 1: `{ csv_column = N }` or `{ json_field = \"NAME\" }`",
                ));
            }
        }
        if p.shards > 1 {
            for s in &p.sources {
                if matches!(self.sources.get(s), Some(SourceSection::System(_))) {
                    return Err(self.invalid(
                        format!("{key}.shards"),
                        format!(
                            "source `{s}` is a system source: only file sources can be sharded"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Every pipeline's prefixes are valid and nobody else's; the pipelines'
    /// topic quotas fit in the topic state, so one never evicts another's topics.
    fn validate_topic_ownership(&self) -> Result<(), ConfigError> {
        let owners = wasmeter_pipeline::TopicOwners::default();
        let mut quotas: u64 = HOST_TOPICS;
        for (name, p) in &self.pipelines {
            let key = format!("pipelines.{name}");
            let prefixes = p.owned_prefixes(name).map_err(|e| {
                let key = if p.topics.is_some() {
                    format!("{key}.topics")
                } else {
                    format!("{key} (no `topics`: the pipeline's name is its prefix)")
                };
                self.invalid(key, e.to_string())
            })?;
            owners
                .claim_prefixes(name, &prefixes)
                .map_err(|e| self.invalid(format!("{key}.topics"), e.to_string()))?;
            if p.max_topics == 0 {
                return Err(self.invalid(format!("{key}.max_topics"), "must be > 0"));
            }
            quotas += p.max_topics as u64;
        }
        if quotas > self.state.max_topics {
            return Err(self.invalid(
                "state.max_topics",
                format!(
                    "{} is less than the pipelines' topic quotas ({} in all, with {HOST_TOPICS} \
                     for the host): raise it or lower `max_topics` of some pipelines",
                    self.state.max_topics, quotas
                ),
            ));
        }
        Ok(())
    }
}

/// Flattens a plugin's config table into dotted keys with string values:
/// `{ field = { price = "p" } }` becomes `field.price = "p"`.
pub fn flatten_config(table: &toml::Table) -> Result<Vec<(String, String)>, String> {
    fn walk(
        prefix: &str,
        table: &toml::Table,
        out: &mut Vec<(String, String)>,
    ) -> Result<(), String> {
        for (k, v) in table {
            let key = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            match v {
                toml::Value::Table(t) => walk(&key, t, out)?,
                toml::Value::String(s) => out.push((key, s.clone())),
                toml::Value::Integer(i) => out.push((key, i.to_string())),
                toml::Value::Float(f) => out.push((key, f.to_string())),
                toml::Value::Boolean(b) => out.push((key, b.to_string())),
                toml::Value::Array(items) => {
                    let mut parts = Vec::new();
                    for item in items {
                        match item {
                            toml::Value::String(s) => parts.push(s.clone()),
                            toml::Value::Integer(i) => parts.push(i.to_string()),
                            toml::Value::Float(f) => parts.push(f.to_string()),
                            _ => {
                                return Err(format!(
                                    "`{key}`: arrays may hold strings and numbers only"
                                ));
                            }
                        }
                    }
                    out.push((key, parts.join(",")));
                }
                toml::Value::Datetime(d) => out.push((key, d.to_string())),
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk("", table, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
        [plugins.csv]
        builtin = "csv-collector"
        config = { topic_prefix = "trades", field = { price = "p" }, columns = ["symbol", "price"] }

        [sources.trades]
        type = "file"
        include = ["data/*.csv"]

        [pipelines.trades]
        sources = ["trades"]
        collector = "csv"
    "#;

    fn err(text: &str) -> String {
        Config::parse(text, "test.toml", Path::new("/etc/wasmeter"))
            .unwrap_err()
            .to_string()
    }

    /// The last line of an error: what is wrong, with the key it is about.
    fn last_line(text: &str) -> String {
        err(text).lines().last().unwrap_or_default().to_string()
    }

    #[test]
    fn a_wrong_value_names_its_key_also_inside_a_source() {
        assert_eq!(
            last_line("[server]\nhistory_per_topic = \"lots\"\n"),
            "server.history_per_topic: invalid type: string \"lots\", expected usize"
        );
        let source = |body: &str| last_line(&format!("[sources.feed]\n{body}\n"));
        assert_eq!(
            source("type = \"file\"\ninclude = \"feed/*.csv\""),
            "sources.feed: include: invalid type: string \"feed/*.csv\", expected a sequence"
        );
        assert_eq!(
            source("type = \"file\"\ninclude = [\"a\"]\nreconcile_interval_ms = \"soon\""),
            "sources.feed: reconcile_interval_ms: invalid type: string \"soon\", expected u64"
        );
        assert_eq!(
            source("type = \"disk\""),
            "sources.feed: type: unknown source type `disk`: expected \"file\" or \"system\""
        );
        assert!(
            source("type = \"system\"\ninterval = 5")
                .contains("sources.feed: interval: unknown field `interval`")
        );
        assert_eq!(
            source("include = [\"a\"]"),
            "sources.feed: type: missing: \"file\" or \"system\""
        );
    }

    #[test]
    fn a_redis_broker_is_checked_key_by_key() {
        let with = |broker: &str| format!("[broker]\n{broker}\n{GOOD}");
        let parsed = Config::parse(
            &with("type = \"redis\"\nurl = \"redis://127.0.0.1:6379/0\""),
            "t",
            Path::new("/"),
        )
        .unwrap();
        assert_eq!(parsed.broker.kind, crate::broker::BrokerType::Redis);
        assert_eq!(parsed.broker.key_prefix, "wasmeter:");
        assert_eq!(
            last_line(&with("type = \"redis\"")),
            "test.toml: broker.url: `type = \"redis\"` needs the server's url"
        );
        assert_eq!(
            last_line(&with("type = \"redis\"\nurl = \"127.0.0.1:6379\"")),
            "test.toml: broker.url: expected redis://host:port[/db]"
        );
        let e = last_line(&with(
            "type = \"redis\"\nurl = \"redis://h:1\"\nlease_ttl_ms = 1000",
        ));
        assert!(
            e.starts_with("test.toml: broker.lease_ttl_ms: must be at least 3 x"),
            "{e}"
        );
        assert!(last_line(&with("type = \"nats\"")).contains("broker.type"));
    }

    #[test]
    fn allowed_origins_must_be_origins() {
        let with = |origins: &str| format!("[server]\nallowed_origins = {origins}\n{GOOD}");
        assert!(
            Config::parse(
                &with(r#"["*", "https://dash.example.com:8443"]"#),
                "t",
                Path::new("/")
            )
            .is_ok()
        );
        let e = err(&with(r#"["https://dash.example.com/"]"#));
        assert!(
            e.contains("server.allowed_origins") && e.contains("without a path"),
            "{e}"
        );
        let e = err(&with(r#"["dash.example.com"]"#));
        assert!(
            e.contains("server.allowed_origins") && e.contains("`dash.example.com`"),
            "{e}"
        );
    }

    #[test]
    fn a_good_config_parses_and_flattens_plugin_config() {
        let config = Config::parse(GOOD, "test.toml", Path::new("/etc/wasmeter")).unwrap();
        let flat = flatten_config(&config.plugins["csv"].config).unwrap();
        assert_eq!(
            flat,
            [
                ("columns".to_string(), "symbol,price".to_string()),
                ("field.price".to_string(), "p".to_string()),
                ("topic_prefix".to_string(), "trades".to_string()),
            ]
        );
        assert_eq!(
            config.resolve_pattern("data/*.csv"),
            "/etc/wasmeter/data/*.csv"
        );
    }

    #[test]
    fn errors_name_file_key_and_problem() {
        let unknown_key =
            err(&GOOD.replace("collector = \"csv\"", "collector = \"csv\"\ncolector = 1"));
        assert!(unknown_key.starts_with("test.toml: "), "{unknown_key}");
        assert!(
            unknown_key.contains("unknown field `colector`"),
            "{unknown_key}"
        );
        assert!(unknown_key.contains("line"), "{unknown_key}");

        let bad_ref = err(&GOOD.replace("collector = \"csv\"", "collector = \"cvs\""));
        assert_eq!(
            bad_ref,
            "test.toml: pipelines.trades.collector: no plugin named `cvs` (defined: `csv`)"
        );

        let bad_builtin = err(&GOOD.replace("csv-collector", "nope"));
        assert!(
            bad_builtin.starts_with("test.toml: plugins.csv.builtin: no built-in plugin `nope`"),
            "{bad_builtin}"
        );

        let bad_type = err(&GOOD.replace("type = \"file\"", "type = \"socket\""));
        assert!(
            bad_type.contains("sources.trades: type: unknown source type `socket`"),
            "{bad_type}"
        );

        let bad_addr = err(&format!("[server]\nlisten = \"localhost:x\"\n{GOOD}"));
        assert!(bad_addr.contains("listen"), "{bad_addr}");
    }

    /// GOOD plus a second pipeline `other` whose section ends with `extra`.
    fn two_pipelines(extra: &str) -> String {
        format!(
            "{GOOD}\n[sources.o]\ntype = \"file\"\ninclude = [\"o/*.csv\"]\n\
             [pipelines.other]\nsources = [\"o\"]\ncollector = \"csv\"\n{extra}\n"
        )
    }

    #[test]
    fn two_pipelines_cannot_own_overlapping_prefixes() {
        assert_eq!(
            err(&two_pipelines("topics = [\"trades/btc\"]")),
            "test.toml: pipelines.trades.topics: `trades` overlaps `trades/btc`, owned by pipeline `other`"
        );
        let ok = two_pipelines("topics = [\"other\", \"trades_archive/*\"]");
        let config = Config::parse(&ok, "test.toml", Path::new("/")).unwrap();
        assert_eq!(
            config.pipelines["other"].owned_prefixes("other").unwrap(),
            ["other", "trades_archive"]
        );
    }

    #[test]
    fn reserved_and_invalid_prefixes_are_refused() {
        assert_eq!(
            err(&two_pipelines("topics = [\"_wasmeter/x\"]")),
            "test.toml: pipelines.other.topics: `_wasmeter/x` is reserved: `_wasmeter/` belongs to the host"
        );
        assert!(err(&two_pipelines("topics = [\"metrics\"]")).contains("belongs to sample series"));
        assert!(err(&two_pipelines("topics = [\"a b\"]")).contains("`a b` is not a topic prefix"));
    }

    #[test]
    fn topic_quotas_must_fit_the_topic_state() {
        let text = format!("{}\n[state]\nmax_topics = 20000\n", two_pipelines(""));
        assert_eq!(
            err(&text),
            "test.toml: state.max_topics: 20000 is less than the pipelines' topic quotas \
             (21000 in all, with 1000 for the host): raise it or lower `max_topics` of some pipelines"
        );
        let text = format!(
            "{}\n[state]\nmax_topics = 20000\n",
            two_pipelines("max_topics = 5000")
        );
        Config::parse(&text, "test.toml", Path::new("/")).unwrap();
    }
}
