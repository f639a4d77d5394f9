//! Why an admin operation was refused. Each refusal leaves the running host as it
//! was and says what was wrong.

use axum::http::StatusCode;

/// An admin operation refused.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// No plugin by that name.
    #[error("no plugin named `{name}` ({known})")]
    UnknownPlugin {
        /// The name asked for.
        name: String,
        /// The names there are, for the message.
        known: String,
    },
    /// No pipeline by that name.
    #[error("no pipeline named `{name}` ({known})")]
    UnknownPipeline {
        /// The name asked for.
        name: String,
        /// The names there are.
        known: String,
    },
    /// The request itself is wrong (a path outside the plugins directory, a bad
    /// config value).
    #[error("{0}")]
    BadRequest(String),
    /// The plugin was refused: corrupt bytes, another interface, a trap in init,
    /// a failed smoke test, a refused state.
    #[error("{0}")]
    Refused(String),
    /// The request conflicts with what is running (an existing name, a collector
    /// a pipeline needs, nothing to roll back to).
    #[error("{0}")]
    Conflict(String),
    /// The new configuration was refused; the running one is untouched.
    #[error("{0}")]
    Config(String),
    /// A pipeline did not answer within the bound; the change was not applied.
    #[error("{0}")]
    Timeout(String),
    /// The host is shutting down; the change was not applied.
    #[error("the host is shutting down; the change was not applied")]
    ShuttingDown,
    /// A bug: the change's task failed.
    #[error("{0}")]
    Internal(String),
}

impl AdminError {
    /// The HTTP status of the refusal.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::UnknownPlugin { .. } | Self::UnknownPipeline { .. } => StatusCode::NOT_FOUND,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Refused(_) | Self::Config(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Self::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownPlugin { .. } => "unknown_plugin",
            Self::UnknownPipeline { .. } => "unknown_pipeline",
            Self::BadRequest(_) => "bad_request",
            Self::Refused(_) => "refused",
            Self::Conflict(_) => "conflict",
            Self::Config(_) => "config",
            Self::Timeout(_) => "timeout",
            Self::ShuttingDown => "shutting_down",
            Self::Internal(_) => "internal",
        }
    }
}

pub(crate) use crate::config::known;
