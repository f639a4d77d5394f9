//! Subscriber tokens through the real binary: a host with `[auth]` refuses
//! subscribers without a valid token on every topic endpoint, serves a token's
//! topics (REST, WebSocket, `wasmeter tail --token`), keeps the metric history
//! for tokens that grant every topic, counts refusals in /metrics, and a key
//! that cannot be used fails the start naming the key.

mod support;

use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{EncodingKey, Header, encode};
use serde_json::{Value, json};
use support::{Host, WAIT, csv_config, http_request, run_wasmeter};

const SECRET: &str = "an end-to-end test secret, 32+ bytes";

fn token(topics: &[&str]) -> String {
    let exp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    encode(
        &Header::default(),
        &json!({"sub": "tests", "exp": exp, "topics": topics}),
        &EncodingKey::from_secret(SECRET.as_bytes()).unwrap(),
    )
    .unwrap()
}

fn auth_config() -> String {
    csv_config(
        r#"
[auth]
hmac_secret_file = "token-secret"
"#,
    )
}

/// GET with a bearer token: status and JSON body.
async fn get(host: &Host, path: &str, token: Option<&str>) -> (u16, Value) {
    let header = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = header
        .as_deref()
        .map(|h| vec![("Authorization", h)])
        .unwrap_or_default();
    let (status, _, body) = http_request(&host.addr, "GET", path, &headers, b"").await;
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_host_with_tokens_serves_each_token_its_topics_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    // With a trailing newline, as `openssl rand -base64 33 > file` writes it.
    std::fs::write(dir.path().join("token-secret"), format!("{SECRET}\n")).unwrap();
    let host = Host::start(dir.path(), &auth_config());
    host.append("trades.csv", "BTC,100,1\nETH,10,2\n");
    let trades = token(&["trades/*"]);
    let all = token(&["**"]);
    // Wait for both topics through the API, with a token that reads them.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, body) = get(&host, "/api/topics", Some(&all)).await;
        assert_eq!(status, 200, "{body}");
        if body["topics"].as_array().unwrap().len() >= 2 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no topics: {body}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    let (status, body) = get(&host, "/api/topics/trades/BTC", None).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], "unauthorized");
    let (status, body) = get(&host, "/api/topics/trades/BTC", Some(&trades)).await;
    assert_eq!(
        (status, &body["state"]["price"]),
        (200, &json!(100.0)),
        "{body}"
    );
    let (status, _) = get(&host, "/api/topics/trades/ETH/history", Some(&trades)).await;
    assert_eq!(status, 200);
    // A token for other topics.
    let (status, body) = get(&host, "/api/topics/trades/BTC", Some(&token(&["system/*"]))).await;
    assert_eq!(status, 403, "{body}");

    // The metric history spans every topic: it needs `**`.
    let series = "/api/v1/series?match[]=trade_price";
    assert_eq!(get(&host, series, None).await.0, 401);
    let (status, body) = get(&host, series, Some(&trades)).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("**"),
        "{body}"
    );
    assert_eq!(get(&host, series, Some(&all)).await.0, 200);

    // `wasmeter tail`: refused without a token (it exits, saying why), served with one.
    let refused = Command::new(env!("CARGO_BIN_EXE_wasmeter"))
        .args(["tail", "trades/*", "--json", "--url"])
        .arg(format!("ws://{}/ws", host.addr))
        .env_remove("WASMETER_TOKEN")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("401") && stderr.contains("requires a token"),
        "{stderr}"
    );
    let mut tail = Command::new(env!("CARGO_BIN_EXE_wasmeter"))
        .args(["tail", "trades/*", "--json", "--url"])
        .arg(format!("ws://{}/ws", host.addr))
        .env("WASMETER_TOKEN", &trades)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = tail.stdout.take().unwrap();
    let first = std::thread::spawn(move || {
        use std::io::BufRead;
        std::io::BufReader::new(stdout).lines().next()
    });
    let line = first.join().unwrap().expect("tail printed").unwrap();
    let _ = tail.kill();
    let _ = tail.wait();
    let msg: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(msg["type"], "snapshot", "{msg}");

    // Every refusal above was counted.
    assert!(
        host.metric("wasmeter_server_unauthorized_requests_total", "")
            .await
            >= Some(3.0)
    );
    assert!(
        host.metric("wasmeter_server_forbidden_requests_total", "")
            .await
            >= Some(2.0)
    );
    host.stop();
}

#[test]
fn a_key_that_cannot_be_used_fails_the_start_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("wasmeter.toml");
    std::fs::write(&config_path, auth_config()).unwrap();
    // Missing file.
    let (ok, out) = run_wasmeter(&["check-config".into(), config_path.clone().into()]);
    assert!(!ok);
    assert!(
        out.contains("auth.hmac_secret_file") && out.contains("token-secret"),
        "{out}"
    );
    // Too short.
    std::fs::write(dir.path().join("token-secret"), "short\n").unwrap();
    let (ok, out) = run_wasmeter(&["check-config".into(), config_path.into()]);
    assert!(!ok);
    assert!(
        out.contains("auth.hmac_secret_file") && out.contains("32"),
        "{out}"
    );
}
