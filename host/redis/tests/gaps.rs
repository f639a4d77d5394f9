//! Gaps a follower finds in step: revealed by the next message, by the periodic
//! check (the lost last message), and topics expiring without notice.

mod support;

use std::sync::Arc;
use std::time::Duration;

use support::{Producer, RedisServer, TestReplica, eventually, follow, wait_in_step};
use wasmeter_core::change::TopicChange;
use wasmeter_redis::{FollowerStatus, RedisBroker, RedisConfig, Replica};

/// An XRANGE entry: its id and its fields.
type StreamEntry = (String, Vec<(String, Vec<u8>)>);

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
    let (replica, follower, stop) = follow(&broker).await;
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
    // The follower counts a message in its status just after applying it to
    // the replica (a repair, after applying all it read): the replica can be
    // in step before the gap is counted.
    eventually("the gap counted", Duration::from_secs(10), || {
        let s = follower.status();
        s.gaps_repaired + s.gaps_reset > 0
    })
    .await;
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
    let (replica, follower, stop) = follow(&broker).await;
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
    // Counted just after the repair applied it (see above).
    eventually("the repair counted", Duration::from_secs(10), || {
        follower.status().gaps_repaired >= 1
    })
    .await;
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

    // A new topic whose only message's notice is lost: the periodic full check
    // (a SCAN of Redis's topics, every tenth check) finds it.
    let elsewhere = RedisBroker::connect(RedisConfig {
        key_prefix: "elsewhere:".into(),
        ..cfg.clone()
    })
    .await
    .unwrap();
    let change = producer.set("fresh", "x", 1.0);
    elsewhere.publish(None, &[change]).await.unwrap();
    for kind in ["meta", "hist"] {
        let _: () = redis::cmd("RENAME")
            .arg(format!("elsewhere:{kind}:fresh"))
            .arg(format!("t:{kind}:fresh"))
            .query_async(&mut raw)
            .await
            .unwrap();
    }
    eventually("the new topic found", Duration::from_secs(10), || {
        replica.head("fresh").is_some_and(|(_, seq)| seq == 1)
    })
    .await;
    assert_eq!(follower.status().reconnects, 0, "found by the check");
    stop.cancel();
    follower.stopped().await;
}
