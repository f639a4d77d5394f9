//! REST topic state and health probes.

use serde_json::{Value, json};
use wasmeter_hub::HubConfig;

use crate::support::*;

#[tokio::test]
async fn topics_can_be_listed_and_read() {
    let server = TestServer::default().await;
    server.publish("r/b", &[("n", num(1.0))], &[]);
    let pos = server.publish("r/a", &[("x", text("y")), ("f", num(2.5))], &[]);

    let (status, body) = http_get(server.addr, "/api/topics").await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    let names: Vec<&str> = v["topics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["r/a", "r/b"]);
    assert_eq!(v["topics"][0]["fields"], 2);
    assert_eq!(v["topics"][0]["seq"], 1);

    let (status, body) = http_get(server.addr, "/api/topics/r/a").await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["state"], json!({"f":2.5,"x":"y"}));
    assert_eq!(v["epoch"], pos.epoch.as_str());

    let (status, body) = http_get(server.addr, "/api/topics/no/such").await;
    assert_eq!(status, 404);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["code"], "unknown_topic");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`no/such`")
    );
}

#[tokio::test]
async fn health_and_readiness() {
    let server = TestServer::start(config(), HubConfig::default()).await;
    assert_eq!(http_get(server.addr, "/healthz").await.0, 200);
    assert_eq!(http_get(server.addr, "/readyz").await.0, 200);
    server.state.set_ready(false);
    assert_eq!(http_get(server.addr, "/readyz").await.0, 503);
    assert_eq!(http_get(server.addr, "/healthz").await.0, 200);
}
