//! Fixtures for end-to-end tests: a real `wasmeter serve` process on port 0 with a
//! config in a temp dir, and real WebSocket clients over loopback.

#![allow(dead_code)]

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// Generous: tests wait for events, they never time them.
pub const WAIT: Duration = Duration::from_secs(30);

/// A running host process.
pub struct Host {
    child: Option<Child>,
    /// `127.0.0.1:PORT`
    pub addr: String,
    /// The test's directory (config, feed files, data).
    pub dir: PathBuf,
    /// The admin API, `127.0.0.1:PORT`.
    pub admin: Option<String>,
    /// The admin token file the host wrote.
    pub token_file: Option<PathBuf>,
    /// The `wasmeter plugin list` command the host's announcement suggests.
    pub admin_hint: Option<String>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

/// A config for tests: `feed/*.csv` through the built-in CSV collector and field
/// delta, fast reconcile and checkpoints; the pipeline owns `trades` and `deals`.
/// `extra` is appended.
pub fn csv_config(extra: &str) -> String {
    format!(
        r#"
data_dir = "data"

[server]
listen = "127.0.0.1:0"

[plugins.csv]
builtin = "csv-collector"

[plugins.delta]
builtin = "field-delta"

[sources.trades]
type = "file"
include = ["feed/*.csv"]
reconcile_interval_ms = 200

[pipelines.trades]
sources = ["trades"]
collector = "csv"
delta = "delta"
checkpoint_interval_ms = 200
# Admin tests swap the collector to `topic_prefix = "deals"`.
topics = ["trades", "deals"]
{extra}
"#
    )
}

impl Host {
    /// Writes `config` to `dir/wasmeter.toml` and starts `wasmeter serve` on it.
    pub fn start(dir: &Path, config: &str) -> Host {
        Host::start_with(dir, config, &[])
    }

    /// Like [`Host::start`] on a fixed address (`--listen`), e.g. from [`free_addr`],
    /// so that a restarted host is found where the first one was.
    pub fn start_on(dir: &Path, config: &str, listen: &str) -> Host {
        Host::start_with(dir, config, &["--listen", listen])
    }

    /// Like [`Host::start`] with extra arguments to `serve`.
    pub fn start_with(dir: &Path, config: &str, args: &[&str]) -> Host {
        std::fs::create_dir_all(dir.join("feed")).unwrap();
        let config_path = dir.join("wasmeter.toml");
        std::fs::write(&config_path, config).unwrap();
        let mut all: Vec<OsString> = vec!["--config".into(), config_path.into()];
        all.extend(args.iter().map(OsString::from));
        Host::spawn(dir, &all)
    }

    /// `wasmeter serve` with the built-in demo config and feed in `dir`.
    pub fn demo(dir: &Path, args: &[&str]) -> Host {
        let mut all: Vec<OsString> = vec!["--data-dir".into(), dir.into()];
        all.extend(["--listen", "127.0.0.1:0"].map(OsString::from));
        all.extend(args.iter().map(OsString::from));
        Host::spawn(dir, &all)
    }

    /// Starts `wasmeter serve ARGS` (the admin API on a free loopback port unless
    /// ARGS say otherwise) and reads where it listens.
    pub fn spawn(dir: &Path, args: &[OsString]) -> Host {
        let mut command = Command::new(env!("CARGO_BIN_EXE_wasmeter"));
        command
            .args(["--log-level", "info,wasmeter=debug", "serve"])
            .args(args)
            // The host writes its own token file unless a test configures one.
            .env_remove("WASMETER_ADMIN_TOKEN");
        if !args.iter().any(|a| a == "--admin-listen") {
            command.args(["--admin-listen", "127.0.0.1:0"]);
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start wasmeter");
        let stderr = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut all = String::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                all.push_str(&line);
                all.push('\n');
            }
            all
        });
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        let listening = first.trim().strip_prefix("wasmeter: listening on ");
        let Some(addr) = listening.and_then(|a| {
            a.strip_prefix("http://")
                .or_else(|| a.strip_prefix("https://"))
        }) else {
            let _ = child.kill();
            let _ = child.wait();
            let log = stderr.join().unwrap_or_default();
            panic!("host did not start; stdout: {first:?}; log:\n{log}")
        };
        let addr = addr.to_string();
        // The announcement ends with the data dir; the admin line comes before it.
        let (mut admin, mut token_file, mut admin_hint) = (None, None, None);
        let mut line = String::new();
        while {
            line.clear();
            stdout.read_line(&mut line).unwrap_or(0) > 0
        } {
            let admin_line = line.trim().strip_prefix("admin      ");
            if let Some(rest) = admin_line.and_then(|a| {
                a.strip_prefix("http://")
                    .or_else(|| a.strip_prefix("https://"))
            }) {
                let (a, rest) = rest.split_once(' ').unwrap();
                admin = Some(a.to_string());
                token_file = rest
                    .split_once("token in ")
                    .map(|(_, f)| PathBuf::from(f.split(';').next().unwrap()));
                admin_hint = rest.split('`').nth(1).map(String::from);
            }
            if line.trim().starts_with("data dir") {
                break;
            }
        }
        // Keep draining stdout so the host never blocks on a full pipe.
        std::thread::spawn(move || for _ in stdout.lines() {});
        Host {
            child: Some(child),
            addr,
            dir: dir.to_path_buf(),
            admin,
            token_file,
            admin_hint,
            stderr: Some(stderr),
        }
    }

    /// The host's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// The names of the host process's threads, sorted (Linux keeps 15 bytes of each).
    pub fn thread_names(&self) -> Vec<String> {
        let tasks = format!("/proc/{}/task", self.pid());
        let mut names: Vec<String> = std::fs::read_dir(tasks)
            .unwrap()
            .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
            .map(|name| name.trim_end().to_string())
            .collect();
        names.sort();
        names
    }

    /// The admin token the host wrote to its data directory.
    pub fn token(&self) -> String {
        let file = self.token_file.as_ref().expect("a generated admin token");
        std::fs::read_to_string(file).unwrap().trim().to_string()
    }

    /// An admin API request with the host's token; returns the status and JSON body.
    pub async fn admin(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let token = format!("Bearer {}", self.token());
        let mut headers = vec![("Authorization", token.as_str())];
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        if !body.is_empty() {
            headers.push(("Content-Type", "application/json"));
        }
        let admin = self.admin.as_deref().expect("admin API");
        let (status, _, body) = http_request(admin, method, path, &headers, body.as_bytes()).await;
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    /// Runs `wasmeter ARGS --admin ... --token-file ...` against this host.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_wasmeter"))
            .args(args)
            .arg("--admin")
            .arg(self.admin.as_deref().expect("admin API"))
            .arg("--token-file")
            .arg(self.token_file.as_deref().expect("a generated admin token"))
            .env_remove("WASMETER_ADMIN_TOKEN")
            .output()
            .expect("run wasmeter")
    }

    /// Appends text to a feed file.
    pub fn append(&self, file: &str, text: &str) {
        append(&self.dir, file, text);
    }

    /// Uploads `component` as the new version of `plugin` through the admin API.
    pub async fn upload_swap(&self, plugin: &str, component: &Path) -> (u16, Value) {
        let bytes = std::fs::read(component).unwrap();
        let token = format!("Bearer {}", self.token());
        let headers = [
            ("Authorization", token.as_str()),
            ("Content-Type", "application/wasm"),
        ];
        let admin = self.admin.as_deref().unwrap();
        let path = format!("/v1/plugins/{plugin}/swap");
        let (status, _, body) = http_request(admin, "POST", &path, &headers, &bytes).await;
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    /// The message of the newest record error pipeline `pipeline` reported,
    /// once it reported one.
    pub async fn reported_error(&self, pipeline: &str) -> String {
        let state = self
            .wait_for_topic(&format!("_wasmeter/errors/{pipeline}"), |s| !s.is_null())
            .await;
        state["message"].as_str().unwrap_or_default().to_string()
    }

    /// GET a JSON document from the host.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        http_get(&self.addr, path).await
    }

    /// The state of a topic, once it exists and `ready` holds for it.
    pub async fn wait_for_topic(&self, topic: &str, ready: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let (status, body) = self.get(&format!("/api/topics/{topic}")).await;
            if status == 200 && ready(&body["state"]) {
                return body["state"].clone();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "topic {topic} never got ready; last: {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends a signal to the host process.
    pub fn signal(&self, signal: i32) {
        let child = self.child.as_ref().unwrap();
        // SAFETY: kill(2) on our own child's pid, which has not been reaped yet.
        unsafe { libc::kill(child.id() as i32, signal) };
    }

    /// Sends SIGTERM and waits for a clean exit within [`STOP_BOUND`] (a host
    /// that does not exit by then is killed and the test fails); returns the
    /// host's log.
    pub fn stop(self) -> String {
        self.stop_within(STOP_BOUND)
    }
}

/// Longest a host may take to exit after SIGTERM in the tests: the default
/// `runtime.shutdown_timeout_ms` (10 s) for pipelines to drain, and a margin.
pub const STOP_BOUND: Duration = Duration::from_secs(20);

impl Host {
    /// Sends SIGTERM and waits at most `bound` for a clean exit (a host that does
    /// not exit by then is killed and the test fails); returns the host's log.
    pub fn stop_within(mut self, bound: Duration) -> String {
        let mut child = self.child.take().unwrap();
        // SAFETY: kill(2) on our own child's pid, which has not been reaped yet.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let status = wait_bounded(&mut child, bound);
        let log = self.stderr.take().unwrap().join().unwrap();
        match status {
            Some(status) => assert!(status.success(), "host exited with {status}; log:\n{log}"),
            None => panic!("host did not exit within {bound:?} of SIGTERM; log:\n{log}"),
        }
        log
    }

    /// The value of the `/metrics` sample `name` whose labels include `label`
    /// (e.g. `pipeline="lines"`), if there is one.
    pub async fn metric(&self, name: &str, label: &str) -> Option<f64> {
        let (_, _, text) = http_get_text(&self.addr, "/metrics", &[]).await;
        text.lines()
            .filter(|l| l.starts_with(name) && l.contains(label))
            .find_map(|l| l.rsplit(' ').next()?.parse().ok())
    }
}

/// Waits at most `bound` for a child to exit; kills it and returns `None` if it
/// does not.
pub fn wait_bounded(child: &mut Child, bound: Duration) -> Option<std::process::ExitStatus> {
    let deadline = std::time::Instant::now() + bound;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `wasmeter ARGS` to completion within [`WAIT`] (killed and failed beyond);
/// returns whether it succeeded and its stderr.
pub fn run_wasmeter(args: &[OsString]) -> (bool, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wasmeter"))
        .args(args)
        .env_remove("WASMETER_ADMIN_TOKEN")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run wasmeter");
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        let _ = std::io::Read::read_to_string(&mut BufReader::new(stderr), &mut all);
        all
    });
    let status = wait_bounded(&mut child, WAIT);
    let stderr = reader.join().unwrap();
    let status = status
        .unwrap_or_else(|| panic!("wasmeter {args:?} still ran after {WAIT:?}; log:\n{stderr}"));
    (status.success(), stderr)
}

impl Drop for Host {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A loopback address that was free a moment ago: bind port 0, read the port, let go.
/// The host listens with `SO_REUSEADDR`, so it can take the port again after a restart.
pub fn free_addr() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

/// Appends text to `dir/feed/file`, whether or not a host runs.
pub fn append(dir: &Path, file: &str, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("feed").join(file))
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// A minimal HTTP/1.1 request over a raw socket (no HTTP client stack needed);
/// returns the status, the head and the body.
pub async fn http_request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    s.write_all(request.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(raw.len());
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let body = raw.get(split + 4..).unwrap_or_default().to_vec();
    let status: u16 = head[9..12].parse().unwrap();
    (status, head, body)
}

/// A GET of a JSON document.
pub async fn http_get(addr: &str, path: &str) -> (u16, Value) {
    let (status, _, body) = http_request(addr, "GET", path, &[], b"").await;
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// A WebSocket subscriber speaking JSON or MessagePack.
pub struct Client {
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    msgpack: bool,
}

impl Client {
    /// Connects with `?format=json|msgpack`.
    pub async fn connect(addr: &str, format: &str) -> Client {
        let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws?format={format}"))
            .await
            .expect("websocket connect");
        Client {
            ws,
            msgpack: format == "msgpack",
        }
    }

    /// Sends a control message.
    pub async fn send(&mut self, msg: Value) {
        let frame = if self.msgpack {
            Message::Binary(rmp_serde::to_vec_named(&msg).unwrap().into())
        } else {
            Message::Text(msg.to_string().into())
        };
        self.ws.send(frame).await.unwrap();
    }

    /// Subscribes to topics/patterns.
    pub async fn subscribe(&mut self, topics: &[&str]) {
        self.send(json!({"type": "subscribe", "topics": topics}))
            .await;
    }

    /// The next data message (pings are answered and skipped).
    pub async fn next(&mut self) -> Value {
        // One deadline for the whole wait: pings must not extend it.
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .expect("a message within the wait")
                .expect("connection open")
                .expect("frame");
            let value: Value = match frame {
                Message::Text(t) => {
                    assert!(!self.msgpack, "text frame on a msgpack connection");
                    serde_json::from_str(&t).unwrap()
                }
                Message::Binary(b) => {
                    assert!(self.msgpack, "binary frame on a json connection");
                    rmp_serde::from_slice(&b).unwrap()
                }
                _ => continue,
            };
            if value["type"] == "ping" {
                self.send(json!({"type": "pong"})).await;
                continue;
            }
            return value;
        }
    }

    /// The next message of `type` for `topic`, skipping others.
    pub async fn next_for(&mut self, kind: &str, topic: &str) -> Value {
        loop {
            let m = self.next().await;
            if m["type"] == kind && m["topic"] == topic {
                return m;
            }
        }
    }
}

/// A GET with extra request headers; returns the status, the content type and the
/// body as text (for non-JSON answers such as `/metrics`).
pub async fn http_get_text(
    addr: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String, String) {
    let (status, head, body) = http_request(addr, "GET", path, headers, b"").await;
    let content_type = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-type")
                .then(|| value.trim().to_string())
        })
        .unwrap_or_default();
    (
        status,
        content_type,
        String::from_utf8_lossy(&body).into_owned(),
    )
}

/// A port free on loopback now (for a host that must come back on the same port).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Client {
    /// Connects like [`Client::connect`] through a socket whose receive buffer
    /// (`SO_RCVBUF`) is set to `recv_buffer_bytes` before connecting, so the
    /// kernel cannot absorb much of what the host sends: a client that stops
    /// reading stalls the host's writes almost at once.
    pub async fn connect_with_recv_buffer(
        addr: &str,
        format: &str,
        recv_buffer_bytes: u32,
    ) -> Client {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(recv_buffer_bytes).unwrap();
        let stream = socket.connect(addr.parse().unwrap()).await.unwrap();
        let (ws, _) = tokio_tungstenite::client_async(
            format!("ws://{addr}/ws?format={format}"),
            tokio_tungstenite::MaybeTlsStream::Plain(stream),
        )
        .await
        .expect("websocket handshake");
        Client {
            ws,
            msgpack: format == "msgpack",
        }
    }
}

/// The sum of the samples of metric `name` (any labels) in the host's `/metrics`.
pub async fn metric_value(addr: &str, name: &str) -> f64 {
    let (status, _, body) = http_get_text(addr, "/metrics", &[]).await;
    assert_eq!(status, 200, "/metrics: {body}");
    let mut found = false;
    let mut sum = 0.0;
    for line in body.lines().filter(|l| !l.starts_with('#')) {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        if !(rest.starts_with(' ') || rest.starts_with('{')) {
            continue;
        }
        let value = rest.rsplit(' ').next().unwrap_or_default();
        sum += value
            .parse::<f64>()
            .unwrap_or_else(|e| panic!("{line}: {e}"));
        found = true;
    }
    assert!(found, "no metric {name} in /metrics:\n{body}");
    sum
}

/// The offset the pipeline's last checkpoint (`data/checkpoints/<pipeline>.checkpoint`
/// under `dir`) committed for the feed file `file`, if it has one.
pub fn checkpoint_offset(dir: &Path, pipeline: &str, file: &str) -> Option<u64> {
    let path = dir
        .join("data/checkpoints")
        .join(format!("{pipeline}.checkpoint"));
    let stored = wasmeter_source::Checkpoint::load(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))?;
    stored
        .files
        .iter()
        .filter(|f| f.path.to_string_lossy().ends_with(file))
        .map(|f| f.offset)
        .max()
}

impl Host {
    /// Kills the host with SIGKILL (no shutdown, no final checkpoint) and waits
    /// for it to die; returns its log.
    pub fn kill(mut self) -> String {
        let mut child = self.child.take().unwrap();
        // SAFETY: kill(2) on our own child's pid, which has not been reaped yet.
        unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        let status = child.wait().unwrap();
        let log = self.stderr.take().unwrap().join().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            status.signal(),
            Some(libc::SIGKILL),
            "host was not killed: {status}; log:\n{log}"
        );
        log
    }
}

/// The path of a test component built from `plugins/` by `scripts/build-plugins.sh`.
pub fn built_path(file: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/plugins/wasm32-wasip2/release")
        .join(file);
    assert!(
        path.exists(),
        "{} is missing (run scripts/build-plugins.sh)",
        path.display()
    );
    path
}

/// A program from `PATH`: in CI a missing one fails the test naming it and its
/// Debian package (`scripts/test.sh` installs it); elsewhere the test is skipped
/// with the reason.
pub fn tool(name: &str, package: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{name} is missing: scripts/test.sh installs it (Debian package {package})"
        );
        eprintln!("{name} is missing (Debian package {package}): test skipped");
    }
    found
}

/// `promtool` (Prometheus's own command line, a client of its HTTP API).
pub fn promtool() -> Option<PathBuf> {
    tool("promtool", "prometheus")
}

/// Runs `wasmeter new WORLD NAME --lang LANG --dir DIR/NAME`.
pub fn new_project(dir: &Path, world: &str, name: &str, lang: &str) -> PathBuf {
    let project = dir.join(name);
    let out = Command::new(env!("CARGO_BIN_EXE_wasmeter"))
        .args(["new", world, name, "--lang", lang, "--dir"])
        .arg(&project)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    project
}
