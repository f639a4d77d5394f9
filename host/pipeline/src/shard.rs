//! Sharding one pipeline by a key in each record.
//!
//! A sharded pipeline runs as `count` pipelines (`shards`), each with its own
//! plugin instances, offsets and checkpoint. Every shard is sent all of the
//! pipeline's records (by one file source that its shards read together, or by a
//! source of its own) and keeps those whose key hashes to it; the others'
//! records are skipped (and committed with the chunk: they are another shard's
//! work). So each record is processed by exactly one shard, all records of a key by
//! the same shard in file order, and per-topic order is kept as long as a topic's
//! records share a key. Shards share nothing but the topic state and the hub, and
//! run in parallel, each on a thread of its own. A source the shards read
//! together holds back from a shard the chunks with none of its records
//! ([`Shard::mark_owners`] is its route).
//!
//! The key is read from the raw record by the host, before the collector: a CSV
//! column ([`ShardKey::CsvColumn`]) or a top-level JSON field
//! ([`ShardKey::JsonField`]). A record without it (malformed, too short) goes to
//! shard 0, so it is still seen, and reported, exactly once. The hash (64-bit
//! FNV-1a) is fixed: a restart maps every key to the same shard.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};

/// Where a record's shard key is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShardKey {
    /// The `index`-th column (from 0) of a delimited line, unquoted (RFC 4180
    /// quotes: `"a,b"` is one column, `""` a quote).
    CsvColumn {
        /// The column, from 0.
        index: usize,
        /// The column separator.
        delimiter: u8,
    },
    /// The value of a top-level field of a JSON object (a string as its text, any
    /// other value as written).
    JsonField(String),
}

/// One shard of a pipeline: which records it takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard {
    /// The sharded pipeline's name: owner of its topics and series, shared by
    /// its shards.
    pub group: String,
    /// This shard, from 0.
    pub index: u32,
    /// How many shards the pipeline has (at least 2).
    pub count: u32,
    /// Where each record's key is.
    pub key: ShardKey,
}

/// The records of a chunk that belong to one shard, with where each ends in the
/// chunk, so that positions in them map back to positions in the chunk.
#[derive(Debug, Default)]
pub struct Selected {
    /// The shard's records, in order.
    pub data: Vec<u8>,
    /// For each record kept: its end in `data` and its end in the chunk.
    ends: Vec<(usize, usize)>,
    /// The chunk's length.
    chunk_len: usize,
}

impl Selected {
    /// The chunk position that `done` bytes of `data` processed stand for: the
    /// end of the last record processed (records of other shards after it are
    /// left for the chunk's rest), or the whole chunk when all were processed.
    pub fn chunk_end(&self, done: usize) -> usize {
        if done >= self.data.len() {
            return self.chunk_len;
        }
        match self.ends.partition_point(|(end, _)| *end <= done) {
            0 => 0,
            n => self.ends[n - 1].1,
        }
    }

    /// The chunk position of the byte at `offset` in `data` (for error messages).
    pub fn chunk_offset(&self, offset: usize) -> usize {
        let n = self.ends.partition_point(|(end, _)| *end <= offset);
        let (end, chunk_end) = match self.ends.get(n) {
            Some(e) => *e,
            None => return self.chunk_len,
        };
        chunk_end - (end - offset)
    }
}

impl Shard {
    /// A pipeline shard's name: `<group>#<index>`.
    pub fn pipeline_name(group: &str, index: u32) -> String {
        format!("{group}#{index}")
    }

    /// The shard that `record` belongs to (shard 0 if it has no key).
    pub fn shard_of(&self, record: &[u8]) -> u32 {
        let record = record.strip_suffix(b"\n").unwrap_or(record);
        let record = record.strip_suffix(b"\r").unwrap_or(record);
        match self.key.read(record) {
            Some(key) => (fnv1a(&key) % u64::from(self.count)) as u32,
            None => 0,
        }
    }

    /// Marks in `owners` (one entry per shard) each shard that one of `chunk`'s
    /// whole records belongs to (a shared source's route: a chunk is held back
    /// from the shards it has no record for). Stops reading once every shard is
    /// marked.
    pub fn mark_owners(&self, chunk: &[u8], owners: &mut [bool]) {
        let mut unmarked = owners.iter().filter(|marked| !**marked).count();
        for record in chunk.split_inclusive(|b| *b == b'\n') {
            if unmarked == 0 {
                return;
            }
            if let Some(marked) = owners.get_mut(self.shard_of(record) as usize)
                && !*marked
            {
                *marked = true;
                unmarked -= 1;
            }
        }
    }

    /// The whole records of `chunk` (newline-terminated, as sources frame them)
    /// that belong to this shard.
    pub fn select(&self, chunk: &[u8]) -> Selected {
        let mut selected = Selected {
            chunk_len: chunk.len(),
            ..Selected::default()
        };
        let mut at = 0;
        for record in chunk.split_inclusive(|b| *b == b'\n') {
            at += record.len();
            if self.shard_of(record) == self.index {
                selected.data.extend_from_slice(record);
                selected.ends.push((selected.data.len(), at));
            }
        }
        selected
    }
}

impl ShardKey {
    /// The key of one record (without its newline), if it has one.
    pub fn read<'a>(&self, record: &'a [u8]) -> Option<Cow<'a, [u8]>> {
        match self {
            Self::CsvColumn { index, delimiter } => csv_column(record, *index, *delimiter),
            Self::JsonField(name) => json_field(record, name),
        }
    }
}

/// 64-bit FNV-1a: fixed, so keys map to the same shard across restarts and hosts.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The `index`-th column of a delimited line, quotes removed.
fn csv_column(line: &[u8], index: usize, delimiter: u8) -> Option<Cow<'_, [u8]>> {
    let mut rest = line;
    for _ in 0..index {
        rest = skip_column(rest, delimiter)?;
    }
    if rest.first() != Some(&b'"') {
        let end = rest
            .iter()
            .position(|b| *b == delimiter)
            .unwrap_or(rest.len());
        return Some(Cow::Borrowed(&rest[..end]));
    }
    let mut value = Vec::new();
    let mut i = 1;
    while i < rest.len() {
        match rest[i] {
            b'"' if rest.get(i + 1) == Some(&b'"') => {
                value.push(b'"');
                i += 2;
            }
            b'"' => return Some(Cow::Owned(value)),
            b => {
                value.push(b);
                i += 1;
            }
        }
    }
    None // an unterminated quote
}

/// The line after its first column and that column's delimiter.
fn skip_column(line: &[u8], delimiter: u8) -> Option<&[u8]> {
    let mut quoted = false;
    for (i, b) in line.iter().enumerate() {
        match *b {
            b'"' => quoted = !quoted,
            b if b == delimiter && !quoted => return Some(&line[i + 1..]),
            _ => {}
        }
    }
    None
}

/// The value of the top-level field `name` of a JSON object.
fn json_field<'a>(record: &'a [u8], name: &str) -> Option<Cow<'a, [u8]>> {
    let mut de = serde_json::Deserializer::from_slice(record);
    FieldSeed(name).deserialize(&mut de).ok().flatten()
}

/// Finds one field of a JSON object, ignoring the others.
struct FieldSeed<'n>(&'n str);

impl<'de> DeserializeSeed<'de> for FieldSeed<'_> {
    type Value = Option<Cow<'de, [u8]>>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for FieldSeed<'_> {
    type Value = Option<Cow<'de, [u8]>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if key == self.0 {
                return Ok(map.next_value::<KeyValue<'de>>()?.0);
            }
            map.next_value::<IgnoredAny>()?;
        }
        Ok(None)
    }
}

/// A field's value as shard key bytes: a string's text, a number or a boolean as
/// written; anything else is no key.
struct KeyValue<'de>(Option<Cow<'de, [u8]>>);

impl<'de> de::Deserialize<'de> for KeyValue<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = KeyValue<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a JSON value")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(KeyValue(Some(Cow::Borrowed(v.as_bytes()))))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(KeyValue(Some(Cow::Owned(v.as_bytes().to_vec()))))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(KeyValue(Some(Cow::Owned(v.to_string().into_bytes()))))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(KeyValue(Some(Cow::Owned(v.to_string().into_bytes()))))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(KeyValue(Some(Cow::Owned(v.to_string().into_bytes()))))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(KeyValue(Some(Cow::Borrowed(if v {
            b"true"
        } else {
            b"false"
        }))))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(KeyValue(None))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(KeyValue(None))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(KeyValue(None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(index: usize) -> ShardKey {
        ShardKey::CsvColumn {
            index,
            delimiter: b',',
        }
    }

    fn key(k: &ShardKey, record: &str) -> Option<String> {
        k.read(record.as_bytes())
            .map(|b| String::from_utf8(b.into_owned()).unwrap())
    }

    #[test]
    fn csv_columns_are_read_with_quotes_removed() {
        assert_eq!(key(&csv(0), "BTC,1.5,2"), Some("BTC".into()));
        assert_eq!(key(&csv(2), "BTC,1.5,2"), Some("2".into()));
        assert_eq!(key(&csv(3), "BTC,1.5,2"), None);
        assert_eq!(key(&csv(1), r#"x,"a,""b""",3"#), Some(r#"a,"b""#.into()));
        assert_eq!(key(&csv(2), r#"x,"a,b",3"#), Some("3".into()));
        assert_eq!(key(&csv(1), r#"x,"open"#), None);
        let tab = ShardKey::CsvColumn {
            index: 1,
            delimiter: b'\t',
        };
        assert_eq!(key(&tab, "a,b\tc"), Some("c".into()));
    }

    #[test]
    fn json_fields_are_read_at_the_top_level_only() {
        let s = ShardKey::JsonField("s".into());
        assert_eq!(key(&s, r#"{"p":1,"s":"BTC"}"#), Some("BTC".into()));
        assert_eq!(key(&s, r#"{"n":{"s":"X"},"s":"Y"}"#), Some("Y".into()));
        assert_eq!(key(&s, r#"{"n":{"s":"X"}}"#), None);
        assert_eq!(key(&s, r#"{"s":12}"#), Some("12".into()));
        assert_eq!(key(&s, r#"{"s":"a\"b"}"#), Some("a\"b".into()));
        assert_eq!(key(&s, r#"{"s":[1]}"#), None);
        assert_eq!(key(&s, "not json"), None);
        assert_eq!(key(&s, "[1,2]"), None);
    }

    #[test]
    fn keys_map_to_fixed_shards() {
        // Fixed values: a change of hash would move keys between shards across
        // a restart, splitting their state.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        let shard = |index| Shard {
            group: "t".into(),
            index,
            count: 4,
            key: csv(0),
        };
        assert_eq!(
            shard(0).shard_of(b"a,1\n"),
            (0xaf63_dc4c_8601_ec8c_u64 % 4) as u32
        );
        // No key: shard 0.
        assert_eq!(shard(1).shard_of(b"\"open\n"), 0);
    }

    #[test]
    fn every_record_goes_to_exactly_one_shard_in_order() {
        let chunk: String = (0..200).map(|i| format!("S{},{i}\n", i % 17)).collect();
        let mut seen = Vec::new();
        for index in 0..3 {
            let shard = Shard {
                group: "t".into(),
                index,
                count: 3,
                key: csv(0),
            };
            let selected = shard.select(chunk.as_bytes());
            let text = String::from_utf8(selected.data.clone()).unwrap();
            let mut last_per_key = std::collections::HashMap::new();
            for line in text.lines() {
                let (key, n) = line.split_once(',').unwrap();
                let n: u32 = n.parse().unwrap();
                // In order within the shard, and each key on one shard only.
                assert!(
                    last_per_key
                        .insert(key.to_string(), n)
                        .is_none_or(|m| m < n)
                );
                seen.push((key.to_string(), n, index));
            }
        }
        seen.sort_by_key(|s| s.1);
        assert_eq!(seen.len(), 200);
        for (i, s) in seen.iter().enumerate() {
            assert_eq!(s.1, i as u32);
        }
        let mut shard_of_key = std::collections::HashMap::new();
        for (key, _, index) in &seen {
            assert_eq!(*shard_of_key.entry(key.clone()).or_insert(*index), *index);
        }
        assert!(
            shard_of_key
                .values()
                .collect::<std::collections::HashSet<_>>()
                .len()
                > 1
        );
    }

    #[test]
    fn processed_bytes_map_back_to_the_chunk() {
        let shard = Shard {
            group: "t".into(),
            index: 1,
            count: 2,
            key: csv(0),
        };
        let records = ["a,1\n", "b,2\n", "c,3\n", "d,4\n", "e,5\n"];
        let chunk = records.concat();
        let selected = shard.select(chunk.as_bytes());
        let mine: Vec<usize> = (0..records.len())
            .filter(|i| shard.shard_of(records[*i].as_bytes()) == 1)
            .collect();
        assert!(!mine.is_empty() && mine.len() < records.len());
        let end_of = |i: usize| records[..=i].concat().len();
        // Nothing processed: nothing of the chunk is done.
        assert_eq!(selected.chunk_end(0), 0);
        // The first record of the shard processed: the chunk is done up to its end.
        assert_eq!(selected.chunk_end(records[mine[0]].len()), end_of(mine[0]));
        // All processed: the whole chunk, other shards' records after the last included.
        assert_eq!(selected.chunk_end(selected.data.len()), chunk.len());
        // An offset in the shard's data is found in the chunk.
        let second = records[mine[0]].len();
        if mine.len() > 1 {
            assert_eq!(
                selected.chunk_offset(second),
                end_of(mine[1]) - records[mine[1]].len()
            );
        }
    }
}
