//! Server-Sent Events: same frames, resume through Last-Event-ID.

use serde_json::json;
use wasmeter_hub::HubConfig;

use crate::support::*;

#[tokio::test]
async fn sse_streams_snapshots_and_updates_and_resumes() {
    let server = TestServer::start(
        config(),
        HubConfig {
            history_per_topic: 8,
            ..Default::default()
        },
    )
    .await;
    server.publish("e/a", &[("n", num(0.0))], &[]);
    server.publish("e/b", &[("n", num(0.0))], &[]);
    let mut sse = Sse::connect(server.addr, "/sse?topics=e/*", None).await;
    assert_eq!(sse.status, 200);
    assert_eq!(sse.next().await.unwrap().event, "subscribed");
    let mut applied = Applied::default();
    let mut last_id = None;
    for _ in 0..2 {
        let ev = sse.next().await.unwrap();
        assert_eq!(ev.event, "snapshot");
        applied.apply(&ev.data);
        last_id = ev.id;
    }
    server.publish("e/a", &[("n", num(1.0))], &["gone"]);
    let ev = sse.next().await.unwrap();
    assert_eq!(
        (ev.event.as_str(), ev.data["type"].as_str()),
        ("update", Some("update"))
    );
    applied.apply(&ev.data);
    let id = ev.id.unwrap();
    assert!(id.contains("e/a@") && id.contains("e/b@"), "{id}");
    drop(sse);
    assert_ne!(last_id.unwrap(), id);

    // Missed while away: e/a within history, e/b beyond it.
    server.publish("e/a", &[("n", num(2.0))], &[]);
    for i in 1..=20 {
        server.publish("e/b", &[("n", num(i as f64))], &[]);
    }
    let mut sse = Sse::connect(server.addr, "/sse?topics=e/*", Some(&id)).await;
    let sub = sse.next().await.unwrap();
    assert_eq!(sub.data["recovered"], json!({"e/a": true, "e/b": false}));
    let mut got_update_a = false;
    let mut got_snapshot_b = false;
    while !(got_update_a && got_snapshot_b) {
        let ev = sse.next().await.unwrap();
        match (ev.event.as_str(), ev.data["topic"].as_str()) {
            ("update", Some("e/a")) => got_update_a = true,
            ("snapshot", Some("e/b")) => {
                assert_eq!(ev.data["recovered"], false);
                got_snapshot_b = true;
            }
            other => panic!("unexpected {other:?}"),
        }
        applied.apply(&ev.data);
    }
    assert_eq!(applied.state("e/a"), server.state_json("e/a"));
    assert_eq!(applied.state("e/b"), server.state_json("e/b"));
}

#[tokio::test]
async fn sse_rejects_bad_requests_naming_the_problem() {
    let server = TestServer::default().await;
    let (status, body) = http_get(server.addr, "/sse").await;
    assert_eq!(status, 400);
    assert!(body.contains("`topics` is required"), "{body}");
    let (status, body) = http_get(server.addr, "/sse?topics=a//b").await;
    assert_eq!(status, 400);
    assert!(body.contains("topics[0]"), "{body}");
}

#[tokio::test]
async fn sse_resumes_twice_in_a_row_with_exact_replays() {
    let server = TestServer::start(
        config(),
        HubConfig {
            history_per_topic: 64,
            ..Default::default()
        },
    )
    .await;
    server.publish("e/a", &[("n", num(0.0))], &[]);
    server.publish("e/b", &[("n", num(0.0))], &[]);
    let mut sse = Sse::connect(server.addr, "/sse?topics=e/*", None).await;
    assert_eq!(sse.next().await.unwrap().event, "subscribed");
    let mut id = None;
    for _ in 0..2 {
        id = sse.next().await.unwrap().id;
    }
    drop(sse);

    // Resumed, and only `e/a` changes meanwhile: the ids of the resumed stream
    // still carry `e/b`'s position, so the next resume replays `e/b` too.
    for round in 1..=2 {
        server.publish("e/a", &[("n", num(round as f64))], &[]);
        let mut sse = Sse::connect(server.addr, "/sse?topics=e/*", id.as_deref()).await;
        let sub = sse.next().await.unwrap();
        assert_eq!(
            sub.data["recovered"],
            json!({"e/a": true, "e/b": true}),
            "round {round}"
        );
        let ev = sse.next().await.unwrap();
        assert_eq!(
            (ev.event.as_str(), ev.data["topic"].as_str()),
            ("update", Some("e/a")),
            "round {round}"
        );
        let next = ev.id.expect("an id");
        assert!(next.contains("e/b@"), "round {round}: {next}");
        id = Some(next);
    }
}
