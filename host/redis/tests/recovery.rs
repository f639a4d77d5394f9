//! Lost PUB/SUB messages, a lost last message, expiry, and Redis restarting.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{Producer, RedisServer, TestReplica, eventually};
use tokio_util::sync::CancellationToken;
use wasmeter_core::change::TopicChange;
use wasmeter_redis::{BrokerError, Follower, FollowerStatus, RedisBroker, RedisConfig, Replica};

const TOPICS: usize = 5;

/// An XRANGE entry: its id and its fields.
type StreamEntry = (String, Vec<(String, Vec<u8>)>);

/// True when the replica holds exactly Redis's topics at Redis's positions, with
/// the producer's states.
async fn in_step(broker: &RedisBroker, replica: &TestReplica, producer: &Producer) -> bool {
    let topics = broker.topics().await.unwrap();
    let heads = broker.heads(&topics).await.unwrap();
    let held = replica.snapshot();
    held.len() == topics.len()
        && topics.iter().zip(heads).all(|(t, h)| {
            let (e, s) = h.unwrap();
            held.get(t) == Some(&(e, s, producer.state(t)))
        })
}

async fn wait_in_step(broker: &RedisBroker, replica: &TestReplica, producer: &Producer) {
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
    let replica = Arc::new(TestReplica::default());
    let stop = CancellationToken::new();
    let follower = Follower::start(broker.clone(), replica.clone(), stop.clone());
    eventually("connected", Duration::from_secs(5), || {
        follower.status().connected
    })
    .await;
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

/// Writes `change` as the topic's message `seq` the way the publish script does,
/// but without its PUB/SUB notice (a lost message): the same change is published
/// under another prefix, where nobody listens, and copied into this one's keys.
async fn write_without_notice(
    redis: &RedisServer,
    cfg: &RedisConfig,
    change: TopicChange,
    seq: u64,
) {
    let elsewhere = RedisBroker::connect(RedisConfig {
        key_prefix: "elsewhere:".into(),
        ..cfg.clone()
    })
    .await
    .unwrap();
    let topic = change.topic.clone();
    elsewhere.remove(None, &topic).await.unwrap();
    elsewhere
        .publish(None, &[change])
        .await
        .unwrap()
        .remove(0)
        .unwrap();
    let mut raw = redis
        .raw()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let entries: Vec<StreamEntry> = redis::cmd("XRANGE")
        .arg(format!("elsewhere:hist:{topic}"))
        .arg(&["-", "+"])
        .query_async(&mut raw)
        .await
        .unwrap();
    let body = entries[0].1[0].1.clone();
    let (meta, hist) = (format!("t:meta:{topic}"), format!("t:hist:{topic}"));
    let maxlen = cfg.history_len.to_string();
    let _: () = redis::pipe()
        .atomic()
        .cmd("HINCRBY")
        .arg(&meta)
        .arg(&["seq", "1"])
        .ignore()
        .cmd("XADD")
        .arg(&hist)
        .arg(&["MAXLEN", &maxlen, &format!("{seq}-0"), "b"])
        .arg(&body)
        .ignore()
        .cmd("HSET")
        .arg(&meta)
        .arg("last")
        .arg(&body)
        .ignore()
        .query_async(&mut raw)
        .await
        .unwrap();
}

/// A follower whose replica already holds `idle` at seq 3, never checking by itself.
async fn gap_revealed_by_the_next_message(
    history_len: usize,
) -> Option<(Arc<TestReplica>, FollowerStatus)> {
    let redis = RedisServer::start()?;
    let cfg = RedisConfig {
        history_len,
        ..redis.config()
    };
    let broker = RedisBroker::connect(cfg.clone()).await.unwrap();
    let replica = Arc::new(TestReplica::default());
    let stop = CancellationToken::new();
    let follower = Follower::start(broker.clone(), replica.clone(), stop.clone());
    eventually("connected", Duration::from_secs(5), || {
        follower.status().connected
    })
    .await;
    let mut producer = Producer::default();
    for i in 1..=3 {
        broker
            .publish(None, &[producer.set("idle", &format!("f{i}"), i as f64)])
            .await
            .unwrap();
    }
    wait_in_step(&broker, &replica, &producer).await;
    write_without_notice(&redis, &cfg, producer.set("idle", "f4", 4.0), 4).await;
    broker
        .publish(None, &[producer.set("idle", "f5", 5.0)])
        .await
        .unwrap();
    wait_in_step(&broker, &replica, &producer).await;
    let status = follower.status();
    stop.cancel();
    follower.stopped().await;
    assert_eq!(replica.violations(), Vec::<String>::new());
    assert_eq!((status.reconnects, status.checks), (0, 0), "{status:?}");
    Some((replica, status))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gap_revealed_by_the_next_message_is_filled_from_history() {
    let Some((replica, status)) = gap_revealed_by_the_next_message(100).await else {
        return;
    };
    assert_eq!(
        replica.topics.lock().unwrap()["idle"].seqs,
        vec![1, 2, 3, 4, 5]
    );
    assert_eq!(
        (status.gaps_repaired, status.gaps_reset),
        (1, 0),
        "{status:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gap_history_no_longer_covers_resets_the_topic() {
    let Some((replica, status)) = gap_revealed_by_the_next_message(1).await else {
        return;
    };
    assert_eq!(
        replica.topics.lock().unwrap()["idle"].seqs,
        vec![5],
        "reset at 5"
    );
    assert_eq!(*replica.resets.lock().unwrap(), vec![("idle".into(), 5)]);
    assert_eq!(status.gaps_reset, 1, "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_periodic_check_repairs_a_lost_last_message_and_an_expired_topic() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let cfg = RedisConfig {
        check_interval: Duration::from_millis(200),
        ..redis.config()
    };
    let broker = RedisBroker::connect(cfg.clone()).await.unwrap();
    let replica = Arc::new(TestReplica::default());
    let stop = CancellationToken::new();
    let follower = Follower::start(broker.clone(), replica.clone(), stop.clone());
    eventually("connected", Duration::from_secs(5), || {
        follower.status().connected
    })
    .await;
    let mut producer = Producer::default();
    for i in 1..=3 {
        broker
            .publish(None, &[producer.set("idle", "x", i as f64)])
            .await
            .unwrap();
    }
    wait_in_step(&broker, &replica, &producer).await;

    // The newest message of an idle topic is written but its notice is lost.
    write_without_notice(&redis, &cfg, producer.set("idle", "x", 4.0), 4).await;
    let mut raw = redis
        .raw()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    assert_eq!(
        replica.head("idle").unwrap().1,
        3,
        "no notice reached the follower"
    );
    wait_in_step(&broker, &replica, &producer).await;
    let s = follower.status();
    assert!(s.checks >= 1 && s.gaps_repaired >= 1, "{s:?}");
    assert_eq!(
        s.reconnects, 0,
        "repaired by the check, not a resubscribe: {s:?}"
    );
    assert_eq!(replica.resets(), 0);

    // The topic expires in Redis (no notice is published): the check removes it.
    let _: () = redis::cmd("DEL")
        .arg(&["t:meta:idle", "t:hist:idle"])
        .query_async(&mut raw)
        .await
        .unwrap();
    eventually("expired topic removed", Duration::from_secs(5), || {
        replica.head("idle").is_none()
    })
    .await;
    assert!(follower.status().removals >= 1);
    stop.cancel();
    follower.stopped().await;
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
    let replica = Arc::new(TestReplica::default());
    let stop = CancellationToken::new();
    let follower = Follower::start(broker.clone(), replica.clone(), stop.clone());
    eventually("connected", Duration::from_secs(5), || {
        follower.status().connected
    })
    .await;
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
