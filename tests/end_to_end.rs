//! The whole host as a process: files appended, plugins run, subscribers updated.
//!
//! Uses the built-in plugins (prebuilt components shipped in the binary).

mod support;

use serde_json::json;
use support::{Client, Host, csv_config};

#[tokio::test]
async fn an_appended_line_reaches_json_and_msgpack_subscribers_as_a_delta() {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::start(dir.path(), &csv_config(""));
    host.append("trades.csv", "BTC,100,1,1700000000000\n");
    host.wait_for_topic("trades/BTC", |s| s["count"] == 1.0)
        .await;

    let mut json_client = Client::connect(&host.addr, "json").await;
    let mut msgpack_client = Client::connect(&host.addr, "msgpack").await;
    for c in [&mut json_client, &mut msgpack_client] {
        c.subscribe(&["trades/*"]).await;
        let snapshot = c.next_for("snapshot", "trades/BTC").await;
        assert_eq!(snapshot["state"]["price"], 100.0);
    }

    host.append("trades.csv", "BTC,101.5,1,1700000000001\n");
    for c in [&mut json_client, &mut msgpack_client] {
        let update = c.next_for("update", "trades/BTC").await;
        // Only what changed: price, ts and the running totals; qty stayed 1.
        let delta = update["delta"].as_object().unwrap();
        assert_eq!(delta["price"], 101.5);
        assert_eq!(delta["count"], 2.0);
        assert!(!delta.contains_key("qty"), "unchanged field sent: {update}");
        assert!(update["seq"].as_u64().unwrap() >= 2);
    }
    host.stop();
}

#[tokio::test]
async fn malformed_records_are_reported_and_good_ones_still_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::start(dir.path(), &csv_config(""));
    host.append("trades.csv", "BTC,abc,1,1\nETH,3000,2,2\nSOL,150\n");
    let eth = host
        .wait_for_topic("trades/ETH", |s| s["count"] == 1.0)
        .await;
    assert_eq!(eth["price"], 3000.0);
    let errors = host
        .wait_for_topic("_wasmeter/errors/trades", |s| s["count"] == 2.0)
        .await;
    // The last error of the chunk: named column count, file and byte offset.
    assert_eq!(
        errors["message"],
        "expected 4 columns (symbol,price,qty,ts), found 2"
    );
    let at = errors["at"].as_str().unwrap();
    assert!(at.ends_with("feed/trades.csv: byte 25"), "{at}");
    let (status, _) = host.get("/api/topics/trades/BTC").await;
    assert_eq!(status, 404, "the bad BTC line produced nothing");
    let log = host.stop();
    assert!(log.contains("price: `abc` is not a number"), "{log}");
}

#[tokio::test]
async fn a_restart_resumes_from_the_checkpoint_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let config = csv_config("");
    let host = Host::start(dir.path(), &config);
    let mut lines = String::new();
    for i in 0..500 {
        lines.push_str(&format!(
            "BTC,{},1,{}\n",
            100 + i % 7,
            1_700_000_000_000i64 + i
        ));
    }
    host.append("trades.csv", &lines);
    host.wait_for_topic("trades/BTC", |s| s["count"] == 500.0)
        .await;
    host.stop();

    // Written while the host is down, plus a partial line completed after the restart.
    support::append(dir.path(), "trades.csv", "BTC,1,1,1\nBTC,2,1,2\nBTC,3,1");
    let host = Host::start(dir.path(), &config);
    host.append("trades.csv", ",3\nEND,1,1,4\n");
    host.wait_for_topic("trades/END", |s| s["count"] == 1.0)
        .await;
    // END was appended last: once it is processed, every BTC line before it is too.
    let btc = host.wait_for_topic("trades/BTC", |_| true).await;
    assert_eq!(
        btc["count"], 503.0,
        "500 before the restart + 3 after, none twice"
    );
    assert_eq!(btc["volume"], 503.0);
    host.stop();
}

#[tokio::test]
async fn rotation_and_truncation_lose_and_repeat_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::start(dir.path(), &csv_config(""));
    let feed = dir.path().join("feed");
    host.append("trades.csv", &"BTC,1,1,1\n".repeat(100));
    host.wait_for_topic("trades/BTC", |s| s["count"] == 100.0)
        .await;

    // Rotation: rename, keep writing to the old file, then create a new one.
    std::fs::rename(feed.join("trades.csv"), feed.join("trades.csv.1")).unwrap();
    let mut old = std::fs::OpenOptions::new()
        .append(true)
        .open(feed.join("trades.csv.1"))
        .unwrap();
    std::io::Write::write_all(&mut old, "BTC,2,1,2\n".repeat(10).as_bytes()).unwrap();
    host.append("trades.csv", &"BTC,3,1,3\n".repeat(20));
    host.wait_for_topic("trades/BTC", |s| s["count"] == 130.0)
        .await;

    // Truncation: shorter content than before, so size < offset.
    std::fs::write(feed.join("trades.csv"), "BTC,4,1,4\nBTC,4,1,5\n").unwrap();
    host.append("trades.csv", "END,1,1,6\n");
    host.wait_for_topic("trades/END", |s| s["count"] == 1.0)
        .await;
    let btc = host.wait_for_topic("trades/BTC", |_| true).await;
    assert_eq!(btc["count"], 132.0);
    assert_eq!(btc["price"], 4.0);
    host.stop();
}

#[tokio::test]
async fn malformed_websocket_messages_get_errors_and_the_connection_survives() {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::start(dir.path(), &csv_config(""));
    host.append("trades.csv", "BTC,1,1,1\n");
    host.wait_for_topic("trades/BTC", |_| true).await;
    let mut c = Client::connect(&host.addr, "json").await;
    c.send(json!({"type": "subscribe", "topics": ["trades/*", "a b"]}))
        .await;
    let err = c.next().await;
    assert_eq!(err["type"], "error", "{err}");
    assert!(err["message"].as_str().unwrap().contains("`a b`"), "{err}");
    c.send(json!({"type": "subscribe", "topics": ["trades/*"]}))
        .await;
    let snapshot = c.next_for("snapshot", "trades/BTC").await;
    assert_eq!(snapshot["state"]["count"], 1.0);
    host.stop();
}

#[tokio::test]
async fn a_reconnecting_client_resumes_or_is_told_it_cannot() {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::start(
        dir.path(),
        &csv_config("").replace(
            "listen = \"127.0.0.1:0\"",
            "listen = \"127.0.0.1:0\"\nhistory_per_topic = 4",
        ),
    );
    host.append("trades.csv", "BTC,1,1,1\n");
    host.wait_for_topic("trades/BTC", |s| s["count"] == 1.0)
        .await;
    let mut c = Client::connect(&host.addr, "json").await;
    c.subscribe(&["trades/BTC"]).await;
    let snapshot = c.next_for("snapshot", "trades/BTC").await;
    let (epoch, seq) = (snapshot["epoch"].clone(), snapshot["seq"].as_u64().unwrap());
    drop(c);

    // Two updates while away: within the history of 4, replayed exactly.
    // (One at a time: lines read together are coalesced into one update.)
    host.append("trades.csv", "BTC,2,1,2\n");
    host.wait_for_topic("trades/BTC", |s| s["count"] == 2.0)
        .await;
    host.append("trades.csv", "BTC,3,1,3\n");
    host.wait_for_topic("trades/BTC", |s| s["count"] == 3.0)
        .await;
    let mut c = Client::connect(&host.addr, "json").await;
    c.send(json!({"type": "subscribe", "topics": ["trades/BTC"], "since": {"trades/BTC": {"epoch": epoch, "seq": seq}}}))
        .await;
    let subscribed = c.next().await;
    assert_eq!(subscribed["recovered"]["trades/BTC"], true, "{subscribed}");
    let first = c.next_for("update", "trades/BTC").await;
    let second = c.next_for("update", "trades/BTC").await;
    assert_eq!(first["seq"].as_u64().unwrap(), seq + 1);
    assert_eq!(second["delta"]["count"], 3.0);
    let last_seq = second["seq"].as_u64().unwrap();
    drop(c);

    // Ten updates while away: more than the history holds, so an explicit
    // not-recovered snapshot of the current state, never a partial replay.
    for i in 4..14 {
        host.append("trades.csv", &format!("BTC,{i},1,{i}\n"));
        host.wait_for_topic("trades/BTC", |s| s["count"] == f64::from(i))
            .await;
    }
    let mut c = Client::connect(&host.addr, "json").await;
    c.send(json!({"type": "subscribe", "topics": ["trades/BTC"], "since": {"trades/BTC": {"epoch": second["epoch"], "seq": last_seq}}}))
        .await;
    let subscribed = c.next().await;
    assert_eq!(subscribed["recovered"]["trades/BTC"], false, "{subscribed}");
    let snapshot = c.next_for("snapshot", "trades/BTC").await;
    assert_eq!(snapshot["recovered"], false);
    assert_eq!(snapshot["state"]["count"], 13.0);
    host.stop();
}

#[tokio::test]
async fn a_slow_subscriber_ends_with_the_correct_latest_state() {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::start(dir.path(), &csv_config(""));
    host.append("trades.csv", "BTC,1,1,1\n");
    host.wait_for_topic("trades/BTC", |_| true).await;
    let mut slow = Client::connect(&host.addr, "json").await;
    slow.subscribe(&["trades/*"]).await;
    // The client reads nothing while 3,000 trades in 300 appends go through.
    for batch in 0..300 {
        let mut lines = String::new();
        for i in 0..10 {
            let n = batch * 10 + i;
            lines.push_str(&format!(
                "SYM{},{},{},{}\n",
                n % 3,
                n,
                1 + n % 5,
                1_700_000_000_000i64 + n
            ));
        }
        host.append("trades.csv", &lines);
    }
    host.append("trades.csv", "END,1,1,1\n");
    host.wait_for_topic("trades/END", |_| true).await;
    // Now it reads: applying what it receives must give exactly the host's state.
    let mut states: std::collections::BTreeMap<String, serde_json::Map<String, serde_json::Value>> =
        Default::default();
    while !states.contains_key("trades/END") {
        let m = slow.next().await;
        let topic = m["topic"].as_str().unwrap_or_default().to_string();
        match m["type"].as_str().unwrap() {
            "snapshot" => {
                states.insert(topic, m["state"].as_object().unwrap().clone());
            }
            "update" => {
                let state = states.entry(topic).or_default();
                for (k, v) in m["delta"].as_object().unwrap() {
                    if v.is_null() {
                        state.remove(k);
                    } else {
                        state.insert(k.clone(), v.clone());
                    }
                }
            }
            _ => {}
        }
    }
    for sym in ["SYM0", "SYM1", "SYM2"] {
        let (_, body) = host.get(&format!("/api/topics/trades/{sym}")).await;
        assert_eq!(
            serde_json::Value::Object(states[&format!("trades/{sym}")].clone()),
            body["state"],
            "{sym}"
        );
    }
    assert_eq!(states["trades/SYM0"]["count"], 1000.0);
    host.stop();
}

#[tokio::test]
async fn stale_fields_are_announced_shown_in_snapshots_and_cleared_when_set_again() {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::start(dir.path(), &csv_config("[state]\nfield_ttl_ms = 300\n"));
    host.append("trades.csv", "BTC,100,1,1\n");
    host.wait_for_topic("trades/BTC", |_| true).await;
    let mut watcher = Client::connect(&host.addr, "json").await;
    watcher.subscribe(&["trades/BTC"]).await;
    watcher.next_for("snapshot", "trades/BTC").await;
    // Nothing is appended: after the TTL every field is announced stale, once.
    let announced = watcher.next_for("update", "trades/BTC").await;
    let stale: Vec<&str> = announced["stale"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        stale,
        ["count", "price", "qty", "ts", "volume"],
        "{announced}"
    );

    // A subscriber arriving now is told too, in its snapshot.
    let mut late = Client::connect(&host.addr, "json").await;
    late.subscribe(&["trades/BTC"]).await;
    let snapshot = late.next_for("snapshot", "trades/BTC").await;
    assert_eq!(snapshot["stale"].as_array().unwrap().len(), 5, "{snapshot}");

    // The same price and qty again: still sent, so subscribers see them fresh.
    host.append("trades.csv", "BTC,100,1,2\n");
    let refreshed = watcher.next_for("update", "trades/BTC").await;
    let delta = refreshed["delta"].as_object().unwrap();
    for field in ["price", "qty", "ts", "count", "volume"] {
        assert!(
            delta.contains_key(field),
            "{field} missing from {refreshed}"
        );
    }
    host.stop();
}
