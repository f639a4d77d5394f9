//! A change to one topic, as the pipeline hands it to the hub.

use std::sync::Arc;

use crate::delta::Delta;
use crate::field::TopicState;

/// One change to a topic: the delta to send, and the complete state after it.
///
/// Invariant: `state` is the previous state with `delta` applied (see
/// [`Delta::apply_to`]), so a subscriber that applies every delta in order holds
/// exactly `state`.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicChange {
    /// The topic, e.g. `trades/BTC-USD`.
    pub topic: Arc<str>,
    /// Fields set and removed.
    pub delta: Delta,
    /// Fields that became stale with this change (not updated within their TTL).
    /// They keep their last value in `state`; subscribers are told they are stale.
    pub stale: Vec<String>,
    /// The complete state after the change.
    pub state: Arc<TopicState>,
    /// When the change was made, Unix milliseconds.
    pub timestamp_ms: i64,
    /// True for an event of a stream topic: `delta.changed` holds all its fields,
    /// in order, and `state` is the event itself. Events are delivered one by
    /// one, never merged; a topic holds either events or state, never both.
    pub event: bool,
}
