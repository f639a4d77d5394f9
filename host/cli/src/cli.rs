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
    /// Lists the built-in plugins.
    Builtins,
    /// Subscribes to topics and prints live updates; reconnects and resumes.
    Tail(TailArgs),
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
    /// The demo's data directory (default: `wasmeter-demo` in the temp directory).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Trades per second written by the demo feed.
    #[arg(long, default_value_t = 50)]
    pub demo_rate: u32,
}
