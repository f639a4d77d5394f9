//! Partition files: the chunks of one tier for one span of time.
//!
//! `<tier>/<start>.part` = a 32-byte header (`WMTSPRT2`, tier, start, end,
//! CRC) followed by chunk frames, appended as chunks are cut. A chunk frame's
//! payload is `series: uvarint | min_t - start: varint | max_t - min_t:
//! uvarint | chunk` (see [`crate::chunk`]); in the downsampled tiers the two
//! bounds are counted in bucket widths (always whole buckets), in the raw tier
//! and in files of the first layout (`WMTSPRT1`, still read) in milliseconds.
//! Files are append-only while their partition is open and never rewritten;
//! retention deletes them whole, with their chunk index (`<start>.idx`, see
//! [`crate::chunk_index`]). On open every frame is read and checksummed, which
//! checks (and where needed rewrites) the chunk index and finds torn tails
//! and corrupt frames.

use std::fs::{self, File};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::bits::{ByteReader, put_uvarint, put_varint};
pub(crate) use crate::chunk_index::ChunkMeta;
use crate::chunk_index::{self, ChunkIndex};
use crate::error::{Error, IoContext, Result};
use crate::frame;
use crate::fsutil;
use crate::recovery::{DropAction, Dropped, Recovery};
use crate::tier::Tier;

/// Magic of the current layout: tier chunk bounds in bucket widths.
const MAGIC: &[u8; 8] = b"WMTSPRT2";
/// Magic of the first layout (bounds in milliseconds), still read.
const MAGIC_V1: &[u8; 8] = b"WMTSPRT1";
/// Bytes of the file header.
pub(crate) const HEADER_LEN: u64 = 32;
/// Largest chunk frame payload accepted.
pub(crate) const MAX_FRAME: u32 = 1 << 20;
/// Suffix given to a partition file whose header is unreadable.
pub(crate) const CORRUPT_SUFFIX: &str = ".corrupt";

/// An open partition file, shared with queries that read it.
#[derive(Debug)]
pub(crate) struct PartFile {
    pub file: File,
    pub path: PathBuf,
    pub start: i64,
    /// Unit of the chunk bounds in frame headers, in ms.
    pub unit: i64,
}

/// One partition file and its chunk index.
#[derive(Debug)]
pub(crate) struct Partition {
    pub start: i64,
    pub end: i64,
    pub path: PathBuf,
    file: Arc<PartFile>,
    len: u64,
    /// No more chunks will be appended ([`Partition::close`]).
    pub closed: bool,
    dirty: bool,
    index: ChunkIndex,
    /// Oldest timestamp in the file (`i64::MAX` when empty).
    pub min_t: i64,
}

/// File name of the partition starting at `start`.
pub(crate) fn file_name(start: i64) -> String {
    format!("{start}.part")
}

/// Path of the chunk index of the partition file at `path`.
pub(crate) fn index_path(path: &Path) -> PathBuf {
    path.with_extension(chunk_index::EXTENSION)
}

fn header(tier: Tier, start: i64, end: i64) -> [u8; HEADER_LEN as usize] {
    let mut h = [0u8; HEADER_LEN as usize];
    h[..8].copy_from_slice(MAGIC);
    h[8] = tier.index() as u8;
    h[12..20].copy_from_slice(&start.to_le_bytes());
    h[20..28].copy_from_slice(&end.to_le_bytes());
    let crc = crc32fast::hash(&h[..28]);
    h[28..32].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Tier, start, end and the unit of chunk bounds of a file header.
fn parse_header(h: &[u8]) -> Option<(Tier, i64, i64, i64)> {
    if h.len() < HEADER_LEN as usize || (&h[..8] != MAGIC && &h[..8] != MAGIC_V1) {
        return None;
    }
    let crc = u32::from_le_bytes([h[28], h[29], h[30], h[31]]);
    if crc32fast::hash(&h[..28]) != crc {
        return None;
    }
    let tier = Tier::from_index(h[8])?;
    let start = i64::from_le_bytes(h[12..20].try_into().ok()?);
    let end = i64::from_le_bytes(h[20..28].try_into().ok()?);
    let unit = if &h[..8] == MAGIC {
        bound_unit(tier)
    } else {
        1
    };
    (end > start).then_some((tier, start, end, unit))
}

/// Unit of the chunk bounds in frame headers of the current layout: bucket
/// chunks start and end on whole buckets (partition spans are multiples of
/// the bucket width, checked by `Options::validate`).
fn bound_unit(tier: Tier) -> i64 {
    tier.width_ms().max(1)
}

impl Partition {
    /// Creates the file of a new partition in `dir` (the tier's directory).
    pub(crate) fn create(dir: &Path, tier: Tier, start: i64, end: i64) -> Result<Partition> {
        let path = dir.join(file_name(start));
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .at(&path)?;
        file.write_all_at(&header(tier, start, end), 0).at(&path)?;
        // Made durable (file and directory entry) by the next commit.
        let mut index = ChunkIndex::open(&index_path(&path), start, bound_unit(tier))?;
        index.finish()?;
        Ok(Partition {
            start,
            end,
            path: path.clone(),
            file: Arc::new(PartFile {
                file,
                path,
                start,
                unit: bound_unit(tier),
            }),
            len: HEADER_LEN,
            closed: false,
            dirty: true,
            index,
            min_t: i64::MAX,
        })
    }

    /// Opens an existing partition file, reading and checking every frame.
    /// Returns `None` (after setting the file aside) if its header is bad.
    pub(crate) fn open(
        path: &Path,
        tier: Tier,
        start: i64,
        rec: &mut Recovery,
    ) -> Result<Option<Partition>> {
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .at(path)?;
        let mut h = [0u8; HEADER_LEN as usize];
        let header_ok = match file.read_exact_at(&mut h, 0) {
            Ok(()) => parse_header(&h).filter(|&(t, s, _, _)| t == tier && s == start),
            Err(_) => None,
        };
        let Some((_, start, end, unit)) = header_ok else {
            drop(file);
            let mut aside = path.as_os_str().to_owned();
            aside.push(CORRUPT_SUFFIX);
            let aside = PathBuf::from(aside);
            fs::rename(path, &aside).at(path)?;
            let index = index_path(path);
            match fs::remove_file(&index) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                r => r.at(&index)?,
            }
            if let Some(dir) = path.parent() {
                fsutil::sync_dir(dir)?;
            }
            rec.dropped.push(Dropped {
                file: path.to_path_buf(),
                offset: 0,
                bytes: fsutil::file_len(&aside),
                records: 0,
                reason: "partition file header is missing or fails its checksum".into(),
                action: DropAction::SetAside(aside),
            });
            return Ok(None);
        };
        let index = ChunkIndex::open(&index_path(path), start, unit)?;
        let mut p = Partition {
            start,
            end,
            path: path.to_path_buf(),
            file: Arc::new(PartFile {
                file,
                path: path.to_path_buf(),
                start,
                unit,
            }),
            len: HEADER_LEN,
            closed: false,
            dirty: false,
            index,
            min_t: i64::MAX,
        };
        let mut bad_bounds = Vec::new();
        let mut index_error = None;
        let handle = p.file.clone();
        let report = frame::scan(&handle.file, HEADER_LEN, MAX_FRAME, |off, payload| {
            let Some((series, min_t, max_t)) = parse_payload_head(payload, start, unit) else {
                return false;
            };
            if min_t < start || max_t >= end || max_t < min_t {
                bad_bounds.push(off);
                return false;
            }
            let len = (payload.len() + frame::HEADER) as u32;
            let meta = ChunkMeta {
                min_t,
                max_t,
                offset: off,
                len,
            };
            if let Err(e) = p.add_meta(series, meta) {
                index_error.get_or_insert(e);
            }
            true
        })
        .at(path)?;
        if let Some(e) = index_error {
            return Err(e);
        }
        p.index.finish()?;
        for g in &report.gaps {
            rec.dropped.push(Dropped {
                file: path.to_path_buf(),
                offset: g.offset,
                bytes: g.bytes,
                records: u64::from(!g.tail),
                reason: if bad_bounds.contains(&g.offset) {
                    "chunk lies outside its partition's time span".to_string()
                } else {
                    format!("partition chunk: {}", g.reason)
                },
                action: if g.tail {
                    DropAction::Truncated
                } else {
                    DropAction::Skipped
                },
            });
        }
        if report.gaps.iter().any(|g| g.tail) {
            p.file.file.set_len(report.valid_end).at(path)?;
            p.file.file.sync_all().at(path)?;
        }
        p.len = report.valid_end.max(HEADER_LEN);
        rec.partitions += 1;
        rec.chunks += p.chunk_count();
        Ok(Some(p))
    }

    fn add_meta(&mut self, series: u32, m: ChunkMeta) -> Result<()> {
        self.index.push(series, m)?;
        self.min_t = self.min_t.min(m.min_t);
        Ok(())
    }

    /// Appends chunks (`series`, `min_t`, `max_t`, bytes) with one write (written
    /// now, durable at the next sync). The chunks cut together (every series of a
    /// steady feed fills its chunk at the same pace) were one write each: hundreds
    /// of system calls at once, each a pause of the writer's thread. Nothing is
    /// indexed unless all of them were written.
    pub(crate) fn append_all<'c>(
        &mut self,
        chunks: impl IntoIterator<Item = (u32, i64, i64, &'c [u8])>,
    ) -> Result<()> {
        let unit = self.file.unit;
        let mut buf = Vec::new();
        let mut metas = Vec::new();
        for (series, min_t, max_t, chunk) in chunks {
            debug_assert!((min_t - self.start) % unit == 0 && (max_t - min_t) % unit == 0);
            let at = buf.len();
            let start = frame::begin(&mut buf);
            put_uvarint(&mut buf, u64::from(series));
            put_varint(&mut buf, (min_t - self.start) / unit);
            put_uvarint(&mut buf, ((max_t - min_t) / unit) as u64);
            buf.extend_from_slice(chunk);
            frame::finish(&mut buf, start);
            let meta = ChunkMeta {
                min_t,
                max_t,
                offset: self.len + at as u64,
                len: (buf.len() - at) as u32,
            };
            metas.push((series, meta));
        }
        if buf.is_empty() {
            return Ok(());
        }
        self.file.file.write_all_at(&buf, self.len).at(&self.path)?;
        self.len += buf.len() as u64;
        self.dirty = true;
        metas
            .into_iter()
            .try_for_each(|(series, meta)| self.add_meta(series, meta))
    }

    /// Marks the partition closed: no more chunks will be appended (its
    /// chunk index then holds nothing in memory).
    pub(crate) fn close(&mut self) -> Result<()> {
        self.index.seal()?;
        self.closed = true;
        Ok(())
    }

    /// The file to fsync if chunks were appended since the last call; writes
    /// the chunk index's buffered entries (which need no fsync).
    pub(crate) fn take_dirty(&mut self) -> Result<Option<Arc<PartFile>>> {
        self.index.flush()?;
        Ok(std::mem::take(&mut self.dirty).then(|| self.file.clone()))
    }

    /// Bytes on disk: the partition file and its chunk index.
    pub(crate) fn size_bytes(&self) -> u64 {
        self.len + self.index.size_bytes()
    }

    /// Chunks in the file (of series the catalog holds).
    pub(crate) fn chunk_count(&self) -> u64 {
        self.index.count()
    }

    /// Path of the chunk index file.
    pub(crate) fn index_path(&self) -> PathBuf {
        index_path(&self.path)
    }

    /// The file, for reading chunks without holding the partition.
    pub(crate) fn handle(&self) -> Arc<PartFile> {
        self.file.clone()
    }

    /// Chunks of `series` overlapping `[from, to]`.
    /// Chunks of `series` overlapping `[from, to]`, in time order.
    pub(crate) fn chunks(&self, series: u32, from: i64, to: i64) -> Vec<ChunkMeta> {
        self.index.chunks(series, from, to)
    }

    /// Newest timestamp of `series` in this file.
    pub(crate) fn series_max(&self, series: u32) -> Option<i64> {
        self.index.series_max(series)
    }

    /// Series with chunks in this file and their oldest timestamps.
    pub(crate) fn series_min(&self) -> impl Iterator<Item = (u32, i64)> + '_ {
        self.index.series_min()
    }

    /// Forgets the chunks of series the catalog does not know; returns them.
    pub(crate) fn drop_unknown(&mut self, known: impl Fn(u32) -> bool) -> Vec<(u32, ChunkMeta)> {
        self.index.drop_unknown(known)
    }
}

fn parse_payload_head(payload: &[u8], start: i64, unit: i64) -> Option<(u32, i64, i64)> {
    let mut r = ByteReader::new(payload);
    let series = u32::try_from(r.uvarint().ok()?).ok()?;
    let min_t = start.checked_add(r.varint().ok()?.checked_mul(unit)?)?;
    let span = i64::try_from(r.uvarint().ok()?).ok()?.checked_mul(unit)?;
    Some((series, min_t, min_t.checked_add(span)?))
}

/// Reads and checks the chunk at `m`; returns the chunk bytes.
pub(crate) fn read_chunk(pf: &PartFile, m: &ChunkMeta) -> Result<Vec<u8>> {
    let (path, start, unit) = (pf.path.as_path(), pf.start, pf.unit);
    let mut buf = vec![0u8; m.len as usize];
    pf.file.read_exact_at(&mut buf, m.offset).at(path)?;
    let corrupt = |reason: &str| Error::Corrupt {
        path: path.to_path_buf(),
        offset: m.offset,
        reason: reason.into(),
    };
    let payload =
        frame::parse_exact(&buf).ok_or_else(|| corrupt("chunk frame fails its checksum"))?;
    let mut r = ByteReader::new(payload);
    parse_payload_head(payload, start, unit).ok_or_else(|| corrupt("bad chunk header"))?;
    // Skip the three header fields parsed above.
    let _ = (r.uvarint(), r.varint(), r.uvarint());
    Ok(r.remaining().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tier files of the current layout store chunk bounds in bucket widths;
    /// files of the first layout (bounds in ms) are still read.
    #[test]
    fn both_layouts_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let (tier, start, end) = (Tier::Second, 86_400_000 * 19_675, 86_400_000 * 19_676);
        let (min_t, max_t) = (start + 3_000, start + 122_000);
        let mut p = Partition::create(dir.path(), tier, start, end).unwrap();
        p.append_all([(7, min_t, max_t, &b"chunk"[..])]).unwrap();
        let mut rec = Recovery::default();
        let p = Partition::open(&p.path, tier, start, &mut rec)
            .unwrap()
            .unwrap();
        let m: Vec<ChunkMeta> = p.chunks(7, i64::MIN, i64::MAX);
        assert_eq!((m[0].min_t, m[0].max_t), (min_t, max_t));
        assert_eq!(read_chunk(&p.handle(), &m[0]).unwrap(), b"chunk");
        // In seconds, 3 and 119 are one byte each (in ms, 3 bytes each).
        assert_eq!(m[0].len as usize, frame::HEADER + 1 + 1 + 1 + 5);

        // The same chunk as the first layout wrote it.
        let path = dir.path().join("1s-v1.part");
        let mut h = header(tier, start, end);
        h[..8].copy_from_slice(MAGIC_V1);
        let crc = crc32fast::hash(&h[..28]);
        h[28..32].copy_from_slice(&crc.to_le_bytes());
        let mut buf = h.to_vec();
        let f = frame::begin(&mut buf);
        put_uvarint(&mut buf, 7);
        put_varint(&mut buf, min_t - start);
        put_uvarint(&mut buf, (max_t - min_t) as u64);
        buf.extend_from_slice(b"chunk");
        frame::finish(&mut buf, f);
        fs::write(&path, &buf).unwrap();
        let p = Partition::open(&path, tier, start, &mut rec)
            .unwrap()
            .unwrap();
        let m: Vec<ChunkMeta> = p.chunks(7, i64::MIN, i64::MAX);
        assert_eq!((m[0].min_t, m[0].max_t), (min_t, max_t));
        assert_eq!(read_chunk(&p.handle(), &m[0]).unwrap(), b"chunk");
        assert!(rec.is_clean(), "{rec}");
    }

    /// Chunks appended with one write are each indexed where they are, in the
    /// open partition and in the file reopened.
    #[test]
    fn chunks_written_together_read_back_one_by_one() {
        let dir = tempfile::tempdir().unwrap();
        let (tier, start, end) = (Tier::Raw, 3_600_000 * 480_000, 3_600_000 * 480_001);
        let mut p = Partition::create(dir.path(), tier, start, end).unwrap();
        let chunks: Vec<(u32, i64, i64, Vec<u8>)> = (0..50u32)
            .map(|i| {
                let bytes = vec![i as u8; 1 + i as usize % 7];
                (
                    i % 5,
                    start + i64::from(i) * 10,
                    start + i64::from(i) * 10 + 5,
                    bytes,
                )
            })
            .collect();
        p.append_all(chunks[..20].iter().map(|(s, a, b, c)| (*s, *a, *b, &c[..])))
            .unwrap();
        p.append_all(chunks[20..].iter().map(|(s, a, b, c)| (*s, *a, *b, &c[..])))
            .unwrap();
        p.append_all([]).unwrap();
        let check = |p: &Partition| {
            for series in 0..5 {
                let metas = p.chunks(series, i64::MIN, i64::MAX);
                let want: Vec<_> = chunks.iter().filter(|c| c.0 == series).collect();
                assert_eq!(metas.len(), want.len(), "series {series}");
                for (m, (_, min_t, max_t, bytes)) in metas.iter().zip(want) {
                    assert_eq!((m.min_t, m.max_t), (*min_t, *max_t));
                    assert_eq!(&read_chunk(&p.handle(), m).unwrap(), bytes);
                }
            }
        };
        check(&p);
        let mut rec = Recovery::default();
        let reopened = Partition::open(&p.path, tier, start, &mut rec)
            .unwrap()
            .unwrap();
        check(&reopened);
        assert!(rec.is_clean(), "{rec}");
    }
}
