//! An output's queue of encoded request bodies: in memory up to a bound, then on
//! disk. Order is kept: once anything is on disk, new frames go to disk too
//! until it is drained, and memory (older) is sent before disk (newer).

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use crate::buffer::{DiskBuffer, Dropped, FrameId};
use crate::output::OutputStats;

/// An encoded request body and the samples in it.
#[derive(Debug, Clone)]
pub struct Frame {
    /// Samples.
    pub samples: u32,
    /// The body.
    pub body: Arc<Vec<u8>>,
}

/// Where the frame being sent came from.
#[derive(Debug, Clone, Copy)]
pub enum Place {
    /// The front of the memory queue.
    Memory,
    /// The disk buffer.
    Disk(FrameId),
}

struct Inner {
    memory: VecDeque<Frame>,
    memory_bytes: usize,
    disk: DiskBuffer,
}

/// The queue shared by an output's intake (push) and sender (head, done).
pub struct Queue {
    inner: Mutex<Inner>,
    ready: Condvar,
    memory_limit: usize,
    stats: Arc<OutputStats>,
}

impl Queue {
    /// A queue holding up to `memory_limit` bytes in memory before `disk`.
    pub fn new(disk: DiskBuffer, memory_limit: usize, stats: Arc<OutputStats>) -> Self {
        let q = Self {
            inner: Mutex::new(Inner {
                memory: VecDeque::new(),
                memory_bytes: 0,
                disk,
            }),
            ready: Condvar::new(),
            memory_limit,
            stats,
        };
        q.update_gauges(&q.lock());
        q
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn update_gauges(&self, inner: &Inner) {
        let bytes = inner.memory_bytes as u64 + inner.disk.unsent_bytes();
        self.stats.buffered_bytes.store(bytes, Relaxed);
        self.stats.disk_bytes.store(inner.disk.bytes(), Relaxed);
    }

    fn count_dropped(&self, d: Dropped) {
        if d.samples > 0 || d.frames > 0 {
            self.stats.dropped_full.fetch_add(d.samples, Relaxed);
            tracing::warn!(
                frames = d.frames,
                samples = d.samples,
                "output buffer full: the oldest samples were dropped"
            );
        }
    }

    /// Queues a frame: in memory if there is room and nothing is on disk, else
    /// on disk (making room there by dropping the oldest, counted).
    pub fn push(&self, frame: Frame) -> io::Result<()> {
        let mut inner = self.lock();
        let len = frame.body.len();
        if inner.disk.is_empty() && inner.memory_bytes + len <= self.memory_limit {
            inner.memory_bytes += len;
            inner.memory.push_back(frame);
        } else {
            let dropped = inner.disk.append(frame.samples, &frame.body)?;
            self.count_dropped(dropped);
        }
        self.update_gauges(&inner);
        drop(inner);
        self.ready.notify_one();
        Ok(())
    }

    /// The oldest frame, waiting up to `bound` for one.
    pub fn head(&self, bound: Duration) -> io::Result<Option<(Place, Frame)>> {
        let mut inner = self.lock();
        if inner.memory.is_empty() && inner.disk.is_empty() {
            inner = self
                .ready
                .wait_timeout(inner, bound)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        if let Some(f) = inner.memory.front() {
            return Ok(Some((Place::Memory, f.clone())));
        }
        let mut corrupt = Dropped::default();
        let head = inner.disk.head(&mut corrupt)?;
        if corrupt.samples > 0 {
            self.stats
                .dropped_corrupt
                .fetch_add(corrupt.samples, Relaxed);
        }
        Ok(head.map(|s| {
            let frame = Frame {
                samples: s.samples,
                body: Arc::new(s.body),
            };
            (Place::Disk(s.id), frame)
        }))
    }

    /// The frame from `head` is done with (sent or refused).
    pub fn done(&self, place: Place) -> io::Result<()> {
        let mut inner = self.lock();
        match place {
            Place::Memory => {
                if let Some(f) = inner.memory.pop_front() {
                    inner.memory_bytes -= f.body.len();
                }
            }
            Place::Disk(id) => inner.disk.ack(id)?,
        }
        self.update_gauges(&inner);
        Ok(())
    }

    /// Whether nothing waits to be sent.
    pub fn is_empty(&self) -> bool {
        let inner = self.lock();
        inner.memory.is_empty() && inner.disk.is_empty()
    }

    /// Moves what is in memory to the front of the disk buffer (at shutdown,
    /// after the sender stopped) and syncs it.
    pub fn spill(&self) -> io::Result<()> {
        let mut inner = self.lock();
        let frames: Vec<Frame> = inner.memory.drain(..).collect();
        inner.memory_bytes = 0;
        let refs: Vec<(u32, &[u8])> = frames.iter().map(|f| (f.samples, &f.body[..])).collect();
        let dropped = inner.disk.prepend(&refs)?;
        self.count_dropped(dropped);
        inner.disk.sync()?;
        self.update_gauges(&inner);
        Ok(())
    }
}
