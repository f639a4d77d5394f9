//! A follower that falls behind its bounded buffer counts the frames it drops and
//! repairs what they carried.

mod support;

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use support::{Producer, RedisServer, TestReplica, eventually};
use tokio_util::sync::CancellationToken;
use wasmeter_redis::{Follower, Positioned, RedisBroker, RedisConfig, Replica};

/// A replica whose `apply` waits while its gate is closed: a slow node.
struct Gated {
    inner: TestReplica,
    closed: Mutex<bool>,
    opened: Condvar,
}

impl Gated {
    fn set_closed(&self, closed: bool) {
        *self.closed.lock().unwrap() = closed;
        self.opened.notify_all();
    }
}

/// Keeps the gate closed while it lives (opened again even if the test panics).
struct Closed<'a>(&'a Gated);

impl<'a> Closed<'a> {
    fn new(gated: &'a Gated) -> Self {
        gated.set_closed(true);
        Self(gated)
    }
}

impl Drop for Closed<'_> {
    fn drop(&mut self) {
        self.0.set_closed(false);
    }
}

impl Replica for Gated {
    fn head(&self, topic: &str) -> Option<(Arc<str>, u64)> {
        self.inner.head(topic)
    }
    fn apply(&self, msg: Positioned, continuous: bool) {
        // Blocks the way a runtime allows: this worker's other tasks move elsewhere.
        tokio::task::block_in_place(|| {
            let closed = self.closed.lock().unwrap();
            drop(self.opened.wait_while(closed, |closed| *closed).unwrap());
            self.inner.apply(msg, continuous);
        });
    }
    fn remove(&self, topic: &str) {
        self.inner.remove(topic);
    }
    fn topics(&self) -> Vec<Arc<str>> {
        self.inner.topics()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn frames_beyond_the_buffer_are_counted_and_repaired() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let cfg = RedisConfig {
        follower_buffer: 4,
        ..redis.config()
    };
    let broker = RedisBroker::connect(cfg).await.unwrap();
    let replica = Arc::new(Gated {
        inner: TestReplica::default(),
        closed: Mutex::new(false),
        opened: Condvar::new(),
    });
    let stop = CancellationToken::new();
    let follower = Follower::start(broker.clone(), replica.clone(), stop.clone());
    eventually("connected", Duration::from_secs(5), || {
        follower.status().connected
    })
    .await;

    let mut producer = Producer::default();
    {
        // The replica stalls on the first frame; 30 more arrive meanwhile.
        let _gate = Closed::new(&replica);
        for i in 1..=31 {
            broker
                .publish(None, &[producer.set("busy", "x", i as f64)])
                .await
                .unwrap();
        }
        // At most 5 are kept (4 buffered, 1 applying): the other 26, the last one
        // included, are dropped; no later frame will reveal the gap.
        eventually("26 frames overflow", Duration::from_secs(5), || {
            follower.status().overflows >= 26
        })
        .await;
    }
    eventually("the replica catches up", Duration::from_secs(10), || {
        replica.inner.head("busy").map(|h| h.1) == Some(31)
    })
    .await;
    let held = replica.inner.topics.lock().unwrap()["busy"].clone();
    assert_eq!(
        held.seqs,
        (1..=31).collect::<Vec<_>>(),
        "each once, in order, from history"
    );
    assert_eq!(held.state, producer.state("busy"));
    assert_eq!(replica.inner.violations(), Vec::<String>::new());
    let s = follower.status();
    assert!(s.overflows >= 26 && s.reconnects == 0, "{s:?}");
    stop.cancel();
    follower.stopped().await;
}
