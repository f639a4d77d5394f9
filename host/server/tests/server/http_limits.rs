//! Plain HTTP connections: a count limit refused before reading, and a timeout
//! for request headers (upgrades included), while `/healthz` keeps answering.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wasmeter_hub::HubConfig;
use wasmeter_server::ServerConfig;

use crate::support::*;

/// Reads until the server closes the connection (a reset counts as closed).
async fn read_until_closed(tcp: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let read = tokio::time::timeout(WAIT, tcp.read_to_end(&mut got)).await;
    match read.expect("the server never closed the connection") {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("read failed: {e}"),
    }
    got
}

fn http_active(s: &TestServer) -> u64 {
    s.state.metrics().http_connections_active
}

#[tokio::test]
async fn connections_over_the_http_limit_get_503_and_are_counted() {
    let cfg = ServerConfig {
        max_http_connections: 2,
        header_read_timeout_ms: 60_000,
        ..config()
    };
    let server = TestServer::start(cfg, HubConfig::default()).await;
    server.publish("h/a", &[("n", num(1.0))], &[]);
    // Two idle connections hold both places.
    let a = TcpStream::connect(server.addr).await.unwrap();
    let _b = TcpStream::connect(server.addr).await.unwrap();
    server.eventually("two held", |s| http_active(s) == 2).await;

    let mut refused = TcpStream::connect(server.addr).await.unwrap();
    let reply = String::from_utf8(read_until_closed(&mut refused).await).unwrap();
    assert!(reply.starts_with("HTTP/1.1 503 "), "{reply}");
    assert!(
        reply.contains("limit of 2 plain HTTP connections (max_http_connections)"),
        "{reply}"
    );
    assert_eq!(server.state.metrics().http_connections_refused, 1);

    drop(a);
    server
        .eventually("a place is free", |s| http_active(s) == 1)
        .await;
    assert_eq!(http_get(server.addr, "/healthz").await.0, 200);
    server
        .eventually("health done", |s| http_active(s) == 1)
        .await;

    // Subscribers count against max_connections once they are subscribers, not
    // as plain HTTP: with one place taken by `_b`, both fit and health still answers.
    let ws = Ws::connect(server.addr, "").await;
    server.eventually("upgraded", |s| http_active(s) == 1).await;
    let mut sse = Sse::connect(server.addr, "/sse?topics=h/a", None).await;
    assert_eq!(sse.status, 200);
    assert_eq!(sse.next().await.unwrap().event, "subscribed");
    assert_eq!(http_active(&server), 1);
    assert_eq!(http_get(server.addr, "/healthz").await.0, 200);
    let m = server.state.metrics();
    assert_eq!((m.http_connections_refused, m.connections_active), (1, 2));
    ws.close().await;
}

#[tokio::test]
async fn a_request_head_over_64_kib_is_refused_with_431() {
    let server = TestServer::default().await;
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    let big = format!(
        "GET /healthz HTTP/1.1\r\nHost: test\r\nX-Big: {}\r\n\r\n",
        "a".repeat(100 * 1024)
    );
    // The server may stop reading (and close) before all of it is written.
    let _ = tcp.write_all(big.as_bytes()).await;
    let reply = String::from_utf8_lossy(&read_until_closed(&mut tcp).await).into_owned();
    assert!(reply.starts_with("HTTP/1.1 431 "), "{reply}");
    // A head under the limit is fine.
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    let ok = format!(
        "GET /healthz HTTP/1.0\r\nHost: test\r\nX-Big: {}\r\n\r\n",
        "a".repeat(32 * 1024)
    );
    tcp.write_all(ok.as_bytes()).await.unwrap();
    let reply = String::from_utf8_lossy(&read_until_closed(&mut tcp).await).into_owned();
    assert!(
        reply.starts_with("HTTP/1.0 200 ") || reply.starts_with("HTTP/1.1 200 "),
        "{reply}"
    );
}

#[tokio::test]
async fn half_sent_requests_and_upgrades_are_dropped_after_the_header_timeout() {
    let cfg = ServerConfig {
        header_read_timeout_ms: 3_000,
        ..config()
    };
    let server = TestServer::start(cfg, HubConfig::default()).await;
    let half_request = "GET /healthz HTTP/1.1\r\nHost: test\r\n";
    let half_upgrade = "GET /ws HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\n\
                        Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n";
    let mut held = Vec::new();
    for sent in [half_request, half_upgrade, "GET /api/top", ""] {
        let mut tcp = TcpStream::connect(server.addr).await.unwrap();
        tcp.write_all(sent.as_bytes()).await.unwrap();
        held.push(tcp);
    }
    server.eventually("all held", |s| http_active(s) == 4).await;
    // Meanwhile the server answers.
    assert_eq!(http_get(server.addr, "/healthz").await.0, 200);
    for tcp in &mut held {
        let reply = read_until_closed(tcp).await;
        let reply = String::from_utf8_lossy(&reply);
        assert!(!reply.contains(" 200 "), "{reply}");
    }
    server.eventually("all gone", |s| http_active(s) == 0).await;
    assert_eq!(server.state.metrics().connections_total, 0);
}
