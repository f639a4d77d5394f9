//! The series catalog: series id <-> labels, and the inverted index
//! `label=value -> series ids` that resolves matchers.
//!
//! Persisted as `catalog.log`, an append-only file of checksummed frames, one
//! per series (`id`, kind, labels), appended when the series is created and
//! fsynced at the next commit before any log record that uses the id. The
//! inverted index is rebuilt in memory when the catalog is loaded. The file is
//! rewritten whole (tmp + fsync + rename) when series are dropped by retention.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::bits::{ByteReader, put_string, put_uvarint};
use crate::error::{IoContext, Result};
use crate::frame;
use crate::fsutil;
use crate::labels::{Labels, MetricKind};
use crate::matcher::Matcher;
use crate::recovery::{DropAction, Dropped, Recovery};

/// File name of the catalog.
pub(crate) const FILE_NAME: &str = "catalog.log";
const MAX_RECORD: u32 = 1 << 20;
const REC_SERIES: u8 = 1;
const REC_ID_BOUND: u8 = 2;

/// A series known to the catalog.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub labels: Labels,
    pub kind: MetricKind,
}

/// The catalog, in memory, with its file.
#[derive(Debug)]
pub(crate) struct Catalog {
    path: PathBuf,
    file: Arc<File>,
    len: u64,
    entries: Vec<Option<Entry>>,
    by_labels: HashMap<Labels, u32>,
    postings: HashMap<String, HashMap<String, Vec<u32>>>,
    live: usize,
    dirty: bool,
}

fn encode_record(id: u32, e: &Entry) -> Vec<u8> {
    let mut p = Vec::with_capacity(64);
    p.push(REC_SERIES);
    put_uvarint(&mut p, u64::from(id));
    p.push(e.kind.to_byte());
    put_uvarint(&mut p, e.labels.len() as u64);
    for l in e.labels.iter() {
        put_string(&mut p, &l.name);
        put_string(&mut p, &l.value);
    }
    let mut out = Vec::with_capacity(p.len() + frame::HEADER);
    frame::put(&mut out, &p);
    out
}

enum Record {
    Series(u32, Entry),
    IdBound(u32),
}

fn decode_record(p: &[u8]) -> Option<Record> {
    let mut r = ByteReader::new(p);
    match r.u8().ok()? {
        REC_SERIES => {}
        REC_ID_BOUND => {
            let b = u32::try_from(r.uvarint().ok()?).ok()?;
            return r.remaining().is_empty().then_some(Record::IdBound(b));
        }
        _ => return None,
    }
    let id = u32::try_from(r.uvarint().ok()?).ok()?;
    let kind = MetricKind::from_byte(r.u8().ok()?);
    let n = r.uvarint().ok()?;
    if n > 1024 {
        return None;
    }
    let mut pairs = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let name = r.string().ok()?.to_string();
        let value = r.string().ok()?.to_string();
        pairs.push((name, value));
    }
    if !r.remaining().is_empty() {
        return None;
    }
    let labels = Labels::from_stored(pairs).ok()?;
    Some(Record::Series(id, Entry { labels, kind }))
}

impl Catalog {
    /// Loads (or creates) the catalog in `dir`, truncating a torn tail and
    /// reporting whatever it drops into `rec`.
    pub(crate) fn open(dir: &Path, rec: &mut Recovery) -> Result<Catalog> {
        let path = dir.join(FILE_NAME);
        let file = Arc::new(fsutil::open_rw(&path)?);
        let mut cat = Catalog {
            path: path.clone(),
            file,
            len: 0,
            entries: Vec::new(),
            by_labels: HashMap::new(),
            postings: HashMap::new(),
            live: 0,
            dirty: false,
        };
        let mut loaded = Vec::new();
        let report = frame::scan(&cat.file, 0, MAX_RECORD, |_, p| match decode_record(p) {
            Some(x) => {
                loaded.push(x);
                true
            }
            None => false,
        })
        .at(&path)?;
        for r in loaded {
            let (id, e) = match r {
                Record::Series(id, e) => (id, e),
                Record::IdBound(b) => {
                    if cat.entries.len() < b as usize {
                        cat.entries.resize(b as usize, None);
                    }
                    continue;
                }
            };
            if cat.by_labels.contains_key(&e.labels)
                || cat.entries.get(id as usize).is_some_and(|x| x.is_some())
            {
                continue; // a duplicate record (cannot happen unless the file was edited)
            }
            cat.insert(id, e);
        }
        for g in &report.gaps {
            rec.dropped.push(Dropped {
                file: path.clone(),
                offset: g.offset,
                bytes: g.bytes,
                records: u64::from(!g.tail),
                reason: format!("catalog: {}", g.reason),
                action: if g.tail {
                    DropAction::Truncated
                } else {
                    DropAction::Skipped
                },
            });
        }
        if report.gaps.iter().any(|g| g.tail) {
            cat.file.set_len(report.valid_end).at(&path)?;
            cat.file.sync_all().at(&path)?;
        }
        cat.len = report.valid_end;
        rec.series = cat.live;
        Ok(cat)
    }

    fn insert(&mut self, id: u32, e: Entry) {
        let i = id as usize;
        if self.entries.len() <= i {
            self.entries.resize(i + 1, None);
        }
        for l in e.labels.iter() {
            let ids = self
                .postings
                .entry(l.name.clone())
                .or_default()
                .entry(l.value.clone())
                .or_default();
            match ids.last() {
                Some(&last) if last >= id => {
                    if let Err(pos) = ids.binary_search(&id) {
                        ids.insert(pos, id);
                    }
                }
                _ => ids.push(id),
            }
        }
        self.by_labels.insert(e.labels.clone(), id);
        self.entries[i] = Some(e);
        self.live += 1;
    }

    /// The id of a known series.
    pub(crate) fn get(&self, labels: &Labels) -> Option<u32> {
        self.by_labels.get(labels).copied()
    }

    /// Number of series.
    pub(crate) fn len(&self) -> usize {
        self.live
    }

    /// One past the highest id ever used.
    pub(crate) fn id_bound(&self) -> usize {
        self.entries.len()
    }

    /// The series with id `id`.
    pub(crate) fn entry(&self, id: u32) -> Option<&Entry> {
        self.entries.get(id as usize).and_then(|e| e.as_ref())
    }

    /// Creates a series, appending its record to the file (durable at the next
    /// [`Catalog::sync`]).
    pub(crate) fn create(&mut self, labels: Labels, kind: MetricKind) -> Result<u32> {
        let id = self.entries.len() as u32;
        let e = Entry { labels, kind };
        let bytes = encode_record(id, &e);
        self.file.write_all_at(&bytes, self.len).at(&self.path)?;
        self.len += bytes.len() as u64;
        self.dirty = true;
        self.insert(id, e);
        Ok(id)
    }

    /// The file to fsync if records were appended since the last call (synced
    /// by the caller without holding the catalog's lock).
    pub(crate) fn take_dirty(&mut self) -> Option<(Arc<File>, PathBuf)> {
        std::mem::take(&mut self.dirty).then(|| (self.file.clone(), self.path.clone()))
    }

    /// Bytes on disk.
    pub(crate) fn size_bytes(&self) -> u64 {
        self.len
    }

    /// Ids of every series matching all `matchers` (every series if none), sorted.
    pub(crate) fn select(&self, matchers: &[Matcher]) -> Vec<u32> {
        // Candidates from the inverted index: intersect the postings of every
        // matcher that does not match the empty string, smallest first.
        let mut lists: Vec<Vec<u32>> = Vec::new();
        for m in matchers.iter().filter(|m| !m.matches_empty()) {
            let Some(values) = self.postings.get(m.name()) else {
                return Vec::new();
            };
            let mut ids: Vec<u32> = if m.op() == crate::matcher::MatchOp::Equal {
                values.get(m.value()).cloned().unwrap_or_default()
            } else {
                let mut acc = Vec::new();
                for (v, ids) in values {
                    if m.matches(v) {
                        acc.extend_from_slice(ids);
                    }
                }
                acc.sort_unstable();
                acc.dedup();
                acc
            };
            if ids.is_empty() {
                return Vec::new();
            }
            ids.shrink_to_fit();
            lists.push(ids);
        }
        lists.sort_by_key(|l| l.len());
        let candidates: Vec<u32> = match lists.split_first() {
            Some((first, rest)) => {
                let mut c = first.clone();
                for l in rest {
                    c.retain(|id| l.binary_search(id).is_ok());
                }
                c
            }
            None => (0..self.entries.len() as u32)
                .filter(|&i| self.entries[i as usize].is_some())
                .collect(),
        };
        candidates
            .into_iter()
            .filter(|&id| {
                self.entry(id)
                    .is_some_and(|e| matchers.iter().all(|m| m.matches_series(&e.labels)))
            })
            .collect()
    }

    /// Drops series (all their data is gone) from memory and returns the
    /// catalog file's new contents, to be written with [`Catalog::replace_file`].
    pub(crate) fn remove(&mut self, ids: &[u32]) -> Vec<u8> {
        for &id in ids {
            let Some(e) = self.entries.get_mut(id as usize).and_then(|e| e.take()) else {
                continue;
            };
            self.by_labels.remove(&e.labels);
            for l in e.labels.iter() {
                if let Some(values) = self.postings.get_mut(&l.name) {
                    if let Some(list) = values.get_mut(&l.value) {
                        list.retain(|&x| x != id);
                        if list.is_empty() {
                            values.remove(&l.value);
                        }
                    }
                    if values.is_empty() {
                        self.postings.remove(&l.name);
                    }
                }
            }
            self.live -= 1;
        }
        // Ids are never reused (a log record might still name a dropped one):
        // the rewritten file starts with the id bound.
        let mut bytes = Vec::new();
        let mut p = vec![REC_ID_BOUND];
        put_uvarint(&mut p, self.entries.len() as u64);
        frame::put(&mut bytes, &p);
        for (id, e) in self.entries.iter().enumerate() {
            if let Some(e) = e {
                bytes.extend_from_slice(&encode_record(id as u32, e));
            }
        }
        bytes
    }

    /// Path of the catalog file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Switches to the file written (atomically) with `len` bytes of [`Catalog::remove`]'s output.
    pub(crate) fn replace_file(&mut self, len: u64) -> Result<()> {
        self.file = Arc::new(fsutil::open_rw(&self.path)?);
        self.len = len;
        self.dirty = false;
        Ok(())
    }
}
