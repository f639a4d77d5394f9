//! What a collector produces from one chunk.

use serde::{Deserialize, Serialize};

use crate::field::Field;
use crate::sample::Sample;
use crate::sample_batch::SampleBatch;

/// New values for some fields of a topic; fields not named keep their value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopicUpdate {
    /// Topic name, e.g. `trades/BTC-USD`.
    pub topic: String,
    /// The fields to set.
    pub fields: Vec<Field>,
}

/// A record of a chunk that a collector could not use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordError {
    /// 1-based line number within the chunk.
    pub line: u32,
    /// Byte offset of the record within the chunk.
    pub offset: u32,
    /// What was wrong.
    pub message: String,
}

/// Everything one `collect` call produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CollectOutput {
    /// Samples, in the order the plugin emitted them.
    pub samples: Vec<Sample>,
    /// Topic updates, in order.
    pub updates: Vec<TopicUpdate>,
    /// Events of stream topics, in order (contract 0.2.0): each is delivered,
    /// never merged with the next.
    pub events: Vec<TopicUpdate>,
    /// Per-record problems; records not listed were used.
    pub errors: Vec<RecordError>,
    /// Samples of the series the plugin declared (contract 0.3.0), in order;
    /// they follow `samples`. Checked with their series, when declared.
    pub points: SampleBatch,
}

impl CollectOutput {
    /// Every sample made whole: `samples`, then the samples of `points`.
    pub fn all_samples(&self) -> Vec<Sample> {
        let mut all = self.samples.clone();
        all.extend(self.points.samples_from(0));
        all
    }
}
