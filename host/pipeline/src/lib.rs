//! Moves data per topic: source chunks -> collector plugin -> metric plugins ->
//! topic state -> delta plugin -> broker (the hub, or one shared by hosts).
//!
//! # Layout
//! - [`pipeline`]: the task that owns a pipeline's plugin instances and runs the path.
//! - [`calls`]: the calls the pipeline makes on its plugins, as traits (wasm
//!   instances implement them; so can in-process plugins in tests).
//! - [`control`]: swapping, adding and removing plugins of a running pipeline.
//! - [`owners`]: which pipeline may write which topics (prefixes, series claims).
//! - [`footprint`]: what each plugin created, checked against ownership and quotas.
//! - [`plugins`]: the plugin instances of a pipeline and their state in checkpoints.
//! - [`topics`]: the one owner of topics: the state store and the [`Broker`]
//!   (positions, history, fan-out) kept in step; staleness sweeps.
//! - [`state`]: the latest value of every field of every topic (moka), staleness.
//! - [`samples`]: how sample series map onto topics (`metrics/<name>/<labels...>`).
//! - [`series`]: the latest value of every sample series (for `/metrics`).
//! - [`shard`]: one pipeline run as several shards, each taking the records of its keys.
//! - `sizing`: how many records one collector call gets (file chunks are split
//!   to stay within the collector's output limits and deadline).
//! - [`stats`]: counters of a pipeline, read by `/metrics`.
//! - `unread`: changes of sample-series topics nobody subscribes to, held and
//!   published once per tick.
//!
//! Guarantees: a chunk's offset is committed only after its records were
//! processed and published; the checkpoint holds those offsets together with the
//! plugins' exported state, so a restart resumes both consistently. A collector that
//! fails on a chunk is retried record by record, so one poisonous record is
//! reported and skipped instead of losing its neighbours.

mod background;
mod batch;
pub mod calls;
mod commit;
pub mod control;
mod durable;
pub mod footprint;
mod gather;
pub mod owners;
pub mod pipeline;
pub mod plugins;
pub mod samples;
pub mod series;
pub mod shard;
mod sizing;
pub mod state;
pub mod stats;
pub mod topics;
mod unread;

pub use calls::{CollectorCalls, DeltaCalls, MetricCalls, PluginCalls};
pub use control::{Command, Replacement, Retired, StateCarry, SwapError, Swapped};
pub use footprint::Refusal;
pub use owners::{ClaimError, TopicOwners, normalize_prefix};
pub use pipeline::{Input, Pipeline, PipelineConfig, SampleSink};
pub use plugins::{PipelinePlugins, PluginRef, PluginRefs, PluginSpec};
pub use series::{SeriesKey, SeriesStore, SeriesValue};
pub use shard::{Shard, ShardKey};
pub use state::{StateConfig, TopicStore};
pub use stats::PipelineStats;
pub use topics::{Broker, FlushError, Refused, Topics};
