//! The three plugin worlds and their typed calls.

mod collector;
mod convert;
mod delta;
mod metric;

pub use collector::CollectorWorld;
pub use delta::DeltaWorld;
pub use metric::MetricWorld;
