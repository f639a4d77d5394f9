//! The sandboxed WebAssembly plugin runtime of wasmeter.
//!
//! Collectors, delta algorithms and derived metrics are WebAssembly components
//! implementing a world of the `wasmeter:plugin` WIT package (`wit/`: 0.4.0,
//! and the earlier 0.3.0, 0.2.0 and 0.1.0). This crate loads them, checks which world they implement, compiles them once
//! (cached on disk by content hash and engine version, in a directory only this
//! user can write), and runs each instance under a per-call deadline, a memory
//! cap and a log quota, with a WASI that grants nothing: no files, network or
//! environment. Plugin output is validated before the host uses it. A trap,
//! timeout or out-of-memory fails the call with a clear [`CallError`]; the
//! instance is rebuilt for the next call; after repeated failures the instance is
//! quarantined. Other plugins never notice.
//!
//! # Limits ([`PluginLimits`])
//! - **Time**: every call, `describe`, `init` and instantiation included, is bounded
//!   in wall-clock time. The epoch deadline stops a guest computing past
//!   `call_timeout`; a guest waiting inside a host call (a WASI sleep or poll,
//!   where no guest code runs and the epoch check never fires) is abandoned
//!   [`ABANDON_GRACE`] later: its call future is dropped, the instance discarded
//!   and rebuilt for the next call, and the failure is a [`CallError::Deadline`]
//!   like any other (health counters, streaks, quarantine). WASI sleeping is not
//!   denied: it is harmless within the deadline.
//! - **Memory**: `memory_bytes` of linear memory.
//! - **Log**: messages cut at [`MAX_MESSAGE_BYTES`], at most [`MAX_LOG_FIELDS`]
//!   fields of [`MAX_FIELD_BYTES`]; `log_bytes_per_sec` per instance (a token
//!   bucket shared by the `log` import, stdout and stderr); suppressed lines are
//!   counted in [`Health`] and summarised in the host's log; a call that tries to
//!   log more than [`LOG_FLOOD_FACTOR`] seconds of quota fails.
//! - **State**: `state_bytes` per export or import.
//! - **Quarantine**: after `quarantine_after` consecutive failures, overall or of
//!   one kind of call; outputs refused by the host count too
//!   ([`Instance::record_failure`]).
//! - `max_topics`, `max_series`: carried for the pipeline, which enforces them.
//!
//! # Layout
//! - [`Runtime`] (`runtime.rs`): engine, linker, loading; `epoch.rs`: the epoch
//!   ticker, which ticks only while a call may run.
//! - `cache.rs`: compiled components in memory and on disk; `cache_trust.rs`:
//!   whether the directory and artifacts may be loaded from.
//! - `world.rs`: which world a component implements, with errors naming both sides.
//! - [`Compiled`] (`compiled.rs`): a loaded plugin, its description, its instances.
//! - `lifecycle.rs`: the calls every world exports, per world.
//! - [`Instance`] (`instance.rs`): a supervised instance, generic over the [`World`];
//!   `call.rs`: one bounded call and the failure accounting.
//! - [`HealthHandle`] (`health.rs`): an instance's counters, readable from any task.
//! - `kinds/`: the typed calls of each world (`collect`, `diff`/`apply`, `on_samples`/`on_tick`).
//! - `sandbox.rs`: the store's data, memory cap, epoch deadline, and the host imports.
//! - `stdio.rs`: a plugin's log (stdout, stderr, `log`) into `tracing`;
//!   `log_limit.rs`: its caps and quota.
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
mod cache_trust;
mod call;
mod compiled;
mod epoch;
mod error;
mod health;
mod instance;
mod kinds;
mod lifecycle;
mod limits;
mod log_limit;
mod runtime;
mod sandbox;
mod stdio;
pub mod world;

pub use cache::{CacheOutcome, ContentHash, content_hash};
pub use call::ABANDON_GRACE;
pub use compiled::{Compiled, LoadedPlugin, PluginMeta};
pub use error::{CallError, LoadError};
pub use health::{Health, HealthHandle};
pub use instance::{Instance, MAX_STATE_BYTES};
pub use kinds::{CollectorWorld, DeltaWorld, Deltas, MAX_DECLARED_SERIES, MetricWorld, TopicDiff};
pub use lifecycle::World;
pub use limits::{LOG_FLOOD_FACTOR, PluginLimits, RuntimeConfig};
pub use log_limit::{MAX_FIELD_BYTES, MAX_LOG_FIELDS, MAX_MESSAGE_BYTES};
pub use runtime::Runtime;
pub use sandbox::{PluginConfig, unix_now_ms};
pub use world::Contract;
