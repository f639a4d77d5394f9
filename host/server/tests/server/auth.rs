//! Subscriber tokens over real HTTP, WebSocket and SSE: requests without a token,
//! with an expired, forged or foreign-key token are refused (401, naming why); a
//! token's topics bound what a connection may subscribe to and what REST shows
//! (403 / `forbidden`); a connection is closed (4004) when its token expires, and
//! lives on after a `refresh`; anonymous access only where configured; RS256 and
//! ES256 tokens verify with public keys.
//!
//! The keys under `keys/` were generated for these tests only.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};
use wasmeter_hub::HubConfig;
use wasmeter_server::{AuthSettings, Authenticator};

use crate::support::{Sse, TestServer, Ws, config, http_get, num, ws_handshake_status};

const SECRET: &[u8] = b"a test secret of at least 32 bytes!";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn hs256(claims: Value) -> String {
    encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(SECRET).unwrap(),
    )
    .unwrap()
}

/// A token for `topics`, valid for `secs`.
fn token(sub: &str, topics: &[&str], secs: u64) -> String {
    hs256(json!({"sub": sub, "exp": now() + secs, "topics": topics}))
}

fn settings() -> AuthSettings {
    AuthSettings {
        hmac_secret: Some(SECRET.to_vec()),
        ..AuthSettings::default()
    }
}

async fn server(settings: AuthSettings) -> TestServer {
    let auth = Authenticator::new(settings).unwrap();
    let s = TestServer::start_with_auth(config(), HubConfig::default(), Some(auth)).await;
    s.publish("trades/BTC", &[("price", num(1.0))], &[]);
    s.publish("system/cpu", &[("load", num(0.5))], &[]);
    s.publish("public/news", &[("n", num(1.0))], &[]);
    s
}

fn error_message(body: &str) -> (String, String) {
    let v: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {body}"));
    (
        v["error"]["code"].as_str().unwrap().to_string(),
        v["error"]["message"].as_str().unwrap().to_string(),
    )
}

#[tokio::test]
async fn requests_without_a_valid_token_are_refused_and_told_why() {
    let s = server(settings()).await;
    // No token at all, on every subscriber endpoint.
    assert_eq!(ws_handshake_status(s.addr, "").await, Some(401));
    let (status, body) = http_get(s.addr, "/api/topics").await;
    assert_eq!(status, 401);
    let (code, message) = error_message(&body);
    assert_eq!(code, "unauthorized");
    assert!(message.contains("requires a token"), "{message}");
    let (status, _) = http_get(s.addr, "/api/topics/trades/BTC").await;
    assert_eq!(status, 401);
    assert_eq!(
        Sse::connect(s.addr, "/sse?topics=trades/*", None)
            .await
            .status,
        401
    );

    let expired = hs256(json!({"exp": now() - 120, "topics": ["**"]}));
    let forged = encode(
        &Header::default(),
        &json!({"exp": now() + 60, "topics": ["**"]}),
        &EncodingKey::from_secret(b"someone else's secret, 32 bytes long").unwrap(),
    )
    .unwrap();
    let no_topics = hs256(json!({"exp": now() + 60}));
    for (t, why) in [
        (expired, "expired"),
        (forged, "signature"),
        (no_topics, "topics"),
        ("garbage".to_string(), "not a JWT"),
    ] {
        assert_eq!(
            ws_handshake_status(s.addr, &format!("?token={t}")).await,
            Some(401),
            "{why}"
        );
        let (status, body) = http_get(s.addr, &format!("/api/topics?token={t}")).await;
        assert_eq!(status, 401, "{why}");
        let (_, message) = error_message(&body);
        assert!(message.contains(why), "{message} should say {why}");
    }
    assert!(s.state.metrics().unauthorized >= 12);
}

#[tokio::test]
async fn a_token_bounds_what_a_connection_may_read() {
    let s = server(settings()).await;
    let t = token("bot", &["trades/*"], 3600);
    let mut ws = Ws::connect(s.addr, &format!("?token={t}")).await;
    // Outside the grant, or wider than it: refused, naming the pattern and the
    // grant, and nothing changes.
    for pattern in ["system/*", "trades/**", "**"] {
        ws.send(json!({"type": "subscribe", "id": 1, "topics": ["trades/BTC", pattern]}))
            .await;
        let e = ws.recv().await;
        assert_eq!(e["type"], "error", "{e}");
        assert_eq!(e["code"], "forbidden", "{e}");
        let message = e["message"].as_str().unwrap();
        assert!(
            message.contains(pattern) && message.contains("trades/*"),
            "{message}"
        );
    }
    // Inside it: served.
    ws.subscribe(json!({"topics": ["trades/*"]})).await;
    let snap = ws.recv().await;
    assert_eq!(
        (snap["type"].as_str(), snap["topic"].as_str()),
        (Some("snapshot"), Some("trades/BTC"))
    );
    s.publish("trades/BTC", &[("price", num(2.0))], &[]);
    let update = ws.recv().await;
    assert_eq!(update["delta"]["price"], 2.0, "{update}");
    assert_eq!(s.state.metrics().forbidden, 3);

    // REST: only granted topics are listed or read, with the token in a header
    // or in the query.
    let (status, body) = http_get(s.addr, &format!("/api/topics?token={t}")).await;
    assert_eq!(status, 200);
    let listed: Vec<String> = serde_json::from_str::<Value>(&body).unwrap()["topics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(listed, ["trades/BTC"]);
    let (status, _) = http_get(s.addr, &format!("/api/topics/trades/BTC?token={t}")).await;
    assert_eq!(status, 200);
    for path in ["/api/topics/system/cpu", "/api/topics/system/cpu/history"] {
        let (status, body) = http_get(s.addr, &format!("{path}?token={t}")).await;
        assert_eq!(status, 403, "{path}");
        let (code, message) = error_message(&body);
        assert_eq!(code, "forbidden");
        assert!(message.contains("system/cpu"), "{message}");
    }
    let header = crate::support::http_get_with(
        s.addr,
        "/api/topics/trades/BTC",
        &[("Authorization", format!("Bearer {t}"))],
    )
    .await;
    assert_eq!(header.0, 200, "{}", header.1);
    // SSE: a pattern outside the grant is refused before the stream starts.
    assert_eq!(
        Sse::connect(s.addr, &format!("/sse?topics=system/*&token={t}"), None)
            .await
            .status,
        403
    );
    let mut sse = Sse::connect(s.addr, &format!("/sse?topics=trades/*&token={t}"), None).await;
    assert_eq!(sse.status, 200);
    assert_eq!(sse.next().await.unwrap().event, "subscribed");
    assert_eq!(sse.next().await.unwrap().data["topic"], "trades/BTC");
}

/// Waits until the wall clock has passed Unix second `exp` (the condition
/// itself is time: a token's expiry).
async fn until_past(exp: u64) {
    while now() <= exp {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_connection_ends_when_its_token_expires_unless_refreshed() {
    let s = server(settings()).await;
    let exp = now() + 2;
    let short = hs256(json!({"sub": "bot", "exp": exp, "topics": ["trades/*"]}));

    // Not refreshed: closed with 4004 at the expiry.
    let mut lapsing = Ws::connect(s.addr, &format!("?token={short}")).await;
    lapsing.subscribe(json!({"topics": ["trades/*"]})).await;
    // Refreshed before the expiry: the new token's expiry holds.
    let mut refreshed = Ws::connect(s.addr, &format!("?token={short}")).await;
    refreshed.subscribe(json!({"topics": ["trades/*"]})).await;
    assert_eq!(refreshed.recv().await["type"], "snapshot");
    // Refusals first: another subject, a grant without a held pattern, garbage.
    // The old token stays in force.
    for (t, code) in [
        (token("someone-else", &["trades/*"], 3600), "unauthorized"),
        (token("bot", &["system/*"], 3600), "forbidden"),
        ("garbage".to_string(), "unauthorized"),
    ] {
        refreshed
            .send(json!({"type": "refresh", "id": 5, "token": t}))
            .await;
        let e = refreshed.recv().await;
        assert_eq!(
            (e["type"].as_str(), e["code"].as_str()),
            (Some("error"), Some(code)),
            "{e}"
        );
    }
    let longer = hs256(json!({"sub": "bot", "exp": exp + 3600, "topics": ["trades/*"]}));
    refreshed
        .send(json!({"type": "refresh", "id": 6, "token": longer}))
        .await;
    let reply = refreshed.recv().await;
    assert_eq!(reply["type"], "refreshed", "{reply}");
    assert_eq!(reply["id"], 6);
    assert_eq!(reply["expires_at"], (exp + 3600) * 1000);

    assert_eq!(lapsing.close_code().await, Some(4004));
    assert_eq!(s.state.metrics().token_expiries, 1);
    until_past(exp).await;
    s.publish("trades/BTC", &[("price", num(3.0))], &[]);
    loop {
        let f = refreshed.recv().await;
        if f["type"] == "update" {
            assert_eq!(f["delta"]["price"], 3.0);
            break;
        }
    }
}

#[tokio::test]
async fn an_sse_stream_ends_with_an_event_when_its_token_expires() {
    let s = server(settings()).await;
    let short = hs256(json!({"exp": now() + 1, "topics": ["trades/*"]}));
    let mut sse = Sse::connect(s.addr, &format!("/sse?topics=trades/*&token={short}"), None).await;
    assert_eq!(sse.status, 200);
    assert_eq!(sse.next().await.unwrap().event, "subscribed");
    assert_eq!(sse.next().await.unwrap().event, "snapshot");
    let last = sse.next().await.unwrap();
    assert_eq!(last.event, "error");
    assert_eq!(last.data["code"], "token_expired");
    assert!(sse.next().await.is_none(), "the stream should end");
}

#[tokio::test]
async fn anonymous_access_reaches_only_the_configured_topics() {
    let s = server(AuthSettings {
        anonymous_topics: vec!["public/**".into()],
        ..settings()
    })
    .await;
    let mut ws = Ws::connect(s.addr, "").await;
    ws.subscribe(json!({"topics": ["public/**"]})).await;
    assert_eq!(ws.recv().await["topic"], "public/news");
    ws.send(json!({"type": "subscribe", "topics": ["trades/*"]}))
        .await;
    assert_eq!(ws.recv().await["code"], "forbidden");
    let (status, _) = http_get(s.addr, "/api/topics/trades/BTC").await;
    assert_eq!(status, 403);
    // A token, when given, is checked: a bad one is not downgraded to anonymous.
    assert_eq!(
        ws_handshake_status(s.addr, "?token=garbage").await,
        Some(401)
    );
    let t = token("bot", &["trades/*"], 60);
    let (status, _) = http_get(s.addr, &format!("/api/topics/trades/BTC?token={t}")).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn rsa_and_ecdsa_tokens_verify_with_public_keys() {
    let keys = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/server/keys");
    let read = |f: &str| std::fs::read(keys.join(f)).unwrap();
    let s = server(AuthSettings {
        hmac_secret: None,
        rsa_public_key_pem: Some(read("rsa_public.pem")),
        ecdsa_public_key_pem: Some(read("ec_public.pem")),
        ..AuthSettings::default()
    })
    .await;
    let claims = json!({"exp": now() + 60, "topics": ["trades/*"]});
    let rs = encode(
        &Header::new(Algorithm::RS256),
        &claims,
        &EncodingKey::from_rsa_pem(&read("rsa_private.pem")).unwrap(),
    )
    .unwrap();
    let es = encode(
        &Header::new(Algorithm::ES256),
        &claims,
        &EncodingKey::from_ec_pem(&read("ec_private.pem")).unwrap(),
    )
    .unwrap();
    for t in [rs, es] {
        let (status, body) = http_get(s.addr, &format!("/api/topics/trades/BTC?token={t}")).await;
        assert_eq!(status, 200, "{body}");
    }
    // An HMAC token on a host with no HMAC secret.
    let (status, body) = http_get(
        s.addr,
        &format!("/api/topics?token={}", token("x", &["**"], 60)),
    )
    .await;
    assert_eq!(status, 401);
    assert!(error_message(&body).1.contains("no HMAC key"), "{body}");
}
