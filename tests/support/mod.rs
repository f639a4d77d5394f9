//! Fixtures for end-to-end tests: a real `wasmeter serve` process on port 0 with a
//! config in a temp dir, and real WebSocket clients over loopback.

#![allow(dead_code)]

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
    stderr: Option<std::thread::JoinHandle<String>>,
}

/// A config for tests: `feed/*.csv` through the built-in CSV collector and field
/// delta, fast reconcile and checkpoints. `extra` is appended.
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
        let mut child = Command::new(env!("CARGO_BIN_EXE_wasmeter"))
            .args(["--log-level", "info,wasmeter=debug", "serve", "--config"])
            .arg(&config_path)
            .args(args)
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
        let addr = first
            .trim()
            .strip_prefix("wasmeter: listening on http://")
            .unwrap_or_else(|| {
                let _ = child.kill();
                panic!("host did not start; stdout: {first:?}")
            })
            .to_string();
        // Keep draining stdout so the host never blocks on a full pipe.
        std::thread::spawn(move || for _ in stdout.lines() {});
        Host {
            child: Some(child),
            addr,
            dir: dir.to_path_buf(),
            stderr: Some(stderr),
        }
    }

    /// Appends text to a feed file.
    pub fn append(&self, file: &str, text: &str) {
        append(&self.dir, file, text);
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

    /// Sends SIGTERM and waits for a clean exit; returns the host's log.
    pub fn stop(mut self) -> String {
        let mut child = self.child.take().unwrap();
        // SAFETY: kill(2) on our own child's pid, which has not been reaped yet.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let status = child.wait().unwrap();
        let log = self.stderr.take().unwrap().join().unwrap();
        assert!(status.success(), "host exited with {status}; log:\n{log}");
        log
    }
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

/// A minimal HTTP/1.1 GET over a raw socket (no HTTP client stack needed).
pub async fn http_get(addr: &str, path: &str) -> (u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw);
    let status: u16 = text[9..12].parse().unwrap();
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
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
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    s.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status: u16 = head[9..12].parse().unwrap();
    let content_type = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-type")
                .then(|| value.trim().to_string())
        })
        .unwrap_or_default();
    (status, content_type, body.to_string())
}

/// A port free on loopback now (for a host that must come back on the same port).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
