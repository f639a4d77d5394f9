//! WebSocket behaviour over loopback.

use serde_json::json;
use tokio_tungstenite::tungstenite::Message;
use wasmeter_hub::HubConfig;
use wasmeter_server::{ServerConfig, close};

use crate::support::*;

#[tokio::test]
async fn json_client_gets_snapshot_then_deltas() {
    let server = TestServer::default().await;
    server.publish(
        "trades/BTC",
        &[("price", num(100.0)), ("side", text("buy"))],
        &[],
    );
    let mut ws = Ws::connect(server.addr, "").await;
    let reply = ws.subscribe(json!({"id": 1, "topics": ["trades/*"]})).await;
    assert_eq!(
        reply,
        json!({"type":"subscribed","id":1,"topics":["trades/*"]})
    );
    let snap = ws.recv().await;
    assert_eq!(snap["type"], "snapshot");
    assert_eq!(snap["state"], json!({"price":100.0,"side":"buy"}));

    let pos = server.publish("trades/BTC", &[("price", num(101.5))], &["side"]);
    let up = ws.recv().await;
    assert_eq!(up["type"], "update");
    assert_eq!(up["epoch"], pos.epoch.as_str());
    assert_eq!(up["seq"], pos.seq);
    assert_eq!(up["delta"], json!({"side":null,"price":101.5}));
    ws.close().await;
}

#[tokio::test]
async fn msgpack_client_gets_binary_frames_by_query_or_subprotocol() {
    let server = TestServer::default().await;
    server.publish("m/a", &[("v", num(1.0))], &[]);
    for (query, proto) in [("?format=msgpack", None), ("", Some("wasmeter.v1.msgpack"))] {
        let mut ws = Ws::connect_with(server.addr, query, proto, None).await;
        ws.send_msgpack(json!({"type":"subscribe","topics":["m/a"]}))
            .await;
        let Message::Binary(b) = ws.recv_raw().await else {
            panic!("expected a binary frame")
        };
        let reply: serde_json::Value = rmp_serde::from_slice(&b).unwrap();
        assert_eq!(reply["type"], "subscribed");
        let Message::Binary(b) = ws.recv_raw().await else {
            panic!("expected a binary snapshot")
        };
        let snap: serde_json::Value = rmp_serde::from_slice(&b).unwrap();
        assert_eq!(snap["state"], server.state_json("m/a"));
        let pos = server.publish("m/a", &[("v", num(pos_value(&snap)))], &["nothing"]);
        let up = ws.recv().await;
        assert_eq!(up["delta"], json!({"nothing":null,"v":pos_value(&snap)}));
        assert_eq!(up["seq"], pos.seq);
        ws.close().await;
    }
    let m = server.state.metrics();
    assert!(m.messages_sent_msgpack >= 6, "{m:?}");
    assert_eq!(m.messages_sent_json, 0);
    assert_eq!(
        ws_handshake_status(server.addr, "?format=xml").await,
        Some(400)
    );
}

#[tokio::test]
async fn reconnect_resumes_missed_updates_within_history() {
    let server = TestServer::start(
        config(),
        HubConfig {
            history_per_topic: 16,
            ..Default::default()
        },
    )
    .await;
    server.publish("r/a", &[("n", num(0.0))], &[]);
    let mut ws = Ws::connect(server.addr, "").await;
    ws.subscribe(json!({"topics": ["r/a"]})).await;
    let mut applied = Applied::default();
    applied.apply(&ws.recv().await);
    for i in 1..=3 {
        server.publish("r/a", &[("n", num(i as f64))], &[]);
        applied.apply(&ws.recv().await);
    }
    let epoch = ws_epoch(&server, "r/a");
    let last = applied.seq("r/a");
    ws.close().await;

    for i in 4..=10 {
        server.publish(
            "r/a",
            &[("n", num(i as f64)), (&format!("k{i}"), num(1.0))],
            &[],
        );
    }
    let mut ws = Ws::connect(server.addr, "").await;
    let reply = ws
        .subscribe(json!({"topics": ["r/a"], "since": {"r/a": {"epoch": epoch, "seq": last}}}))
        .await;
    assert_eq!(reply["recovered"], json!({"r/a": true}));
    for expected in last + 1..=11 {
        let f = ws.recv().await;
        assert_eq!(
            (f["type"].as_str(), f["seq"].as_u64()),
            (Some("update"), Some(expected))
        );
        applied.apply(&f);
    }
    assert_eq!(applied.state("r/a"), server.state_json("r/a"));
    ws.close().await;
}

#[tokio::test]
async fn reconnect_after_a_gap_beyond_history_is_told_not_recovered() {
    let server = TestServer::start(
        config(),
        HubConfig {
            history_per_topic: 4,
            ..Default::default()
        },
    )
    .await;
    server.publish("r/b", &[("n", num(0.0))], &[]);
    let mut ws = Ws::connect(server.addr, "").await;
    ws.subscribe(json!({"topics": ["r/b"]})).await;
    let snap = ws.recv().await;
    let (epoch, seq) = (snap["epoch"].clone(), snap["seq"].as_u64().unwrap());
    ws.close().await;
    for i in 1..=20 {
        server.publish("r/b", &[("n", num(i as f64))], &[]);
    }
    let mut ws = Ws::connect(server.addr, "").await;
    let reply = ws
        .subscribe(json!({"topics": ["r/b"], "since": {"r/b": {"epoch": epoch, "seq": seq}}}))
        .await;
    assert_eq!(reply["recovered"], json!({"r/b": false}));
    let f = ws.recv().await;
    assert_eq!(f["type"], "snapshot", "never a partial replay");
    assert_eq!(f["recovered"], false);
    assert_eq!(f["seq"], 21);
    assert_eq!(f["state"], server.state_json("r/b"));
    ws.close().await;
}

fn pos_value(snap: &serde_json::Value) -> f64 {
    snap["state"]["v"].as_f64().unwrap() + 1.0
}

fn ws_epoch(server: &TestServer, topic: &str) -> String {
    server.hub.snapshot(topic).unwrap().0.epoch
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_consumer_is_conflated_and_ends_with_the_right_state() {
    let cfg = ServerConfig {
        write_timeout_ms: 120_000,
        conflate_after_updates: 16,
        ..config()
    };
    let server = TestServer::start(
        cfg,
        HubConfig {
            history_per_topic: 32,
            ..Default::default()
        },
    )
    .await;
    server.publish("slow/t", &[("n", num(0.0))], &[]);
    // A small receive buffer, so the server's socket fills up quickly.
    let mut ws = Ws::connect_with(server.addr, "", None, Some(4096)).await;
    ws.subscribe(json!({"topics": ["slow/*"]})).await;
    let mut applied = Applied::default();
    applied.apply(&ws.recv().await);

    // ~20 MB of updates while the client reads nothing.
    let blob = "x".repeat(1000);
    let total = 20_000u64;
    for i in 1..=total {
        let mut changed = vec![("n", num(i as f64)), ("blob", text(&blob))];
        let key = format!("k{}", i % 13);
        changed.push((&key, num(i as f64)));
        let removed: Vec<&str> = if i % 97 == 0 { vec!["k5"] } else { vec![] };
        server.publish("slow/t", &changed, &removed);
    }
    let last = total + 1;
    let mut frames = 0u64;
    while applied.seq("slow/t") < last {
        let f = ws.recv().await;
        applied.apply(&f);
        frames += 1;
    }
    assert_eq!(applied.state("slow/t"), server.state_json("slow/t"));
    let m = server.state.metrics();
    assert!(m.conflations >= 1, "{m:?}");
    assert!(
        frames < total,
        "conflated: {frames} frames for {total} updates"
    );
    assert_eq!(m.slow_consumer_disconnects, 0);
    ws.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_that_stops_reading_is_closed_with_4003_as_last_resort() {
    let cfg = ServerConfig {
        write_timeout_ms: 300,
        ..config()
    };
    let server = TestServer::start(cfg, HubConfig::default()).await;
    server.publish("stall/t", &[("n", num(0.0))], &[]);
    let mut ws = Ws::connect_with(server.addr, "", None, Some(4096)).await;
    ws.subscribe(json!({"topics": ["stall/t"]})).await;
    ws.recv().await;
    // Keep publishing large updates until the server gives up on the socket.
    let blob = "y".repeat(4000);
    let mut i = 0.0;
    let start = tokio::time::Instant::now();
    while server.state.metrics().slow_consumer_disconnects == 0 {
        for _ in 0..100 {
            i += 1.0;
            server.publish("stall/t", &[("n", num(i)), ("blob", text(&blob))], &[]);
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        assert!(start.elapsed() < WAIT, "the server never gave up");
    }
    server
        .eventually("the connection is gone", |s| {
            s.state.metrics().connections_active == 0 && s.hub.stats().slots == 0
        })
        .await;
    // Whatever was buffered, the stream then ends.
    loop {
        match ws.next().await {
            Ok(_) => continue,
            Err(Ended::Close(f)) => {
                assert_eq!(f.map(|f| u16::from(f.code)), Some(close::SLOW_CONSUMER));
                break;
            }
            Err(Ended::Eof) => break,
        }
    }
}

#[tokio::test]
async fn malformed_messages_get_clear_errors_and_nothing_is_lost() {
    let server = TestServer::default().await;
    server.publish("g/a", &[("n", num(0.0))], &[]);
    let mut ws = Ws::connect(server.addr, "").await;
    ws.subscribe(json!({"topics": ["g/a"]})).await;
    let mut applied = Applied::default();
    applied.apply(&ws.recv().await);

    let bad: Vec<(Message, &str)> = vec![
        (Message::text("not json"), "invalid JSON message"),
        (
            Message::text(r#"{"type":"subscribe","topics":["ok","a b"]}"#),
            "subscribe.topics[1]: `a b` is not a valid topic pattern",
        ),
        (Message::text(r#"{"type":"fly"}"#), "unknown variant `fly`"),
        (
            Message::text(r#"{"type":"subscribe","topics":["x"],"max_rate_hz":-1}"#),
            "subscribe.max_rate_hz: -1",
        ),
        (
            Message::text(r#"{"type":"subscribe","topics":["x"],"fields":["a-b"]}"#),
            "subscribe.fields[0]: `a-b` is not a valid field name",
        ),
        (
            Message::binary(vec![0xc1, 0x00]),
            "invalid MessagePack message",
        ),
        (
            Message::text(r#"{"type":"unsubscribe","topics":["zz"]}"#),
            "unsubscribe.topics[0]: `zz` is not subscribed",
        ),
    ];
    let mut n = 0.0;
    for (msg, expected) in bad {
        ws.send_raw(msg).await;
        n += 1.0;
        server.publish("g/a", &[("n", num(n))], &[]);
        // The update and the error arrive in either order; both must arrive.
        let mut got_error = false;
        let mut got_update = false;
        while !(got_error && got_update) {
            let f = ws.recv().await;
            match f["type"].as_str() {
                Some("error") => {
                    let m = f["message"].as_str().unwrap();
                    assert!(m.contains(expected), "{m:?} should contain {expected:?}");
                    got_error = true;
                }
                Some("update") => {
                    applied.apply(&f);
                    got_update = true;
                }
                other => panic!("unexpected {other:?}: {f}"),
            }
        }
    }
    // Still subscribed, still answered, nothing lost.
    ws.send(json!({"type":"ping","id":5})).await;
    assert_eq!(ws.recv().await, json!({"type":"pong","id":5}));
    assert_eq!(applied.state("g/a"), server.state_json("g/a"));
    assert_eq!(applied.seq("g/a"), 8);
    // Three did not parse; four parsed and were refused.
    let m = server.state.metrics();
    assert_eq!((m.malformed_messages, m.refused_messages), (3, 4));
    ws.close().await;
}

#[tokio::test]
async fn an_abusive_client_is_closed_with_4002() {
    let cfg = ServerConfig {
        max_consecutive_errors: 5,
        ..config()
    };
    let server = TestServer::start(cfg, HubConfig::default()).await;
    let mut ws = Ws::connect(server.addr, "").await;
    for _ in 0..5 {
        ws.send_raw(Message::text("garbage")).await;
    }
    assert_eq!(ws.close_code().await, Some(close::ABUSIVE));
    server
        .eventually("abusive counted", |s| {
            s.state.metrics().abusive_disconnects == 1
        })
        .await;
}

#[tokio::test]
async fn an_oversized_frame_closes_with_1009() {
    let cfg = ServerConfig {
        max_frame_bytes: 1024,
        ..config()
    };
    let server = TestServer::start(cfg, HubConfig::default()).await;
    let mut ws = Ws::connect(server.addr, "").await;
    let big = format!(
        r#"{{"type":"subscribe","topics":["{}"]}}"#,
        "a".repeat(2000)
    );
    ws.send_raw(Message::text(big)).await;
    assert_eq!(ws.close_code().await, Some(close::MESSAGE_TOO_BIG));
}

#[tokio::test]
async fn a_silent_client_times_out_with_4001_and_a_ponging_one_stays() {
    let cfg = ServerConfig {
        ping_interval_ms: 100,
        client_timeout_ms: 500,
        ..config()
    };
    let server = TestServer::start(cfg.clone(), HubConfig::default()).await;

    let mut live = Ws::connect(server.addr, "").await;
    live.auto_pong = false;
    // Pings come at most every 100 ms, so answering 20 of them takes at least
    // 2 s: four heartbeat timeouts, each survived only because pongs count.
    let pings = 20;
    assert!(pings * cfg.ping_interval_ms >= 4 * cfg.client_timeout_ms);
    let mut answered = 0;
    while answered < pings {
        match live.recv_raw().await {
            Message::Text(t) if t.as_str().contains("ping") => {
                answered += 1;
                live.send(json!({"type":"pong"})).await;
            }
            other => panic!("after {answered} pongs: unexpected {other:?}"),
        }
    }
    live.send(json!({"type":"ping","id":1})).await;
    assert_eq!(live.recv().await["type"], "pong");
    live.close().await;
    assert_eq!(server.state.metrics().heartbeat_timeouts, 0);

    let mut silent = Ws::connect(server.addr, "").await;
    silent.auto_pong = false;
    assert_eq!(silent.close_code().await, Some(close::HEARTBEAT_TIMEOUT));
    server
        .eventually("timeout counted", |s| {
            s.state.metrics().heartbeat_timeouts == 1
        })
        .await;
}

#[tokio::test]
async fn patterns_catch_topics_created_later() {
    let server = TestServer::default().await;
    let mut ws = Ws::connect(server.addr, "").await;
    ws.subscribe(json!({"topics": ["new/*", "exact/one"]}))
        .await;
    server.publish("other/x", &[("n", num(1.0))], &[]);
    server.publish("new/x/deep", &[("n", num(1.0))], &[]);
    server.publish("new/x", &[("n", num(1.0))], &[]);
    let f = ws.recv().await;
    assert_eq!(
        (f["type"].as_str(), f["topic"].as_str()),
        (Some("snapshot"), Some("new/x"))
    );
    server.publish("exact/one", &[("n", num(2.0))], &[]);
    let f = ws.recv().await;
    assert_eq!(
        (f["type"].as_str(), f["topic"].as_str()),
        (Some("snapshot"), Some("exact/one"))
    );
    server.publish("new/x", &[("n", num(3.0))], &[]);
    let f = ws.recv().await;
    assert_eq!(
        (f["topic"].as_str(), f["seq"].as_u64()),
        (Some("new/x"), Some(2))
    );
    ws.close().await;
}

#[tokio::test]
async fn field_subsets_and_a_rate_limited_subscription_end_in_the_right_state() {
    let server = TestServer::default().await;
    server.publish("f/a", &[("price", num(1.0)), ("qty", num(1.0))], &[]);
    let mut ws = Ws::connect(server.addr, "").await;
    ws.subscribe(json!({"topics": ["f/a"], "fields": ["price"]}))
        .await;
    assert_eq!(ws.recv().await["state"], json!({"price":1.0}));
    server.publish("f/a", &[("qty", num(2.0))], &[]);
    server.publish("f/a", &[("price", num(3.0)), ("qty", num(3.0))], &[]);
    let f = ws.recv().await;
    assert_eq!(
        (f["delta"].clone(), f["seq"].as_u64()),
        (json!({"price":3.0}), Some(3))
    );
    ws.close().await;

    // Under a rate limit, 1000 rapid updates end in exactly the hub's state.
    // (Conflation alone would merge them too, so this cannot show the limit is
    // kept: `client_tests::max_rate_holds_updates_until_the_interval_has_passed`
    // drives the client with explicit instants for that.)
    let mut ws = Ws::connect(server.addr, "").await;
    ws.subscribe(json!({"topics": ["f/a"], "max_rate_hz": 2.0}))
        .await;
    let mut applied = Applied::default();
    applied.apply(&ws.recv().await);
    for i in 0..1000 {
        server.publish("f/a", &[("price", num(i as f64))], &[]);
    }
    let last = server.hub.snapshot("f/a").unwrap().0.seq;
    let mut frames = 0;
    while applied.seq("f/a") < last {
        applied.apply(&ws.recv().await);
        frames += 1;
    }
    assert!(frames < 1000, "{frames} frames for 1000 updates");
    assert_eq!(applied.state("f/a"), server.state_json("f/a"));
    ws.close().await;
}

#[tokio::test]
async fn connections_over_the_limit_are_refused_with_503() {
    let cfg = ServerConfig {
        max_connections: 2,
        ..config()
    };
    let server = TestServer::start(cfg, HubConfig::default()).await;
    let a = Ws::connect(server.addr, "").await;
    let b = Ws::connect(server.addr, "").await;
    assert_eq!(ws_handshake_status(server.addr, "").await, Some(503));
    assert_eq!(http_get(server.addr, "/sse?topics=a").await.0, 503);
    a.close().await;
    server
        .eventually("a slot frees up", |s| {
            s.state.metrics().connections_active == 1
        })
        .await;
    let c = Ws::connect(server.addr, "").await;
    assert_eq!(server.state.metrics().connections_refused, 2);
    b.close().await;
    c.close().await;
}

#[tokio::test]
async fn a_topic_resumed_before_it_exists_arrives_marked_not_recovered() {
    let server = TestServer::default().await;
    let mut ws = Ws::connect(server.addr, "").await;
    let reply = ws
        .subscribe(
            json!({"topics": ["late/*"], "since": {"late/a": {"epoch": "gone-1", "seq": 7}}}),
        )
        .await;
    assert_eq!(reply["recovered"], json!({"late/a": false}));
    server.publish("late/a", &[("n", num(1.0))], &[]);
    server.publish("late/b", &[("n", num(1.0))], &[]);
    let a = ws.recv().await;
    assert_eq!(
        (&a["type"], &a["topic"], &a["recovered"]),
        (&json!("snapshot"), &json!("late/a"), &json!(false))
    );
    let b = ws.recv().await;
    assert_eq!(
        (&b["type"], &b["topic"]),
        (&json!("snapshot"), &json!("late/b"))
    );
    assert!(b.get("recovered").is_none(), "not asked to resume: {b}");
    ws.close().await;
}
