//! What can go wrong talking to Redis.

/// A broker operation that did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrokerError {
    /// Redis could not be reached, failed, or did not answer within the bound:
    /// the caller retries later. A publish that fails this way may or may not have
    /// been applied (at-least-once).
    #[error("redis unavailable: {detail}")]
    Unavailable {
        /// What failed (connect, timeout, IO, server error).
        detail: String,
    },
    /// The pipeline's lease is no longer the caller's: nothing was written.
    #[error("lease of pipeline `{pipeline}` lost (held by {})", holder.as_deref().unwrap_or("nobody"))]
    Fenced {
        /// The pipeline whose lease was checked.
        pipeline: String,
        /// The node that holds it now, if any.
        holder: Option<String>,
    },
    /// Redis refused the change, e.g. an event to a state topic (the kind is fixed
    /// when the topic is created).
    #[error("topic `{topic}` refused the change: {reason}")]
    Refused {
        /// The topic.
        topic: String,
        /// Why.
        reason: String,
    },
    /// A configuration value is wrong.
    #[error("invalid config `{key}`: {reason}")]
    Config {
        /// The key, e.g. `broker.history_len`.
        key: String,
        /// Why it is wrong.
        reason: String,
    },
    /// Redis holds something this crate did not write (or a newer format).
    #[error("unreadable data at `{key}`: {reason}")]
    Corrupt {
        /// The key read.
        key: String,
        /// What was wrong with it.
        reason: String,
    },
}

impl BrokerError {
    pub(crate) fn unavailable(what: &str, e: impl std::fmt::Display) -> Self {
        BrokerError::Unavailable {
            detail: format!("{what}: {e}"),
        }
    }
}
