//! Errors of loading a plugin and of calling one. Each message names the plugin
//! (file or name) and says what went wrong in terms an operator can act on.

use std::path::PathBuf;

use thiserror::Error;
use wasmeter_core::validate::OutputError;

/// Why a component could not be loaded as a plugin.
#[derive(Debug, Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read plugin {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The bytes are not a WebAssembly component.
    #[error("{origin}: not a WebAssembly component: {reason}")]
    NotAComponent {
        /// Where the bytes came from.
        origin: String,
        /// What was found instead.
        reason: String,
    },
    /// The component does not implement the expected world (or another version of it).
    #[error("{origin}: wrong plugin interface: {detail}")]
    WrongInterface {
        /// Where the bytes came from.
        origin: String,
        /// Expected vs found interfaces.
        detail: String,
    },
    /// The component failed to compile.
    #[error("{origin}: cannot compile: {reason}")]
    Compile {
        /// Where the bytes came from.
        origin: String,
        /// The compiler's message.
        reason: String,
    },
    /// Instantiating or describing the component failed.
    #[error("{origin}: {stage} failed: {source}")]
    Start {
        /// Where the bytes came from.
        origin: String,
        /// `describe`, `init`, ...
        stage: &'static str,
        /// The call's error.
        source: CallError,
    },
    /// The plugin described itself inconsistently.
    #[error("{origin}: invalid self-description: {reason}")]
    BadDescription {
        /// Where the bytes came from.
        origin: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The runtime itself failed (e.g. the compile task panicked).
    #[error("plugin runtime error: {0}")]
    Runtime(String),
}

/// Why a call into a plugin failed. A failed call never affects other plugins.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum CallError {
    /// The call ran past its deadline and was interrupted.
    #[error("deadline exceeded: the call ran longer than {limit_ms} ms and was stopped")]
    Deadline {
        /// The per-call deadline.
        limit_ms: u64,
    },
    /// The plugin tried to grow its memory beyond its cap.
    #[error(
        "memory limit exceeded: the plugin asked for {requested_bytes} bytes of linear memory, its cap is {limit_bytes} bytes"
    )]
    MemoryLimit {
        /// The memory size the guest asked for.
        requested_bytes: usize,
        /// The cap.
        limit_bytes: usize,
    },
    /// The guest trapped (a panic, `unreachable`, an out-of-bounds access...).
    #[error("trap: {message}")]
    Trap {
        /// The trap and the plugin's last stderr lines.
        message: String,
    },
    /// The plugin returned an error of its own.
    #[error("plugin error: {0}")]
    Plugin(String),
    /// The plugin returned output the host refuses.
    #[error("invalid output: {0}")]
    InvalidOutput(#[from] OutputError),
    /// The plugin failed too many times in a row and is not called any more.
    #[error("quarantined after {failures} consecutive failures (last: {last_error})")]
    Quarantined {
        /// Consecutive failures that led to the quarantine.
        failures: u32,
        /// The last failure's message.
        last_error: String,
    },
}

impl CallError {
    /// True if the instance is unusable afterwards and must be rebuilt.
    pub fn poisons_instance(&self) -> bool {
        matches!(
            self,
            CallError::Deadline { .. } | CallError::MemoryLimit { .. } | CallError::Trap { .. }
        )
    }
}
