//! The sandboxed WebAssembly plugin runtime of wasmeter.
//!
//! Collectors, delta algorithms and derived metrics are WebAssembly components
//! implementing a world of the `wasmeter:plugin@0.1.0` WIT package (`wit/`).
//! This crate loads them, checks which world they implement, compiles them once
//! (cached on disk by content hash and engine version), and runs each instance
//! under a per-call deadline (epoch interruption) and a memory cap, with a WASI
//! that grants nothing: no files, network or environment. Plugin output is
//! validated before the host uses it. A trap, timeout or out-of-memory fails the
//! call with a clear [`CallError`]; the instance is rebuilt for the next call; after
//! repeated failures the instance is quarantined. Other plugins never notice.
//!
//! # Layout
//! - [`Runtime`] (`runtime.rs`): engine, linker, epoch ticker, loading.
//! - `cache.rs`: compiled components in memory and on disk.
//! - `world.rs`: which world a component implements, with errors naming both sides.
//! - [`Instance`] (`instance.rs`): a supervised instance, generic over the [`World`].
//! - [`HealthHandle`] (`health.rs`): an instance's counters, readable from any task.
//! - `kinds/`: the typed calls of each world (`collect`, `diff`/`apply`, `on_samples`/`on_tick`).
//! - `sandbox.rs`: the store's data, memory cap, deadline, and the host imports.
//! - `stdio.rs`: a plugin's stdout/stderr into `tracing`.
//!
//! # Example
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use wasmeter_plugin::{CollectorWorld, Runtime, RuntimeConfig};
//!
//! let runtime = Runtime::new(RuntimeConfig::default())?;
//! let plugin = runtime.load::<CollectorWorld>("csv_collector.wasm").await?;
//! let mut csv = plugin.instantiate("trades", vec![]).await?;
//! let out = csv.collect("trades.csv", b"BTC,64000.5,0.25,1700000000000\n").await?;
//! assert_eq!(out.updates[0].topic, "trades/BTC");
//! # Ok(()) }
//! ```

mod bindings;
mod cache;
mod error;
mod health;
mod instance;
mod kinds;
mod limits;
mod runtime;
mod sandbox;
mod stdio;
pub mod world;

pub use cache::{CacheOutcome, ContentHash, content_hash};
pub use error::{CallError, LoadError};
pub use health::{Health, HealthHandle};
pub use instance::{Compiled, Instance, LoadedPlugin, MAX_STATE_BYTES, PluginMeta, World};
pub use kinds::{CollectorWorld, DeltaWorld, MetricWorld};
pub use limits::{PluginLimits, RuntimeConfig};
pub use runtime::Runtime;
pub use sandbox::{PluginConfig, unix_now_ms};
