//! The head: per series, the open (in-memory, Gorilla-compressed) chunk of
//! each tier and the bucket being filled in each downsampled tier.
//!
//! Every sample is appended to the raw chunk and folded into the current 1 s,
//! 1 min and 1 h buckets as it is written; a finished bucket is appended to its
//! tier's open chunk. A chunk is cut — re-encoded with [`crate::chunk`] and
//! handed back as a [`Cut`] for its partition file — when it holds
//! `Options::chunk_items` items, when the next item belongs to another
//! partition, or when its partition closes. So the head holds at most one
//! chunk per series and tier: memory is bounded by `max_series` x that.

use crate::chunk;
use crate::gorilla::{self, BucketChunk, SampleChunk};
use crate::options::Options;
use crate::tier::{Bucket, Tier};

/// A chunk cut from the head, to be appended to partition `part` of `tier`.
#[derive(Debug)]
pub(crate) struct Cut {
    pub tier: Tier,
    pub part: i64,
    pub series: u32,
    pub min_t: i64,
    pub max_t: i64,
    pub bytes: Vec<u8>,
}

/// The open raw chunk of a series.
#[derive(Debug, Clone)]
pub(crate) struct OpenRaw {
    pub part: i64,
    pub chunk: SampleChunk,
    /// Items at which it is cut ([`chunk_items`]; never more than
    /// [`Options::chunk_items`]: a chunk restored from a checkpoint has `u32::MAX`).
    pub cut_at: u32,
}

/// The open bucket chunk of a series in one tier.
#[derive(Debug, Clone)]
pub(crate) struct OpenBuckets {
    pub part: i64,
    pub chunk: BucketChunk,
    pub max_start: i64,
    /// Items at which it is cut ([`chunk_items`]; never more than
    /// [`Options::chunk_items`]: a chunk restored from a checkpoint has `u32::MAX`).
    pub cut_at: u32,
}

/// Head state of one downsampled tier of one series.
#[derive(Debug, Clone, Default)]
pub(crate) struct TierHead {
    /// The bucket being filled.
    pub acc: Option<Bucket>,
    /// Finished buckets not yet cut.
    pub open: Option<Box<OpenBuckets>>,
    /// Newest bucket start already in a partition file (buckets at or before
    /// it are not built again when the log is replayed).
    pub disk_max: i64,
    /// Newest sample folded into this tier (in the head); samples at or
    /// before it are not folded in again when the log is replayed.
    pub applied_t: i64,
}

/// Head state of one series.
#[derive(Debug, Clone)]
pub(crate) struct SeriesHead {
    /// Newest sample accepted (`i64::MIN` if none).
    pub last_t: i64,
    /// Its value.
    pub last_v: f64,
    /// Oldest timestamp of the series still stored (any tier), `i64::MAX` if none.
    pub min_t: i64,
    /// Open raw chunk.
    pub raw: Option<Box<OpenRaw>>,
    /// Downsampled tiers, in [`Tier::DOWNSAMPLED`] order.
    pub tiers: [TierHead; 3],
}

impl Default for SeriesHead {
    fn default() -> Self {
        SeriesHead {
            last_t: i64::MIN,
            last_v: 0.0,
            min_t: i64::MAX,
            raw: None,
            tiers: [
                TierHead {
                    disk_max: i64::MIN,
                    ..TierHead::default()
                },
                TierHead {
                    disk_max: i64::MIN,
                    ..TierHead::default()
                },
                TierHead {
                    disk_max: i64::MIN,
                    ..TierHead::default()
                },
            ],
        }
    }
}

/// Outcome of appending one sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Appended {
    Ok,
    OutOfOrder,
    Duplicate,
}

/// All series' head state and the store's clock.
#[derive(Debug, Default)]
pub(crate) struct Head {
    pub series: Vec<SeriesHead>,
    /// Newest timestamp accepted by the store (`i64::MIN` if none).
    pub now: i64,
}

fn cut_raw(series: u32, o: &OpenRaw) -> Cut {
    let n = o.chunk.len() as usize;
    let mut ts = Vec::with_capacity(n);
    let mut vs = Vec::with_capacity(n);
    // The head chunk was written by this process: it always decodes.
    let _ = gorilla::decode_samples(o.chunk.bytes(), o.chunk.len(), |t, v| {
        ts.push(t);
        vs.push(v);
    });
    Cut {
        tier: Tier::Raw,
        part: o.part,
        series,
        min_t: o.chunk.min_t(),
        max_t: o.chunk.max_t(),
        // The frame header holds min_t: the chunk stores its first timestamp relative to it.
        bytes: chunk::encode_samples(&ts, &vs, o.chunk.min_t()),
    }
}

/// Decodes a head bucket chunk.
pub(crate) fn head_buckets(tier: Tier, o: &OpenBuckets) -> Vec<Bucket> {
    let mut bs = Vec::with_capacity(o.chunk.len() as usize);
    let _ = gorilla::decode_buckets(o.chunk.bytes(), o.chunk.len(), tier.width_ms(), |b| {
        bs.push(b)
    });
    bs
}

fn cut_buckets(tier: Tier, series: u32, o: &OpenBuckets) -> Cut {
    let bs = head_buckets(tier, o);
    Cut {
        tier,
        part: o.part,
        series,
        min_t: o.chunk.min_t(),
        max_t: o.max_start,
        bytes: chunk::encode_buckets(&bs, tier.width_ms(), o.chunk.min_t()),
    }
}

/// Whether an open chunk of `tier` with `items` items, `bytes` bytes in
/// memory, is cut before its next item (at `cut_at` items, or
/// [`TierOptions::chunk_bytes`](crate::TierOptions::chunk_bytes)).
fn full(opts: &Options, tier: Tier, (items, cut_at): (u32, u32), bytes: usize) -> bool {
    items >= cut_at.min(opts.chunk_items)
        || opts
            .tier(tier)
            .chunk_bytes
            .is_some_and(|max| bytes >= max as usize)
}

/// Items at which series `series`' next chunk is cut: [`Options::chunk_items`],
/// except for its first chunk in a partition (`first`), cut somewhere between
/// two items and all of them by the series' id. The series of a steady feed
/// fill their chunks at one pace: cut at one size, every chunk was cut and
/// written at once, a pause of the writer every `chunk_items` samples. A first
/// chunk of another size for each series spreads the cuts over that period, and
/// the full-sized chunks after it keep them apart. Over all of it: first
/// chunks of half to all of it made the first cuts come at twice the steady
/// pace (at 50,000 series fed ten times a second, 8,000 cuts a second from 6 to
/// 12 s into the feed, then 4,000).
pub(crate) fn chunk_items(opts: &Options, series: u32, first: bool) -> u32 {
    let n = opts.chunk_items;
    let spread = n.saturating_sub(1);
    if !first || spread == 0 {
        return n;
    }
    // Fibonacci hashing: consecutive ids land far apart.
    let h = (u64::from(series).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as u32;
    n - h % spread
}

/// Appends a finished bucket to the tier's open chunk, cutting first if needed.
fn push_bucket(
    opts: &Options,
    tier: Tier,
    series: u32,
    th: &mut TierHead,
    b: Bucket,
    cuts: &mut Vec<Cut>,
) {
    let part = opts.partition_start(tier, b.start_ms);
    let mut first = true;
    if let Some(o) = &th.open
        && (o.part != part || full(opts, tier, (o.chunk.len(), o.cut_at), o.chunk.bytes().len()))
    {
        first = o.part != part;
        cuts.push(cut_buckets(tier, series, o));
        th.open = None;
    }
    let o = th.open.get_or_insert_with(|| {
        Box::new(OpenBuckets {
            part,
            chunk: BucketChunk::new(),
            max_start: b.start_ms,
            cut_at: chunk_items(opts, series, first),
        })
    });
    o.chunk.append(tier.width_ms(), &b);
    o.max_start = b.start_ms;
}

/// Hints the CPU to load the cache lines of `len` bytes at `ptr`; never
/// faults, whatever the address.
#[inline]
fn prefetch_bytes(ptr: *const u8, len: usize) {
    let mut offset = 0;
    while offset < len {
        prefetch_line(ptr.wrapping_add(offset));
        offset += 64;
    }
    // The last line, when `ptr` does not start one.
    prefetch_line(ptr.wrapping_add(len.saturating_sub(1)));
}

/// Hints the CPU to load every cache line of `value`.
#[inline]
fn prefetch_value<T>(value: &T) {
    prefetch_bytes(std::ptr::from_ref(value).cast(), size_of::<T>());
}

/// Hints the CPU to load the cache line holding `ptr`.
#[inline]
fn prefetch_line(ptr: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE is part of every x86_64 CPU, and a prefetch is a hint that
    // reads nothing the program sees and never faults, whatever the address.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>(ptr.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = ptr;
}

impl Head {
    /// Makes room for series ids below `n`.
    pub(crate) fn ensure(&mut self, n: usize) {
        if self.series.len() < n {
            if self.series.capacity() < n {
                // Grow by a quarter rather than double: a head is ~270 bytes,
                // and at 40,000 series doubling left 7 MiB unused.
                let extra = (n - self.series.len()).max(self.series.len() / 4);
                self.series.reserve_exact(extra);
            }
            self.series.resize_with(n, SeriesHead::default);
        }
    }

    /// Starts loading series `id`'s head state into the CPU's cache, for an
    /// [`append`](Self::append) a few samples later. A feed over many series
    /// touches a different head for nearly every sample, and each would
    /// otherwise wait for memory.
    #[inline]
    pub(crate) fn prefetch_series(&self, id: u32) {
        if let Some(s) = self.series.get(id as usize) {
            prefetch_value(s);
        }
    }

    /// Starts loading series `id`'s open raw chunk, whose address is in its
    /// head state: call it after [`prefetch_series`](Self::prefetch_series)
    /// had time to bring that in.
    #[inline]
    pub(crate) fn prefetch_open_chunk(&self, id: u32) {
        if let Some(raw) = self.open_raw(id) {
            prefetch_value(raw);
        }
    }

    /// Starts loading the last byte of series `id`'s open raw chunk, which
    /// the next sample completes: call it after
    /// [`prefetch_open_chunk`](Self::prefetch_open_chunk) had time to bring in
    /// its address.
    #[inline]
    pub(crate) fn prefetch_chunk_end(&self, id: u32) {
        if let Some(bytes) = self.open_raw(id).map(|raw| raw.chunk.bytes())
            && let Some(last) = bytes.last()
        {
            prefetch_line(std::ptr::from_ref(last));
        }
    }

    /// Starts loading every open chunk of series number `index` (raw and
    /// each tier's), for a walk over all series: their addresses are in the
    /// head state, which a walk in order finds in the cache.
    #[inline]
    pub(crate) fn prefetch_open_chunks(&self, index: usize) {
        let Some(s) = self.series.get(index) else {
            return;
        };
        if let Some(raw) = s.raw.as_deref() {
            prefetch_value(raw);
        }
        for o in s.tiers.iter().filter_map(|th| th.open.as_deref()) {
            prefetch_value(o);
        }
    }

    /// Starts loading the bytes of every open chunk of series number `index`:
    /// call it after [`prefetch_open_chunks`](Self::prefetch_open_chunks) had
    /// time to bring in their addresses.
    #[inline]
    pub(crate) fn prefetch_open_streams(&self, index: usize) {
        let Some(s) = self.series.get(index) else {
            return;
        };
        if let Some(bytes) = s.raw.as_deref().map(|raw| raw.chunk.bytes()) {
            prefetch_bytes(bytes.as_ptr(), bytes.len());
        }
        for o in s.tiers.iter().filter_map(|th| th.open.as_deref()) {
            prefetch_bytes(o.chunk.bytes().as_ptr(), o.chunk.bytes().len());
        }
    }

    fn open_raw(&self, id: u32) -> Option<&OpenRaw> {
        self.series.get(id as usize).and_then(|s| s.raw.as_deref())
    }

    /// Appends a sample (already validated and inside the open window) to
    /// series `id`, pushing any chunks that must be cut into `cuts`.
    ///
    /// Raw data and each tier are deduplicated on their own: when the log is
    /// replayed after a crash, a sample may already be in a raw chunk on disk
    /// while the buckets it fed were still in memory.
    pub(crate) fn append(
        &mut self,
        opts: &Options,
        id: u32,
        t: i64,
        v: f64,
        cuts: &mut Vec<Cut>,
    ) -> Appended {
        let s = &mut self.series[id as usize];
        let status = if t > s.last_t {
            let part = opts.partition_start(Tier::Raw, t);
            let mut first = true;
            if let Some(o) = &s.raw
                && (o.part != part
                    || full(
                        opts,
                        Tier::Raw,
                        (o.chunk.len(), o.cut_at),
                        o.chunk.bytes().len(),
                    ))
            {
                first = o.part != part;
                cuts.push(cut_raw(id, o));
                s.raw = None;
            }
            s.raw
                .get_or_insert_with(|| {
                    Box::new(OpenRaw {
                        part,
                        chunk: SampleChunk::new(),
                        cut_at: chunk_items(opts, id, first),
                    })
                })
                .chunk
                .append(t, v);
            s.last_t = t;
            s.last_v = v;
            Appended::Ok
        } else if t == s.last_t {
            Appended::Duplicate
        } else {
            Appended::OutOfOrder
        };
        let mut applied = status == Appended::Ok;
        for (i, tier) in Tier::DOWNSAMPLED.into_iter().enumerate() {
            let th = &mut s.tiers[i];
            let start = tier.bucket_start(t);
            if t <= th.applied_t || start <= th.disk_max {
                continue; // replay of a sample this tier already holds
            }
            th.applied_t = t;
            applied = true;
            match &mut th.acc {
                Some(b) if b.start_ms == start => b.add(v),
                _ => {
                    if let Some(done) = th.acc.take() {
                        push_bucket(opts, tier, id, th, done, cuts);
                    }
                    th.acc = Some(Bucket::new(start, v));
                }
            }
        }
        if applied {
            s.min_t = s.min_t.min(t);
            if t > self.now {
                self.now = t;
            }
        }
        status
    }

    /// Cuts every chunk (and finishes every bucket) of `tier` that lies in a
    /// partition starting before `cutoff`.
    pub(crate) fn close_before(
        &mut self,
        opts: &Options,
        tier: Tier,
        cutoff: i64,
        cuts: &mut Vec<Cut>,
    ) {
        for (id, s) in self.series.iter_mut().enumerate() {
            let id = id as u32;
            if tier == Tier::Raw {
                if let Some(o) = &s.raw
                    && o.part < cutoff
                {
                    cuts.push(cut_raw(id, o));
                    s.raw = None;
                }
                continue;
            }
            let i = tier.index() - 1;
            let th = &mut s.tiers[i];
            if let Some(b) = th.acc
                && opts.partition_start(tier, b.start_ms) < cutoff
            {
                th.acc = None;
                push_bucket(opts, tier, id, th, b, cuts);
            }
            if let Some(o) = &th.open
                && o.part < cutoff
            {
                cuts.push(cut_buckets(tier, id, o));
                th.open = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_series_vector_grows_by_a_quarter_not_double() {
        let mut head = Head::default();
        for n in 1..=40_000 {
            head.ensure(n);
            assert_eq!(head.series.len(), n);
        }
        let (len, capacity) = (head.series.len(), head.series.capacity());
        assert!(capacity <= len + len / 4 + 1, "{capacity} for {len}");
    }

    /// Series fed at one pace cut their chunks at different moments: each
    /// series' first chunk has a size of its own between two and all of
    /// `chunk_items`, the chunks after it have all of it.
    #[test]
    fn series_fed_at_one_pace_cut_their_chunks_apart() {
        let opts = Options::default();
        let n = opts.chunk_items;
        let series = 400u32;
        let mut head = Head::default();
        head.ensure(series as usize);
        let t0 = opts.partition_start(Tier::Raw, 1_700_000_000_000);
        let mut most_at_once = 0;
        let mut sizes: Vec<Vec<u32>> = vec![Vec::new(); series as usize];
        for step in 0..i64::from(3 * n) {
            let mut cuts = Vec::new();
            for id in 0..series {
                head.append(&opts, id, t0 + step, 1.0, &mut cuts);
            }
            let raw: Vec<&Cut> = cuts.iter().filter(|c| c.tier == Tier::Raw).collect();
            most_at_once = most_at_once.max(raw.len());
            for c in raw {
                sizes[c.series as usize].push((c.max_t - c.min_t + 1) as u32);
            }
        }
        let firsts: std::collections::BTreeSet<u32> = sizes.iter().map(|s| s[0]).collect();
        assert!(firsts.iter().all(|&k| k >= 2 && k <= n), "{firsts:?}");
        assert!(
            firsts.len() >= (n - 15) as usize,
            "{} first sizes",
            firsts.len()
        );
        // Spread over all of the period, not half of it: as many first cuts
        // in its first half as in its second.
        let early = sizes.iter().filter(|s| s[0] <= n / 2).count();
        assert!(
            (150..=250).contains(&early),
            "{early} of {series} first chunks cut in the first half"
        );
        for s in &sizes {
            assert!(s[1..].iter().all(|&k| k == n), "{s:?}");
        }
        assert!(
            most_at_once <= 20,
            "{most_at_once} of {series} series cut at once"
        );
    }
}
