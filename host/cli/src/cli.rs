//! The command line.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// wasmeter: file changes in, live deltas out; extended with WebAssembly plugins.
#[derive(Debug, Parser)]
#[command(name = "wasmeter", version, about)]
pub struct Cli {
    /// Log filter: a level (`info`, `debug`) or `tracing` directives (`wasmeter=debug`).
    #[arg(long, global = true, default_value = "info", env = "WASMETER_LOG")]
    pub log_level: String,
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Log formats.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs the host. Without `--config`: the built-in demo (a generated market
    /// feed, the built-in plugins and the system collector).
    Serve(ServeArgs),
    /// Loads plugin components and prints what they are, or why they are refused.
    CheckPlugin {
        /// `.wasm` component files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Checks a config file as `serve` would (plugins loaded and started with
    /// their config), without serving or writing anything.
    CheckConfig {
        /// The config file.
        file: PathBuf,
    },
    /// Lists the built-in plugins.
    Builtins,
    /// Subscribes to topics and prints live updates; reconnects and resumes.
    Tail(TailArgs),
    /// Lists, inspects, loads, swaps, reloads, rolls back or unloads plugins of a
    /// running host (through its admin API).
    Plugin(PluginArgs),
    /// Asks a running host to apply the changes of its config file (like SIGHUP).
    ReloadConfig(AdminArgs),
    /// Creates a plugin project (outside this repository) in Rust, Python or
    /// JavaScript that builds with one command; its README says it and how to load it.
    New {
        /// The kind of plugin.
        world: crate::new_plugin::World,
        /// Its name (and the crate's): a-z first, then a-z, 0-9, `-`, `_`.
        name: String,
        /// The language.
        #[arg(long, value_enum, default_value_t)]
        lang: crate::new_plugin::Lang,
        /// Where to create it (default: ./NAME); must not exist or be empty.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The wasmeter SDK (default: `plugins/sdk`, for Python `plugins/python`, for
        /// JavaScript `plugins/js`, of the checkout this binary was built from).
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
}

/// How to reach a running host's admin API.
#[derive(Debug, Clone, clap::Args)]
pub struct AdminArgs {
    /// The admin API's address, `host:port` or `https://host:port` (default:
    /// `admin.listen` of `--config`, else 127.0.0.1:9091).
    #[arg(long, global = true)]
    pub admin: Option<String>,
    /// The bearer token (default: `WASMETER_ADMIN_TOKEN`, `--token-file`, the config's
    /// token, or the token file the host wrote to its data directory).
    #[arg(long, global = true, hide_env_values = true)]
    pub token: Option<String>,
    /// A file holding the token.
    #[arg(long, global = true)]
    pub token_file: Option<PathBuf>,
    /// The host's config file: tells the admin address and where the token is.
    #[arg(long, short, global = true)]
    pub config: Option<PathBuf>,
    /// For an `https://` admin API: the PEM certificate to trust (the API's own,
    /// or its CA); default: `admin.tls.cert_file` of `--config`.
    #[arg(long, global = true)]
    pub ca_file: Option<PathBuf>,
    /// Print the host's JSON answer instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
}

/// `wasmeter plugin`
#[derive(Debug, clap::Args)]
pub struct PluginArgs {
    /// How to reach the host.
    #[command(flatten)]
    pub admin: AdminArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: PluginCommand,
}

/// A component file for `load` and `swap`.
#[derive(Debug, clap::Args)]
pub struct ComponentArgs {
    /// The `.wasm` component: uploaded from here, or with `--remote` a path inside
    /// the host's plugins directory.
    pub file: PathBuf,
    /// `FILE` is on the host, inside its plugins directory.
    #[arg(long)]
    pub remote: bool,
    /// The plugin's config, `key=value` (repeatable); replaces the current config.
    #[arg(long = "set", id = "set", value_name = "KEY=VALUE")]
    pub settings: Vec<String>,
}

/// `wasmeter plugin` subcommands.
#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Every plugin: kind, version, state, pipelines, counters.
    List,
    /// One plugin in detail: config, limits, instances, versions to roll back to.
    Inspect {
        /// The plugin's name.
        name: String,
    },
    /// Adds a plugin under a new name; a metric or delta plugin can join pipelines.
    Load {
        /// The new plugin's name.
        name: String,
        /// The component.
        #[command(flatten)]
        component: ComponentArgs,
        /// A pipeline the plugin joins (repeatable; metric and delta plugins).
        #[arg(long = "pipeline")]
        pipelines: Vec<String>,
    },
    /// Takes a plugin out of every pipeline and forgets it.
    Unload {
        /// The plugin's name.
        name: String,
    },
    /// Reads the plugin's file again and swaps it in if it changed.
    Reload {
        /// The plugin's name.
        name: String,
    },
    /// Replaces a plugin with another component, keeping its state.
    Swap {
        /// The plugin's name.
        name: String,
        /// The new version.
        #[command(flatten)]
        component: ComponentArgs,
        /// Start the new version with an empty state.
        #[arg(long)]
        fresh_state: bool,
    },
    /// Goes back to the previous version, with the config it ran with.
    Rollback {
        /// The plugin's name.
        name: String,
        /// Start the previous version with an empty state.
        #[arg(long)]
        fresh_state: bool,
    },
    /// Stops calling a plugin until it is released.
    Quarantine {
        /// The plugin's name.
        name: String,
    },
    /// Lifts a quarantine.
    Release {
        /// The plugin's name.
        name: String,
    },
}

/// `wasmeter tail`
#[derive(Debug, clap::Args)]
pub struct TailArgs {
    /// Topics or patterns (`trades/*`, `metrics/**`).
    #[arg(required = true)]
    pub topics: Vec<String>,
    /// The host's WebSocket URL.
    #[arg(long, default_value = "ws://127.0.0.1:8080/ws")]
    pub url: String,
    /// Print each received message as one JSON object per line.
    #[arg(long)]
    pub json: bool,
    /// Only these fields (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub fields: Vec<String>,
    /// A subscriber token, for a host with `[auth]` (sent as `Authorization: Bearer`).
    #[arg(long, env = "WASMETER_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

/// `wasmeter serve`
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// A TOML config file (see docs/CONFIG.md).
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Overrides `server.listen`.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Overrides `admin.listen`.
    #[arg(long)]
    pub admin_listen: Option<SocketAddr>,
    /// The demo's data directory (default: `$XDG_RUNTIME_DIR/wasmeter-demo`, else
    /// `wasmeter-demo-<uid>` in the temp directory). Created with mode 0700; an
    /// existing one must belong to this user and not be writable by group or others.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Trades per second written by the demo feed.
    #[arg(long, default_value_t = 50)]
    pub demo_rate: u32,
    /// Stop the demo feed after this many trades (default: never).
    #[arg(long)]
    pub demo_trades: Option<u64>,
}
