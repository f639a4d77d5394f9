//! The dashboard in a real browser: headless Chromium, driven by playwright-core from
//! `tests/browser/dashboard.mjs`, against a real host. A line appended to a watched
//! file shows up on the page, and the page recovers when the host restarts on the
//! same port. Screenshot: `target/artifacts/dashboard.png`.
//!
//! Needs `node`, Chromium (`/usr/bin/chromium`, or `CHROMIUM=path`) and
//! `npm ci` in `tests/browser` (`scripts/test.sh` installs all three). Without them
//! the test fails under CI (`CI` set) and is skipped, with the reason, otherwise.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use support::{Host, csv_config, free_addr};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// Why the browser test cannot run here, if it cannot.
fn missing_tools() -> Option<String> {
    let node = Command::new("node").arg("--version").output();
    if !node.is_ok_and(|o| o.status.success()) {
        return Some("`node` is not installed".into());
    }
    if !chromium().exists() {
        return Some(format!(
            "Chromium is not installed at {} (apt-get install chromium, or set CHROMIUM)",
            chromium().display()
        ));
    }
    if !root()
        .join("tests/browser/node_modules/playwright-core")
        .exists()
    {
        return Some("playwright-core is not installed (run `npm ci` in tests/browser)".into());
    }
    None
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

#[test]
fn dashboard_shows_live_values_and_recovers_after_a_host_restart() {
    if let Some(reason) = missing_tools() {
        assert!(
            !in_ci(),
            "browser test cannot run in CI: {reason}; scripts/test.sh installs what it needs"
        );
        eprintln!("SKIPPED dashboard browser test: {reason}");
        return;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = csv_config("");
    let addr = free_addr();
    let mut host = Some(Host::start_on(dir.path(), &config, &addr));
    let first = host.as_ref().unwrap();
    first.append(
        "trades.csv",
        "BTC,100,1,1700000000000\nETH,3000,2,1700000000001\n",
    );
    rt.block_on(first.wait_for_topic("trades/ETH", |s| s["count"] == 1.0));

    let artifacts = root().join("target/artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let screenshot = artifacts.join("dashboard.png");
    let mut node = Command::new("node")
        .arg(root().join("tests/browser/dashboard.mjs"))
        .arg(format!("http://{addr}/"))
        .arg(dir.path().join("feed/trades.csv"))
        .arg(&screenshot)
        .env("CHROMIUM", chromium())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start node");
    let mut stderr = node.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut all = String::new();
        let _ = stderr.read_to_string(&mut all);
        all
    });
    let mut stdin = node.stdin.take().unwrap();
    let mut saw_ok = false;
    let mut restarted = false;
    for line in BufReader::new(node.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
    {
        match line.trim() {
            "restart" => {
                host.take().unwrap().stop();
                host = Some(Host::start_on(dir.path(), &config, &addr));
                writeln!(stdin, "restarted").unwrap();
                restarted = true;
            }
            "ok" => saw_ok = true,
            other => eprintln!("dashboard.mjs: {other}"),
        }
    }
    let status = node.wait().unwrap();
    let log = stderr.join().unwrap();
    let host_log = host.take().map(Host::stop).unwrap_or_default();
    assert!(
        status.success() && saw_ok && restarted,
        "browser test failed ({status}); node:\n{log}\nhost log:\n{host_log}"
    );
    assert!(
        screenshot.exists(),
        "no screenshot at {}",
        screenshot.display()
    );
    eprintln!("{log}screenshot: {}", screenshot.display());
}

#[test]
fn browser_client_logic_under_node() {
    let node = Command::new("node").arg("--version").output();
    if !node.is_ok_and(|o| o.status.success()) {
        assert!(!in_ci(), "`node` is not installed");
        eprintln!("SKIPPED client unit checks: `node` is not installed");
        return;
    }
    let out = Command::new("node")
        .arg(root().join("tests/browser/client.mjs"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "client.mjs failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
