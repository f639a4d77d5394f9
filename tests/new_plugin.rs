//! `wasmeter new`, as a plugin author uses it: a project per world and language
//! (Rust, Python, JavaScript) is generated outside the repository, built with the one
//! command its README gives, and run by a real host: the collector, delta and metric
//! together in a pipeline of a config, and the metric loaded into the running demo
//! with `wasmeter plugin load`.
//!
//! A Python or JavaScript project's `build.sh` installs its toolchain through
//! `scripts/build-guest-plugins.sh` (exit status 3 when it cannot): under CI that
//! fails the test naming what is missing, elsewhere the language is skipped.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use support::{Host, WAIT, new_project};

/// `cargo build --release --target wasm32-wasip2` in `project`, as its README
/// says, with the target dir shared by the tests' projects (dependencies built
/// once) and none of the outer cargo's variables; the component's path.
fn build(project: &Path, file: &str) -> PathBuf {
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/new-plugins");
    let out = Command::new("cargo")
        .args(["build", "--release", "--target", "wasm32-wasip2"])
        .current_dir(project)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_MAKEFLAGS")
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "building {} failed:\n{}",
        project.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    target
        .join("wasm32-wasip2/release")
        .join(format!("{file}.wasm"))
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// `./build.sh` in a Python or JavaScript `project`, as its README says; the
/// component's path, or `None` (skipped, outside CI) when the toolchain is missing.
fn build_guest(project: &Path, file: &str) -> Option<PathBuf> {
    let out = Command::new("./build.sh")
        .current_dir(project)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() == Some(3) {
        assert!(
            !in_ci(),
            "the toolchain of {} is missing under CI: {stderr}",
            project.display()
        );
        eprintln!("skipped: {stderr}");
        return None;
    }
    assert!(
        out.status.success(),
        "building {} failed:\n{stderr}",
        project.display()
    );
    let wasm = project.join(format!("{file}.wasm"));
    assert!(wasm.is_file(), "{} is missing: {stderr}", wasm.display());
    Some(wasm)
}

/// The topics whose names start with `prefix`, once there is one.
async fn topics(host: &Host, prefix: &str) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, body) = host.get(&format!("/api/topics?prefix={prefix}")).await;
        let list = body["topics"].as_array().cloned().unwrap_or_default();
        if !list.is_empty() {
            return list;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no topic {prefix}*: {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn generated_projects_build_and_run_in_a_host() {
    let dir = tempfile::tempdir().unwrap();
    let project = |world, name| new_project(dir.path(), world, name, "rust");
    let collector = build(&project("collector", "my-collector"), "my_collector");
    let delta = build(&project("delta", "my-delta"), "my_delta");
    let metric = build(&project("metric", "my-metric"), "my_metric");
    run_in_a_host(&collector, &delta, &metric).await;
}

/// A Python or JavaScript project of each world, built with its `build.sh`.
async fn guest_projects_build_and_run_in_a_host(lang: &str) {
    let dir = tempfile::tempdir().unwrap();
    let project = |world, name| new_project(dir.path(), world, name, lang);
    let Some(collector) = build_guest(&project("collector", "my-collector"), "my_collector") else {
        return;
    };
    let delta = build_guest(&project("delta", "my-delta"), "my_delta").unwrap();
    let metric = build_guest(&project("metric", "my-metric"), "my_metric").unwrap();
    run_in_a_host(&collector, &delta, &metric).await;
}

#[tokio::test]
async fn generated_python_projects_build_and_run_in_a_host() {
    guest_projects_build_and_run_in_a_host("python").await;
}

#[tokio::test]
async fn generated_javascript_projects_build_and_run_in_a_host() {
    guest_projects_build_and_run_in_a_host("js").await;
}

/// The three components in one pipeline of a config, then the metric loaded into
/// the running demo: each shows its output.
async fn run_in_a_host(collector: &Path, delta: &Path, metric: &Path) {
    // All three in one pipeline of a config.
    let config = format!(
        r#"
data_dir = "data"
[server]
listen = "127.0.0.1:0"
[plugins.collector]
path = "{}"
[plugins.delta]
path = "{}"
[plugins.max]
path = "{}"
[sources.prices]
type = "file"
include = ["feed/*.csv"]
[pipelines.prices]
sources = ["prices"]
collector = "collector"
delta = "delta"
metrics = ["max"]
topics = ["my-collector"]
"#,
        collector.display(),
        delta.display(),
        metric.display()
    );
    let host_dir = tempfile::tempdir().unwrap();
    let host = Host::start(host_dir.path(), &config);
    host.append("a.csv", "BTC,100\nBTC,not-a-price\nBTC,99\n");
    let state = host
        .wait_for_topic("my-collector/BTC", |s| s["price"] == 99.0)
        .await;
    assert_eq!(state["price"], 99.0);
    host.wait_for_topic("metrics/trade_price_max/BTC", |s| s["value"] == 100.0)
        .await;
    // The bad line was reported, naming it.
    let errors = host
        .metric(
            "wasmeter_pipeline_record_errors_total",
            "pipeline=\"prices\"",
        )
        .await;
    assert_eq!(errors, Some(1.0));
    // With the same message in every language.
    let reported = host.reported_error("prices").await;
    assert!(
        reported.contains("`not-a-price` is not a number"),
        "{reported}"
    );
    host.stop();

    // The metric into the running demo, with the README's one command. The demo
    // keeps its data where the first host did, so the metric's compiled code (7-12 s
    // of compiling for a guest) comes from the cache.
    let demo = Host::demo(&host_dir.path().join("data"), &[]);
    let out = demo.cli(&[
        "plugin",
        "load",
        "my-metric",
        metric.to_str().unwrap(),
        "--pipeline",
        "trades",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let series = topics(&demo, "metrics/trade_price_max/").await;
    assert!(
        series[0]["name"]
            .as_str()
            .unwrap()
            .starts_with("metrics/trade_price_max/")
    );
    demo.stop();
}
