//! A plugin can only hurt itself: against a real host with real components, a
//! plugin that writes another pipeline's topics, floods series past its quota or is
//! quarantined never costs another pipeline an update, and never loses input.

mod support;

use serde_json::Value;
use support::{Client, Host, WAIT, csv_config};

/// Appends `n` trades of `symbol` to `feed/file`, prices `first..first+n`.
fn trades(host: &Host, file: &str, symbol: &str, first: u64, n: u64) {
    let lines: String = (first..first + n)
        .map(|i| format!("{symbol},{i},1,{i}\n"))
        .collect();
    host.append(file, &lines);
}

/// Polls until `check` holds for the host's `/api/plugins` entry of `name`.
async fn wait_for_plugin(host: &Host, name: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, body) = host.get("/api/plugins").await;
        let entry = body["plugins"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["name"] == name)
            .cloned();
        if let Some(entry) = entry
            && check(&entry)
        {
            return entry;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "plugin {name} never got there; last: {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The host is whole: the admin API answers within a bound, and the `trades`
/// pipeline publishes a new trade (at `price`, above any other) within [`WAIT`].
async fn assert_host_serves(host: &Host, price: u64) {
    let (status, body) = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        host.admin("GET", "/v1/plugins", None),
    )
    .await
    .expect("the admin API did not answer within 5 s");
    assert_eq!(status, 200, "{body}");
    trades(host, "t.csv", "BTC", price, 1);
    host.wait_for_topic("trades/BTC", |s| s["price"] == price as f64)
        .await;
}

/// The names of the host's topics that start with `prefix`.
async fn topics_under(host: &Host, prefix: &str) -> Vec<String> {
    let (_, body) = host.get("/api/topics").await;
    body["topics"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .filter(|n| n.starts_with(prefix))
        .map(String::from)
        .collect()
}

#[tokio::test]
async fn a_pipeline_cannot_write_the_topics_of_another() {
    let dir = tempfile::tempdir().unwrap();
    // `evil` runs a second CSV collector that writes `trades/...` like the real
    // one, but its pipeline owns only `evil`.
    let config = csv_config(
        r#"
[plugins.forger]
builtin = "csv-collector"
config = { topic_prefix = "trades" }

[sources.evil]
type = "file"
include = ["evil/*.csv"]
reconcile_interval_ms = 200

[pipelines.evil]
sources = ["evil"]
collector = "forger"
"#,
    );
    let host = Host::start(dir.path(), &config);
    std::fs::create_dir_all(dir.path().join("evil")).unwrap();
    let mut sub = Client::connect(&host.addr, "json").await;
    sub.subscribe(&["trades/BTC", "metrics/trade_price/BTC"])
        .await;

    trades(&host, "t.csv", "BTC", 1, 10);
    host.wait_for_topic("trades/BTC", |s| s["count"] == 10.0)
        .await;
    host.wait_for_topic("metrics/trade_price/BTC", |s| s["value"] == 10.0)
        .await;
    // The forger's trades: price 666, for the same symbol.
    support::append(dir.path(), "../evil/e.csv", &"BTC,666,1,1\n".repeat(20));
    let forger = wait_for_plugin(&host, "forger", |p| {
        p["failures"].as_u64().unwrap_or(0) >= 1
    })
    .await;
    assert!(
        forger["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("pipeline `evil` owns only `evil/`"),
        "{forger}"
    );
    // The real pipeline keeps publishing; its subscriber never saw a forged value.
    trades(&host, "t.csv", "BTC", 11, 5);
    let mut seen = 0;
    loop {
        let m = sub.next().await;
        let fields = m.get("delta").or_else(|| m.get("state"));
        if let Some(fields) = fields {
            assert_ne!(fields["price"], 666.0, "forged update delivered: {m}");
            assert_ne!(fields["value"], 666.0, "forged series delivered: {m}");
        }
        if m["topic"] == "trades/BTC" && fields.is_some_and(|f| f["count"] == 15.0) {
            seen += 1;
        }
        if m["topic"] == "metrics/trade_price/BTC" && fields.is_some_and(|f| f["value"] == 15.0) {
            seen += 1;
        }
        if seen == 2 {
            break;
        }
    }
    let state = host
        .wait_for_topic("trades/BTC", |s| s["count"] == 15.0)
        .await;
    assert_eq!(state["price"], 15.0);
    assert_host_serves(&host, 900_001).await;
    host.stop();
}

/// The trades pipeline and a pipeline `faulty` reading `faulty/*.log` with the
/// faulty collector, checkpointing every `checkpoint_ms`.
fn with_faulty_collector(checkpoint_ms: u64) -> String {
    csv_config(&format!(
        r#"
[plugins.faulty]
path = "{}"

[sources.faulty]
type = "file"
include = ["faulty/*.log"]
reconcile_interval_ms = 200

[pipelines.faulty]
sources = ["faulty"]
collector = "faulty"
checkpoint_interval_ms = {checkpoint_ms}
"#,
        support::built_path("faulty_collector.wasm").display()
    ))
}

#[tokio::test]
async fn a_quarantined_collector_pauses_its_input_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = with_faulty_collector(200);
    let host = Host::start(dir.path(), &config);
    std::fs::create_dir_all(dir.path().join("faulty")).unwrap();
    let write = |text: &str| support::append(dir.path(), "../faulty/f.log", text);
    write("a\nb\nc\n");
    host.wait_for_topic("faulty/lines", |s| s["count"] == 3.0)
        .await;

    // Six failing records in a row quarantine it (after five); the good lines
    // behind them in the same chunk, and those written later, must wait.
    write("error\nerror\nerror\nerror\nerror\nerror\nd\ne\n");
    wait_for_plugin(&host, "faulty", |p| p["state"] == "quarantined").await;
    // The automatic quarantine is announced, with the failure that caused it.
    let notice = host
        .wait_for_topic("_wasmeter/plugins/faulty", |s| s["event"] == "quarantined")
        .await;
    assert!(
        notice["error"]
            .as_str()
            .unwrap()
            .contains("faulty plugin failed on purpose"),
        "{notice}"
    );
    write("f\ng\n");
    // Another pipeline is not held up.
    trades(&host, "t.csv", "BTC", 1, 3);
    host.wait_for_topic("trades/BTC", |s| s["count"] == 3.0)
        .await;
    assert_eq!(
        host.wait_for_topic("faulty/lines", |_| true).await["count"],
        3.0,
        "a quarantined collector processed input"
    );

    // A restart while paused: the unread lines are still in the file.
    let log = host.stop();
    assert!(log.contains("input paused"), "{log}");
    let host = Host::start(dir.path(), &config);
    wait_for_plugin(&host, "faulty", |p| p["state"] == "active").await;
    write("h\n");
    // 3 before, d e f g h after: nothing lost, nothing twice. The sixth `error`
    // record, retried after the restart, is reported and skipped.
    host.wait_for_topic("faulty/lines", |s| s["count"] == 8.0)
        .await;

    // Quarantine again, then release through the admin API.
    write("error\nerror\nerror\nerror\nerror\ni\n");
    wait_for_plugin(&host, "faulty", |p| p["state"] == "quarantined").await;
    write("j\n");
    let (status, body) = host.admin("POST", "/v1/plugins/faulty/release", None).await;
    assert_eq!(status, 200, "{body}");
    host.wait_for_topic("faulty/lines", |s| s["count"] == 10.0)
        .await;
    host.wait_for_topic("_wasmeter/plugins/faulty", |s| s["event"] == "released")
        .await;
    host.stop();
}

/// Lines a producer appends to the faulty pipeline's files per round, per file.
const LINES_PER_ROUND: u64 = 200;

/// Appends one round of good lines to each of the faulty pipeline's `files`
/// and `trades_per_round` trades; returns the good lines written.
fn produce_round(host: &Host, round: u64, files: &[&str], trades_per_round: u64) -> u64 {
    for file in files {
        let lines: String = (0..LINES_PER_ROUND)
            .map(|i| format!("{file}-{round}-{i}\n"))
            .collect();
        host.append(&format!("../faulty/{file}.log"), &lines);
    }
    trades(
        host,
        "t.csv",
        "BTC",
        round * trades_per_round + 1,
        trades_per_round,
    );
    LINES_PER_ROUND * files.len() as u64
}

#[tokio::test]
async fn a_collector_quarantined_under_load_holds_its_input_and_then_delivers_every_record_once() {
    let dir = tempfile::tempdir().unwrap();
    let config = with_faulty_collector(100);
    std::fs::create_dir_all(dir.path().join("faulty")).unwrap();
    let host = std::sync::Arc::new(Host::start(dir.path(), &config));
    let files = ["a", "b", "c", "d"];
    let (rounds, bad_round, trades_per_round) = (60, 10, 50);

    // A producer keeps four files and the trades feed growing; mid-way, five
    // failing records in a row (between good ones, in the same appends)
    // quarantine the collector while the rest is still being written.
    let producer = {
        let host = host.clone();
        std::thread::spawn(move || {
            let mut good = 0;
            for round in 0..rounds {
                good += produce_round(&host, round, &files, trades_per_round);
                if round == bad_round {
                    host.append(
                        "../faulty/a.log",
                        "x1\nerror\nerror\nerror\nerror\nerror\nx2\n",
                    );
                    good += 2;
                }
            }
            good
        })
    };
    wait_for_plugin(&host, "faulty", |p| p["state"] == "quarantined").await;
    let good = tokio::task::spawn_blocking(move || producer.join().unwrap())
        .await
        .unwrap();
    let trades_written = (rounds * trades_per_round) as f64;

    // The other pipeline takes in everything the producer wrote...
    host.wait_for_topic("trades/BTC", |s| s["count"] == trades_written)
        .await;
    // ...while the quarantined one has held its input: its offsets stay where
    // they were across more of the other pipeline's work and checkpoints. (Once
    // it paused, after the chunk it was in, and checkpointed what it processed.)
    let deadline = tokio::time::Instant::now() + WAIT;
    let faulty = "pipeline=\"faulty\"";
    while host.metric("wasmeter_pipeline_input_paused", faulty).await != Some(1.0)
        || host
            .metric("wasmeter_pipeline_checkpoint_lag_bytes", faulty)
            .await
            != Some(0.0)
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the quarantined pipeline never checkpointed what it had processed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let held: Vec<_> = files
        .iter()
        .map(|f| support::checkpoint_offset(dir.path(), "faulty", &format!("{f}.log")))
        .collect();
    let counted = host.wait_for_topic("faulty/lines", |_| true).await["count"]
        .as_f64()
        .unwrap();
    assert!(
        counted < good as f64,
        "a quarantined collector processed input"
    );
    trades(&host, "t.csv", "BTC", 1_000_000, 1);
    host.wait_for_topic("trades/BTC", |s| s["count"] == trades_written + 1.0)
        .await;
    let pauses = host
        .metric("wasmeter_pipeline_input_paused", "pipeline=\"faulty\"")
        .await
        .unwrap();
    assert!(pauses >= 1.0, "input_paused = {pauses}");
    let still: Vec<_> = files
        .iter()
        .map(|f| support::checkpoint_offset(dir.path(), "faulty", &format!("{f}.log")))
        .collect();
    assert_eq!(
        held, still,
        "offsets advanced while the collector was quarantined"
    );

    // Released: the held backlog is read, every good line once.
    let (status, body) = host.admin("POST", "/v1/plugins/faulty/release", None).await;
    assert_eq!(status, 200, "{body}");
    host.wait_for_topic("faulty/lines", |s| s["count"] == good as f64)
        .await;
    // Nothing comes twice: one more line makes exactly one more.
    host.append("../faulty/b.log", "last\n");
    host.wait_for_topic("faulty/lines", |s| s["count"] == good as f64 + 1.0)
        .await;
    let host = std::sync::Arc::into_inner(host).unwrap();
    let log = host.stop_within(std::time::Duration::from_secs(15));
    assert!(log.contains("input paused"), "{log}");
}

#[tokio::test]
async fn a_plugin_over_its_series_quota_is_quarantined_and_its_topics_removed_on_unload() {
    let dir = tempfile::tempdir().unwrap();
    // One EWMA series per symbol; the plugin may create 20.
    let config = csv_config(
        r#"
[plugins.ewma]
builtin = "ewma"
config = { metrics = "trade_price", alpha = 0.5 }
max_series = 20
"#,
    )
    .replace(
        "delta = \"delta\"",
        "delta = \"delta\"\nmetrics = [\"ewma\"]",
    );
    let host = Host::start(dir.path(), &config);
    let mut sub = Client::connect(&host.addr, "json").await;
    sub.subscribe(&["metrics/trade_price_ewma/**"]).await;

    let symbols: String = (0..50).map(|i| format!("S{i},1,1,1\n")).collect();
    host.append("t.csv", &symbols);
    wait_for_plugin(&host, "ewma", |p| p["state"] == "quarantined").await;
    // The collector's own topics are all there: the pipeline goes on.
    host.wait_for_topic("trades/S49", |s| s["count"] == 1.0)
        .await;
    let ewma = topics_under(&host, "metrics/trade_price_ewma/").await;
    assert_eq!(ewma.len(), 20, "{ewma:?}");

    // Unloading the plugin removes what it created; subscribers are told.
    let (status, body) = host.admin("DELETE", "/v1/plugins/ewma", None).await;
    assert_eq!(status, 200, "{body}");
    let mut removed = 0;
    while removed < 20 {
        let m = sub.next().await;
        if m["type"] == "removed" {
            removed += 1;
        }
    }
    assert!(
        topics_under(&host, "metrics/trade_price_ewma/")
            .await
            .is_empty()
    );
    assert_eq!(topics_under(&host, "metrics/trade_price/").await.len(), 50);
    assert_host_serves(&host, 900_002).await;
    host.stop();
}

/// A second pipeline `side` reading `side/*.csv` with its own CSV collector
/// (topics `side/<symbol>`) and the metric plugin `faulty` with `faulty_config`.
fn with_side_pipeline(faulty_config: &str, plugin_extra: &str) -> String {
    csv_config(&format!(
        r#"
[plugins.side_csv]
builtin = "csv-collector"
config = {{ topic_prefix = "side" }}

[plugins.faulty]
path = "{}"
config = {{ {faulty_config} }}
{plugin_extra}

[sources.side]
type = "file"
include = ["side/*.csv"]
reconcile_interval_ms = 200

[pipelines.side]
sources = ["side"]
collector = "side_csv"
metrics = ["faulty"]
checkpoint_interval_ms = 200
"#,
        support::built_path("faulty_metric.wasm").display()
    ))
}

#[tokio::test]
async fn a_plugin_sleeping_in_a_host_call_stalls_nothing_but_itself() {
    let dir = tempfile::tempdir().unwrap();
    // It sleeps 30 s in every on-samples call; its calls may take 300 ms.
    let config = with_side_pipeline(
        r#"mode = "sleep", sleep_ms = "30000", sleep_in = "on-samples""#,
        "call_timeout_ms = 300",
    );
    let host = Host::start(dir.path(), &config);
    std::fs::create_dir_all(dir.path().join("side")).unwrap();
    let side = |text: &str| support::append(dir.path(), "../side/s.csv", text);
    // One record at a time on each side, each waited for: every side record is a
    // chunk of its own, so each costs the sleeper one on-samples call.
    for i in 1..=5 {
        side(&format!("ETH,{i},1,{i}\n"));
        trades(&host, "t.csv", "BTC", i, 1);
        // The other pipeline never waits for the sleeper.
        host.wait_for_topic("trades/BTC", |s| s["count"] == i as f64)
            .await;
        host.wait_for_topic("side/ETH", |s| s["count"] == i as f64)
            .await;
    }
    // The sleeper's calls are abandoned and it is quarantined; its own pipeline
    // still delivers every record once.
    let faulty = wait_for_plugin(&host, "faulty", |p| p["state"] == "quarantined").await;
    assert!(
        faulty["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("deadline"),
        "{faulty}"
    );
    side("ETH,6,1,6\nETH,7,1,7\n");
    host.wait_for_topic("side/ETH", |s| s["count"] == 7.0).await;
    // The control plane answers, and SIGTERM ends the host within its bound.
    let (status, body) = host.admin("GET", "/v1/plugins", None).await;
    assert_eq!(status, 200, "{body}");
    host.stop_within(std::time::Duration::from_secs(20));
}

#[tokio::test]
async fn a_log_flood_is_cut_and_rate_limited() {
    let dir = tempfile::tempdir().unwrap();
    // Ten 2 MiB lines per call, through the log import.
    let config = with_side_pipeline(r#"mode = "log-flood""#, "");
    let host = Host::start(dir.path(), &config);
    std::fs::create_dir_all(dir.path().join("side")).unwrap();
    for i in 1..=5 {
        support::append(dir.path(), "../side/s.csv", &format!("ETH,{i},1,{i}\n"));
        host.wait_for_topic("side/ETH", |s| s["count"] == i as f64)
            .await;
    }
    trades(&host, "t.csv", "BTC", 1, 1);
    host.wait_for_topic("trades/BTC", |s| s["count"] == 1.0)
        .await;
    assert_host_serves(&host, 900_003).await;
    let log = host.stop();
    // Unbounded, five calls would have logged 100 MiB.
    assert!(log.len() < 4 << 20, "the host logged {} bytes", log.len());
    assert!(
        log.contains("bytes cut") || log.contains("suppressed"),
        "no sign of the limits in the log"
    );
}

/// A metric plugin whose every state export fails (`faulty_config`, with
/// `plugin_extra` in its section): each checkpoint is skipped (the states and the
/// offsets must match), the failures quarantine it, then checkpoints go on
/// without its state; nothing is lost or repeated, across a restart too.
async fn failing_exports_skip_checkpoints_until_quarantine(
    faulty_config: &str,
    plugin_extra: &str,
) {
    let dir = tempfile::tempdir().unwrap();
    let config = with_side_pipeline(faulty_config, plugin_extra);
    let host = Host::start(dir.path(), &config);
    std::fs::create_dir_all(dir.path().join("side")).unwrap();
    let side = |text: &str| support::append(dir.path(), "../side/s.csv", text);
    side("ETH,1,1,1\n");
    host.wait_for_topic("side/ETH", |s| s["count"] == 1.0).await;
    wait_for_plugin(&host, "faulty", |p| p["state"] == "quarantined").await;
    let skipped = host
        .metric("wasmeter_pipeline_checkpoints_skipped", "pipeline=\"side\"")
        .await
        .unwrap_or(0.0);
    assert!(skipped >= 1.0, "no checkpoint was skipped");
    side("ETH,2,1,2\n");
    host.wait_for_topic("side/ETH", |s| s["count"] == 2.0).await;
    assert_host_serves(&host, 900_004).await;
    host.stop();
    let host = Host::start(dir.path(), &config);
    side("ETH,3,1,3\n");
    host.wait_for_topic("side/ETH", |s| s["count"] == 3.0).await;
    host.stop();
}

#[tokio::test]
async fn a_failing_state_export_skips_checkpoints_until_the_plugin_is_quarantined() {
    failing_exports_skip_checkpoints_until_quarantine(r#"mode = "export-trap""#, "").await;
}

#[tokio::test]
async fn a_state_over_its_quota_skips_checkpoints_until_the_plugin_is_quarantined() {
    // 2 MiB of state against a quota of 1 MiB: refused at every export.
    failing_exports_skip_checkpoints_until_quarantine(
        r#"mode = "big-state", state_bytes = "2097152""#,
        "state_limit_bytes = 1048576",
    )
    .await;
}

#[tokio::test]
async fn host_topics_and_oversized_series_names_are_refused_and_good_records_kept() {
    let dir = tempfile::tempdir().unwrap();
    let config = csv_config(&format!(
        r#"
[plugins.faulty]
path = "{}"
config = {{ forge_topic = "_wasmeter/plugins/csv" }}

[sources.faulty]
type = "file"
include = ["faulty/*.log"]
reconcile_interval_ms = 200

[pipelines.faulty]
sources = ["faulty"]
collector = "faulty"
"#,
        support::built_path("faulty_collector.wasm").display()
    ));
    let host = Host::start(dir.path(), &config);
    std::fs::create_dir_all(dir.path().join("faulty")).unwrap();
    let mut sub = Client::connect(&host.addr, "json").await;
    sub.subscribe(&["_wasmeter/**"]).await;
    // A forged host notice and a 64 KB series name, between good lines (each in
    // a write of its own: a refused call's records are retried one by one, and the
    // plugin's own count would see a good line of a refused call twice).
    let write = |text: &str| support::append(dir.path(), "../faulty/f.log", text);
    write("a\n");
    host.wait_for_topic("faulty/lines", |s| s["count"] == 1.0)
        .await;
    write("forge\n");
    host.wait_for_topic("_wasmeter/errors/faulty", |s| s["count"] == 1.0)
        .await;
    write("b\n");
    host.wait_for_topic("faulty/lines", |s| s["count"] == 2.0)
        .await;
    write("long-labels\n");
    let errors = host
        .wait_for_topic("_wasmeter/errors/faulty", |s| s["count"] == 2.0)
        .await;
    write("c\n");
    host.wait_for_topic("faulty/lines", |s| s["count"] == 3.0)
        .await;
    assert!(
        errors["message"]
            .as_str()
            .unwrap_or_default()
            .contains("longer than the topic limit"),
        "{errors}"
    );
    let (status, body) = host.get("/api/topics/_wasmeter/plugins/csv").await;
    assert!(
        status == 404 || body["state"].get("forged").is_none(),
        "forged notice: {body}"
    );
    let (_, topics) = host.get("/api/topics").await;
    for t in topics["topics"].as_array().unwrap() {
        assert!(t["name"].as_str().unwrap().len() <= 256, "{t}");
    }
    // The subscriber of the host's namespace saw the error summary, never a forgery.
    loop {
        let m = sub.next().await;
        assert!(m["topic"] != "_wasmeter/plugins/csv", "forged: {m}");
        if m["topic"] == "_wasmeter/errors/faulty" {
            let fields = m.get("delta").or_else(|| m.get("state")).unwrap();
            if fields["count"] == 2.0 {
                break;
            }
        }
    }
    assert_host_serves(&host, 900_005).await;
    host.stop();
}

#[tokio::test]
async fn a_reload_can_give_a_removed_pipelines_prefix_to_a_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = |name: &str| {
        format!(
            r#"
[plugins.{name}_csv]
builtin = "csv-collector"
config = {{ topic_prefix = "shared" }}

[sources.{name}]
type = "file"
include = ["{name}/*.csv"]
reconcile_interval_ms = 200

[pipelines.{name}]
sources = ["{name}"]
collector = "{name}_csv"
topics = ["shared"]
"#
        )
    };
    let host = Host::start(dir.path(), &csv_config(&pipeline("old")));
    for name in ["old", "new"] {
        std::fs::create_dir_all(dir.path().join(name)).unwrap();
    }
    support::append(dir.path(), "../old/a.csv", "ETH,1,1,1\n");
    host.wait_for_topic("shared/ETH", |s| s["count"] == 1.0)
        .await;
    // `old` goes, `new` takes its prefix, in one reload.
    std::fs::write(
        dir.path().join("wasmeter.toml"),
        csv_config(&pipeline("new")),
    )
    .unwrap();
    host.signal(libc::SIGHUP);
    support::append(dir.path(), "../new/b.csv", "SOL,1,1,1\n");
    host.wait_for_topic("shared/SOL", |s| s["count"] == 1.0)
        .await;
    host.stop();
}

#[tokio::test]
async fn the_demo_pipelines_never_write_each_others_topics() {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::demo(dir.path(), &["--demo-trades", "300"]);
    // Both trade pipelines read the same symbols; each publishes its own series.
    host.wait_for_topic("metrics/trade_price/BTC-USD", |_| true)
        .await;
    host.wait_for_topic("metrics/trade_price/history/BTC-USD", |_| true)
        .await;
    let refused =
        support::metric_value(&host.addr, "wasmeter_pipeline_refused_outputs_total").await;
    assert_eq!(refused, 0.0, "the demo's own plugins had output refused");
    let (_, plugins) = host.get("/api/plugins").await;
    for p in plugins["plugins"].as_array().unwrap() {
        assert_eq!(p["state"], "active", "{p}");
    }
    host.stop();
}

/// A quarantined shard of a sharded pipeline does not hold up the other shard,
/// though both read one file source: the quarantined one, which takes nothing,
/// is detached from it and reads on through a source of its own once released.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quarantined_shard_does_not_hold_up_the_others_sharing_its_source() {
    use wasmeter_pipeline::{Shard, ShardKey};
    let shard = |line: &str| {
        let shard = Shard {
            group: "faulty".into(),
            index: 0,
            count: 2,
            key: ShardKey::CsvColumn {
                index: 0,
                delimiter: b',',
            },
        };
        shard.shard_of(line.as_bytes())
    };
    // Lines of the shard that does not get `error`, and of the one that does.
    let failing = shard("error");
    let healthy: Vec<String> = (0..)
        .map(|i| format!("h{i}"))
        .filter(|l| shard(l) != failing)
        .take(40)
        .collect();
    let others: Vec<String> = (0..)
        .map(|i| format!("q{i}"))
        .filter(|l| shard(l) == failing)
        .take(healthy.len() + 1)
        .collect();

    let dir = tempfile::tempdir().unwrap();
    let config = with_faulty_collector(200).replace(
        "checkpoint_interval_ms = 200\n",
        "checkpoint_interval_ms = 200\nshards = 2\nshard_key = { csv_column = 0 }\n",
    );
    let host = Host::start(dir.path(), &config);
    std::fs::create_dir_all(dir.path().join("faulty")).unwrap();
    let write = |text: &str| support::append(dir.path(), "../faulty/f.log", text);
    write("error\nerror\nerror\nerror\nerror\nerror\n");
    host.wait_for_topic("_wasmeter/plugins/faulty", |s| s["event"] == "quarantined")
        .await;

    // Each append has a line of each shard, so it is a chunk for both: the
    // quarantined one's channel (16 chunks) fills long before the last. Only
    // the healthy shard counts lines now; it must see each append.
    for (n, (line, other)) in healthy.iter().zip(&others).enumerate() {
        write(&format!("{line}\n{other}\n"));
        host.wait_for_topic("faulty/lines", |s| s["count"] == (n + 1) as f64)
            .await;
    }

    // Released, the quarantined shard reads on from where it stopped: the
    // sixth `error` is retried (reported and skipped), then each of its lines
    // counts, one more than the healthy shard's.
    write(&format!("{}\n", others[healthy.len()]));
    let (status, body) = host.admin("POST", "/v1/plugins/faulty/release", None).await;
    assert_eq!(status, 200, "{body}");
    host.wait_for_topic("faulty/lines", |s| s["count"] == (healthy.len() + 1) as f64)
        .await;
    let log = host.stop();
    assert!(
        log.contains("reads the files through a source of its own"),
        "the quarantined shard was detached: {log}"
    );
}
