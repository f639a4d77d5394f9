//! The store's error type.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong in the store. Messages name what was wrong and
/// where: the file and offset, the series, the limit.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An operating-system error on a file or directory.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A label or metric name that does not follow Prometheus' rules.
    #[error(
        "invalid label name {name:?} in series {series}: names must match [a-zA-Z_][a-zA-Z0-9_]*"
    )]
    InvalidLabelName {
        /// The offending name.
        name: String,
        /// The series, as far as it was given.
        series: String,
    },
    /// A metric name that does not follow Prometheus' rules.
    #[error("invalid metric name {name:?}: names must match [a-zA-Z_:][a-zA-Z0-9_:]*")]
    InvalidMetricName {
        /// The offending name.
        name: String,
    },
    /// The same label name twice in one series.
    #[error("duplicate label name {name:?} in series {series}")]
    DuplicateLabel {
        /// The repeated name.
        name: String,
        /// The series, as far as it was given.
        series: String,
    },
    /// A series whose labels are too many or too long.
    #[error("series {series} is too large: {reason}")]
    SeriesTooLarge {
        /// The series, shortened.
        series: String,
        /// Which bound it broke.
        reason: String,
    },
    /// A matcher that cannot be built (bad regex, bad name).
    #[error("invalid matcher {matcher}: {reason}")]
    InvalidMatcher {
        /// The matcher as written.
        matcher: String,
        /// Why it was refused.
        reason: String,
    },
    /// A selector made only of matchers that match the empty string.
    #[error(
        "a selector needs at least one matcher that does not match the empty string (got {matchers})"
    )]
    EmptySelector {
        /// The matchers given.
        matchers: String,
    },
    /// A query whose parameters make no sense.
    #[error("invalid query: {0}")]
    InvalidQuery(String),
    /// A query that would select more series than allowed.
    #[error("query selects {series} series, more than the limit of {limit}")]
    TooManySeries {
        /// Series matched.
        series: usize,
        /// The configured limit.
        limit: usize,
    },
    /// A range query with too many steps.
    #[error(
        "query range of {points} points per series exceeds the maximum resolution of {limit} points per series; use a larger step"
    )]
    TooManyPoints {
        /// Steps requested.
        points: u64,
        /// The configured limit.
        limit: u64,
    },
    /// A query that would produce too many points in total.
    #[error(
        "query would produce {points} points ({series} series x {per_series} steps), more than the limit of {limit}"
    )]
    QueryTooLarge {
        /// Total points.
        points: u64,
        /// Series matched.
        series: usize,
        /// Steps per series.
        per_series: u64,
        /// The configured limit.
        limit: u64,
    },
    /// A [`crate::SeriesRef`] that this store never handed out.
    #[error("unknown series reference {0}")]
    UnknownSeries(u32),
    /// A new series refused because the store holds `Options::max_series` already.
    #[error("series limit of {limit} reached: new series {series} refused")]
    SeriesLimit {
        /// The configured limit.
        limit: usize,
        /// The refused series.
        series: String,
    },
    /// Options that cannot work together.
    #[error("invalid options: {0}")]
    InvalidOptions(String),
    /// Another process (or another `Store` in this one) has the directory open.
    #[error("store directory {path} is locked by another store")]
    Locked {
        /// The store's directory.
        path: PathBuf,
    },
    /// Data that fails its checksum or does not decode, where it cannot be skipped.
    #[error("corrupt data in {path} at offset {offset}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Byte offset of the bad data.
        offset: u64,
        /// What was wrong.
        reason: String,
    },
    /// The store was closed.
    #[error("the store is closed")]
    Closed,
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attaches a path to an I/O error.
pub(crate) trait IoContext<T> {
    /// Wraps the error as [`Error::Io`] naming `path`.
    fn at(self, path: &std::path::Path) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: &std::path::Path) -> Result<T> {
        self.map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}
