//! The compact envelope: positional data frames, negotiated per WebSocket
//! connection by query or subprotocol; default connections unchanged.

use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};
use wasmeter_hub::HubConfig;

use crate::support::*;

const TS: i64 = 1_700_000_000_000;

/// Connects to `/ws{query}`, offering `protocol`; returns the client and the
/// subprotocol the server selected.
async fn connect(
    addr: std::net::SocketAddr,
    query: &str,
    protocol: Option<&str>,
) -> (Ws, Option<String>) {
    let mut req = format!("ws://{addr}/ws{query}")
        .into_client_request()
        .unwrap();
    if let Some(p) = protocol {
        req.headers_mut()
            .insert("sec-websocket-protocol", p.parse().unwrap());
    }
    let (inner, resp) = tokio_tungstenite::connect_async(req).await.unwrap();
    let selected = resp
        .headers()
        .get("sec-websocket-protocol")
        .map(|v| v.to_str().unwrap().to_string());
    let ws = Ws {
        inner,
        auto_pong: true,
    };
    (ws, selected)
}

/// The next frame other than the server's `ping`, decoded, and whether it came
/// as a binary (MessagePack) frame.
async fn frame(ws: &mut Ws) -> (bool, Value) {
    loop {
        let (binary, v): (bool, Value) = match ws.recv_raw().await {
            Message::Text(t) => (false, serde_json::from_str(t.as_str()).unwrap()),
            Message::Binary(b) => (true, rmp_serde::from_slice(&b).unwrap()),
            _ => continue,
        };
        if v["type"] == "ping" {
            ws.send(json!({"type": "pong"})).await;
            continue;
        }
        return (binary, v);
    }
}

fn trade(price: f64) -> [(&'static str, wasmeter_core::field::FieldValue); 2] {
    [("price", num(price)), ("side", text("buy"))]
}

#[tokio::test]
async fn compact_frames_for_snapshot_update_and_event_in_both_formats() {
    let cases = [
        ("?envelope=compact", None, false),
        ("?format=msgpack&envelope=compact", None, true),
        ("", Some("wasmeter.v1.compact.json"), false),
        ("", Some("wasmeter.v1.compact.msgpack"), true),
    ];
    for (query, protocol, binary) in cases {
        let case = format!("{query} {protocol:?}");
        let server = TestServer::default().await;
        let p0 = server.publish("c/a", &[("price", num(1.0)), ("side", text("buy"))], &[]);
        server.publish_event("tape/X", &trade(5.0));
        let (mut ws, selected) = connect(server.addr, query, protocol).await;
        let expected_protocol = match (query, protocol) {
            ("", Some(p)) => Some(p.to_string()),
            _ => None,
        };
        assert_eq!(selected, expected_protocol, "{case}");

        let reply = ws.subscribe(json!({"id": 1, "topics": ["c/a"]})).await;
        assert_eq!(
            reply["topics"],
            json!(["c/a"]),
            "control frames stay maps: {case}"
        );
        let snap = frame(&mut ws).await;
        assert_eq!(
            snap,
            (
                binary,
                json!([0, "c/a", p0.epoch, p0.seq, TS, {"price": 1.0, "side": "buy"}])
            ),
            "{case}"
        );
        let p1 = server.publish("c/a", &[("price", num(2.0))], &["side"]);
        assert_eq!(
            frame(&mut ws).await,
            (
                binary,
                json!([1, "c/a", p1.seq, TS, {"side": null, "price": 2.0}])
            ),
            "{case}"
        );

        ws.subscribe(json!({"topics": ["tape/X"]})).await;
        let (_, snap) = frame(&mut ws).await;
        assert_eq!(
            snap,
            json!([0, "tape/X", snap[2], 1, TS, {"price": 5.0, "side": "buy"}, {"stream": true}]),
            "{case}"
        );
        let e = server.publish_event("tape/X", &trade(6.0));
        assert_eq!(
            frame(&mut ws).await,
            (
                binary,
                json!([2, "tape/X", e.seq, TS, {"price": 6.0, "side": "buy"}])
            ),
            "{case}"
        );
        ws.close().await;
    }
}

#[tokio::test]
async fn the_first_event_of_a_stream_names_its_epoch() {
    let server = TestServer::default().await;
    let (mut ws, _) = connect(server.addr, "?envelope=compact", None).await;
    ws.subscribe(json!({"topics": ["tape/**"]})).await;
    let first = server.publish_event("tape/NEW", &trade(1.0));
    let second = server.publish_event("tape/NEW", &trade(2.0));
    // Created after subscribing: no snapshot, so the first event says the epoch.
    assert_eq!(
        frame(&mut ws).await.1,
        json!([2, "tape/NEW", 1, TS, {"price": 1.0, "side": "buy"}, first.epoch])
    );
    assert_eq!(
        frame(&mut ws).await.1,
        json!([2, "tape/NEW", second.seq, TS, {"price": 2.0, "side": "buy"}])
    );
    ws.close().await;
}

#[tokio::test]
async fn resume_with_since_replays_compact_updates_or_says_it_could_not() {
    let server = TestServer::start(
        config(),
        HubConfig {
            history_per_topic: 8,
            ..Default::default()
        },
    )
    .await;
    server.publish("r/a", &[("n", num(0.0))], &[]);
    let (mut ws, _) = connect(server.addr, "?format=msgpack&envelope=compact", None).await;
    ws.subscribe(json!({"topics": ["r/a"]})).await;
    let (_, snap) = frame(&mut ws).await;
    let epoch = snap[2].clone();
    let mut state = snap[5].as_object().unwrap().clone();
    let p = server.publish("r/a", &[("n", num(1.0)), ("k", num(1.0))], &[]);
    let (_, up) = frame(&mut ws).await;
    assert_eq!(up[2], p.seq);
    ws.close().await;

    for i in 2..=5 {
        server.publish("r/a", &[("n", num(i as f64))], &["k"]);
    }
    let (mut ws, _) = connect(server.addr, "?format=msgpack&envelope=compact", None).await;
    let since = json!({"r/a": {"epoch": epoch, "seq": p.seq}});
    let reply = ws
        .subscribe(json!({"topics": ["r/a"], "since": since}))
        .await;
    assert_eq!(reply["recovered"], json!({"r/a": true}));
    for seq in p.seq + 1..=p.seq + 4 {
        let (_, up) = frame(&mut ws).await;
        assert_eq!(
            (&up[0], &up[1], &up[2]),
            (&json!(1), &json!("r/a"), &json!(seq)),
            "{up}"
        );
        for (k, v) in up[4].as_object().unwrap() {
            match v {
                Value::Null => state.remove(k),
                v => state.insert(k.clone(), v.clone()),
            };
        }
    }
    assert_eq!(Value::Object(state), server.state_json("r/a"));
    ws.close().await;

    // A position the history no longer reaches: a snapshot marked unrecovered.
    for i in 6..=20 {
        server.publish("r/a", &[("n", num(i as f64))], &[]);
    }
    let (mut ws, _) = connect(server.addr, "?envelope=compact", None).await;
    let reply = ws
        .subscribe(json!({"topics": ["r/a"], "since": since}))
        .await;
    assert_eq!(reply["recovered"], json!({"r/a": false}));
    let (_, snap) = frame(&mut ws).await;
    assert_eq!(
        snap,
        json!([0, "r/a", epoch, 21, TS, server.state_json("r/a"), {"recovered": false}])
    );
    ws.close().await;
}

#[tokio::test]
async fn default_connections_get_the_same_map_frames_beside_compact_ones() {
    let server = TestServer::default().await;
    let p0 = server.publish("d/a", &[("v", num(1.0))], &[]);
    let (mut compact, _) = connect(server.addr, "?envelope=compact", None).await;
    compact.subscribe(json!({"topics": ["d/a"]})).await;
    frame(&mut compact).await;
    let mut plain = Vec::new();
    for (query, protocol) in [
        ("", None),
        ("", Some("wasmeter.v1.json")),
        ("?envelope=map", None),
    ] {
        let (mut ws, selected) = connect(server.addr, query, protocol).await;
        assert_eq!(selected.as_deref(), protocol);
        ws.subscribe(json!({"topics": ["d/a"]})).await;
        frame(&mut ws).await;
        plain.push(ws);
    }
    let p1 = server.publish("d/a", &[("v", num(2.0))], &[]);
    let expected = format!(
        r#"{{"type":"update","topic":"d/a","epoch":"{}","seq":{},"ts":{TS},"delta":{{"v":2.0}}}}"#,
        p0.epoch, p1.seq
    );
    for ws in &mut plain {
        let Message::Text(t) = ws.recv_raw().await else {
            panic!("expected a text frame")
        };
        assert_eq!(t.as_str(), expected);
    }
    assert_eq!(
        frame(&mut compact).await.1,
        json!([1, "d/a", p1.seq, TS, {"v": 2.0}])
    );
    for ws in plain {
        ws.close().await;
    }
    compact.close().await;
}

#[tokio::test]
async fn an_unknown_envelope_is_refused_naming_it() {
    let server = TestServer::default().await;
    let url = format!("ws://{}/ws?envelope=tiny", server.addr);
    let Err(tungstenite::Error::Http(resp)) = tokio_tungstenite::connect_async(url).await else {
        panic!("the handshake should be refused")
    };
    assert_eq!(resp.status().as_u16(), 400);
    let body = String::from_utf8(resp.body().clone().unwrap_or_default()).unwrap();
    assert!(
        body.contains("query parameter envelope: `tiny` is not `map` or `compact`"),
        "{body}"
    );

    let (status, body) = http_get(server.addr, "/sse?topics=a&envelope=compact").await;
    assert_eq!(status, 400);
    assert!(body.contains("envelope: `compact` is not `map`"), "{body}");
    let mut sse = Sse::connect(server.addr, "/sse?topics=a&envelope=map", None).await;
    assert_eq!(sse.status, 200);
    assert_eq!(sse.next().await.unwrap().event, "subscribed");
}

#[tokio::test]
async fn compact_frames_are_smaller_than_map_frames() {
    let server = TestServer::default().await;
    server.publish("s/a", &[("v", num(1.0))], &[]);
    let mut sizes = Vec::new();
    for query in ["?format=msgpack", "?format=msgpack&envelope=compact"] {
        let (mut ws, _) = connect(server.addr, query, None).await;
        ws.subscribe(json!({"topics": ["s/a"]})).await;
        frame(&mut ws).await;
        sizes.push(ws);
    }
    server.publish("s/a", &[("v", num(2.0))], &[]);
    let mut lens = Vec::new();
    for mut ws in sizes {
        let Message::Binary(b) = ws.recv_raw().await else {
            panic!("expected a binary frame")
        };
        lens.push(b.len());
        ws.close().await;
    }
    // The map frame spends its keys, its type name and the epoch on every update.
    assert!(lens[1] + 30 < lens[0], "{lens:?}");
}
