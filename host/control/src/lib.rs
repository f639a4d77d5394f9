//! The control plane of wasmeter: the plugins a host knows, the pipelines it
//! runs, and every change made to them while it serves (swap, reload, rollback,
//! load, unload, quarantine, config reload, hot reload of plugin files).
//!
//! It takes a typed [`HostSpec`] (the config file's parser builds it) and answers
//! with typed reports and [`ControlError`]s; how they travel (HTTP, the command
//! line, signals) is the caller's business.
//!
//! # Layout
//! - [`spec`]: what a host runs (plugins, sources, pipelines), typed.
//! - [`mod@plan`]: what a config reload changes, a pure diff of two specs.
//! - [`registry`]: named plugins, their versions and what went wrong last.
//! - [`load`]: compiling plugins and building their instances (a pipeline's set,
//!   or one replacement for a swap, smoke-tested).
//! - [`supervisor`]: the running pipelines and every change to them, each wait
//!   bounded.
//! - [`monitor`]: handles on every pipeline's and source's counters.
//! - [`hot_reload`]: reloads a plugin when its file is replaced.
//! - [`error`]: why a change was refused.

pub mod error;
pub mod hot_reload;
pub mod load;
pub mod monitor;
pub mod plan;
pub mod registry;
pub mod spec;
pub mod supervisor;

pub use error::{ControlError, known};
pub use monitor::{Monitor, PipelineView};
pub use plan::{Plan, plan};
pub use registry::{Origin, PluginDetail, PluginEntry, PluginState, PluginSummary};
pub use spec::{HostSpec, LimitOverrides, PipelineDef, PluginCode, PluginDef, SourceDef};
pub use supervisor::{
    ConfigReport, ControlStatus, Shared, Supervisor, SwapReport, Timeouts, WasmSource,
};
