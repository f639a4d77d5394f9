//! The chunk index of a partition file, kept on disk beside it.
//!
//! `<tier>/<start>.idx` holds one entry per chunk frame of `<start>.part`, in
//! the order the frames were appended, each five varints:
//! `back | offset_delta | len | span | gap`. `back` is how many bytes before
//! this entry the same series' previous entry starts (0 for its first), so
//! each series' entries form a chain from its newest back. The rest is
//! relative to that previous chunk, which a walk back has just read:
//! `offset_delta` is the frame's offset minus the previous chunk's (the
//! offset itself for the first), `len` the frame's length, `span` the chunk's
//! `max_t - min_t` and `gap` (signed) its `min_t` minus the previous chunk's
//! `max_t` (minus the partition start for the first), both in the file's
//! bound unit (ms for raw, bucket widths for the tiers). About ten bytes a
//! chunk.
//!
//! While the partition is open, memory holds per series only where its chain
//! starts (position, frame offset and `max_t` of its newest chunk), how many
//! chunks it has and its oldest timestamp: it no longer grows with the chunks
//! kept. When the partition closes, that table is written after the entries,
//! sorted by series (40-byte records), and memory holds nothing per series.
//! Entries and the table are read through a memory map; new entries are
//! buffered and written at the next commit or every 64 KiB.
//!
//! The index is derived data. It is never fsynced: opening a partition
//! checks it byte for byte against the entries of the frames of the
//! partition file (which are read and checksummed then anyway) and rewrites
//! what differs, so a crash or a lost or damaged index costs a rewrite,
//! never data.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use memmap2::{Mmap, MmapOptions};

use crate::bits::{ByteReader, put_uvarint, put_varint};
use crate::error::{Error, IoContext, Result};

/// Buffered entries are written once they reach this many bytes.
const FLUSH_BYTES: usize = 64 << 10;
/// The first mapping covers this many bytes (virtual; the file grows as
/// entries are written and only written entries are read).
const MIN_MAP: usize = 1 << 20;

/// Extension of index files (`<start>.idx` beside `<start>.part`).
pub(crate) const EXTENSION: &str = "idx";

/// Where one chunk is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChunkMeta {
    /// First timestamp (bucket start for tiers).
    pub min_t: i64,
    /// Last timestamp (bucket start for tiers).
    pub max_t: i64,
    /// Offset of the frame in the file.
    pub offset: u64,
    /// Length of the whole frame.
    pub len: u32,
}

/// What memory holds of one series' chunks in a partition.
#[derive(Debug, Clone, Copy)]
struct SeriesChunks {
    /// Position in the index of its newest entry (the start of its chain).
    newest: u32,
    /// Chunks in its chain.
    count: u32,
    /// Frame offset and last timestamp of its newest chunk, from which the
    /// walk back rebuilds each older chunk's.
    newest_offset: u64,
    newest_max_t: i64,
    /// Oldest first timestamp of its chunks.
    min_t: i64,
    /// Every chunk ends no earlier than the one appended before it: the
    /// newest chunk ends last, and a walk back can stop at the first chunk
    /// ending before the range asked for.
    ordered: bool,
}

/// The chunk index of one partition file.
#[derive(Debug)]
pub(crate) struct ChunkIndex {
    file: File,
    path: PathBuf,
    /// Partition start and bound unit (ms), for the relative bounds.
    start: i64,
    unit: i64,
    /// Mapping of the file's first `map.len()` bytes, of which the first
    /// `written` are entries in the file.
    map: Mmap,
    written: usize,
    /// Entries after `written`, not yet in the file.
    pending: Vec<u8>,
    /// Chunks indexed, and those of series forgotten by [`Self::drop_unknown`].
    chunks: u64,
    dropped: u64,
    /// While opening: compare entries with the file before writing them.
    verify: bool,
    series: SeriesTable,
}

/// Per series, where its chain starts: a hash map while chunks are appended;
/// once the partition is closed, a sorted table written after the entries and
/// read through the map (nothing held per series).
#[derive(Debug)]
enum SeriesTable {
    Growing(HashMap<u32, SeriesChunks>),
    /// `len` records of [`RECORD`] bytes from `at` in the file.
    Sealed {
        at: usize,
        len: usize,
    },
}

/// Bytes of a sealed table's record: `id u32 | newest u32 | count u32 |
/// ordered u32 | newest_offset u64 | newest_max_t i64 | min_t i64`.
const RECORD: usize = 40;

fn put_record(out: &mut Vec<u8>, id: u32, s: &SeriesChunks) {
    for v in [id, s.newest, s.count, u32::from(s.ordered)] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&s.newest_offset.to_le_bytes());
    out.extend_from_slice(&s.newest_max_t.to_le_bytes());
    out.extend_from_slice(&s.min_t.to_le_bytes());
}

fn read_record(b: &[u8]) -> (u32, SeriesChunks) {
    let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().expect("4 bytes"));
    let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().expect("8 bytes"));
    (
        u32_at(0),
        SeriesChunks {
            newest: u32_at(4),
            count: u32_at(8),
            ordered: u32_at(12) != 0,
            newest_offset: u64_at(16),
            newest_max_t: u64_at(24) as i64,
            min_t: u64_at(32) as i64,
        },
    )
}

impl ChunkIndex {
    /// Opens (creating if needed) the index at `path` of a partition starting
    /// at `start` whose bounds count in `unit` ms. Entries are then pushed for
    /// every frame of the partition file, in file order, and [`Self::finish`]
    /// makes the file hold exactly them (an existing file is only rewritten
    /// where it differs).
    pub(crate) fn open(path: &Path, start: i64, unit: i64) -> Result<ChunkIndex> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .at(path)?;
        Ok(ChunkIndex {
            map: map(&file, path, 0)?,
            file,
            path: path.to_path_buf(),
            start,
            unit,
            written: 0,
            pending: Vec::new(),
            chunks: 0,
            dropped: 0,
            verify: true,
            series: SeriesTable::Growing(HashMap::new()),
        })
    }

    /// Ends opening: writes what differs and truncates the file to its
    /// entries.
    pub(crate) fn finish(&mut self) -> Result<()> {
        self.flush()?;
        self.verify = false;
        let len = self.written as u64;
        if self.file.metadata().at(&self.path)?.len() != len {
            self.file.set_len(len).at(&self.path)?;
        }
        Ok(())
    }

    /// Adds the chunk at `m` of `series` (its frame after every frame
    /// already indexed).
    pub(crate) fn push(&mut self, series: u32, m: ChunkMeta) -> Result<()> {
        let pos = self.written + self.pending.len();
        let (start, unit) = (self.start, self.unit);
        let prev = self.series_chunks(series);
        // Positions are u32 in memory; offsets only grow in file order.
        let entry = (|| {
            u32::try_from(pos).ok()?;
            let (back, prev_offset, prev_max) = match prev {
                Some(p) => (pos - p.newest as usize, p.newest_offset, p.newest_max_t),
                None => (0, 0, start),
            };
            Some((
                [
                    back as u64,
                    m.offset.checked_sub(prev_offset)?,
                    u64::from(m.len),
                    u64::try_from((m.max_t - m.min_t) / unit).ok()?,
                ],
                (m.min_t - prev_max) / unit,
            ))
        })();
        let Some((unsigned, gap)) = entry else {
            return Err(Error::Corrupt {
                path: self.path.clone(),
                offset: m.offset,
                reason: "chunk out of place in the partition's chunk index".into(),
            });
        };
        for v in unsigned {
            put_uvarint(&mut self.pending, v);
        }
        put_varint(&mut self.pending, gap);
        let s = self.growing()?.entry(series).or_insert(SeriesChunks {
            newest: 0,
            count: 0,
            newest_offset: 0,
            newest_max_t: m.max_t,
            min_t: m.min_t,
            ordered: true,
        });
        s.ordered &= s.count == 0 || m.max_t >= s.newest_max_t;
        s.newest = pos as u32;
        s.count += 1;
        s.newest_offset = m.offset;
        s.newest_max_t = m.max_t;
        s.min_t = s.min_t.min(m.min_t);
        self.chunks += 1;
        if self.pending.len() >= FLUSH_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes the buffered entries to the file (no fsync: see the module
    /// doc). On error they stay buffered and readable.
    pub(crate) fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let at = self.written as u64;
        let same = self.verify && {
            let mut old = vec![0u8; self.pending.len()];
            self.file.read_exact_at(&mut old, at).is_ok() && old == self.pending
        };
        if !same {
            self.file.write_all_at(&self.pending, at).at(&self.path)?;
        }
        self.written += self.pending.len();
        self.pending.clear();
        if self.map.len() < self.written {
            self.map = map(&self.file, &self.path, self.written)?;
        }
        Ok(())
    }

    /// No more chunks will be added (the partition is closed): the buffered
    /// entries are written, then the per-series table, sorted, after them;
    /// memory then holds nothing per series.
    pub(crate) fn seal(&mut self) -> Result<()> {
        self.flush()?;
        let SeriesTable::Growing(series) = &self.series else {
            return Ok(());
        };
        let mut ids: Vec<u32> = series.keys().copied().collect();
        ids.sort_unstable();
        let mut table = Vec::with_capacity(ids.len() * RECORD);
        for id in &ids {
            put_record(&mut table, *id, &series[id]);
        }
        self.file
            .write_all_at(&table, self.written as u64)
            .at(&self.path)?;
        let end = self.written + table.len();
        if self.map.len() < end {
            self.map = map(&self.file, &self.path, end)?;
        }
        self.series = SeriesTable::Sealed {
            at: self.written,
            len: ids.len(),
        };
        self.pending = Vec::new();
        Ok(())
    }

    /// Chunks indexed (of series not forgotten).
    pub(crate) fn count(&self) -> u64 {
        self.chunks - self.dropped
    }

    /// Bytes of the index file once its buffered entries are written.
    pub(crate) fn size_bytes(&self) -> u64 {
        let table = match self.series {
            SeriesTable::Sealed { len, .. } => len * RECORD,
            SeriesTable::Growing(_) => 0,
        };
        (self.written + self.pending.len() + table) as u64
    }

    /// The entry at `pos`: (`back`, `offset_delta`, `len`, `span`, `gap`).
    fn entry(&self, pos: usize) -> Option<(u64, u64, u32, i64, i64)> {
        let bytes: &[u8] = if pos < self.written {
            self.map.get(pos..self.written)?
        } else {
            self.pending.get(pos - self.written..)?
        };
        let mut r = ByteReader::new(bytes);
        let back = r.uvarint().ok()?;
        let offset_delta = r.uvarint().ok()?;
        let len = u32::try_from(r.uvarint().ok()?).ok()?;
        let span = i64::try_from(r.uvarint().ok()?).ok()?;
        Some((back, offset_delta, len, span, r.varint().ok()?))
    }

    /// Every chunk of `series`, newest first.
    fn chain(&self, series: u32) -> impl Iterator<Item = ChunkMeta> + '_ {
        let mut next = self
            .series_chunks(series)
            .map(|s| (s.newest as usize, s.newest_offset, s.newest_max_t));
        std::iter::from_fn(move || {
            let (pos, offset, max_t) = next.take()?;
            let (back, offset_delta, len, span, gap) = self.entry(pos)?;
            let min_t = max_t.checked_sub(span.checked_mul(self.unit)?)?;
            if back > 0 {
                // A chain only runs back; anything else ends it.
                let prev_pos = pos.checked_sub(usize::try_from(back).ok()?)?;
                let prev_offset = offset.checked_sub(offset_delta)?;
                let prev_max = min_t.checked_sub(gap.checked_mul(self.unit)?)?;
                next = Some((prev_pos, prev_offset, prev_max));
            }
            Some(ChunkMeta {
                min_t,
                max_t,
                offset,
                len,
            })
        })
    }

    /// Chunks of `series` overlapping `[from, to]`, in time order.
    pub(crate) fn chunks(&self, series: u32, from: i64, to: i64) -> Vec<ChunkMeta> {
        let Some(s) = self.series_chunks(series) else {
            return Vec::new();
        };
        if s.min_t > to || s.ordered && s.newest_max_t < from {
            return Vec::new();
        }
        let mut out: Vec<ChunkMeta> = Vec::new();
        for m in self.chain(series) {
            if m.max_t < from {
                if s.ordered {
                    break;
                }
                continue;
            }
            if m.min_t <= to {
                out.push(m);
            }
        }
        out.reverse();
        // Files assembled out of order still answer in time order.
        out.sort_by_key(|m| m.min_t);
        out
    }

    /// Newest timestamp of `series` in this partition.
    pub(crate) fn series_max(&self, series: u32) -> Option<i64> {
        let s = self.series_chunks(series)?;
        if s.ordered {
            Some(s.newest_max_t)
        } else {
            self.chain(series).map(|m| m.max_t).max()
        }
    }

    /// Series with chunks here and their oldest timestamps.
    pub(crate) fn series_min(&self) -> impl Iterator<Item = (u32, i64)> + '_ {
        self.series_all().map(|(id, s)| (id, s.min_t))
    }

    /// Forgets the series `known` refuses; returns their chunks.
    pub(crate) fn drop_unknown(&mut self, known: impl Fn(u32) -> bool) -> Vec<(u32, ChunkMeta)> {
        let unknown: Vec<u32> = self
            .series_all()
            .map(|(id, _)| id)
            .filter(|&s| !known(s))
            .collect();
        let mut out = Vec::new();
        for s in unknown {
            out.extend(self.chain(s).map(|m| (s, m)));
            // Only ever at open, before the partition is sealed.
            if let Ok(map) = self.growing()
                && let Some(gone) = map.remove(&s)
            {
                self.dropped += u64::from(gone.count);
            }
        }
        out
    }

    /// Record `i` of the sealed table at `at`.
    fn record(&self, at: usize, i: usize) -> (u32, SeriesChunks) {
        read_record(&self.map[at + i * RECORD..at + (i + 1) * RECORD])
    }

    /// What memory or the sealed table holds of `id`.
    fn series_chunks(&self, id: u32) -> Option<SeriesChunks> {
        match self.series {
            SeriesTable::Growing(ref map) => map.get(&id).copied(),
            SeriesTable::Sealed { at, len } => {
                let (mut lo, mut hi) = (0, len);
                while lo < hi {
                    let mid = lo + (hi - lo) / 2;
                    let (mid_id, s) = self.record(at, mid);
                    match mid_id.cmp(&id) {
                        std::cmp::Ordering::Less => lo = mid + 1,
                        std::cmp::Ordering::Greater => hi = mid,
                        std::cmp::Ordering::Equal => return Some(s),
                    }
                }
                None
            }
        }
    }

    /// Every series and what is held of it.
    fn series_all(&self) -> impl Iterator<Item = (u32, SeriesChunks)> + '_ {
        let (growing, sealed) = match self.series {
            SeriesTable::Growing(ref map) => (Some(map.iter().map(|(&id, s)| (id, *s))), None),
            SeriesTable::Sealed { at, len } => {
                (None, Some((0..len).map(move |i| self.record(at, i))))
            }
        };
        growing
            .into_iter()
            .flatten()
            .chain(sealed.into_iter().flatten())
    }

    /// The map to change; a sealed table is read back into one (and cut from
    /// the file) first: never needed, as nothing is appended to a closed
    /// partition, but kept correct.
    fn growing(&mut self) -> Result<&mut HashMap<u32, SeriesChunks>> {
        if let SeriesTable::Sealed { .. } = self.series {
            let map: HashMap<u32, SeriesChunks> = self.series_all().collect();
            self.file.set_len(self.written as u64).at(&self.path)?;
            self.series = SeriesTable::Growing(map);
        }
        match &mut self.series {
            SeriesTable::Growing(map) => Ok(map),
            SeriesTable::Sealed { .. } => unreachable!("read back above"),
        }
    }
}

/// Maps twice `written` bytes of `file` (at least [`MIN_MAP`]): the file
/// grows into the mapping as entries are written, and only what was written
/// is read.
fn map(file: &File, path: &Path, written: usize) -> Result<Mmap> {
    let len = (written * 2).max(MIN_MAP);
    // SAFETY: the mapping is read-only and only bytes already written to the
    // file are read through it (entries below `written`, and a sealed table
    // written before it is read), never bytes past its end. The file belongs
    // to this store, whose directory lock keeps other stores out; it is
    // written and truncated only by `&mut ChunkIndex` methods (so never while
    // anything is being read), and only past what is read or, while opening,
    // over entries with the same bytes or not yet read.
    unsafe { MmapOptions::new().len(len).map(file) }.at(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    const START: i64 = 1_700_000_000_000;

    fn meta(i: u64, min_t: i64, max_t: i64) -> ChunkMeta {
        ChunkMeta {
            min_t,
            max_t,
            offset: 32 + i * 100,
            len: 100,
        }
    }

    /// Series `i % 3`, chunk `i / 3` of it covering 10 s, 10 s apart.
    fn chunk(i: u64) -> (u32, ChunkMeta) {
        let t = START + (i / 3) as i64 * 10_000;
        ((i % 3) as u32, meta(i, t, t + 9_000))
    }

    fn model(n: u64, series: u32, from: i64, to: i64) -> Vec<ChunkMeta> {
        (0..n)
            .map(chunk)
            .filter(|&(s, m)| s == series && m.max_t >= from && m.min_t <= to)
            .map(|(_, m)| m)
            .collect()
    }

    fn filled(path: &Path, n: u64) -> ChunkIndex {
        let mut ix = ChunkIndex::open(path, START, 1).unwrap();
        ix.finish().unwrap();
        for i in 0..n {
            let (s, m) = chunk(i);
            ix.push(s, m).unwrap();
        }
        ix
    }

    /// Interleaved series, read back from the buffer, the mapped file and
    /// across the remapping as the file grows.
    #[test]
    fn chains_answer_each_series_range_in_time_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("1.idx");
        let n = FLUSH_BYTES as u64 / 2 + 17;
        let mut ix = filled(&path, n);
        for flushed in [false, true] {
            for s in 0..3 {
                for (from, to) in [
                    (i64::MIN, i64::MAX),
                    (START + 5_000, START + 25_000),
                    (START + 40_000_000, i64::MAX),
                ] {
                    assert_eq!(ix.chunks(s, from, to), model(n, s, from, to), "{s} {from}");
                }
                assert_eq!(
                    ix.series_max(s),
                    model(n, s, i64::MIN, i64::MAX).last().map(|m| m.max_t)
                );
            }
            // First from the buffer, then from the file.
            assert_eq!(ix.pending.is_empty(), flushed);
            ix.flush().unwrap();
        }
        assert_eq!(ix.count(), n);
        assert_eq!(fs_len(&path), ix.size_bytes());
        // The file grows past the first mapping: it is mapped again.
        let more = MIN_MAP as u64 / 4;
        for i in n..n + more {
            let (s, m) = chunk(i);
            ix.push(s, m).unwrap();
        }
        ix.flush().unwrap();
        assert!(ix.map.len() >= ix.written && ix.written > MIN_MAP);
        assert_eq!(
            ix.chunks(1, i64::MIN, i64::MAX),
            model(n + more, 1, i64::MIN, i64::MAX)
        );
        // Sealed (its partition closed), the packed table answers the same.
        let answers = |ix: &ChunkIndex| -> Vec<_> {
            (0..4)
                .map(|s| {
                    (
                        ix.chunks(s, START + 5_000, START + 25_000),
                        ix.series_max(s),
                    )
                })
                .collect()
        };
        let mins = |ix: &ChunkIndex| {
            let mut m: Vec<_> = ix.series_min().collect();
            m.sort_unstable();
            m
        };
        let (before, mins_before) = (answers(&ix), mins(&ix));
        ix.seal().unwrap();
        assert!(matches!(ix.series, SeriesTable::Sealed { .. }));
        assert_eq!((answers(&ix), mins(&ix)), (before, mins_before));
        let all = n + more;
        assert_eq!(ix.drop_unknown(|s| s != 0).len() as u64, all.div_ceil(3));
        assert!(ix.chunks(0, i64::MIN, i64::MAX).is_empty());
        assert_eq!(
            ix.chunks(2, i64::MIN, i64::MAX),
            model(all, 2, i64::MIN, i64::MAX)
        );
    }

    fn fs_len(path: &Path) -> u64 {
        std::fs::metadata(path).unwrap().len()
    }

    /// A file assembled out of time order still answers completely, in time
    /// order (no early stop).
    #[test]
    fn chunks_out_of_order_are_all_found() {
        let dir = tempfile::tempdir().unwrap();
        let mut ix = ChunkIndex::open(&dir.path().join("1.idx"), START, 1).unwrap();
        ix.finish().unwrap();
        let ms = [
            meta(0, START + 20_000, START + 29_000),
            meta(1, START, START + 9_000),
            meta(2, START + 10_000, START + 19_000),
        ];
        for m in ms {
            ix.push(5, m).unwrap();
        }
        // Walking back, the oldest chunk comes before the newest one.
        assert_eq!(ix.chunks(5, START + 10_000, i64::MAX), vec![ms[2], ms[0]]);
        assert_eq!(ix.chunks(5, START, START + 15_000), vec![ms[1], ms[2]]);
        assert_eq!(ix.chunks(5, i64::MIN, i64::MAX), vec![ms[1], ms[2], ms[0]]);
        assert_eq!(ix.series_min().collect::<Vec<_>>(), vec![(5, START)]);
    }

    /// Opening checks the file against the entries pushed and rewrites what
    /// differs: stale, damaged and longer files all end as the entries.
    #[test]
    fn opening_rewrites_what_differs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("1.idx");
        let n = 5_000;
        let mut ix = filled(&path, n);
        ix.flush().unwrap();
        let good = std::fs::read(&path).unwrap();
        drop(ix);
        let mut bad = good.clone();
        bad[7 * 6 + 3] ^= 0x40;
        bad[4_000 * 6] ^= 0x01;
        bad.extend_from_slice(&[0xff; 100]);
        std::fs::write(&path, &bad).unwrap();
        let mut ix = ChunkIndex::open(&path, START, 1).unwrap();
        for i in 0..n {
            let (s, m) = chunk(i);
            ix.push(s, m).unwrap();
        }
        ix.finish().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), good);
        assert_eq!(
            ix.chunks(1, i64::MIN, i64::MAX),
            model(n, 1, i64::MIN, i64::MAX)
        );
    }

    /// Sealed when its partition closes, the packed table answers as the map
    /// did, for every one of many series.
    #[test]
    fn a_sealed_table_answers_as_the_growing_one() {
        let dir = tempfile::tempdir().unwrap();
        let mut ix = ChunkIndex::open(&dir.path().join("1.idx"), START, 1).unwrap();
        ix.finish().unwrap();
        let ids: Vec<u32> = (0..300u32).map(|i| i * 7_919 % 1_009).collect();
        for round in 0..3u64 {
            for (k, &id) in ids.iter().enumerate() {
                let t = START + (round as i64 * 300 + k as i64) * 1_000;
                ix.push(id, meta(round * 300 + k as u64, t, t + 500))
                    .unwrap();
            }
        }
        let answers = |ix: &ChunkIndex| -> Vec<_> {
            (0..1_009)
                .map(|id| (ix.chunks(id, START, i64::MAX), ix.series_max(id)))
                .collect()
        };
        let before = answers(&ix);
        let entries = ix.size_bytes();
        ix.seal().unwrap();
        assert_eq!(answers(&ix), before);
        assert_eq!(before.iter().filter(|(c, _)| c.len() == 3).count(), 300);
        // The table is on disk, after the entries, and counted.
        assert_eq!(ix.size_bytes(), entries + 300 * RECORD as u64);
        assert_eq!(fs_len(&dir.path().join("1.idx")), ix.size_bytes());
        // A chunk added after all (never done by the store) reads the table
        // back into memory, cuts it from the file and is indexed.
        let t = START + 900_000;
        ix.push(ids[0], meta(900, t, t + 500)).unwrap();
        ix.flush().unwrap();
        assert!(matches!(ix.series, SeriesTable::Growing(_)));
        assert_eq!(fs_len(&dir.path().join("1.idx")), ix.size_bytes());
        assert_eq!(ix.chunks(ids[0], START, i64::MAX).len(), 4);
        assert_eq!(
            ix.chunks(ids[1], START, i64::MAX),
            before[ids[1] as usize].0
        );
    }

    /// Forgotten series are reported with their chunks and no longer counted.
    #[test]
    fn unknown_series_are_dropped_with_their_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let mut ix = filled(&dir.path().join("1.idx"), 30);
        let dropped = ix.drop_unknown(|s| s != 2);
        assert_eq!(dropped.len(), 10);
        assert!(dropped.iter().all(|&(s, _)| s == 2));
        assert_eq!(ix.count(), 20);
        assert!(ix.chunks(2, i64::MIN, i64::MAX).is_empty());
        assert_eq!(ix.chunks(0, i64::MIN, i64::MAX).len(), 10);
    }
}
