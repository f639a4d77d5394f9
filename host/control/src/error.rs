//! Why a change was refused. Each refusal leaves the running host as it was and
//! says what was wrong; [`ControlError::code`] is stable for callers (the admin
//! API maps it to an HTTP status).

/// A change refused.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
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

impl ControlError {
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

/// "defined: `a`, `b`" or "none are defined", for messages.
pub fn known<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let names: Vec<_> = names.map(|n| format!("`{n}`")).collect();
    if names.is_empty() {
        "none are defined".into()
    } else {
        format!("defined: {}", names.join(", "))
    }
}
