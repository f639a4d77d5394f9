//! Logging into the host's log (the `host.log` import) and the host's clocks.
//!
//! ```no_run
//! use wasmeter_sdk::log;
//!
//! log::info("started");
//! log::warn_with("skipping series", &[("name", "cpu"), ("reason", "too many labels")]);
//! ```
//!
//! Outside WebAssembly (native unit tests of plugin logic) log lines go to stderr and the
//! clocks use the operating system, so logic that logs can be tested natively.

use crate::LogLevel;

/// Writes a log line with structured `fields` into the host's log, tagged with the
/// plugin's name.
pub fn log(level: LogLevel, message: impl AsRef<str>, fields: &[(&str, &str)]) {
    let message = message.as_ref();
    #[cfg(target_arch = "wasm32")]
    {
        let fields: Vec<(String, String)> = fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        crate::bindings::collector::wasmeter::plugin::host::log(level, message, &fields);
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        eprintln!("[{level:?}] {message} {fields:?}");
    }
}

/// Logs `message` at trace level.
pub fn trace(message: impl AsRef<str>) {
    log(LogLevel::Trace, message, &[]);
}

/// Logs `message` at debug level.
pub fn debug(message: impl AsRef<str>) {
    log(LogLevel::Debug, message, &[]);
}

/// Logs `message` at info level.
pub fn info(message: impl AsRef<str>) {
    log(LogLevel::Info, message, &[]);
}

/// Logs `message` at warn level.
pub fn warn(message: impl AsRef<str>) {
    log(LogLevel::Warn, message, &[]);
}

/// Logs `message` at error level.
pub fn error(message: impl AsRef<str>) {
    log(LogLevel::Error, message, &[]);
}

/// Logs `message` with structured fields at info level.
pub fn info_with(message: impl AsRef<str>, fields: &[(&str, &str)]) {
    log(LogLevel::Info, message, fields);
}

/// Logs `message` with structured fields at warn level.
pub fn warn_with(message: impl AsRef<str>, fields: &[(&str, &str)]) {
    log(LogLevel::Warn, message, fields);
}

/// Logs `message` with structured fields at error level.
pub fn error_with(message: impl AsRef<str>, fields: &[(&str, &str)]) {
    log(LogLevel::Error, message, fields);
}

/// The host's wall-clock time in Unix milliseconds.
pub fn now_ms() -> i64 {
    #[cfg(target_arch = "wasm32")]
    {
        crate::bindings::collector::wasmeter::plugin::host::now_ms()
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }
}

/// Monotonic nanoseconds since an arbitrary origin, for measuring intervals.
pub fn monotonic_ns() -> u64 {
    #[cfg(target_arch = "wasm32")]
    {
        crate::bindings::collector::wasmeter::plugin::host::monotonic_ns()
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        use std::sync::OnceLock;
        use std::time::Instant;
        static ORIGIN: OnceLock<Instant> = OnceLock::new();
        ORIGIN.get_or_init(Instant::now).elapsed().as_nanos() as u64
    }
}
