//! Metric history through the whole host: trades appended to a file become
//! sample series in the store, answered by the Prometheus query API, also
//! after a restart.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{Host, csv_config};

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Polls `uri` until its result holds `n` values, the last one `last` (the
/// writer is asynchronous; and a range query fills the steps after the first
/// stored sample with it, so the count alone is reached before all are stored).
async fn values(host: &Host, uri: &str, n: usize, last: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = host.get(uri).await;
        assert_eq!(status, 200, "{body}");
        let values = &body["data"]["result"][0]["values"];
        if values
            .as_array()
            .is_some_and(|v| v.len() == n && v[n - 1][1] == last)
        {
            return values.clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "{uri}: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn trades_become_series_the_prometheus_api_answers_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = csv_config("");
    let host = Host::start(dir.path(), &config);
    // Whole seconds, a minute ago: one trade a second at prices 100..104.
    let t0 = (now_ms() / 1000 - 60) * 1000;
    let lines: String = (0..5)
        .map(|i| format!("BTC,{},1,{}\n", 100 + i, t0 + i * 1000))
        .collect();
    host.append("trades.csv", &lines);
    let uri = format!(
        "/api/v1/query_range?query=trade_price%7Bsymbol%3D%22BTC%22%7D&start={}&end={}&step=1s",
        t0 / 1000,
        t0 / 1000 + 4
    );
    let expected: Vec<Value> = (0..5)
        .map(|i| json!([(t0 / 1000 + i) as f64, format!("{}", 100 + i)]))
        .collect();
    assert_eq!(
        values(&host, &uri, 5, "104").await,
        Value::Array(expected.clone())
    );
    // Five trades, four samples each, all stored (the writer counts them).
    assert_eq!(
        host.metric("wasmeter_history_samples_written_total", "")
            .await,
        Some(20.0)
    );
    assert_eq!(
        host.metric("wasmeter_history_samples_refused_total", "")
            .await,
        Some(0.0)
    );
    assert_eq!(host.metric("wasmeter_history_series ", "").await, Some(4.0));
    // Five samples a series cut no chunk yet: the open ones are in memory.
    for tier in ["raw", "1s", "1m", "1h"] {
        let label = format!("tier=\"{tier}\"");
        assert_eq!(
            host.metric("wasmeter_history_chunks", &label).await,
            Some(0.0),
            "{tier}"
        );
    }
    let (_, series) = host.get("/api/v1/series?match[]=trades_total").await;
    assert_eq!(
        series["data"],
        json!([{"__name__": "trades_total", "symbol": "BTC"}])
    );
    host.stop();

    let host = Host::start(dir.path(), &config);
    let (status, body) = host.get(&uri).await;
    assert_eq!(status, 200);
    assert_eq!(
        body["data"]["result"][0]["values"],
        Value::Array(expected),
        "kept across the restart"
    );
    host.stop();
}

fn run(promtool: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new(promtool)
        .args(["query"])
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "promtool query {args:?}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

#[tokio::test]
async fn prometheus_own_client_reads_the_history() {
    let Some(promtool) = support::promtool() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let host = Host::start(dir.path(), &csv_config(""));
    let t0 = (now_ms() / 1000 - 60) * 1000;
    let lines: String = (0..4)
        .map(|i| format!("ETH,{},2,{}\n", 10 + i, t0 + i * 1000))
        .collect();
    host.append("trades.csv", &lines);
    let uri = format!(
        "/api/v1/query_range?query=trade_price&start={}&end={}&step=1s",
        t0 / 1000,
        t0 / 1000 + 3
    );
    values(&host, &uri, 4, "13").await;
    let server = format!("http://{}", host.addr);
    let (start, end) = ((t0 / 1000).to_string(), (t0 / 1000 + 3).to_string());

    let range = run(
        &promtool,
        &[
            "range",
            "--start",
            &start,
            "--end",
            &end,
            "--step",
            "1s",
            &server,
            r#"trade_price{symbol="ETH"}"#,
        ],
    );
    assert!(
        range.starts_with(r#"trade_price{symbol="ETH"} =>"#),
        "{range}"
    );
    for i in 0..4 {
        let line = format!("{} @[{}]", 10 + i, t0 / 1000 + i);
        assert!(range.lines().any(|l| l == line), "{line} in:\n{range}");
    }
    let instant = run(
        &promtool,
        &["instant", "--time", &end, &server, "trades_total"],
    );
    assert_eq!(
        instant.trim(),
        format!(r#"trades_total{{symbol="ETH"}} => 4 @[{end}]"#)
    );
    let series = run(&promtool, &["series", "--match", "trade_qty", &server]);
    assert_eq!(series.trim(), r#"{__name__="trade_qty", symbol="ETH"}"#);
    let labels = run(&promtool, &["labels", &server, "symbol"]);
    assert_eq!(labels.trim(), "ETH");
    host.stop();
}

#[tokio::test]
async fn a_torn_write_in_the_history_is_dropped_with_a_warning_and_the_rest_kept() {
    let dir = tempfile::tempdir().unwrap();
    let config = csv_config("");
    let host = Host::start(dir.path(), &config);
    let t0 = (now_ms() / 1000 - 60) * 1000;
    let lines: String = (0..3)
        .map(|i| format!("SOL,{},1,{}\n", 20 + i, t0 + i * 1000))
        .collect();
    host.append("trades.csv", &lines);
    let uri = format!(
        "/api/v1/query_range?query=trade_price&start={}&end={}&step=1s",
        t0 / 1000,
        t0 / 1000 + 2
    );
    let before = values(&host, &uri, 3, "22").await;
    host.stop();
    // A write torn by a crash: half a frame at the end of the newest log segment.
    let wal = dir.path().join("data/history/wal");
    let mut segments: Vec<_> = std::fs::read_dir(&wal)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    segments.sort();
    let newest = segments.pop().expect("a log segment");
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&newest)
        .unwrap();
    std::io::Write::write_all(&mut f, &[0x57, 0x00, 0x00, 0x10, 0xde, 0xad]).unwrap();
    drop(f);

    let host = Host::start(dir.path(), &config);
    let (status, body) = host.get(&uri).await;
    assert_eq!(status, 200);
    assert_eq!(
        body["data"]["result"][0]["values"], before,
        "the committed samples are kept"
    );
    let log = host.stop();
    assert!(
        log.contains("metric history: dropped at recovery") && log.contains("6 bytes"),
        "the warning names what was dropped:\n{log}"
    );
}
