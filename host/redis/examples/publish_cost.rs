//! Cost per change of `RedisBroker::publish` (batches of 1, 64 and 512) against the
//! floor of a bare pipelined `PUBLISH` of the same bytes, in the same run.
//!
//! `cargo run --release -p wasmeter-redis --example publish_cost [-- CHANGES]`
//! starts its own `redis-server` (`REDIS_SERVER`, else the one on the PATH) on a
//! free loopback port, and prints one line per batch size and run.

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmeter_core::change::TopicChange;
use wasmeter_core::delta::Delta;
use wasmeter_core::field::{FieldValue, TopicState};
use wasmeter_redis::{RedisBroker, RedisConfig};

/// A change of a topic with a few fields, like a metrics plugin's.
fn change(topic: usize, i: usize) -> TopicChange {
    let mut state = TopicState::new();
    for f in 0..8 {
        state.insert(format!("field{f}"), FieldValue::Number((i * 8 + f) as f64));
    }
    let changed = state
        .iter()
        .take(2)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    TopicChange {
        topic: format!("bench/topic{topic}").into(),
        delta: Delta {
            changed,
            removed: vec![],
        },
        stale: vec![],
        state: Arc::new(state),
        timestamp_ms: 1_700_000_000_000,
        event: false,
    }
}

/// Nanoseconds per change of `changes` changes published in batches of `batch`.
async fn broker_cost(broker: &RedisBroker, batch: usize, changes: usize) -> f64 {
    let batches: Vec<Vec<TopicChange>> = (0..changes / batch)
        .map(|b| (0..batch).map(|i| change(i % 100, b * batch + i)).collect())
        .collect();
    let start = Instant::now();
    for b in &batches {
        for r in broker.publish(None, b).await.expect("publish") {
            r.expect("change accepted");
        }
    }
    start.elapsed().as_nanos() as f64 / (batches.len() * batch) as f64
}

/// The frame the broker publishes for change `i`, built ahead of time.
fn frame(i: usize) -> Vec<u8> {
    let c = change(i % 100, i);
    let body = serde_json::json!({
        "topic": c.topic.as_ref(), "delta": c.delta, "stale": c.stale,
        "state": *c.state, "ts": c.timestamp_ms, "event": c.event,
    });
    format!("c|{i}|0123456789abcdef0123456789abcdef|{body}").into_bytes()
}

/// The floor: the same bytes as bare `PUBLISH`es, pipelined in the same batches.
async fn floor_cost(url: &str, batch: usize, changes: usize) -> f64 {
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let pipes: Vec<redis::Pipeline> = (0..changes / batch)
        .map(|b| {
            let mut p = redis::pipe();
            for i in 0..batch {
                p.cmd("PUBLISH")
                    .arg("bench:floor")
                    .arg(frame(b * batch + i));
            }
            p
        })
        .collect();
    let start = Instant::now();
    for p in &pipes {
        let _: Vec<i64> = p.query_async(&mut conn).await.expect("publish");
    }
    start.elapsed().as_nanos() as f64 / (pipes.len() * batch) as f64
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .trim()
        .to_owned()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let changes: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("CHANGES is a number"))
        .unwrap_or(20_480);
    let bin = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let mut server = Command::new(&bin)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(dir.path())
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start `{bin}`: {e}"));
    let url = format!("redis://127.0.0.1:{port}/0");
    let deadline = Instant::now() + Duration::from_secs(10);
    let cfg = RedisConfig {
        url: url.clone(),
        ..RedisConfig::default()
    };
    let broker = loop {
        if let Ok(b) = RedisBroker::connect(cfg.clone()).await {
            break b;
        }
        assert!(Instant::now() < deadline, "redis-server did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    println!(
        "changes per measurement: {changes} (batch 1: a quarter); load average: {}",
        load_average()
    );
    println!("run batch  publish ns/change  floor ns/msg  ratio");
    for run in 1..=2 {
        for batch in [1, 64, 512] {
            let n = if batch == 1 { changes / 4 } else { changes };
            let floor = floor_cost(&url, batch, n).await;
            let cost = broker_cost(&broker, batch, n).await;
            println!(
                "{run:>3} {batch:>5} {cost:>18.0} {floor:>13.0} {:>6.2}",
                cost / floor
            );
        }
    }
    println!("load average after: {}", load_average());
    // Where the time goes: Redis's own time per command (the rest is the client
    // and the round trip).
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let stats: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut conn)
        .await
        .unwrap();
    for line in stats.lines() {
        if line.starts_with("cmdstat_evalsha:") || line.starts_with("cmdstat_publish:") {
            println!("redis {line}");
        }
    }
    let _ = server.kill();
    let _ = server.wait();
}
