//! The broker: its connection, bounded round trips, and the scripts' pipelines.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ErrorKind, RedisResult, Script, ServerErrorKind, Value};

use crate::config::RedisConfig;
use crate::error::BrokerError;
use crate::keys::Keys;
use crate::lease::Fence;
use crate::scripts::Scripts;
use crate::value::{lease_node, text};

/// One EVALSHA's keys and arguments.
pub(crate) type ScriptCall = (Vec<Vec<u8>>, Vec<Vec<u8>>);

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
