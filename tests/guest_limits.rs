//! The host's limits and refusals apply to Python and JavaScript plugins like to any
//! plugin, in the real host:
//! - a guest call past its deadline fails, is reported, and repeated failures
//!   quarantine the guest; its input waits and nothing is lost after release;
//! - a guest growing past its memory cap fails the call with an error that says memory;
//! - a memory cap below what a guest's interpreter needs (its initial memory: 12-13 MiB
//!   for the Python ewma) stops the host at start, naming the config key, the plugin
//!   and memory (the guest compiles with the default limits; its first instance for
//!   the pipeline is refused);
//! - a hot swap between plugins whose state formats differ (Rust `vwap` to a guest
//!   `ewma`, and a guest `ewma` to Rust `vwap`) is refused through the admin API, and
//!   the old version keeps running and publishing.
//!
//! The memory cap at start and the refused swaps share a test (and a data directory)
//! so that the guests are compiled once: 7-15 s each.
//!
//! The examples come from `scripts/build-guest-plugins.sh` (run by `scripts/test.sh`);
//! the test fixture that spins and grows is a project of `wasmeter new --lang python`
//! with its `app.py` replaced, built by its `build.sh` (cached by a hash of its
//! sources). A toolchain that cannot be installed fails the tests under CI, naming it,
//! and skips them elsewhere.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use support::{Host, WAIT};

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Fails under CI naming what is missing, else prints why the test is skipped.
fn missing(what: &str) -> Option<PathBuf> {
    assert!(!in_ci(), "missing under CI: {what}");
    eprintln!("skipped: {what}");
    None
}

/// An example built by `scripts/build-guest-plugins.sh`: `target/guest-plugins/LANG/FILE`.
fn example(lang: &str, file: &str) -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/guest-plugins")
        .join(lang);
    if let Ok(reason) = std::fs::read_to_string(dir.join("MISSING")) {
        return missing(&format!("the {lang} guest plugins: {}", reason.trim()));
    }
    let path = dir.join(file);
    if !path.is_file() {
        return missing(&format!(
            "{} (scripts/build-guest-plugins.sh builds it)",
            path.display()
        ));
    }
    Some(path)
}

/// A Python collector: each line `x` becomes the topic `<topic_prefix>/x`; the line
/// `spin` loops until its deadline, `grow N` keeps N MiB more.
const LIMITS_APP: &str = r#"
from wasmeter_guest import export_collector, lines, update


class Limits:
    NAME, VERSION, DESCRIPTION = "limits", "0.1.0", "spins and grows on request"

    def __init__(self, config):
        self.prefix = config.get("topic_prefix", "limits")
        self.held = []

    def collect(self, source, chunk, out):
        lines.for_each(chunk, out, lambda line: self.line(line, out))

    def line(self, line, out):
        if line == "spin":
            while True:
                pass
        if line.startswith("grow "):
            self.held.append(bytearray(int(line[5:]) << 20))
        out.updates.append(update(self.prefix + "/" + line.replace(" ", "_"), [("seen", 1)]))


Plugin, Collect = export_collector(Limits)
"#;

/// The fixture above, built as a plugin author would build it.
fn limits_guest(dir: &Path) -> Option<PathBuf> {
    let project = support::new_project(dir, "collector", "limits", "python");
    std::fs::write(project.join("app.py"), LIMITS_APP).unwrap();
    let out = Command::new("./build.sh")
        .current_dir(&project)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() == Some(3) {
        return missing(&stderr);
    }
    assert!(
        out.status.success(),
        "building the fixture failed:\n{stderr}"
    );
    Some(project.join("limits.wasm"))
}

/// The plugin's summary from the admin API once `check` holds.
async fn wait_for_plugin(host: &Host, name: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, body) = host
            .admin("GET", &format!("/v1/plugins/{name}"), None)
            .await;
        if status == 200 && check(&body) {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "plugin {name}: {status} {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Whether the topic exists now.
async fn exists(host: &Host, topic: &str) -> bool {
    host.get(&format!("/api/topics/{topic}")).await.0 == 200
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_past_its_deadline_or_memory_cap_fails_is_reported_and_quarantined_losing_nothing()
{
    let dir = tempfile::tempdir().unwrap();
    let Some(wasm) = limits_guest(dir.path()) else {
        return;
    };
    // The same component twice: `slow` may take 300 ms a call, `small` 32 MiB.
    let mut config = format!(
        "data_dir = \"data\"\n[server]\nlisten = \"127.0.0.1:0\"\n\
         [plugins.slow]\npath = \"{0}\"\ncall_timeout_ms = 300\nconfig = {{ topic_prefix = \"slow\" }}\n\
         [plugins.small]\npath = \"{0}\"\nmemory_limit_bytes = 33554432\nconfig = {{ topic_prefix = \"small\" }}\n",
        wasm.display()
    );
    for name in ["slow", "small"] {
        config.push_str(&format!(
            "[sources.{name}]\ntype = \"file\"\ninclude = [\"feed/{name}/*.log\"]\n\
             reconcile_interval_ms = 200\n\
             [pipelines.{name}]\nsources = [\"{name}\"]\ncollector = \"{name}\"\ntopics = [\"{name}\"]\n"
        ));
    }
    for sub in ["slow", "small"] {
        std::fs::create_dir_all(dir.path().join("feed").join(sub)).unwrap();
    }
    let host = Host::start(dir.path(), &config);

    // The memory cap: `grow 64` fails its call, which says memory; the lines around
    // it are used.
    host.append("small/m.log", "one\ngrow 64\ntwo\n");
    host.wait_for_topic("small/two", |s| !s.is_null()).await;
    assert!(exists(&host, "small/one").await);
    assert!(!exists(&host, "small/grow_64").await);
    let small = wait_for_plugin(&host, "small", |p| !p["last_error"].is_null()).await;
    let error = small["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("memory limit exceeded"), "{small}");
    assert_eq!(small["state"], "active", "{small}");
    // Reported as the record's error, naming memory.
    let reported = host.reported_error("small").await;
    assert!(reported.contains("memory limit exceeded"), "{reported}");

    // The deadline: good lines, then spinning ones that quarantine the guest (after
    // five failures in a row), with good lines behind them in the same chunk.
    host.append("slow/s.log", "a\nb\nc\n");
    host.wait_for_topic("slow/c", |s| !s.is_null()).await;
    host.append("slow/s.log", "spin\nspin\nspin\nspin\nspin\nspin\nd\ne\n");
    let slow = wait_for_plugin(&host, "slow", |p| p["state"] == "quarantined").await;
    assert!(
        slow["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("deadline"),
        "{slow}"
    );
    let notice = host
        .wait_for_topic("_wasmeter/plugins/slow", |s| s["event"] == "quarantined")
        .await;
    assert!(
        notice["error"]
            .as_str()
            .unwrap_or_default()
            .contains("deadline"),
        "{notice}"
    );
    host.append("slow/s.log", "f\ng\n");
    // Held while quarantined: the input waits in the file.
    assert!(!exists(&host, "slow/d").await, "a quarantined guest ran");

    // Released: every good line arrives, none lost.
    let (status, body) = host.admin("POST", "/v1/plugins/slow/release", None).await;
    assert_eq!(status, 200, "{body}");
    host.wait_for_topic("slow/g", |s| !s.is_null()).await;
    for line in ["a", "b", "c", "d", "e", "f"] {
        assert!(exists(&host, &format!("slow/{line}")).await, "{line} lost");
    }
    assert!(!exists(&host, "slow/spin").await);
    host.stop();
}

/// A host in `dir` whose pipeline has the guest metric `wasm` with a 4 MiB cap does
/// not start, and says the guest's memory is the reason.
fn refused_at_start(dir: &Path, lang: &str, wasm: &Path) {
    let config = format!(
        "data_dir = \"data\"\n[server]\nlisten = \"127.0.0.1:0\"\n[admin]\nenabled = false\n\
         [plugins.csv]\nbuiltin = \"csv-collector\"\n\
         [plugins.ewma]\npath = \"{}\"\nmemory_limit_bytes = 4194304\n\
         [sources.trades]\ntype = \"file\"\ninclude = [\"feed/*.csv\"]\n\
         [pipelines.trades]\nsources = [\"trades\"]\ncollector = \"csv\"\nmetrics = [\"ewma\"]\n",
        wasm.display()
    );
    std::fs::write(dir.join("small.toml"), config).unwrap();
    let (ok, output) = support::run_wasmeter(&[
        "serve".into(),
        "--config".into(),
        dir.join("small.toml").into(),
    ]);
    assert!(!ok, "{lang}: a host started with a 4 MiB guest: {output}");
    // e.g. `pipelines.trades.metrics: metric `ewma`: memory limit exceeded: the
    // plugin asked for 12976128 bytes of linear memory, its cap is 4194304 bytes`
    let line = output
        .lines()
        .find(|l| l.contains("memory limit exceeded"))
        .unwrap_or_else(|| panic!("{lang}: no memory error: {output}"));
    assert!(
        line.contains("pipelines.trades.metrics")
            && line.contains("`ewma`")
            && line.contains("its cap is 4194304 bytes"),
        "{lang}: {line}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swap_between_state_formats_is_refused_and_so_is_a_memory_cap_below_a_guests_needs() {
    let (Some(python_ewma), Some(js_ewma)) =
        (example("python", "ewma.wasm"), example("js", "ewma.wasm"))
    else {
        return;
    };
    let rust_vwap = support::built_path("vwap.wasm");
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "data_dir = \"data\"\n[server]\nlisten = \"127.0.0.1:0\"\n\
         [plugins.csv]\nbuiltin = \"csv-collector\"\n\
         [plugins.vwap]\nbuiltin = \"vwap\"\n\
         [plugins.ewma]\npath = \"{}\"\n\
         [sources.trades]\ntype = \"file\"\ninclude = [\"feed/*.csv\"]\nreconcile_interval_ms = 200\n\
         [pipelines.trades]\nsources = [\"trades\"]\ncollector = \"csv\"\nmetrics = [\"vwap\", \"ewma\"]\n",
        js_ewma.display()
    );
    let host = Host::start(dir.path(), &config);
    host.append("t.csv", "BTC,100,1,1700000000000\n");
    host.wait_for_topic("metrics/trade_vwap/BTC", |s| s["value"] == 100.0)
        .await;
    host.wait_for_topic("metrics/trade_price_ewma/BTC", |s| s["value"] == 100.0)
        .await;

    // Rust vwap -> the Python ewma: the guest refuses the vwap state.
    let (status, body) = host.upload_swap("vwap", &python_ewma).await;
    assert_eq!(status, 422, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("state") && message.contains("`vwap`") && message.contains("`ewma`"),
        "{body}"
    );
    // The JavaScript ewma -> Rust vwap: the Rust plugin refuses the ewma state.
    let (status, body) = host.upload_swap("ewma", &rust_vwap).await;
    assert_eq!(status, 422, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("state") && message.contains("`ewma`"),
        "{body}"
    );

    // Both old versions still run (`failed`: the last change was refused, the
    // running version stays), and publish.
    for (name, plugin, description) in [
        (
            "vwap",
            "vwap",
            "Volume-weighted average price per series over a rolling window",
        ),
        (
            "ewma",
            "ewma",
            "Exponentially weighted moving average per series, in JavaScript",
        ),
    ] {
        let (_, summary) = host
            .admin("GET", &format!("/v1/plugins/{name}"), None)
            .await;
        assert_eq!(summary["plugin"], plugin, "{summary}");
        assert_eq!(summary["description"], description, "{summary}");
        assert_eq!(summary["state"], "failed", "{summary}");
        assert_eq!(summary["swaps"], 0, "{summary}");
        assert_eq!(summary["instances"][0]["quarantined"], false, "{summary}");
        let error = summary["last_error"].as_str().unwrap_or_default();
        assert!(
            error.contains("refused the old version's state"),
            "{summary}"
        );
    }
    host.append("t.csv", "BTC,110,1,1700000000001\n");
    // (vwap's window is the last 5 minutes of the clock: these old trades each
    // stand alone.)
    host.wait_for_topic("metrics/trade_vwap/BTC", |s| {
        s["ts"] == 1_700_000_000_001.0 && s["value"] == 110.0
    })
    .await;
    // 0.2 * 110 + 0.8 * 100 (the default alpha).
    host.wait_for_topic("metrics/trade_price_ewma/BTC", |s| {
        (s["value"].as_f64().unwrap_or_default() - 102.0).abs() < 1e-9
    })
    .await;
    host.stop();

    // A memory cap below what the guests need, in the same data directory (their
    // compiled code is in its cache, so these hosts do not compile them again).
    refused_at_start(dir.path(), "python", &python_ewma);
    refused_at_start(dir.path(), "js", &js_ewma);
}
