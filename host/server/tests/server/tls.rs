//! TLS on the listener with certificates the test makes: HTTPS and `wss://`
//! serve as plain HTTP does; a reload switches new connections to a renewed
//! certificate; a reload from bad files keeps the current one and names the
//! file; a plain-text client or one that never finishes its handshake costs the
//! server nothing lasting.

use std::path::Path;
use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use rcgen::{CertifiedKey, generate_simple_self_signed};
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::tungstenite::Message;
use wasmeter_server::{ServerConfig, Tls};

use crate::support::{TestServer, WAIT, config, num};

/// A self-signed certificate for 127.0.0.1, written as PEM files under `dir`
/// with `name`; returns its DER.
fn make_cert(dir: &Path, name: &str) -> CertificateDer<'static> {
    let CertifiedKey { cert, signing_key } =
        generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap();
    std::fs::write(dir.join(format!("{name}.crt")), cert.pem()).unwrap();
    std::fs::write(dir.join(format!("{name}.key")), signing_key.serialize_pem()).unwrap();
    cert.der().clone()
}

/// Installs certificate `name` as the server's files `server.crt` / `server.key`.
fn install(dir: &Path, name: &str) {
    for ext in ["crt", "key"] {
        std::fs::copy(
            dir.join(format!("{name}.{ext}")),
            dir.join(format!("server.{ext}")),
        )
        .unwrap();
    }
}

/// A TLS connection that trusts `roots`; returns the stream and the
/// certificate the server presented.
async fn connect(
    addr: std::net::SocketAddr,
    roots: &[CertificateDer<'static>],
) -> (TlsStream<TcpStream>, CertificateDer<'static>) {
    let mut store = rustls::RootCertStore::empty();
    for root in roots {
        store.add(root.clone()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(store)
        .with_no_client_auth();
    let tcp = TcpStream::connect(addr).await.unwrap();
    let tls = tokio::time::timeout(
        WAIT,
        TlsConnector::from(Arc::new(config))
            .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp),
    )
    .await
    .unwrap()
    .expect("TLS handshake");
    let presented = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
    (tls, presented)
}

async fn https_get(stream: &mut TlsStream<TcpStream>, path: &str) -> (u16, String) {
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut raw = Vec::new();
    // The server closes after an HTTP/1.0 response; rustls may end without
    // close_notify, which is fine for a test.
    let _ = tokio::time::timeout(WAIT, stream.read_to_end(&mut raw)).await;
    let raw = String::from_utf8(raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    (head[9..12].parse().unwrap(), body.to_string())
}

#[tokio::test]
async fn https_and_wss_serve_and_a_reload_switches_new_connections_to_the_renewed_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let first = make_cert(dir.path(), "first");
    let second = make_cert(dir.path(), "second");
    install(dir.path(), "first");
    let tls = Tls::load(
        &dir.path().join("server.crt"),
        &dir.path().join("server.key"),
    )
    .unwrap();
    let s = TestServer::start_tls(config(), tls.clone()).await;
    s.publish("trades/BTC", &[("price", num(1.0))], &[]);

    let roots = [first.clone(), second.clone()];
    let (mut stream, presented) = connect(s.addr, &roots).await;
    assert_eq!(presented, first);
    let (status, body) = https_get(&mut stream, "/api/topics/trades/BTC").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"price\":1.0"), "{body}");

    // wss:// over an open TLS connection: subscribe, snapshot, update.
    let (stream, _) = connect(s.addr, &roots).await;
    let (mut ws, _) =
        tokio_tungstenite::client_async(format!("wss://127.0.0.1:{}/ws", s.addr.port()), stream)
            .await
            .unwrap();
    ws.send(Message::text(
        json!({"type":"subscribe","topics":["trades/*"]}).to_string(),
    ))
    .await
    .unwrap();
    let mut kinds = Vec::new();
    while kinds.len() < 2 {
        let m = tokio::time::timeout(WAIT, ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let Message::Text(t) = m {
            let v: serde_json::Value = serde_json::from_str(t.as_str()).unwrap();
            kinds.push(v["type"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(kinds, ["subscribed", "snapshot"]);

    // Renewed: new connections get the new certificate; the open WebSocket lives on.
    install(dir.path(), "second");
    tls.reload().unwrap();
    assert_eq!(connect(s.addr, &roots).await.1, second);
    s.publish("trades/BTC", &[("price", num(2.0))], &[]);
    loop {
        let m = tokio::time::timeout(WAIT, ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let Message::Text(t) = m
            && t.as_str().contains("\"update\"")
        {
            assert!(t.as_str().contains("2.0"), "{t}");
            break;
        }
    }

    // Bad files: refused, naming the file; the current certificate stays.
    std::fs::write(dir.path().join("server.key"), "not a key").unwrap();
    let error = tls.reload().unwrap_err();
    assert!(error.to_string().contains("server.key"), "{error}");
    install(dir.path(), "first");
    std::fs::copy(dir.path().join("second.key"), dir.path().join("server.key")).unwrap();
    let mismatch = tls.reload().unwrap_err();
    assert!(
        mismatch.to_string().contains("does not belong"),
        "{mismatch}"
    );
    assert_eq!(connect(s.addr, &roots).await.1, second);
}

#[tokio::test]
async fn clients_that_do_not_speak_tls_are_dropped_and_the_server_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let cert = make_cert(dir.path(), "server");
    let tls = Tls::load(
        &dir.path().join("server.crt"),
        &dir.path().join("server.key"),
    )
    .unwrap();
    let s = TestServer::start_tls(
        ServerConfig {
            header_read_timeout_ms: 300,
            ..config()
        },
        tls,
    )
    .await;
    // Plain HTTP on the TLS port: the handshake fails, the connection closes.
    let mut plain = TcpStream::connect(s.addr).await.unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.0\r\n\r\n")
        .await
        .unwrap();
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(WAIT, plain.read_to_end(&mut raw))
        .await
        .expect("closed");
    assert!(!String::from_utf8_lossy(&raw).contains("200 OK"));
    // A client that connects and says nothing is dropped after
    // header_read_timeout_ms, its slot given back.
    let mut silent = TcpStream::connect(s.addr).await.unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(WAIT, silent.read(&mut buf))
        .await
        .expect("the server closes a silent handshake");
    assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
    s.eventually("no plain HTTP connection held", |s| {
        s.state.metrics().http_connections_active == 0
    })
    .await;
    // And it still serves.
    let (mut stream, _) = connect(s.addr, &[cert]).await;
    assert_eq!(https_get(&mut stream, "/healthz").await.0, 200);
}

#[test]
fn unusable_files_are_refused_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    make_cert(dir.path(), "server");
    let missing =
        Tls::load(&dir.path().join("nope.crt"), &dir.path().join("server.key")).unwrap_err();
    assert!(missing.to_string().contains("nope.crt"), "{missing}");
    std::fs::write(dir.path().join("empty.crt"), "").unwrap();
    let empty = Tls::load(
        &dir.path().join("empty.crt"),
        &dir.path().join("server.key"),
    )
    .unwrap_err();
    assert!(empty.to_string().contains("no PEM certificate"), "{empty}");
}
