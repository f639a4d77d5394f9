//! A real `redis-server` per test, a replica that records what it is told, and helpers.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wasmeter_core::change::TopicChange;
use wasmeter_core::delta::Delta;
use wasmeter_core::field::{FieldValue, TopicState};
use wasmeter_redis::{Positioned, RedisBroker, RedisConfig, Replica};

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// The redis-server binary: `REDIS_SERVER`, else `redis-server` on the PATH.
/// Missing: under CI the test fails naming it, else it is skipped with a reason.
pub fn redis_server_binary() -> Option<PathBuf> {
    let name = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
    let found = Command::new(&name)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if found {
        return Some(PathBuf::from(name));
    }
    assert!(
        !in_ci(),
        "`{name}` is missing: the Redis tests cannot run in CI (scripts/test.sh installs the Debian package redis-server)"
    );
    eprintln!(
        "skipping: `{name}` is missing (scripts/test.sh installs the Debian package redis-server)"
    );
    None
}

/// A `redis-server` on a free loopback port with its own directory; killed on drop.
pub struct RedisServer {
    bin: PathBuf,
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts one, or None when the binary is missing outside CI.
    pub fn start() -> Option<Self> {
        let bin = redis_server_binary()?;
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut s = Self {
            bin,
            port,
            dir: tempfile::tempdir().unwrap(),
            child: None,
        };
        s.spawn();
        Some(s)
    }

    fn spawn(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("redis.log")).unwrap();
        let child = Command::new(&self.bin)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not listen on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL, and wait until it is gone.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port, empty.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// A config with short bounds for tests.
    pub fn config(&self) -> RedisConfig {
        RedisConfig {
            url: self.url(),
            key_prefix: "t:".into(),
            connect_timeout: Duration::from_millis(500),
            command_timeout: Duration::from_millis(500),
            history_len: 100,
            stream_history_len: 100,
            topic_ttl: Duration::from_secs(60),
            check_interval: Duration::from_secs(60),
            reconnect_max: Duration::from_millis(200),
            follower_buffer: 1024,
        }
    }

    /// A raw connection for the test's own commands (CLIENT KILL, inspecting keys).
    pub fn raw(&self) -> redis::Client {
        redis::Client::open(self.url()).unwrap()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One topic as the replica holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Held {
    pub epoch: Arc<str>,
    pub seq: u64,
    pub state: TopicState,
    /// Every seq applied in the current epoch, in order.
    pub seqs: Vec<u64>,
}

/// A replica in a Mutex<BTreeMap>: checks what it is told like the hub would.
#[derive(Default)]
pub struct TestReplica {
    pub topics: Mutex<BTreeMap<Arc<str>, Held>>,
    /// Every (topic, seq) applied with `continuous = false`.
    pub resets: Mutex<Vec<(Arc<str>, u64)>>,
    /// Messages applied as continuous that did not follow the local newest: bugs.
    pub violations: Mutex<Vec<String>>,
}

impl TestReplica {
    pub fn snapshot(&self) -> BTreeMap<Arc<str>, (Arc<str>, u64, TopicState)> {
        self.topics
            .lock()
            .unwrap()
            .iter()
            .map(|(t, h)| (t.clone(), (h.epoch.clone(), h.seq, h.state.clone())))
            .collect()
    }

    pub fn resets(&self) -> usize {
        self.resets.lock().unwrap().len()
    }

    pub fn violations(&self) -> Vec<String> {
        self.violations.lock().unwrap().clone()
    }
}

impl Replica for TestReplica {
    fn head(&self, topic: &str) -> Option<(Arc<str>, u64)> {
        self.topics
            .lock()
            .unwrap()
            .get(topic)
            .map(|h| (h.epoch.clone(), h.seq))
    }

    fn apply(&self, msg: Positioned, continuous: bool) {
        let mut topics = self.topics.lock().unwrap();
        let topic = msg.change.topic.clone();
        if continuous {
            if let Some(h) = topics.get_mut(&topic) {
                if h.epoch != msg.epoch || msg.seq != h.seq + 1 {
                    self.violations.lock().unwrap().push(format!(
                        "{topic}: continuous {}/{} after {}/{}",
                        msg.epoch, msg.seq, h.epoch, h.seq
                    ));
                }
                // The delta applied to the local state must give the sent state.
                let mut state = h.state.clone();
                msg.change.delta.apply_to(&mut state);
                if !msg.change.event && state != *msg.change.state {
                    self.violations
                        .lock()
                        .unwrap()
                        .push(format!("{topic}: delta {} gives a wrong state", msg.seq));
                }
                h.seq = msg.seq;
                h.seqs.push(msg.seq);
                h.state = (*msg.change.state).clone();
                return;
            }
        } else {
            self.resets.lock().unwrap().push((topic.clone(), msg.seq));
        }
        topics.insert(
            topic,
            Held {
                epoch: msg.epoch,
                seq: msg.seq,
                state: (*msg.change.state).clone(),
                seqs: vec![msg.seq],
            },
        );
    }

    fn remove(&self, topic: &str) {
        self.topics.lock().unwrap().remove(topic);
    }

    fn topics(&self) -> Vec<Arc<str>> {
        self.topics.lock().unwrap().keys().cloned().collect()
    }
}

/// A producer of state changes: keeps each topic's state, as the pipeline would.
#[derive(Default)]
pub struct Producer {
    states: BTreeMap<String, TopicState>,
}

impl Producer {
    /// The change setting `field = value` on `topic`.
    pub fn set(&mut self, topic: &str, field: &str, value: f64) -> TopicChange {
        let state = self.states.entry(topic.into()).or_default();
        state.insert(field.into(), FieldValue::Number(value));
        TopicChange {
            topic: topic.into(),
            delta: Delta {
                changed: vec![(field.into(), FieldValue::Number(value))],
                removed: vec![],
            },
            stale: vec![],
            state: Arc::new(state.clone()),
            timestamp_ms: 1,
            event: false,
        }
    }

    pub fn state(&self, topic: &str) -> TopicState {
        self.states.get(topic).cloned().unwrap_or_default()
    }
}

/// An event for a stream topic.
pub fn event(topic: &str, n: f64) -> TopicChange {
    let mut state = TopicState::new();
    state.insert("n".into(), FieldValue::Number(n));
    TopicChange {
        topic: topic.into(),
        delta: Delta {
            changed: vec![("n".into(), FieldValue::Number(n))],
            removed: vec![],
        },
        stale: vec![],
        state: Arc::new(state),
        timestamp_ms: 1,
        event: true,
    }
}

/// Polls `cond` until it holds or `within` passes; panics with `what` then.
/// A follower of `broker` into a new test replica, once it is connected, and
/// the token that stops it.
pub async fn follow(
    broker: &RedisBroker,
) -> (
    Arc<TestReplica>,
    wasmeter_redis::Follower,
    tokio_util::sync::CancellationToken,
) {
    let replica = Arc::new(TestReplica::default());
    let stop = tokio_util::sync::CancellationToken::new();
    let follower = wasmeter_redis::Follower::start(broker.clone(), replica.clone(), stop.clone());
    eventually("connected", Duration::from_secs(5), || {
        follower.status().connected
    })
    .await;
    (replica, follower, stop)
}

pub async fn eventually(what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// True when the replica holds exactly Redis's topics at Redis's positions, with
/// the producer's states.
pub async fn in_step(broker: &RedisBroker, replica: &TestReplica, producer: &Producer) -> bool {
    let topics = broker.topics().await.unwrap();
    let heads = broker.heads(&topics).await.unwrap();
    let held = replica.snapshot();
    held.len() == topics.len()
        && topics.iter().zip(heads).all(|(t, h)| {
            let (e, s) = h.unwrap();
            held.get(t) == Some(&(e, s, producer.state(t)))
        })
}

pub async fn wait_in_step(broker: &RedisBroker, replica: &TestReplica, producer: &Producer) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !in_step(broker, replica, producer).await {
        assert!(
            Instant::now() < deadline,
            "replica never caught up: {:?}",
            replica.snapshot()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
