//! The wire form of data frames (`update`, `snapshot`, `event`) in JSON and MessagePack.
//!
//! Both formats carry the same structure. JSON goes in WebSocket text frames,
//! MessagePack (maps with string keys, as `rmp_serde::to_vec_named` writes them) in
//! binary frames. A delta is an RFC 7396 merge patch: a changed field maps to its
//! value, a removed field to `null` (nil).
//!
//! The [`Envelope`] is how a data frame is laid out: by default a map whose `type`
//! names the frame; with the opt-in compact envelope a positional array whose first
//! element names it (`0` snapshot, `1` update, `2` event) and whose updates and
//! events leave out the epoch (see `docs/PROTOCOL.md`, "Compact envelope").

use bytes::Bytes;
use serde::Serialize;
use serde::ser::{SerializeMap, SerializeSeq};
use wasmeter_core::delta::Delta;
use wasmeter_core::field::{FieldValue, TopicState};

/// A wire format, chosen per connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// JSON in text frames.
    Json,
    /// MessagePack in binary frames.
    MsgPack,
}

impl Format {
    /// Both formats, in index order.
    pub const ALL: [Format; 2] = [Format::Json, Format::MsgPack];

    /// 0 for JSON, 1 for MessagePack: an index into per-format arrays.
    pub fn index(self) -> usize {
        match self {
            Format::Json => 0,
            Format::MsgPack => 1,
        }
    }

    /// The name used in query strings and metrics: `json` or `msgpack`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::MsgPack => "msgpack",
        }
    }

    /// Parses `json` or `msgpack`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "json" => Some(Format::Json),
            "msgpack" => Some(Format::MsgPack),
            _ => None,
        }
    }
}

/// How data frames are laid out, chosen per connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Envelope {
    /// Maps with named keys (`{"type":"update","topic":...}`): the default.
    #[default]
    Map,
    /// Positional arrays (`[1, topic, seq, ts, delta]`), without the epoch in
    /// updates and events.
    Compact,
}

impl Envelope {
    /// The name used in query strings: `map` or `compact`.
    pub fn name(self) -> &'static str {
        match self {
            Envelope::Map => "map",
            Envelope::Compact => "compact",
        }
    }

    /// Parses `map` or `compact`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "map" => Some(Envelope::Map),
            "compact" => Some(Envelope::Compact),
            _ => None,
        }
    }
}

/// What a connection's data frames are encoded as: a format and an envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Wire {
    /// JSON or MessagePack.
    pub format: Format,
    /// Maps or positional arrays.
    pub envelope: Envelope,
}

impl Wire {
    /// `format` with the compact envelope.
    pub fn compact(format: Format) -> Self {
        Self {
            format,
            envelope: Envelope::Compact,
        }
    }

    /// 0 and 1 for the map envelope (as [`Format::index`]), 2 and 3 for the
    /// compact one: an index into per-wire arrays.
    pub fn index(self) -> usize {
        match self.envelope {
            Envelope::Map => self.format.index(),
            Envelope::Compact => 2 + self.format.index(),
        }
    }
}

/// A format alone means its default (map) envelope.
impl From<Format> for Wire {
    fn from(format: Format) -> Self {
        Self {
            format,
            envelope: Envelope::Map,
        }
    }
}

/// Serializes a value in `format`.
///
/// Every frame this crate and the server encode is made of strings, integers,
/// finite floats, booleans and maps with string keys, which both serializers
/// accept into a `Vec`; a failure would be a bug in a frame type, not bad input.
pub fn encode<T: Serialize + ?Sized>(format: Format, value: &T) -> Bytes {
    let out = match format {
        Format::Json => serde_json::to_vec(value).map_err(|e| e.to_string()),
        Format::MsgPack => rmp_serde::to_vec_named(value).map_err(|e| e.to_string()),
    };
    match out {
        Ok(v) => Bytes::from(v),
        Err(e) => unreachable!("frame types serialize infallibly: {e}"),
    }
}

/// A subset of a topic's fields that a subscriber asked for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FieldSet {
    names: Box<[Box<str>]>,
}

impl FieldSet {
    /// A set of field names (sorted and deduplicated here).
    pub fn new<I, S>(names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<Box<str>>,
    {
        let mut v: Vec<Box<str>> = names.into_iter().map(Into::into).collect();
        v.sort_unstable();
        v.dedup();
        Self {
            names: v.into_boxed_slice(),
        }
    }

    /// True when `name` is in the set.
    pub fn contains(&self, name: &str) -> bool {
        self.names.binary_search_by(|n| (**n).cmp(name)).is_ok()
    }

    /// The names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(|n| &**n)
    }
}

fn keep(fields: Option<&FieldSet>, name: &str) -> bool {
    fields.is_none_or(|f| f.contains(name))
}

/// A merge patch view of a delta, optionally restricted to a field set.
struct Patch<'a> {
    delta: &'a Delta,
    fields: Option<&'a FieldSet>,
}

impl Patch<'_> {
    /// Removed names to write as `null`: kept, and not also set by the delta
    /// (`Delta::apply_to` removes first, then sets, so a set wins).
    fn removed(&self) -> impl Iterator<Item = &str> {
        self.delta
            .removed
            .iter()
            .map(String::as_str)
            .filter(|n| keep(self.fields, n) && !self.delta.changed.iter().any(|(c, _)| c == n))
    }

    fn changed(&self) -> impl Iterator<Item = &(String, FieldValue)> {
        self.delta
            .changed
            .iter()
            .filter(|(n, _)| keep(self.fields, n))
    }

    fn len(&self) -> usize {
        self.removed().count() + self.changed().count()
    }
}

impl Serialize for Patch<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.len()))?;
        for name in self.removed() {
            map.serialize_entry(name, &())?;
        }
        for (name, value) in self.changed() {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

struct StateView<'a> {
    state: &'a TopicState,
    fields: Option<&'a FieldSet>,
}

impl Serialize for StateView<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.fields {
            None => s.collect_map(self.state.iter()),
            Some(f) => {
                let n = f.names().filter(|n| self.state.contains_key(n)).count();
                let mut map = s.serialize_map(Some(n))?;
                for name in f.names() {
                    if let Some((k, v)) = self.state.get_key_value(name) {
                        map.serialize_entry(k, v)?;
                    }
                }
                map.end()
            }
        }
    }
}

#[derive(Serialize)]
struct UpdateFrame<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    topic: &'a str,
    epoch: &'a str,
    seq: u64,
    ts: i64,
    delta: Patch<'a>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    stale: Vec<&'a str>,
}

#[derive(Serialize)]
struct SnapshotFrame<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    topic: &'a str,
    epoch: &'a str,
    seq: u64,
    ts: i64,
    state: StateView<'a>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    stale: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    recovered: Option<bool>,
    /// A stream topic: `state` is its last event, and `event` frames follow.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stream: bool,
}

/// The fields of one event, in the order the plugin gave them.
struct EventFields<'a> {
    fields: &'a [(String, FieldValue)],
    only: Option<&'a FieldSet>,
}

impl Serialize for EventFields<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let kept = || self.fields.iter().filter(|(n, _)| keep(self.only, n));
        let mut map = s.serialize_map(Some(kept().count()))?;
        for (name, value) in kept() {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

#[derive(Serialize)]
struct EventFrame<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    topic: &'a str,
    epoch: &'a str,
    seq: u64,
    ts: i64,
    fields: EventFields<'a>,
}

#[derive(Serialize)]
struct GapFrame<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    topic: &'a str,
    epoch: &'a str,
    after: u64,
    next: u64,
    missed: u64,
}

/// The first element of a compact data frame: which frame it is.
mod tag {
    pub const SNAPSHOT: u8 = 0;
    pub const UPDATE: u8 = 1;
    pub const EVENT: u8 = 2;
}

/// A compact `snapshot`: `[0, topic, epoch, seq, ts, state]`, plus a seventh
/// element, a map of the map frame's optional keys (`stale`, `recovered`,
/// `stream`), when any of them is present.
struct CompactSnapshot<'a>(&'a SnapshotFrame<'a>);

/// The optional keys of a snapshot, as a compact snapshot's seventh element.
#[derive(Serialize)]
struct SnapshotExtras<'a> {
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    stale: &'a [&'a str],
    #[serde(skip_serializing_if = "Option::is_none")]
    recovered: Option<bool>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stream: bool,
}

impl Serialize for CompactSnapshot<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let f = self.0;
        let extras = SnapshotExtras {
            stale: &f.stale,
            recovered: f.recovered,
            stream: f.stream,
        };
        let has_extras = !f.stale.is_empty() || f.recovered.is_some() || f.stream;
        let mut seq = s.serialize_seq(Some(if has_extras { 7 } else { 6 }))?;
        seq.serialize_element(&tag::SNAPSHOT)?;
        seq.serialize_element(f.topic)?;
        seq.serialize_element(f.epoch)?;
        seq.serialize_element(&f.seq)?;
        seq.serialize_element(&f.ts)?;
        seq.serialize_element(&f.state)?;
        if has_extras {
            seq.serialize_element(&extras)?;
        }
        seq.end()
    }
}

/// A compact `update`: `[1, topic, seq, ts, delta]`, plus `stale` as a sixth
/// element when fields became stale.
struct CompactUpdate<'a>(&'a UpdateFrame<'a>);

impl Serialize for CompactUpdate<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let f = self.0;
        let stale = !f.stale.is_empty();
        let mut seq = s.serialize_seq(Some(if stale { 6 } else { 5 }))?;
        seq.serialize_element(&tag::UPDATE)?;
        seq.serialize_element(f.topic)?;
        seq.serialize_element(&f.seq)?;
        seq.serialize_element(&f.ts)?;
        seq.serialize_element(&f.delta)?;
        if stale {
            seq.serialize_element(&f.stale)?;
        }
        seq.end()
    }
}

/// A compact `event`: `[2, topic, seq, ts, fields]`, plus the epoch as a sixth
/// element on the first event of an epoch (a subscriber may get a stream topic's
/// events without a snapshot before them).
struct CompactEvent<'a> {
    frame: &'a EventFrame<'a>,
    opens_epoch: bool,
}

impl Serialize for CompactEvent<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let f = self.frame;
        let mut seq = s.serialize_seq(Some(if self.opens_epoch { 6 } else { 5 }))?;
        seq.serialize_element(&tag::EVENT)?;
        seq.serialize_element(f.topic)?;
        seq.serialize_element(&f.seq)?;
        seq.serialize_element(&f.ts)?;
        seq.serialize_element(&f.fields)?;
        if self.opens_epoch {
            seq.serialize_element(f.epoch)?;
        }
        seq.end()
    }
}

/// Where a data frame sits in a topic's stream.
#[derive(Debug, Clone, Copy)]
pub struct FrameHead<'a> {
    /// Topic name.
    pub topic: &'a str,
    /// The topic's epoch.
    pub epoch: &'a str,
    /// Sequence number of the (last) update the frame reflects.
    pub seq: u64,
    /// Unix milliseconds of that update.
    pub ts: i64,
}

/// Encodes an `update` frame; `None` when the field filter leaves nothing to send.
pub fn encode_update(
    wire: impl Into<Wire>,
    head: FrameHead<'_>,
    delta: &Delta,
    stale: &[String],
    fields: Option<&FieldSet>,
) -> Option<Bytes> {
    let patch = Patch { delta, fields };
    let stale: Vec<&str> = stale
        .iter()
        .map(String::as_str)
        .filter(|n| keep(fields, n))
        .collect();
    if fields.is_some() && stale.is_empty() && patch.len() == 0 {
        return None;
    }
    let frame = UpdateFrame {
        kind: "update",
        topic: head.topic,
        epoch: head.epoch,
        seq: head.seq,
        ts: head.ts,
        delta: patch,
        stale,
    };
    let wire = wire.into();
    Some(match wire.envelope {
        Envelope::Map => encode(wire.format, &frame),
        Envelope::Compact => encode(wire.format, &CompactUpdate(&frame)),
    })
}

/// Encodes an `event` frame of a stream topic: the event's fields (those in
/// `only`, if given), in order. `None` when the filter leaves nothing to send.
/// `opens_epoch` marks the first event of an epoch, whose compact frame carries
/// the epoch.
pub fn encode_event(
    wire: impl Into<Wire>,
    head: FrameHead<'_>,
    fields: &[(String, FieldValue)],
    only: Option<&FieldSet>,
    opens_epoch: bool,
) -> Option<Bytes> {
    let fields = EventFields { fields, only };
    if only.is_some() && fields.fields.iter().all(|(n, _)| !keep(only, n)) {
        return None;
    }
    let frame = EventFrame {
        kind: "event",
        topic: head.topic,
        epoch: head.epoch,
        seq: head.seq,
        ts: head.ts,
        fields,
    };
    let wire = wire.into();
    Some(match wire.envelope {
        Envelope::Map => encode(wire.format, &frame),
        Envelope::Compact => encode(
            wire.format,
            &CompactEvent {
                frame: &frame,
                opens_epoch,
            },
        ),
    })
}

/// Encodes a `gap` frame: the `missed` events of a stream topic after `after`
/// and before `next` are no longer held, so this subscriber will not receive them.
pub fn encode_gap(
    format: Format,
    topic: &str,
    epoch: &str,
    (after, next): (u64, u64),
    missed: u64,
) -> Bytes {
    encode(
        format,
        &GapFrame {
            kind: "gap",
            topic,
            epoch,
            after,
            next,
            missed,
        },
    )
}

/// Encodes a `snapshot` frame: the topic's complete state (or the subset in `fields`)
/// and which of those fields are stale; of a stream topic (`stream`), its last event.
/// `recovered: Some(false)` marks the answer to a resume that could not be served.
#[allow(clippy::too_many_arguments, reason = "one frame's parts")]
pub fn encode_snapshot(
    wire: impl Into<Wire>,
    head: FrameHead<'_>,
    state: &TopicState,
    stale: &[String],
    fields: Option<&FieldSet>,
    recovered: Option<bool>,
    stream: bool,
) -> Bytes {
    let stale = stale
        .iter()
        .map(String::as_str)
        .filter(|n| keep(fields, n))
        .collect();
    let frame = SnapshotFrame {
        kind: "snapshot",
        topic: head.topic,
        epoch: head.epoch,
        seq: head.seq,
        ts: head.ts,
        state: StateView { state, fields },
        stale,
        recovered,
        stream,
    };
    let wire = wire.into();
    match wire.envelope {
        Envelope::Map => encode(wire.format, &frame),
        Envelope::Compact => encode(wire.format, &CompactSnapshot(&frame)),
    }
}

/// Composes consecutive deltas into one with the same effect (merge patches
/// compose: a later set overwrites, a later removal deletes). `stale` lists the
/// fields marked stale and not set again afterwards.
pub fn compose<'a, I>(steps: I) -> (Delta, Vec<String>)
where
    I: IntoIterator<Item = (&'a Delta, &'a [String])>,
{
    use std::collections::{BTreeMap, BTreeSet};
    let mut fields: BTreeMap<&'a str, Option<&'a FieldValue>> = BTreeMap::new();
    let mut stale: BTreeSet<&'a str> = BTreeSet::new();
    for (delta, marked) in steps {
        for name in &delta.removed {
            fields.insert(name, None);
            stale.remove(name.as_str());
        }
        for (name, value) in &delta.changed {
            fields.insert(name, Some(value));
            stale.remove(name.as_str());
        }
        stale.extend(marked.iter().map(String::as_str));
    }
    let mut out = Delta::default();
    for (name, value) in fields {
        match value {
            Some(v) => out.changed.push((name.to_string(), v.clone())),
            None => out.removed.push(name.to_string()),
        }
    }
    (out, stale.into_iter().map(str::to_string).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head() -> FrameHead<'static> {
        FrameHead {
            topic: "t/a",
            epoch: "e1",
            seq: 7,
            ts: 1000,
        }
    }

    fn delta() -> Delta {
        Delta {
            changed: vec![
                ("price".into(), FieldValue::Number(1.5)),
                ("side".into(), FieldValue::Text("buy".into())),
            ],
            removed: vec!["old".into()],
        }
    }

    #[test]
    fn update_is_a_merge_patch() {
        let b = encode_update(Format::Json, head(), &delta(), &["qty".into()], None).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type":"update","topic":"t/a","epoch":"e1","seq":7,"ts":1000,
                "delta":{"old":null,"price":1.5,"side":"buy"},"stale":["qty"]})
        );
    }

    #[test]
    fn msgpack_has_the_same_structure() {
        let b = encode_update(Format::MsgPack, head(), &delta(), &[], None).unwrap();
        let v: serde_json::Value = rmp_serde::from_slice(&b).unwrap();
        assert_eq!(v["type"], "update");
        assert_eq!(v["delta"]["old"], serde_json::Value::Null);
        assert_eq!(v["delta"]["price"], 1.5);
        assert!(v.get("stale").is_none());
    }

    #[test]
    fn field_filter_applies_to_delta_stale_and_state() {
        let f = FieldSet::new(["price", "missing"]);
        let b = encode_update(Format::Json, head(), &delta(), &["side".into()], Some(&f)).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["delta"], serde_json::json!({"price":1.5}));
        assert!(v.get("stale").is_none());
        let only_other = FieldSet::new(["volume"]);
        assert!(encode_update(Format::Json, head(), &delta(), &[], Some(&only_other)).is_none());

        let mut state = TopicState::new();
        state.insert("price".into(), FieldValue::Number(2.0));
        state.insert("side".into(), FieldValue::Flag(true));
        let b = encode_snapshot(
            Format::MsgPack,
            head(),
            &state,
            &[],
            Some(&f),
            Some(false),
            false,
        );
        let v: serde_json::Value = rmp_serde::from_slice(&b).unwrap();
        assert_eq!(v["state"], serde_json::json!({"price":2.0}));
        assert_eq!(v["recovered"], false);
    }

    #[test]
    fn removed_then_set_in_one_delta_is_sent_as_set() {
        let d = Delta {
            changed: vec![("a".into(), FieldValue::Flag(true))],
            removed: vec!["a".into()],
        };
        let b = encode_update(Format::Json, head(), &d, &[], None).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["delta"], serde_json::json!({"a":true}));
    }

    #[test]
    fn compose_has_the_effect_of_applying_in_order() {
        let d1 = Delta {
            changed: vec![("a".into(), FieldValue::Number(1.0))],
            removed: vec!["b".into()],
        };
        let d2 = Delta {
            changed: vec![("b".into(), FieldValue::Number(2.0))],
            removed: vec!["a".into()],
        };
        let s1 = vec!["c".to_string()];
        let (d, stale) = compose([(&d1, s1.as_slice()), (&d2, &[][..])]);
        assert_eq!(d.changed, vec![("b".to_string(), FieldValue::Number(2.0))]);
        assert_eq!(d.removed, vec!["a".to_string()]);
        assert_eq!(stale, vec!["c".to_string()]);

        let mut start = TopicState::from([
            ("b".to_string(), FieldValue::Flag(true)),
            ("z".to_string(), FieldValue::Flag(false)),
        ]);
        let mut stepwise = start.clone();
        d1.apply_to(&mut stepwise);
        d2.apply_to(&mut stepwise);
        d.apply_to(&mut start);
        assert_eq!(start, stepwise);
    }

    fn json(b: &[u8]) -> serde_json::Value {
        serde_json::from_slice(b).unwrap()
    }

    #[test]
    fn compact_update_is_an_array_without_the_epoch() {
        let wire = Wire::compact(Format::Json);
        let b = encode_update(wire, head(), &delta(), &[], None).unwrap();
        assert_eq!(
            &b[..],
            br#"[1,"t/a",7,1000,{"old":null,"price":1.5,"side":"buy"}]"#
        );
        let b = encode_update(wire, head(), &delta(), &["qty".into()], None).unwrap();
        assert_eq!(json(&b)[5], serde_json::json!(["qty"]));

        let b = encode_update(Wire::compact(Format::MsgPack), head(), &delta(), &[], None).unwrap();
        let v: serde_json::Value = rmp_serde::from_slice(&b).unwrap();
        assert_eq!(
            v,
            serde_json::json!([1, "t/a", 7, 1000, {"old": null, "price": 1.5, "side": "buy"}])
        );
        assert_eq!(b[0], 0x95, "a MessagePack fixarray of 5");
    }

    #[test]
    fn compact_snapshot_carries_the_epoch_and_its_optional_keys_last() {
        let state = TopicState::from([("price".to_string(), FieldValue::Number(2.0))]);
        let wire = Wire::compact(Format::Json);
        let b = encode_snapshot(wire, head(), &state, &[], None, None, false);
        assert_eq!(&b[..], br#"[0,"t/a","e1",7,1000,{"price":2.0}]"#);
        let b = encode_snapshot(
            wire,
            head(),
            &state,
            &["price".into()],
            None,
            Some(false),
            true,
        );
        assert_eq!(
            json(&b),
            serde_json::json!([0, "t/a", "e1", 7, 1000, {"price": 2.0},
                {"stale": ["price"], "recovered": false, "stream": true}])
        );
        let b = encode_snapshot(
            Wire::compact(Format::MsgPack),
            head(),
            &state,
            &[],
            None,
            None,
            true,
        );
        let v: serde_json::Value = rmp_serde::from_slice(&b).unwrap();
        assert_eq!(
            v,
            serde_json::json!([0, "t/a", "e1", 7, 1000, {"price": 2.0}, {"stream": true}])
        );
    }

    #[test]
    fn compact_event_names_the_epoch_only_when_it_opens_one() {
        let fields = delta().changed;
        let wire = Wire::compact(Format::Json);
        let b = encode_event(wire, head(), &fields, None, false).unwrap();
        assert_eq!(&b[..], br#"[2,"t/a",7,1000,{"price":1.5,"side":"buy"}]"#);
        let b = encode_event(wire, head(), &fields, None, true).unwrap();
        assert_eq!(json(&b)[5], "e1");
        let only = FieldSet::new(["side"]);
        let b = encode_event(
            Wire::compact(Format::MsgPack),
            head(),
            &fields,
            Some(&only),
            false,
        )
        .unwrap();
        let v: serde_json::Value = rmp_serde::from_slice(&b).unwrap();
        assert_eq!(v, serde_json::json!([2, "t/a", 7, 1000, {"side": "buy"}]));
        let b = encode_event(Format::Json, head(), &fields, None, true).unwrap();
        assert_eq!(json(&b)["epoch"], "e1", "the map frame is unchanged");
    }

    #[test]
    fn envelope_names_round_trip() {
        for e in [Envelope::Map, Envelope::Compact] {
            assert_eq!(Envelope::from_name(e.name()), Some(e));
        }
        assert_eq!(Envelope::from_name("Compact"), None);
        let indexes: Vec<usize> = Format::ALL
            .into_iter()
            .flat_map(|f| [Wire::from(f).index(), Wire::compact(f).index()])
            .collect();
        assert_eq!(indexes, [0, 2, 1, 3]);
    }
}
