//! An output against real sockets: a database that is not there (the disk
//! buffer fills, the oldest samples are dropped and counted, what fits is found
//! again after a restart), and a server that answers every request with one
//! status (4xx refused and counted, 5xx retried until it stops failing).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use wasmeter_core::sample::{Label, MetricKind, Sample};
use wasmeter_export::buffer::DiskBuffer;
use wasmeter_export::series::Selection;
use wasmeter_export::{Backoff, Output, OutputConfig, Protocol};

fn config(url: String, dir: &std::path::Path, buffer_bytes: u64) -> OutputConfig {
    OutputConfig {
        name: "t".into(),
        protocol: Protocol::InfluxLine,
        url,
        selection: Selection::parse(&["kept"]).unwrap(),
        extra_labels: Vec::new(),
        headers: Vec::new(),
        batch_samples: 100,
        flush: Duration::from_millis(10),
        timeout: Duration::from_secs(5),
        backoff: Backoff {
            min: Duration::from_millis(10),
            max: Duration::from_millis(50),
        },
        buffer_dir: dir.to_path_buf(),
        buffer_bytes,
        memory_bytes: 1,
        queue_batches: 4,
    }
}

/// `n` samples, `kept` and `other` alternating (the output selects `kept`).
fn batch(first: u64, n: u64) -> Arc<Vec<Sample>> {
    Arc::new(
        (first..first + n)
            .map(|i| Sample {
                name: if i % 2 == 0 { "kept" } else { "other" }.into(),
                labels: vec![Label::new("k", format!("v{}", i % 7))],
                value: i as f64,
                kind: MetricKind::Gauge,
                timestamp_ms: 1_000 + i as i64,
            })
            .collect(),
    )
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

#[test]
fn a_full_buffer_drops_the_oldest_counts_them_and_keeps_the_rest_for_the_next_start() {
    // A port nothing listens on: every request fails to connect.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let max = 256 << 10;
    let (output, _) =
        Output::start(config(format!("http://{closed}/write"), dir.path(), max)).unwrap();
    let stats = output.stats();
    let sender = output.sender();
    runtime().block_on(async {
        for i in 0..200 {
            sender.send(batch(i * 400, 400)).await;
        }
    });
    wait_for("every batch selected", || {
        stats.selected.load(Relaxed) == 200 * 200
    });
    wait_for("the oldest dropped", || {
        stats.dropped_full.load(Relaxed) > 0
    });
    assert!(stats.failed_requests.load(Relaxed) > 0);
    assert_eq!(stats.sent.load(Relaxed), 0);
    output.close(Duration::from_millis(100));
    let (mut buffer, recovery) = DiskBuffer::open(dir.path(), max).unwrap();
    assert!(buffer.bytes() <= max);
    // Nothing is unaccounted for: every selected sample is in the buffer or counted.
    assert_eq!(
        recovery.samples + stats.dropped_full.load(Relaxed),
        200 * 200
    );
    // The newest are the ones kept.
    let mut corrupt = Default::default();
    let mut last = String::new();
    while let Some(frame) = buffer.head(&mut corrupt).unwrap() {
        last = String::from_utf8(frame.body.clone()).unwrap();
        buffer.ack(frame.id).unwrap();
    }
    assert!(
        last.ends_with(&format!("value={:?} {}\n", 79_998.0, 1_000 + 79_998)),
        "{last}"
    );
}

/// Answers every request with the status in `status`, counting requests and the
/// lines (samples) of the ones it answers 2xx.
fn server(status: Arc<AtomicU16>, requests: Arc<AtomicU64>, accepted: Arc<AtomicU64>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let (status, requests, accepted) = (status.clone(), requests.clone(), accepted.clone());
            std::thread::spawn(move || {
                let mut r = BufReader::new(stream);
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut len = 0;
                    loop {
                        let mut h = String::new();
                        r.read_line(&mut h).unwrap();
                        if h.trim().is_empty() {
                            break;
                        }
                        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap();
                        }
                    }
                    let mut body = vec![0; len];
                    r.read_exact(&mut body).unwrap();
                    requests.fetch_add(1, Relaxed);
                    let code = status.load(Relaxed);
                    if code < 300 {
                        accepted.fetch_add(
                            body.iter().filter(|b| **b == b'\n').count() as u64,
                            Relaxed,
                        );
                    }
                    let answer = format!("HTTP/1.1 {code} X\r\nContent-Length: 2\r\n\r\nno");
                    r.get_mut().write_all(answer.as_bytes()).unwrap();
                }
            });
        }
    });
    addr
}

#[test]
fn refused_requests_are_dropped_and_counted_and_failing_ones_retried_until_sent() {
    let status = Arc::new(AtomicU16::new(400));
    let (requests, accepted) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let addr = server(status.clone(), requests.clone(), accepted.clone());
    let dir = tempfile::tempdir().unwrap();
    let (output, _) =
        Output::start(config(format!("http://{addr}/write"), dir.path(), 1 << 20)).unwrap();
    let stats = output.stats();
    let sender = output.sender();
    let rt = runtime();
    rt.block_on(sender.send(batch(0, 200)));
    wait_for("the refusal counted", || {
        stats.dropped_refused.load(Relaxed) == 100
    });
    assert_eq!(stats.retries.load(Relaxed), 0, "a 4xx is not retried");

    status.store(503, Relaxed);
    rt.block_on(sender.send(batch(200, 200)));
    wait_for("retries", || stats.retries.load(Relaxed) >= 3);
    assert_eq!(stats.sent.load(Relaxed), 0);
    status.store(204, Relaxed);
    wait_for("the batch sent", || stats.sent.load(Relaxed) == 100);
    assert_eq!(accepted.load(Relaxed), 100);
    assert_eq!(stats.dropped_refused.load(Relaxed), 100);
    assert_eq!(
        stats.failed_requests.load(Relaxed),
        requests.load(Relaxed) - 1
    );
    output.close(Duration::from_millis(100));
}
