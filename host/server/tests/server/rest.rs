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

/// Every page of `GET /api/topics?<query>&limit=<limit>`, following `next`.
async fn pages(server: &TestServer, query: &str, limit: usize) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut path = format!("/api/topics?limit={limit}{query}");
        if let Some(a) = &after {
            path.push_str(&format!("&after={a}"));
        }
        let (status, body) = http_get(server.addr, &path).await;
        assert_eq!(status, 200, "{path}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        let names: Vec<String> = v["topics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect();
        pages.push(names);
        match v["next"].as_str() {
            Some(next) => after = Some(next.to_string()),
            None => return pages,
        }
    }
}

#[tokio::test]
async fn ten_thousand_topics_are_listed_in_pages() {
    let server = TestServer::default().await;
    let mut names: Vec<String> = (0..10_000).map(|i| format!("sym/S{i}")).collect();
    names.extend((0..50).map(|i| format!("other/T{i}")));
    for name in &names {
        server.publish(name, &[("n", num(1.0))], &[]);
    }
    names.sort();

    // The default page is 1,000 topics; following `next` lists each topic once,
    // in order, and the last page says there is no next one.
    let (_, body) = http_get(server.addr, "/api/topics").await;
    let first: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(first["topics"].as_array().unwrap().len(), 1_000);
    assert_eq!(first["next"], names[999].as_str());
    let all = pages(&server, "", 3_000).await;
    assert_eq!(
        all.iter().map(Vec::len).collect::<Vec<_>>(),
        [3_000, 3_000, 3_000, 1_050]
    );
    assert_eq!(all.concat(), names);

    // A prefix lists only its topics.
    let other = pages(&server, "&prefix=other/", 20).await;
    assert_eq!(other.len(), 3);
    assert_eq!(
        other.concat(),
        names
            .iter()
            .filter(|n| n.starts_with("other/"))
            .cloned()
            .collect::<Vec<_>>()
    );

    // Limits are checked, and say what is allowed.
    for bad in ["limit=0", "limit=10001", "limit=x", "color=red"] {
        let (status, body) = http_get(server.addr, &format!("/api/topics?{bad}")).await;
        assert_eq!(status, 400, "{bad}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["error"]["code"], "bad_query", "{bad}");
    }
    let (_, body) = http_get(server.addr, "/api/topics?limit=0").await;
    assert!(body.contains("expected 1 to 10000"), "{body}");
}

/// Sends a raw HTTP/1.0 request; returns the status, the head and the body.
async fn raw_request(server: &TestServer, request: &str) -> (u16, String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, tcp.read_to_end(&mut raw))
        .await
        .unwrap()
        .unwrap();
    let raw = String::from_utf8(raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head.to_ascii_lowercase(), body.to_string())
}

#[tokio::test]
async fn every_error_is_a_json_error_even_axums_own() {
    let server = TestServer::default().await;
    let cases = [
        ("GET /no/such/path HTTP/1.0\r\n\r\n", 404, "not_found"),
        (
            "POST /api/topics HTTP/1.0\r\nContent-Length: 0\r\n\r\n",
            405,
            "method_not_allowed",
        ),
        ("GET /sse?topics=%ZZ HTTP/1.0\r\n\r\n", 400, "bad_request"),
        ("GET /ws HTTP/1.0\r\n\r\n", 400, "bad_request"),
    ];
    for (request, status, code) in cases {
        let (got, head, body) = raw_request(&server, request).await;
        assert_eq!(got, status, "{request:?}: {head}\n{body}");
        assert!(
            head.contains("content-type: application/json"),
            "{request:?}: {head}"
        );
        let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{body}: {e}"));
        assert_eq!(v["error"]["code"], code, "{request:?}: {body}");
        assert!(
            !v["error"]["message"].as_str().unwrap().is_empty(),
            "{request:?}: {body}"
        );
    }
    // The server's own JSON errors are left as they are.
    let (status, _, body) = raw_request(&server, "GET /api/topics/no/such HTTP/1.0\r\n\r\n").await;
    assert_eq!(status, 404);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["code"], "unknown_topic");
}

#[tokio::test]
async fn a_topics_recent_changes_are_read_in_pages_as_the_frames_subscribers_got() {
    let server = TestServer::start(
        config(),
        HubConfig {
            history_per_topic: 4,
            ..HubConfig::default()
        },
    )
    .await;
    for i in 1..=6 {
        server.publish("h/a", &[("n", num(i as f64))], &[]);
    }
    let addr = server.addr;
    let get = async |q: &str| http_get(addr, &format!("/api/topics/h/a/history{q}")).await;
    // The history holds seqs 3..=6: since 4, a page of one, then the rest.
    let (status, body) = get("?since=4&limit=1").await;
    assert_eq!(status, 200, "{body}");
    let page: Value = serde_json::from_str(&body).unwrap();
    let epoch = page["epoch"].clone();
    assert_eq!(
        page,
        json!({"topic": "h/a", "epoch": epoch, "complete": true, "next": 5, "messages": [
            {"type": "update", "topic": "h/a", "epoch": epoch, "seq": 5, "ts": 1_700_000_000_000i64, "delta": {"n": 5.0}}
        ]})
    );
    let (_, body) = get("?since=5").await;
    let page: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (page["complete"].clone(), page["next"].clone()),
        (json!(true), Value::Null)
    );
    assert_eq!(page["messages"][0]["seq"], 6);
    // Since 1: seq 2 is no longer held; what is held, marked incomplete.
    let (_, body) = get("").await;
    let page: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(page["complete"], false);
    let seqs: Vec<_> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].clone())
        .collect();
    assert_eq!(seqs, [json!(3), json!(4), json!(5), json!(6)]);
    // A stream topic's history is its events.
    server.publish_event("h/tape", &[("price", num(1.0))]);
    let (_, body) = http_get(server.addr, "/api/topics/h/tape/history").await;
    let page: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(page["messages"][0]["type"], "event");
    assert_eq!(page["messages"][0]["fields"], json!({"price": 1.0}));
    // Errors name the problem.
    let (status, body) = get("?limit=0").await;
    assert_eq!(status, 400);
    assert!(body.contains("limit: 0: expected 1 to 1000"), "{body}");
    let (status, body) = http_get(server.addr, "/api/topics/no/such/history").await;
    assert_eq!(status, 404);
    assert!(body.contains("topic `no/such` does not exist"), "{body}");
}

#[tokio::test]
async fn a_topic_listing_is_answered_unchanged_until_a_topic_comes_or_goes() {
    let server = TestServer::default().await;
    server.publish("g/a", &[("n", num(1.0))], &[]);
    let list = async |q: &str| {
        let (status, body) = http_get(server.addr, &format!("/api/topics{q}")).await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_str::<Value>(&body).unwrap()
    };
    let first = list("").await;
    let g = first["generation"].as_u64().unwrap();
    // Updates of existing topics leave the set as it was.
    server.publish("g/a", &[("n", num(2.0))], &[]);
    assert_eq!(
        list(&format!("?unless_generation={g}")).await,
        json!({"unchanged": true, "generation": g})
    );
    // A new topic: the full page, and a new generation.
    server.publish("g/b", &[("n", num(1.0))], &[]);
    let after = list(&format!("?unless_generation={g}")).await;
    assert_eq!(after["topics"].as_array().unwrap().len(), 2);
    let g2 = after["generation"].as_u64().unwrap();
    assert_ne!(g2, g);
    // A removal too.
    assert!(server.hub.remove_topic("g/a"));
    let gone = list(&format!("?unless_generation={g2}")).await;
    assert_eq!(gone["topics"].as_array().unwrap().len(), 1);
}
