//! The three plugin worlds and their typed calls.

mod collector;
mod convert;
mod delta;
mod metric;

pub use collector::CollectorWorld;
pub use delta::{DeltaWorld, Deltas, TopicDiff};
pub use metric::MetricWorld;

pub(crate) use convert::v1::info_from_v1;
