//! The follower: the change channel into a replica, reconnecting by itself.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::broker::RedisBroker;
use crate::error::BrokerError;
use crate::replica::Replica;
use crate::status::{FollowerStatus, StatusCell};
use crate::sync::{Check, Syncer};
use crate::wire::decode_frame;

/// First reconnect delay; doubles per failed attempt up to `reconnect_max`.
const BACKOFF_MIN: Duration = Duration::from_millis(50);

/// Every this many position checks, the check covers every topic Redis holds
/// (a SCAN), not only those this node holds.
const FULL_CHECK_EVERY: u64 = 10;

/// Follows the change channel into a replica. Owns its task: cancel the token
/// given to [`Follower::start`] (or drop the follower) and await
/// [`Follower::stopped`].
#[derive(Debug)]
pub struct Follower {
    task: Option<JoinHandle<()>>,
    stop: CancellationToken,
    status: Arc<StatusCell>,
}

impl Follower {
    /// Starts following on the current runtime: subscribes, hydrates the replica,
    /// then applies every change, reconnecting with backoff when Redis is lost.
    pub fn start(
        broker: RedisBroker,
        replica: Arc<dyn Replica>,
        stop: CancellationToken,
    ) -> Follower {
        let stop = stop.child_token();
        let status = Arc::new(StatusCell::new());
        let syncer = Syncer {
            broker,
            replica,
            status: status.clone(),
            suspects: Default::default(),
        };
        let task = tokio::spawn(run(syncer, stop.clone()));
        Follower {
            task: Some(task),
            stop,
            status,
        }
    }

    /// Stops (if not already asked to) and waits for the task to end.
    pub async fn stopped(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// The follower's state and counters now.
    pub fn status(&self) -> FollowerStatus {
        self.status.get()
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn run(syncer: Syncer, stop: CancellationToken) {
    let max = syncer.broker.config().reconnect_max;
    let mut delay = BACKOFF_MIN;
    loop {
        let was_connected;
        match session(&syncer, &stop).await {
            Ok(()) => return,
            Err(e) => {
                was_connected = syncer.status.get().connected;
                if was_connected {
                    tracing::warn!(error = %e, "redis follower lost its connection; reconnecting");
                } else {
                    tracing::debug!(error = %e, "redis follower could not connect");
                }
                syncer.status.set_connected(false, Some(e.to_string()));
            }
        }
        if was_connected {
            delay = BACKOFF_MIN;
        }
        // Full jitter over the upper half: nodes do not reconnect in step.
        let wait = delay / 2 + delay.mul_f64(fastrand::f64() / 2.0);
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        delay = (delay * 2).min(max);
        syncer.status.update(|s| s.reconnects += 1);
    }
}

/// One connection's life: Ok when stopped, Err when the connection is lost.
async fn session(syncer: &Syncer, stop: &CancellationToken) -> Result<(), BrokerError> {
    let cfg = syncer.broker.config();
    let client = syncer.broker.inner.client.clone();
    let mut pubsub = tokio::select! {
        _ = stop.cancelled() => return Ok(()),
        r = tokio::time::timeout(cfg.connect_timeout, client.get_async_pubsub()) => r
            .map_err(|_| BrokerError::unavailable("subscribe", "connect timed out"))?
            .map_err(|e| BrokerError::unavailable("subscribe", e))?,
    };
    let channel = syncer.broker.inner.keys.channel();
    tokio::time::timeout(cfg.command_timeout, pubsub.subscribe(&channel))
        .await
        .map_err(|_| BrokerError::unavailable("subscribe", "SUBSCRIBE timed out"))?
        .map_err(|e| BrokerError::unavailable("subscribe", e))?;

    let (tx, rx) = mpsc::channel(cfg.follower_buffer);
    let lost = Arc::new(AtomicBool::new(false));
    let reader_stop = stop.child_token();
    let reader = tokio::spawn(read(
        pubsub.into_on_message(),
        tx,
        lost.clone(),
        syncer.status.clone(),
        reader_stop.clone(),
    ));
    let result = apply_loop(syncer, stop, rx, &lost).await;
    reader_stop.cancel();
    let _ = reader.await;
    result
}

/// Moves frames from the connection into the bounded buffer, never waiting on it.
async fn read(
    mut messages: redis::aio::PubSubStream,
    tx: mpsc::Sender<Vec<u8>>,
    lost: Arc<AtomicBool>,
    status: Arc<StatusCell>,
    stop: CancellationToken,
) {
    loop {
        let msg = tokio::select! {
            _ = stop.cancelled() => return,
            m = messages.next() => match m {
                Some(m) => m,
                None => return, // connection closed: dropping `tx` tells the applier
            },
        };
        match tx.try_send(msg.get_payload_bytes().to_vec()) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                lost.store(true, Ordering::Release);
                status.update(|s| s.overflows += 1);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return,
        }
    }
}

async fn apply_loop(
    syncer: &Syncer,
    stop: &CancellationToken,
    mut rx: mpsc::Receiver<Vec<u8>>,
    lost: &AtomicBool,
) -> Result<(), BrokerError> {
    // Subscribed first: whatever is published while hydrating waits in `rx`.
    tokio::select! {
        _ = stop.cancelled() => return Ok(()),
        r = syncer.check_all(Check::Hydrate) => r?,
    }
    syncer.status.set_connected(true, None);
    tracing::info!("redis follower subscribed and in step");
    let period = syncer.broker.config().check_interval;
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ticks = 0u64;
    loop {
        tokio::select! {
            biased;
            _ = stop.cancelled() => return Ok(()),
            frame = rx.recv() => match frame {
                None => return Err(BrokerError::unavailable("subscribe", "PUB/SUB connection closed")),
                Some(bytes) => match decode_frame(&bytes) {
                    Ok(frame) => syncer.on_frame(frame).await,
                    Err(e) => syncer.status.error(format!("unreadable frame: {e}")),
                },
            },
            _ = tick.tick() => {
                ticks += 1;
                if ticks.is_multiple_of(FULL_CHECK_EVERY) {
                    // Also the topics this node has never heard of: a new topic
                    // whose only message was lost has no other way to show up.
                    syncer.check_all(Check::Periodic).await?;
                } else {
                    let topics = syncer.replica.topics();
                    syncer.check(&topics, Check::Periodic).await?;
                }
            }
        }
        if lost.swap(false, Ordering::AcqRel) {
            syncer.check_all(Check::Hydrate).await?;
        }
    }
}
