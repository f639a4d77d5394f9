//! The plugin runtime against real components built from `plugins/`.
//!
//! Build them first: `scripts/build-plugins.sh` (the test command does it).

mod collectors;
mod contracts;
mod delta;
mod faults;
mod hostile;
mod loading;
mod logging;
mod metrics;
mod state;
mod support;
mod timeouts;
