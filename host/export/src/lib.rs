//! Samples out of the host: outputs that write them to time-series databases
//! (Prometheus remote_write, InfluxDB line protocol over HTTP), each with its own
//! bounded queue, batching, retries with backoff and a bounded on-disk buffer;
//! and alert delivery to Alertmanager's v2 API or a webhook.
//!
//! Nothing here runs on the async runtime: each output has an intake thread
//! (select, batch, encode, queue or spill to disk) and a sender thread (HTTP with
//! retries), so a slow database never holds a pipeline or a runtime worker.

pub mod alerts;
pub mod buffer;
pub mod line;
pub mod output;
pub mod remote_write;
pub mod series;

mod client;
mod queue;
mod sender;
mod stop;

pub use alerts::{AlertConfig, AlertStats, Alerts};
pub use output::{Backoff, Output, OutputConfig, OutputSender, OutputStats, Protocol};
