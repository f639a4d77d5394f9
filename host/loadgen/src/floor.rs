//! The floor: the least a server can do and still be "read appended bytes and
//! broadcast them". It watches the feed files with `notify` (inotify), reads the
//! new bytes (one thread for all of them), wraps each line once into a frame
//! shaped and sized like the host's update of that record (JSON, or real
//! MessagePack), and broadcasts the pre-encoded bytes to every WebSocket that
//! subscribed to the line's topic: a broadcast channel per topic, and a pattern
//! subscriber reads the channel of every topic it matches, as the host's are.
//! Frames go out in batches with one flush, like the host's. No plugins, no
//! state, no deltas, no history. A subscriber that falls more than a channel's
//! capacity behind loses frames; the load generator's coverage counts them.
//!
//! Connections use the same tungstenite buffer sizes as the host's defaults, so
//! memory per idle connection compares like with like.

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use bytes::Bytes;
use futures_util::FutureExt;
use futures_util::stream::SelectAll;
use futures_util::{SinkExt, StreamExt};
use notify::Watcher;
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

/// Frames written per flush, as the host's `write_batch_frames` default.
const BATCH: usize = 64;

/// One line, encoded once, shared by every connection.
#[derive(Debug, Clone)]
struct Item {
    topic: Arc<str>,
    text: Utf8Bytes,
    binary: Bytes,
}

/// Runs the floor server on `listen` until killed, broadcasting the lines
/// appended to `files`. Prints `floor: listening on http://ADDR` first.
pub async fn serve(files: Vec<PathBuf>, listen: SocketAddr) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    println!("floor: listening on http://{}", listener.local_addr()?);
    std::io::stdout().flush()?;
    let channels = Arc::new(Channels::default());
    let tail_channels = channels.clone();
    std::thread::spawn(move || {
        if let Err(e) = tail(&files, &tail_channels) {
            eprintln!("floor: tail {files:?}: {e:#}");
        }
    });
    loop {
        let (stream, _) = listener.accept().await?;
        let channels = channels.clone();
        tokio::spawn(async move {
            let _ = connection(stream, &channels).await;
        });
    }
}

/// Queued items per channel before a slow receiver skips (lags).
const CAPACITY: usize = 4096;

/// One broadcast channel per topic.
#[derive(Debug, Default)]
struct Channels {
    topics: Mutex<HashMap<Arc<str>, broadcast::Sender<Item>>>,
}

/// What a subscriber reads: the channels of the topics it subscribed to.
type Receivers = SelectAll<BroadcastStream<Item>>;

impl Channels {
    fn topic(&self, topic: &str) -> broadcast::Sender<Item> {
        let mut topics = self.topics.lock().unwrap_or_else(|p| p.into_inner());
        topics
            .entry(topic.into())
            .or_insert_with(|| broadcast::channel(CAPACITY).0)
            .clone()
    }

    fn send(&self, item: Item) {
        let _ = self.topic(&item.topic).send(item);
    }

    /// The channels for a `subscribe` message's topics: a name's, or those of
    /// every existing topic a `prefix/*` pattern matches.
    fn receivers(&self, text: &str) -> Receivers {
        let wanted: Vec<String> = serde_json::from_str::<serde_json::Value>(text)
            .ok()
            .and_then(|v| v["topics"].as_array().cloned())
            .into_iter()
            .flatten()
            .filter_map(|t| t.as_str().map(str::to_string))
            .collect();
        let mut receivers = SelectAll::new();
        for pattern in &wanted {
            match pattern.strip_suffix('*') {
                Some(prefix) => {
                    let topics = self.topics.lock().unwrap_or_else(|p| p.into_inner());
                    for (_, tx) in topics.iter().filter(|(t, _)| t.starts_with(prefix)) {
                        receivers.push(BroadcastStream::new(tx.subscribe()));
                    }
                }
                None => receivers.push(BroadcastStream::new(self.topic(pattern).subscribe())),
            }
        }
        receivers
    }
}

/// Follows `files` (in one directory) from their start on one thread: on every
/// change notification (and every 100 ms, as a reconcile), reads what was
/// appended to each and broadcasts each line.
fn tail(files: &[PathBuf], channels: &Channels) -> Result<()> {
    let (events_tx, events) = std::sync::mpsc::channel();
    let mut watcher = notify::recommended_watcher(move |e| {
        let _ = events_tx.send(e);
    })?;
    let dir = files
        .first()
        .and_then(|f| f.parent())
        .unwrap_or(Path::new("."));
    watcher.watch(dir, notify::RecursiveMode::NonRecursive)?;
    let mut tails = files
        .iter()
        .map(|path| Ok(Tail::new(std::fs::File::open(path)?)))
        .collect::<Result<Vec<Tail>>>()?;
    let mut seq = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let _ = events.recv_timeout(Duration::from_millis(100));
        for tail in &mut tails {
            tail.read_lines(&mut buf, |line| {
                seq += 1;
                if let Some(item) = encode(line, seq) {
                    channels.send(item);
                }
            })?;
        }
    }
}

/// One followed file: where its next read starts, and its partial last line.
struct Tail {
    file: std::fs::File,
    offset: u64,
    carry: Vec<u8>,
}

impl Tail {
    fn new(file: std::fs::File) -> Self {
        Tail {
            file,
            offset: 0,
            carry: Vec::new(),
        }
    }

    /// Reads what was appended (through `buf`) and hands on each whole,
    /// non-empty line.
    fn read_lines(&mut self, buf: &mut [u8], mut line: impl FnMut(&[u8])) -> Result<()> {
        loop {
            let n = self.file.read_at(buf, self.offset)?;
            if n == 0 {
                return Ok(());
            }
            self.offset += n as u64;
            self.carry.extend_from_slice(&buf[..n]);
            let Some(end) = self.carry.iter().rposition(|&b| b == b'\n') else {
                continue;
            };
            for one in self.carry[..=end].split(|&b| b == b'\n') {
                if !one.is_empty() {
                    line(one);
                }
            }
            self.carry.drain(..=end);
        }
    }
}

/// The frame of one record (`symbol,price,qty,ts,recno`), shaped and sized like the
/// host's update of the same record: `{"type":"update","topic":"bench/SYM",
/// "epoch":1,"seq":N,"delta":{"price":..,"ts":..,"count":..,"volume":..,"recno":..}}`
/// (the floor keeps no state: `count` and `volume` are its line number), as JSON
/// text and as MessagePack.
fn encode(line: &[u8], seq: u64) -> Option<Item> {
    #[derive(serde::Serialize)]
    struct Delta {
        price: f64,
        ts: f64,
        count: f64,
        volume: f64,
        recno: f64,
    }
    #[derive(serde::Serialize)]
    struct Frame<'a> {
        r#type: &'a str,
        topic: &'a str,
        epoch: u64,
        seq: u64,
        delta: Delta,
    }
    let line = std::str::from_utf8(line).ok()?;
    let mut columns = line.split(',');
    let symbol = columns.next()?;
    let mut number = || columns.next()?.parse::<f64>().ok();
    let (price, _qty, ts, recno) = (number()?, number()?, number()?, number()?);
    let topic: Arc<str> = format!("bench/{symbol}").into();
    let frame = Frame {
        r#type: "update",
        topic: &topic,
        epoch: 1,
        seq,
        delta: Delta {
            price,
            ts,
            count: seq as f64,
            volume: seq as f64,
            recno,
        },
    };
    let text = serde_json::to_string(&frame).ok()?;
    let binary = Bytes::from(rmp_serde::to_vec_named(&frame).ok()?);
    Some(Item {
        topic,
        text: Utf8Bytes::from(text),
        binary,
    })
}

// tungstenite's handshake callback must return its own (large) error response type.
#[allow(clippy::result_large_err)]
async fn connection(stream: tokio::net::TcpStream, channels: &Channels) -> Result<()> {
    stream.set_nodelay(true)?;
    let mut binary = false;
    let cfg = WebSocketConfig::default()
        .read_buffer_size(1024)
        .write_buffer_size(16 * 1024);
    let mut ws = tokio_tungstenite::accept_hdr_async_with_config(
        stream,
        |req: &Request, resp: Response| {
            binary = req.uri().query().is_some_and(|q| q.contains("msgpack"));
            Ok(resp)
        },
        Some(cfg),
    )
    .await?;
    // Nothing is delivered before the `subscribe` message.
    let mut rx: Option<Receivers> = None;
    loop {
        tokio::select! {
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(t))) => {
                    rx = Some(channels.receivers(t.as_str()));
                    ws.send(Message::text(r#"{"type":"subscribed"}"#)).await?;
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return Ok(()),
                Some(Ok(_)) => {}
            },
            first = async { rx.as_mut()?.next().await }, if rx.is_some() => {
                let Some(first) = first else { return Ok(()) };
                let rx = rx.as_mut().expect("checked by the guard");
                let mut next = Some(first);
                let mut batch = 0;
                // A lagged receiver's lost frames are left to the generator's
                // coverage to count.
                while let Some(item) = next {
                    if let Ok(item) = item {
                        let msg = if binary {
                            Message::Binary(item.binary)
                        } else {
                            Message::Text(item.text)
                        };
                        ws.feed(msg).await?;
                        batch += 1;
                    }
                    if batch >= BATCH {
                        break;
                    }
                    next = rx.next().now_or_never().flatten();
                }
                if batch > 0 {
                    ws.flush().await?;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stamp;

    #[test]
    fn a_floor_frame_carries_its_record_like_a_host_update() {
        let mut line = Vec::new();
        stamp::record(&mut line, 10, 73, 1_763_830_000_123_456);
        let item = encode(line.trim_ascii_end(), 9).unwrap();
        assert_eq!(&*item.topic, "bench/S3");
        for frame in [item.text.as_bytes(), &item.binary[..]] {
            assert_eq!(stamp::recno(frame), Some(73));
            assert!(stamp::is_update(frame));
        }
        assert!(item.text.as_str().contains(r#""delta":{"price":118.25"#));
    }
}
