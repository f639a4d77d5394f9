//! Where a subscriber is in a topic's stream of updates.

use serde::{Deserialize, Serialize};

/// A position in a topic's stream: `seq` counts the topic's updates from 1 within an
/// `epoch`. A new epoch (the host restarted, or the topic was recreated) means that
/// sequence numbers start again and that nothing from an older epoch can be resumed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StreamPosition {
    /// Identifies one lifetime of the topic's stream.
    pub epoch: String,
    /// The sequence number of the last update applied (0: none yet).
    pub seq: u64,
}
