//! Plugins written in Python (componentize-py) and JavaScript (componentize-js) run in
//! the real host like any plugin: the same input through a guest collector + metric and
//! through their Rust twins (the built-in `csv-collector` and `ewma`) gives the same
//! topics, series and record errors; a hot swap from the Rust collector to a guest one
//! carries the state (both write the SDK's `trades` state); a guest is quarantined and
//! released like any plugin; a guest field-delta sends what the built-in one sends.
//!
//! The components come from `scripts/build-guest-plugins.sh` (run by `scripts/test.sh`)
//! in `target/guest-plugins/<lang>/`. A toolchain it could not install leaves a
//! `MISSING` file there: the test fails naming it under CI and skips otherwise.

mod support;

use std::path::{Path, PathBuf};

use serde_json::Value;
use support::Host;

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// A guest language: its directory under `target/guest-plugins` and component names.
struct Lang {
    dir: &'static str,
    collector: &'static str,
    metric: &'static str,
}

const PYTHON: Lang = Lang {
    dir: "python",
    collector: "csv_collector.wasm",
    metric: "ewma.wasm",
};

const JS: Lang = Lang {
    dir: "js",
    collector: "csv-collector.wasm",
    metric: "ewma.wasm",
};

/// The built components of `lang` (collector, metric), or `None` (skipped, outside CI)
/// when they could not be built; under CI a missing toolchain fails the test.
fn components(lang: &Lang) -> Option<(PathBuf, PathBuf)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/guest-plugins")
        .join(lang.dir);
    let collector = dir.join(lang.collector);
    let metric = dir.join(lang.metric);
    let missing = match std::fs::read_to_string(dir.join("MISSING")) {
        Ok(reason) => Some(reason.trim().to_string()),
        Err(_) if !collector.exists() || !metric.exists() => Some(format!(
            "{} or {} is not built",
            collector.display(),
            metric.display()
        )),
        Err(_) => None,
    };
    let Some(reason) = missing else {
        return Some((collector, metric));
    };
    assert!(
        !in_ci(),
        "the {} guest plugins are missing under CI: {reason}; scripts/build-guest-plugins.sh \
         (run by scripts/test.sh) installs the toolchain and builds them",
        lang.dir
    );
    eprintln!(
        "skipped: the {} guest plugins are missing: {reason}",
        lang.dir
    );
    None
}

/// Two pipelines over copies of the same feed: `rust` (the built-in plugins) and
/// `guest` (the guest's `collector` or the built-in one, and the guest's `metric`
/// and `delta` when given, each against its built-in twin), told apart by topic
/// prefix and the `impl` label. The guests run with the default limits (64 MiB,
/// 200 ms a call).
fn twin_config(collector: Option<&Path>, metric: Option<&Path>, delta: Option<&Path>) -> String {
    let code = |path: Option<&Path>, builtin: &str| match path {
        Some(p) => format!("path = \"{}\"", p.display()),
        None => format!("builtin = \"{builtin}\""),
    };
    let mut plugins = String::new();
    let mut stages = String::new();
    for side in ["rust", "guest"] {
        let guest = side == "guest";
        let collector = code(collector.filter(|_| guest), "csv-collector");
        plugins.push_str(&format!(
            "[plugins.{side}_csv]\n{collector}\nconfig = {{ topic_prefix = \"{side}\", tape_prefix = \"{side}_tape\" }}\n"
        ));
        let mut pipeline = format!(
            "[pipelines.{side}]\nsources = [\"{side}\"]\ncollector = \"{side}_csv\"\n\
             topics = [\"{side}\", \"{side}_tape\"]\nlabels = {{ impl = \"{side}\" }}\n"
        );
        if let Some(metric) = metric {
            let code = code(Some(metric).filter(|_| guest), "ewma");
            plugins.push_str(&format!(
                "[plugins.{side}_ewma]\n{code}\nconfig = {{ alpha = \"0.3\" }}\n"
            ));
            pipeline.push_str(&format!("metrics = [\"{side}_ewma\"]\n"));
        }
        if let Some(delta) = delta {
            let code = code(Some(delta).filter(|_| guest), "field-delta");
            plugins.push_str(&format!(
                "[plugins.{side}_delta]\n{code}\nconfig = {{ epsilon = \"0.6\" }}\n"
            ));
            pipeline.push_str(&format!("delta = \"{side}_delta\"\n"));
        }
        stages.push_str(&format!(
            "[sources.{side}]\ntype = \"file\"\ninclude = [\"feed/{side}/*.csv\"]\nreconcile_interval_ms = 200\n{pipeline}"
        ));
    }
    format!("data_dir = \"data\"\n[server]\nlisten = \"127.0.0.1:0\"\n{plugins}{stages}")
}

/// Trades with bad records among them: each error message is part of the contract.
const FEED: &str = "# symbol,price,qty,ts\n\
BTC,100.5,2,1700000000000\n\
ETH,10,1.25,1700000000001\n\
BTC,abc,1,1700000000002\n\
BTC,101,0.5,1700000000003\n\
ETH,11,-1,1700000000004\n\
bad symbol,1,1,1700000000005\n\
ETH,12,3,1700000000006\r\n\
BTC,1,2,3,4\n\
ETH,1e1,1,x\n\
BTC,102.25,1.5,1700000000009\n";

/// The state of a topic, once it exists.
async fn state(host: &Host, topic: &str) -> Value {
    host.wait_for_topic(topic, |s| !s.is_null()).await
}

/// Feeds the same trades to a guest collector + metric and to their Rust twins and
/// compares everything they published.
async fn same_output_as_the_rust_twins(lang: &Lang) {
    let Some((collector, metric)) = components(lang) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for sub in ["rust", "guest"] {
        std::fs::create_dir_all(dir.path().join("feed").join(sub)).unwrap();
    }
    let host = Host::start(
        dir.path(),
        &twin_config(Some(&collector), Some(&metric), None),
    );
    host.append("rust/t.csv", FEED);
    host.append("guest/t.csv", FEED);

    // The last good trade is the 3rd of BTC: both pipelines are done when it shows.
    let done = |s: &Value| s["count"] == 3.0;
    let rust_btc = host.wait_for_topic("rust/BTC", done).await;
    let guest_btc = host.wait_for_topic("guest/BTC", done).await;
    assert_eq!(guest_btc, rust_btc, "{} BTC topic", lang.dir);
    let rust_eth = host.wait_for_topic("rust/ETH", |s| s["count"] == 2.0).await;
    let guest_eth = host
        .wait_for_topic("guest/ETH", |s| s["count"] == 2.0)
        .await;
    assert_eq!(guest_eth, rust_eth, "{} ETH topic", lang.dir);
    assert_eq!(rust_btc["volume"], 4.0, "{rust_btc}");

    // The tape (stream topic): the newest event of each symbol.
    for symbol in ["BTC", "ETH"] {
        let rust = state(&host, &format!("rust_tape/{symbol}")).await;
        let guest = state(&host, &format!("guest_tape/{symbol}")).await;
        assert_eq!(guest, rust, "{} tape of {symbol}", lang.dir);
    }

    // Sample series: the collector's and the metric's (ewma of the gauges).
    for name in [
        "trade_price",
        "trade_qty",
        "trades_total",
        "trade_volume_total",
        "trade_price_ewma",
        "trade_qty_ewma",
    ] {
        for (symbol, last_ts) in [("BTC", 1_700_000_000_009.0), ("ETH", 1_700_000_000_006.0)] {
            // A series nobody subscribes to is brought up to date once a tick:
            // wait for the symbol's last trade.
            let last = |s: &Value| s["ts"] == last_ts;
            let rust = host
                .wait_for_topic(&format!("metrics/{name}/rust/{symbol}"), last)
                .await;
            let guest = host
                .wait_for_topic(&format!("metrics/{name}/guest/{symbol}"), last)
                .await;
            assert_eq!(
                guest["value"], rust["value"],
                "{} {name} {symbol}",
                lang.dir
            );
            assert_eq!(guest["ts"], rust["ts"], "{} {name} {symbol}", lang.dir);
        }
    }
    // 0.3 * 102.25 + 0.7 * (0.3 * 101 + 0.7 * 100.5), computed by both.
    let ewma = host
        .wait_for_topic("metrics/trade_price_ewma/guest/BTC", |s| {
            s["ts"] == 1_700_000_000_009.0
        })
        .await;
    let expected = 0.3 * 102.25 + 0.7 * (0.3 * 101.0 + 0.7 * 100.5);
    assert!(
        (ewma["value"].as_f64().unwrap() - expected).abs() < 1e-9,
        "{ewma}"
    );

    // The record errors: same messages, same count.
    let errors = |pipeline: &'static str| {
        let host = &host;
        async move {
            host.wait_for_topic(&format!("_wasmeter/errors/{pipeline}"), |s| {
                s["count"].as_f64() == Some(5.0)
            })
            .await
        }
    };
    let (rust, guest) = (errors("rust").await, errors("guest").await);
    assert_eq!(guest["message"], rust["message"], "{guest} vs {rust}");

    // A hot swap of the Rust pipeline's collector to the guest one (same config):
    // the guest imports the Rust version's state and the running totals go on.
    let (status, body) = host.upload_swap("rust_csv", &collector).await;
    assert_eq!(status, 200, "{body}");
    let carried = body["pipelines"][0]["state"].as_str().unwrap_or_default();
    assert!(carried.starts_with("carried"), "{body}");
    let (status, summary) = host.admin("GET", "/v1/plugins/rust_csv", None).await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["description"], guest_description(lang), "{summary}");
    host.append("rust/t.csv", "BTC,103,6,1700000000010\n");
    let after = host
        .wait_for_topic("rust/BTC", |s| s["ts"] == 1_700_000_000_010.0)
        .await;
    assert_eq!(after["count"], 4.0, "{after}");
    assert_eq!(after["volume"], 10.0, "{after}");

    // Quarantined like any plugin: its pipeline's input waits in the file, and
    // nothing is lost when it is released.
    let (status, body) = host
        .admin("POST", "/v1/plugins/guest_csv/quarantine", None)
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, summary) = host.admin("GET", "/v1/plugins/guest_csv", None).await;
    assert_eq!(summary["state"], "quarantined", "{summary}");
    host.append("guest/t.csv", "BTC,104,1,1700000000011\n");
    let (status, body) = host
        .admin("POST", "/v1/plugins/guest_csv/release", None)
        .await;
    assert_eq!(status, 200, "{body}");
    let released = host
        .wait_for_topic("guest/BTC", |s| s["ts"] == 1_700_000_000_011.0)
        .await;
    assert_eq!(released["count"], 4.0, "{released}");
    host.stop();
}

/// The description a guest collector gives of itself.
fn guest_description(lang: &Lang) -> &'static str {
    match lang.dir {
        "js" => "Trades from CSV lines (symbol,price,qty,ts), in JavaScript",
        _ => "Trades from CSV lines (symbol,price,qty,ts), in Python",
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_plugins_publish_what_their_rust_twins_publish() {
    same_output_as_the_rust_twins(&PYTHON).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn javascript_plugins_publish_what_their_rust_twins_publish() {
    same_output_as_the_rust_twins(&JS).await;
}

/// A guest field-delta and the built-in one, same epsilon, over copies of the same
/// feed: a move within epsilon is not sent by either (the topic keeps the old
/// price), a larger one is, and the topics stay equal.
async fn same_deltas_as_the_rust_field_delta(lang: &Lang, file: &str) {
    if components(lang).is_none() {
        return;
    }
    let delta = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/guest-plugins")
        .join(lang.dir)
        .join(file);
    assert!(
        delta.exists(),
        "{} is not built (scripts/build-guest-plugins.sh)",
        delta.display()
    );
    let config = twin_config(None, None, Some(&delta));
    let dir = tempfile::tempdir().unwrap();
    for sub in ["rust", "guest"] {
        std::fs::create_dir_all(dir.path().join("feed").join(sub)).unwrap();
    }
    let host = Host::start(dir.path(), &config);
    for (lines, count, price) in [
        ("BTC,100,1,1700000000000\n", 1.0, 100.0),
        // 0.5 from the price held: within epsilon, not sent.
        ("BTC,100.5,1,1700000000001\n", 2.0, 100.0),
        // 1.25 from it: sent.
        ("BTC,101.25,1,1700000000002\n", 3.0, 101.25),
    ] {
        host.append("rust/t.csv", lines);
        host.append("guest/t.csv", lines);
        let rust = host
            .wait_for_topic("rust/BTC", |s| s["count"] == count)
            .await;
        let guest = host
            .wait_for_topic("guest/BTC", |s| s["count"] == count)
            .await;
        assert_eq!(guest, rust, "{}: after {lines:?}", lang.dir);
        assert_eq!(
            guest["price"], price,
            "{}: after {lines:?}: {guest}",
            lang.dir
        );
    }
    host.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_delta_sends_what_the_rust_field_delta_sends() {
    same_deltas_as_the_rust_field_delta(&PYTHON, "field_delta.wasm").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_javascript_delta_sends_what_the_rust_field_delta_sends() {
    same_deltas_as_the_rust_field_delta(&JS, "field-delta.wasm").await;
}
