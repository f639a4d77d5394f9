//! Range and instant queries: under short read locks, the chunks and open
//! head data of each selected series are copied out; they are then decoded
//! and evaluated without locks, over two threads for 64 series or more.

use std::sync::Arc;

use super::Store;
use super::meta::require_selector;
use crate::chunk;
use crate::error::{Error, Result};
use crate::gorilla;
use crate::labels::Labels;
use crate::matcher::Matcher;
use crate::partition::{self, ChunkMeta, PartFile};
use crate::query::{self, QueryResult, QueryStats, RangeQuery, SeriesPoints, TierChoice};
use crate::tier::{Bucket, Tier};

/// A chunk to read for a query.
struct DiskChunk {
    file: Arc<PartFile>,
    meta: ChunkMeta,
}

/// What a query needs of one series, copied out under the locks.
struct Source {
    labels: Labels,
    disk: Vec<DiskChunk>,
    head_bytes: Option<(Vec<u8>, u32)>,
    acc: Option<Bucket>,
}

impl Store {
    /// `query_range` with the tier chosen automatically.
    pub fn query_range(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
        lookback_ms: i64,
    ) -> Result<QueryResult> {
        self.query_range_with(
            matchers,
            &RangeQuery {
                start_ms,
                end_ms,
                step_ms,
                lookback_ms,
                tier: TierChoice::Auto,
            },
        )
    }

    /// An instant query at `t_ms`: each matching series' value at `t_ms`.
    pub fn query(&self, matchers: &[Matcher], t_ms: i64, lookback_ms: i64) -> Result<QueryResult> {
        self.query_range_with(
            matchers,
            &RangeQuery {
                start_ms: t_ms,
                end_ms: t_ms,
                step_ms: 1,
                lookback_ms,
                tier: TierChoice::Auto,
            },
        )
    }

    /// A range query: for each series matching `matchers`, its value at
    /// `start, start + step, ..., end` with Prometheus instant-vector-selector
    /// semantics, from the tier `q.tier` selects. Limits are checked before
    /// any data is read.
    pub fn query_range_with(&self, matchers: &[Matcher], q: &RangeQuery) -> Result<QueryResult> {
        let limits = self.inner.opts.limits;
        let steps = query::steps(q).map_err(Error::InvalidQuery)?;
        if steps > limits.max_points_per_series {
            return Err(Error::TooManyPoints {
                points: steps,
                limit: limits.max_points_per_series,
            });
        }
        require_selector(matchers)?;
        let (tier, sources, selected) = {
            let cat = self.inner.catalog.read();
            let ids = cat.select(matchers);
            let head = self.inner.head.read();
            let parts = self.inner.parts.read();
            let tier = query::choose_tier(q, &parts.tier_min);
            let (from, to) = query::item_range(q, tier);
            let ids: Vec<u32> = ids
                .into_iter()
                .filter(|&id| {
                    head.series
                        .get(id as usize)
                        // `from`/`to` bound bucket starts for a tier: compare
                        // the bucket the series' first sample falls in.
                        .is_some_and(|s| {
                            tier.bucket_start(s.min_t) <= to
                                && s.last_t >= from
                                && s.last_t != i64::MIN
                        })
                })
                .collect();
            if ids.len() > limits.max_series {
                return Err(Error::TooManySeries {
                    series: ids.len(),
                    limit: limits.max_series,
                });
            }
            let total = ids.len() as u64 * steps;
            if total > limits.max_total_points {
                return Err(Error::QueryTooLarge {
                    points: total,
                    series: ids.len(),
                    per_series: steps,
                    limit: limits.max_total_points,
                });
            }
            let mut sources = Vec::with_capacity(ids.len());
            let tmap = &parts.tiers[tier.index()];
            let first_part = self.inner.opts.partition_start(tier, from);
            for &id in &ids {
                let Some(e) = cat.entry(id) else { continue };
                let mut disk = Vec::new();
                for p in tmap.range(first_part..=to).map(|(_, p)| p) {
                    for meta in p.chunks(id, from, to) {
                        disk.push(DiskChunk {
                            file: p.handle(),
                            meta,
                        });
                    }
                }
                let sh = &head.series[id as usize];
                let (head_bytes, acc) = if tier == Tier::Raw {
                    (
                        sh.raw
                            .as_ref()
                            .filter(|o| o.chunk.max_t() >= from)
                            .map(|o| (o.chunk.bytes().to_vec(), o.chunk.len())),
                        None,
                    )
                } else {
                    let th = &sh.tiers[tier.index() - 1];
                    (
                        th.open
                            .as_ref()
                            .filter(|o| o.max_start >= from)
                            .map(|o| (o.chunk.bytes().to_vec(), o.chunk.len())),
                        th.acc,
                    )
                };
                sources.push(Source {
                    labels: e.labels.clone(),
                    disk,
                    head_bytes,
                    acc,
                });
            }
            (tier, sources, ids.len())
        };
        let mut stats = QueryStats {
            series_selected: selected,
            ..QueryStats::default()
        };
        let (from, to) = query::item_range(q, tier);
        let evaluated: Vec<(Option<SeriesPoints>, QueryStats)> = if sources.len() >= 64 {
            let mid = sources.len() / 2;
            let (a, b) = sources.split_at(mid);
            std::thread::scope(|sc| {
                let h = sc.spawn(|| {
                    a.iter()
                        .map(|s| eval_source(s, tier, from, to, q))
                        .collect::<Vec<_>>()
                });
                let mut second: Vec<_> = b
                    .iter()
                    .map(|s| eval_source(s, tier, from, to, q))
                    .collect();
                let mut first = h.join().unwrap_or_default();
                first.append(&mut second);
                first
            })
        } else {
            sources
                .iter()
                .map(|s| eval_source(s, tier, from, to, q))
                .collect()
        };
        let mut series = Vec::new();
        for (sp, st) in evaluated {
            stats.chunks_read += st.chunks_read;
            stats.items_decoded += st.items_decoded;
            stats.corrupt_chunks += st.corrupt_chunks;
            if let Some(sp) = sp {
                series.push(sp);
            }
        }
        Ok(QueryResult {
            tier,
            series,
            stats,
        })
    }
}

/// Decodes the chunks of one source and evaluates the query over them.
fn eval_source(
    s: &Source,
    tier: Tier,
    from: i64,
    to: i64,
    q: &RangeQuery,
) -> (Option<SeriesPoints>, QueryStats) {
    let mut st = QueryStats::default();
    let points = if tier == Tier::Raw {
        let mut ts: Vec<i64> = Vec::new();
        let mut vs: Vec<f64> = Vec::new();
        let mut push = |t: i64, v: f64| {
            if t >= from && t <= to {
                ts.push(t);
                vs.push(v);
            }
        };
        for c in &s.disk {
            st.chunks_read += 1;
            match partition::read_chunk(&c.file, &c.meta).and_then(|b| {
                chunk::decode_samples(&b, c.meta.min_t).map_err(|_| Error::Corrupt {
                    path: c.file.path.clone(),
                    offset: c.meta.offset,
                    reason: "chunk does not decode".into(),
                })
            }) {
                Ok((cts, cvs)) => {
                    st.items_decoded += cts.len() as u64;
                    for (t, v) in cts.into_iter().zip(cvs) {
                        push(t, v);
                    }
                }
                Err(_) => st.corrupt_chunks += 1,
            }
        }
        if let Some((bytes, n)) = &s.head_bytes {
            st.items_decoded += u64::from(*n);
            let _ = gorilla::decode_samples(bytes, *n, &mut push);
        }
        if ts.windows(2).any(|w| w[0] >= w[1]) {
            let mut pairs: Vec<(i64, f64)> = ts.iter().copied().zip(vs.iter().copied()).collect();
            pairs.sort_by_key(|p| p.0);
            pairs.dedup_by_key(|p| p.0);
            ts = pairs.iter().map(|p| p.0).collect();
            vs = pairs.iter().map(|p| p.1).collect();
        }
        query::eval_raw(&ts, &vs, q)
    } else {
        let width = tier.width_ms();
        let mut bs: Vec<Bucket> = Vec::new();
        for c in &s.disk {
            st.chunks_read += 1;
            match partition::read_chunk(&c.file, &c.meta).and_then(|b| {
                chunk::decode_buckets(&b, width, c.meta.min_t).map_err(|_| Error::Corrupt {
                    path: c.file.path.clone(),
                    offset: c.meta.offset,
                    reason: "chunk does not decode".into(),
                })
            }) {
                Ok(cbs) => {
                    st.items_decoded += cbs.len() as u64;
                    bs.extend(
                        cbs.into_iter()
                            .filter(|b| b.start_ms >= from && b.start_ms <= to),
                    );
                }
                Err(_) => st.corrupt_chunks += 1,
            }
        }
        if let Some((bytes, n)) = &s.head_bytes {
            st.items_decoded += u64::from(*n);
            let _ = gorilla::decode_buckets(bytes, *n, width, |b| {
                if b.start_ms >= from && b.start_ms <= to {
                    bs.push(b);
                }
            });
        }
        if let Some(b) = s.acc
            && b.start_ms >= from
            && b.start_ms <= to
        {
            bs.push(b);
        }
        if bs.windows(2).any(|w| w[0].start_ms >= w[1].start_ms) {
            bs.sort_by_key(|b| b.start_ms);
            bs.dedup_by_key(|b| b.start_ms);
        }
        query::eval_buckets(&bs, width, q)
    };
    let sp = (!points.is_empty()).then(|| SeriesPoints {
        labels: s.labels.clone(),
        points,
    });
    (sp, st)
}
