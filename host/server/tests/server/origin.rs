//! The `Origin` check and CORS over real HTTP and WebSocket handshakes: a page of
//! an origin that is neither the host's own nor listed is refused (403, a JSON
//! error naming it) on `/ws`, `/sse` and the REST API; a listed origin is served
//! with CORS headers and its preflight answered; the host's own pages and clients
//! without `Origin` are served as before.

use std::net::SocketAddr;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use wasmeter_hub::HubConfig;
use wasmeter_server::ServerConfig;

use crate::support::{TestServer, WAIT, config, num};

const ALLOWED: &str = "http://dash.example:3000";

async fn server() -> TestServer {
    let config = ServerConfig {
        allowed_origins: vec![ALLOWED.to_string()],
        ..config()
    };
    let s = TestServer::start(config, HubConfig::default()).await;
    s.publish("trades/BTC", &[("price", num(1.0))], &[]);
    s
}

/// One HTTP/1.0 request with `headers`: the status, the response head (lower
/// case) and the body.
async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
) -> (u16, String, String) {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let mut text = format!("{method} {path} HTTP/1.0\r\nHost: {addr}\r\n");
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    tcp.write_all(text.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    // An SSE stream does not end: read what comes within a short bound.
    let _ = tokio::time::timeout(
        std::time::Duration::from_millis(500),
        tcp.read_to_end(&mut raw),
    )
    .await;
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head.to_ascii_lowercase(), body.to_string())
}

/// A WebSocket handshake with `origin`: `Ok` if it was accepted, else the HTTP
/// status and body of the refusal.
async fn ws_handshake(addr: SocketAddr, origin: Option<&str>) -> Result<(), (u16, String)> {
    let mut req = format!("ws://{addr}/ws").into_client_request().unwrap();
    if let Some(o) = origin {
        req.headers_mut().insert("origin", o.parse().unwrap());
    }
    match tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(req))
        .await
        .unwrap()
    {
        Ok(_) => Ok(()),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            let body = resp
                .body()
                .clone()
                .map(|b| String::from_utf8_lossy(&b).into_owned());
            Err((resp.status().as_u16(), body.unwrap_or_default()))
        }
        Err(e) => panic!("handshake failed otherwise: {e}"),
    }
}

#[tokio::test]
async fn a_foreign_page_is_refused_on_every_route_and_named() {
    let s = server().await;
    let evil = "http://evil.example".to_string();
    let (status, body) = ws_handshake(s.addr, Some(&evil)).await.unwrap_err();
    assert_eq!(status, 403);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"]["code"], "origin_not_allowed");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("http://evil.example") && message.contains("allowed_origins"),
        "{message}"
    );
    for path in [
        "/sse?topics=trades/*",
        "/api/topics",
        "/api/topics/trades/BTC",
    ] {
        let (status, head, body) = request(s.addr, "GET", path, &[("Origin", evil.clone())]).await;
        assert_eq!(status, 403, "{path}: {head}{body}");
        assert!(
            !head.contains("access-control-allow-origin"),
            "{path}: {head}"
        );
        assert!(body.contains("origin_not_allowed"), "{path}: {body}");
    }
    // Another port of the host's own name is another origin.
    let other_port = format!("http://{}:1", s.addr.ip());
    assert_eq!(
        ws_handshake(s.addr, Some(&other_port)).await.unwrap_err().0,
        403
    );
}

#[tokio::test]
async fn own_pages_listed_origins_and_originless_clients_are_served() {
    let s = server().await;
    ws_handshake(s.addr, None).await.unwrap();
    ws_handshake(s.addr, Some(&format!("http://{}", s.addr)))
        .await
        .unwrap();
    ws_handshake(s.addr, Some(ALLOWED)).await.unwrap();

    // A listed origin reads the REST API with CORS headers.
    let (status, head, body) = request(
        s.addr,
        "GET",
        "/api/topics/trades/BTC",
        &[("Origin", ALLOWED.to_string())],
    )
    .await;
    assert_eq!(status, 200, "{head}{body}");
    assert!(
        head.contains(&format!("access-control-allow-origin: {ALLOWED}")),
        "{head}"
    );
    assert!(head.contains("vary: origin"), "{head}");
    let state: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(state["state"], json!({"price": 1.0}));
    // Its preflight is answered.
    let (status, head, _) = request(
        s.addr,
        "OPTIONS",
        "/api/topics",
        &[
            ("Origin", ALLOWED.to_string()),
            ("Access-Control-Request-Method", "GET".to_string()),
            (
                "Access-Control-Request-Headers",
                "last-event-id".to_string(),
            ),
        ],
    )
    .await;
    assert_eq!(status, 204, "{head}");
    assert!(
        head.contains("access-control-allow-methods: get, post, options"),
        "{head}"
    );
    assert!(
        head.contains("access-control-allow-headers: last-event-id"),
        "{head}"
    );
    // Its EventSource gets the stream.
    let (status, head, body) = request(
        s.addr,
        "GET",
        "/sse?topics=trades/*",
        &[("Origin", ALLOWED.to_string())],
    )
    .await;
    assert_eq!(status, 200, "{head}");
    assert!(
        head.contains(&format!("access-control-allow-origin: {ALLOWED}")),
        "{head}"
    );
    assert!(body.contains("event: snapshot"), "{body}");
    // Without Origin, as before: no CORS headers.
    let (status, head, _) = request(s.addr, "GET", "/api/topics", &[]).await;
    assert_eq!(status, 200);
    assert!(!head.contains("access-control-allow-origin"), "{head}");
}
