//! Head checkpoints: the head's open chunks and buckets, written whole so the
//! write-ahead log before them can be deleted.
//!
//! `checkpoint-<seq>.ckpt` holds each series' head as it was at some moment
//! after log segment `<seq>` was started (a live checkpoint encodes the head
//! a piece at a time while appends go on; replaying the segments from `<seq>`
//! skips what a series holds already): a header frame (`WMTSCKP2`, seq, clock,
//! series count when the encoding began), one
//! frame per series (last sample, open raw chunk, and per tier the bucket being
//! filled and the open bucket chunk, each chunk as the head's Gorilla stream:
//! item count, byte length, bytes), and an end frame (the count written). Checkpoints of the first
//! layout (`WMTSCKP1`, chunks in the [`crate::chunk`] encoding) are still
//! read. Written tmp + fsync + rename + directory fsync; recovery loads it and
//! replays the segments from `<seq>` on.

use std::fs;
use std::path::{Path, PathBuf};

use crate::bits::{ByteReader, put_uvarint, put_varint};
use crate::chunk;
use crate::error::{IoContext, Result};
use crate::frame;
use crate::gorilla::{self, BucketChunk, SampleChunk};
use crate::head::{Head, OpenBuckets, OpenRaw, SeriesHead};
use crate::recovery::{DropAction, Dropped, Recovery};
use crate::tier::{Bucket, Tier};

/// The current layout: open chunks as the head's streams.
const MAGIC: &[u8; 8] = b"WMTSCKP2";
/// The first layout: open chunks in the column encoding (still read).
const MAGIC_V1: &[u8; 8] = b"WMTSCKP1";
const END: &[u8; 8] = b"WMTSEND1";
const MAX_FRAME: u32 = 64 << 20;

/// Path of the checkpoint taken at log segment `seq`.
pub(crate) fn path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("checkpoint-{seq:020}.ckpt"))
}

/// Checkpoints present in `dir`, oldest first.
pub(crate) fn list(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).at(dir)? {
        let e = e.at(dir)?;
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(seq) = name
            .strip_prefix("checkpoint-")
            .and_then(|s| s.strip_suffix(".ckpt"))
            .and_then(|s| s.parse::<u64>().ok())
        {
            out.push((seq, e.path()));
        }
    }
    out.sort();
    Ok(out)
}

fn put_f64(out: &mut Vec<u8>, v: f64) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// The fields both layouts share: id, newest sample, oldest timestamp and the
/// flags saying which chunks and buckets follow.
fn put_series_header(p: &mut Vec<u8>, id: u32, s: &SeriesHead) {
    put_uvarint(p, u64::from(id));
    put_varint(p, s.last_t);
    put_f64(p, s.last_v);
    put_varint(p, s.min_t);
    let mut flags = 0u8;
    if s.raw.is_some() {
        flags |= 1;
    }
    for (i, th) in s.tiers.iter().enumerate() {
        if th.acc.is_some() {
            flags |= 1 << (1 + 2 * i);
        }
        if th.open.is_some() {
            flags |= 1 << (2 + 2 * i);
        }
    }
    p.push(flags);
}

fn put_bucket(p: &mut Vec<u8>, b: &Bucket) {
    put_varint(p, b.start_ms);
    put_uvarint(p, b.count);
    for v in [b.min, b.max, b.sum, b.last] {
        put_f64(p, v);
    }
}

/// A head stream as it is in memory: item count, byte length, bytes.
fn put_stream(p: &mut Vec<u8>, n: u32, bytes: &[u8]) {
    put_uvarint(p, u64::from(n));
    put_uvarint(p, bytes.len() as u64);
    p.extend_from_slice(bytes);
}

/// One series in the current layout: its open chunks' streams copied as they
/// are, so that writing a checkpoint costs a copy of the head, not a decoding
/// and an encoding of every open chunk (that took 0.7-0.9 s of CPU at 50,000
/// series, every 64 MiB of log).
fn put_series(out: &mut Vec<u8>, id: u32, s: &SeriesHead) {
    put_series_header(out, id, s);
    if let Some(o) = &s.raw {
        put_varint(out, o.part);
        put_stream(out, o.chunk.len(), o.chunk.bytes());
    }
    for th in &s.tiers {
        if let Some(b) = &th.acc {
            put_bucket(out, b);
        }
        if let Some(o) = &th.open {
            put_varint(out, o.part);
            put_stream(out, o.chunk.len(), o.chunk.bytes());
        }
    }
}

/// Most bytes a series takes besides its streams: its fields (id 5, last
/// sample 18, oldest timestamp 10, flags 1), the raw chunk's partition, count
/// and length (30), per tier a filled bucket (52) and an open chunk's three
/// numbers (30), and its frame's header (8).
const SERIES_BYTES_MAX: usize = 34 + 30 + 3 * (52 + 30) + frame::HEADER;

/// The live series among `head`'s series `range` and the bytes an [`Encoder`]
/// writes for them at most: its buffer is made this large at once (grown by
/// doubling, tens of MiB at 50,000 series would be copied and held twice).
pub(crate) fn encoded_bound(head: &Head, range: std::ops::Range<usize>) -> (usize, usize) {
    let mut live = 0;
    let mut bytes = 0;
    let end = range.end.min(head.series.len());
    for index in range.start.min(end)..end {
        head.prefetch_open_chunks(index + PREFETCH_CHUNKS);
        let s = &head.series[index];
        if s.last_t == i64::MIN {
            continue;
        }
        live += 1;
        bytes += SERIES_BYTES_MAX + s.raw.as_ref().map_or(0, |o| o.chunk.bytes().len());
        for o in s.tiers.iter().filter_map(|th| th.open.as_ref()) {
            bytes += o.chunk.bytes().len();
        }
    }
    (live, bytes)
}

/// How many series ahead an encoding asks for a series' open chunks, and for
/// their bytes (found through the chunks).
const PREFETCH_CHUNKS: usize = 8;
const PREFETCH_STREAMS: usize = 4;

/// Header and end frames, with their frames' headers.
const ENVELOPE_BYTES: usize = 64;

/// Encodes the checkpoint of `head` taken at log segment `seq`, whole (written
/// with `fsutil::write_atomic` to [`path`]).
pub(crate) fn encode(seq: u64, head: &Head) -> Vec<u8> {
    let mut encoder = Encoder::new(seq, head.now, encoded_bound(head, 0..head.series.len()));
    encoder.series(head, usize::MAX);
    encoder.finish()
}

/// A checkpoint encoded a piece of the head at a time, so that appends can go
/// on between the pieces. Each series is encoded as it is when its piece is:
/// at or after the log segment the checkpoint is taken at, so that the
/// segments before it can go; replaying the later ones skips what a series
/// holds already (as it does for what the partition files hold).
pub(crate) struct Encoder {
    out: Vec<u8>,
    /// Series encoded.
    live: u64,
    /// The next series to look at.
    next: usize,
}

impl Encoder {
    /// The checkpoint at log segment `seq` of a store whose clock is `now`,
    /// with room for `bound` (the live series and the bytes of
    /// [`encoded_bound`]; the header says that many series, the end frame how
    /// many were encoded).
    pub(crate) fn new(seq: u64, now: i64, (live, bound): (usize, usize)) -> Encoder {
        let mut out = Vec::with_capacity(bound + ENVELOPE_BYTES);
        let mut h = MAGIC.to_vec();
        h.extend_from_slice(&seq.to_le_bytes());
        h.extend_from_slice(&now.to_le_bytes());
        h.extend_from_slice(&(live as u64).to_le_bytes());
        frame::put(&mut out, &h);
        Encoder {
            out,
            live: 0,
            next: 0,
        }
    }

    /// Encodes `head`'s next `count` series (those with a sample). True once
    /// every series of `head` is encoded.
    pub(crate) fn series(&mut self, head: &Head, count: usize) -> bool {
        let end = self.next.saturating_add(count).min(head.series.len());
        for id in self.next..end {
            // The open chunks of the series a few ahead, then their bytes: each
            // is a separate allocation, and the walk would otherwise wait for
            // memory at every one of them.
            head.prefetch_open_chunks(id + PREFETCH_CHUNKS);
            head.prefetch_open_streams(id + PREFETCH_STREAMS);
            let s = &head.series[id];
            if s.last_t != i64::MIN {
                let start = frame::begin(&mut self.out);
                put_series(&mut self.out, id as u32, s);
                frame::finish(&mut self.out, start);
                self.live += 1;
            }
        }
        self.next = end;
        self.next >= head.series.len()
    }

    /// The checkpoint's bytes, ended.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        let mut e = END.to_vec();
        e.extend_from_slice(&self.live.to_le_bytes());
        frame::put(&mut self.out, &e);
        self.out
    }
}

/// A series' head as read from a checkpoint.
pub(crate) struct Restored {
    pub id: u32,
    pub head: SeriesHead,
}

/// How a checkpoint's open chunks are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// `WMTSCKP1`: in the column encoding of [`crate::chunk`] (still read).
    Columns,
    /// `WMTSCKP2`: the head's streams as they were in memory.
    Streams,
}

/// Reads a raw chunk's samples in either layout; `None` if they do not
/// decode or are not in strictly increasing time order.
fn read_samples(r: &mut ByteReader<'_>, layout: Layout) -> Option<SampleChunk> {
    let (ts, vs) = match layout {
        Layout::Columns => {
            let n = usize::try_from(r.uvarint().ok()?).ok()?;
            chunk::decode_samples(r.bytes(n).ok()?, 0).ok()?
        }
        Layout::Streams => {
            let (n, bytes) = read_stream(r)?;
            let mut ts = Vec::with_capacity(n as usize);
            let mut vs = Vec::with_capacity(n as usize);
            gorilla::decode_samples(bytes, n, |t, v| {
                ts.push(t);
                vs.push(v);
            })
            .ok()?;
            (ts, vs)
        }
    };
    if ts.windows(2).any(|w| w[0] >= w[1]) {
        return None;
    }
    let mut c = SampleChunk::new();
    for (t, v) in ts.into_iter().zip(vs) {
        c.append(t, v);
    }
    Some(c)
}

/// Reads a tier's open bucket chunk in either layout; `None` if it does not
/// decode, is empty or its buckets are not in strictly increasing order.
fn read_buckets(r: &mut ByteReader<'_>, layout: Layout, tier: Tier) -> Option<Vec<Bucket>> {
    let bs = match layout {
        Layout::Columns => {
            let n = usize::try_from(r.uvarint().ok()?).ok()?;
            chunk::decode_buckets(r.bytes(n).ok()?, tier.width_ms(), 0).ok()?
        }
        Layout::Streams => {
            let (n, bytes) = read_stream(r)?;
            let mut bs = Vec::with_capacity(n as usize);
            gorilla::decode_buckets(bytes, n, tier.width_ms(), |b| bs.push(b)).ok()?;
            bs
        }
    };
    let ordered = bs.windows(2).all(|w| w[0].start_ms < w[1].start_ms);
    (ordered && !bs.is_empty()).then_some(bs)
}

/// A stream written by [`put_stream`]: its item count and bytes.
fn read_stream<'a>(r: &mut ByteReader<'a>) -> Option<(u32, &'a [u8])> {
    let n = r.uvarint().ok()?;
    if n > chunk::MAX_CHUNK_ITEMS {
        return None;
    }
    let len = usize::try_from(r.uvarint().ok()?).ok()?;
    Some((n as u32, r.bytes(len).ok()?))
}

fn decode_series(p: &[u8], layout: Layout) -> Option<Restored> {
    let mut r = ByteReader::new(p);
    let id = u32::try_from(r.uvarint().ok()?).ok()?;
    let mut s = SeriesHead {
        last_t: r.varint().ok()?,
        ..SeriesHead::default()
    };
    s.last_v = f64::from_bits(r.u64_le().ok()?);
    s.min_t = r.varint().ok()?;
    // A checkpoint is taken between appends: every tier holds every sample
    // up to the series' newest.
    for th in &mut s.tiers {
        th.applied_t = s.last_t;
    }
    let flags = r.u8().ok()?;
    if flags & 1 != 0 {
        let part = r.varint().ok()?;
        s.raw = Some(Box::new(OpenRaw {
            part,
            chunk: read_samples(&mut r, layout)?,
            cut_at: u32::MAX,
        }));
    }
    for (i, tier) in Tier::DOWNSAMPLED.into_iter().enumerate() {
        if flags & (1 << (1 + 2 * i)) != 0 {
            let start = r.varint().ok()?;
            let count = r.uvarint().ok()?;
            let mut f = [0f64; 4];
            for x in &mut f {
                *x = f64::from_bits(r.u64_le().ok()?);
            }
            s.tiers[i].acc = Some(Bucket {
                start_ms: start,
                count,
                min: f[0],
                max: f[1],
                sum: f[2],
                last: f[3],
            });
        }
        if flags & (1 << (2 + 2 * i)) != 0 {
            let part = r.varint().ok()?;
            let bs = read_buckets(&mut r, layout, tier)?;
            let mut c = BucketChunk::new();
            for b in &bs {
                c.append(tier.width_ms(), b);
            }
            let max_start = bs.last()?.start_ms;
            s.tiers[i].open = Some(Box::new(OpenBuckets {
                part,
                chunk: c,
                max_start,
                cut_at: u32::MAX,
            }));
        }
    }
    r.remaining().is_empty().then_some(Restored { id, head: s })
}

/// What a checkpoint held.
pub(crate) struct Loaded {
    pub seq: u64,
    pub now: i64,
    pub series: Vec<Restored>,
}

/// Loads the checkpoint at `path`; `None` if its header is unusable. Series
/// records that fail their checksum are reported and skipped.
pub(crate) fn load(path: &Path, rec: &mut Recovery) -> Result<Option<Loaded>> {
    let file = fs::File::open(path).at(path)?;
    let mut header = None;
    let mut series = Vec::new();
    let mut end = None;
    let mut first = true;
    let mut layout = Layout::Streams;
    let report = frame::scan(&file, 0, MAX_FRAME, |_, p| {
        if first {
            first = false;
            if p.len() == 32 && (&p[..8] == MAGIC || &p[..8] == MAGIC_V1) {
                if &p[..8] == MAGIC_V1 {
                    layout = Layout::Columns;
                }
                let seq = u64::from_le_bytes(p[8..16].try_into().unwrap_or_default());
                let now = i64::from_le_bytes(p[16..24].try_into().unwrap_or_default());
                header = Some((seq, now));
                return true;
            }
            return false;
        }
        if p.len() == 16 && &p[..8] == END {
            end = Some(u64::from_le_bytes(p[8..16].try_into().unwrap_or_default()));
            return true;
        }
        match decode_series(p, layout) {
            Some(s) => {
                series.push(s);
                true
            }
            None => false,
        }
    })
    .at(path)?;
    for g in &report.gaps {
        rec.dropped.push(Dropped {
            file: path.to_path_buf(),
            offset: g.offset,
            bytes: g.bytes,
            records: u64::from(!g.tail),
            reason: format!(
                "checkpoint: {} (the head data of the series in it is lost)",
                g.reason
            ),
            action: DropAction::Skipped,
        });
    }
    let Some((seq, now)) = header else {
        return Ok(None);
    };
    if end.is_none() && report.gaps.is_empty() {
        rec.dropped.push(Dropped {
            file: path.to_path_buf(),
            offset: report.valid_end,
            bytes: 0,
            records: 0,
            reason: "checkpoint has no end record".into(),
            action: DropAction::Skipped,
        });
    }
    Ok(Some(Loaded { seq, now, series }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::head::Cut;
    use crate::options::Options;

    /// The first layout's series record: open chunks in the column encoding.
    fn put_series_v1(out: &mut Vec<u8>, id: u32, s: &SeriesHead) {
        put_series_header(out, id, s);
        if let Some(o) = &s.raw {
            let (mut ts, mut vs) = (Vec::new(), Vec::new());
            gorilla::decode_samples(o.chunk.bytes(), o.chunk.len(), |t, v| {
                ts.push(t);
                vs.push(v);
            })
            .unwrap();
            put_varint(out, o.part);
            let c = chunk::encode_samples(&ts, &vs, 0);
            put_uvarint(out, c.len() as u64);
            out.extend_from_slice(&c);
        }
        for (i, tier) in Tier::DOWNSAMPLED.into_iter().enumerate() {
            let th = &s.tiers[i];
            if let Some(b) = &th.acc {
                put_bucket(out, b);
            }
            if let Some(o) = &th.open {
                put_varint(out, o.part);
                let bs = crate::head::head_buckets(tier, o);
                let c = chunk::encode_buckets(&bs, tier.width_ms(), 0);
                put_uvarint(out, c.len() as u64);
                out.extend_from_slice(&c);
            }
        }
    }

    fn encode_v1(seq: u64, head: &Head) -> Vec<u8> {
        let mut out = Vec::new();
        let mut h = MAGIC_V1.to_vec();
        h.extend_from_slice(&seq.to_le_bytes());
        h.extend_from_slice(&head.now.to_le_bytes());
        h.extend_from_slice(&(head.series.len() as u64).to_le_bytes());
        frame::put(&mut out, &h);
        for (id, s) in head.series.iter().enumerate() {
            let mut p = Vec::new();
            put_series_v1(&mut p, id as u32, s);
            frame::put(&mut out, &p);
        }
        let mut e = END.to_vec();
        e.extend_from_slice(&(head.series.len() as u64).to_le_bytes());
        frame::put(&mut out, &e);
        out
    }

    /// A head of a few series with open raw chunks, filled buckets and open
    /// bucket chunks in every tier.
    fn sample_head(opts: &Options) -> Head {
        let mut head = Head::default();
        head.ensure(3);
        let mut cuts: Vec<Cut> = Vec::new();
        let t0 = opts.partition_start(Tier::Raw, 1_700_000_000_000);
        for step in 0..2_000i64 {
            for id in 0..3u32 {
                let t = t0 + step * 7_001 + i64::from(id) * 13;
                let v = (step as f64 * 0.25).sin() * 100.0 + f64::from(id);
                head.append(opts, id, t, v, &mut cuts);
            }
        }
        head
    }

    fn load_bytes(bytes: &[u8]) -> Loaded {
        let dir = tempfile::tempdir().unwrap();
        let path = path(dir.path(), 7);
        fs::write(&path, bytes).unwrap();
        let mut rec = Recovery::default();
        let loaded = load(&path, &mut rec).unwrap().unwrap();
        assert!(rec.dropped.is_empty(), "{:?}", rec.dropped);
        loaded
    }

    /// What a series' head holds, decoded: raw samples (value bits), filled
    /// buckets and open buckets per tier.
    type Contents = (Vec<(i64, u64)>, Vec<Option<Bucket>>, Vec<Vec<Bucket>>);

    fn contents(s: &SeriesHead) -> Contents {
        let mut raw = Vec::new();
        if let Some(o) = &s.raw {
            gorilla::decode_samples(o.chunk.bytes(), o.chunk.len(), |t, v| {
                raw.push((t, v.to_bits()));
            })
            .unwrap();
        }
        let accs = s.tiers.iter().map(|th| th.acc).collect();
        let open = Tier::DOWNSAMPLED
            .into_iter()
            .zip(&s.tiers)
            .map(|(tier, th)| {
                th.open
                    .as_ref()
                    .map(|o| crate::head::head_buckets(tier, o))
                    .unwrap_or_default()
            })
            .collect();
        (raw, accs, open)
    }

    /// Both layouts restore the head as it was: the current one from the
    /// head's streams, the first one (files written before it) from the
    /// column encoding.
    #[test]
    fn both_layouts_restore_every_open_chunk_and_bucket() {
        let opts = Options::default();
        let head = sample_head(&opts);
        let s0 = &head.series[0];
        assert!(s0.raw.is_some());
        assert!(
            s0.tiers
                .iter()
                .all(|th| th.acc.is_some() && th.open.is_some())
        );
        let streams = encode(7, &head);
        assert!(streams.len() <= encoded_bound(&head, 0..head.series.len()).1 + ENVELOPE_BYTES);
        for (bytes, name) in [(streams, "streams"), (encode_v1(7, &head), "columns")] {
            let loaded = load_bytes(&bytes);
            assert_eq!((loaded.seq, loaded.now), (7, head.now), "{name}");
            assert_eq!(loaded.series.len(), head.series.len(), "{name}");
            for r in &loaded.series {
                let s = &head.series[r.id as usize];
                assert_eq!(contents(&r.head), contents(s), "{name}: series {}", r.id);
                assert_eq!((r.head.last_t, r.head.min_t), (s.last_t, s.min_t));
                assert_eq!(r.head.last_v.to_bits(), s.last_v.to_bits());
                let raw = r.head.raw.as_ref().unwrap();
                assert_eq!(raw.part, s.raw.as_ref().unwrap().part);
                assert_eq!(raw.chunk.max_t(), s.raw.as_ref().unwrap().chunk.max_t());
            }
        }
    }

    /// A series record whose stream does not decode is dropped, and reported,
    /// not restored half-read.
    #[test]
    fn a_stream_that_does_not_decode_drops_its_series() {
        let opts = Options::default();
        let head = sample_head(&opts);
        let mut out = Vec::new();
        let mut h = MAGIC.to_vec();
        h.extend_from_slice(&7u64.to_le_bytes());
        h.extend_from_slice(&head.now.to_le_bytes());
        h.extend_from_slice(&1u64.to_le_bytes());
        frame::put(&mut out, &h);
        let mut p = Vec::new();
        let mut s = head.series[0].clone();
        for th in &mut s.tiers {
            (th.acc, th.open) = (None, None);
        }
        let mut whole = Vec::new();
        put_series(&mut whole, 0, &s);
        assert!(decode_series(&whole, Layout::Streams).is_some());
        put_series_header(&mut p, 0, &s);
        let o = s.raw.as_ref().unwrap();
        put_varint(&mut p, o.part);
        // More items than the stream holds: it runs off its end (each takes
        // two bits at least; the last byte's padding holds fewer than eight).
        put_stream(&mut p, o.chunk.len() + 4, o.chunk.bytes());
        frame::put(&mut out, &p);
        let dir = tempfile::tempdir().unwrap();
        let path = path(dir.path(), 7);
        fs::write(&path, &out).unwrap();
        let mut rec = Recovery::default();
        let loaded = load(&path, &mut rec).unwrap().unwrap();
        assert!(loaded.series.is_empty());
        assert!(!rec.dropped.is_empty());
    }
}
