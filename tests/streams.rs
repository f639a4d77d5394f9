//! Stream topics through the whole host: the CSV collector's trade tape delivers
//! every trade once, in order, to JSON and MessagePack subscribers, also across
//! a reconnect that resumes with `since` and across a restart of the host.

mod support;

use std::collections::BTreeMap;

use serde_json::{Value, json};
use support::{Client, Host, csv_config};

const SYMBOLS: [&str; 4] = ["BTC", "ETH", "SOL", "ADA"];
const TRADES: usize = 100_000;

fn tape_config() -> String {
    csv_config("")
        .replace(
            "builtin = \"csv-collector\"",
            "builtin = \"csv-collector\"\nconfig = { tape_prefix = \"tape\" }",
        )
        .replace(
            "topics = [\"trades\", \"deals\"]",
            "topics = [\"trades\", \"deals\", \"tape\"]",
        )
        .replace(
            "listen = \"127.0.0.1:0\"",
            "listen = \"127.0.0.1:0\"\nstream_history = 200000",
        )
}

/// What one subscriber received: per topic its epoch and every trade, in order.
#[derive(Default)]
struct Tape {
    topics: BTreeMap<String, (String, Vec<u64>)>,
    received: usize,
}

impl Tape {
    /// Records an event frame, checking it is the topic's next one.
    fn record(&mut self, f: &Value) {
        assert_eq!(f["type"], "event", "only events on a tape: {f}");
        let topic = f["topic"].as_str().unwrap().to_string();
        let (epoch, trades) = self
            .topics
            .entry(topic.clone())
            .or_insert_with(|| (f["epoch"].as_str().unwrap().to_string(), Vec::new()));
        assert_eq!(f["epoch"], epoch.as_str());
        assert_eq!(
            f["seq"],
            trades.len() as u64 + 1,
            "{topic}: every event once, in order"
        );
        let trade = f["fields"]["trade"].as_f64().unwrap() as u64;
        assert_eq!(
            trade,
            trades.len() as u64 + 1,
            "{topic}: the symbol's trades in order"
        );
        // The price carries the trade's global number.
        trades.push(f["fields"]["price"].as_f64().unwrap() as u64);
        self.received += 1;
    }

    async fn read(&mut self, c: &mut Client, until: usize) {
        while self.received < until {
            let f = c.next().await;
            self.record(&f);
        }
    }

    fn since(&self) -> Value {
        let since: serde_json::Map<String, Value> = self
            .topics
            .iter()
            .map(|(t, (epoch, trades))| (t.clone(), json!({"epoch": epoch, "seq": trades.len()})))
            .collect();
        Value::Object(since)
    }

    /// Every trade of the feed, each once, in the feed's order per symbol.
    fn check_complete(&self) {
        assert_eq!(self.received, TRADES);
        for (i, symbol) in SYMBOLS.iter().enumerate() {
            let (_, trades) = &self.topics[&format!("tape/{symbol}")];
            let expected: Vec<u64> = (i..TRADES)
                .step_by(SYMBOLS.len())
                .map(|n| n as u64)
                .collect();
            assert_eq!(trades, &expected, "tape/{symbol}");
        }
    }
}

/// Appends the trades `range` in 64 KiB writes, from a thread of its own.
fn feed(dir: &std::path::Path, range: std::ops::Range<usize>) -> std::thread::JoinHandle<()> {
    let dir = dir.to_path_buf();
    std::thread::spawn(move || {
        let mut lines = String::new();
        for n in range {
            let symbol = SYMBOLS[n % SYMBOLS.len()];
            lines.push_str(&format!(
                "{symbol},{n},1,{}\n",
                1_700_000_000_000u64 + n as u64
            ));
            if lines.len() > 64 * 1024 {
                support::append(&dir, "trades.csv", &std::mem::take(&mut lines));
            }
        }
        support::append(&dir, "trades.csv", &lines);
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tape_delivers_every_trade_once_in_order_across_a_reconnect() {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::start(dir.path(), &tape_config());
    let mut json_client = Client::connect(&host.addr, "json").await;
    let mut msgpack_client = Client::connect(&host.addr, "msgpack").await;
    for c in [&mut json_client, &mut msgpack_client] {
        c.subscribe(&["tape/*"]).await;
        assert_eq!(c.next().await["type"], "subscribed");
    }

    let feed_dir = host.dir.clone();
    let feed = std::thread::spawn(move || {
        let mut lines = String::new();
        for n in 0..TRADES {
            let symbol = SYMBOLS[n % SYMBOLS.len()];
            lines.push_str(&format!(
                "{symbol},{n},1,{}\n",
                1_700_000_000_000u64 + n as u64
            ));
            if lines.len() > 64 * 1024 {
                support::append(&feed_dir, "trades.csv", &std::mem::take(&mut lines));
            }
        }
        support::append(&feed_dir, "trades.csv", &lines);
    });

    let mut json_tape = Tape::default();
    let mut msgpack_tape = Tape::default();
    let msgpack_half = async {
        // Half the trades, then away and back: resumed from where it was.
        msgpack_tape.read(&mut msgpack_client, TRADES / 2).await;
        drop(msgpack_client);
        let mut c = Client::connect(&host.addr, "msgpack").await;
        c.send(json!({"type": "subscribe", "topics": ["tape/*"], "since": msgpack_tape.since()}))
            .await;
        let subscribed = c.next().await;
        for topic in msgpack_tape.topics.keys() {
            assert_eq!(subscribed["recovered"][topic], true, "{subscribed}");
        }
        msgpack_tape.read(&mut c, TRADES).await;
    };
    tokio::join!(json_tape.read(&mut json_client, TRADES), msgpack_half);
    feed.join().unwrap();

    json_tape.check_complete();
    msgpack_tape.check_complete();
    let (_, topics) = host.get("/api/topics?prefix=tape/").await;
    assert_eq!(topics["topics"].as_array().unwrap().len(), SYMBOLS.len());
    assert!(
        topics["topics"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["stream"] == true)
    );
    host.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tape_resumes_across_a_restart_of_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::start(dir.path(), &tape_config());
    let mut client = Client::connect(&host.addr, "msgpack").await;
    client.subscribe(&["tape/*"]).await;
    assert_eq!(client.next().await["type"], "subscribed");
    let mut tape = Tape::default();
    feed(&host.dir, 0..TRADES / 2).join().unwrap();
    tape.read(&mut client, TRADES / 2).await;
    drop(client);
    host.stop();

    // The second half is written while the host is down.
    feed(dir.path(), TRADES / 2..TRADES).join().unwrap();
    let host = Host::start(dir.path(), &tape_config());
    let mut client = Client::connect(&host.addr, "msgpack").await;
    client
        .send(json!({"type": "subscribe", "topics": ["tape/*"], "since": tape.since()}))
        .await;
    let subscribed = client.next().await;
    for topic in tape.topics.keys() {
        assert_eq!(subscribed["recovered"][topic], true, "{subscribed}");
    }
    tape.read(&mut client, TRADES).await;
    tape.check_complete();
    host.stop();
}
