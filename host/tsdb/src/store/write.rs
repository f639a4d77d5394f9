//! The write path: series creation, appends into the head and the log,
//! chunks cut on the way and written to their partition files, and closing
//! partitions that left the open window.

use std::sync::atomic::Ordering;

use super::{
    AppendOutcome, Inner, LOCK_BATCH, Parts, Sample, SeriesRef, Store, WAL_WRITE_OUT, Writer,
    tier_dir, wall_ms,
};
use crate::error::{Error, Result};
use crate::head::{Appended, Cut};
use crate::labels::{Labels, MetricKind};
use crate::partition::Partition;
use crate::tier::Tier;

/// How many samples ahead the write path asks for a series' head state, for
/// its open chunk and for that chunk's last byte (each found through the one
/// before, so each needs the previous in the cache): far enough for memory to
/// answer, near enough to stay in the cache.
const PREFETCH_HEADS: usize = 24;
const PREFETCH_CHUNKS: usize = 14;
const PREFETCH_CHUNK_ENDS: usize = 6;

impl Store {
    /// The reference of series `labels`, creating it if needed. Fails with
    /// [`Error::SeriesLimit`] when the store already holds `max_series` series.
    /// `kind` is recorded when the series is created.
    pub fn series_ref(&self, labels: &Labels, kind: MetricKind) -> Result<SeriesRef> {
        let existing = self.inner.catalog.read().get(labels);
        if let Some(id) = existing {
            return Ok(SeriesRef(id));
        }
        let mut w = self.inner.writer.lock();
        self.inner.check_writable(&w)?;
        match self.inner.create_series(&mut w, labels, kind)? {
            Some((id, _)) => Ok(SeriesRef(id)),
            None => Err(Error::SeriesLimit {
                limit: self.inner.opts.max_series,
                series: labels.to_string(),
            }),
        }
    }

    /// Appends samples of one series (created if new). Samples must come in
    /// time order per series; others are refused and counted, as are NaN and
    /// infinite values, samples of a new series beyond `max_series`, and
    /// samples outside the open time window.
    pub fn append_series(
        &self,
        labels: &Labels,
        kind: MetricKind,
        samples: &[Sample],
    ) -> Result<AppendOutcome> {
        let mut w = self.inner.writer.lock();
        self.inner.check_writable(&w)?;
        let mut out = AppendOutcome::default();
        let existing = self.inner.catalog.read().get(labels);
        let id = match existing {
            Some(id) => id,
            None => {
                // Do not create a series for samples that would all be refused.
                if !samples.iter().any(|s| s.value.is_finite()) {
                    out.non_finite = samples.len() as u64;
                    return Ok(out);
                }
                match self.inner.create_series(&mut w, labels, kind)? {
                    Some((id, _)) => {
                        out.new_series = 1;
                        id
                    }
                    None => {
                        out.series_limit = samples.len() as u64;
                        out.seq = w.seq;
                        return Ok(out);
                    }
                }
            }
        };
        let items: Vec<(u32, i64, f64)> = samples
            .iter()
            .map(|s| (id, s.timestamp_ms, s.value))
            .collect();
        self.inner.append_all(&mut w, &items, &mut out)?;
        Ok(out)
    }

    /// Appends samples by series reference: the fast path for a writer that
    /// keeps its series' references.
    pub fn append_refs(&self, samples: &[(SeriesRef, Sample)]) -> Result<AppendOutcome> {
        let mut w = self.inner.writer.lock();
        self.inner.check_writable(&w)?;
        let mut items = Vec::with_capacity(samples.len());
        {
            let cat = self.inner.catalog.read();
            let mut last = u32::MAX;
            for (r, s) in samples {
                if r.0 != last && cat.entry(r.0).is_none() {
                    return Err(Error::UnknownSeries(r.0));
                }
                last = r.0;
                items.push((r.0, s.timestamp_ms, s.value));
            }
        }
        let mut out = AppendOutcome::default();
        self.inner.append_all(&mut w, &items, &mut out)?;
        Ok(out)
    }
}

impl Inner {
    pub(super) fn check_writable(&self, w: &Writer) -> Result<()> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(Error::Closed);
        }
        if let Some(b) = &w.broken {
            return Err(Error::Corrupt {
                path: self.dir.clone(),
                offset: 0,
                reason: format!(
                    "the store stopped accepting writes after an I/O error ({b}); reopen it to recover"
                ),
            });
        }
        Ok(())
    }

    /// Creates a series unless the limit is reached (`None`).
    fn create_series(
        &self,
        _w: &mut Writer,
        labels: &Labels,
        kind: MetricKind,
    ) -> Result<Option<(u32, bool)>> {
        let mut cat = self.catalog.write();
        if let Some(id) = cat.get(labels) {
            return Ok(Some((id, false)));
        }
        if cat.len() >= self.opts.max_series {
            return Ok(None);
        }
        let id = cat.create(labels.clone(), kind)?;
        self.head.write().ensure(cat.id_bound());
        Ok(Some((id, true)))
    }

    fn append_all(
        &self,
        w: &mut Writer,
        items: &[(u32, i64, f64)],
        out: &mut AppendOutcome,
    ) -> Result<()> {
        let r = self
            .append_locked(w, items, true, out)
            .and_then(|()| self.maybe_close(w, false));
        if let Err(e) = &r {
            w.broken = Some(e.to_string());
        }
        w.seq += 1;
        out.seq = w.seq;
        if w.wal.buffered() > WAL_WRITE_OUT {
            w.wal.write_out()?;
        }
        r
    }

    /// The write path: head, log, and chunks cut on the way.
    pub(super) fn append_locked(
        &self,
        w: &mut Writer,
        items: &[(u32, i64, f64)],
        log: bool,
        out: &mut AppendOutcome,
    ) -> Result<()> {
        let future_limit = self.opts.max_future_ms.map(|f| wall_ms().saturating_add(f));
        let raw_part = self.opts.raw.partition_ms;
        let mut cuts: Vec<Cut> = Vec::new();
        for batch in items.chunks(LOCK_BATCH) {
            {
                let mut head = self.head.write();
                // The open window moves only when the clock crosses a raw
                // partition boundary: recompute it only then.
                let mut window_for = i64::MIN;
                let mut open_from = i64::MIN;
                let mut batch_min = i64::MAX;
                for (i, &(id, t, v)) in batch.iter().enumerate() {
                    // Three stages ahead: a head's state, then (once that
                    // is in) the open chunk it points to, then that chunk's
                    // last byte.
                    if let Some(&(ahead, ..)) = batch.get(i + PREFETCH_HEADS) {
                        head.prefetch_series(ahead);
                    }
                    if let Some(&(ahead, ..)) = batch.get(i + PREFETCH_CHUNKS) {
                        head.prefetch_open_chunk(ahead);
                    }
                    if let Some(&(ahead, ..)) = batch.get(i + PREFETCH_CHUNK_ENDS) {
                        head.prefetch_chunk_end(ahead);
                    }
                    if !v.is_finite() {
                        out.non_finite += 1;
                        continue;
                    }
                    if future_limit.is_some_and(|l| t > l) {
                        out.too_new += 1;
                        continue;
                    }
                    let now = head.now.max(t);
                    let p = now.div_euclid(raw_part);
                    if p != window_for {
                        window_for = p;
                        open_from = self.opts.open_from(Tier::Raw, now);
                    }
                    if t < open_from {
                        out.too_old += 1;
                        continue;
                    }
                    match head.append(&self.opts, id, t, v, &mut cuts) {
                        Appended::Ok => {
                            out.accepted += 1;
                            batch_min = batch_min.min(t);
                            if log {
                                w.wal.push(id, t, v);
                            }
                        }
                        Appended::OutOfOrder => out.out_of_order += 1,
                        Appended::Duplicate => out.duplicate += 1,
                    }
                }
                if !cuts.is_empty() || batch_min < w.min_seen {
                    if log && !cuts.is_empty() {
                        // The log records of a chunk's samples reach the file
                        // before the chunk does: a crash between commits must not
                        // leave raw samples on disk that replaying the log cannot
                        // fold into the downsampled tiers.
                        w.wal.write_out()?;
                    }
                    let mut parts = self.parts.write();
                    self.write_cuts(&mut parts, &mut cuts)?;
                    if batch_min < w.min_seen {
                        w.min_seen = batch_min;
                        for tier in Tier::ALL {
                            let m = &mut parts.tier_min[tier.index()];
                            *m = (*m).min(tier.bucket_start(batch_min));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Appends cut chunks to their partition files (creating files as
    /// needed), one write per file. Called with the head's write lock held, so
    /// a chunk is always visible to readers in exactly one place.
    pub(super) fn write_cuts(&self, parts: &mut Parts, cuts: &mut Vec<Cut>) -> Result<()> {
        // Stable: a series' chunks keep their order within a file.
        cuts.sort_by_key(|c| (c.tier.index(), c.part));
        for run in cuts.chunk_by(|a, b| (a.tier, a.part) == (b.tier, b.part)) {
            let (tier, part) = (run[0].tier, run[0].part);
            let ti = tier.index();
            let p = match parts.tiers[ti].entry(part) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => {
                    parts.new_files[ti] = true;
                    e.insert(Partition::create(
                        &tier_dir(&self.dir, tier),
                        tier,
                        part,
                        part + self.opts.tier(tier).partition_ms,
                    )?)
                }
            };
            p.append_all(
                run.iter()
                    .map(|c| (c.series, c.min_t, c.max_t, &c.bytes[..])),
            )?;
            let min_t = run.iter().map(|c| c.min_t).min().unwrap_or(i64::MAX);
            parts.tier_min[ti] = parts.tier_min[ti].min(min_t);
        }
        cuts.clear();
        Ok(())
    }

    /// Closes partitions that left the open window: cuts their head chunks
    /// and marks them closed.
    pub(super) fn maybe_close(&self, w: &mut Writer, force: bool) -> Result<()> {
        let now = self.head.read().now;
        if now == i64::MIN || (!force && now < w.next_close_check) {
            return Ok(());
        }
        let mut cuts = Vec::new();
        let mut head = self.head.write();
        for tier in Tier::ALL {
            let cutoff = self.opts.open_from(tier, now);
            head.close_before(&self.opts, tier, cutoff, &mut cuts);
        }
        let mut parts = self.parts.write();
        self.write_cuts(&mut parts, &mut cuts)?;
        for tier in Tier::ALL {
            let cutoff = self.opts.open_from(tier, now);
            for p in parts.tiers[tier.index()]
                .range_mut(..cutoff)
                .map(|(_, p)| p)
            {
                if !p.closed {
                    p.close()?;
                }
            }
        }
        w.next_close_check = self.opts.partition_start(Tier::Raw, now) + self.opts.raw.partition_ms;
        Ok(())
    }
}
