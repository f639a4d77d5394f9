//! A plugin's log: its stdout and stderr, and its `log` import, routed into the
//! host's `tracing` log under the limits of `log_limit.rs`.
//!
//! Output is split into lines and logged with the plugin's name. The last few
//! stderr lines of the current call are kept so that a trap's error can quote
//! them (a Rust guest prints its panic message there just before it aborts).
//! Every line, whichever way it came, draws on the instance's one log quota.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

use crate::bindings::host::LogLevel;
use crate::health::HealthHandle;
use crate::log_limit::{
    LogLimiter, MAX_MESSAGE_BYTES, Suppressed, cap_fields, cap_text, cap_text_after,
};

/// Stderr lines kept for trap messages.
const RECENT_LINES: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stream {
    Stdout,
    Stderr,
}

/// A line being assembled from stream writes: its first bytes and how many were cut.
#[derive(Debug, Default)]
struct Partial {
    bytes: Vec<u8>,
    cut: usize,
}

#[derive(Debug)]
struct Shared {
    plugin: Arc<str>,
    partial: [Partial; 2],
    recent_stderr: VecDeque<String>,
    limiter: LogLimiter,
    health: HealthHandle,
}

/// The log sink shared by a plugin instance's stdout, stderr and `host.log` import.
/// Owned by the supervised instance and handed to each store it builds, so the
/// quota outlives a rebuild.
#[derive(Debug, Clone)]
pub(crate) struct GuestLog {
    shared: Arc<Mutex<Shared>>,
}

impl GuestLog {
    /// A log for `plugin` allowed `bytes_per_sec`, counting suppressions in `health`.
    pub(crate) fn new(plugin: Arc<str>, bytes_per_sec: u64, health: HealthHandle) -> Self {
        Self {
            shared: Arc::new(Mutex::new(Shared {
                plugin,
                partial: Default::default(),
                recent_stderr: VecDeque::new(),
                limiter: LogLimiter::new(bytes_per_sec, Instant::now()),
                health,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        // A panic while holding this lock would be a host bug; keep logging anyway.
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a new guest call: forgets the previous call's recent lines and
    /// starts its flood accounting.
    pub(crate) fn begin_call(&self) {
        let mut s = self.lock();
        s.recent_stderr.clear();
        s.limiter.begin_call();
    }

    /// Ends a guest call: flushes partial lines, reports suppressed output, and
    /// returns why the call flooded the log, if it did.
    pub(crate) fn end_call(&self) -> Option<String> {
        let mut s = self.lock();
        for stream in [Stream::Stdout, Stream::Stderr] {
            let pending = std::mem::take(&mut s.partial[stream as usize]);
            if !pending.bytes.is_empty() || pending.cut > 0 {
                s.emit(stream, pending);
            }
        }
        let (summary, flood) = s.limiter.end_call(Instant::now());
        if let Some(summary) = summary {
            s.report(summary);
        }
        flood
    }

    /// The last stderr lines of the current call, joined for an error message.
    pub(crate) fn recent_stderr(&self) -> Option<String> {
        let s = self.lock();
        (!s.recent_stderr.is_empty()).then(|| {
            s.recent_stderr
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join(" | ")
        })
    }

    /// A line of the `log` import: capped, then logged if the quota allows.
    pub(crate) fn log(&self, level: LogLevel, message: &str, fields: Vec<(String, String)>) {
        let mut s = self.lock();
        let handed = message.len() + fields.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
        s.limiter.attempted(handed);
        let message = cap_text(message, MAX_MESSAGE_BYTES);
        let fields = cap_fields(fields);
        let size = message.len() + fields.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
        if !s.admit(size) {
            return;
        }
        let plugin = &s.plugin;
        let fields = FieldsDisplay(&fields);
        match level {
            LogLevel::Trace => tracing::trace!(plugin = %plugin, fields = %fields, "{message}"),
            LogLevel::Debug => tracing::debug!(plugin = %plugin, fields = %fields, "{message}"),
            LogLevel::Info => tracing::info!(plugin = %plugin, fields = %fields, "{message}"),
            LogLevel::Warn => tracing::warn!(plugin = %plugin, fields = %fields, "{message}"),
            LogLevel::Error => tracing::error!(plugin = %plugin, fields = %fields, "{message}"),
        }
    }

    fn stream(&self, stream: Stream) -> GuestStream {
        GuestStream {
            log: self.clone(),
            stream,
        }
    }

    /// The WASI stdout stream.
    pub(crate) fn stdout(&self) -> GuestStream {
        self.stream(Stream::Stdout)
    }

    /// The WASI stderr stream.
    pub(crate) fn stderr(&self) -> GuestStream {
        self.stream(Stream::Stderr)
    }

    fn write(&self, stream: Stream, mut bytes: &[u8]) {
        let mut s = self.lock();
        s.limiter.attempted(bytes.len());
        while let Some(pos) = bytes.iter().position(|&b| b == b'\n') {
            let mut line = std::mem::take(&mut s.partial[stream as usize]);
            line.append(&bytes[..pos]);
            s.emit(stream, line);
            bytes = &bytes[pos + 1..];
        }
        s.partial[stream as usize].append(bytes);
    }
}

impl Partial {
    /// Keeps up to [`MAX_MESSAGE_BYTES`] (one more, to cut on a character boundary
    /// later) and counts the rest.
    fn append(&mut self, bytes: &[u8]) {
        let room = (MAX_MESSAGE_BYTES + 4).saturating_sub(self.bytes.len());
        let kept = bytes.len().min(room);
        self.bytes.extend_from_slice(&bytes[..kept]);
        self.cut += bytes.len() - kept;
    }
}

impl Shared {
    /// Takes quota for a line of `size` bytes; reports lines suppressed before it.
    fn admit(&mut self, size: usize) -> bool {
        match self.limiter.admit(size, Instant::now()) {
            Ok(summary) => {
                if let Some(summary) = summary {
                    self.report(summary);
                }
                true
            }
            Err(()) => {
                let cells = &self.health.0;
                cells.log_lines_suppressed.fetch_add(1, Relaxed);
                cells.log_bytes_suppressed.fetch_add(size as u64, Relaxed);
                false
            }
        }
    }

    fn report(&self, summary: Suppressed) {
        tracing::warn!(
            plugin = %self.plugin,
            suppressed_lines = summary.lines,
            suppressed_bytes = summary.bytes,
            "{} log lines ({} bytes) suppressed: the plugin exceeded its log quota",
            summary.lines,
            summary.bytes
        );
    }

    fn emit(&mut self, stream: Stream, line: Partial) {
        let text = String::from_utf8_lossy(&line.bytes);
        let text = text.trim_end_matches('\r');
        let text = cap_text_after(text, MAX_MESSAGE_BYTES, line.cut);
        if stream == Stream::Stderr {
            if self.recent_stderr.len() == RECENT_LINES {
                self.recent_stderr.pop_front();
            }
            self.recent_stderr.push_back(text.clone());
        }
        if !self.admit(text.len()) {
            return;
        }
        match stream {
            Stream::Stdout => tracing::info!(plugin = %self.plugin, stream = "stdout", "{text}"),
            Stream::Stderr => tracing::warn!(plugin = %self.plugin, stream = "stderr", "{text}"),
        }
    }
}

struct FieldsDisplay<'a>(&'a [(String, String)]);

impl std::fmt::Display for FieldsDisplay<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{k}={v:?}")?;
        }
        Ok(())
    }
}

/// One of a plugin's output streams, as WASI sees it.
#[derive(Debug, Clone)]
pub(crate) struct GuestStream {
    log: GuestLog,
    stream: Stream,
}

impl IsTerminal for GuestStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestStream {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl OutputStream for GuestStream {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.log.write(self.stream, &bytes);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(64 * 1024)
    }
}

#[async_trait::async_trait]
impl Pollable for GuestStream {
    async fn ready(&mut self) {}
}

impl AsyncWrite for GuestStream {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.log.write(self.stream, buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(rate: u64) -> (GuestLog, HealthHandle) {
        let health = HealthHandle::default();
        (GuestLog::new("p".into(), rate, health.clone()), health)
    }

    #[test]
    fn keeps_recent_stderr_lines_for_trap_messages() {
        let (log, _) = log(1 << 20);
        log.begin_call();
        log.write(Stream::Stderr, b"thread panicked at src/lib.rs:3:5:\nboom");
        log.write(Stream::Stderr, b"!\n");
        assert_eq!(
            log.recent_stderr().as_deref(),
            Some("thread panicked at src/lib.rs:3:5: | boom!")
        );
        log.begin_call();
        assert_eq!(log.recent_stderr(), None);
    }

    #[test]
    fn long_lines_are_cut_with_the_count_of_cut_bytes() {
        let (log, _) = log(1 << 20);
        log.begin_call();
        log.write(Stream::Stderr, &[b'x'; 10_000]);
        log.write(Stream::Stderr, &[b'y'; 1000]);
        log.write(Stream::Stderr, b"\n");
        let line = log.recent_stderr().unwrap();
        assert!(
            line.starts_with(&"x".repeat(MAX_MESSAGE_BYTES)),
            "{}",
            &line[..10]
        );
        assert!(
            line.ends_with("… [6904 bytes cut]"),
            "{}",
            &line[line.len() - 30..]
        );
    }

    #[test]
    fn floods_are_suppressed_and_counted() {
        let (log, health) = log(10_000);
        log.begin_call();
        for _ in 0..1000 {
            log.write(Stream::Stdout, b"spam\n");
        }
        // 10,000 bytes of quota at 4 + 64 bytes a line: 147 lines pass (a few more
        // if the bucket refilled meanwhile; the exact arithmetic is tested in log_limit).
        let h = health.snapshot();
        assert!(
            (800..=1000 - 147).contains(&h.log_lines_suppressed),
            "{h:?}"
        );
        assert_eq!(h.log_bytes_suppressed, h.log_lines_suppressed * 4);
        assert_eq!(log.end_call(), None, "5,000 bytes are not a flood");
    }
}
