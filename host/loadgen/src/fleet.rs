//! The subscribers: many cheap bulk connections and a few timing connections,
//! each kind on its own thread with its own single-threaded runtime, so that the
//! bulk readers' batches never delay a timing connection's receive time.
//!
//! * Bulk connections read whatever has arrived every `tick` (non-blocking
//!   reads, large buffer) and only count frames and bytes: a wake-up per tick for
//!   the whole group instead of one per frame.
//! * Timing connections wake on every read and parse each frame: its record
//!   number says which records it stands for (those merged into it included,
//!   see [`crate::sendlog`]); for each record of the measured window they note
//!   the frame's receive time minus the record's own send time. Records never
//!   represented by any frame lower the coverage; none is silently left out.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::sendlog::SendLog;
use crate::stamp;
use crate::wire::{self, FrameCounter, FrameReader};

/// Loopback source addresses used in turn (more ephemeral ports).
const SOURCES: u8 = 8;
/// Connections opened at once.
const CONNECT_CONCURRENCY: usize = 64;
/// How long [`Fleet::drain`] waits without a record arriving.
pub const STALL: Duration = Duration::from_secs(2);

/// What to open.
#[derive(Debug, Clone)]
pub struct FleetSpec {
    /// Server address.
    pub addr: SocketAddr,
    /// Request path and query, e.g. `/ws?format=json`.
    pub path: String,
    /// The subscribe message of each bulk connection.
    pub bulk: Vec<String>,
    /// The subscribe message of each timing connection.
    pub timing: Vec<String>,
    /// How often bulk connections are read.
    pub tick: Duration,
    /// Topics the records are spread over (record `n` is topic `n % topics`).
    pub topics: usize,
    /// The producer's send times.
    pub log: Arc<SendLog>,
    /// Whether a frame carries the topic's state, and so stands for the records
    /// merged into it (the host); otherwise (the floor: one raw line per frame) a
    /// record without its own frame was lost.
    pub frames_merge: bool,
    /// Keep each timed record's send time ([`Timings::sent_us`]).
    pub timeline: bool,
}

/// The measured window, as a range of record numbers: set by the run, read by
/// the timing connections.
#[derive(Debug)]
pub struct Window {
    from: AtomicU64,
    to: AtomicU64,
    /// Timing connections that have received every record of a closed window.
    drained: AtomicUsize,
    /// Records of the window represented so far, over all timing connections.
    progress: AtomicU64,
}

impl Default for Window {
    fn default() -> Self {
        Self {
            from: AtomicU64::new(u64::MAX),
            to: AtomicU64::new(u64::MAX),
            drained: AtomicUsize::new(0),
            progress: AtomicU64::new(0),
        }
    }
}

impl Window {
    /// Opens the window at record `from`.
    pub fn open(&self, from: u64) {
        self.from.store(from, Ordering::Relaxed);
    }

    /// Closes it before record `to`.
    pub fn close(&self, to: u64) {
        self.to.store(to, Ordering::Relaxed);
    }

    fn contains(&self, n: u64) -> bool {
        n >= self.from.load(Ordering::Relaxed) && n < self.to.load(Ordering::Relaxed)
    }

    /// Records in the closed window.
    fn len(&self) -> u64 {
        let (from, to) = (
            self.from.load(Ordering::Relaxed),
            self.to.load(Ordering::Relaxed),
        );
        if to == u64::MAX {
            0
        } else {
            to.saturating_sub(from)
        }
    }

    /// Waits until `connections` timing connections have received every record
    /// of the closed window, at most `bound`, and at most `stall` without
    /// progress. What had arrived when it stopped waiting: a record that arrives
    /// later counts as not delivered, so a stall cannot shorten the time a run
    /// is measured over while its records still count.
    fn wait(&self, connections: usize, bound: Duration, stall: Duration) -> Drained {
        let deadline = std::time::Instant::now() + bound;
        let mut progress = (
            self.progress.load(Ordering::Relaxed),
            std::time::Instant::now(),
        );
        loop {
            let complete = self.drained.load(Ordering::Relaxed) >= connections;
            if complete || std::time::Instant::now() >= deadline || progress.1.elapsed() >= stall {
                return Drained {
                    at: progress.1,
                    represented: progress.0,
                    complete,
                };
            }
            std::thread::sleep(Duration::from_millis(10));
            let now = self.progress.load(Ordering::Relaxed);
            if now != progress.0 {
                progress = (now, std::time::Instant::now());
            }
        }
    }
}

/// How a wait for the window's records ended.
#[derive(Debug, Clone, Copy)]
pub struct Drained {
    /// When the last of them arrived (to within the 10 ms poll).
    pub at: std::time::Instant,
    /// Records of the window represented by then, over all timing connections.
    pub represented: u64,
    /// Every timing connection had every record (not stopped by a stall or the
    /// bound).
    pub complete: bool,
}

/// Frames and bytes received by every connection together.
#[derive(Debug, Default)]
pub struct Counters {
    /// Frames.
    pub frames: AtomicU64,
    /// Bytes (frame headers included).
    pub bytes: AtomicU64,
}

/// What the timing connections saw of the records in the window.
#[derive(Debug, Default)]
pub struct Timings {
    /// Append-to-receive latency of every record of the window that a received
    /// frame represents (merged ones at the frame that carried them), µs.
    pub latencies_us: Vec<u64>,
    /// The send time of each record of `latencies_us`, in the same order (µs
    /// since the Unix epoch), when [`FleetSpec::timeline`] asked for it.
    pub sent_us: Vec<u64>,
    /// Records of the window represented by received frames, over all timing
    /// connections.
    pub represented: u64,
    /// Update frames that represented records of the window.
    pub update_frames: u64,
    /// Snapshot frames that represented records of the window (conflation).
    pub snapshots: u64,
    /// Frames whose record was not newer than one already received for the
    /// topic (repeats or reordering: there should be none).
    pub repeated: u64,
    /// Timing connections.
    pub connections: u64,
}

/// Connected subscribers, reading until [`Fleet::finish`].
#[derive(Debug)]
pub struct Fleet {
    stop: Arc<AtomicBool>,
    /// The records whose delivery the timing connections account for.
    pub window: Arc<Window>,
    timing_connections: usize,
    /// Received frames and bytes.
    pub counters: Arc<Counters>,
    bulk: JoinHandle<Result<()>>,
    timing: JoinHandle<Result<Timings>>,
}

fn source(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + (i % SOURCES as usize) as u8))
}

/// Connects, subscribes and waits for the first reply (`subscribed`).
async fn open(spec: &FleetSpec, i: usize, subscribe: &str) -> Result<(TcpStream, Vec<u8>)> {
    let (mut stream, mut got) = wire::connect(spec.addr, Some(source(i)), &spec.path).await?;
    stream
        .write_all(&wire::text_frame(subscribe.as_bytes()))
        .await?;
    let mut buf = [0u8; 4096];
    while wire::parse(&got).is_none() {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            bail!("closed before replying to subscribe");
        }
        got.extend_from_slice(&buf[..n]);
    }
    Ok((stream, got))
}

/// Opens every connection of `subs` on the current runtime.
async fn open_all(
    spec: &FleetSpec,
    subs: &[String],
    offset: usize,
) -> Result<Vec<(TcpStream, Vec<u8>)>> {
    futures_util::stream::iter(subs.iter().enumerate())
        .map(|(i, s)| open(spec, offset + i, s))
        .buffered(CONNECT_CONCURRENCY)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

/// [`open_all`], telling `ready` whether it worked; `None` when it did not.
async fn open_reporting(
    spec: &FleetSpec,
    subs: &[String],
    offset: usize,
    ready: &std::sync::mpsc::Sender<Result<()>>,
) -> Option<Vec<(TcpStream, Vec<u8>)>> {
    match open_all(spec, subs, offset).await {
        Ok(conns) => {
            let _ = ready.send(Ok(()));
            Some(conns)
        }
        Err(e) => {
            let _ = ready.send(Err(e));
            None
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

impl Fleet {
    /// Opens every connection; returns once all are subscribed.
    pub fn start(spec: FleetSpec) -> Result<Fleet> {
        let stop = Arc::new(AtomicBool::new(false));
        let window = Arc::new(Window::default());
        let timing_connections = spec.timing.len();
        let counters = Arc::new(Counters::default());
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<()>>();

        let bulk = {
            let (spec, stop, counters, ready) = (
                spec.clone(),
                stop.clone(),
                counters.clone(),
                ready_tx.clone(),
            );
            std::thread::spawn(move || -> Result<()> {
                runtime()?.block_on(async move {
                    let Some(conns) = open_reporting(&spec, &spec.bulk, 0, &ready).await else {
                        return Ok(());
                    };
                    read_bulk(conns, spec.tick, &stop, &counters).await
                })
            })
        };
        let timing = {
            let (spec, stop, window, counters) =
                (spec.clone(), stop.clone(), window.clone(), counters.clone());
            std::thread::spawn(move || -> Result<Timings> {
                runtime()?.block_on(async move {
                    let offset = spec.bulk.len();
                    let Some(conns) = open_reporting(&spec, &spec.timing, offset, &ready_tx).await
                    else {
                        return Ok(Timings::default());
                    };
                    let tasks: Vec<_> = conns
                        .into_iter()
                        .map(|(s, left)| {
                            let timed = Timed {
                                stop: stop.clone(),
                                window: window.clone(),
                                counters: counters.clone(),
                                log: spec.log.clone(),
                                topics: spec.topics,
                                frames_merge: spec.frames_merge,
                                timeline: spec.timeline,
                            };
                            tokio::spawn(async move { timed.read(s, left).await })
                        })
                        .collect();
                    let mut all = Timings::default();
                    for t in tasks {
                        let t = t.await??;
                        all.latencies_us.extend(t.latencies_us);
                        all.sent_us.extend(t.sent_us);
                        all.represented += t.represented;
                        all.update_frames += t.update_frames;
                        all.snapshots += t.snapshots;
                        all.repeated += t.repeated;
                        all.connections += 1;
                    }
                    Ok(all)
                })
            })
        };
        for _ in 0..2 {
            ready_rx
                .recv()
                .context("a subscriber thread ended early")?
                .context("opening subscribers")?;
        }
        Ok(Fleet {
            stop,
            window,
            timing_connections,
            counters,
            bulk,
            timing,
        })
    }

    /// Frames and bytes received so far.
    pub fn received(&self) -> (u64, u64) {
        (
            self.counters.frames.load(Ordering::Relaxed),
            self.counters.bytes.load(Ordering::Relaxed),
        )
    }

    /// Waits until every timing connection has received every record of the
    /// closed window, at most `bound`, and at most [`STALL`] without progress;
    /// whatever has not arrived by then counts as not delivered (see
    /// [`Drained`]).
    pub fn drain(&self, bound: Duration) -> Drained {
        self.window.wait(self.timing_connections, bound, STALL)
    }

    /// Stops reading, closes every connection, returns the timings.
    pub fn finish(self) -> Result<Timings> {
        self.stop.store(true, Ordering::Relaxed);
        self.bulk
            .join()
            .map_err(|_| anyhow::anyhow!("bulk readers panicked"))??;
        self.timing
            .join()
            .map_err(|_| anyhow::anyhow!("timing readers panicked"))?
    }
}

/// Reads every bulk connection once per `tick` until `stop`.
async fn read_bulk(
    conns: Vec<(TcpStream, Vec<u8>)>,
    tick: Duration,
    stop: &AtomicBool,
    counters: &Counters,
) -> Result<()> {
    let mut conns: Vec<(TcpStream, FrameCounter)> = conns
        .into_iter()
        .map(|(s, left)| {
            let mut c = FrameCounter::default();
            c.feed(&left);
            (s, c)
        })
        .collect();
    let mut buf = vec![0u8; 256 * 1024];
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !stop.load(Ordering::Relaxed) {
        interval.tick().await;
        let (mut frames, mut bytes) = (0, 0);
        for (stream, counter) in conns.iter_mut() {
            let before = (counter.frames, counter.bytes);
            loop {
                match stream.try_read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => counter.feed(&buf[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(_) => break,
                }
            }
            frames += counter.frames - before.0;
            bytes += counter.bytes - before.1;
        }
        counters.frames.fetch_add(frames, Ordering::Relaxed);
        counters.bytes.fetch_add(bytes, Ordering::Relaxed);
    }
    Ok(())
}

/// A timing connection's shared handles.
struct Timed {
    stop: Arc<AtomicBool>,
    window: Arc<Window>,
    counters: Arc<Counters>,
    log: Arc<SendLog>,
    topics: usize,
    frames_merge: bool,
    timeline: bool,
}

/// One timing connection's account of the records it was sent.
struct Account<'a> {
    timed: &'a Timed,
    /// The newest record received per topic.
    newest: Vec<Option<u64>>,
    out: Timings,
    drained: bool,
}

impl Account<'_> {
    /// A frame carrying record `n`, received at `now`: it stands for every
    /// record of its topic after the newest one received before (or for `n`
    /// alone, if frames do not merge records).
    fn frame(&mut self, n: u64, update: bool, now: u64) {
        let topics = self.timed.topics as u64;
        let topic = (n % topics) as usize;
        let first = match self.newest[topic] {
            // The subscribe snapshot: where this connection starts.
            None => {
                self.newest[topic] = Some(n);
                return;
            }
            Some(newest) if n <= newest => {
                self.out.repeated += 1;
                return;
            }
            Some(newest) if self.timed.frames_merge => newest + topics,
            // A raw line stands for itself alone.
            Some(_) => n,
        };
        self.newest[topic] = Some(n);
        let mut in_window = 0;
        for k in (first..=n).step_by(topics as usize) {
            if self.timed.window.contains(k) {
                in_window += 1;
                let sent = self.timed.log.sent_us(k).unwrap_or(now);
                self.out.latencies_us.push(now.saturating_sub(sent));
                if self.timed.timeline {
                    self.out.sent_us.push(sent);
                }
            }
        }
        if in_window > 0 {
            self.out.represented += in_window;
            self.timed
                .window
                .progress
                .fetch_add(in_window, Ordering::Relaxed);
            if update {
                self.out.update_frames += 1;
            } else {
                self.out.snapshots += 1;
            }
        }
        let len = self.timed.window.len();
        if !self.drained && len > 0 && self.out.represented >= len {
            self.drained = true;
            self.timed.window.drained.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Timed {
    /// Reads one timing connection frame by frame until `stop`.
    async fn read(self, mut stream: TcpStream, leftover: Vec<u8>) -> Result<Timings> {
        let mut reader = FrameReader::new(leftover, 256 * 1024);
        let mut account = Account {
            timed: &self,
            newest: vec![None; self.topics],
            out: Timings::default(),
            drained: false,
        };
        while !self.stop.load(Ordering::Relaxed) {
            let read = tokio::time::timeout(Duration::from_millis(50), stream.read(reader.spare()));
            let n = match read.await {
                Err(_) => continue,
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(n)) => n,
            };
            let now = stamp::now_us();
            let (mut frames, mut bytes) = (0, 0);
            reader.filled(n, |f| {
                frames += 1;
                bytes += f.wire_len as u64;
                if !matches!(f.opcode, 1 | 2) {
                    return;
                }
                if let Some(n) = stamp::recno(f.payload) {
                    account.frame(n, stamp::is_update(f.payload), now);
                }
            });
            self.counters.frames.fetch_add(frames, Ordering::Relaxed);
            self.counters.bytes.fetch_add(bytes, Ordering::Relaxed);
        }
        Ok(account.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A wait that stops at a stall reports what had arrived by then, not what
    /// arrives later; one that sees every connection drained reports complete.
    #[test]
    fn a_wait_reports_what_had_arrived_when_it_stopped() {
        let window = Window::default();
        window.open(0);
        window.close(100);
        window.progress.fetch_add(40, Ordering::Relaxed);
        let stalled = window.wait(1, Duration::from_secs(60), Duration::from_millis(50));
        assert!(!stalled.complete);
        assert_eq!(stalled.represented, 40);
        // The rest arrives after the wait gave up: the stalled result stands.
        window.progress.fetch_add(60, Ordering::Relaxed);
        window.drained.fetch_add(1, Ordering::Relaxed);
        assert!(stalled.at < std::time::Instant::now());
        let done = window.wait(1, Duration::from_secs(60), Duration::from_secs(60));
        assert!(done.complete);
        assert_eq!(done.represented, 100);
    }
}
