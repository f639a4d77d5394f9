//! Fan-out of topic updates to many subscribers, without any networking.
//!
//! The pipeline hands every [`TopicChange`](wasmeter_core::change::TopicChange) to
//! [`Hub::publish`]. The hub gives it the next position `(epoch, seq)` of its topic,
//! keeps it in the topic's bounded history as a shared [`Message`] and marks the
//! [`Slot`] of every subscriber of that topic dirty. Subscribers (the server's
//! connections) then read from the history at their own pace:
//! - a message is encoded at most once per wire [`Format`]; every subscriber sends
//!   the same [`bytes::Bytes`];
//! - publishing costs one atomic flag per subscriber, and nothing is queued per
//!   subscriber: a slow subscriber that falls behind the history is conflated to a
//!   snapshot of the latest state, so memory stays bounded and the state it ends up
//!   with is never wrong;
//! - a reconnecting subscriber is replayed exactly the messages it missed when the
//!   history still holds all of them, and told it was not otherwise
//!   ([`LogView::after`] never returns a partial list).
//!
//! # Layout
//! - [`hub`]: [`Hub`], topics by name, epochs, attaching subscribers.
//! - [`topic`]: one topic: its log (latest message + history) and its slots.
//! - `replica`: [`Hub::apply`], taking changes positioned by a broker several hosts share.
//! - `history`: the bounded ring of a topic's recent messages.
//! - [`message`]: one update with its lazily encoded, shared frames.
//! - [`codec`]: the wire form of `update`/`snapshot` frames, field subsets, delta composition.
//! - [`slot`]: [`Slot`] and the [`Subscriber`] trait (the conflating attachment).
//! - [`pattern`]: topic patterns (`trades/*`, `trades/**`).
//! - `watch`: who is told about topics created later (indexed patterns).
//!
//! ```
//! use std::sync::Arc;
//! use wasmeter_core::{change::TopicChange, delta::Delta, field::{FieldValue, TopicState}};
//! use wasmeter_hub::{Format, Hub, HubConfig};
//!
//! let hub = Hub::new(HubConfig::default());
//! let state = TopicState::from([("price".to_string(), FieldValue::Number(1.5))]);
//! let pos = hub.publish(TopicChange {
//!     topic: "trades/BTC-USD".into(),
//!     delta: Delta { changed: vec![("price".into(), FieldValue::Number(1.5))], removed: vec![] },
//!     stale: vec![],
//!     state: Arc::new(state),
//!     timestamp_ms: 0,
//!     event: false,
//! })?;
//! assert_eq!(pos.seq, 1);
//! let (at, state) = hub.snapshot("trades/BTC-USD").unwrap();
//! assert_eq!((at, state.len()), (pos, 1));
//! # Ok::<(), wasmeter_hub::PublishError>(())
//! ```

pub mod codec;
mod history;
pub mod hub;
pub mod message;
pub mod pattern;
mod replica;
pub mod slot;
mod slot_set;
pub mod topic;
mod watch;

pub use codec::{Envelope, FieldSet, Format, Wire};
pub use hub::{Hub, HubConfig, HubStats, PublishError, TopicInfo};
pub use message::Message;
pub use pattern::{Pattern, PatternError};
pub use replica::Applied;
pub use slot::{Slot, Subscriber};
pub use topic::LogView;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_scale;
