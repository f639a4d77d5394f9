//! Several hosts sharing topics through a real `redis-server` (`[broker] type =
//! "redis"`): the same positions and states on every host, a subscriber moving
//! between hosts with `since`, a producer killed with SIGKILL and taken over,
//! and Redis itself killed and restarted.

#[path = "support/export.rs"]
mod export_support;
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use export_support::{Proc, until};
use serde_json::{Value, json};
use support::{Client, Host, csv_config, free_port, tool};

/// A `redis-server` on a free loopback port with its own directory, no persistence.
struct Redis {
    bin: PathBuf,
    port: u16,
    dir: tempfile::TempDir,
    proc: Proc,
}

impl Redis {
    fn start() -> Option<Redis> {
        let bin = tool("redis-server", "redis-server")?;
        let mut redis = Redis {
            bin,
            port: free_port(),
            dir: tempfile::tempdir().unwrap(),
            proc: Proc::default(),
        };
        redis.up();
        Some(redis)
    }

    /// (Re)starts it on its port, empty, and waits until it answers.
    fn up(&mut self) {
        let child = Command::new(&self.bin)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.proc = Proc::new(child);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server never listened"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }
}

/// The tests' CSV config (support::csv_config) through Redis at `url`.
fn config(url: &str) -> String {
    csv_config(&format!(
        r#"
[broker]
type = "redis"
url = "{url}"
lease_ttl_ms = 3000
command_timeout_ms = 1000
check_interval_ms = 300
"#
    ))
}

/// A host in `root/name` whose `feed` directory is the shared `root/feed`.
fn start_host(root: &Path, name: &str, config: &str) -> Host {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::os::unix::fs::symlink(root.join("feed"), dir.join("feed")).unwrap();
    Host::start(&dir, config)
}

const SYMBOLS: [&str; 3] = ["BTC", "ETH", "SOL"];

/// Appends `n` trades of `symbol` to `root/feed/trades.csv` (prices and
/// timestamps from `from`).
fn trades(root: &Path, symbol: &str, from: u64, n: u64) {
    let lines: String = (from..from + n)
        .map(|i| format!("{symbol},{},1,{i}\n", 100 + i % 13))
        .collect();
    support::append(root, "trades.csv", &lines);
}

/// Longest wait for anything in these tests.
const WAIT: Duration = Duration::from_secs(30);

async fn leases(host: &Host) -> f64 {
    host.metric("wasmeter_broker_leases_held", "")
        .await
        .unwrap_or(0.0)
}

/// The topic as the host serves it: (epoch, seq, state).
async fn topic(host: &Host, symbol: &str) -> (Value, Value, Value) {
    let (_, body) = host.get(&format!("/api/topics/trades/{symbol}")).await;
    (
        body["epoch"].clone(),
        body["seq"].clone(),
        body["state"].clone(),
    )
}

/// Waits until every host holds `counts` trades per symbol, then returns what
/// the first serves after checking that every other serves the same.
async fn same_everywhere(hosts: &[&Host], counts: &[(&str, u64)]) -> Vec<(Value, Value, Value)> {
    for host in hosts {
        for (symbol, count) in counts {
            host.wait_for_topic(&format!("trades/{symbol}"), |s| s["count"] == *count as f64)
                .await;
        }
    }
    let mut first = Vec::new();
    for (symbol, _) in counts {
        first.push(topic(hosts[0], symbol).await);
    }
    for host in &hosts[1..] {
        for ((symbol, _), expected) in counts.iter().zip(&first) {
            assert_eq!(
                &topic(host, symbol).await,
                expected,
                "{symbol} on {} differs from {}",
                host.addr,
                hosts[0].addr
            );
        }
    }
    first
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hosts_serve_the_same_positions_and_a_killed_producer_loses_nothing() {
    let Some(redis) = Redis::start() else { return };
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("feed")).unwrap();
    let config = config(&redis.url());
    let a = start_host(root.path(), "a", &config);
    until("host A produces the pipeline", WAIT, || async {
        (leases(&a).await == 1.0).then_some(())
    })
    .await;
    let b = start_host(root.path(), "b", &config);
    let c = start_host(root.path(), "c", &config);

    let mut on_b = Client::connect(&b.addr, "json").await;
    on_b.subscribe(&["trades/*"]).await;
    for s in SYMBOLS {
        trades(root.path(), s, 0, 100);
    }
    let heads = same_everywhere(&[&a, &b, &c], &[("BTC", 100), ("ETH", 100), ("SOL", 100)]).await;
    assert_eq!(leases(&b).await + leases(&c).await, 0.0, "one producer");

    // A subscriber leaves B at BTC's position, more trades are published, and
    // it comes back on C with `since`: every change after its position, in
    // order, and no snapshot.
    let (epoch, seq, _) = heads[0].clone();
    trades(root.path(), "BTC", 100, 50);
    same_everywhere(&[&a, &b, &c], &[("BTC", 150)]).await;
    let (_, head, state) = topic(&c, "BTC").await;
    let mut on_c = Client::connect(&c.addr, "json").await;
    on_c.send(json!({"type": "subscribe", "topics": ["trades/BTC"],
        "since": {"trades/BTC": {"epoch": epoch, "seq": seq}}}))
        .await;
    let subscribed = on_c.next().await;
    assert_eq!(subscribed["recovered"]["trades/BTC"], true, "{subscribed}");
    let mut at = seq.as_u64().unwrap();
    let mut count = 100.0;
    while at < head.as_u64().unwrap() {
        let frame = on_c.next().await;
        assert_eq!(frame["type"], "update", "a replay, not a snapshot: {frame}");
        assert_eq!(frame["seq"].as_u64().unwrap(), at + 1, "{frame}");
        at += 1;
        if let Some(n) = frame["delta"]["count"].as_f64() {
            count = n;
        }
    }
    assert_eq!(count, state["count"].as_f64().unwrap());

    // Everything is checkpointed; 30 more trades, then the producer is killed
    // at once and 70 more follow: the next producer takes over from the
    // checkpoint in Redis and counts every trade exactly once.
    until("A's checkpoint is current", WAIT, || async {
        (a.metric("wasmeter_pipeline_checkpoint_lag_bytes", "trades")
            .await
            == Some(0.0))
        .then_some(())
    })
    .await;
    trades(root.path(), "BTC", 150, 30);
    a.signal(libc::SIGKILL);
    trades(root.path(), "BTC", 180, 70);
    until("B or C produces the pipeline", WAIT, || async {
        (leases(&b).await + leases(&c).await == 1.0).then_some(())
    })
    .await;
    let after = same_everywhere(&[&b, &c], &[("BTC", 250), ("ETH", 100), ("SOL", 100)]).await;
    assert_eq!(
        after[0].0, epoch,
        "the topic keeps its epoch across the takeover"
    );

    // What B's subscriber saw: every trade counted, and trades counted twice
    // only within the at-least-once window (those after the last checkpoint).
    let mut seen = Vec::new();
    while seen.last() != Some(&250.0) {
        let frame = on_b.next_for("update", "trades/BTC").await;
        if let Some(n) = frame["delta"]["count"].as_f64() {
            seen.push(n);
        }
    }
    let repeated = seen
        .windows(2)
        .map(|w| (w[0] - w[1]).max(0.0))
        .fold(0.0, f64::max);
    assert!(repeated <= 30.0, "counts seen on B: {seen:?}");
    drop((b, c, redis));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_stay_up_while_redis_is_down_and_recover_when_it_returns() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("feed")).unwrap();
    let config = config(&redis.url());
    let a = start_host(root.path(), "a", &config);
    let b = start_host(root.path(), "b", &config);
    trades(root.path(), "BTC", 0, 40);
    let before = same_everywhere(&[&a, &b], &[("BTC", 40)]).await;

    redis.proc.kill();
    for host in [&a, &b] {
        until("/readyz says Redis is down", WAIT, || async {
            let (status, body) = host.get("/readyz").await;
            (status == 503 && body.to_string().contains("not ready")).then_some(())
        })
        .await;
        // Still serving what it holds.
        assert_eq!(topic(host, "BTC").await, before[0]);
    }
    // Written while Redis is down: it waits in the file.
    trades(root.path(), "BTC", 40, 20);
    let producer = if leases(&a).await == 1.0 { &a } else { &b };
    until("the producer's input waits", WAIT, || async {
        (producer
            .metric("wasmeter_pipeline_broker_waiting", "trades")
            .await
            == Some(1.0))
        .then_some(())
    })
    .await;

    redis.up();
    for host in [&a, &b] {
        until("/readyz recovers", WAIT, || async {
            (host.get("/readyz").await.0 == 200).then_some(())
        })
        .await;
    }
    let after = same_everywhere(&[&a, &b], &[("BTC", 60)]).await;
    // Redis came back empty: the topic has a new epoch, so a subscriber that
    // held the old one gets a snapshot (`recovered: false`).
    assert_ne!(after[0].0, before[0].0);
    let mut late = Client::connect(&b.addr, "json").await;
    late.send(json!({"type": "subscribe", "topics": ["trades/BTC"],
        "since": {"trades/BTC": {"epoch": before[0].0, "seq": before[0].1}}}))
        .await;
    assert_eq!(late.next().await["recovered"]["trades/BTC"], false);
    let snapshot = late.next_for("snapshot", "trades/BTC").await;
    assert_eq!(snapshot["state"]["count"], 60.0);
}
