//! The parts of `[broker] type = "redis"` that `serve` starts and stops: the
//! writer that publishes, the follower that keeps this host's hub in step, and
//! what `/readyz` and `/metrics` say about them.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use wasmeter_control::Supervisor;
use wasmeter_hub::Hub;
use wasmeter_pipeline::TopicOwners;
use wasmeter_redis::{Follower, FollowerStatus, RedisBroker, RedisConfig};
use wasmeter_server::DependencyCheck;

use super::producer::Producer;
use super::redis::{RedisTopics, WriterStats};
use crate::config::Config;

/// This host's part of a group of hosts sharing topics through Redis.
pub struct Cluster {
    /// The pipelines' broker.
    pub topics: RedisTopics,
    follower: Arc<Follower>,
    writer: Arc<Mutex<WriterStats>>,
    tasks: TaskTracker,
    stop: CancellationToken,
    node: String,
    lease_ttl: Duration,
}

/// What `/metrics` shows of the Redis broker.
#[derive(Clone)]
pub struct BrokerView {
    follower: Arc<Follower>,
    writer: Arc<Mutex<WriterStats>>,
    topics: RedisTopics,
}

impl BrokerView {
    /// The follower's state and counters.
    pub fn follower(&self) -> FollowerStatus {
        self.follower.status()
    }

    /// The writer's counters.
    pub fn writer(&self) -> WriterStats {
        *self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Leases this host holds.
    pub fn leases(&self) -> usize {
        self.topics.held().len()
    }
}

impl Cluster {
    /// Starts the writer and the follower. Redis need not be up: both retry
    /// until it is, and meanwhile `/readyz` says so. `port`: the server's, which
    /// names this host in leases unless `broker.node` does.
    pub fn start(
        config: &Config,
        hub: Arc<Hub>,
        owners: TopicOwners,
        port: u16,
    ) -> anyhow::Result<Self> {
        let section = &config.broker;
        let url = section.url.clone().unwrap_or_default();
        let redis_config = RedisConfig {
            url,
            key_prefix: section.key_prefix.clone(),
            connect_timeout: Duration::from_millis(section.connect_timeout_ms),
            command_timeout: Duration::from_millis(section.command_timeout_ms),
            history_len: config.server.history_per_topic.max(1),
            stream_history_len: config.server.stream_history.max(1),
            topic_ttl: Duration::from_secs(section.topic_ttl_secs),
            check_interval: Duration::from_millis(section.check_interval_ms),
            ..RedisConfig::default()
        };
        let redis = RedisBroker::lazy(redis_config)
            .with_context(|| format!("{}: broker", config.origin))?;
        let (tasks, stop) = (TaskTracker::new(), CancellationToken::new());
        let (topics, writer) =
            RedisTopics::start(redis.clone(), hub.clone(), owners, &tasks, stop.clone());
        let replica = Arc::new(super::HubReplica(hub));
        let follower = Arc::new(Follower::start(redis, replica, stop.clone()));
        let node = section
            .node
            .clone()
            .unwrap_or_else(|| format!("{}:{port}", host_name()));
        tracing::info!(%node, url = %section.url.as_deref().unwrap_or(""), prefix = %section.key_prefix, "topics are shared through Redis");
        Ok(Self {
            topics,
            follower,
            writer,
            tasks,
            stop,
            node,
            lease_ttl: section.lease_ttl(),
        })
    }

    /// What `/metrics` shows.
    pub fn view(&self) -> BrokerView {
        BrokerView {
            follower: self.follower.clone(),
            writer: self.writer.clone(),
            topics: self.topics.clone(),
        }
    }

    /// `/readyz` fails while this host does not follow Redis.
    pub fn dependency_check(&self) -> DependencyCheck {
        let follower = self.follower.clone();
        DependencyCheck(Arc::new(move || {
            let status = follower.status();
            match status.connected {
                true => Ok(()),
                false => Err(status
                    .last_error
                    .unwrap_or_else(|| "connecting to redis".into())),
            }
        }))
    }

    /// The lease keeper for `supervisor`'s pipelines.
    pub fn producer(&self, supervisor: Supervisor) -> Producer {
        Producer::new(
            self.topics.clone(),
            supervisor,
            self.node.clone(),
            self.lease_ttl,
            self.follower.clone(),
        )
    }

    /// Stops the writer and the follower (after the pipelines stopped: their
    /// last changes and checkpoints go through the writer).
    pub async fn close(self, within: Duration) {
        self.stop.cancel();
        self.tasks.close();
        if tokio::time::timeout(within, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("the Redis writer did not stop in time");
        }
        match Arc::try_unwrap(self.follower) {
            Ok(follower) => {
                if tokio::time::timeout(within, follower.stopped())
                    .await
                    .is_err()
                {
                    tracing::warn!("the Redis follower did not stop in time");
                }
            }
            // A view still held (the server's router): the task stops with the
            // token, and its handle aborts it when the last view goes.
            Err(_) => tracing::debug!("the Redis follower stops with its token"),
        }
    }
}

/// The machine's host name (for lease holder names), or `localhost`.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}
