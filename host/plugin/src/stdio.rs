//! A plugin's stdout and stderr, routed into the host's `tracing` log.
//!
//! Output is split into lines and logged with the plugin's name. The last few
//! stderr lines of the current call are kept so that a trap's error can quote
//! them (a Rust guest prints its panic message there just before it aborts).
//! Volume is bounded per call: a plugin that floods its output is cut off after
//! [`MAX_LINES_PER_CALL`] lines, and the number of suppressed lines is logged.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

/// Lines logged per call and stream before the rest are suppressed.
pub const MAX_LINES_PER_CALL: u32 = 64;
/// Longest line logged; longer lines are cut.
const MAX_LINE_BYTES: usize = 2048;
/// Stderr lines kept for trap messages.
const RECENT_LINES: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stream {
    Stdout,
    Stderr,
}

#[derive(Debug)]
struct Shared {
    plugin: Arc<str>,
    partial: [Vec<u8>; 2],
    recent_stderr: VecDeque<String>,
    lines_this_call: u32,
    suppressed: u32,
}

/// The log sink shared by a plugin instance's stdout, stderr and `host.log` import.
#[derive(Debug, Clone)]
pub(crate) struct GuestLog {
    shared: Arc<Mutex<Shared>>,
}

impl GuestLog {
    pub(crate) fn new(plugin: Arc<str>) -> Self {
        Self {
            shared: Arc::new(Mutex::new(Shared {
                plugin,
                partial: [Vec::new(), Vec::new()],
                recent_stderr: VecDeque::new(),
                lines_this_call: 0,
                suppressed: 0,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        // A panic while holding this lock would be a host bug; keep logging anyway.
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a new guest call: forgets the previous call's recent lines and quota.
    pub(crate) fn begin_call(&self) {
        let mut s = self.lock();
        s.recent_stderr.clear();
        s.lines_this_call = 0;
        s.suppressed = 0;
    }

    /// Ends a guest call: flushes partial lines and reports suppressed output.
    pub(crate) fn end_call(&self) {
        let mut s = self.lock();
        for stream in [Stream::Stdout, Stream::Stderr] {
            let pending = std::mem::take(&mut s.partial[stream as usize]);
            if !pending.is_empty() {
                s.emit(stream, &pending);
            }
        }
        if s.suppressed > 0 {
            tracing::warn!(
                plugin = %s.plugin,
                suppressed = s.suppressed,
                "plugin output exceeded {MAX_LINES_PER_CALL} lines in one call; the rest was dropped"
            );
            s.suppressed = 0;
        }
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

    /// Whether one more structured log line fits this call's quota.
    pub(crate) fn take_quota(&self) -> bool {
        let mut s = self.lock();
        s.take_quota()
    }

    /// The plugin name this log is tagged with.
    pub(crate) fn plugin(&self) -> Arc<str> {
        self.lock().plugin.clone()
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
        while let Some(pos) = bytes.iter().position(|&b| b == b'\n') {
            let mut line = std::mem::take(&mut s.partial[stream as usize]);
            line.extend_from_slice(&bytes[..pos]);
            s.emit(stream, &line);
            bytes = &bytes[pos + 1..];
        }
        let partial = &mut s.partial[stream as usize];
        let room = MAX_LINE_BYTES.saturating_sub(partial.len());
        partial.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }
}

impl Shared {
    fn take_quota(&mut self) -> bool {
        if self.lines_this_call >= MAX_LINES_PER_CALL {
            self.suppressed += 1;
            return false;
        }
        self.lines_this_call += 1;
        true
    }

    fn emit(&mut self, stream: Stream, line: &[u8]) {
        let line = &line[..line.len().min(MAX_LINE_BYTES)];
        let text = String::from_utf8_lossy(line)
            .trim_end_matches('\r')
            .to_string();
        if stream == Stream::Stderr {
            if self.recent_stderr.len() == RECENT_LINES {
                self.recent_stderr.pop_front();
            }
            self.recent_stderr.push_back(text.clone());
        }
        if !self.take_quota() {
            return;
        }
        match stream {
            Stream::Stdout => tracing::info!(plugin = %self.plugin, stream = "stdout", "{text}"),
            Stream::Stderr => tracing::warn!(plugin = %self.plugin, stream = "stderr", "{text}"),
        }
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

    #[test]
    fn keeps_recent_stderr_lines_for_trap_messages() {
        let log = GuestLog::new("p".into());
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
    fn floods_are_cut_off() {
        let log = GuestLog::new("p".into());
        log.begin_call();
        for _ in 0..1000 {
            log.write(Stream::Stdout, b"spam\n");
        }
        let s = log.lock();
        assert_eq!(s.lines_this_call, MAX_LINES_PER_CALL);
        assert_eq!(s.suppressed, 1000 - MAX_LINES_PER_CALL);
    }
}
