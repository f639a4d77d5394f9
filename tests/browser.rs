//! The dashboard in a real browser: headless Chromium, driven by playwright-core from
//! `tests/browser/dashboard.mjs`, against a real host. A line appended to a watched
//! file shows up on the page, and the page recovers when the host restarts on the
//! same port. Screenshot: `target/artifacts/dashboard.png`. A page of another
//! origin (`tests/browser/cross_origin.mjs`) imports the host's client and gets
//! updates when its origin is allowed, and cannot when it is not.
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

/// A page served on `listener` for every request: it imports the client of the
/// host at `host` and shows trades/BTC's price in its title, or why it could not.
fn serve_page(listener: std::net::TcpListener, host: String) -> std::thread::JoinHandle<()> {
    let page = format!(
        r#"<!doctype html><title>loading</title><script type="module">
try {{
  const {{ connect }} = await import('http://{host}/client/wasmeter.js');
  const client = connect('ws://{host}/ws');
  client.subscribe('trades/BTC');
  client.on('topic', ({{ state }}) => {{ document.title = `price ${{state.state.price}}`; }});
}} catch (e) {{
  document.title = `blocked: ${{e}}`;
}}
</script>"#
    );
    std::thread::spawn(move || {
        // Serves until the test ends (the listener goes with the process).
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}",
                page.len()
            );
            let _ = stream.write_all(response.as_bytes());
        }
    })
}

/// True when the browser tools are here; otherwise fails under CI, or says why
/// `what` is skipped.
fn browser_tools(what: &str) -> bool {
    let Some(reason) = missing_tools() else {
        return true;
    };
    assert!(
        !in_ci(),
        "browser test cannot run in CI: {reason}; scripts/test.sh installs what it needs"
    );
    eprintln!("SKIPPED {what}: {reason}");
    false
}

/// Runs `tests/browser/<script>` under node with `args`; fails, with the node
/// output and the host's log, unless it succeeds and prints `ok`.
fn run_script(script: &str, args: &[String], host: Host) {
    let out = Command::new("node")
        .arg(root().join("tests/browser").join(script))
        .args(args)
        .env("CHROMIUM", chromium())
        .output()
        .expect("run node");
    let log = host.stop();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("ok"),
        "{script} failed ({}):\n{stdout}{}\nhost log:\n{log}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_page_of_an_allowed_origin_imports_the_client_and_gets_updates() {
    if !browser_tools("cross-origin browser test") {
        return;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // The page's server: `127.0.0.1:P` is allowed, `localhost:P` is another origin.
    let pages = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = pages.local_addr().unwrap().port();
    let config = csv_config("").replace(
        "[server]",
        &format!("[server]\nallowed_origins = [\"http://127.0.0.1:{port}\"]"),
    );
    let host = Host::start(dir.path(), &config);
    host.append("trades.csv", "BTC,100,1,1700000000000\n");
    rt.block_on(host.wait_for_topic("trades/BTC", |s| s["count"] == 1.0));
    let _server = serve_page(pages, host.addr.clone());
    let feed = dir.path().join("feed/trades.csv").display().to_string();
    let args = [
        format!("http://127.0.0.1:{port}/"),
        format!("http://localhost:{port}/"),
        feed,
    ];
    run_script("cross_origin.mjs", &args, host);
}

#[test]
fn the_dashboard_on_a_host_with_tokens_asks_for_one_and_shows_topics_with_it() {
    if !browser_tools("dashboard token test") {
        return;
    }
    const SECRET: &str = "the dashboard test's secret, 32+ bytes";
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token-secret"), SECRET).unwrap();
    let config = csv_config("\n[auth]\nhmac_secret_file = \"token-secret\"\n");
    let host = Host::start(dir.path(), &config);
    host.append("trades.csv", "BTC,100,1,1700000000000\n");
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &serde_json::json!({"sub": "dashboard", "exp": exp, "topics": ["trades/*"]}),
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()).unwrap(),
    )
    .unwrap();
    let feed = dir.path().join("feed/trades.csv").display().to_string();
    let args = [format!("http://{}/", host.addr), token, feed];
    run_script("dashboard_token.mjs", &args, host);
}
