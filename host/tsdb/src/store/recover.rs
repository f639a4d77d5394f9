//! Recovery at open: what a crash or a bad disk left is found, reported in
//! the [`Recovery`] and dropped; the partition index, the head and the store's
//! clock are rebuilt from the partition files, the newest valid checkpoint and
//! the write-ahead log.

use std::fs;
use std::path::{Path, PathBuf};

use super::{AppendOutcome, Inner, LOCK_BATCH, Parts, tier_dir};
use crate::catalog::Catalog;
use crate::checkpoint;
use crate::chunk;
use crate::error::{IoContext, Result};
use crate::fsutil;
use crate::head::Head;
use crate::partition::{self, Partition};
use crate::recovery::{DropAction, Dropped, Recovery};
use crate::tier::Tier;
use crate::wal;

/// Opens every partition file (reading and checking each frame), sets aside
/// those with an unreadable header, drops chunks of series the catalog does
/// not hold, and raises each series' head bounds to what the files hold.
pub(super) fn load_partitions(
    dir: &Path,
    catalog: &Catalog,
    head: &mut Head,
    rec: &mut Recovery,
) -> Result<Parts> {
    let mut parts = Parts {
        tiers: Default::default(),
        tier_min: [i64::MAX; 4],
        aside: Vec::new(),
        new_files: [false; 4],
    };
    for tier in Tier::ALL {
        let tdir = tier_dir(dir, tier);
        let mut files: Vec<(i64, PathBuf)> = Vec::new();
        let mut indexes: Vec<(i64, PathBuf)> = Vec::new();
        for e in fs::read_dir(&tdir).at(&tdir)? {
            let e = e.at(&tdir)?;
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(start) = name
                .strip_suffix(".part")
                .and_then(|s| s.parse::<i64>().ok())
            {
                files.push((start, e.path()));
            } else if let Some(start) = name
                .strip_suffix(".idx")
                .and_then(|s| s.parse::<i64>().ok())
            {
                indexes.push((start, e.path()));
            } else if let Some(start) = name
                .strip_suffix(&format!(".part{}", partition::CORRUPT_SUFFIX))
                .and_then(|s| s.parse::<i64>().ok())
            {
                parts
                    .aside
                    .push((tier, start, e.path(), fsutil::file_len(&e.path())));
            }
        }
        files.sort();
        // Indexes of partition files gone or set aside (a crash between the
        // two deletions): derived data, deleted.
        for (start, path) in indexes {
            if files.binary_search_by_key(&start, |(s, _)| *s).is_err() {
                fs::remove_file(&path).at(&path)?;
            }
        }
        for (start, path) in files {
            let Some(mut p) = Partition::open(&path, tier, start, rec)? else {
                let mut aside = path.as_os_str().to_owned();
                aside.push(partition::CORRUPT_SUFFIX);
                let aside = PathBuf::from(aside);
                let size = fsutil::file_len(&aside);
                parts.aside.push((tier, start, aside, size));
                continue;
            };
            for (s, m) in p.drop_unknown(|s| catalog.entry(s).is_some()) {
                rec.dropped.push(Dropped {
                    file: path.clone(),
                    offset: m.offset,
                    bytes: u64::from(m.len),
                    records: 1,
                    reason: format!(
                        "chunk of series id {s}, which the catalog does not hold (never committed)"
                    ),
                    action: DropAction::Skipped,
                });
            }
            // Disk bounds per series: the newest raw sample (so the log is
            // not replayed twice) and the newest bucket per tier.
            for (s, min_t) in p.series_min() {
                let sh = &mut head.series[s as usize];
                sh.min_t = sh.min_t.min(min_t);
                let max = p.series_max(s).unwrap_or(i64::MIN);
                if tier == Tier::Raw {
                    sh.last_t = sh.last_t.max(max);
                } else {
                    let th = &mut sh.tiers[tier.index() - 1];
                    th.disk_max = th.disk_max.max(max);
                }
                head.now = head.now.max(max);
            }
            parts.tier_min[tier.index()] = parts.tier_min[tier.index()].min(p.min_t);
            parts.tiers[tier.index()].insert(start, p);
        }
    }
    Ok(parts)
}

/// Restores the head from the newest checkpoint with a usable header (returns
/// its seq and size), lowers the tiers' oldest timestamps to what only the
/// head holds, and deletes the other checkpoints.
pub(super) fn load_checkpoint(
    dir: &Path,
    bound: usize,
    head: &mut Head,
    parts: &mut Parts,
    rec: &mut Recovery,
) -> Result<(Option<u64>, u64)> {
    // Checkpoint: the newest one with a usable header.
    let mut ckpt_seq = None;
    let mut ckpt_bytes = 0;
    let ckpts = checkpoint::list(dir)?;
    for (seq, path) in ckpts.iter().rev() {
        match checkpoint::load(path, rec)?.filter(|l| l.seq == *seq) {
            Some(loaded) => {
                restore_checkpoint(head, loaded, bound);
                ckpt_seq = Some(*seq);
                ckpt_bytes = fsutil::file_len(path);
                rec.checkpoint = Some(path.clone());
                break;
            }
            None => rec.dropped.push(Dropped {
                file: path.clone(),
                offset: 0,
                bytes: fsutil::file_len(path),
                records: 0,
                reason: "checkpoint header is missing or fails its checksum".into(),
                action: DropAction::Skipped,
            }),
        }
    }
    // The oldest data of a tier may be in the head only.
    for sh in &head.series {
        if let Some(o) = &sh.raw {
            parts.tier_min[0] = parts.tier_min[0].min(o.chunk.min_t());
        }
        for (i, th) in sh.tiers.iter().enumerate() {
            let m = th
                .open
                .as_ref()
                .map(|o| o.chunk.min_t())
                .into_iter()
                .chain(th.acc.map(|b| b.start_ms))
                .min();
            if let Some(m) = m {
                parts.tier_min[i + 1] = parts.tier_min[i + 1].min(m);
            }
        }
    }
    for (seq, path) in &ckpts {
        if Some(*seq) != ckpt_seq {
            fs::remove_file(path).at(path)?;
        }
    }
    Ok((ckpt_seq, ckpt_bytes))
}

impl Inner {
    /// Replays the log segments from checkpoint `ckpt_seq` on into the head
    /// (each tier deduplicated on its own against what the partition files
    /// hold), then closes what left the open window, commits, and writes a
    /// fresh checkpoint.
    pub(super) fn replay_log(
        &self,
        segments: &[(u64, PathBuf)],
        ckpt_seq: Option<u64>,
        rec: &mut Recovery,
    ) -> Result<()> {
        let wal_dir = self.dir.join(wal::DIR);
        let mut w = self.writer.lock();
        let mut unknown = 0u64;
        let mut out = AppendOutcome::default();
        for (seq, path) in segments {
            if ckpt_seq.is_some_and(|c| *seq < c) {
                continue;
            }
            let mut batch: Vec<(u32, i64, f64)> = Vec::with_capacity(LOCK_BATCH);
            let bound = self.catalog.read().id_bound() as u32;
            let mut failed = None;
            wal::replay(path, rec, |id, t, v| {
                if id >= bound || self.catalog.read().entry(id).is_none() {
                    unknown += 1;
                    return;
                }
                batch.push((id, t, v));
                if batch.len() == LOCK_BATCH && failed.is_none() {
                    if let Err(e) = self.append_locked(&mut w, &batch, false, &mut out) {
                        failed = Some(e);
                    }
                    batch.clear();
                }
            })?;
            if let Some(e) = failed {
                return Err(e);
            }
            self.append_locked(&mut w, &batch, false, &mut out)?;
            rec.wal_segments += 1;
        }
        rec.wal_samples = out.accepted;
        rec.wal_samples_already_stored = out.out_of_order + out.duplicate + out.too_old;
        if unknown > 0 {
            rec.dropped.push(Dropped {
                file: wal_dir,
                offset: 0,
                bytes: 0,
                records: unknown,
                reason: format!("{unknown} logged samples name series the catalog does not hold"),
                action: DropAction::Skipped,
            });
        }
        rec.raw_samples_folded = self.fold_raw_into_tiers()?;
        self.maybe_close(&mut w, true)?;
        // Make the recovered state durable and start from a fresh checkpoint.
        self.commit_locked(&mut w)?;
        if !segments.is_empty() || ckpt_seq.is_none() {
            self.checkpoint_locked(&mut w)?;
        }
        Ok(())
    }
}

impl Inner {
    /// Folds into the downsampled tiers the raw samples on disk that they have
    /// not seen: a chunk reaches its file only after the log records of its
    /// samples, but after a power failure the kernel may have written the
    /// chunk's pages back and not the log's. Only samples of the open window
    /// are folded (older partitions are closed). Returns how many raw samples
    /// were newer than what some tier had seen.
    fn fold_raw_into_tiers(&self) -> Result<u64> {
        let mut head = self.head.write();
        let mut parts = self.parts.write();
        let open_from = match head.now {
            i64::MIN => return Ok(0),
            now => self.opts.open_from(Tier::Raw, now),
        };
        let mut folded = 0;
        let mut cuts = Vec::new();
        let mut samples: Vec<(i64, f64)> = Vec::new();
        for id in 0..head.series.len() {
            let s = &head.series[id];
            let seen = s
                .tiers
                .iter()
                .map(|th| th.applied_t)
                .min()
                .unwrap_or(i64::MAX);
            let from = seen.saturating_add(1).max(open_from);
            if from > s.last_t {
                continue;
            }
            let (id, to) = (id as u32, s.last_t);
            samples.clear();
            for p in parts.tiers[Tier::Raw.index()].values() {
                let file = p.handle();
                for m in p.chunks(id, from, to) {
                    // Every frame was checked when the file was opened.
                    let Ok(bytes) = partition::read_chunk(&file, &m) else {
                        continue;
                    };
                    let Ok((ts, vs)) = chunk::decode_samples(&bytes, m.min_t) else {
                        continue;
                    };
                    samples.extend(ts.into_iter().zip(vs).filter(|(t, _)| *t >= from));
                }
            }
            samples.sort_by_key(|(t, _)| *t);
            samples.dedup_by_key(|(t, _)| *t);
            for &(t, v) in &samples {
                // Raw holds it already; each tier folds it if it has not.
                head.append(&self.opts, id, t, v, &mut cuts);
            }
            folded += samples.len() as u64;
        }
        self.write_cuts(&mut parts, &mut cuts)?;
        Ok(folded)
    }
}

/// Restores the head from a checkpoint, dropping what partition files
/// already hold.
fn restore_checkpoint(head: &mut Head, loaded: checkpoint::Loaded, bound: usize) {
    head.now = head.now.max(loaded.now);
    for r in loaded.series {
        if r.id as usize >= bound {
            continue;
        }
        let sh = &mut head.series[r.id as usize];
        let disk_last = sh.last_t;
        let mut c = r.head;
        if let Some(o) = &c.raw
            && o.chunk.min_t() <= disk_last
        {
            c.raw = None; // already cut and written
        }
        for (i, th) in c.tiers.iter_mut().enumerate() {
            let disk_max = sh.tiers[i].disk_max;
            if th
                .open
                .as_ref()
                .is_some_and(|o| o.chunk.min_t() <= disk_max)
            {
                th.open = None;
            }
            if th.acc.is_some_and(|b| b.start_ms <= disk_max) {
                th.acc = None;
            }
            th.disk_max = disk_max;
        }
        c.last_t = c.last_t.max(disk_last);
        c.min_t = c.min_t.min(sh.min_t);
        // A live checkpoint encodes a series as it is after the clock in its
        // header was read: the clock is at least each series' newest sample.
        head.now = head.now.max(c.last_t);
        *sh = c;
    }
}

/// Deletes the temporary files of interrupted whole-file writes.
pub(super) fn remove_tmp_files(dir: &Path, rec: &mut Recovery) -> Result<()> {
    for sub in [
        None,
        Some("raw"),
        Some("1s"),
        Some("1m"),
        Some("1h"),
        Some(wal::DIR),
    ] {
        let d = sub.map_or_else(|| dir.to_path_buf(), |s| dir.join(s));
        for e in fs::read_dir(&d).at(&d)? {
            let e = e.at(&d)?;
            let path = e.path();
            if path.to_string_lossy().ends_with(fsutil::TMP_SUFFIX) {
                let bytes = fsutil::file_len(&path);
                fs::remove_file(&path).at(&path)?;
                rec.dropped.push(Dropped {
                    file: path,
                    offset: 0,
                    bytes,
                    records: 0,
                    reason: "temporary file of an interrupted whole-file write".into(),
                    action: DropAction::Deleted,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::{Loaded, Restored};
    use crate::head::SeriesHead;

    #[test]
    fn the_clock_restored_is_at_least_every_restored_series_newest_sample() {
        // The checkpoint's clock was read before its series were encoded; one
        // of them got a newer sample meanwhile.
        let mut head = Head {
            series: vec![SeriesHead::default(), SeriesHead::default()],
            now: i64::MIN,
        };
        let series = |id, last_t| Restored {
            id,
            head: SeriesHead {
                last_t,
                ..SeriesHead::default()
            },
        };
        let loaded = Loaded {
            seq: 3,
            now: 1_000,
            series: vec![series(0, 900), series(1, 5_000)],
        };
        restore_checkpoint(&mut head, loaded, 2);
        assert_eq!(head.now, 5_000);
    }
}
