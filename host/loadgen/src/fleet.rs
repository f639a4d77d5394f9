//! The subscribers: many cheap bulk connections and a few timing connections,
//! each kind on its own thread with its own single-threaded runtime, so that the
//! bulk readers' batches never delay a timing connection's receive time.
//!
//! * Bulk connections read whatever has arrived every `tick` (non-blocking
//!   reads, large buffer) and only count frames and bytes: a wake-up per tick for
//!   the whole group instead of one per frame.
//! * Timing connections wake on every read, parse each frame and record, for each
//!   live update, its receive time minus the send time carried by the record.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::stamp;
use crate::wire::{self, FrameCounter, FrameReader};

/// Loopback source addresses used in turn (more ephemeral ports).
const SOURCES: u8 = 8;
/// Connections opened at once.
const CONNECT_CONCURRENCY: usize = 64;

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
}

/// Frames and bytes received by every connection together.
#[derive(Debug, Default)]
pub struct Counters {
    /// Frames.
    pub frames: AtomicU64,
    /// Bytes (frame headers included).
    pub bytes: AtomicU64,
}

/// What the timing connections saw.
#[derive(Debug, Default)]
pub struct Timings {
    /// Append-to-receive latencies of live updates while recording, microseconds.
    pub latencies_us: Vec<u64>,
    /// Snapshot frames received while recording (conflation).
    pub snapshots: u64,
}

/// Connected subscribers, reading until [`Fleet::finish`].
#[derive(Debug)]
pub struct Fleet {
    stop: Arc<AtomicBool>,
    /// While set, timing connections record latencies.
    pub recording: Arc<AtomicBool>,
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
        let recording = Arc::new(AtomicBool::new(false));
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
            let (spec, stop, recording, counters) = (
                spec.clone(),
                stop.clone(),
                recording.clone(),
                counters.clone(),
            );
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
                            let (stop, recording, counters) =
                                (stop.clone(), recording.clone(), counters.clone());
                            tokio::spawn(async move {
                                read_timed(s, left, &stop, &recording, &counters).await
                            })
                        })
                        .collect();
                    let mut all = Timings::default();
                    for t in tasks {
                        let t = t.await??;
                        all.latencies_us.extend(t.latencies_us);
                        all.snapshots += t.snapshots;
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
            recording,
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

/// Reads one timing connection frame by frame until `stop`.
async fn read_timed(
    mut stream: TcpStream,
    leftover: Vec<u8>,
    stop: &AtomicBool,
    recording: &AtomicBool,
    counters: &Counters,
) -> Result<Timings> {
    let mut reader = FrameReader::new(leftover, 256 * 1024);
    let mut out = Timings::default();
    while !stop.load(Ordering::Relaxed) {
        let n = match tokio::time::timeout(Duration::from_millis(50), stream.read(reader.spare()))
            .await
        {
            Err(_) => continue,
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => n,
        };
        let now = stamp::now_us();
        let on = recording.load(Ordering::Relaxed);
        let (mut frames, mut bytes) = (0, 0);
        reader.filled(n, |f| {
            frames += 1;
            bytes += f.wire_len as u64;
            if !on || !matches!(f.opcode, 1 | 2) {
                return;
            }
            if !stamp::is_update(f.payload) {
                out.snapshots += 1;
            } else if let Some(sent) = stamp::sent_us(f.payload) {
                out.latencies_us.push(now.saturating_sub(sent));
            }
        });
        counters.frames.fetch_add(frames, Ordering::Relaxed);
        counters.bytes.fetch_add(bytes, Ordering::Relaxed);
    }
    Ok(out)
}
