//! The plugin runtime against real components built from `plugins/`.
//!
//! Build them first: `scripts/build-plugins.sh` (the test command does it).

mod collectors;
mod delta;
mod faults;
mod loading;
mod metrics;
mod support;
