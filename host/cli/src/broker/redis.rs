//! `[broker] type = "redis"`: the pipelines' changes go to Redis, which gives
//! them their positions and hands them to every host (this one included: its
//! hub follows Redis like any other host's, see `replica.rs`).
//!
//! Publishing is a queue drained by one writer task: [`Broker::publish`] only
//! appends (a pipeline never waits on the network per change), the writer sends
//! the queue in pipelined batches, and [`Broker::flush`] waits until everything
//! queued before it was taken. The queue holds at most what the pipelines
//! publish between two flushes (each flushes after every chunk), plus the
//! host's own notices and stale sweeps.
//!
//! Each pipeline publishes through its own handle ([`Broker::for_pipeline`])
//! carrying the fence of its lease, taken when it started: once another host
//! holds the lease, Redis refuses those changes and the pipeline ends. The
//! host's own changes (stale sweeps, evictions) to a pipeline's topics go out
//! under that pipeline's current fence, and not at all when this host does not
//! produce it.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use wasmeter_core::change::TopicChange;
use wasmeter_core::saved::{SavedTopic, TakenTopic};
use wasmeter_hub::Hub;
use wasmeter_pipeline::{Broker, FlushError, Refused, TopicOwners};
use wasmeter_redis::{BrokerError, Fence, RedisBroker};

/// Most changes sent in one round trip.
const BATCH: usize = 512;
/// The first and the longest wait before the writer tries an unreachable Redis again.
const RETRY: (Duration, Duration) = (Duration::from_millis(50), Duration::from_secs(2));

/// The topics' broker when several hosts share them through Redis. Cheap to clone.
#[derive(Clone)]
pub struct RedisTopics {
    outbox: Arc<Outbox>,
}

struct Outbox {
    redis: RedisBroker,
    hub: Arc<Hub>,
    owners: TopicOwners,
    queue: Mutex<Queue>,
    wake: Notify,
    progress: watch::Sender<Progress>,
    /// The lease this host holds on each pipeline it produces.
    fences: Mutex<HashMap<String, Fence>>,
    /// Longest wait of a flush.
    flush_timeout: Duration,
}

#[derive(Default)]
struct Queue {
    entries: VecDeque<Entry>,
    next_id: u64,
}

struct Entry {
    id: u64,
    /// The lease it is published under; `None`: the host's own change, fenced
    /// when it is sent by whoever produces its topic.
    fence: Option<Fence>,
    op: Op,
}

enum Op {
    Publish(TopicChange),
    Remove(Arc<str>),
}

/// What the writer has done.
#[derive(Debug, Clone, Default)]
struct Progress {
    /// Every entry up to this id was sent (or refused).
    taken: u64,
    /// Set while Redis cannot be reached: why.
    unavailable: Option<String>,
    /// Leases Redis refused changes under: (pipeline, fencing number).
    fenced: BTreeSet<(String, u64)>,
}

/// Counters of the writer, for `/metrics`.
#[derive(Debug, Clone, Copy, Default)]
pub struct WriterStats {
    /// Changes Redis took.
    pub published: u64,
    /// Changes Redis refused (a kind mismatch).
    pub refused: u64,
    /// Changes refused because their lease had passed to another host.
    pub fenced: u64,
    /// Round trips that failed because Redis was unreachable (each retried).
    pub failed_round_trips: u64,
    /// Changes waiting to be sent.
    pub queued: u64,
}

impl RedisTopics {
    /// The broker, and its writer task on `tasks` (it ends when `stop` is cancelled).
    pub fn start(
        redis: RedisBroker,
        hub: Arc<Hub>,
        owners: TopicOwners,
        tasks: &TaskTracker,
        stop: CancellationToken,
    ) -> (Self, Arc<Mutex<WriterStats>>) {
        let flush_timeout = redis.config().command_timeout * 4;
        let outbox = Arc::new(Outbox {
            redis,
            hub,
            owners,
            queue: Mutex::default(),
            wake: Notify::new(),
            progress: watch::channel(Progress::default()).0,
            fences: Mutex::default(),
            flush_timeout,
        });
        let stats = Arc::new(Mutex::new(WriterStats::default()));
        tasks.spawn(write(outbox.clone(), stats.clone(), stop));
        (Self { outbox }, stats)
    }

    /// Records the lease this host now holds on `pipeline` (before it starts it).
    pub fn hold(&self, fence: Fence) {
        lock(&self.outbox.fences).insert(fence.pipeline.clone(), fence);
    }

    /// Forgets the lease on `pipeline` (lost or released).
    pub fn release(&self, pipeline: &str) -> Option<Fence> {
        lock(&self.outbox.fences).remove(pipeline)
    }

    /// The lease held on `pipeline`.
    pub fn fence(&self, pipeline: &str) -> Option<Fence> {
        lock(&self.outbox.fences).get(pipeline).cloned()
    }

    /// Every lease held, by pipeline.
    pub fn held(&self) -> std::collections::BTreeMap<String, Fence> {
        lock(&self.outbox.fences)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The Redis client.
    pub fn redis(&self) -> &RedisBroker {
        &self.outbox.redis
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Outbox {
    fn push(&self, fence: Option<Fence>, op: Op) {
        let mut q = lock(&self.queue);
        q.next_id += 1;
        let id = q.next_id;
        q.entries.push_back(Entry { id, fence, op });
        drop(q);
        self.wake.notify_one();
    }

    /// Waits until every entry queued so far was taken.
    async fn flush(&self, fence: Option<&Fence>) -> Result<(), FlushError> {
        let target = lock(&self.queue).next_id;
        let mut progress = self.progress.subscribe();
        let wait = async {
            loop {
                {
                    let p = progress.borrow_and_update();
                    if let Some(f) = fence
                        && p.fenced.contains(&(f.pipeline.clone(), f.token))
                    {
                        return Err(FlushError::Fenced(f.pipeline.clone()));
                    }
                    if p.taken >= target {
                        return Ok(());
                    }
                    if let Some(reason) = &p.unavailable {
                        return Err(FlushError::Unavailable(reason.clone()));
                    }
                }
                if progress.changed().await.is_err() {
                    return Err(FlushError::Unavailable("the Redis writer stopped".into()));
                }
            }
        };
        tokio::time::timeout(self.flush_timeout, wait)
            .await
            .unwrap_or_else(|_| {
                Err(FlushError::Unavailable(format!(
                    "Redis did not take the changes within {:?}",
                    self.flush_timeout
                )))
            })
    }

    /// The fence a host change to `topic` goes out under: the lease this host
    /// holds on the pipeline that owns it (any shard of it); `Some(None)`: a
    /// topic no pipeline owns (host notices), sent unfenced; `None`: produced
    /// by another host, not sent.
    fn fence_for(&self, topic: &str) -> Option<Option<Fence>> {
        let Some(owner) = self.owners.owner_of(topic) else {
            return Some(None);
        };
        let fences = lock(&self.fences);
        let shard = format!("{owner}#");
        fences
            .iter()
            .find(|(name, _)| **name == owner || name.starts_with(&shard))
            .map(|(_, f)| Some(f.clone()))
    }
}

/// Sends the queue to Redis in batches until `stop`.
async fn write(outbox: Arc<Outbox>, stats: Arc<Mutex<WriterStats>>, stop: CancellationToken) {
    let mut retry = RETRY.0;
    loop {
        let batch: Vec<Entry> = {
            let mut q = lock(&outbox.queue);
            let n = q.entries.len().min(BATCH);
            lock(&stats).queued = q.entries.len() as u64;
            q.entries.drain(..n).collect()
        };
        if batch.is_empty() {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = outbox.wake.notified() => continue,
            }
        }
        let last = batch.last().map_or(0, |e| e.id);
        match send(&outbox, &stats, batch).await {
            Ok(()) => {
                retry = RETRY.0;
                outbox.progress.send_modify(|p| {
                    p.taken = last;
                    p.unavailable = None;
                });
            }
            Err((unsent, error)) => {
                lock(&stats).failed_round_trips += 1;
                {
                    let mut q = lock(&outbox.queue);
                    for e in unsent.into_iter().rev() {
                        q.entries.push_front(e);
                    }
                }
                outbox.progress.send_modify(|p| {
                    if p.unavailable.is_none() {
                        tracing::warn!(%error, "Redis cannot be reached; the pipelines' changes wait");
                    }
                    p.unavailable = Some(error.to_string());
                });
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(retry) => {}
                }
                retry = (retry * 2).min(RETRY.1);
            }
        }
    }
}

/// Sends one batch: consecutive publishes under the same fence in one round
/// trip, removals one by one. On an unreachable Redis, gives back what was not
/// sent (in order) with the error.
async fn send(
    outbox: &Outbox,
    stats: &Mutex<WriterStats>,
    batch: Vec<Entry>,
) -> Result<(), (Vec<Entry>, BrokerError)> {
    let mut rest: VecDeque<Entry> = batch.into();
    while let Some(first) = rest.pop_front() {
        let fence = match &first.fence {
            Some(f) => Some(f.clone()),
            None => {
                let topic = match &first.op {
                    Op::Publish(c) => &c.topic,
                    Op::Remove(t) => t,
                };
                match outbox.fence_for(topic) {
                    Some(f) => f,
                    // Another host produces it: not this host's to send.
                    None => continue,
                }
            }
        };
        if let Op::Remove(topic) = &first.op {
            let topic = topic.clone();
            match outbox.redis.remove(fence.as_ref(), &topic).await {
                Ok(_) => {}
                Err(error @ BrokerError::Unavailable { .. }) => {
                    rest.push_front(first);
                    return Err((rest.into(), error));
                }
                Err(error) => note_refusal(outbox, stats, fence.as_ref(), &error),
            }
            continue;
        }
        // The publishes that follow under the same fence go in the same round trip.
        let mut group = vec![first];
        while let Some(next) = rest.front() {
            let same = matches!(next.op, Op::Publish(_)) && next.fence == group[0].fence;
            if !same || group.len() >= BATCH {
                break;
            }
            group.extend(rest.pop_front());
        }
        let changes: Vec<TopicChange> = group
            .iter()
            .filter_map(|e| match &e.op {
                Op::Publish(c) => Some(c.clone()),
                Op::Remove(_) => None,
            })
            .collect();
        match outbox.redis.publish(fence.as_ref(), &changes).await {
            Ok(results) => {
                for result in results {
                    match result {
                        Ok(_) => lock(stats).published += 1,
                        Err(error) => note_refusal(outbox, stats, fence.as_ref(), &error),
                    }
                }
            }
            Err(error) => {
                for e in group.into_iter().rev() {
                    rest.push_front(e);
                }
                return Err((rest.into(), error));
            }
        }
    }
    Ok(())
}

fn note_refusal(
    outbox: &Outbox,
    stats: &Mutex<WriterStats>,
    fence: Option<&Fence>,
    error: &BrokerError,
) {
    match (error, fence) {
        (BrokerError::Fenced { .. }, Some(f)) => {
            lock(stats).fenced += 1;
            outbox.progress.send_modify(|p| {
                if p.fenced.insert((f.pipeline.clone(), f.token)) {
                    tracing::warn!(pipeline = %f.pipeline, token = f.token, "Redis refused a change: another host holds the pipeline's lease now");
                }
            });
        }
        _ => {
            lock(stats).refused += 1;
            tracing::warn!(%error, "Redis refused a change");
        }
    }
}

/// A pipeline's handle: its changes go out under the lease it started with.
struct PipelineHandle {
    outbox: Arc<Outbox>,
    fence: Option<Fence>,
}

fn refused_if_invalid(change: &TopicChange) -> Result<(), Refused> {
    match wasmeter_core::validate::is_topic_name(&change.topic) {
        true => Ok(()),
        false => Err(Refused {
            topic: change.topic.to_string(),
            reason: format!("`{}` is not a valid topic name", change.topic),
        }),
    }
}

impl Broker for PipelineHandle {
    fn publish(&self, change: TopicChange) -> Result<(), Refused> {
        refused_if_invalid(&change)?;
        self.outbox.push(self.fence.clone(), Op::Publish(change));
        Ok(())
    }

    fn remove_topic(&self, topic: &str) {
        self.outbox
            .push(self.fence.clone(), Op::Remove(topic.into()));
    }

    fn flush(&self) -> BoxFuture<'_, Result<(), FlushError>> {
        Box::pin(self.outbox.flush(self.fence.as_ref()))
    }

    fn keeps_checkpoints(&self) -> bool {
        self.fence.is_some()
    }

    fn keep_checkpoint(&self, bytes: Vec<u8>) -> BoxFuture<'_, Result<(), FlushError>> {
        Box::pin(async move {
            let Some(fence) = &self.fence else {
                return Ok(());
            };
            match self.outbox.redis.save_checkpoint(fence, &bytes).await {
                Ok(()) => Ok(()),
                Err(BrokerError::Fenced { .. }) => Err(FlushError::Fenced(fence.pipeline.clone())),
                Err(error) => Err(FlushError::Unavailable(error.to_string())),
            }
        })
    }

    fn save_topic(&self, topic: &str, max_messages: usize) -> Option<SavedTopic> {
        self.outbox.hub.save_topic(topic, max_messages)
    }

    fn take_topic(&self, topic: &str, max_messages: usize) -> Option<Box<dyn TakenTopic>> {
        self.outbox.hub.take_topic(topic, max_messages)
    }
}

impl Broker for RedisTopics {
    fn publish(&self, change: TopicChange) -> Result<(), Refused> {
        refused_if_invalid(&change)?;
        self.outbox.push(None, Op::Publish(change));
        Ok(())
    }

    fn remove_topic(&self, topic: &str) {
        self.outbox.push(None, Op::Remove(topic.into()));
    }

    fn flush(&self) -> BoxFuture<'_, Result<(), FlushError>> {
        Box::pin(self.outbox.flush(None))
    }

    fn for_pipeline(&self, pipeline: &str) -> Option<Arc<dyn Broker>> {
        Some(Arc::new(PipelineHandle {
            outbox: self.outbox.clone(),
            fence: self.fence(pipeline),
        }))
    }

    fn save_topic(&self, topic: &str, max_messages: usize) -> Option<SavedTopic> {
        self.outbox.hub.save_topic(topic, max_messages)
    }

    fn take_topic(&self, topic: &str, max_messages: usize) -> Option<Box<dyn TakenTopic>> {
        self.outbox.hub.take_topic(topic, max_messages)
    }
}
