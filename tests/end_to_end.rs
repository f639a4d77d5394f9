//! The whole host as a process: files appended, plugins run, subscribers updated.
//!
//! Uses the built-in plugins (prebuilt components shipped in the binary).

mod support;

use serde_json::json;
use support::{Client, Host, csv_config, metric_value};

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
    const APPENDS: u64 = 600;
    let dir = tempfile::tempdir().unwrap();
    // Room for a stalled reader on a loaded machine: this test wants conflation,
    // not the slow-consumer close.
    let config = csv_config("[server.limits]\nwrite_timeout_ms = 300000\n");
    let host = Host::start(dir.path(), &config);
    host.append("trades.csv", "BTC,1,1,1\n");
    host.wait_for_topic("trades/BTC", |_| true).await;
    // A receive buffer of a few KiB: the kernel cannot absorb the backlog of a
    // subscriber that stops reading, so the host has to conflate it.
    let mut slow = Client::connect_with_recv_buffer(&host.addr, "json", 4096).await;
    slow.subscribe(&["trades/*"]).await;
    let first = slow.next().await;
    assert_eq!(first["type"], "subscribed", "{first}");
    let conflations_before = metric_value(&host.addr, "wasmeter_server_conflations_total").await;
    // A subscriber that keeps up paces the appends: each one is processed (its
    // MARK seen) before the next, so every append is a chunk of its own and
    // yields an update of every symbol topic instead of being coalesced.
    let mut pace = Client::connect(&host.addr, "json").await;
    pace.subscribe(&["trades/MARK"]).await;
    // The slow client reads nothing while 6,000 trades in 600 appends go through.
    for batch in 0..APPENDS {
        let mut lines = String::new();
        for i in 0..10 {
            let n = batch * 10 + i;
            lines.push_str(&format!(
                "SYM{},{},{},{}\n",
                n % 3,
                n,
                1 + n % 5,
                1_700_000_000_000 + n
            ));
        }
        lines.push_str(&format!("MARK,{batch},1,{batch}\n"));
        host.append("trades.csv", &lines);
        loop {
            let m = pace.next().await;
            let price = match m["type"].as_str() {
                Some("snapshot") => &m["state"]["price"],
                Some("update") => &m["delta"]["price"],
                _ => continue,
            };
            if m["topic"] == "trades/MARK" && *price == batch as f64 {
                break;
            }
        }
    }
    // The host's final state, over REST: nothing is appended any more.
    let mut expected = std::collections::BTreeMap::new();
    for sym in ["BTC", "SYM0", "SYM1", "SYM2", "MARK"] {
        let topic = format!("trades/{sym}");
        let (status, body) = host.get(&format!("/api/topics/{topic}")).await;
        assert_eq!(status, 200, "{topic}: {body}");
        expected.insert(topic, body["state"].clone());
    }
    assert_eq!(expected["trades/SYM0"]["count"], 2000.0);

    // Now it reads: applying what it receives must give exactly the host's state.
    let mut states: std::collections::BTreeMap<String, serde_json::Map<String, serde_json::Value>> =
        Default::default();
    let mut conflation_snapshots = 0;
    let mut frames = 0;
    let matches = |states: &std::collections::BTreeMap<
        String,
        serde_json::Map<String, serde_json::Value>,
    >| {
        expected.iter().all(|(topic, want)| {
            states
                .get(topic)
                .is_some_and(|s| serde_json::Value::Object(s.clone()) == *want)
        })
    };
    while !matches(&states) {
        let m = slow.next().await;
        frames += 1;
        let topic = m["topic"].as_str().unwrap_or_default().to_string();
        match m["type"].as_str().unwrap() {
            "snapshot" => {
                // A snapshot of a topic this client already has: conflation.
                if states.contains_key(&topic) {
                    conflation_snapshots += 1;
                }
                states.insert(topic, m["state"].as_object().unwrap().clone());
            }
            "update" => {
                let state = states
                    .get_mut(&topic)
                    .unwrap_or_else(|| panic!("an update before any snapshot: {m}"));
                for (k, v) in m["delta"].as_object().unwrap() {
                    if v.is_null() {
                        state.remove(k);
                    } else {
                        state.insert(k.clone(), v.clone());
                    }
                }
            }
            other => panic!("unexpected {other}: {m}"),
        }
    }
    assert!(
        conflation_snapshots > 0,
        "no conflation snapshot in {frames} frames for {APPENDS} appends"
    );
    let conflations = metric_value(&host.addr, "wasmeter_server_conflations_total").await;
    assert!(
        conflations > conflations_before,
        "wasmeter_server_conflations_total stayed at {conflations}"
    );
    eprintln!(
        "slow subscriber: {frames} frames, {conflation_snapshots} conflation snapshots, {} conflations",
        conflations - conflations_before
    );
    host.stop();
}

#[tokio::test]
async fn after_a_sigkill_the_restart_delivers_every_record_and_counts_each_once() {
    const BATCH: u64 = 20;
    let dir = tempfile::tempdir().unwrap();
    let config = csv_config("");
    let host = Host::start(dir.path(), &config);
    let line = |n: u64| format!("BTC,{},1,{}\n", 100 + n % 7, 1_700_000_000_000 + n);
    let mut written = 0;
    // A stream of appends; the host is killed at a moment when it has processed
    // records its last checkpoint does not cover (no final checkpoint is written).
    let mut behind = false;
    for _ in 0..1000 {
        let lines: String = (written..written + BATCH).map(line).collect();
        host.append("trades.csv", &lines);
        written += BATCH;
        host.wait_for_topic("trades/BTC", |s| s["count"] == written as f64)
            .await;
        let file_len = std::fs::metadata(dir.path().join("feed/trades.csv"))
            .unwrap()
            .len();
        if support::checkpoint_offset(dir.path(), "trades", "trades.csv")
            .is_some_and(|committed| committed > 0 && committed < file_len)
        {
            behind = true;
            break;
        }
    }
    assert!(
        behind,
        "no moment with a checkpoint behind the processed records"
    );
    // More records arrive while it dies: some before, some after the kill.
    let lines: String = (written..written + BATCH).map(line).collect();
    host.append("trades.csv", &lines);
    written += BATCH;
    let committed = support::checkpoint_offset(dir.path(), "trades", "trades.csv").unwrap();
    host.kill();
    let lines: String = (written..written + BATCH).map(line).collect();
    support::append(dir.path(), "trades.csv", &lines);
    written += BATCH;

    // The restart resumes offsets and the collector's state from the same
    // checkpoint: records after it are read again, and counted again from the
    // count the checkpoint holds, so every record counts exactly once.
    let host = Host::start(dir.path(), &config);
    let lines: String = (written..written + BATCH).map(line).collect();
    host.append("trades.csv", &lines);
    written += BATCH;
    host.append("trades.csv", "END,1,1,1\n");
    host.wait_for_topic("trades/END", |s| s["count"] == 1.0)
        .await;
    // END was appended last: once it is processed, every BTC record before it is too.
    let btc = host.wait_for_topic("trades/BTC", |_| true).await;
    assert_eq!(
        btc["count"], written as f64,
        "{written} records written, the checkpoint committed byte {committed}"
    );
    assert_eq!(btc["volume"], written as f64);
    let last = written - 1;
    assert_eq!(btc["price"], (100 + last % 7) as f64);
    assert_eq!(btc["ts"], (1_700_000_000_000 + last) as f64);
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

#[tokio::test]
async fn a_backlog_of_short_records_is_counted_exactly_once() {
    // 60,000 trades of ~25 bytes at once: a 1 MiB chunk holds ~42,000 of them,
    // whose 168,000 samples are more than one collector call may return. The
    // pipeline splits the chunk into calls that fit, so none is refused and
    // retried record by record, which would count a chunk twice in the CSV
    // collector's running totals.
    const TRADES: u64 = 60_000;
    let dir = tempfile::tempdir().unwrap();
    let lines: String = (0..TRADES)
        .map(|i| format!("BTC,{},1,{}\n", 100 + i % 50, 1_700_000_000_000 + i))
        .collect();
    // Written before the host starts, so that it reads whole 1 MiB chunks. A
    // deadline long enough for a whole chunk, even in a debug build: the output
    // cap is what such a call would meet.
    std::fs::create_dir_all(dir.path().join("feed")).unwrap();
    support::append(dir.path(), "backlog.csv", &lines);
    let config = csv_config("[runtime]\ncall_timeout_ms = 10000\n");
    let host = Host::start(dir.path(), &config);
    let state = host
        .wait_for_topic("trades/BTC", |s| {
            s["count"].as_f64().is_some_and(|c| c >= TRADES as f64)
        })
        .await;
    assert_eq!(state["count"], TRADES as f64, "{state}");
    assert_eq!(state["volume"], TRADES as f64, "{state}");
    assert_eq!(
        metric_value(&host.addr, "wasmeter_pipeline_record_errors_total").await,
        0.0
    );
    host.stop();
}

#[tokio::test]
async fn a_source_whose_patterns_match_nothing_says_so() {
    // (Files that come later are taken, as every other test shows.)
    let dir = tempfile::tempdir().unwrap();
    let host = Host::start(dir.path(), &csv_config(""));
    let log = host.stop();
    assert!(
        log.contains("no file matches the source's patterns yet") && log.contains("source=trades"),
        "{log}"
    );

    // With a file there from the start, no warning.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("feed")).unwrap();
    support::append(dir.path(), "early.csv", "BTC,1,1,1\n");
    let host = Host::start(dir.path(), &csv_config(""));
    host.wait_for_topic("trades/BTC", |s| s["count"] == 1.0)
        .await;
    let log = host.stop();
    assert!(!log.contains("no file matches"), "{log}");
}

#[tokio::test]
async fn plugins_built_against_contract_0_1_0_still_run_in_a_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    let path = |file: &str| support::built_path(file).display().to_string();
    let config = format!(
        r#"
data_dir = "data"

[server]
listen = "127.0.0.1:0"

[plugins.collector]
path = "{}"

[plugins.doubled]
path = "{}"

[plugins.delta]
path = "{}"

[sources.v1]
type = "file"
include = ["feed/*.csv"]
reconcile_interval_ms = 200

[pipelines.v1]
sources = ["v1"]
collector = "collector"
metrics = ["doubled"]
delta = "delta"
"#,
        path("v1_collector.wasm"),
        path("v1_metric.wasm"),
        path("v1_delta.wasm"),
    );
    let host = Host::start(dir.path(), &config);
    host.append("prices.csv", "BTC,100.5\n");
    host.wait_for_topic("v1/BTC", |s| s["price"] == 100.5).await;
    // The 0.1.0 metric plugin's output, through the pipeline.
    host.wait_for_topic("metrics/v1_price_doubled/BTC", |s| s["value"] == 201.0)
        .await;

    let mut c = Client::connect(&host.addr, "json").await;
    c.subscribe(&["v1/BTC"]).await;
    let snapshot = c.next_for("snapshot", "v1/BTC").await;
    assert_eq!(snapshot["state"], json!({"price": 100.5}));
    host.append("prices.csv", "BTC,101\n");
    // The 0.1.0 delta plugin's diff, one call for the topic.
    let update = c.next_for("update", "v1/BTC").await;
    assert_eq!(update["delta"], json!({"price": 101.0}));
    let (_, plugins) = host.get("/api/plugins").await;
    let delta = plugins["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "delta")
        .unwrap();
    assert_eq!(delta["failures"], 0, "{delta}");
    host.stop();
}

#[tokio::test]
async fn a_second_host_on_the_same_data_directory_is_refused_naming_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let config = csv_config("");
    let host = Host::start(dir.path(), &config);
    host.append("trades.csv", "BTC,100,1,1\n");
    host.wait_for_topic("trades/BTC", |s| s["count"] == 1.0)
        .await;
    let pid = std::fs::read_to_string(dir.path().join("data/wasmeter.lock")).unwrap();
    let (ok, log) = support::run_wasmeter(&[
        "serve".into(),
        "--config".into(),
        dir.path().join("wasmeter.toml").into(),
        "--admin-listen".into(),
        "127.0.0.1:0".into(),
    ]);
    assert!(!ok, "the second host must not start:\n{log}");
    assert!(
        log.contains(&format!(
            "is in use by another wasmeter (pid {})",
            pid.trim()
        )),
        "names the holder:\n{log}"
    );
    // The first one is undisturbed.
    host.append("trades.csv", "BTC,101,1,2\n");
    host.wait_for_topic("trades/BTC", |s| s["count"] == 2.0)
        .await;
    host.stop();
}

#[tokio::test]
async fn the_demo_ticker_topics_send_only_the_fields_that_changed() {
    use std::collections::{BTreeMap, HashMap};

    let dir = tempfile::tempdir().unwrap();
    let host = Host::demo(dir.path(), &["--demo-rate", "400", "--demo-trades", "2000"]);
    let mut client = Client::connect(&host.addr, "json").await;
    client.subscribe(&["ticker/*"]).await;

    // Each topic: a snapshot of the whole ticker, then updates that name only the
    // fields whose value differs from the one held; applied in order, they give
    // the last line the feed wrote for the symbol.
    let mut states: HashMap<String, serde_json::Map<String, serde_json::Value>> = HashMap::new();
    let mut sizes: Vec<usize> = Vec::new();
    let last_lines = || -> BTreeMap<String, serde_json::Value> {
        // (Not there before the feed's first batch: nothing written yet. A line
        // still being written has no newline yet: left for the next read.)
        let text =
            std::fs::read_to_string(dir.path().join("feed/ticker.jsonl")).unwrap_or_default();
        text.split_inclusive('\n')
            .filter(|l| l.ends_with('\n'))
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                let symbol = v["symbol"].as_str().unwrap().to_string();
                v.as_object_mut().unwrap().remove("symbol");
                (format!("ticker/{symbol}"), v)
            })
            .collect()
    };
    let deadline = tokio::time::Instant::now() + support::WAIT;
    loop {
        let msg = client.next().await;
        let topic = msg["topic"].as_str().unwrap_or_default().to_string();
        match msg["type"].as_str() {
            Some("snapshot") => {
                let state = msg["state"].as_object().unwrap().clone();
                assert_eq!(state.len(), 20, "a whole ticker: {msg}");
                states.insert(topic, state);
            }
            Some("update") => {
                let state = states.get_mut(&topic).expect("a snapshot first");
                let delta = msg["delta"].as_object().unwrap();
                if delta.is_empty() {
                    // After the feed stops, the fields go stale (an update without delta).
                    assert!(msg["stale"].is_array(), "an empty update: {msg}");
                    continue;
                }
                for (name, value) in delta {
                    assert_ne!(
                        state.get(name),
                        Some(value),
                        "unchanged `{name}` sent: {msg}"
                    );
                    state.insert(name.clone(), value.clone());
                }
                assert_eq!(state.len(), 20, "{msg}");
                sizes.push(delta.len());
            }
            _ => {}
        }
        // Once enough updates have come, every state is the file's last line of its
        // symbol (the feed stops after its trades, so this happens).
        // (The host's numbers are floats: `trades` 7 arrives as 7.0.)
        let same = |state: &serde_json::Map<String, serde_json::Value>,
                    line: &serde_json::Value| {
            let line = line.as_object().unwrap();
            line.len() == state.len()
                && line
                    .iter()
                    .all(|(k, v)| state.get(k).and_then(|s| s.as_f64()) == v.as_f64())
        };
        let written = last_lines();
        if sizes.len() >= 100
            && written.len() == 6
            && written
                .iter()
                .all(|(topic, line)| states.get(topic).is_some_and(|s| same(s, line)))
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "states never matched the feed"
        );
    }
    // A line changes 2-3 of the 20 fields; lines read in one chunk merge into one
    // update, so an update may carry a few more, but far fewer than the ticker's 20.
    let total: usize = sizes.iter().sum();
    assert!(total <= 6 * sizes.len(), "update sizes: {sizes:?}");
    host.stop();
}
