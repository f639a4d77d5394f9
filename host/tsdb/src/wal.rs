//! The write-ahead log: every accepted sample, until a checkpoint covers it.
//!
//! Segments `wal/<seq>.wal` hold checksummed frames; the first is a header
//! (`WMTSWAL1`, seq), the others carry samples as `series id: uvarint`,
//! `timestamp delta from the previous entry: varint`, `value: f64 LE`.
//! Appends go to a memory buffer; [`Wal::sync`] writes it out and fdatasyncs
//! (the group commit). A checkpoint rolls to a new segment and deletes the
//! older ones.

use std::fs::{self, File};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::bits::{ByteReader, put_uvarint, put_varint};
use crate::error::{IoContext, Result};
use crate::frame;
use crate::fsutil;
use crate::recovery::{DropAction, Dropped, Recovery};

/// Directory of the log, under the store's directory.
pub(crate) const DIR: &str = "wal";
const MAGIC: &[u8; 8] = b"WMTSWAL1";
const REC_SAMPLES: u8 = 1;
const MAX_FRAME: u32 = 2 << 20;
const FRAME_TARGET: usize = 1 << 20;

/// The log being written.
#[derive(Debug)]
pub(crate) struct Wal {
    dir: PathBuf,
    seq: u64,
    path: PathBuf,
    file: Arc<File>,
    len: u64,
    older_bytes: u64,
    buf: Vec<u8>,
    frame: Option<usize>,
    prev_t: i64,
    written_since_checkpoint: u64,
}

/// Path of segment `seq`.
pub(crate) fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}.wal"))
}

/// Segments present in `dir`, oldest first.
pub(crate) fn segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).at(dir)? {
        let e = e.at(dir)?;
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(seq) = name
            .strip_suffix(".wal")
            .and_then(|s| s.parse::<u64>().ok())
        {
            out.push((seq, e.path()));
        }
    }
    out.sort();
    Ok(out)
}

impl Wal {
    /// Starts segment `seq` in `dir`. `older_bytes` is the size of the
    /// segments kept before it.
    pub(crate) fn create(dir: &Path, seq: u64, older_bytes: u64) -> Result<Wal> {
        let path = segment_path(dir, seq);
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .at(&path)?;
        let mut head = Vec::new();
        let mut p = MAGIC.to_vec();
        p.extend_from_slice(&seq.to_le_bytes());
        frame::put(&mut head, &p);
        file.write_all_at(&head, 0).at(&path)?;
        file.sync_all().at(&path)?;
        fsutil::sync_dir(dir)?;
        Ok(Wal {
            dir: dir.to_path_buf(),
            seq,
            path,
            file: Arc::new(file),
            len: head.len() as u64,
            older_bytes,
            buf: Vec::with_capacity(1 << 16),
            frame: None,
            prev_t: 0,
            written_since_checkpoint: 0,
        })
    }

    /// Logs one sample (buffered until [`Wal::write_out`]).
    #[inline]
    pub(crate) fn push(&mut self, series: u32, t: i64, v: f64) {
        if self.frame.is_none() {
            self.frame = Some(frame::begin(&mut self.buf));
            self.buf.push(REC_SAMPLES);
            self.prev_t = 0;
        }
        put_uvarint(&mut self.buf, u64::from(series));
        put_varint(&mut self.buf, t.wrapping_sub(self.prev_t));
        self.buf.extend_from_slice(&v.to_le_bytes());
        self.prev_t = t;
        if let Some(start) = self.frame
            && self.buf.len() - start >= FRAME_TARGET
        {
            self.end_frame();
        }
    }

    fn end_frame(&mut self) {
        if let Some(start) = self.frame.take() {
            frame::finish(&mut self.buf, start);
        }
    }

    /// Bytes buffered and not yet written to the file.
    pub(crate) fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Writes buffered frames to the file (no fsync).
    pub(crate) fn write_out(&mut self) -> Result<()> {
        self.end_frame();
        if !self.buf.is_empty() {
            self.file.write_all_at(&self.buf, self.len).at(&self.path)?;
            self.len += self.buf.len() as u64;
            self.written_since_checkpoint += self.buf.len() as u64;
            self.buf.clear();
        }
        Ok(())
    }

    /// Writes out and fdatasyncs: everything pushed so far is durable.
    pub(crate) fn sync(&mut self) -> Result<()> {
        self.write_out()?;
        self.file.sync_data().at(&self.path)
    }

    /// The segment being written, to fdatasync without holding the log: what
    /// [`Wal::write_out`] wrote before is durable once that returns.
    pub(crate) fn file(&self) -> (Arc<File>, PathBuf) {
        (self.file.clone(), self.path.clone())
    }

    /// Bytes logged since the last [`Wal::roll`].
    pub(crate) fn since_checkpoint(&self) -> u64 {
        self.written_since_checkpoint
    }

    /// Bytes of all segments on disk.
    pub(crate) fn size_bytes(&self) -> u64 {
        self.older_bytes + self.len
    }

    /// Syncs this segment and starts the next; returns the new segment's number.
    pub(crate) fn roll(&mut self) -> Result<u64> {
        self.sync()?;
        let next = Wal::create(&self.dir, self.seq + 1, self.older_bytes + self.len)?;
        *self = next;
        Ok(self.seq)
    }

    /// Forgets the segments older than the current one and returns their paths,
    /// for the caller to delete ([`fsutil::remove_all`]): a checkpoint has
    /// replaced them, and deleting a 64 MiB segment takes tens of milliseconds
    /// (its cached pages freed) that the writer need not wait for.
    pub(crate) fn take_older(&mut self) -> Result<Vec<PathBuf>> {
        let older = segments(&self.dir)?
            .into_iter()
            .filter(|(seq, _)| *seq < self.seq)
            .map(|(_, path)| path)
            .collect();
        self.older_bytes = 0;
        Ok(older)
    }
}

/// Replays one segment, calling `f(series, t, v)` for each sample; returns the
/// number of frames read. A torn tail is truncated; everything dropped is
/// reported in `rec`.
pub(crate) fn replay(
    path: &Path,
    rec: &mut Recovery,
    mut f: impl FnMut(u32, i64, f64),
) -> Result<u64> {
    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .at(path)?;
    let mut frames = 0u64;
    let mut header_ok = false;
    let mut first = true;
    let report = frame::scan(&file, 0, MAX_FRAME, |_, p| {
        if first {
            first = false;
            if p.len() == 16 && &p[..8] == MAGIC {
                header_ok = true;
                return true;
            }
        }
        let mut r = ByteReader::new(p);
        if r.u8() != Ok(REC_SAMPLES) {
            return false;
        }
        // Decode the whole frame first so a bad frame adds nothing.
        let mut items = Vec::new();
        let mut prev_t = 0i64;
        while !r.remaining().is_empty() {
            let (Ok(id), Ok(dt), Ok(v)) = (r.uvarint(), r.varint(), r.u64_le()) else {
                return false;
            };
            let Ok(id) = u32::try_from(id) else {
                return false;
            };
            prev_t = prev_t.wrapping_add(dt);
            items.push((id, prev_t, f64::from_bits(v)));
        }
        for (id, t, v) in items {
            f(id, t, v);
        }
        frames += 1;
        true
    })
    .at(path)?;
    if !header_ok && report.valid_end > 0 {
        rec.dropped.push(Dropped {
            file: path.to_path_buf(),
            offset: 0,
            bytes: 0,
            records: 0,
            reason: "write-ahead log segment has no valid header (frames after it were still read)"
                .into(),
            action: DropAction::Skipped,
        });
    }
    for g in &report.gaps {
        rec.dropped.push(Dropped {
            file: path.to_path_buf(),
            offset: g.offset,
            bytes: g.bytes,
            records: u64::from(!g.tail),
            reason: format!("write-ahead log: {}", g.reason),
            action: if g.tail {
                DropAction::Truncated
            } else {
                DropAction::Skipped
            },
        });
    }
    if report.gaps.iter().any(|g| g.tail) {
        file.set_len(report.valid_end).at(path)?;
        file.sync_all().at(path)?;
    }
    Ok(frames)
}
