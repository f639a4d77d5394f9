//! A follower whose PUB/SUB connection is killed, and Redis restarting empty.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{Producer, RedisServer, TestReplica, eventually, follow, wait_in_step};
use wasmeter_redis::{BrokerError, FollowerStatus, RedisBroker, RedisConfig};

const TOPICS: usize = 5;

/// Kills the follower's PUB/SUB connection and publishes `per_round` changes per
/// topic before it can resubscribe, five times; returns once it caught up.
async fn lose_and_recover(
    history_len: usize,
    per_round: usize,
) -> Option<(Arc<TestReplica>, FollowerStatus)> {
    let redis = RedisServer::start()?;
    let broker = RedisBroker::connect(RedisConfig {
        history_len,
        ..redis.config()
    })
    .await
    .unwrap();
    let (replica, follower, stop) = follow(&broker).await;
    let mut producer = Producer::default();
    let mut n = 0.0;
    let mut round = |producer: &mut Producer| {
        n += 1.0;
        (0..TOPICS)
            .map(|t| producer.set(&format!("t{t}"), &format!("f{}", n as u32 % 3), n))
            .collect::<Vec<_>>()
    };
    broker.publish(None, &round(&mut producer)).await.unwrap();
    wait_in_step(&broker, &replica, &producer).await;

    let mut raw = redis
        .raw()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    for _ in 0..5 {
        let killed: i64 = redis::cmd("CLIENT")
            .arg(&["KILL", "TYPE", "pubsub"])
            .query_async(&mut raw)
            .await
            .unwrap();
        assert_eq!(killed, 1, "the follower's one PUB/SUB connection");
        for _ in 0..per_round {
            for r in broker.publish(None, &round(&mut producer)).await.unwrap() {
                r.unwrap();
            }
        }
        wait_in_step(&broker, &replica, &producer).await;
    }
    let status = follower.status();
    stop.cancel();
    follower.stopped().await;
    assert_eq!(replica.violations(), Vec::<String>::new());
    assert!(status.reconnects >= 5, "{status:?}");
    Some((replica, status))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_messages_are_repaired_from_history() {
    let Some((replica, status)) = lose_and_recover(1000, 3).await else {
        return;
    };
    assert!(status.hydrated >= 1, "repaired at resubscribe: {status:?}");
    assert_eq!(
        replica.resets(),
        0,
        "history reached back: no snapshot needed"
    );
    for (topic, held) in replica.topics.lock().unwrap().iter() {
        let contiguous: Vec<u64> = (1..=held.seq).collect();
        assert_eq!(
            held.seqs, contiguous,
            "{topic}: every message applied once, in order"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_messages_beyond_history_reset_the_topic() {
    let Some((replica, status)) = lose_and_recover(2, 6).await else {
        return;
    };
    assert!(
        replica.resets() >= TOPICS,
        "trimmed history: the newest applied with continuous=false ({status:?})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarting_empty_fails_fast_and_recovers_with_new_epochs() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let cfg = RedisConfig {
        command_timeout: Duration::from_millis(300),
        connect_timeout: Duration::from_millis(300),
        ..redis.config()
    };
    let broker = RedisBroker::connect(cfg).await.unwrap();
    let (replica, follower, stop) = follow(&broker).await;
    let mut producer = Producer::default();
    let batch = [
        producer.set("kept", "x", 1.0),
        producer.set("dropped", "x", 1.0),
    ];
    broker.publish(None, &batch).await.unwrap();
    wait_in_step(&broker, &replica, &producer).await;
    let old: BTreeMap<_, _> = replica.snapshot();

    redis.kill();
    // Every call fails Unavailable within its bound (never hangs).
    let r = tokio::time::timeout(
        Duration::from_secs(5),
        broker.publish(None, &[producer.set("kept", "x", 2.0)]),
    )
    .await
    .expect("publish bounded by command_timeout");
    assert!(matches!(r, Err(BrokerError::Unavailable { .. })), "{r:?}");
    assert!(matches!(
        broker.ping().await,
        Err(BrokerError::Unavailable { .. })
    ));
    eventually(
        "follower reports unavailable",
        Duration::from_secs(5),
        || {
            let s = follower.status();
            !s.connected && s.last_error.is_some()
        },
    )
    .await;
    assert_eq!(
        replica.snapshot(),
        old,
        "the replica keeps serving while Redis is down"
    );

    redis.restart();
    eventually(
        "follower reconnects by itself",
        Duration::from_secs(10),
        || follower.status().connected,
    )
    .await;
    // The producer publishes again (its connection reconnects on demand; the
    // scripts are loaded again after NOSCRIPT).
    let deadline = Instant::now() + Duration::from_secs(10);
    let p = loop {
        match broker
            .publish(None, &[producer.set("kept", "x", 3.0)])
            .await
        {
            Ok(mut r) => break r.remove(0).unwrap(),
            Err(e) => assert!(Instant::now() < deadline, "publish never recovered: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(p.seq, 1);
    assert_ne!(
        p.epoch,
        old[&Arc::<str>::from("kept")].0,
        "a new epoch after the restart"
    );
    eventually(
        "replica holds the new epoch; the topic Redis lost is gone",
        Duration::from_secs(10),
        || {
            let held = replica.snapshot();
            held.len() == 1
                && held.get("kept").is_some_and(|(e, s, st)| {
                    *e == p.epoch && *s == 1 && *st == producer.state("kept")
                })
        },
    )
    .await;
    assert!(follower.status().reconnects >= 1);
    assert_eq!(replica.violations(), Vec::<String>::new());
    stop.cancel();
    follower.stopped().await;
}
