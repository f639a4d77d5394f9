//! `GET /api/topics` over 10,000 topics and more while topics come and go, and
//! topic histories that share the hub's budget, through the real HTTP server.

use std::collections::BTreeSet;

use serde_json::Value;
use wasmeter_hub::HubConfig;

use crate::support::*;

/// One page: its names and its `next`.
async fn page(server: &TestServer, query: &str) -> (Vec<String>, Option<String>) {
    let (status, body) = http_get(server.addr, &format!("/api/topics?{query}")).await;
    assert_eq!(status, 200, "{query}: {body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let names = v["topics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    (names, v["next"].as_str().map(str::to_string))
}

#[tokio::test]
async fn paging_lists_every_lasting_topic_once_while_others_come_and_go() {
    let server = TestServer::start(
        config(),
        HubConfig {
            max_topics: 40_000,
            ..HubConfig::default()
        },
    )
    .await;
    // 10,000 symbols, each a topic and two series, as a feed makes them.
    let mut lasting = BTreeSet::new();
    for i in 0..10_000 {
        for topic in [
            format!("bench/S{i}"),
            format!("metrics/trade_price/S{i}"),
            format!("metrics/trade_qty/S{i}"),
        ] {
            server.publish(&topic, &[("n", num(i as f64))], &[]);
            lasting.insert(topic);
        }
    }
    let mut seen: Vec<String> = Vec::new();
    let mut removed_unlisted = Vec::new();
    let mut after: Option<String> = None;
    let mut rounds = 0;
    loop {
        let query = match &after {
            None => "limit=1000".to_string(),
            Some(a) => format!("limit=1000&after={a}"),
        };
        let (names, next) = page(&server, &query).await;
        assert!(names.len() <= 1000);
        seen.extend(names.iter().cloned());
        let Some(next) = next else { break };
        assert_eq!(Some(&next), names.last(), "next is the page's last topic");
        // Between pages: topics go away (listed already or not yet), new ones
        // come before the cursor and after it.
        rounds += 1;
        for gone in [
            format!("metrics/trade_qty/S{rounds}"),
            format!("bench/S{}", 5_000 + rounds),
        ] {
            lasting.remove(&gone);
            if gone > next {
                removed_unlisted.push(gone.clone());
            }
            assert!(server.hub.remove_topic(&gone));
        }
        // (Zero-padded: each new one sorts after the ones before it.)
        server.publish(&format!("aaa/new{rounds:04}"), &[("n", num(1.0))], &[]);
        server.publish(&format!("zzz/new{rounds:04}"), &[("n", num(1.0))], &[]);
        after = Some(next);
    }
    assert!(rounds >= 29, "{rounds} pages");
    // In order, each once; every topic that existed throughout is there; none
    // removed before its page came.
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "sorted, no repeats");
    let seen_set: BTreeSet<&String> = seen.iter().collect();
    let missing: Vec<_> = lasting.iter().filter(|t| !seen_set.contains(t)).collect();
    assert!(
        missing.is_empty(),
        "missing: {:?}",
        &missing[..missing.len().min(5)]
    );
    assert!(!removed_unlisted.is_empty());
    assert!(removed_unlisted.iter().all(|t| !seen_set.contains(t)));
    // Topics created after the cursor passed their place are not listed; those
    // ahead of it are.
    assert_eq!(
        seen.iter().filter(|t| t.starts_with("zzz/new")).count(),
        rounds
    );
    assert!(!seen.iter().any(|t| t.starts_with("aaa/new")));

    // A prefix pages through its own topics only, 1,000 at a time.
    let mut prefixed = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let query = match &after {
            None => "prefix=bench/&limit=1000".to_string(),
            Some(a) => format!("prefix=bench/&limit=1000&after={a}"),
        };
        let (names, next) = page(&server, &query).await;
        prefixed.extend(names);
        match next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    let bench: Vec<String> = lasting
        .iter()
        .filter(|t| t.starts_with("bench/"))
        .cloned()
        .collect();
    assert_eq!(prefixed.len(), 10_000 - rounds);
    assert_eq!(prefixed, bench);
}

#[tokio::test]
async fn a_history_shrinks_to_its_share_of_the_budget() {
    let server = TestServer::start(
        config(),
        HubConfig {
            history_per_topic: 16,
            history_budget: 40,
            ..HubConfig::default()
        },
    )
    .await;
    for n in 1..=20 {
        server.publish("h/a", &[("n", num(n as f64))], &[]);
    }
    let history = async |since: u64| {
        let path = format!("/api/topics/h/a/history?since={since}");
        let (status, body) = http_get(server.addr, &path).await;
        assert_eq!(status, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        let seqs: Vec<u64> = v["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["seq"].as_u64().unwrap())
            .collect();
        (v["complete"].as_bool().unwrap(), seqs)
    };
    assert_eq!(history(4).await, (true, (5..=20).collect()));
    // Twenty topics share 40 messages: two each, from the next change on.
    for i in 0..19 {
        server.publish(&format!("h/t{i}"), &[("n", num(1.0))], &[]);
    }
    server.publish("h/a", &[("n", num(21.0))], &[]);
    assert_eq!(history(19).await, (true, vec![20, 21]));
    assert_eq!(history(4).await, (false, vec![20, 21]));
    // The current state is whole whatever the history holds.
    let (_, body) = http_get(server.addr, "/api/topics/h/a").await;
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["state"]["n"], 21.0);
    assert_eq!(v["seq"], 21);
}
