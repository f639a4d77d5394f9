//! A pipeline run as three shards (`shards = 3`, keyed by the CSV symbol column)
//! through the whole host: every record is processed exactly once (each trade is
//! one event of its tape topic, and the collector's running `count` of each
//! symbol equals the trades written: a record processed twice, or a symbol split
//! between shards, breaks one or the other), each topic's updates arrive in
//! record order, every shard takes part, the shards read the files through one
//! source, and the counts hold across a restart (whose shards resume that source
//! from offsets of their own).
//! A config reload to another number of shards is refused, and the shards run on. A host started with another number of shards than its
//! checkpoints were written with refuses to start and names them.

mod support;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::Path;

use support::{Client, Host, csv_config};

/// Symbols; symbol `i` is written to file `i % FILES`, so each file mixes keys of
/// every shard.
const SYMBOLS: usize = 24;
const FILES: usize = 3;
/// The symbol written to every file: its order across files is undefined, its
/// count is not.
const SPREAD: &str = "ALL";

fn config(shards: u32) -> String {
    // A loaded test machine must not time calls out: a collector rebuilt after a
    // timeout starts its running counts from zero (the sandbox's rule), which
    // this test would take for lost records.
    csv_config(&format!(
        "shards = {shards}\nshard_key = {{ csv_column = 0 }}\nmax_topics = 1000\n\n[runtime]\ncall_timeout_ms = 10000\n"
    ))
    .replace(
        "builtin = \"csv-collector\"",
        "builtin = \"csv-collector\"\nconfig = { columns = \"symbol,price,qty,ts,n\", tape_prefix = \"tape\" }",
    )
    .replace("topics = [\"trades\", \"deals\"]", "topics = [\"trades\", \"tape\"]")
}

/// Appends `per_symbol` trades of every symbol to the feed in `dir`, numbered
/// from `from` per symbol (column `n`), in one large write per file so that
/// chunks mix the shards' keys; counts them in `written`.
fn write_trades(dir: &Path, from: u64, per_symbol: u64, written: &mut BTreeMap<String, u64>) {
    let mut files = vec![String::new(); FILES];
    for n in from..from + per_symbol {
        for s in 0..SYMBOLS {
            files[s % FILES].push_str(&format!(
                "S{s},{}.5,1,{},{n}\n",
                100 + n % 7,
                1_700_000_000_000 + n
            ));
            *written.entry(format!("S{s}")).or_default() += 1;
        }
        let file = (n as usize) % FILES;
        files[file].push_str(&format!("{SPREAD},1,1,{},{n}\n", 1_700_000_000_000 + n));
        *written.entry(SPREAD.to_string()).or_default() += 1;
    }
    for (i, text) in files.iter().enumerate() {
        support::append(dir, &format!("f{i}.csv"), text);
    }
}

/// Waits until every symbol's `count` is what was written.
async fn all_counted(host: &Host, written: &BTreeMap<String, u64>) {
    for (symbol, count) in written {
        let state = host
            .wait_for_topic(&format!("trades/{symbol}"), |s| {
                s["count"].as_f64() >= Some(*count as f64)
            })
            .await;
        assert_eq!(
            state["count"].as_f64(),
            Some(*count as f64),
            "trades/{symbol}: count {} for {count} trades written",
            state["count"]
        );
    }
}

/// Reads the subscriber's frames until every symbol's `count` was delivered on
/// `trades/<symbol>` and every trade on the tape `tape/<symbol>`. Checks that
/// each trade is an event exactly once, and that each topic's record numbers
/// (`n`) only go up, on the tape and on the state topic.
async fn delivered_once_in_order(
    host: &Host,
    client: &mut Client,
    written: &BTreeMap<String, u64>,
) {
    let mut last_n: BTreeMap<String, f64> = BTreeMap::new();
    let mut count: BTreeMap<String, f64> = BTreeMap::new();
    let mut events: BTreeMap<String, BTreeMap<u64, u32>> = BTreeMap::new();
    let done = |count: &BTreeMap<String, f64>, events: &BTreeMap<String, BTreeMap<u64, u32>>| {
        written.iter().all(|(s, c)| {
            count.get(&format!("trades/{s}")) == Some(&(*c as f64))
                && events.get(&format!("tape/{s}")).map_or(0, |e| e.len()) as u64 == *c
        })
    };
    let deadline = tokio::time::Instant::now() + support::WAIT;
    while !done(&count, &events) {
        let Ok(frame) = tokio::time::timeout_at(deadline, client.next()).await else {
            let missing: Vec<String> = written
                .iter()
                .filter(|(s, c)| {
                    count.get(&format!("trades/{s}")) != Some(&(**c as f64))
                        || events.get(&format!("tape/{s}")).map_or(0, |e| e.len()) as u64 != **c
                })
                .map(|(s, c)| {
                    let trades = count.get(&format!("trades/{s}"));
                    let tape = events.get(&format!("tape/{s}")).map_or(0, |e| e.len());
                    format!("{s}: {c} written, count {trades:?}, {tape} events")
                })
                .collect();
            let mut rest = Vec::new();
            for line in &missing {
                let symbol = line.split(':').next().unwrap();
                let (_, body) = host.get(&format!("/api/topics/trades/{symbol}")).await;
                rest.push(format!(
                    "{symbol}: seq {} state {}",
                    body["seq"], body["state"]
                ));
            }
            panic!(
                "not all delivered:\n{}\nREST:\n{}",
                missing.join("\n"),
                rest.join("\n")
            );
        };
        let fields = match frame["type"].as_str() {
            Some("update") => &frame["delta"],
            Some("snapshot") => &frame["state"],
            Some("event") => &frame["fields"],
            _ => continue,
        };
        let topic = frame["topic"].as_str().unwrap().to_string();
        if let Some(c) = fields["count"].as_f64() {
            count.insert(topic.clone(), c);
        }
        let Some(n) = fields["n"].as_f64() else {
            continue;
        };
        if frame["type"] == "event" {
            let seen = events
                .entry(topic.clone())
                .or_default()
                .entry(n as u64)
                .or_default();
            *seen += 1;
            assert_eq!(*seen, 1, "{topic}: trade {n} delivered {seen} times");
        }
        if !topic.ends_with(SPREAD)
            && let Some(before) = last_n.insert(topic.clone(), n)
        {
            assert!(
                n > before,
                "{topic}: record {n} delivered after record {before}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sharded_pipeline_processes_every_record_once_in_key_order() {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::start(dir.path(), &config(3));
    let mut client = Client::connect(&host.addr, "json").await;
    client.subscribe(&["trades/*", "tape/*"]).await;
    // Subscribed before the first trade: the tapes are then read from their start.
    assert_eq!(client.next().await["type"], "subscribed");
    let mut written = BTreeMap::new();
    for round in 0..4 {
        write_trades(dir.path(), round * 250, 250, &mut written);
    }
    delivered_once_in_order(&host, &mut client, &written).await;
    all_counted(&host, &written).await;
    // Every shard took part, under its own name, with its own checkpoint.
    for shard in 0..3 {
        let chunks = host
            .metric(
                "wasmeter_pipeline_samples",
                &format!("pipeline=\"trades#{shard}\""),
            )
            .await;
        assert!(
            chunks > Some(0.0),
            "shard {shard} published no samples: {chunks:?}"
        );
    }
    // Started together, the shards read the feed through one source: every
    // byte once, where each shard used to read all of it (three times in all).
    // A shard that takes nothing for a second (a slow test machine) reads on by
    // itself from where it was, counted in the same source: a part again.
    let feed: u64 = (0..FILES)
        .map(|i| {
            std::fs::metadata(dir.path().join(format!("feed/f{i}.csv")))
                .unwrap()
                .len()
        })
        .sum();
    let read = host
        .metric("wasmeter_source_read_bytes", "source=\"trades\"")
        .await
        .expect("the shared source's counters");
    assert!(
        read >= feed as f64 && read < 2.0 * feed as f64,
        "the shared source read {read} bytes of a {feed}-byte feed"
    );
    assert_eq!(
        host.metric("wasmeter_source_read_bytes", "source=\"trades#0\"")
            .await,
        None,
        "no shard reads the files itself"
    );
    drop(client);
    host.stop();
    for shard in 0..3 {
        let path = dir
            .path()
            .join(format!("data/checkpoints/trades#{shard}of3.checkpoint"));
        assert!(path.exists(), "{} missing", path.display());
    }

    // Across a restart: written while stopped, then more; counts stay exact.
    write_trades(dir.path(), 1000, 100, &mut written);
    let host = Host::start(dir.path(), &config(3));
    write_trades(dir.path(), 1100, 100, &mut written);
    all_counted(&host, &written).await;
    host.stop();

    // Another number of shards cannot take over these checkpoints.
    std::fs::write(dir.path().join("wasmeter.toml"), config(2)).unwrap();
    let args: Vec<OsString> = vec![
        "serve".into(),
        "--config".into(),
        dir.path().join("wasmeter.toml").into(),
        "--admin-listen".into(),
        "127.0.0.1:0".into(),
    ];
    let (ok, log) = support::run_wasmeter(&args);
    assert!(!ok, "started with checkpoints of 3 shards as 2:\n{log}");
    assert!(
        log.contains("pipelines.trades.shards") && log.contains("trades#0of3.checkpoint"),
        "the refusal names the key and the files:\n{log}"
    );
}

#[test]
fn a_shard_key_is_required_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("shards = 2\n", "pipelines.trades.shard_key"),
        ("shards = 0\n", "pipelines.trades.shards"),
        (
            "shards = 2\nshard_key = { csv_column = 0, json_field = \"s\" }\n",
            "pipelines.trades.shard_key",
        ),
        (
            "shards = 2\nshard_key = { csv_column = 0, delimiter = \";;\" }\n",
            "delimiter",
        ),
    ];
    for (extra, named) in cases {
        let path = dir.path().join("wasmeter.toml");
        std::fs::write(&path, csv_config(extra)).unwrap();
        let (ok, log) = support::run_wasmeter(&["check-config".into(), path.into_os_string()]);
        assert!(!ok, "{extra:?} accepted");
        assert!(
            log.contains(named),
            "{extra:?}: the error names `{named}`:\n{log}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_to_another_number_of_shards_is_refused_and_the_shards_run_on() {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::start(dir.path(), &config(2));
    let mut written = BTreeMap::new();
    write_trades(dir.path(), 0, 100, &mut written);
    all_counted(&host, &written).await;

    std::fs::write(dir.path().join("wasmeter.toml"), config(3)).unwrap();
    let out = host.cli(&["reload-config"]);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains("pipelines.trades.shards") && said.contains("trades#0of2.checkpoint"),
        "the reload names the shard layout it cannot change:\n{said}"
    );
    // The two shards still run, with their state: counts stay exact.
    write_trades(dir.path(), 100, 100, &mut written);
    all_counted(&host, &written).await;
    let log = host.stop();
    assert!(
        !log.lines()
            .any(|l| l.contains("pipeline started") && l.contains("pipeline=trades#2")),
        "no third shard started:\n{log}"
    );
}
