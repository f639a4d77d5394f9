//! Bad input over a real WebSocket: refused cheaply, with errors or close codes
//! that name the problem.

use serde_json::json;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use wasmeter_hub::HubConfig;
use wasmeter_server::{ServerConfig, close};

use crate::support::*;

#[tokio::test]
async fn a_text_frame_that_is_not_utf8_closes_with_1007() {
    let server = TestServer::default().await;
    let mut ws = Ws::connect(server.addr, "").await;
    let bad = Frame::message(vec![b'{', 0xff, 0xfe, b'}'], OpCode::Data(Data::Text), true);
    ws.send_raw(Message::Frame(bad)).await;
    assert_eq!(ws.close_code().await, Some(close::INVALID_PAYLOAD));
    server
        .eventually("counted as malformed and gone", |s| {
            let m = s.state.metrics();
            m.malformed_messages == 1 && m.connections_active == 0
        })
        .await;
}

#[tokio::test]
async fn a_subscribe_with_ten_thousand_patterns_gets_the_count_error() {
    let server = TestServer::default().await;
    server.publish("ok/a", &[("n", num(1.0))], &[]);
    let mut ws = Ws::connect(server.addr, "").await;
    // Each pattern is invalid: if patterns were parsed before counting, the reply
    // would name `topics[0]`. 10,000 of them fit in one 64 KiB frame.
    let topics: Vec<&str> = vec!["x y"; 10_000];
    let frame = json!({"type":"subscribe","id":7,"topics":topics}).to_string();
    assert!(frame.len() < ServerConfig::default().max_frame_bytes);
    ws.send_raw(Message::text(frame)).await;
    let err = ws.recv().await;
    assert_eq!(err["type"], "error");
    assert_eq!(err["id"], 7);
    assert_eq!(err["code"], "too_many_subscriptions");
    assert_eq!(
        err["message"],
        "subscribe.topics: 10000 patterns is more than the limit of 64 per connection (max_subscriptions)"
    );
    // Nothing changed and the connection works.
    ws.subscribe(json!({"topics": ["ok/a"]})).await;
    assert_eq!(ws.recv().await["type"], "snapshot");
    ws.close().await;
}

#[tokio::test]
async fn pings_between_invalid_messages_still_end_in_the_abuse_close() {
    let cfg = ServerConfig {
        max_consecutive_errors: 5,
        ..config()
    };
    let server = TestServer::start(cfg, HubConfig::default()).await;
    let mut ws = Ws::connect(server.addr, "").await;
    for i in 0..5 {
        ws.send_raw(Message::text("garbage")).await;
        if i < 4 {
            ws.send(json!({"type":"ping","id":i})).await;
        }
    }
    assert_eq!(ws.close_code().await, Some(close::ABUSIVE));
    server
        .eventually("abusive counted", |s| {
            s.state.metrics().abusive_disconnects == 1
        })
        .await;
}
