//! Since when a connection's writes have been waiting for room in its socket.
//!
//! A plain HTTP connection (an SSE stream above all) whose client stopped
//! reading fills its socket, and hyper then stops asking the stream for more: the
//! stream cannot notice. [`WriteWatch`] wraps the socket and remembers when a
//! write last had to wait, until one makes progress again; the connection's task
//! drops the connection once that wait exceeds `write_timeout_ms`, as a WebSocket
//! is closed as a slow consumer (4003). While the client reads, however slowly,
//! writes make progress and the wait starts over: conflation, not disconnection,
//! is the answer to a slow reader.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// When the pending write started waiting, shared with the connection's task.
#[derive(Debug, Clone)]
pub(crate) struct Blocked {
    /// Nanoseconds after `base` when the wait began, plus one; 0: not waiting.
    since: Arc<AtomicU64>,
    base: Instant,
}

impl Blocked {
    fn new() -> Self {
        Self {
            since: Arc::new(AtomicU64::new(0)),
            base: Instant::now(),
        }
    }

    fn note(&self, pending: bool) {
        if pending {
            let now = self.base.elapsed().as_nanos() as u64 + 1;
            // Only the first pending write of a wait sets its start.
            let _ = self
                .since
                .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
        } else {
            self.since.store(0, Ordering::Relaxed);
        }
    }

    /// How long the pending write has waited, if one is waiting.
    pub(crate) fn waiting(&self) -> Option<Duration> {
        match self.since.load(Ordering::Relaxed) {
            0 => None,
            since => Some(
                self.base
                    .elapsed()
                    .saturating_sub(Duration::from_nanos(since - 1)),
            ),
        }
    }

    /// Resolves once a write has waited longer than `limit`.
    pub(crate) async fn longer_than(&self, limit: Duration) {
        let check = (limit / 4).max(Duration::from_millis(10));
        loop {
            tokio::time::sleep(check).await;
            if self.waiting().is_some_and(|w| w > limit) {
                return;
            }
        }
    }
}

/// A socket whose waiting writes are noted in a [`Blocked`].
#[derive(Debug)]
pub(crate) struct WriteWatch<T> {
    io: T,
    blocked: Blocked,
}

impl<T> WriteWatch<T> {
    /// Watches `io`'s writes.
    pub(crate) fn new(io: T) -> Self {
        Self {
            io,
            blocked: Blocked::new(),
        }
    }

    /// The shared record of its waits.
    pub(crate) fn blocked(&self) -> Blocked {
        self.blocked.clone()
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WriteWatch<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WriteWatch<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.io).poll_write(cx, buf);
        self.blocked.note(poll.is_pending());
        poll
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.blocked.note(poll.is_pending());
        poll
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.io).poll_flush(cx);
        self.blocked.note(poll.is_pending());
        poll
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_lasts_from_the_first_pending_write_to_the_next_progress() {
        let b = Blocked::new();
        assert_eq!(b.waiting(), None);
        b.note(true);
        std::thread::sleep(Duration::from_millis(5));
        b.note(true);
        assert!(b.waiting().unwrap() >= Duration::from_millis(5));
        b.note(false);
        assert_eq!(b.waiting(), None);
    }
}
