//! The broker: publishes, removes and reads topics in Redis.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ErrorKind, RedisResult, Script, ServerErrorKind, Value};
use wasmeter_core::change::TopicChange;

use crate::Positioned;
use crate::config::RedisConfig;
use crate::error::BrokerError;
use crate::keys::Keys;
use crate::lease::Fence;
use crate::scripts::Scripts;
use crate::value::{array, bytes, entry_seq, int, lease_node, text};
use crate::wire::{decode_body, encode_body, fresh_epoch};

/// One EVALSHA's keys and arguments.
pub(crate) type ScriptCall = (Vec<Vec<u8>>, Vec<Vec<u8>>);

/// A read of a topic's history.
#[derive(Debug, Clone)]
pub struct History {
    /// The topic's epoch.
    pub epoch: Arc<str>,
    /// The messages after the asked seq, oldest first, at most the asked limit.
    pub messages: Vec<Positioned>,
    /// True when nothing after the asked seq was trimmed away: `messages` starts
    /// right after it (or the asked seq is the newest). False when the asked seq is
    /// older than the oldest kept message, or not a seq of this epoch at all.
    pub complete: bool,
    /// The newest seq of the topic.
    pub head: u64,
}

/// Publishes to and reads from Redis. Cheap to clone: one multiplexed connection
/// (reconnected on demand) shared by every clone.
#[derive(Clone)]
pub struct RedisBroker {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) cfg: RedisConfig,
    pub(crate) keys: Keys,
    pub(crate) client: redis::Client,
    pub(crate) conn: ConnectionManager,
    pub(crate) scripts: Scripts,
}

impl std::fmt::Debug for RedisBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBroker")
            .field("prefix", &self.inner.cfg.key_prefix)
            .finish_non_exhaustive()
    }
}

impl RedisBroker {
    /// Checks the config and connects (bounded by `connect_timeout`), then PINGs.
    pub async fn connect(cfg: RedisConfig) -> Result<Self, BrokerError> {
        let broker = Self::lazy(cfg)?;
        broker.ping().await?;
        Ok(broker)
    }

    /// Checks the config and returns a broker that connects on first use: a host
    /// can start while Redis is down (every call fails `Unavailable` until it is up).
    pub fn lazy(cfg: RedisConfig) -> Result<Self, BrokerError> {
        cfg.validate()?;
        let client = redis::Client::open(cfg.url.as_str()).map_err(|e| BrokerError::Config {
            key: "broker.url".into(),
            reason: e.to_string(),
        })?;
        let mc = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(cfg.connect_timeout))
            .set_response_timeout(Some(cfg.command_timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200));
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), mc)
            .map_err(|e| BrokerError::unavailable("connect", e))?;
        Ok(Self {
            inner: Arc::new(Inner {
                keys: Keys::new(&cfg.key_prefix),
                cfg,
                client,
                conn,
                scripts: Scripts::new(),
            }),
        })
    }

    /// The config in use.
    pub fn config(&self) -> &RedisConfig {
        &self.inner.cfg
    }

    pub(crate) fn conn(&self) -> ConnectionManager {
        self.inner.conn.clone()
    }

    /// Runs one round trip, bounded by `command_timeout`.
    pub(crate) async fn bounded<T>(
        &self,
        what: &str,
        f: impl Future<Output = RedisResult<T>>,
    ) -> Result<T, BrokerError> {
        match tokio::time::timeout(self.inner.cfg.command_timeout, f).await {
            Err(_) => Err(BrokerError::unavailable(
                what,
                format!("no answer within {:?}", self.inner.cfg.command_timeout),
            )),
            Ok(Err(e)) => Err(BrokerError::unavailable(what, e)),
            Ok(Ok(v)) => Ok(v),
        }
    }

    /// Runs a pipeline of EVALSHAs of one script; on NOSCRIPT (Redis restarted or
    /// flushed its scripts) loads it and runs the pipeline again: no EVALSHA of the
    /// first run ran, they all failed alike.
    pub(crate) async fn eval_pipeline(
        &self,
        what: &str,
        script: &Script,
        calls: &[ScriptCall],
    ) -> Result<Vec<Value>, BrokerError> {
        let mut pipe = redis::pipe();
        for (keys, args) in calls {
            pipe.cmd("EVALSHA")
                .arg(script.get_hash())
                .arg(keys.len())
                .arg(keys)
                .arg(args);
        }
        let mut conn = self.conn();
        let first = tokio::time::timeout(
            self.inner.cfg.command_timeout,
            pipe.query_async::<Vec<Value>>(&mut conn),
        )
        .await;
        match first {
            Ok(Err(e)) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                self.bounded(what, script.load_async(&mut conn)).await?;
                self.bounded(what, pipe.query_async(&mut conn)).await
            }
            Ok(r) => r.map_err(|e| BrokerError::unavailable(what, e)),
            Err(_) => Err(BrokerError::unavailable(
                what,
                format!("no answer within {:?}", self.inner.cfg.command_timeout),
            )),
        }
    }

    /// Publishes the changes in one round trip, each atomically in Redis (see the
    /// crate docs). The outer error: the round trip failed (`Unavailable`: some
    /// changes may have been applied). Inner results, one per change in order:
    /// its position, or why it was refused (`Fenced`, `Refused`); a refused change
    /// does not stop the others.
    pub async fn publish(
        &self,
        fence: Option<&Fence>,
        changes: &[TopicChange],
    ) -> Result<Vec<Result<Positioned, BrokerError>>, BrokerError> {
        if changes.is_empty() {
            return Ok(Vec::new());
        }
        let k = &self.inner.keys;
        let cfg = &self.inner.cfg;
        let (lease, fence_value) = fence_args(k, fence);
        let ttl = cfg.topic_ttl.as_millis().to_string().into_bytes();
        let channel = k.channel().into_bytes();
        let calls: Vec<_> = changes
            .iter()
            .map(|c| {
                let (kind, maxlen) = if c.event {
                    ("e", cfg.stream_history_len)
                } else {
                    ("s", cfg.history_len)
                };
                let keys = vec![
                    k.meta(&c.topic).into_bytes(),
                    k.hist(&c.topic).into_bytes(),
                    lease.clone(),
                ];
                let args = vec![
                    fence_value.clone(),
                    fresh_epoch().into_bytes(),
                    kind.as_bytes().to_vec(),
                    encode_body(c),
                    maxlen.to_string().into_bytes(),
                    ttl.clone(),
                    channel.clone(),
                ];
                (keys, args)
            })
            .collect();
        let replies = self
            .eval_pipeline("publish", &self.inner.scripts.publish, &calls)
            .await?;
        if replies.len() != changes.len() {
            return Err(BrokerError::unavailable(
                "publish",
                format!("{} replies to {} changes", replies.len(), changes.len()),
            ));
        }
        Ok(changes
            .iter()
            .zip(replies)
            .map(|(c, r)| publish_reply(fence, c, &r))
            .collect())
    }

    /// Deletes the topic's keys and publishes its removal, fenced like `publish`.
    /// False: there was no such topic.
    pub async fn remove(&self, fence: Option<&Fence>, topic: &str) -> Result<bool, BrokerError> {
        let k = &self.inner.keys;
        let (lease, fence_value) = fence_args(k, fence);
        let call = (
            vec![
                k.meta(topic).into_bytes(),
                k.hist(topic).into_bytes(),
                lease,
            ],
            vec![
                fence_value,
                topic.as_bytes().to_vec(),
                k.channel().into_bytes(),
            ],
        );
        let r = self
            .eval_pipeline("remove", &self.inner.scripts.remove, &[call])
            .await?;
        let r = array(&r[0]).unwrap_or_default();
        match r.first().and_then(int) {
            Some(1) => Ok(true),
            Some(2) => Ok(false),
            _ => Err(fenced_error(fence, r)),
        }
    }

    /// The topic's epoch and up to `limit` messages after `after_seq`, oldest first
    /// (one atomic round trip). None: Redis holds no such topic.
    pub async fn history(
        &self,
        topic: &str,
        after_seq: u64,
        limit: usize,
    ) -> Result<Option<History>, BrokerError> {
        let k = &self.inner.keys;
        let (meta, hist) = (k.meta(topic), k.hist(topic));
        let mut pipe = redis::pipe();
        pipe.atomic();
        pipe.cmd("HMGET").arg(&meta).arg("epoch").arg("seq");
        pipe.cmd("XRANGE")
            .arg(&hist)
            .arg("-")
            .arg("+")
            .arg("COUNT")
            .arg(1);
        let after = after_seq.min(u64::MAX - 1);
        if limit > 0 {
            pipe.cmd("XRANGE")
                .arg(&hist)
                .arg(format!("({after}-0"))
                .arg("+")
                .arg("COUNT")
                .arg(limit);
        }
        let mut conn = self.conn();
        let r: Vec<Value> = self.bounded("history", pipe.query_async(&mut conn)).await?;
        let Some((epoch, head)) = r.first().and_then(parse_head) else {
            return Ok(None);
        };
        let oldest = r
            .get(1)
            .and_then(|v| parse_entries(&meta, &epoch, v).ok())
            .and_then(|e| e.first().map(|p| p.seq));
        let messages = match r.get(2) {
            Some(v) => parse_entries(&hist, &epoch, v)?,
            None => Vec::new(),
        };
        let complete =
            after_seq == head || (after_seq < head && oldest.is_some_and(|o| o <= after_seq + 1));
        Ok(Some(History {
            epoch,
            messages,
            complete,
            head,
        }))
    }

    /// The newest message of the topic (kept with its full state in the topic's
    /// hash). None: Redis holds no such topic.
    pub async fn latest(&self, topic: &str) -> Result<Option<Positioned>, BrokerError> {
        let meta = self.inner.keys.meta(topic);
        let mut cmd = redis::cmd("HMGET");
        cmd.arg(&meta).arg("epoch").arg("seq").arg("last");
        let mut conn = self.conn();
        let r: Vec<Value> = self.bounded("latest", cmd.query_async(&mut conn)).await?;
        let (Some(epoch), Some(seq), Some(body)) = (
            r.first().and_then(text),
            r.get(1).and_then(int),
            r.get(2).and_then(bytes),
        ) else {
            return Ok(None);
        };
        decode_body(epoch.into(), seq as u64, body)
            .map(Some)
            .map_err(|reason| BrokerError::Corrupt { key: meta, reason })
    }

    /// The epoch and newest seq of each topic (one pipelined round trip).
    pub async fn heads(
        &self,
        topics: &[Arc<str>],
    ) -> Result<Vec<Option<(Arc<str>, u64)>>, BrokerError> {
        if topics.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for t in topics {
            pipe.cmd("HMGET")
                .arg(self.inner.keys.meta(t))
                .arg("epoch")
                .arg("seq");
        }
        let mut conn = self.conn();
        let r: Vec<Value> = self.bounded("heads", pipe.query_async(&mut conn)).await?;
        Ok(r.iter().map(parse_head).collect())
    }

    /// Every topic Redis holds (SCAN in pages, each bounded; never KEYS).
    pub async fn topics(&self) -> Result<Vec<Arc<str>>, BrokerError> {
        let k = &self.inner.keys;
        let pattern = k.meta_pattern();
        let mut conn = self.conn();
        let mut cursor = 0u64;
        let mut found = BTreeSet::new();
        loop {
            let mut cmd = redis::cmd("SCAN");
            cmd.arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000);
            let (next, keys): (u64, Vec<String>) =
                self.bounded("scan", cmd.query_async(&mut conn)).await?;
            found.extend(
                keys.iter()
                    .filter_map(|key| k.topic_of_meta(key).map(Arc::from)),
            );
            if next == 0 {
                return Ok(found.into_iter().collect());
            }
            cursor = next;
        }
    }

    /// PING, bounded by `command_timeout`: for readiness checks.
    pub async fn ping(&self) -> Result<(), BrokerError> {
        let mut conn = self.conn();
        let pong: String = self
            .bounded("ping", redis::cmd("PING").query_async(&mut conn))
            .await?;
        if pong == "PONG" {
            Ok(())
        } else {
            Err(BrokerError::unavailable("ping", format!("answered {pong}")))
        }
    }
}

/// The lease key and the value it must hold (empty: unfenced).
pub(crate) fn fence_args(k: &Keys, fence: Option<&Fence>) -> (Vec<u8>, Vec<u8>) {
    match fence {
        Some(f) => (k.lease(&f.pipeline).into_bytes(), f.value().into_bytes()),
        None => (k.lease("").into_bytes(), Vec::new()),
    }
}

/// The `Fenced` error of a script's `{0, 'fenced', holder}` reply.
pub(crate) fn fenced_error(fence: Option<&Fence>, r: &[Value]) -> BrokerError {
    BrokerError::Fenced {
        pipeline: fence.map(|f| f.pipeline.clone()).unwrap_or_default(),
        holder: r.get(2).and_then(text).and_then(lease_node),
    }
}

fn publish_reply(
    fence: Option<&Fence>,
    c: &TopicChange,
    r: &Value,
) -> Result<Positioned, BrokerError> {
    let r = array(r).unwrap_or_default();
    if r.first().and_then(int) == Some(1) {
        let (Some(epoch), Some(seq)) = (r.get(1).and_then(text), r.get(2).and_then(int)) else {
            return Err(BrokerError::unavailable(
                "publish",
                "malformed script reply",
            ));
        };
        let seq = seq as u64;
        return Ok(Positioned {
            epoch: epoch.into(),
            prev_seq: seq - 1,
            seq,
            change: c.clone(),
        });
    }
    match r.get(1).and_then(text) {
        Some("refused") => {
            let kind = match r.get(2).and_then(text) {
                Some("e") => "a stream (event) topic",
                _ => "a state topic",
            };
            let got = if c.event {
                "an event"
            } else {
                "a state change"
            };
            Err(BrokerError::Refused {
                topic: c.topic.to_string(),
                reason: format!("{got} to {kind} (a topic's kind is fixed when it is created)"),
            })
        }
        _ => Err(fenced_error(fence, r)),
    }
}

/// `HMGET meta epoch seq` → the head.
fn parse_head(v: &Value) -> Option<(Arc<str>, u64)> {
    let a = array(v)?;
    Some((
        a.first().and_then(text)?.into(),
        a.get(1).and_then(int)? as u64,
    ))
}

/// An XRANGE reply → messages.
fn parse_entries(key: &str, epoch: &Arc<str>, v: &Value) -> Result<Vec<Positioned>, BrokerError> {
    let corrupt = |reason: String| BrokerError::Corrupt {
        key: key.to_owned(),
        reason,
    };
    let entries = array(v).ok_or_else(|| corrupt("XRANGE reply is not an array".into()))?;
    entries
        .iter()
        .map(|e| {
            let e = array(e).ok_or_else(|| corrupt("entry is not an array".into()))?;
            let seq = e
                .first()
                .and_then(text)
                .and_then(entry_seq)
                .ok_or_else(|| corrupt("entry id is not <seq>-0".into()))?;
            let body = e
                .get(1)
                .and_then(array)
                .and_then(|f| f.get(1))
                .and_then(bytes)
                .ok_or_else(|| corrupt(format!("entry {seq} has no body")))?;
            decode_body(epoch.clone(), seq, body).map_err(|r| corrupt(format!("entry {seq}: {r}")))
        })
        .collect()
}
