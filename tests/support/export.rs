//! Fixtures of the export tests: a real VictoriaMetrics and a real Alertmanager
//! (Debian packages, installed by `scripts/test.sh`) on free loopback ports with
//! their own temp storage, and a webhook receiver that records what it gets.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use crate::support::free_port;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// Polls `check` every 50 ms until it returns `Some`, at most `bound`.
pub async fn until<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    bound: Duration,
    mut check: impl FnMut() -> F,
) -> T {
    let deadline = tokio::time::Instant::now() + bound;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up waiting for {what} after {bound:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An HTTP/1.1 request (chunked responses decoded); `None` if the server cannot
/// be reached.
pub async fn request(addr: &str, method: &str, path: &str, body: &[u8]) -> Option<(u16, Vec<u8>)> {
    let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.ok()?;
    s.write_all(body).await.ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.ok()?;
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let status = head.get(9..12)?.parse().ok()?;
    let mut body = raw[split + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    Some((status, body))
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = b.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size =
            usize::from_str_radix(std::str::from_utf8(&b[..eol]).unwrap().trim(), 16).unwrap_or(0);
        if size == 0 || b.len() < eol + 2 + size {
            return out;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + size]);
        b = &b[eol + 2 + size + 2..];
    }
}

/// A child process killed (SIGKILL) and reaped when dropped.
#[derive(Default)]
pub struct Proc(Option<Child>);

impl Proc {
    /// Owns `child` from now on.
    pub fn new(child: Child) -> Proc {
        Proc(Some(child))
    }

    /// Stops it (SIGTERM, then SIGKILL after 30 s) and waits for it.
    pub fn stop(&mut self) {
        if let Some(c) = &mut self.0 {
            // SAFETY: kill(2) on our own child's pid.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while c.try_wait().ok().flatten().is_none() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        self.kill();
    }

    /// Kills it now and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A VictoriaMetrics single-node server.
pub struct Vm {
    bin: PathBuf,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    storage: PathBuf,
    proc: Proc,
}

impl Vm {
    /// Starts it on a free port with storage under `dir`; returns once it answers.
    pub async fn start(bin: &Path, dir: &Path) -> Vm {
        let addr = format!("127.0.0.1:{}", free_port());
        let mut vm = Vm {
            bin: bin.to_path_buf(),
            addr,
            storage: dir.join("vm-data"),
            proc: Proc(None),
        };
        vm.up().await;
        vm
    }

    /// (Re)starts the process on the same port and storage.
    pub async fn up(&mut self) {
        let child = Command::new(&self.bin)
            .arg(format!("-storageDataPath={}", self.storage.display()))
            .arg(format!("-httpListenAddr={}", self.addr))
            // Recent samples are searchable at once, and line protocol's single
            // field `value` does not get into the metric name.
            .args([
                "-search.latencyOffset=0s",
                "-influxSkipSingleField",
                "-loggerLevel=ERROR",
                "-search.disableCache",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start victoria-metrics");
        self.proc = Proc(Some(child));
        let addr = self.addr.clone();
        until(
            "victoria-metrics to answer",
            Duration::from_secs(30),
            || {
                let addr = addr.clone();
                async move {
                    let (status, _) = request(&addr, "GET", "/health", b"").await?;
                    (status == 200).then_some(())
                }
            },
        )
        .await;
    }

    /// Stops the process (SIGTERM: down, not paused; it writes what it holds in
    /// memory first, as a database stopped by its operator does).
    pub fn down(&mut self) {
        self.proc.stop();
    }

    /// Every raw sample of the series matching `selector`, by series:
    /// `/api/v1/export` (JSON lines `{metric, values, timestamps}`).
    pub async fn export(&self, selector: &str) -> Vec<(Value, Vec<(i64, f64)>)> {
        let path = format!(
            "/api/v1/export?match[]={}",
            percent_encoding::utf8_percent_encode(selector, percent_encoding::NON_ALPHANUMERIC)
        );
        let (status, body) = request(&self.addr, "GET", &path, b"")
            .await
            .expect("victoria-metrics answers");
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        String::from_utf8(body)
            .unwrap()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                let points = v["timestamps"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .zip(v["values"].as_array().unwrap())
                    .map(|(t, x)| (t.as_i64().unwrap(), x.as_f64().unwrap()))
                    .collect();
                (v["metric"].clone(), points)
            })
            .collect()
    }
}

/// An Alertmanager with its own storage, routing every alert to `webhook`.
pub struct Alertmanager {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    proc: Proc,
}

impl Alertmanager {
    /// Starts it on a free port; returns once it is ready.
    pub async fn start(bin: &Path, dir: &Path, webhook: &str) -> Alertmanager {
        let config = dir.join("alertmanager.yml");
        std::fs::write(
            &config,
            format!(
                "route:\n  receiver: hook\n  group_by: ['alertname']\n  group_wait: 100ms\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: hook\n    webhook_configs:\n      - url: 'http://{webhook}/am'\n        send_resolved: true\n"
            ),
        )
        .unwrap();
        let addr = format!("127.0.0.1:{}", free_port());
        let child = Command::new(bin)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.path={}", dir.join("am-data").display()))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--cluster.listen-address=")
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus-alertmanager");
        let am = Alertmanager {
            addr,
            proc: Proc(Some(child)),
        };
        let a = am.addr.clone();
        until("alertmanager to be ready", Duration::from_secs(30), || {
            let a = a.clone();
            async move {
                let (status, _) = request(&a, "GET", "/-/ready", b"").await?;
                (status == 200).then_some(())
            }
        })
        .await;
        am
    }

    /// `GET /api/v2/alerts`.
    pub async fn alerts(&self) -> Vec<Value> {
        let (status, body) = request(&self.addr, "GET", "/api/v2/alerts", b"")
            .await
            .expect("alertmanager answers");
        assert_eq!(status, 200);
        serde_json::from_slice::<Value>(&body)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }
}

/// A webhook receiver on a free loopback port: records each POST's path and
/// JSON body, answers 200.
pub struct Recorder {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    got: Arc<Mutex<Vec<(String, Value)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Recorder {
    /// Starts it.
    pub async fn start() -> Recorder {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let got = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn({
            let got = got.clone();
            async move {
                while let Ok((s, _)) = listener.accept().await {
                    let got = got.clone();
                    tokio::spawn(async move {
                        let _ = serve_one(s, &got).await;
                    });
                }
            }
        });
        Recorder { addr, got, task }
    }

    /// What was posted to `path` so far.
    pub fn posts(&self, path: &str) -> Vec<Value> {
        let got = self.got.lock().unwrap();
        got.iter()
            .filter(|(p, _)| p == path)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_one(
    s: tokio::net::TcpStream,
    got: &Mutex<Vec<(String, Value)>>,
) -> std::io::Result<()> {
    let mut r = BufReader::new(s);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
        let mut len = 0usize;
        loop {
            let mut h = String::new();
            r.read_line(&mut h).await?;
            if h.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                len = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; len];
        r.read_exact(&mut body).await?;
        got.lock()
            .unwrap()
            .push((path, serde_json::from_slice(&body).unwrap_or(Value::Null)));
        r.get_mut()
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            .await?;
    }
}
