//! Sample-series topics are created when someone asks for them: until then a
//! series' newest value is kept without a topic (listed as dormant), and a
//! subscription, a pattern or a REST read creates it with that value; a
//! dormant series' value survives a restart.

mod support;

use serde_json::Value;
use support::{Client, Host, csv_config};

const FEED: &str = "BTC,100,1,1700000000000\nETH,3000,2,1700000000001\nBTC,101.5,1,1700000000002\n";

/// The listing's entry of each topic under `prefix`, by name.
async fn listed(host: &Host, prefix: &str) -> Vec<(String, Value)> {
    let (status, body) = host.get(&format!("/api/topics?prefix={prefix}")).await;
    assert_eq!(status, 200, "{body}");
    body["topics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap().to_string(), t.clone()))
        .collect()
}

fn is_dormant(entries: &[(String, Value)], name: &str) -> Option<bool> {
    entries
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, t)| t["dormant"] == true)
}

#[tokio::test]
async fn a_series_topic_is_created_when_a_subscriber_or_a_read_asks_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::start(dir.path(), &csv_config(""));
    host.append("trades.csv", FEED);
    // A batch's series are dealt with before its topics are committed.
    host.wait_for_topic("trades/BTC", |s| s["count"] == 2.0)
        .await;

    let before = listed(&host, "metrics/").await;
    assert_eq!(before.len(), 8, "four series of two symbols: {before:?}");
    assert!(
        before
            .iter()
            .all(|(_, t)| t["dormant"] == true && t.get("seq").is_none())
    );

    // A pattern's subscriber gets the series it matches, with their newest values.
    let mut c = Client::connect(&host.addr, "json").await;
    c.subscribe(&["metrics/trade_price/*"]).await;
    let btc = c.next_for("snapshot", "metrics/trade_price/BTC").await;
    assert_eq!(btc["state"]["value"], 101.5);
    let after = listed(&host, "metrics/").await;
    assert_eq!(is_dormant(&after, "metrics/trade_price/BTC"), Some(false));
    assert_eq!(is_dormant(&after, "metrics/trade_qty/ETH"), Some(true));

    // Read over REST: created, and answered with its value.
    let (status, body) = host.get("/api/topics/metrics/trade_qty/ETH").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"]["value"], 2.0);
    let after = listed(&host, "metrics/").await;
    assert_eq!(is_dormant(&after, "metrics/trade_qty/ETH"), Some(false));
    let (status, _) = host.get("/api/topics/metrics/trade_qty/XRP").await;
    assert_eq!(status, 404, "a series never seen is no topic");

    // Live from then on.
    host.append("trades.csv", "BTC,102,1,1700000000003\n");
    let update = c.next_for("update", "metrics/trade_price/BTC").await;
    assert_eq!(update["delta"]["value"], 102.0, "{update}");
    host.stop();
}

#[tokio::test]
async fn a_dormant_series_keeps_its_value_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = csv_config("");
    let host = Host::start(dir.path(), &config);
    host.append("trades.csv", FEED);
    host.wait_for_topic("trades/BTC", |s| s["count"] == 2.0)
        .await;
    host.stop();

    // Nothing is read again (the final checkpoint covers the feed): the value
    // comes from the checkpoint.
    let host = Host::start(dir.path(), &config);
    let listed = listed(&host, "metrics/trade_price/").await;
    assert_eq!(is_dormant(&listed, "metrics/trade_price/BTC"), Some(true));
    let (status, body) = host.get("/api/topics/metrics/trade_price/BTC").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"]["value"], 101.5);
    assert_eq!(body["state"]["ts"], 1_700_000_000_002.0);
    host.stop();
}
