//! The connection logic without a network: commands in, frames out.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;
use wasmeter_core::change::TopicChange;
use wasmeter_core::delta::Delta;
use wasmeter_core::field::{FieldValue, TopicState};
use wasmeter_hub::{Format, Hub, HubConfig};

use crate::client::{Client, Limits, Out, Verdict};
use crate::config::ServerConfig;
use crate::metrics::Metrics;

struct Fixture {
    hub: Arc<Hub>,
    state: std::collections::HashMap<String, TopicState>,
    metrics: Arc<Metrics>,
}

impl Fixture {
    fn new(history: usize) -> Self {
        Self {
            hub: Arc::new(Hub::new(HubConfig {
                history_per_topic: history,
                max_topics: 1000,
                stream_history: history,
                ..HubConfig::default()
            })),
            state: Default::default(),
            metrics: Arc::new(Metrics::default()),
        }
    }

    fn client(&self, config: ServerConfig) -> Client {
        Client::new(
            self.hub.clone(),
            Format::Json,
            Limits::from(&config),
            self.metrics.clone(),
            false,
        )
    }

    /// Publishes `changed` (and `removed`) to `topic`, keeping the full state.
    fn publish(&mut self, topic: &str, changed: &[(&str, FieldValue)], removed: &[&str]) -> u64 {
        let delta = Delta {
            changed: changed
                .iter()
                .map(|(n, v)| (n.to_string(), v.clone()))
                .collect(),
            removed: removed.iter().map(|n| n.to_string()).collect(),
        };
        let state = self.state.entry(topic.to_string()).or_default();
        delta.apply_to(state);
        self.hub
            .publish(TopicChange {
                topic: topic.into(),
                delta,
                stale: vec![],
                state: Arc::new(state.clone()),
                timestamp_ms: 0,
                event: false,
            })
            .unwrap()
            .seq
    }
}

fn n(x: f64) -> FieldValue {
    FieldValue::Number(x)
}

fn send(c: &mut Client, v: Value) -> Verdict {
    c.handle(v.to_string().as_bytes(), false, Instant::now())
}

fn frames_at(c: &mut Client, now: Instant) -> Vec<Value> {
    let mut all = Vec::new();
    loop {
        let mut out: Vec<Out> = Vec::new();
        c.fill(now, &mut out);
        if out.is_empty() {
            return all;
        }
        all.extend(
            out.iter()
                .map(|o| serde_json::from_slice::<Value>(&o.bytes).unwrap()),
        );
    }
}

fn frames(c: &mut Client) -> Vec<Value> {
    frames_at(c, Instant::now())
}

/// Applies snapshots and merge patches the way a client would.
fn apply(state: &mut serde_json::Map<String, Value>, f: &Value) {
    match f["type"].as_str() {
        Some("snapshot") => *state = f["state"].as_object().unwrap().clone(),
        Some("update") => {
            for (k, v) in f["delta"].as_object().unwrap() {
                if v.is_null() {
                    state.remove(k);
                } else {
                    state.insert(k.clone(), v.clone());
                }
            }
        }
        _ => {}
    }
}

#[test]
fn subscribe_replies_then_snapshots_then_deltas() {
    let mut fx = Fixture::new(16);
    fx.publish("t/a", &[("p", n(1.0)), ("q", n(2.0))], &[]);
    let mut c = fx.client(ServerConfig::default());
    send(&mut c, json!({"type":"subscribe","id":1,"topics":["t/*"]}));
    let f = frames(&mut c);
    assert_eq!(f[0], json!({"type":"subscribed","id":1,"topics":["t/*"]}));
    assert_eq!(f[1]["type"], "snapshot");
    assert_eq!(f[1]["state"], json!({"p":1.0,"q":2.0}));
    assert_eq!(f[1]["seq"], 1);

    fx.publish("t/a", &[("p", n(3.0))], &["q"]);
    let f = frames(&mut c);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0]["delta"], json!({"q":null,"p":3.0}));
    assert_eq!(f[0]["seq"], 2);
    assert!(frames(&mut c).is_empty());
}

#[test]
fn a_client_a_little_behind_gets_every_update_in_order() {
    let mut fx = Fixture::new(256);
    fx.publish("t/a", &[("p", n(0.0))], &[]);
    let mut c = fx.client(ServerConfig::default());
    send(&mut c, json!({"type":"subscribe","topics":["t/a"]}));
    frames(&mut c);
    for i in 1..=50 {
        fx.publish("t/a", &[("p", n(i as f64))], &[]);
    }
    let seqs: Vec<u64> = frames(&mut c)
        .iter()
        .map(|f| f["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (2..=51).collect::<Vec<_>>());
}

#[test]
fn a_slow_client_is_conflated_to_the_latest_state() {
    let mut fx = Fixture::new(64);
    let mut c = fx.client(ServerConfig::default());
    send(&mut c, json!({"type":"subscribe","topics":["t/**"]}));
    fx.publish("t/a", &[("p", n(0.0)), ("gone", n(1.0))], &[]);
    let mut state = serde_json::Map::new();
    for f in frames(&mut c) {
        apply(&mut state, &f);
    }
    for i in 1..=5000 {
        let removed: &[&str] = if i == 10 { &["gone"] } else { &[] };
        fx.publish(
            "t/a",
            &[("p", n(i as f64)), (&format!("f{}", i % 7), n(1.0))],
            removed,
        );
    }
    let f = frames(&mut c);
    assert_eq!(f.len(), 1, "one snapshot instead of 5000 updates");
    assert_eq!(f[0]["type"], "snapshot");
    assert_eq!(f[0]["seq"], 5001);
    apply(&mut state, &f[0]);
    let expected = serde_json::to_value(&fx.state["t/a"]).unwrap();
    assert_eq!(Value::Object(state), expected);
    assert_eq!(fx.metrics.snapshot(0).conflations, 1);
}

#[test]
fn resume_replays_exactly_or_says_it_did_not() {
    let mut fx = Fixture::new(8);
    fx.publish("t/a", &[("p", n(0.0))], &[]);
    let (pos, _) = fx.hub.snapshot("t/a").unwrap();
    for i in 1..=5 {
        fx.publish("t/a", &[("p", n(i as f64))], &[]);
    }
    let mut c = fx.client(ServerConfig::default());
    send(
        &mut c,
        json!({"type":"subscribe","topics":["t/a"],"since":{"t/a":{"epoch":pos.epoch,"seq":1}}}),
    );
    let f = frames(&mut c);
    assert_eq!(f[0]["recovered"], json!({"t/a": true}));
    let seqs: Vec<u64> = f[1..].iter().map(|f| f["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [2, 3, 4, 5, 6]);
    assert!(f[1..].iter().all(|f| f["type"] == "update"));

    // A gap larger than the history: explicitly not recovered, fresh snapshot.
    for i in 6..=30 {
        fx.publish("t/a", &[("p", n(i as f64))], &[]);
    }
    let mut c = fx.client(ServerConfig::default());
    send(
        &mut c,
        json!({"type":"subscribe","topics":["t/a"],"since":{"t/a":{"epoch":pos.epoch,"seq":6}}}),
    );
    let f = frames(&mut c);
    assert_eq!(f[0]["recovered"], json!({"t/a": false}));
    assert_eq!(f.len(), 2);
    assert_eq!(f[1]["type"], "snapshot");
    assert_eq!(f[1]["recovered"], false);
    assert_eq!(f[1]["seq"], 31);

    // Another epoch is never resumed.
    let mut c = fx.client(ServerConfig::default());
    send(
        &mut c,
        json!({"type":"subscribe","topics":["t/a"],"since":{"t/a":{"epoch":"other","seq":30}}}),
    );
    let f = frames(&mut c);
    assert_eq!(f[1]["recovered"], false);
}

#[test]
fn field_subsets_filter_and_share() {
    let mut fx = Fixture::new(16);
    fx.publish("t/a", &[("p", n(1.0)), ("q", n(2.0))], &[]);
    let mut c = fx.client(ServerConfig::default());
    send(
        &mut c,
        json!({"type":"subscribe","topics":["t/a"],"fields":["p"]}),
    );
    let f = frames(&mut c);
    assert_eq!(f[1]["state"], json!({"p":1.0}));
    fx.publish("t/a", &[("q", n(3.0))], &[]);
    assert!(frames(&mut c).is_empty(), "nothing of interest changed");
    fx.publish("t/a", &[("p", n(4.0)), ("q", n(5.0))], &[]);
    let f = frames(&mut c);
    assert_eq!(f[0]["delta"], json!({"p":4.0}));
    assert_eq!(f[0]["seq"], 3);
}

#[test]
fn max_rate_merges_updates_within_the_interval() {
    let mut fx = Fixture::new(256);
    fx.publish("t/a", &[("p", n(0.0)), ("x", n(0.0))], &[]);
    let mut c = fx.client(ServerConfig::default());
    send(
        &mut c,
        json!({"type":"subscribe","topics":["t/a"],"max_rate_hz":10.0}),
    );
    let t0 = Instant::now();
    let f = frames_at(&mut c, t0);
    assert_eq!(f[1]["type"], "snapshot");
    fx.publish("t/a", &[("p", n(1.0))], &["x"]);
    fx.publish("t/a", &[("p", n(2.0)), ("y", n(1.0))], &[]);
    assert!(frames_at(&mut c, t0 + Duration::from_millis(50)).is_empty());
    assert!(c.next_due().is_some());
    let f = frames_at(&mut c, t0 + Duration::from_millis(100));
    assert_eq!(f.len(), 1);
    assert_eq!(f[0]["seq"], 3);
    assert_eq!(f[0]["delta"], json!({"x":null,"p":2.0,"y":1.0}));
}

#[test]
fn patterns_catch_new_topics_and_removals() {
    let mut fx = Fixture::new(16);
    let mut c = fx.client(ServerConfig::default());
    send(&mut c, json!({"type":"subscribe","topics":["t/*"]}));
    frames(&mut c);
    fx.publish("t/new", &[("p", n(1.0))], &[]);
    fx.publish("u/other", &[("p", n(1.0))], &[]);
    fx.publish("t/new/deeper", &[("p", n(1.0))], &[]);
    let f = frames(&mut c);
    assert_eq!(f.len(), 1);
    assert_eq!(
        (f[0]["type"].as_str(), f[0]["topic"].as_str()),
        (Some("snapshot"), Some("t/new"))
    );

    fx.hub.remove_topic("t/new");
    let f = frames(&mut c);
    assert_eq!(f[0]["type"], "removed");
    fx.state.clear();
    fx.publish("t/new", &[("p", n(9.0))], &[]);
    let f = frames(&mut c);
    assert_eq!(f[0]["type"], "snapshot");
    assert_eq!(f[0]["seq"], 1);
}

#[test]
fn invalid_messages_get_errors_and_many_in_a_row_are_abusive() {
    let fx = Fixture::new(16);
    let cfg = ServerConfig {
        max_consecutive_errors: 3,
        max_subscriptions: 2,
        ..Default::default()
    };
    let mut c = fx.client(cfg);
    assert_eq!(
        send(
            &mut c,
            json!({"type":"subscribe","id":4,"topics":["ok","a b"]})
        ),
        Verdict::Continue
    );
    let f = frames(&mut c);
    assert_eq!(f[0]["code"], "invalid");
    assert_eq!(f[0]["id"], 4);
    assert!(
        f[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("subscribe.topics[1]: `a b` is not a valid topic pattern"),
        "{}",
        f[0]
    );
    send(&mut c, json!({"type":"subscribe","topics":["a","b","c"]}));
    assert_eq!(frames(&mut c)[0]["code"], "too_many_subscriptions");
    // A ping is answered but neither counts nor resets the streak (2 so far) ...
    send(&mut c, json!({"type":"ping","id":9}));
    assert_eq!(frames(&mut c)[0], json!({"type":"pong","id":9}));
    // ... an accepted command resets it.
    send(&mut c, json!({"type":"subscribe","topics":["ok"]}));
    assert_eq!(frames(&mut c)[0]["type"], "subscribed");
    send(&mut c, json!({"type":"unsubscribe","topics":["nope"]}));
    assert_eq!(frames(&mut c)[0]["code"], "not_subscribed");
    assert_eq!(c.handle(b"{", false, Instant::now()), Verdict::Continue);
    assert_eq!(c.handle(&[0xc1], true, Instant::now()), Verdict::Abusive);
    // Two did not parse; three parsed and were refused.
    let m = fx.metrics.snapshot(0);
    assert_eq!((m.malformed_messages, m.refused_messages), (2, 3));
}

#[test]
fn unsubscribe_and_drop_leave_the_hub_clean() {
    let mut fx = Fixture::new(16);
    fx.publish("t/a", &[("p", n(1.0))], &[]);
    fx.publish("t/b", &[("p", n(1.0))], &[]);
    let mut c = fx.client(ServerConfig::default());
    send(&mut c, json!({"type":"subscribe","topics":["t/*", "t/a"]}));
    frames(&mut c);
    assert_eq!(fx.hub.stats().slots, 2);
    send(
        &mut c,
        json!({"type":"unsubscribe","id":2,"topics":["t/*"]}),
    );
    assert_eq!(
        frames(&mut c)[0],
        json!({"type":"unsubscribed","id":2,"topics":["t/*"]})
    );
    assert_eq!(fx.hub.stats().slots, 1, "t/a is still subscribed by name");
    fx.publish("t/b", &[("p", n(2.0))], &[]);
    fx.publish("t/c", &[("p", n(2.0))], &[]);
    assert!(frames(&mut c).is_empty());
    // A topic created but not yet read when the connection ends is detached too.
    send(&mut c, json!({"type":"subscribe","topics":["t/*"]}));
    fx.publish("t/d", &[("p", n(2.0))], &[]);
    drop(c);
    let stats = fx.hub.stats();
    assert_eq!((stats.slots, stats.watchers), (0, 0));
}

#[test]
fn changing_a_live_subscription_takes_effect_at_the_next_update() {
    // Plain live topics are served from their slot; every change of the
    // subscription must still apply from the next update on, in order.
    let mut fx = Fixture::new(64);
    fx.publish("t/a", &[("p", n(0.0)), ("q", n(0.0))], &[]);
    let mut c = fx.client(ServerConfig::default());
    send(&mut c, json!({"type":"subscribe","topics":["t/a"]}));
    frames(&mut c);
    for i in 1..=3 {
        fx.publish("t/a", &[("p", n(i as f64)), ("q", n(i as f64))], &[]);
        assert_eq!(frames(&mut c)[0]["seq"], i + 1);
    }
    // Fields: a snapshot of the subset, then filtered deltas.
    send(
        &mut c,
        json!({"type":"subscribe","topics":["t/a"],"fields":["p"]}),
    );
    let f = frames(&mut c);
    assert_eq!(
        (f[1]["type"].as_str(), &f[1]["state"]),
        (Some("snapshot"), &json!({"p":3.0}))
    );
    fx.publish("t/a", &[("p", n(9.0)), ("q", n(9.0))], &[]);
    assert_eq!(frames(&mut c)[0]["delta"], json!({"p":9.0}));
    // Back to every field, then plain updates continue after the snapshot's seq.
    send(&mut c, json!({"type":"subscribe","topics":["t/a"]}));
    let f = frames(&mut c);
    assert_eq!(
        (f[1]["type"].as_str(), &f[1]["seq"]),
        (Some("snapshot"), &json!(5))
    );
    fx.publish("t/a", &[("q", n(10.0))], &[]);
    let f = frames(&mut c);
    assert_eq!(
        (f.len(), &f[0]["seq"], &f[0]["delta"]),
        (1, &json!(6), &json!({"q":10.0}))
    );
    // Unsubscribed: nothing more, even for updates already published.
    fx.publish("t/a", &[("q", n(11.0))], &[]);
    send(&mut c, json!({"type":"unsubscribe","topics":["t/a"]}));
    let f = frames(&mut c);
    assert_eq!(f, vec![json!({"type":"unsubscribed","topics":["t/a"]})]);
    fx.publish("t/a", &[("q", n(12.0))], &[]);
    assert!(frames(&mut c).is_empty());
}

#[test]
fn pings_between_invalid_messages_do_not_reset_the_streak() {
    let fx = Fixture::new(16);
    let mut c = fx.client(ServerConfig {
        max_consecutive_errors: 4,
        ..Default::default()
    });
    for i in 0..3 {
        assert_eq!(c.handle(b"junk", false, Instant::now()), Verdict::Continue);
        assert_eq!(
            send(&mut c, json!({"type":"ping","id":i})),
            Verdict::Continue
        );
        assert_eq!(send(&mut c, json!({"type":"pong"})), Verdict::Continue);
    }
    assert_eq!(c.handle(b"junk", false, Instant::now()), Verdict::Abusive);
}

#[test]
fn a_subscribe_over_the_pattern_limit_is_refused_before_any_pattern_is_read() {
    let fx = Fixture::new(16);
    let mut c = fx.client(ServerConfig::default());
    // Every pattern is invalid: only the count can be reported.
    let topics: Vec<String> = (0..10_000).map(|i| format!("bad pattern {i}")).collect();
    send(&mut c, json!({"type":"subscribe","id":3,"topics":topics}));
    let f = frames(&mut c);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0]["code"], "too_many_subscriptions");
    assert_eq!(f[0]["id"], 3);
    assert_eq!(
        f[0]["message"],
        "subscribe.topics: 10000 patterns is more than the limit of 64 per connection (max_subscriptions)"
    );
    // Duplicates count as entries; at the limit the command is accepted.
    let same: Vec<&str> = vec!["t/a"; 64];
    send(&mut c, json!({"type":"subscribe","topics":same}));
    assert_eq!(
        frames(&mut c)[0],
        json!({"type":"subscribed","topics":["t/a"]})
    );
    let many: Vec<String> = (0..65).map(|i| format!("t/{i}")).collect();
    send(&mut c, json!({"type":"unsubscribe","topics":many}));
    assert_eq!(frames(&mut c)[0]["code"], "too_many_subscriptions");
}

#[test]
fn max_rate_holds_updates_until_the_interval_has_passed() {
    // Every instant is explicit: at 2 Hz a topic sends at most one update per
    // 500 ms; one arriving sooner is held, and the latest state goes out when
    // the interval has passed.
    let mut fx = Fixture::new(256);
    fx.publish("t/a", &[("p", n(0.0))], &[]);
    let mut c = fx.client(ServerConfig::default());
    send(
        &mut c,
        json!({"type":"subscribe","topics":["t/a"],"max_rate_hz":2.0}),
    );
    let subscribed_at = Instant::now();
    let f = frames_at(&mut c, subscribed_at);
    assert_eq!(f[1]["type"], "snapshot");
    // t = 0: a whole interval after the snapshot, so the update is sent at once.
    let t0 = subscribed_at + Duration::from_secs(1);
    fx.publish("t/a", &[("p", n(1.0))], &[]);
    let f = frames_at(&mut c, t0);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(
        (&f[0]["seq"], &f[0]["delta"]),
        (&json!(2), &json!({"p":1.0}))
    );
    // t = 0.1 s: held, and held still just before the interval ends.
    fx.publish("t/a", &[("p", n(2.0))], &[]);
    assert!(frames_at(&mut c, t0 + Duration::from_millis(100)).is_empty());
    assert_eq!(c.next_due(), Some(t0 + Duration::from_millis(500)));
    fx.publish("t/a", &[("p", n(3.0)), ("q", n(1.0))], &[]);
    assert!(frames_at(&mut c, t0 + Duration::from_millis(499)).is_empty());
    assert!(!c.has_work(t0 + Duration::from_millis(499)));
    // t = 0.5 s: the latest value goes out, as one update.
    assert!(c.has_work(t0 + Duration::from_millis(500)));
    let f = frames_at(&mut c, t0 + Duration::from_millis(500));
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(
        (&f[0]["seq"], &f[0]["delta"]),
        (&json!(4), &json!({"p":3.0,"q":1.0}))
    );
    // The next interval starts from that send.
    fx.publish("t/a", &[("p", n(4.0))], &[]);
    assert!(frames_at(&mut c, t0 + Duration::from_millis(600)).is_empty());
    assert_eq!(c.next_due(), Some(t0 + Duration::from_millis(1000)));
    let f = frames_at(&mut c, t0 + Duration::from_millis(1000));
    assert_eq!(f[0]["delta"], json!({"p":4.0}));
}

#[test]
fn a_topic_slot_stays_small() {
    // A connection holds one per topic it reads: 10,000 for a subscriber of
    // every symbol. A resume's replay is boxed, as most slots never have one.
    let size = std::mem::size_of::<crate::client::TopicSlot>();
    assert!(size <= 56, "a topic slot is {size} bytes");
}
