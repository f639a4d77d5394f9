//! Publishing through Redis reaches every node with the same positions; history resumes.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use support::{Producer, RedisServer, TestReplica, event, eventually, follow};
use tokio_util::sync::CancellationToken;
use wasmeter_redis::{BrokerError, Follower, RedisBroker, RedisConfig, Replica};

/// Redis's heads of every topic the broker holds.
async fn redis_heads(broker: &RedisBroker) -> BTreeMap<Arc<str>, (Arc<str>, u64)> {
    let topics = broker.topics().await.unwrap();
    let heads = broker.heads(&topics).await.unwrap();
    topics
        .into_iter()
        .zip(heads)
        .map(|(t, h)| (t, h.unwrap()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_followers_hold_the_same_positions_and_states() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let broker = RedisBroker::connect(redis.config()).await.unwrap();
    let stop = CancellationToken::new();
    let replicas = [
        Arc::new(TestReplica::default()),
        Arc::new(TestReplica::default()),
    ];
    let followers: Vec<Follower> = replicas
        .iter()
        .map(|r| Follower::start(broker.clone(), r.clone(), stop.clone()))
        .collect();
    eventually("followers connected", Duration::from_secs(5), || {
        followers.iter().all(|f| f.status().connected)
    })
    .await;

    let mut producer = Producer::default();
    let mut expected_seq = BTreeMap::new();
    for round in 0..20 {
        // Batches of 1 to 8 changes over 8 topics, plus one event per round.
        let mut batch: Vec<_> = (0..=(round % 8))
            .map(|t| {
                producer.set(
                    &format!("topic/{t}"),
                    &format!("f{}", round % 3),
                    round as f64,
                )
            })
            .collect();
        batch.push(event("events", round as f64));
        let results = broker.publish(None, &batch).await.unwrap();
        for (change, r) in batch.iter().zip(results) {
            let p = r.unwrap();
            let seq = expected_seq.entry(change.topic.clone()).or_insert(0u64);
            *seq += 1;
            assert_eq!((p.seq, p.prev_seq), (*seq, *seq - 1), "{}", change.topic);
        }
    }

    let heads = redis_heads(&broker).await;
    assert_eq!(heads.len(), 9);
    for r in &replicas {
        eventually(
            "replica reaches Redis's heads",
            Duration::from_secs(5),
            || {
                let held = r.snapshot();
                held.len() == heads.len()
                    && held
                        .iter()
                        .all(|(t, (e, s, _))| heads.get(t) == Some(&(e.clone(), *s)))
            },
        )
        .await;
    }
    let (a, b) = (replicas[0].snapshot(), replicas[1].snapshot());
    assert_eq!(a, b, "both nodes hold the same (epoch, seq, state)");
    for (topic, (_, seq, state)) in &a {
        assert_eq!(*seq, expected_seq[topic]);
        if &**topic != "events" {
            assert_eq!(*state, producer.state(topic), "{topic}");
        }
    }
    for r in &replicas {
        assert_eq!(r.violations(), Vec::<String>::new());
        assert_eq!(r.resets(), 0, "nothing was lost: no reset");
        for (topic, held) in r.topics.lock().unwrap().iter() {
            let contiguous: Vec<u64> = (1..=held.seq).collect();
            assert_eq!(
                held.seqs, contiguous,
                "{topic}: every seq applied once, in order"
            );
        }
    }
    for f in &followers {
        let s = f.status();
        assert_eq!(
            (s.duplicates, s.gaps_reset, s.reconnects),
            (0, 0, 0),
            "{s:?}"
        );
    }

    // A topic's kind is fixed at creation: the refused change does not stop the batch.
    let batch = [
        producer.set("topic/0", "x", 1.0),
        event("topic/0", 1.0),
        producer.set("events", "x", 1.0),
        event("events", 99.0),
    ];
    let results = broker.publish(None, &batch).await.unwrap();
    assert!(results[0].is_ok());
    match &results[1] {
        Err(BrokerError::Refused { topic, reason }) => {
            assert_eq!(topic, "topic/0");
            assert!(reason.contains("state topic"), "{reason}");
        }
        r => panic!("event to a state topic: {r:?}"),
    }
    assert!(
        matches!(&results[2], Err(BrokerError::Refused { .. })),
        "{:?}",
        results[2]
    );
    assert_eq!(results[3].as_ref().unwrap().seq, 21);
    let heads = redis_heads(&broker).await;
    assert_eq!(
        heads[&Arc::<str>::from("topic/0")].1,
        21,
        "the refused event took no seq"
    );

    // Removal reaches every node.
    assert!(broker.remove(None, "topic/1").await.unwrap());
    assert!(!broker.remove(None, "topic/1").await.unwrap());
    for r in &replicas {
        eventually("removal applied", Duration::from_secs(5), || {
            r.head("topic/1").is_none()
        })
        .await;
    }
    stop.cancel();
    for f in followers {
        f.stopped().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_returns_exactly_the_messages_after_a_seq() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let broker = RedisBroker::connect(RedisConfig {
        history_len: 5,
        ..redis.config()
    })
    .await
    .unwrap();
    let mut producer = Producer::default();
    let mut states = vec![];
    let mut epoch = None;
    for i in 1..=10 {
        let c = producer.set("h", &format!("f{}", i % 4), i as f64);
        states.push(c.state.clone());
        let p = broker.publish(None, &[c]).await.unwrap().remove(0).unwrap();
        epoch.get_or_insert(p.epoch.clone());
        assert_eq!(
            Some(&p.epoch),
            epoch.as_ref(),
            "one epoch for the topic's life"
        );
    }
    let seqs = |h: &wasmeter_redis::History| h.messages.iter().map(|m| m.seq).collect::<Vec<_>>();

    let h = broker.history("h", 7, 100).await.unwrap().unwrap();
    assert_eq!((seqs(&h), h.complete, h.head), (vec![8, 9, 10], true, 10));
    assert_eq!(Some(&h.epoch), epoch.as_ref());
    for m in &h.messages {
        assert_eq!(
            m.change.state,
            states[m.seq as usize - 1],
            "state at seq {}",
            m.seq
        );
    }
    let h = broker.history("h", 5, 100).await.unwrap().unwrap();
    assert_eq!((seqs(&h), h.complete), (vec![6, 7, 8, 9, 10], true));
    let h = broker.history("h", 5, 2).await.unwrap().unwrap();
    assert_eq!((seqs(&h), h.complete), (vec![6, 7], true));
    let h = broker.history("h", 4, 100).await.unwrap().unwrap();
    assert_eq!(
        (seqs(&h), h.complete),
        (vec![6, 7, 8, 9, 10], false),
        "seq 5 was trimmed"
    );
    let h = broker.history("h", 10, 100).await.unwrap().unwrap();
    assert_eq!((seqs(&h), h.complete), (vec![], true));
    let h = broker.history("h", 11, 100).await.unwrap().unwrap();
    assert!(
        !h.complete,
        "a seq beyond the head is not one of this epoch"
    );
    assert!(broker.history("nope", 0, 10).await.unwrap().is_none());

    let latest = broker.latest("h").await.unwrap().unwrap();
    assert_eq!((latest.seq, &latest.change.state), (10, &states[9]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_started_late_hydrates_while_publishing_goes_on() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let broker = RedisBroker::connect(redis.config()).await.unwrap();
    let mut producer = Producer::default();
    // An idle topic, and busy ones that keep changing while the follower starts.
    broker
        .publish(None, &[producer.set("idle", "x", 1.0)])
        .await
        .unwrap();
    for i in 0..40 {
        let batch: Vec<_> = (0..4)
            .map(|t| producer.set(&format!("busy/{t}"), "x", i as f64))
            .collect();
        broker.publish(None, &batch).await.unwrap();
    }
    let replica = Arc::new(TestReplica::default());
    let stop = CancellationToken::new();
    let follower = Follower::start(broker.clone(), replica.clone(), stop.clone());
    let publisher = {
        let broker = broker.clone();
        tokio::spawn(async move {
            for i in 40..90 {
                let batch: Vec<_> = (0..4)
                    .map(|t| producer.set(&format!("busy/{t}"), "x", i as f64))
                    .collect();
                broker.publish(None, &batch).await.unwrap();
                tokio::task::yield_now().await;
            }
            producer
        })
    };
    let producer = publisher.await.unwrap();
    let topics = broker.topics().await.unwrap();
    let heads = broker.heads(&topics).await.unwrap();
    eventually(
        "the late follower holds every topic at its head",
        Duration::from_secs(10),
        || {
            topics
                .iter()
                .zip(&heads)
                .all(|(t, h)| replica.head(t) == *h)
        },
    )
    .await;
    for (topic, held) in replica.topics.lock().unwrap().iter() {
        assert_eq!(held.state, producer.state(topic), "{topic}");
        // Redis still holds every message (history_len 100): each applied once, in order.
        let all: Vec<u64> = (1..=held.seq).collect();
        assert_eq!(held.seqs, all, "{topic}");
    }
    assert_eq!(replica.violations(), Vec::<String>::new());
    assert_eq!(replica.resets(), 0);
    assert!(follower.status().hydrated >= 1, "{:?}", follower.status());
    stop.cancel();
    follower.stopped().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removal_notice_of_an_older_epoch_leaves_the_recreated_topic() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let broker = RedisBroker::connect(redis.config()).await.unwrap();
    let (replica, follower, stop) = follow(&broker).await;
    let mut producer = Producer::default();
    let p = broker
        .publish(None, &[producer.set("x", "v", 1.0)])
        .await
        .unwrap()
        .remove(0)
        .unwrap();
    eventually("x applied", Duration::from_secs(5), || {
        replica.head("x").is_some()
    })
    .await;

    // A late notice of the removal of an older lifetime of `x`, then a marker:
    // frames are applied in order, so once the marker is in, the notice was seen.
    let mut raw = redis
        .raw()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: i64 = redis::cmd("PUBLISH")
        .arg("t:changes")
        .arg("r|an-older-epoch|x")
        .query_async(&mut raw)
        .await
        .unwrap();
    broker
        .publish(None, &[producer.set("marker", "v", 1.0)])
        .await
        .unwrap();
    eventually("marker applied", Duration::from_secs(5), || {
        replica.head("marker").is_some()
    })
    .await;
    assert_eq!(replica.head("x"), Some((p.epoch.clone(), 1)), "x kept");

    // The notice of its own epoch removes it.
    let _: i64 = redis::cmd("PUBLISH")
        .arg("t:changes")
        .arg(format!("r|{}|x", p.epoch))
        .query_async(&mut raw)
        .await
        .unwrap();
    eventually("x removed", Duration::from_secs(5), || {
        replica.head("x").is_none()
    })
    .await;
    stop.cancel();
    follower.stopped().await;
}
