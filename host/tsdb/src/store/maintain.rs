//! Retention: closing partitions, deleting them by age and by size, dropping
//! series with no data left, and accounting for the disk the store uses.

use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;

use super::{Inner, Writer, tier_dir};
use crate::error::{IoContext, Result};
use crate::fsutil;
use crate::retention;
use crate::tier::Tier;

impl Inner {
    /// Everything the store keeps on disk.
    pub(super) fn disk_bytes(&self, w: &Writer) -> u64 {
        let parts = self.parts.read();
        let p: u64 = parts
            .tiers
            .iter()
            .flat_map(|t| t.values())
            .map(|p| p.size_bytes())
            .sum();
        let aside: u64 = parts.aside.iter().map(|a| a.3).sum();
        p + aside + w.wal.size_bytes() + w.checkpoint_bytes + self.catalog.read().size_bytes()
    }

    /// Closing partitions, retention by age and size, and dropping series
    /// whose data is all gone. Returns whether the log has grown enough for a
    /// checkpoint ([`Inner::checkpoint`], taken by the caller once it has let
    /// go of the writer's lock).
    pub(super) fn maintain(&self, w: &mut Writer) -> Result<bool> {
        self.maybe_close(w, false)?;
        let now = self.head.read().now;
        if now != i64::MIN {
            let mut doomed = {
                let parts = self.parts.read();
                retention::expired(&parts.tiers, &self.opts, now)
            };
            let by_age = doomed.len() as u64;
            let aside_expired: Vec<PathBuf> = {
                let mut parts = self.parts.write();
                let opts = &self.opts;
                let mut gone = Vec::new();
                parts.aside.retain(|(tier, start, path, _)| {
                    let end = start + opts.tier(*tier).partition_ms;
                    if end <= now.saturating_sub(opts.tier(*tier).retention_ms) {
                        gone.push(path.clone());
                        false
                    } else {
                        true
                    }
                });
                gone
            };
            for p in aside_expired {
                fs::remove_file(&p).at(&p)?;
            }
            self.delete_partitions(&doomed)?;
            w.deleted_by_age += by_age;
            // Size: set-aside files go first, then the oldest partitions.
            let mut total = self.disk_bytes(w);
            if total > self.opts.max_disk_bytes {
                let aside: Vec<(PathBuf, u64)> = self
                    .parts
                    .write()
                    .aside
                    .drain(..)
                    .map(|(_, _, p, s)| (p, s))
                    .collect();
                for (p, s) in aside {
                    fs::remove_file(&p).at(&p)?;
                    total = total.saturating_sub(s);
                }
                doomed = {
                    let parts = self.parts.read();
                    retention::over_size(&parts.tiers, &self.opts, total)
                };
                w.deleted_by_size += doomed.len() as u64;
                self.delete_partitions(&doomed)?;
            }
            if by_age > 0 || !doomed.is_empty() {
                self.drop_dead_series(w)?;
            }
        }
        Ok(w.wal.since_checkpoint() >= self.opts.checkpoint_wal_bytes)
    }

    fn delete_partitions(&self, doomed: &[(Tier, i64)]) -> Result<()> {
        if doomed.is_empty() {
            return Ok(());
        }
        let mut removed = Vec::new();
        {
            let mut parts = self.parts.write();
            for &(tier, start) in doomed {
                if let Some(p) = parts.tiers[tier.index()].remove(&start) {
                    let ti = tier.index();
                    parts.tier_min[ti] = parts.tier_min[ti].max(p.end);
                    removed.push((tier, p.path.clone()));
                    removed.push((tier, p.index_path()));
                }
            }
        }
        let mut dirs = BTreeSet::new();
        // The partition file first: an index left by a crash in between is
        // deleted by the next open.
        for (tier, path) in removed {
            match fs::remove_file(&path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                r => r.at(&path)?,
            }
            dirs.insert(tier);
        }
        for tier in dirs {
            fsutil::sync_dir(&tier_dir(&self.dir, tier))?;
        }
        Ok(())
    }

    /// Recomputes each series' oldest timestamp and drops from the catalog
    /// the series that have no data left anywhere.
    fn drop_dead_series(&self, w: &mut Writer) -> Result<()> {
        let bytes = {
            let mut cat = self.catalog.write();
            let mut head = self.head.write();
            let parts = self.parts.read();
            let mut min_t = vec![i64::MAX; head.series.len()];
            for p in parts.tiers.iter().flat_map(|t| t.values()) {
                for (s, m) in p.series_min() {
                    if let Some(x) = min_t.get_mut(s as usize) {
                        *x = (*x).min(m);
                    }
                }
            }
            let mut dead = Vec::new();
            for (id, s) in head.series.iter_mut().enumerate() {
                let mut m = min_t[id];
                if let Some(o) = &s.raw {
                    m = m.min(o.chunk.min_t());
                }
                for th in &s.tiers {
                    if let Some(o) = &th.open {
                        m = m.min(o.chunk.min_t());
                    }
                    if let Some(b) = &th.acc {
                        m = m.min(b.start_ms);
                    }
                }
                s.min_t = m;
                // A series that had data and has none left. (A series created
                // but never written to is kept: its reference may be in use.)
                if m == i64::MAX && s.last_t != i64::MIN && cat.entry(id as u32).is_some() {
                    dead.push(id as u32);
                }
            }
            if dead.is_empty() {
                return Ok(());
            }
            for &id in &dead {
                head.series[id as usize] = Default::default();
            }
            w.series_dropped += dead.len() as u64;
            cat.remove(&dead)
        };
        let path = self.catalog.read().path().to_path_buf();
        fsutil::write_atomic(&path, &bytes)?;
        self.catalog.write().replace_file(bytes.len() as u64)
    }
}
