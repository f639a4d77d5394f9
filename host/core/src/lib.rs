//! Pure data types of wasmeter, shared by every stage of the data path.
//!
//! Nothing here does I/O or depends on an async runtime or on wasmtime: these are
//! the values that flow from a collector plugin to a subscriber.
//!
//! # Layout
//! - [`sample`]: one measurement (`name{labels} value`), as Prometheus would see it.
//! - [`sample_batch`]: samples held as points of the series they belong to.
//! - [`field`]: the values of a topic's fields and a topic's complete state.
//! - [`update`]: what a collector produces from a chunk: topic updates and record errors.
//! - [`delta`]: the change between two states of a topic (merge-patch semantics).
//! - [`change`]: a change to one topic, as the pipeline hands it to the hub.
//! - [`position`]: where a subscriber is in a topic's stream (epoch, seq).
//! - [`plugin`]: a plugin's description of itself.
//! - [`validate`]: the rules plugin output must follow (names, sizes, finite numbers).
//!
//! ```
//! use wasmeter_core::{delta::Delta, field::{FieldValue, TopicState}};
//!
//! let mut state = TopicState::new();
//! state.insert("price".into(), FieldValue::Number(64_000.5));
//! let delta = Delta { changed: vec![("qty".into(), FieldValue::Number(0.25))], removed: vec![] };
//! delta.apply_to(&mut state);
//! assert_eq!(state.len(), 2);
//! ```

pub mod change;
pub mod delta;
pub mod field;
pub mod plugin;
pub mod position;
pub mod sample;
pub mod sample_batch;
pub mod saved;
pub mod series_key;
pub mod time;
pub mod update;
pub mod validate;
