//! What the host says about itself: `GET /metrics` (Prometheus text or OpenMetrics:
//! self-metrics and the latest value of every collected series) and
//! `GET /api/plugins` (every plugin instance with its health), read from the
//! control plane's [`Monitor`].
//!
//! - `names`: every self-metric's name, type and help, in one place.
//! - `exposition`: the two exposition formats.
//! - `render`: [`Monitor`] -> exposition.
//! - `routes`: the HTTP handlers, `/api/plugins` JSON.
//! - `export`: the outputs' and alert delivery's counters.
//! - `broker`: the Redis broker's follower, writer and leases.

mod broker;
mod export;
pub mod exposition;
pub mod names;
mod process;
mod render;
mod routes;

pub use render::Views;
pub use routes::router;
pub use wasmeter_control::Monitor;
