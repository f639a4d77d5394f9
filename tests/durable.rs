//! Topics across restarts: a subscriber resumes with `since` after the host
//! stopped (SIGTERM) or was killed (SIGKILL), with the same epoch and an exact
//! replay while the saved history reaches back to its position; a position the
//! host cannot vouch for (published after the last checkpoint, then lost) is
//! refused with `recovered: false` and a snapshot of the state REST reports.

mod support;

use std::path::Path;
use std::time::Duration;

use serde_json::{Map, Value, json};
use support::{Client, Host, csv_config};

const TOPIC: &str = "trades/BTC";

fn line(n: u64) -> String {
    format!("BTC,{},1,{}\n", 100 + n, 1_700_000_000_000 + n)
}

/// Appends trade `n` (the n+1-th) and waits until the host has processed it.
async fn trade(host: &Host, n: u64) {
    host.append("trades.csv", &line(n));
    host.wait_for_topic(TOPIC, |s| s["count"] == (n + 1) as f64)
        .await;
}

/// Waits until the pipeline's checkpoint covers the whole feed file.
async fn checkpointed(dir: &Path) {
    let len = std::fs::metadata(dir.join("feed/trades.csv"))
        .unwrap()
        .len();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while support::checkpoint_offset(dir, "trades", "trades.csv") != Some(len) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no checkpoint covers the feed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A subscriber's view of the topic: what it applied and its position.
struct Seen {
    epoch: Value,
    seq: u64,
    state: Map<String, Value>,
}

impl Seen {
    fn apply(&mut self, f: &Value) {
        match f["type"].as_str() {
            Some("snapshot") => self.state = f["state"].as_object().unwrap().clone(),
            Some("update") => {
                for (k, v) in f["delta"].as_object().unwrap() {
                    self.state.insert(k.clone(), v.clone());
                }
            }
            other => panic!("unexpected {other:?}: {f}"),
        }
        self.epoch = f["epoch"].clone();
        self.seq = f["seq"].as_u64().unwrap();
    }

    fn since(&self) -> Value {
        json!({TOPIC: {"epoch": self.epoch, "seq": self.seq}})
    }
}

async fn subscribe(host: &Host) -> (Client, Seen) {
    let mut c = Client::connect(&host.addr, "json").await;
    c.subscribe(&[TOPIC]).await;
    let snapshot = c.next_for("snapshot", TOPIC).await;
    let mut seen = Seen {
        epoch: Value::Null,
        seq: 0,
        state: Map::new(),
    };
    seen.apply(&snapshot);
    (c, seen)
}

/// Reconnects with `since`; returns the client and whether it was recovered.
async fn resume(host: &Host, seen: &Seen) -> (Client, bool) {
    let mut c = Client::connect(&host.addr, "json").await;
    c.send(json!({"type": "subscribe", "topics": [TOPIC], "since": seen.since()}))
        .await;
    let reply = c.next().await;
    assert_eq!(reply["type"], "subscribed", "{reply}");
    (c, reply["recovered"][TOPIC] == true)
}

async fn rest_state(host: &Host) -> Map<String, Value> {
    host.wait_for_topic(TOPIC, |_| true)
        .await
        .as_object()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn subscribers_resume_across_a_clean_restart_with_an_exact_replay() {
    let dir = tempfile::tempdir().unwrap();
    let config = csv_config("");
    let host = Host::start(dir.path(), &config);
    trade(&host, 0).await;
    let (mut fast, mut fast_seen) = subscribe(&host).await;
    let (slow, slow_seen) = subscribe(&host).await;
    drop(slow);
    for n in 1..=3 {
        trade(&host, n).await;
        let f = fast.next_for("update", TOPIC).await;
        fast_seen.apply(&f);
    }
    drop(fast);
    host.stop();

    let host = Host::start(dir.path(), &config);
    // Up to date when the host stopped: nothing to replay, then what is new.
    let (mut fast, recovered) = resume(&host, &fast_seen).await;
    assert!(recovered, "same epoch, same seq after a clean restart");
    let before = fast_seen.seq;
    trade(&host, 4).await;
    let f = fast.next_for("update", TOPIC).await;
    assert_eq!(f["seq"], before + 1, "seqs go on");
    fast_seen.apply(&f);
    assert_eq!(fast_seen.state, rest_state(&host).await);

    // Behind when the host stopped: the three changes it missed are replayed
    // from the saved history, then the new one, and nothing else.
    let (mut slow, recovered) = resume(&host, &slow_seen).await;
    assert!(recovered);
    let mut slow_seen = slow_seen;
    for _ in 0..4 {
        let f = slow.next().await;
        assert_eq!(f["type"], "update", "{f}");
        assert_eq!(f["seq"], slow_seen.seq + 1, "in order, none missing");
        slow_seen.apply(&f);
    }
    assert_eq!(slow_seen.state, rest_state(&host).await);
    host.stop();
}

#[tokio::test]
async fn after_a_sigkill_positions_the_checkpoint_covers_resume_and_later_ones_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = csv_config("");
    let host = Host::start(dir.path(), &config);
    trade(&host, 0).await;
    let (mut c, mut seen) = subscribe(&host).await;
    trade(&host, 1).await;
    seen.apply(&c.next_for("update", TOPIC).await);
    checkpointed(dir.path()).await;
    drop(c);
    host.kill();

    // Killed after a checkpoint that covers what the subscriber saw: resumed.
    // No checkpoints while this run lives, so what it publishes dies with it.
    let no_checkpoints = config.replace(
        "checkpoint_interval_ms = 200",
        "checkpoint_interval_ms = 3600000",
    );
    let host = Host::start(dir.path(), &no_checkpoints);
    let (mut c, recovered) = resume(&host, &seen).await;
    assert!(recovered, "the checkpoint covers the subscriber's position");
    trade(&host, 2).await;
    let f = c.next_for("update", TOPIC).await;
    assert_eq!(f["epoch"], seen.epoch, "the same epoch");
    assert!(
        f["seq"].as_u64().unwrap() > seen.seq,
        "later than every position before the crash: {f}"
    );
    seen.apply(&f);
    assert_eq!(seen.state, rest_state(&host).await);
    drop(c);
    host.kill();

    // The subscriber saw trade 2, which no checkpoint covers: the restart reads
    // it again and publishes it anew (waited for, so that its new seq exists),
    // and the old position is refused rather than taken for the new one.
    let host = Host::start(dir.path(), &config);
    host.wait_for_topic(TOPIC, |s| s["count"] == 3.0).await;
    let (mut c, recovered) = resume(&host, &seen).await;
    assert!(!recovered, "a position lost with the crash is not resumed");
    let snapshot = c.next_for("snapshot", TOPIC).await;
    assert_eq!(snapshot["recovered"], false);
    assert_eq!(snapshot["epoch"], seen.epoch);
    assert_ne!(snapshot["seq"], seen.seq);
    assert_eq!(
        snapshot["state"].as_object().unwrap(),
        &rest_state(&host).await
    );
    host.stop();
}
