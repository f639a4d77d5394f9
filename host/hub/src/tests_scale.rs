//! What keeps the hub's costs flat with many topics: histories that share a
//! budget, states kept only by the newest message, and listings and patterns
//! read from the topics in name order.

use std::sync::Arc;

use wasmeter_core::change::TopicChange;
use wasmeter_core::field::FieldValue;

use crate::tests::{Recorder, change, replay_after};
use crate::*;

fn budget_hub(per_topic: usize, budget: usize) -> Hub {
    Hub::new(HubConfig {
        history_per_topic: per_topic,
        history_budget: budget,
        history_bytes: usize::MAX,
        max_topics: 1_000,
        stream_history: 64,
    })
}

#[test]
fn only_the_newest_message_keeps_the_state() {
    let hub = budget_hub(8, 1_000);
    for n in 1..=4 {
        hub.publish(change("a", n as f64)).unwrap();
    }
    let (_, held, complete) = hub.history("a", 0, 10).unwrap();
    assert!(complete);
    assert_eq!(held.len(), 4);
    let kept: Vec<bool> = held.iter().map(|m| m.state().is_some()).collect();
    assert_eq!(kept, [false, false, false, true]);
    assert!(held[0].snapshot_bytes(Format::Json).is_none());
    // A retired message still sends its update.
    let update = held[0].update_bytes(Format::Json);
    assert!(std::str::from_utf8(&update).unwrap().contains("\"n\":1"));
    // The newest one's snapshot is the current state, whoever asks.
    let snap = held[3].snapshot_bytes(Format::Json).unwrap();
    assert!(std::str::from_utf8(&snap).unwrap().contains("\"n\":4"));
    assert_eq!(hub.snapshot("a").unwrap().1["n"], FieldValue::Number(4.0));

    // A subscriber holding the old newest message takes the current snapshot.
    let me: Arc<dyn Subscriber> = Arc::new(Recorder::default());
    let slot = hub.attach("a", &me).unwrap();
    let old = slot.latest();
    hub.publish(change("a", 5.0)).unwrap();
    assert!(
        old.snapshot_bytes(Format::Json).is_none(),
        "retired meanwhile"
    );
    let (msg, bytes) = slot
        .with_current(|m| m.snapshot_bytes(Format::Json))
        .unwrap();
    assert_eq!(msg.seq(), 5);
    assert!(std::str::from_utf8(&bytes).unwrap().contains("\"n\":5"));
}

#[test]
fn histories_share_the_budget_as_topics_come_and_go() {
    let hub = budget_hub(8, 20);
    for n in 1..=10 {
        hub.publish(change("a", n as f64)).unwrap();
        hub.publish(change("b", n as f64)).unwrap();
    }
    // Two topics: 10 each would fit, 8 is the most per topic.
    assert_eq!(hub.stats().history_messages, 16);
    assert_eq!(replay_after(&hub, "a", 2), Some((3..=10).collect()));

    // Ten topics: 2 each. A topic's history shrinks at its next change.
    for t in ["c", "d", "e", "f", "g", "h", "i", "j"] {
        hub.publish(change(t, 1.0)).unwrap();
    }
    hub.publish(change("a", 11.0)).unwrap();
    assert_eq!(replay_after(&hub, "a", 9), Some(vec![10, 11]));
    assert_eq!(replay_after(&hub, "a", 8), None, "no longer held");
    assert_eq!(hub.stats().history_messages, 8 + 2 + 8);
    let (_, held, complete) = hub.history("a", 0, 100).unwrap();
    assert_eq!((held.len(), complete), (2, false));

    // Topics removed: the share grows again (up to history_per_topic).
    for t in ["c", "d", "e", "f", "g", "h", "i", "j", "b"] {
        assert!(hub.remove_topic(t));
    }
    for n in 12..=30 {
        hub.publish(change("a", n as f64)).unwrap();
    }
    assert_eq!(replay_after(&hub, "a", 22), Some((23..=30).collect()));
    assert_eq!(hub.stats().history_messages, 8);
}

#[test]
fn stream_topics_keep_their_own_history() {
    let hub = budget_hub(4, 4);
    for t in ["s1", "s2", "s3", "s4"] {
        hub.publish(change(t, 1.0)).unwrap();
    }
    let mut event = change("ev", 1.0);
    event.event = true;
    for _ in 0..40 {
        hub.publish(event.clone()).unwrap();
    }
    let (_, held, _) = hub.history("ev", 0, 100).unwrap();
    assert_eq!(
        held.len(),
        40,
        "stream_history, not the state topics' budget"
    );
}

fn names(page: &[TopicInfo]) -> Vec<String> {
    page.iter().map(|t| t.name.to_string()).collect()
}

#[test]
fn pages_start_after_the_cursor_within_the_prefix() {
    let hub = budget_hub(4, 1_000);
    for t in ["a/1", "a/2", "a/3", "b/1", "b/2", "ba/1", "c"] {
        hub.publish(change(t, 1.0)).unwrap();
    }
    let page = |prefix, after, limit| {
        let (p, more) = hub.topics_page(prefix, after, limit);
        (names(&p), more)
    };
    assert_eq!(
        page("", None, 3),
        (vec!["a/1".into(), "a/2".into(), "a/3".into()], true)
    );
    assert_eq!(page("", Some("a/3"), 10).0, ["b/1", "b/2", "ba/1", "c"]);
    assert_eq!(
        page("b/", None, 10),
        (vec!["b/1".into(), "b/2".into()], false)
    );
    // A cursor before the prefix starts at the prefix; one past it ends there.
    assert_eq!(page("b/", Some("a/9"), 1), (vec!["b/1".into()], true));
    assert_eq!(page("b/", Some("b/1"), 1), (vec!["b/2".into()], false));
    assert_eq!(page("b/", Some("b/2"), 5), (vec![], false));
    assert_eq!(page("b/", Some("zzz"), 5), (vec![], false));
    // A cursor that is not a topic (removed meanwhile) still works.
    assert!(hub.remove_topic("a/2"));
    assert_eq!(page("a/", Some("a/2"), 5).0, ["a/3"]);
    assert_eq!(page("nothing/", None, 5), (vec![], false));
}

#[test]
fn patterns_read_only_their_prefix_and_come_sorted() {
    let hub = budget_hub(4, 1_000);
    for t in ["x/b", "x/a", "x/a/deep", "xy/a", "w/x", "y/a"] {
        hub.publish(change(t, 1.0)).unwrap();
    }
    let sub: Arc<dyn Subscriber> = Arc::new(Recorder::default());
    let attach = |p: &str| {
        let (slots, _) = hub.attach_matching(&Pattern::parse(p).unwrap(), &sub, 100);
        slots
            .iter()
            .map(|s| s.topic().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(attach("x/*"), ["x/a", "x/b"]);
    assert_eq!(attach("x/**"), ["x/a", "x/a/deep", "x/b"]);
    assert_eq!(attach("*/a"), ["x/a", "xy/a", "y/a"]);
    assert_eq!(attach("**").len(), 6);
}

#[test]
fn pattern_watchers_get_the_topics_they_name_created_later() {
    let hub = budget_hub(4, 1_000);
    let rec = Arc::new(Recorder::default());
    let sub: Arc<dyn Subscriber> = rec.clone();
    let patterns =
        |ps: &[&str]| -> Vec<Pattern> { ps.iter().map(|p| Pattern::parse(p).unwrap()).collect() };
    hub.watch_patterns(&sub, &patterns(&["q/a", "r/*", "q/a"]));
    assert_eq!(hub.stats().watchers, 1);
    for t in ["q/a", "q/b", "r/x", "r/x/y", "s"] {
        hub.publish(change(t, 1.0)).unwrap();
    }
    let mut got: Vec<String> = rec.take().iter().map(|s| s.topic().to_string()).collect();
    got.sort();
    assert_eq!(got, ["q/a", "r/x"], "one slot each, whatever matched twice");
    assert_eq!(hub.stats().slots, 2);

    // New patterns replace the old ones.
    hub.watch_patterns(&sub, &patterns(&["q/c"]));
    for t in ["q/c", "r/z", "q/d"] {
        hub.publish(change(t, 1.0)).unwrap();
    }
    let got: Vec<String> = rec.take().iter().map(|s| s.topic().to_string()).collect();
    assert_eq!(got, ["q/c"]);

    // Unwatched: nothing more, and nothing left in the index.
    hub.unwatch(&sub);
    assert_eq!(hub.stats().watchers, 0);
    hub.publish(change("q/e", 1.0)).unwrap();
    hub.remove_topic("q/c");
    rec.take();
    hub.publish(change("q/c", 2.0)).unwrap();
    assert!(rec.take().is_empty());
}

/// A change to `topic` whose one text field is `len` bytes long.
fn text_change(topic: &str, n: u64, len: usize) -> TopicChange {
    let mut c = change(topic, n as f64);
    c.delta
        .changed
        .push(("text".into(), FieldValue::Text("x".repeat(len))));
    c
}

#[test]
fn histories_share_a_byte_budget_and_keep_at_least_the_newest() {
    let small_footprint = {
        let hub = budget_hub(64, 1_000);
        hub.publish(text_change("probe", 1, 10)).unwrap();
        hub.stats().history_bytes
    };
    let bytes = 40 * small_footprint;
    let hub = Hub::new(HubConfig {
        history_per_topic: 64,
        history_budget: 1_000,
        history_bytes: bytes,
        max_topics: 1_000,
        stream_history: 64,
    });
    for n in 1..=30 {
        hub.publish(text_change("small", n, 10)).unwrap();
        hub.publish(text_change("large", n, 1_000)).unwrap();
    }
    // Two topics: each keeps what fits in half the bytes, whatever the count.
    let (_, small, _) = hub.history("small", 0, 100).unwrap();
    let (_, large, _) = hub.history("large", 0, 100).unwrap();
    // (Footprints from this hub: epochs, part of each message, differ in length
    // between hubs.)
    assert_eq!(small.len(), bytes / 2 / small[0].footprint());
    assert_eq!(large.len(), bytes / 2 / large[0].footprint());
    assert!((19..=20).contains(&small.len()) && (1..5).contains(&large.len()));
    let held: usize = small.iter().chain(&large).map(|m| m.footprint()).sum();
    assert!(held <= bytes, "{held} > {bytes}");
    assert_eq!(hub.stats().history_bytes, held);
    let oldest = small[0].seq();
    assert_eq!(
        replay_after(&hub, "small", oldest - 1),
        Some((oldest..=30).collect())
    );
    assert_eq!(
        replay_after(&hub, "small", oldest - 2),
        None,
        "no longer held"
    );

    // An update larger than a topic's share is still kept: it is the newest.
    hub.publish(text_change("large", 31, 40 * small_footprint))
        .unwrap();
    let (_, large, complete) = hub.history("large", 0, 100).unwrap();
    assert_eq!((large.len(), large[0].seq(), complete), (1, 31, false));
}
