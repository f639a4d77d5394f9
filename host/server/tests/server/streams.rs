//! Stream topics: every event delivered, in order, never merged or conflated;
//! resume replays them; a subscriber beyond the history is told of the gap.

use serde_json::{Value, json};
use wasmeter_hub::HubConfig;
use wasmeter_server::ServerConfig;

use crate::support::{TestServer, Ws, config, num, text};

fn trade(i: u64) -> [(&'static str, wasmeter_core::field::FieldValue); 3] {
    [
        ("price", num(100.0 + i as f64)),
        ("qty", num(1.0)),
        (
            "side",
            text(if i.is_multiple_of(2) { "buy" } else { "sell" }),
        ),
    ]
}

/// Receives `n` event frames and checks each is the next trade, whole.
async fn expect_events(ws: &mut Ws, topic: &str, from_seq: u64, n: u64) {
    for seq in from_seq..from_seq + n {
        let f = ws.recv().await;
        assert_eq!(f["type"], "event", "{f}");
        assert_eq!(f["topic"], topic);
        assert_eq!(f["seq"], seq, "every event, in order: {f}");
        let i = seq - 1;
        assert_eq!(
            f["fields"],
            json!({"price": 100.0 + i as f64, "qty": 1.0, "side": if i.is_multiple_of(2) { "buy" } else { "sell" }}),
        );
    }
}

async fn server(stream_history: usize, conflate_after_updates: u64) -> TestServer {
    TestServer::start(
        ServerConfig {
            conflate_after_updates,
            ..config()
        },
        HubConfig {
            stream_history,
            ..HubConfig::default()
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_arrives_in_order_far_past_the_conflation_threshold() {
    for format in ["json", "msgpack"] {
        // 20,000 events published at once, 2,000x the point where a state topic
        // would be conflated into one snapshot.
        let server = server(50_000, 10).await;
        server.publish_event("tape/BTC", &trade(0));
        let mut ws = Ws::connect(server.addr, &format!("?format={format}")).await;
        ws.subscribe(json!({"topics": ["tape/*"]})).await;
        let first = ws.recv().await;
        assert_eq!(
            (&first["type"], &first["seq"], &first["stream"]),
            (&json!("snapshot"), &json!(1), &json!(true))
        );
        for i in 1..20_000 {
            server.publish_event("tape/BTC", &trade(i));
        }
        expect_events(&mut ws, "tape/BTC", 2, 19_999).await;
        assert_eq!(server.state.metrics().conflations, 0);
        assert_eq!(server.state.metrics().stream_gaps, 0);
        ws.close().await;
    }
}

#[tokio::test]
async fn a_rate_limit_never_merges_events() {
    let server = server(1024, 64).await;
    server.publish_event("tape/ETH", &trade(0));
    let mut ws = Ws::connect(server.addr, "").await;
    ws.subscribe(json!({"topics": ["tape/ETH"], "max_rate_hz": 1}))
        .await;
    assert_eq!(ws.recv().await["type"], "snapshot");
    for i in 1..50 {
        server.publish_event("tape/ETH", &trade(i));
    }
    expect_events(&mut ws, "tape/ETH", 2, 49).await;
    ws.close().await;
}

#[tokio::test]
async fn resume_replays_every_missed_event_or_names_the_gap() {
    let server = server(100, 64).await;
    server.publish_event("tape/SOL", &trade(0));
    let mut ws = Ws::connect(server.addr, "").await;
    ws.subscribe(json!({"topics": ["tape/SOL"]})).await;
    let snap = ws.recv().await;
    let epoch = snap["epoch"].clone();
    ws.close().await;

    // Away for 60 events: all still held.
    for i in 1..=60 {
        server.publish_event("tape/SOL", &trade(i));
    }
    let mut ws = Ws::connect(server.addr, "").await;
    let reply = ws
        .subscribe(
            json!({"topics": ["tape/SOL"], "since": {"tape/SOL": {"epoch": epoch, "seq": 1}}}),
        )
        .await;
    assert_eq!(reply["recovered"], json!({"tape/SOL": true}));
    expect_events(&mut ws, "tape/SOL", 2, 60).await;
    ws.close().await;

    // Away for 250 events: the history holds the last 100 of 311.
    for i in 61..=310 {
        server.publish_event("tape/SOL", &trade(i));
    }
    let mut ws = Ws::connect(server.addr, "?format=msgpack").await;
    let reply = ws
        .subscribe(
            json!({"topics": ["tape/SOL"], "since": {"tape/SOL": {"epoch": epoch, "seq": 61}}}),
        )
        .await;
    assert_eq!(reply["recovered"], json!({"tape/SOL": false}));
    let gap: Value = ws.recv().await;
    assert_eq!(
        gap,
        json!({"type": "gap", "topic": "tape/SOL", "epoch": epoch, "after": 61, "next": 212, "missed": 150})
    );
    expect_events(&mut ws, "tape/SOL", 212, 100).await;
    assert_eq!(server.state.metrics().stream_gaps, 1);
    ws.close().await;
}

#[tokio::test]
async fn a_topic_takes_events_or_state_changes_never_both() {
    let server = server(16, 64).await;
    server.publish_event("tape/ADA", &trade(0));
    let err = server
        .hub
        .publish(wasmeter_core::change::TopicChange {
            topic: "tape/ADA".into(),
            delta: Default::default(),
            stale: vec![],
            state: Default::default(),
            timestamp_ms: 0,
            event: false,
        })
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "`tape/ADA` is a stream topic: it cannot take state changes"
    );
    let (status, body) = crate::support::http_get(server.addr, "/api/topics/tape/ADA").await;
    assert_eq!(status, 200);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["stream"], true);
    assert_eq!(
        body["state"],
        json!({"price": 100.0, "qty": 1.0, "side": "buy"})
    );
}

#[tokio::test]
async fn a_stream_created_after_subscribing_is_delivered_from_its_first_event() {
    let server = server(1024, 8).await;
    let mut ws = Ws::connect(server.addr, "?format=msgpack").await;
    ws.subscribe(json!({"topics": ["tape/**"]})).await;
    for i in 0..500 {
        server.publish_event("tape/DOT", &trade(i));
    }
    // No snapshot: every event from #1, in order.
    expect_events(&mut ws, "tape/DOT", 1, 500).await;
    ws.close().await;
}
