//! One producer per pipeline: leases with fencing numbers, and the writes they guard.

mod support;

use std::time::{Duration, Instant};

use support::{Producer, RedisServer};
use wasmeter_redis::{BrokerError, RedisBroker};

fn fenced_by(r: Result<impl std::fmt::Debug, BrokerError>, node: &str) {
    match r {
        Err(BrokerError::Fenced { pipeline, holder }) => {
            assert_eq!(pipeline, "feed");
            assert_eq!(holder.as_deref(), Some(node));
        }
        r => panic!("expected Fenced by {node}: {r:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_lease_writes_nothing_and_the_next_holder_has_a_higher_number() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    // Two nodes, each with its own connection.
    let a = RedisBroker::connect(redis.config()).await.unwrap();
    let b = RedisBroker::connect(redis.config()).await.unwrap();
    let ttl = Duration::from_millis(300);

    let fa = a
        .acquire("feed", "node-a", ttl)
        .await
        .unwrap()
        .expect("free lease");
    assert!(b.acquire("feed", "node-b", ttl).await.unwrap().is_none());
    assert_eq!(b.holder("feed").await.unwrap().as_deref(), Some("node-a"));
    assert!(a.renew(&fa, ttl).await.unwrap());

    // A holds it: its writes go through.
    let mut producer = Producer::default();
    a.publish(Some(&fa), &[producer.set("shared", "x", 1.0)])
        .await
        .unwrap()
        .remove(0)
        .unwrap();
    a.save_checkpoint(&fa, b"offset=1").await.unwrap();

    // A stalls past its TTL; B takes over with a higher fencing number.
    let deadline = Instant::now() + Duration::from_secs(5);
    let fb = loop {
        if let Some(f) = b
            .acquire("feed", "node-b", Duration::from_secs(30))
            .await
            .unwrap()
        {
            break f;
        }
        assert!(Instant::now() < deadline, "A's 300 ms lease never expired");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(fb.token > fa.token, "{} > {}", fb.token, fa.token);
    b.publish(Some(&fb), &[producer.set("shared", "x", 2.0)])
        .await
        .unwrap()
        .remove(0)
        .unwrap();
    b.save_checkpoint(&fb, b"offset=2").await.unwrap();

    // A's writes now fail and write nothing.
    let r = a
        .publish(
            Some(&fa),
            &[
                producer.set("shared", "x", 3.0),
                producer.set("only-a", "x", 1.0),
            ],
        )
        .await
        .unwrap();
    for r in r {
        fenced_by(r, "node-b");
    }
    let heads = a.heads(&["shared".into(), "only-a".into()]).await.unwrap();
    assert_eq!(
        heads[0].as_ref().map(|h| h.1),
        Some(2),
        "A's change took no seq"
    );
    assert_eq!(heads[1], None, "A created no topic");
    fenced_by(a.remove(Some(&fa), "shared").await, "node-b");
    assert!(
        a.latest("shared").await.unwrap().is_some(),
        "A removed nothing"
    );
    fenced_by(a.save_checkpoint(&fa, b"offset=3").await, "node-b");
    assert_eq!(
        a.load_checkpoint("feed").await.unwrap().as_deref(),
        Some(&b"offset=2"[..])
    );
    assert!(
        !a.renew(&fa, ttl).await.unwrap(),
        "A cannot renew B's lease"
    );
    a.release(&fa).await.unwrap();
    assert_eq!(
        a.holder("feed").await.unwrap().as_deref(),
        Some("node-b"),
        "A's release left B's lease"
    );

    // B gives it up; the counter outlives the lease, so numbers are never reused.
    b.release(&fb).await.unwrap();
    assert_eq!(b.holder("feed").await.unwrap(), None);
    let fa2 = a.acquire("feed", "node-a", ttl).await.unwrap().unwrap();
    assert!(fa2.token > fb.token);
    // Another pipeline's lease is independent.
    assert!(b.acquire("other", "node-b", ttl).await.unwrap().is_some());
}
