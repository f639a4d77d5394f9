//! The three plugin worlds and their typed calls.

mod collector;
mod convert;
mod delta;
mod metric;
mod series;

pub use collector::CollectorWorld;
pub use delta::{DeltaWorld, Deltas, TopicDiff};
pub use metric::MetricWorld;

pub use series::MAX_DECLARED_SERIES;

pub(crate) use convert::{v1::info_from_v1, v2::info_from_v2};
pub(crate) use series::DeclaredSeries;
