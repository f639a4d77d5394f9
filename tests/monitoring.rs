//! Watching the host: `/metrics` parsed with a real exposition-format parser,
//! `/api/plugins`, `wasmeter tail` as a child process across a host restart, and
//! the allocator's options.

mod support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

use serde_json::Value;
use support::{Host, WAIT, csv_config, free_port, http_get_text};

/// Parses an exposition with `prometheus-parse` into `(name, labels) -> value`.
fn parse(body: &str) -> Vec<(String, HashMap<String, String>, f64)> {
    let lines = body.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("a valid exposition");
    scrape
        .samples
        .into_iter()
        .map(|s| {
            let value = match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                other => panic!("unexpected value {other:?} of {}", s.metric),
            };
            let labels = s
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            (s.metric, labels, value)
        })
        .collect()
}

fn value(
    samples: &[(String, HashMap<String, String>, f64)],
    name: &str,
    labels: &[(&str, &str)],
) -> Option<f64> {
    samples
        .iter()
        .find(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, _, v)| *v)
}

/// Every series is a topic: `/metrics` reports as many series as the host holds
/// topics (`state.max_topics`), not a fixed 10,000 of them.
#[tokio::test]
async fn metrics_report_every_series_of_thousands_of_symbols() {
    const SYMBOLS: usize = 3_000;
    let dir = tempfile::tempdir().unwrap();
    // Each symbol makes a topic and four series: 15,000 topics in all.
    let config = csv_config(
        "max_topics = 20000\n\n[runtime]\nmax_topics_per_plugin = 20000\nmax_series_per_plugin = 20000\n",
    );
    let host = Host::start(dir.path(), &config);
    let feed: String = (0..SYMBOLS)
        .map(|i| format!("S{i},{}.5,1,{}\n", i + 1, 1_700_000_000_000u64 + i as u64))
        .collect();
    host.append("trades.csv", &feed);
    let last = format!("trades/S{}", SYMBOLS - 1);
    host.wait_for_topic(&last, |s| s["count"] == 1.0).await;

    let (_, _, body) = http_get_text(&host.addr, "/metrics", &[]).await;
    let samples = parse(&body);
    for metric in [
        "trade_price",
        "trade_qty",
        "trades_total",
        "trade_volume_total",
    ] {
        let series = samples.iter().filter(|(n, _, _)| n == metric).count();
        assert_eq!(series, SYMBOLS, "series of {metric}");
    }
    assert_eq!(
        value(&samples, "trade_price", &[("symbol", "S0")]),
        Some(1.5)
    );
}

#[tokio::test]
async fn metrics_expose_self_metrics_and_collected_series_in_both_formats() {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::start(dir.path(), &csv_config(""));
    host.append(
        "trades.csv",
        "BTC,100,1,1700000000000\nETH,3000,2,1700000000001\nBTC,101.5,1,1700000000002\n",
    );
    host.wait_for_topic("trades/BTC", |s| s["count"] == 2.0)
        .await;

    let (status, content_type, body) = http_get_text(&host.addr, "/metrics", &[]).await;
    assert_eq!(status, 200);
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let samples = parse(&body);
    assert_eq!(
        value(&samples, "trade_price", &[("symbol", "BTC")]),
        Some(101.5),
        "{body}"
    );
    assert_eq!(
        value(&samples, "trade_price", &[("symbol", "ETH")]),
        Some(3000.0)
    );
    let records = value(
        &samples,
        "wasmeter_source_records_total",
        &[("source", "trades")],
    )
    .unwrap();
    assert!(records >= 3.0, "records {records}");
    let calls = value(
        &samples,
        "wasmeter_plugin_calls_total",
        &[
            ("pipeline", "trades"),
            ("plugin", "csv"),
            ("role", "collector"),
        ],
    )
    .unwrap();
    assert!(calls > 0.0);
    assert_eq!(
        value(
            &samples,
            "wasmeter_plugin_quarantined",
            &[("plugin", "csv")]
        ),
        Some(0.0)
    );
    assert!(
        value(
            &samples,
            "wasmeter_pipeline_changes_published_total",
            &[("pipeline", "trades")]
        )
        .unwrap()
            > 0.0
    );
    assert!(
        value(
            &samples,
            "wasmeter_source_read_bytes_total",
            &[("source", "trades")]
        )
        .unwrap()
            > 0.0
    );
    assert!(value(&samples, "wasmeter_hub_topics", &[]).unwrap() >= 2.0);
    assert!(value(&samples, "wasmeter_hub_history_messages", &[]).unwrap() >= 2.0);
    assert!(value(&samples, "wasmeter_hub_history_bytes", &[]).unwrap() > 100.0);
    // The process, as client libraries name it, and the build.
    assert!(value(&samples, "process_resident_memory_bytes", &[]).unwrap() > 1e6);
    assert!(value(&samples, "process_open_fds", &[]).unwrap() >= 3.0);
    assert!(value(&samples, "process_cpu_seconds_total", &[]).unwrap() > 0.0);
    assert!(value(&samples, "process_start_time_seconds", &[]).unwrap() > 1.7e9);
    assert_eq!(
        value(
            &samples,
            "wasmeter_build_info",
            &[
                ("version", env!("CARGO_PKG_VERSION")),
                ("contract", "0.4.0")
            ]
        ),
        Some(1.0)
    );

    // OpenMetrics when asked: its content type, `# EOF` last, counters' samples with
    // `_total` while their family (`# TYPE`) has none. Parsed with the same parser.
    let (status, content_type, body) = http_get_text(
        &host.addr,
        "/metrics",
        &[("Accept", "application/openmetrics-text; version=1.0.0")],
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        content_type.starts_with("application/openmetrics-text; version=1.0.0"),
        "{content_type}"
    );
    assert_eq!(body.lines().last(), Some("# EOF"));
    assert!(
        body.lines()
            .any(|l| l == "# TYPE wasmeter_source_records counter")
    );
    let samples = parse(&body);
    assert_eq!(
        value(&samples, "trade_price", &[("symbol", "BTC")]),
        Some(101.5)
    );
    assert!(
        value(
            &samples,
            "wasmeter_source_records_total",
            &[("source", "trades")]
        )
        .unwrap()
            >= 3.0
    );

    let (status, plugins) = host.get("/api/plugins").await;
    assert_eq!(status, 200);
    let plugins = plugins["plugins"].as_array().unwrap();
    let csv = plugins.iter().find(|p| p["name"] == "csv").unwrap();
    assert_eq!(csv["pipeline"], "trades");
    assert_eq!(csv["role"], "collector");
    assert_eq!(csv["plugin"], "csv-collector");
    assert_eq!(csv["state"], "active");
    assert!(csv["calls"].as_u64().unwrap() > 0);
    assert_eq!(csv["last_error"], Value::Null);
    assert!(csv["busy_seconds"].as_f64().is_some());
    let delta = plugins.iter().find(|p| p["name"] == "delta").unwrap();
    assert_eq!(delta["role"], "delta");
    host.stop();
}

/// A `wasmeter tail` child whose stdout lines arrive on a channel.
struct Tail {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Tail {
    fn start(addr: &str, topics: &[&str]) -> Tail {
        let mut child = Command::new(env!("CARGO_BIN_EXE_wasmeter"))
            .arg("tail")
            .args(topics)
            .args(["--json", "--url", &format!("ws://{addr}/ws")])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start wasmeter tail");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Tail { child, lines }
    }

    /// The next printed message about `topic` whose price (state or delta) is `price`.
    fn wait_for_price(&self, topic: &str, price: f64) -> Value {
        loop {
            let line = self
                .lines
                .recv_timeout(WAIT)
                .expect("tail printed a line in time");
            let msg: Value = serde_json::from_str(&line).expect("one JSON object per line");
            let fields = if msg["type"] == "snapshot" {
                &msg["state"]
            } else {
                &msg["delta"]
            };
            if msg["topic"] == topic && fields["price"] == price {
                return msg;
            }
        }
    }
}

impl Drop for Tail {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn tail_prints_updates_and_resumes_after_the_host_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = csv_config("").replace("127.0.0.1:0", &format!("127.0.0.1:{port}"));
    let host = Host::start(dir.path(), &config);
    host.append("trades.csv", "BTC,100,1,1700000000000\n");
    host.wait_for_topic("trades/BTC", |s| s["count"] == 1.0)
        .await;

    let tail = Tail::start(&host.addr, &["trades/*"]);
    let snapshot = tail.wait_for_price("trades/BTC", 100.0);
    assert_eq!(snapshot["type"], "snapshot");
    host.append("trades.csv", "BTC,101,1,1700000000001\n");
    let update = tail.wait_for_price("trades/BTC", 101.0);
    assert_eq!(update["type"], "update");

    // The host goes away and comes back on the same port: the tail reconnects
    // by itself, resumes where it was (the topic kept its epoch and seqs) and
    // prints what follows as the next update.
    host.stop();
    let host = Host::start(dir.path(), &config);
    host.append("trades.csv", "BTC,102,1,1700000000002\n");
    let after = tail.wait_for_price("trades/BTC", 102.0);
    assert_eq!(after["type"], "update", "{after}");
    assert_eq!(after["epoch"], update["epoch"], "the topic kept its epoch");
    assert_eq!(after["seq"], update["seq"].as_u64().unwrap() + 1);
    host.stop();
}

#[tokio::test]
async fn the_exposition_passes_promtools_lint() {
    let Some(promtool) = support::promtool() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let host = Host::demo(dir.path(), &[]);
    // The demo's trades, derived metrics and system readings have arrived.
    for topic in [
        "trades/BTC-USD",
        "metrics/trade_vwap/BTC-USD",
        "system/load",
    ] {
        host.wait_for_topic(topic, |_| true).await;
    }
    let (_, _, text) = support::http_get_text(&host.addr, "/metrics", &[]).await;
    let mut lint = std::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut lint.stdin.take().unwrap(), text.as_bytes()).unwrap();
    let out = lint.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool check metrics:\n{said}"
    );
    host.stop();
}

/// The names of a process's threads.
#[cfg(target_os = "linux")]
fn thread_names(pid: u32) -> Vec<String> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
        .map(|name| name.trim().to_string())
        .collect()
}

/// The allocator's options are compiled into the binary: jemalloc returns freed
/// pages from a background thread of its own (see `host/cli/src/main.rs`), so
/// that thread runs in every host.
#[cfg(target_os = "linux")]
#[test]
fn the_allocator_returns_freed_memory_from_a_thread_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::start(dir.path(), &csv_config(""));
    let deadline = std::time::Instant::now() + WAIT;
    let mut names = thread_names(host.pid());
    while !names.iter().any(|n| n.starts_with("jemalloc_bg")) {
        assert!(
            std::time::Instant::now() < deadline,
            "no jemalloc background thread among the host's threads: {names:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
        names = thread_names(host.pid());
    }
    host.stop();
}
