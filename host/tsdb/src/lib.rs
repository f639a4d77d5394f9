//! An embedded time-series store for wasmeter's metric history.
//!
//! Series are Prometheus-style (metric name + labels; the name is label
//! `__name__`), samples are `(Unix ms, f64)`. Every sample is kept raw for a
//! configurable window and folded, as it is written, into 1 s, 1 min and 1 h
//! buckets (min, max, sum, count, last), each tier with its own retention, the
//! whole store under a disk-size cap. Queries follow Prometheus'
//! instant-vector-selector semantics (`query`, `query_range`), plus the
//! metadata calls of its HTTP API (`select`, `label_names`, `label_values`).
//!
//! ```
//! use wasmeter_tsdb::{Labels, Matcher, MetricKind, Options, Sample, Store};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let (store, recovery) = Store::open(dir.path(), Options { commit_interval: None, ..Options::default() }).unwrap();
//! assert!(recovery.is_clean());
//! let series = Labels::new("price", [("pair", "BTCUSD")]).unwrap();
//! let t0 = 1_700_000_000_000;
//! let samples: Vec<Sample> = (0..60).map(|i| Sample::new(t0 + i * 1000, 64_000.0 + i as f64)).collect();
//! store.append_series(&series, MetricKind::Gauge, &samples).unwrap();
//! store.commit().unwrap();
//! let r = store.query_range(&[Matcher::metric("price").unwrap()], t0, t0 + 59_000, 10_000, 300_000).unwrap();
//! assert_eq!(r.series[0].points.len(), 6);
//! assert_eq!(r.series[0].points[5].value, 64_050.0);
//! store.close().unwrap();
//! ```
//!
//! # Design
//! See `README.md` for the on-disk format. In short:
//! - `bits`: bit streams; `gorilla`: the streaming Gorilla codec of head
//!   chunks (delta-of-delta timestamps, XOR floats); `chunk`: the column
//!   codec chunks are re-encoded with when cut (adaptive integer residuals,
//!   XOR or decimal floats).
//! - `head`: open chunks and buckets being filled, per series and tier;
//!   `tier`: the tiers and their buckets.
//! - `catalog`: series ids, labels, inverted index; `matcher`: label matchers.
//! - `frame`: checksummed frames; `wal`: the write-ahead log;
//!   `checkpoint`: head snapshots; `partition`: chunk files per tier and
//!   time span; `chunk_index`: each file's chunk index, on disk beside it; `retention`: what to delete; `recovery`: the report of open.
//! - `query`: query types and evaluation; `store`: everything together.
//!
//! The Gorilla codecs are written here rather than taken from a crate: the
//! crates that exist (e.g. `tsz`) encode Gorilla's second-resolution layout
//! only, without the millisecond buckets, the decimal float mode or the
//! bucket columns this store needs, and without error returns on corrupt input.
//!
//! # Durability
//! Writes go to the write-ahead log's buffer and the head; [`Store::commit`]
//! (called every `Options::commit_interval` by the store's own thread, or by
//! the caller) fsyncs catalog, log and chunk files: a crash loses at most what
//! was appended since the last commit. A chunk cut between commits reaches its
//! file only after the log records of its samples, and opening folds into the
//! downsampled tiers any raw samples on disk they have not seen (a power
//! failure may keep a chunk's pages and lose the log's), so raw data and the
//! tiers agree after any crash. [`Store::open`] recovers from anything a crash
//! or a bad disk leaves and says what it dropped in a [`Recovery`].

mod bits;
mod catalog;
mod checkpoint;
mod chunk;
mod chunk_index;
mod error;
mod frame;
mod fsutil;
mod gorilla;
mod head;
mod labels;
mod matcher;
mod options;
mod partition;
mod query;
mod recovery;
mod retention;
mod store;
mod tier;
mod wal;

pub use error::{Error, Result};
pub use labels::{
    Label, Labels, METRIC_NAME, MetricKind, is_valid_label_name, is_valid_metric_name,
};
pub use matcher::{MatchOp, Matcher};
pub use options::{Options, QueryLimits, TierOptions};
pub use query::{
    DEFAULT_LOOKBACK_MS, Point, QueryResult, QueryStats, RangeQuery, SeriesPoints, TierChoice,
    earliest_held,
};
pub use recovery::{DropAction, Dropped, Recovery};
pub use store::{AppendOutcome, Sample, SeriesRef, Store, StoreStats};
pub use tier::{Bucket, Tier};

/// Codec internals exposed for tests and benchmarks; not a stable API.
#[doc(hidden)]
pub mod codec {
    use crate::tier::Bucket;

    /// Encodes raw samples as written to partition files.
    pub fn encode_samples(ts: &[i64], vs: &[f64]) -> Vec<u8> {
        crate::chunk::encode_samples(ts, vs, 0)
    }

    /// Decodes [`encode_samples`]' output; `None` if it is corrupt.
    pub fn decode_samples(bytes: &[u8]) -> Option<(Vec<i64>, Vec<f64>)> {
        crate::chunk::decode_samples(bytes, 0).ok()
    }

    /// Encodes buckets of width `width` as written to partition files.
    pub fn encode_buckets(bs: &[Bucket], width: i64) -> Vec<u8> {
        crate::chunk::encode_buckets(bs, width, 0)
    }

    /// Decodes [`encode_buckets`]' output; `None` if it is corrupt.
    pub fn decode_buckets(bytes: &[u8], width: i64) -> Option<Vec<Bucket>> {
        crate::chunk::decode_buckets(bytes, width, 0).ok()
    }

    /// Round-trips samples through the streaming (head) Gorilla codec;
    /// returns the decoded samples and the encoded size in bytes.
    pub fn head_round_trip(samples: &[(i64, f64)]) -> (Vec<(i64, f64)>, usize) {
        let mut c = crate::gorilla::SampleChunk::new();
        for &(t, v) in samples {
            c.append(t, v);
        }
        let mut out = Vec::new();
        let _ = crate::gorilla::decode_samples(c.bytes(), c.len(), |t, v| out.push((t, v)));
        (out, c.bytes().len())
    }
}
