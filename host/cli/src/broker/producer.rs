//! One producer per pipeline across hosts: this host runs a pipeline only while
//! it holds the pipeline's lease in Redis.
//!
//! Every third of the lease's TTL the host renews the leases it holds and tries
//! to take those nobody holds. A lease taken: the pipeline starts from the
//! checkpoint its last producer kept in Redis (else this host's own file). A
//! lease lost (it expired while this host could not renew it, and another took
//! it): the pipeline stops; Redis already refuses its changes (fencing), so it
//! ends at its next flush. Records processed after the last kept checkpoint are
//! processed again by the next producer: the at-least-once window is one
//! checkpoint interval.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use wasmeter_control::Supervisor;
use wasmeter_redis::{BrokerError, Fence, Follower};

use super::redis::RedisTopics;

/// Keeps this host's leases until `stop`, then releases them (after the caller
/// stopped the pipelines: their final checkpoints need the leases).
pub struct Producer {
    topics: RedisTopics,
    supervisor: Supervisor,
    node: String,
    ttl: Duration,
    /// No lease is taken before this host's hub follows Redis: a pipeline's
    /// deltas are computed against the states subscribers hold.
    follower: Arc<Follower>,
}

impl Producer {
    /// A producer for `node` with leases of `ttl`.
    pub fn new(
        topics: RedisTopics,
        supervisor: Supervisor,
        node: String,
        ttl: Duration,
        follower: Arc<Follower>,
    ) -> Self {
        Self {
            topics,
            supervisor,
            node,
            ttl,
            follower,
        }
    }

    /// Renews and takes leases every third of the TTL until `stop`.
    pub async fn run(&self, stop: CancellationToken) {
        let mut every = tokio::time::interval(self.ttl / 3);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = every.tick() => {}
            }
            let Ok(names) = self.supervisor.pipeline_names().await else {
                continue; // a change in progress: next round
            };
            for name in &names {
                if stop.is_cancelled() {
                    return;
                }
                match self.topics.fence(name) {
                    Some(fence) => self.renew(fence).await,
                    None => self.take(name).await,
                }
            }
            // Pipelines a reload removed: give their leases back.
            let held: Vec<String> = self.topics.held().into_keys().collect();
            for name in held.iter().filter(|n| !names.contains(n)) {
                self.give_back(name).await;
            }
        }
    }

    async fn renew(&self, fence: Fence) {
        match self.topics.redis().renew(&fence, self.ttl).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(pipeline = %fence.pipeline, token = fence.token, "lease lost: another host produces the pipeline now");
                self.topics.release(&fence.pipeline);
                if let Err(error) = self.supervisor.deactivate(&fence.pipeline).await {
                    tracing::error!(pipeline = %fence.pipeline, %error, "cannot stop the pipeline");
                }
            }
            // Unreachable: the pipeline's changes wait too (nothing is
            // published without the lease); renewed when Redis returns, or
            // found lost then.
            Err(error) => {
                tracing::debug!(pipeline = %fence.pipeline, %error, "lease not renewed")
            }
        }
    }

    async fn take(&self, name: &str) {
        if !self.follower.status().connected {
            return;
        }
        let fence = match self
            .topics
            .redis()
            .acquire(name, &self.node, self.ttl)
            .await
        {
            Ok(Some(fence)) => fence,
            Ok(None) => return,
            Err(error) => {
                tracing::debug!(pipeline = %name, %error, "lease not taken");
                return;
            }
        };
        let checkpoint = match self.topics.redis().load_checkpoint(name).await {
            Ok(bytes) => bytes,
            Err(error) => {
                tracing::warn!(pipeline = %name, %error, "cannot read the pipeline's checkpoint from Redis; lease given back");
                let _ = self.topics.redis().release(&fence).await;
                return;
            }
        };
        tracing::info!(pipeline = %name, token = fence.token, node = %self.node, from_redis = checkpoint.is_some(), "lease taken: this host produces the pipeline");
        self.topics.hold(fence.clone());
        if let Err(error) = self.supervisor.activate(name, checkpoint).await {
            tracing::error!(pipeline = %name, %error, "cannot start the pipeline; lease given back");
            self.topics.release(name);
            let _ = self.topics.redis().release(&fence).await;
        }
    }

    async fn give_back(&self, name: &str) {
        if let Some(fence) = self.topics.release(name)
            && let Err(error) = self.topics.redis().release(&fence).await
        {
            log_release(&fence, &error);
        }
    }

    /// Gives every lease back (at shutdown, after the pipelines stopped), so
    /// another host takes over at once instead of after the TTL.
    pub async fn release_all(&self) {
        for (_, fence) in self.topics.held() {
            self.topics.release(&fence.pipeline);
            if let Err(error) = self.topics.redis().release(&fence).await {
                log_release(&fence, &error);
            }
        }
    }
}

fn log_release(fence: &Fence, error: &BrokerError) {
    tracing::warn!(pipeline = %fence.pipeline, %error, "lease not given back; it expires by itself");
}
