//! Topics kept across restarts: each checkpoint also saves the pipeline's topics
//! (position, newest messages, state; see [`SavedTopic`]) and who created them,
//! consistently with its offsets (the task publishes nothing while it takes
//! them; the checkpoint's writer makes them whole and encodes them). At start
//! they are restored into the topic state and the broker before anything is read, so that a subscriber resumes with `since` after a restart:
//! every change after its position replayed when the saved history reaches back
//! to it, and the same epoch. After a crash, what was published after the last
//! checkpoint is lost: the broker then makes those positions unresumable
//! (`clean` is false), and the records are read and published again.

use std::io;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use wasmeter_core::saved::{SavedTopic, SavedTopicRef, TakenTopic};
use wasmeter_source::StreamedValue;

use crate::footprint::{Footprints, TopicKind};
use crate::samples::SeriesPoint;
use crate::state::lock;
use crate::topics::{Broker, Topics};

/// The checkpoint entry holding the topics (not a plugin name: those have no `:`).
pub(crate) const KEY: &str = "wasmeter:topics";

/// Version of the encoding below.
const VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Saved {
    version: u32,
    /// Written by the final checkpoint of a pipeline that stopped: nothing was
    /// published after it.
    clean: bool,
    topics: Vec<Entry>,
    /// Sample series whose topics were not created (nobody watched for them):
    /// their newest points (see `unread.rs`).
    #[serde(default)]
    series: Vec<DormantSeries>,
}

#[derive(Serialize, Deserialize)]
struct DormantSeries {
    /// The plugin instance that wrote it.
    creator: String,
    topic: String,
    value: f64,
    timestamp_ms: i64,
}

/// [`DormantSeries`] as it is written: the names borrowed, not copied (tens of
/// thousands of them at once).
#[derive(Serialize)]
struct DormantSeriesRef<'a> {
    creator: &'a str,
    topic: &'a str,
    value: f64,
    timestamp_ms: i64,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    /// The plugin instance that created it; empty for the pipeline's own topics.
    creator: String,
    kind: Kind,
    topic: SavedTopic,
}

/// [`Entry`] as it is written: the topic lent, not copied.
#[derive(Serialize)]
struct EntryRef<'a> {
    creator: &'a str,
    kind: Kind,
    topic: &'a SavedTopicRef<'a>,
}

#[derive(Clone, Copy, Serialize, Deserialize)]
enum Kind {
    Topic,
    Stream,
    Series,
}

impl From<TopicKind> for Kind {
    fn from(k: TopicKind) -> Self {
        match k {
            TopicKind::Topic => Kind::Topic,
            TopicKind::Stream => Kind::Stream,
            TopicKind::Series => Kind::Series,
        }
    }
}

impl From<Kind> for TopicKind {
    fn from(k: Kind) -> Self {
        match k {
            Kind::Topic => TopicKind::Topic,
            Kind::Stream => TopicKind::Stream,
            Kind::Series => TopicKind::Series,
        }
    }
}

/// Bytes of topics encoded before they are written to the checkpoint's file.
const PIECE_BYTES: usize = 256 * 1024;

/// The topics a checkpoint saves, taken while the pipeline waits ([`take`])
/// and encoded and written by the checkpoint's writer ([`Taken::write`]).
pub(crate) struct Taken {
    clean: bool,
    /// Each topic, its creator (empty for the pipeline's own) and kind.
    topics: Vec<(Arc<str>, Kind, Box<dyn TakenTopic>)>,
    /// Dormant series: creator, topic, newest point.
    series: Vec<(Arc<str>, Arc<str>, SeriesPoint)>,
}

/// Takes the pipeline's topics (those its plugins created, and `own`, its error
/// summary) as the broker holds them now, and the points of its dormant series
/// (`dormant`: how many there are, and the point of one), for a checkpoint. The
/// pipeline publishes nothing while it takes them; the broker copies nothing,
/// and the writer encodes each from what the broker lends. None is taken if the broker keeps no
/// positions and nothing is dormant.
pub(crate) fn take(
    footprints: &Footprints,
    own: &Arc<str>,
    broker: &dyn Broker,
    (dormant_count, dormant): (usize, impl Fn(&str) -> Option<SeriesPoint>),
    (max_messages, max_events): (usize, usize),
    clean: bool,
) -> Taken {
    let no_creator: Arc<str> = Arc::from("");
    let own = std::iter::once((own, &no_creator, TopicKind::Topic));
    // Each list at its size at once (a footprint is a topic or a series not
    // created, dormant or not): at 10,000 symbols, growing the dormant series'
    // points by doubling touched 6 MiB more, and every checkpoint did it again.
    let dormant_count = dormant_count.min(footprints.len());
    let mut taken = Taken {
        clean,
        topics: Vec::with_capacity(footprints.len() - dormant_count + 1),
        series: Vec::with_capacity(dormant_count),
    };
    for (topic, creator, kind) in footprints.topics().chain(own) {
        // A dormant series is not a topic of the broker (it becomes one, and
        // stops being dormant, when someone watches for it): its point is all
        // there is to take. Asked first, it spares the broker a look-up that
        // finds nothing: at 10,000 symbols most footprints are dormant series.
        if kind == TopicKind::Series
            && let Some(point) = dormant(topic)
        {
            taken.series.push((creator.clone(), topic.clone(), point));
            continue;
        }
        let max = match kind {
            TopicKind::Stream => max_events,
            _ => max_messages,
        };
        if let Some(t) = broker.take_topic(topic, max) {
            taken.topics.push((creator.clone(), kind.into(), t));
        }
    }
    taken
}

impl Taken {
    /// Writes the topics and dormant series into the checkpoint's `value` as
    /// `rmp_serde::to_vec_named` encodes [`Saved`], a piece at a time: neither
    /// every topic made whole nor their encoding is ever held at once (at 50,000
    /// topics, either was tens of MiB; the points of 40,000 dormant series
    /// encoded at once, 4 MiB grown by doubling). Writes nothing when nothing was taken;
    /// `Ok(false)` (the topics are not saved) if one cannot be encoded (logged).
    /// Blocking: the checkpoint's writer thread.
    pub(crate) fn write(self, value: &mut StreamedValue<'_>) -> io::Result<bool> {
        use std::io::Write;
        if self.topics.is_empty() && self.series.is_empty() {
            return Ok(true);
        }
        let (Ok(topics), Ok(series)) = (
            u32::try_from(self.topics.len()),
            u32::try_from(self.series.len()),
        ) else {
            tracing::error!(
                topics = self.topics.len(),
                series = self.series.len(),
                "too many topics to save"
            );
            return Ok(false);
        };
        let mut out = Vec::with_capacity(PIECE_BYTES + PIECE_BYTES / 8);
        let mut flush = |out: &mut Vec<u8>| -> io::Result<()> {
            if out.len() >= PIECE_BYTES {
                value.write_all(out)?;
                out.clear();
            }
            Ok(())
        };
        out.push(FIXMAP_4);
        // The fields of `Saved` in order; topics and series are arrays of
        // their counts.
        let header = encode(&mut out, &"version")
            && encode(&mut out, &VERSION)
            && encode(&mut out, &"clean")
            && encode(&mut out, &self.clean)
            && encode(&mut out, &"topics");
        if !header {
            return Ok(false);
        }
        array_32(&mut out, topics);
        for (creator, kind, topic) in self.topics {
            let encoded = topic.with_saved(&mut |topic| {
                let entry = EntryRef {
                    creator: &creator,
                    kind,
                    topic,
                };
                encode(&mut out, &entry)
            });
            if !encoded {
                return Ok(false);
            }
            flush(&mut out)?;
        }
        if !encode(&mut out, &"series") {
            return Ok(false);
        }
        array_32(&mut out, series);
        for (creator, topic, point) in &self.series {
            let entry = DormantSeriesRef {
                creator,
                topic,
                value: point.value,
                timestamp_ms: point.timestamp_ms,
            };
            if !encode(&mut out, &entry) {
                return Ok(false);
            }
            flush(&mut out)?;
        }
        value.write_all(&out)?;
        Ok(true)
    }
}

/// Appends MessagePack's header of an array of `len` items, its length in 4
/// bytes whatever it is (valid for any length, and known before the items).
fn array_32(out: &mut Vec<u8>, len: u32) {
    out.push(ARRAY_32);
    out.extend_from_slice(&len.to_be_bytes());
}

/// MessagePack's marker of a map of 4 entries.
const FIXMAP_4: u8 = 0x84;
/// MessagePack's marker of an array whose length follows in 4 bytes.
const ARRAY_32: u8 = 0xdd;

/// Appends `value` as `rmp_serde::to_vec_named` encodes it. False, and
/// logged, if it cannot be encoded.
fn encode<T: Serialize>(out: &mut Vec<u8>, value: &T) -> bool {
    match rmp_serde::encode::write_named(out, value) {
        Ok(()) => true,
        Err(error) => {
            tracing::error!(%error, "cannot encode the pipeline's topics; they are not saved");
            false
        }
    }
}

/// A restored topic and the plugin instance that created it.
pub(crate) struct Created {
    pub topic: Arc<str>,
    pub creator: Arc<str>,
    pub kind: TopicKind,
}

/// What a restore brought back.
pub(crate) struct Restored {
    /// Who created each topic (for the pipeline's footprints).
    pub creators: Vec<Created>,
    /// The save was the final checkpoint of a pipeline that stopped.
    pub clean: bool,
    /// The dormant series and their newest points (their creators are in `creators`).
    pub dormant: Vec<(Arc<str>, SeriesPoint)>,
}

/// Restores the topics of a checkpoint into the state store and the broker.
/// Topics that cannot be restored start afresh, with a new epoch, and the log
/// says why. A topic the broker already holds keeps the broker's state.
pub(crate) fn restore(pipeline: &str, bytes: &[u8], topics: &Topics) -> Restored {
    let afresh = Restored {
        creators: Vec::new(),
        clean: true,
        dormant: Vec::new(),
    };
    let saved: Saved = match rmp_serde::from_slice(bytes) {
        Ok(s) => s,
        Err(error) => {
            tracing::warn!(%pipeline, %error, "the checkpoint's topics cannot be read; they start afresh (subscribers resync)");
            return afresh;
        }
    };
    if saved.version != VERSION {
        tracing::warn!(%pipeline, version = saved.version, "the checkpoint's topics are of an unknown version; they start afresh (subscribers resync)");
        return afresh;
    }
    let mut creators = Vec::new();
    let mut restored = 0usize;
    for entry in saved.topics {
        let name: Arc<str> = entry.topic.topic.as_str().into();
        // What subscribers hold is the broker's topic when it has one (a broker
        // several hosts share, or the pipeline restarted in a running host):
        // the deltas from here on are computed against that, never against an
        // older state in the checkpoint.
        match topics.broker().save_topic(&name, 1) {
            Some(held) => lock(&topics.store().entry(&name)).restore(&held),
            None => lock(&topics.store().entry(&name)).restore(&entry.topic),
        }
        if topics.broker().restore_topic(entry.topic, saved.clean) {
            restored += 1;
        }
        if !entry.creator.is_empty() {
            creators.push(Created {
                topic: name,
                creator: entry.creator.into(),
                kind: entry.kind.into(),
            });
        }
    }
    let mut dormant = Vec::with_capacity(saved.series.len());
    for s in saved.series {
        let topic: Arc<str> = s.topic.into();
        let point = SeriesPoint {
            value: s.value,
            timestamp_ms: s.timestamp_ms,
        };
        creators.push(Created {
            topic: topic.clone(),
            creator: s.creator.into(),
            kind: TopicKind::Series,
        });
        dormant.push((topic, point));
    }
    tracing::info!(%pipeline, topics = restored, dormant_series = dormant.len(), clean = saved.clean, "topics restored from the checkpoint");
    Restored {
        creators,
        clean: saved.clean,
        dormant,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use wasmeter_core::change::TopicChange;
    use wasmeter_core::delta::Delta;
    use wasmeter_core::field::FieldValue;
    use wasmeter_core::saved::SavedMessage;

    use super::*;
    use crate::owners::TopicOwners;
    use crate::state::StateConfig;
    use crate::topics::Refused;

    /// Keeps saved topics by name, as a hub would.
    #[derive(Default)]
    struct Kept(Mutex<BTreeMap<String, SavedTopic>>);

    impl Broker for Kept {
        fn publish(&self, _: TopicChange) -> Result<(), Refused> {
            Ok(())
        }
        fn remove_topic(&self, _: &str) {}
        fn save_topic(&self, topic: &str, _: usize) -> Option<SavedTopic> {
            self.0.lock().unwrap().get(topic).cloned()
        }
        fn restore_topic(&self, saved: SavedTopic, _: bool) -> bool {
            self.0.lock().unwrap().insert(saved.topic.clone(), saved);
            true
        }
    }

    fn saved(topic: &str, value: f64) -> SavedTopic {
        let state = BTreeMap::from([("v".to_string(), FieldValue::Number(value))]);
        SavedTopic {
            topic: topic.into(),
            epoch: format!("e-{topic}"),
            stream: false,
            next_seq: 8,
            messages: vec![SavedMessage {
                seq: 7,
                prev_seq: 6,
                timestamp_ms: 1,
                delta: Delta {
                    changed: state.clone().into_iter().collect(),
                    removed: Vec::new(),
                },
                stale: Vec::new(),
            }],
            state: state.into(),
            stale: Vec::new(),
        }
    }

    /// What [`take`] takes, written into a checkpoint file and read back.
    fn saved_through_a_checkpoint(
        footprints: &Footprints,
        own: &Arc<str>,
        broker: &dyn Broker,
        dormant: (usize, impl Fn(&str) -> Option<SeriesPoint>),
    ) -> Option<Vec<u8>> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoint");
        let taken = take(footprints, own, broker, dormant, (16, 16), true);
        wasmeter_source::Checkpoint::default()
            .save_streamed(&path, KEY, |v| taken.write(v))
            .unwrap();
        let mut cp = wasmeter_source::Checkpoint::load(&path).unwrap().unwrap();
        cp.extra.remove(KEY)
    }

    #[tokio::test]
    async fn topics_saved_one_at_a_time_restore_as_saved_and_missing_ones_are_skipped() {
        let mut footprints = Footprints::new("p", vec!["t".into()], 100, TopicOwners::default());
        let kept = Kept::default();
        for (i, topic) in ["t/a", "t/b", "t/gone"].into_iter().enumerate() {
            footprints
                .admit("csv", 100, topic, TopicKind::Topic)
                .unwrap();
            if topic != "t/gone" {
                kept.restore_topic(saved(topic, i as f64), true);
            }
        }
        // Series topics never created: one dormant (its point is saved), one
        // not (nothing to save).
        let point = SeriesPoint {
            value: 2.5,
            timestamp_ms: 7,
        };
        for topic in ["metrics/m/x", "metrics/m/y"] {
            footprints
                .admit("csv", 100, topic, TopicKind::Series)
                .unwrap();
        }
        let dormant = |topic: &str| (topic == "metrics/m/x").then_some(point);
        let own: Arc<str> = "_wasmeter/errors/p".into();
        kept.restore_topic(saved(&own, 9.0), true);
        let bytes =
            saved_through_a_checkpoint(&footprints, &own, &kept, (1, dormant)).expect("saved");

        let decoded: Saved = rmp_serde::from_slice(&bytes).unwrap();
        assert!(decoded.clean);
        let mut names: Vec<&str> = decoded.topics.iter().map(|e| &*e.topic.topic).collect();
        names.sort_unstable();
        assert_eq!(names, ["_wasmeter/errors/p", "t/a", "t/b"]);

        let into = Arc::new(Kept::default());
        let topics = Topics::new(&StateConfig::default(), into.clone());
        let restored = restore("p", &bytes, &topics);
        assert_eq!(
            restored.creators.len(),
            3,
            "the pipeline's own topic has no creator"
        );
        let series = restored
            .creators
            .iter()
            .find(|c| &*c.topic == "metrics/m/x");
        assert!(series.is_some_and(|c| &*c.creator == "csv" && c.kind == TopicKind::Series));
        assert_eq!(restored.dormant, [(Arc::from("metrics/m/x"), point)]);
        assert!(
            !topics.store().contains("metrics/m/x"),
            "a dormant series is no topic"
        );
        for (topic, value) in [("t/a", 0.0), ("t/b", 1.0), ("_wasmeter/errors/p", 9.0)] {
            assert_eq!(into.save_topic(topic, 1), Some(saved(topic, value)));
            let state = topics.store().get(topic).expect("in the state store");
            assert_eq!(state.get("v"), Some(&FieldValue::Number(value)));
        }
    }

    /// Thousands of topics and dormant series are written in several pieces;
    /// with nothing to save, nothing is saved.
    #[tokio::test]
    async fn many_topics_go_over_in_pieces_and_none_leave_the_state_out() {
        let mut footprints = Footprints::new("p", vec!["t".into()], 20_000, TopicOwners::default());
        let kept = Kept::default();
        let (n, series) = (3_000, 6_000);
        for i in 0..n {
            let topic = format!("t/{i:05}-{}", "x".repeat(100));
            footprints
                .admit("csv", 20_000, &topic, TopicKind::Topic)
                .unwrap();
            kept.restore_topic(saved(&topic, i as f64), true);
        }
        for i in 0..series {
            let topic = format!("t/s/{i:05}-{}", "y".repeat(100));
            footprints
                .admit("csv", 20_000, &topic, TopicKind::Series)
                .unwrap();
        }
        let point = |topic: &str| {
            let i = topic.strip_prefix("t/s/")?[..5].parse::<i64>().ok()?;
            Some(SeriesPoint {
                value: i as f64 / 2.0,
                timestamp_ms: i,
            })
        };
        let own: Arc<str> = "_wasmeter/errors/p".into();
        let bytes =
            saved_through_a_checkpoint(&footprints, &own, &kept, (series, point)).expect("saved");
        let decoded: Saved = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(decoded.topics.len(), n);
        for e in &decoded.topics {
            let i: usize = e.topic.topic[2..7].parse().unwrap();
            assert_eq!(e.topic, saved(&e.topic.topic, i as f64));
        }
        // The series alone take several pieces.
        let series_bytes = bytes.len() - rmp_serde::to_vec_named(&decoded.topics).unwrap().len();
        assert!(series_bytes > 2 * PIECE_BYTES, "{series_bytes} bytes");
        assert_eq!(decoded.series.len(), series);
        for s in &decoded.series {
            let expected = point(&s.topic).unwrap();
            assert_eq!(
                (s.creator.as_str(), s.value, s.timestamp_ms),
                ("csv", expected.value, expected.timestamp_ms)
            );
        }

        let none = Kept::default();
        assert_eq!(
            saved_through_a_checkpoint(&footprints, &own, &none, (0, |_: &str| None)),
            None
        );
    }
}
