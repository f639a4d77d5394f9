//! Head checkpoints: the head's open chunks and buckets, written whole so the
//! write-ahead log before them can be deleted.
//!
//! `checkpoint-<seq>.ckpt` holds the head as it was when log segment `<seq>`
//! was started: a header frame (`WMTSCKP1`, seq, clock, series count), one
//! frame per series (last sample, open raw chunk, and per tier the bucket being
//! filled and the open bucket chunk, chunks in the [`crate::chunk`] encoding),
//! and an end frame. Written tmp + fsync + rename + directory fsync; recovery
//! loads it and replays the segments from `<seq>` on.

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

const MAGIC: &[u8; 8] = b"WMTSCKP1";
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

fn encode_series(id: u32, s: &SeriesHead) -> Vec<u8> {
    let mut p = Vec::with_capacity(64);
    put_uvarint(&mut p, u64::from(id));
    put_varint(&mut p, s.last_t);
    put_f64(&mut p, s.last_v);
    put_varint(&mut p, s.min_t);
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
    if let Some(o) = &s.raw {
        let mut ts = Vec::new();
        let mut vs = Vec::new();
        let _ = gorilla::decode_samples(o.chunk.bytes(), o.chunk.len(), |t, v| {
            ts.push(t);
            vs.push(v);
        });
        put_varint(&mut p, o.part);
        let c = chunk::encode_samples(&ts, &vs, 0);
        put_uvarint(&mut p, c.len() as u64);
        p.extend_from_slice(&c);
    }
    for (i, tier) in Tier::DOWNSAMPLED.into_iter().enumerate() {
        let th = &s.tiers[i];
        if let Some(b) = &th.acc {
            put_varint(&mut p, b.start_ms);
            put_uvarint(&mut p, b.count);
            for v in [b.min, b.max, b.sum, b.last] {
                put_f64(&mut p, v);
            }
        }
        if let Some(o) = &th.open {
            put_varint(&mut p, o.part);
            let c = chunk::encode_buckets(&crate::head::head_buckets(tier, o), tier.width_ms(), 0);
            put_uvarint(&mut p, c.len() as u64);
            p.extend_from_slice(&c);
        }
    }
    p
}

/// Encodes the checkpoint of `head` taken at log segment `seq` (written with
/// `fsutil::write_atomic` to [`path`]).
pub(crate) fn encode(seq: u64, head: &Head) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 << 16);
    let live: Vec<(u32, &SeriesHead)> = head
        .series
        .iter()
        .enumerate()
        .filter(|(_, s)| s.last_t != i64::MIN)
        .map(|(i, s)| (i as u32, s))
        .collect();
    let mut h = MAGIC.to_vec();
    h.extend_from_slice(&seq.to_le_bytes());
    h.extend_from_slice(&head.now.to_le_bytes());
    h.extend_from_slice(&(live.len() as u64).to_le_bytes());
    frame::put(&mut out, &h);
    for (id, s) in &live {
        frame::put(&mut out, &encode_series(*id, s));
    }
    let mut e = END.to_vec();
    e.extend_from_slice(&(live.len() as u64).to_le_bytes());
    frame::put(&mut out, &e);
    out
}

/// A series' head as read from a checkpoint.
pub(crate) struct Restored {
    pub id: u32,
    pub head: SeriesHead,
}

fn decode_series(p: &[u8]) -> Option<Restored> {
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
        let n = usize::try_from(r.uvarint().ok()?).ok()?;
        let (ts, vs) = chunk::decode_samples(r.bytes(n).ok()?, 0).ok()?;
        let mut c = SampleChunk::new();
        for (t, v) in ts.into_iter().zip(vs) {
            c.append(t, v);
        }
        s.raw = Some(Box::new(OpenRaw {
            part,
            chunk: c,
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
            let n = usize::try_from(r.uvarint().ok()?).ok()?;
            let bs = chunk::decode_buckets(r.bytes(n).ok()?, tier.width_ms(), 0).ok()?;
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
    let report = frame::scan(&file, 0, MAX_FRAME, |_, p| {
        if first {
            first = false;
            if p.len() == 32 && &p[..8] == MAGIC {
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
        match decode_series(p) {
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
