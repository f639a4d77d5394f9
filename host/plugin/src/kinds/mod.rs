//! The three plugin worlds and their typed calls.

mod collector;
mod convert;
mod delta;
mod given;
mod metric;
mod series;

pub use collector::CollectorWorld;
pub use delta::{DeltaWorld, Deltas, TopicDiff};
pub use metric::MetricWorld;

pub use series::MAX_DECLARED_SERIES;

pub(crate) use convert::{v1::info_from_v1, v2::info_from_v2, v3::info_from_v3};
pub(crate) use given::GivenSeries;
pub(crate) use series::DeclaredSeries;
