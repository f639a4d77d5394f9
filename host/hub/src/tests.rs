//! Hub behaviour seen from a subscriber, without any networking.

use std::sync::{Arc, Mutex};

use wasmeter_core::change::TopicChange;
use wasmeter_core::delta::Delta;
use wasmeter_core::field::{FieldValue, TopicState};

use crate::*;

/// A subscriber that records notifications.
#[derive(Default)]
pub(crate) struct Recorder {
    notified: Mutex<Vec<Arc<Slot>>>,
    pub(crate) pattern: Option<Pattern>,
}

impl Subscriber for Recorder {
    fn notify(&self, slot: &Arc<Slot>) {
        self.notified.lock().unwrap().push(slot.clone());
    }
    fn wants(&self, topic: &str) -> bool {
        self.pattern.as_ref().is_some_and(|p| p.matches(topic))
    }
}

impl Recorder {
    pub(crate) fn take(&self) -> Vec<Arc<Slot>> {
        std::mem::take(&mut *self.notified.lock().unwrap())
    }
}

pub(crate) fn change(topic: &str, n: f64) -> TopicChange {
    TopicChange {
        topic: topic.into(),
        delta: Delta {
            changed: vec![("n".into(), FieldValue::Number(n))],
            removed: vec![],
        },
        stale: vec![],
        state: Arc::new(TopicState::from([("n".to_string(), FieldValue::Number(n))])),
        timestamp_ms: n as i64,
        event: false,
    }
}

fn hub(history: usize) -> Hub {
    Hub::new(HubConfig {
        history_per_topic: history,
        max_topics: 3,
        stream_history: history,
        ..HubConfig::default()
    })
}

#[test]
fn positions_count_per_topic_and_epochs_differ() {
    let hub = hub(4);
    let a1 = hub.publish(change("a", 1.0)).unwrap();
    let a2 = hub.publish(change("a", 2.0)).unwrap();
    let b1 = hub.publish(change("b", 1.0)).unwrap();
    assert_eq!((a1.seq, a2.seq, b1.seq), (1, 2, 1));
    assert_eq!(a1.epoch, a2.epoch);
    assert_ne!(a1.epoch, b1.epoch);
    let (pos, state) = hub.snapshot("a").unwrap();
    assert_eq!(pos, a2);
    assert_eq!(state["n"], FieldValue::Number(2.0));

    assert!(hub.remove_topic("a"));
    assert!(hub.snapshot("a").is_none());
    let again = hub.publish(change("a", 3.0)).unwrap();
    assert_eq!(again.seq, 1);
    assert_ne!(
        again.epoch, a1.epoch,
        "a recreated topic starts a new epoch"
    );
    let (page, more) = hub.topics_page("", None, 10);
    assert!(!more);
    let names: Vec<_> = page.iter().map(|t| t.name.to_string()).collect();
    assert_eq!(names, ["a", "b"]);
}

#[test]
fn limits_and_bad_names_are_typed_errors() {
    let hub = hub(4);
    assert!(matches!(
        hub.publish(change("a b", 1.0)),
        Err(PublishError::InvalidTopic(_))
    ));
    for t in ["x", "y", "z"] {
        hub.publish(change(t, 1.0)).unwrap();
    }
    let e = hub.publish(change("w", 1.0)).unwrap_err();
    assert!(e.to_string().contains("`w`"), "{e}");
    hub.publish(change("x", 2.0)).unwrap();
}

#[test]
fn a_slot_is_notified_once_until_it_reads() {
    let hub = hub(8);
    hub.publish(change("a", 1.0)).unwrap();
    let rec = Arc::new(Recorder::default());
    let sub: Arc<dyn Subscriber> = rec.clone();
    let slot = hub.attach("a", &sub).unwrap();
    let same = hub.attach("a", &sub).unwrap();
    assert!(Arc::ptr_eq(&slot, &same), "attach is idempotent");
    assert_eq!(hub.stats().slots, 1);

    for n in 2..=5 {
        hub.publish(change("a", n as f64)).unwrap();
    }
    assert_eq!(rec.take().len(), 1, "one wake-up for four messages");
    slot.clear_dirty();
    let seqs: Vec<u64> = slot.read(|log| log.after(2).unwrap().map(|m| m.seq()).collect());
    assert_eq!(seqs, [3, 4, 5]);
    hub.publish(change("a", 6.0)).unwrap();
    assert_eq!(rec.take().len(), 1);

    hub.detach(&slot);
    hub.publish(change("a", 7.0)).unwrap();
    assert!(rec.take().is_empty());
    assert_eq!(hub.stats().slots, 0);
}

#[test]
fn history_replays_all_or_nothing() {
    let hub = hub(3);
    for n in 1..=10 {
        hub.publish(change("a", n as f64)).unwrap();
    }
    let rec: Arc<dyn Subscriber> = Arc::new(Recorder::default());
    let slot = hub.attach("a", &rec).unwrap();
    slot.read(|log| {
        assert_eq!(log.latest().seq(), 10);
        assert_eq!(log.after(7).unwrap().count(), 3);
        assert_eq!(log.after(10).unwrap().count(), 0);
        assert!(log.after(6).is_none(), "7 is gone: no partial replay");
        assert!(log.after(11).is_none());
    });
}

#[test]
fn watchers_get_topics_created_later_and_removals() {
    let hub = hub(8);
    let rec = Arc::new(Recorder {
        pattern: Some(Pattern::parse("trades/*").unwrap()),
        ..Default::default()
    });
    let sub: Arc<dyn Subscriber> = rec.clone();
    hub.watch(sub.clone());
    hub.watch(sub.clone());
    assert_eq!(hub.stats().watchers, 1);

    hub.publish(change("trades/BTC", 1.0)).unwrap();
    hub.publish(change("system/cpu", 1.0)).unwrap();
    let got = rec.take();
    assert_eq!(got.len(), 1);
    assert_eq!(&**got[0].topic(), "trades/BTC");
    assert_eq!(got[0].latest().seq(), 1);

    got[0].clear_dirty();
    hub.remove_topic("trades/BTC");
    let got = rec.take();
    assert!(got[0].is_removed());
    assert_eq!(hub.stats().slots, 0);

    hub.unwatch(&sub);
    hub.publish(change("trades/ETH", 1.0)).unwrap();
    assert!(rec.take().is_empty());
    assert_eq!(hub.stats().watchers, 0);
}

#[test]
fn attach_matching_is_sorted_and_bounded() {
    let hub = Hub::new(HubConfig::default());
    for t in ["t/c", "t/a", "t/b", "u/a"] {
        hub.publish(change(t, 1.0)).unwrap();
    }
    let sub: Arc<dyn Subscriber> = Arc::new(Recorder::default());
    let (slots, truncated) = hub.attach_matching(&Pattern::parse("t/*").unwrap(), &sub, 2);
    let names: Vec<_> = slots.iter().map(|s| s.topic().to_string()).collect();
    assert_eq!(names, ["t/a", "t/b"]);
    assert!(truncated);
    let (exact, _) = hub.attach_matching(&Pattern::parse("u/a").unwrap(), &sub, 10);
    assert_eq!(exact.len(), 1);
}

#[test]
fn concurrent_publishers_get_distinct_consecutive_seqs() {
    let hub = Arc::new(Hub::new(HubConfig::default()));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let hub = hub.clone();
            std::thread::spawn(move || {
                (0..500)
                    .map(|i| hub.publish(change("a", i as f64)).unwrap().seq)
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut all: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    all.sort_unstable();
    assert_eq!(all, (1..=2000).collect::<Vec<_>>());
    assert_eq!(hub.stats().published, 2000);
}

#[test]
fn publishers_racing_to_create_a_topic_each_get_their_own_seq() {
    // Four publishers send the first messages of the same 2,000 topics at
    // once: whoever creates a topic must report its own message's position,
    // even when another appends to the topic before the creator returns.
    const TOPICS: usize = 2_000;
    let hub = Arc::new(Hub::new(HubConfig::default()));
    let start = Arc::new(std::sync::Barrier::new(4));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (hub, start) = (hub.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                (0..TOPICS)
                    .map(|t| hub.publish(change(&format!("race/{t}"), 1.0)).unwrap().seq)
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let seqs: Vec<Vec<u64>> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    for t in 0..TOPICS {
        let mut got: Vec<u64> = seqs.iter().map(|s| s[t]).collect();
        got.sort_unstable();
        assert_eq!(got, [1, 2, 3, 4], "topic race/{t}");
    }
}

/// The seqs a subscriber at `after` would be replayed, or `None` for a gap.
pub(crate) fn replay_after(hub: &Hub, topic: &str, after: u64) -> Option<Vec<u64>> {
    let me: Arc<dyn Subscriber> = Arc::new(Recorder::default());
    let slot = hub.attach(topic, &me).unwrap();
    slot.read(|log| log.after(after).map(|it| it.map(|m| m.seq()).collect()))
}

#[test]
fn a_saved_topic_comes_back_with_its_epoch_seqs_and_history() {
    let old = hub(8);
    for n in 1..=5 {
        old.publish(change("a", n as f64)).unwrap();
    }
    let saved = old.save_topic("a", 3).unwrap();
    assert_eq!(
        saved.messages.iter().map(|m| m.seq).collect::<Vec<_>>(),
        [3, 4, 5]
    );
    let epoch = old.snapshot("a").unwrap().0.epoch;

    // After a clean stop: the same epoch, and the seqs simply go on.
    let clean = hub(8);
    assert!(clean.restore_topic(saved.clone(), true));
    let (pos, state) = clean.snapshot("a").unwrap();
    assert_eq!((pos.epoch.as_str(), pos.seq), (epoch.as_str(), 5));
    assert_eq!(state["n"], FieldValue::Number(5.0));
    assert_eq!(clean.publish(change("a", 6.0)).unwrap().seq, 6);
    assert_eq!(replay_after(&clean, "a", 2), Some(vec![3, 4, 5, 6]));
    assert_eq!(
        replay_after(&clean, "a", 1),
        None,
        "older than what was saved"
    );
    assert!(!clean.restore_topic(saved.clone(), true), "exists already");

    // After a crash: whatever was published after the save is lost, so the next
    // seq skips past it and positions from then cannot be resumed from.
    let crashed = hub(8);
    assert!(crashed.restore_topic(saved.clone(), false));
    let next = crashed.publish(change("a", 6.0)).unwrap();
    assert_eq!(next.seq, 6 + (1 << 32));
    assert_eq!(next.epoch, epoch);
    assert_eq!(replay_after(&crashed, "a", 4), Some(vec![5, next.seq]));
    assert_eq!(replay_after(&crashed, "a", 5), Some(vec![next.seq]));
    assert_eq!(
        replay_after(&crashed, "a", 6),
        None,
        "a position lost in the crash"
    );
    assert_eq!(crashed.publish(change("a", 7.0)).unwrap().seq, next.seq + 1);

    // Saved right after that restore, then crashed again before the next save:
    // the next restore skips further, past every seq the crashed one used.
    let restarted = hub(8);
    assert!(restarted.restore_topic(saved, false));
    let resaved = restarted.save_topic("a", 3).unwrap();
    assert_eq!(resaved.next_seq, 6 + (1 << 32));
    let again = hub(8);
    assert!(again.restore_topic(resaved, false));
    assert_eq!(again.publish(change("a", 6.0)).unwrap().seq, 6 + (2 << 32));
}

/// A topic taken for a checkpoint is saved as it was then, whatever is
/// published before it is made whole: the messages up to its newest then, that
/// one's state and the next seq; fewer if the history dropped older ones since,
/// the newest then alone if it dropped that one too.
#[test]
fn a_taken_topic_is_saved_as_it_was_when_taken() {
    let hub = hub(8);
    for n in 1..=5 {
        hub.publish(change("a", n as f64)).unwrap();
    }
    let as_saved_then = hub.save_topic("a", 3).unwrap();
    let taken = hub.take_topic("a", 3).unwrap();
    let dropping = hub.take_topic("a", 8).unwrap();
    let gone = hub.take_topic("a", 8).unwrap();
    for n in 6..=7 {
        hub.publish(change("a", n as f64)).unwrap();
    }
    assert_eq!(taken.saved(), Some(as_saved_then), "6 and 7 came after");
    // After three more the history (8 messages) holds 3-10: of those up to 5,
    // 3-5 are left.
    for n in 8..=10 {
        hub.publish(change("a", n as f64)).unwrap();
    }
    let saved = dropping.saved().unwrap();
    assert_eq!(
        saved.messages.iter().map(|m| m.seq).collect::<Vec<_>>(),
        [3, 4, 5]
    );
    assert_eq!(
        (saved.next_seq, saved.state["n"].clone()),
        (6, FieldValue::Number(5.0))
    );
    // After eight more (11-18) none of them is held but the newest then.
    for n in 11..=18 {
        hub.publish(change("a", n as f64)).unwrap();
    }
    let saved = gone.saved().unwrap();
    assert_eq!(
        saved.messages.iter().map(|m| m.seq).collect::<Vec<_>>(),
        [5]
    );
    assert_eq!(saved.state["n"], FieldValue::Number(5.0));
}

/// Two hubs fed the same positioned changes, one of them missing some.
#[test]
fn a_replica_takes_positions_as_given_and_drops_its_history_across_a_gap() {
    let replica = hub(8);
    let sub: Arc<dyn Subscriber> = Arc::new(Recorder::default());
    assert_eq!(
        replica.apply("e1", (40, 41), change("a", 41.0), true),
        Ok(Applied::Created)
    );
    let slot = replica.attach("a", &sub).unwrap();
    assert_eq!(
        replica.apply("e1", (41, 42), change("a", 42.0), true),
        Ok(Applied::Appended)
    );
    assert_eq!(
        replica.apply("e1", (41, 42), change("a", 42.0), true),
        Ok(Applied::Duplicate)
    );
    assert_eq!(replica.head("a"), Some(("e1".into(), 42)));
    // A subscriber at 41 (on this host or another) resumes from here.
    let (epoch, held, complete) = replica.history("a", 41, 10).unwrap();
    assert_eq!((&*epoch, held.len(), complete), ("e1", 1, true));

    // 43 and 44 were lost: the history cannot serve anyone behind 44.
    assert_eq!(
        replica.apply("e1", (44, 45), change("a", 45.0), true),
        Ok(Applied::Reset)
    );
    let (_, held, complete) = replica.history("a", 42, 10).unwrap();
    assert!(!complete, "a position before the gap needs a snapshot");
    assert_eq!(held.iter().map(|m| m.seq()).collect::<Vec<_>>(), vec![45]);
    assert!(replica.history("a", 44, 10).unwrap().2);
    let (position, state) = replica.snapshot("a").unwrap();
    assert_eq!(
        (position.seq, state["n"].clone()),
        (45, FieldValue::Number(45.0))
    );
    // Told the caller it is not continuous: dropped even when it would follow.
    assert_eq!(
        replica.apply("e1", (45, 46), change("a", 46.0), false),
        Ok(Applied::Reset)
    );
    assert!(!replica.history("a", 44, 10).unwrap().2);

    // Another epoch: the topic was recreated where it is produced.
    assert_eq!(
        replica.apply("e2", (0, 1), change("a", 1.0), true),
        Ok(Applied::Replaced)
    );
    assert!(slot.is_removed(), "subscribers of the old epoch are told");
    assert_eq!(replica.head("a"), Some(("e2".into(), 1)));
    // The kind of a topic is kept.
    let mut event = change("a", 2.0);
    event.event = true;
    assert!(matches!(
        replica.apply("e2", (1, 2), event, true),
        Err(PublishError::KindMismatch { .. })
    ));
}

#[test]
fn a_topic_is_read_while_it_has_subscribers_or_is_watched_for() {
    let hub = Hub::new(HubConfig::default());
    assert!(!hub.is_read("t/a"), "nobody watches for it");
    hub.publish(change("t/a", 1.0)).unwrap();
    assert!(!hub.is_read("t/a"));

    let sub: Arc<dyn Subscriber> = Arc::new(Recorder::default());
    let (slots, _) = hub.attach_matching(&Pattern::parse("t/*").unwrap(), &sub, 10);
    assert!(hub.is_read("t/a"));
    hub.detach(&slots[0]);
    assert!(!hub.is_read("t/a"));

    // Watched for before it exists (asked, by pattern, by name); each watch
    // moves the generation, which says when to ask again.
    let before = hub.watch_generation();
    let rec = Arc::new(Recorder {
        pattern: Some(Pattern::parse("t/*").unwrap()),
        ..Default::default()
    });
    hub.watch(rec.clone());
    assert!(hub.is_read("t/b") && !hub.is_read("u/b"));
    hub.publish(change("t/b", 1.0)).unwrap();
    assert!(hub.is_read("t/b"), "attached once created");
    let patterns = [Pattern::parse("u/*").unwrap(), Pattern::parse("v").unwrap()];
    hub.watch_patterns(&sub, &patterns);
    assert!(hub.is_read("u/b") && hub.is_read("v") && !hub.is_read("w"));
    assert_eq!(hub.watch_generation(), before + 2);
}

#[test]
fn dormant_topics_are_listed_in_order_until_created() {
    let hub = Hub::new(HubConfig::default());
    for t in ["m/b", "x"] {
        hub.publish(change(t, 1.0)).unwrap();
    }
    let g0 = hub.generation();
    for t in ["m/a", "m/c", "m/d", "x"] {
        hub.set_dormant(&Arc::from(t), true);
    }
    assert!(!hub.is_dormant("x"), "a topic that exists is never dormant");
    assert_eq!(hub.generation(), g0 + 3);
    let listed = |prefix: &str, after: Option<&str>, limit: usize| {
        let (page, more) = hub.topics_page(prefix, after, limit);
        let names: Vec<String> = page
            .iter()
            .map(|t| format!("{}{}", t.name, if t.dormant { "?" } else { "" }))
            .collect();
        (names, more)
    };
    assert_eq!(
        listed("m/", None, 10),
        (
            vec!["m/a?".into(), "m/b".into(), "m/c?".into(), "m/d?".into()],
            false
        )
    );
    // Pages across both sets.
    assert_eq!(
        listed("", None, 2),
        (vec!["m/a?".into(), "m/b".into()], true)
    );
    assert_eq!(
        listed("", Some("m/b"), 2),
        (vec!["m/c?".into(), "m/d?".into()], true)
    );
    assert_eq!(listed("", Some("m/d"), 2), (vec!["x".into()], false));

    // Created: a topic like any other; dropped: no longer listed.
    hub.publish(change("m/c", 1.0)).unwrap();
    hub.set_dormant(&Arc::from("m/d"), false);
    assert!(!hub.is_dormant("m/c") && !hub.is_dormant("m/d") && hub.is_dormant("m/a"));
    assert_eq!(listed("m/", None, 10).0, ["m/a?", "m/b", "m/c"]);
    assert_eq!(hub.stats().topics, 3);
}
