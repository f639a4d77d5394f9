//! # wasmeter-history: what every sample series was, and when
//!
//! The pipelines hand each batch of admitted samples to a [`HistoryWriter`],
//! which appends them to the embedded store (`wasmeter-tsdb`: raw data and
//! 1 s / 1 min / 1 h tiers, compressed, crash-safe) on a thread of its own. The
//! store answers the subset of the Prometheus HTTP API that Grafana's
//! Prometheus data source uses for plain queries ([`api::router`]):
//! `/api/v1/query` and `/api/v1/query_range` on series selectors,
//! `/api/v1/series`, `/api/v1/labels` and `/api/v1/label/<name>/values`.
//!
//! A sample `trade_price{symbol="BTC"}` is stored as the series
//! `trade_price{symbol="BTC"}`: its name is the label `__name__`, its labels
//! those the pipeline published (including the pipeline's own `labels`).

pub mod api;
mod refs;
mod selector;
mod writer;

pub use selector::{SelectorError, parse_selector};
pub use writer::{HistorySender, HistoryStats, HistoryWriter};
