//! The series a collector (contract 0.3.0) or metric (0.4.0) instance declared
//! and the points that refer to them by number.
//!
//! Such a plugin declares a series (name, labels, kind) once and then sends
//! points: a number, a value and a timestamp. Numbers continue across the calls of
//! one instance, so the table lives with the instance's store and goes with it: a
//! rebuilt instance (after a trap, a recycle, a swap) starts with none, as does
//! the guest. The host keeps the declarations of every call that returned `ok`,
//! even when it refuses the rest of its output, so that both sides keep counting
//! alike; each declaration is checked once, when it is made, and a point of a
//! series that failed the check fails its call with that series' error.

use std::sync::atomic::{AtomicU64, Ordering};

use wasmeter_core::sample::{MetricKind, Sample};
use wasmeter_core::sample_batch::SampleBatch;
use wasmeter_core::series_key::SeriesKey;
use wasmeter_core::validate::{OutputError, OutputLimits, check_series};

/// The most series one instance holds at once: a guest resets before declaring
/// more (`collect-output.series-reset`).
pub const MAX_DECLARED_SERIES: usize = 65_536;

/// One declared series, kept compact (one allocation, shared with the batches
/// its points go into: at 40,000 series this table is a few MiB), or why it was
/// refused.
#[derive(Debug)]
enum Declared {
    Series {
        key: SeriesKey,
        kind: MetricKind,
        /// The call that last used it and its number in that call's batch.
        used: Used,
    },
    Refused(Box<OutputError>),
}

/// When a declared series was last used: `(call, number in that call's batch)`.
#[derive(Debug, Clone, Copy, Default)]
struct Used(u64, u32);

impl Declared {
    fn of(series: &Sample) -> Self {
        Declared::Series {
            key: SeriesKey::of(series),
            kind: series.kind,
            used: Used::default(),
        }
    }
}

/// The series one collector instance declared, by number.
#[derive(Debug)]
pub(crate) struct DeclaredSeries {
    /// This numbering's id, unique in the process: a new one after each reset,
    /// so that a number means one series for as long as the id lasts (see
    /// `SampleBatch::declared_series_number`).
    id: u64,
    series: Vec<Declared>,
    /// The guest declared more than [`MAX_DECLARED_SERIES`] without a reset: the
    /// table was dropped and its numbering is lost until the guest resets.
    overflowed: bool,
    /// Counts the calls whose points were taken (never 0 once one was).
    calls: u64,
}

/// A point of a declared series, as the guest sent it.
pub(crate) struct Point {
    pub(crate) series: u32,
    pub(crate) value: f64,
    pub(crate) timestamp_ms: i64,
}

impl Default for DeclaredSeries {
    fn default() -> Self {
        Self {
            id: next_table_id(),
            series: Vec::new(),
            overflowed: false,
            calls: 0,
        }
    }
}

/// A numbering's id (never 0).
fn next_table_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl DeclaredSeries {
    /// Applies one call's declarations: a reset first if asked, then `declared`
    /// (each given as a sample of it) numbered after those already held. Never
    /// fails: a series that breaks the output rules is kept as refused (its
    /// points fail), and going past [`MAX_DECLARED_SERIES`] drops the table
    /// until the next reset.
    pub(crate) fn declare(
        &mut self,
        reset: bool,
        declared: impl ExactSizeIterator<Item = Sample>,
        limits: &OutputLimits,
    ) {
        if reset {
            self.series.clear();
            self.overflowed = false;
            self.id = next_table_id();
        }
        if self.overflowed {
            return;
        }
        if self.series.len() + declared.len() > MAX_DECLARED_SERIES {
            self.series = Vec::new();
            self.overflowed = true;
            return;
        }
        // Grow by a quarter rather than doubling: the table is long-lived.
        let spare = self.series.capacity() - self.series.len();
        if declared.len() > spare {
            let grow = declared.len().max(self.series.len() / 4);
            self.series.reserve_exact(grow);
        }
        for series in declared {
            let number = self.series.len();
            self.series
                .push(match check_series(number, &series, limits) {
                    Ok(()) => Declared::of(&series),
                    Err(refused) => Declared::Refused(Box::new(refused)),
                });
        }
    }

    /// One call's `points` (a timestamp of 0 stamped `now_ms`) as samples of
    /// `batch`: each series used is looked up in the batch once per call. Fails
    /// on the first point whose series was not declared or was refused, or whose
    /// value is not finite, naming it.
    pub(crate) fn points_into(
        &mut self,
        points: impl IntoIterator<Item = Point>,
        now_ms: i64,
        batch: &mut SampleBatch,
    ) -> Result<(), OutputError> {
        self.calls += 1;
        let call = self.calls;
        for (i, point) in points.into_iter().enumerate() {
            let item = || format!("point #{i} (series #{})", point.series);
            if self.overflowed {
                return Err(OutputError {
                    item: item(),
                    problem: format!(
                        "this instance declared more than {MAX_DECLARED_SERIES} series without \
                         a reset, so its series numbers were dropped; set `series-reset` and \
                         declare them again"
                    ),
                });
            }
            let declared = self.series.len();
            let (key, kind, used) = match self.series.get_mut(point.series as usize) {
                Some(Declared::Series { key, kind, used }) => (key, *kind, used),
                Some(Declared::Refused(refused)) => return Err(refused.as_ref().clone()),
                None => {
                    return Err(OutputError {
                        item: item(),
                        problem: format!("no such series: this instance declared {declared}"),
                    });
                }
            };
            if !point.value.is_finite() {
                return Err(OutputError {
                    item: format!("{} `{}`", item(), key.name()),
                    problem: format!("value {} is not a finite number", point.value),
                });
            }
            if used.0 != call {
                let number = batch.declared_series_number(key, kind, self.id, point.series);
                *used = Used(call, number);
            }
            let timestamp_ms = match point.timestamp_ms {
                0 => now_ms,
                t => t,
            };
            batch.push(used.1, point.value, timestamp_ms);
        }
        Ok(())
    }

    /// How many series it holds.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.series.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmeter_core::sample::Label;

    fn series(name: &str, symbol: &str) -> Sample {
        Sample {
            name: name.into(),
            labels: vec![Label::new("symbol", symbol)],
            value: 0.0,
            kind: MetricKind::Gauge,
            timestamp_ms: 0,
        }
    }

    fn point(series: u32, value: f64, timestamp_ms: i64) -> Point {
        Point {
            series,
            value,
            timestamp_ms,
        }
    }

    fn samples_of(
        table: &mut DeclaredSeries,
        points: Vec<Point>,
    ) -> Result<Vec<(String, f64, i64)>, OutputError> {
        let mut out = SampleBatch::new();
        table.points_into(points, 99, &mut out)?;
        Ok(out
            .to_samples()
            .into_iter()
            .map(|s| {
                let symbol = s.label("symbol").unwrap_or_default().to_string();
                (format!("{}/{symbol}", s.name), s.value, s.timestamp_ms)
            })
            .collect())
    }

    fn limits() -> OutputLimits {
        OutputLimits::default()
    }

    #[test]
    fn numbers_continue_across_calls_until_a_reset() {
        let mut table = DeclaredSeries::default();
        table.declare(
            false,
            [series("p", "A"), series("q", "A")].into_iter(),
            &limits(),
        );
        table.declare(false, [series("p", "B")].into_iter(), &limits());
        let got = samples_of(&mut table, vec![point(2, 1.5, 7), point(0, 2.0, 0)]).unwrap();
        assert_eq!(got, [("p/B".into(), 1.5, 7), ("p/A".into(), 2.0, 99)]);

        // The batch tells each series' number in this numbering.
        let mut batch = SampleBatch::new();
        table
            .points_into([point(2, 1.0, 1)], 0, &mut batch)
            .unwrap();
        let (before, number) = batch.declared_number(0).unwrap();
        assert_eq!(number, 2);

        table.declare(true, [series("q", "C")].into_iter(), &limits());
        assert_eq!(table.len(), 1);
        // After a reset the numbers are another numbering's.
        let mut batch = SampleBatch::new();
        table
            .points_into([point(0, 1.0, 1)], 0, &mut batch)
            .unwrap();
        let (after, number) = batch.declared_number(0).unwrap();
        assert_eq!(number, 0);
        assert_ne!(before, after);
        let got = samples_of(&mut table, vec![point(0, 3.0, 5)]).unwrap();
        assert_eq!(got, [("q/C".into(), 3.0, 5)]);
        let err = samples_of(&mut table, vec![point(1, 3.0, 5)]).unwrap_err();
        assert_eq!(err.item, "point #0 (series #1)");
        assert!(err.problem.contains("declared 1"), "{err}");
    }

    #[test]
    fn a_refused_series_keeps_its_number_and_fails_its_points() {
        let mut table = DeclaredSeries::default();
        let bad = series("bad name!", "A");
        table.declare(false, [bad, series("p", "A")].into_iter(), &limits());
        assert_eq!(table.len(), 2, "the refused series still counts");
        let got = samples_of(&mut table, vec![point(1, 1.0, 1)]).unwrap();
        assert_eq!(got, [("p/A".into(), 1.0, 1)]);
        let err = samples_of(&mut table, vec![point(1, 1.0, 1), point(0, 1.0, 1)]).unwrap_err();
        assert_eq!(err.item, "series #0 `bad name!`");
        assert!(err.problem.contains("metric name"), "{err}");
    }

    #[test]
    fn names_and_labels_come_back_whole() {
        let mut table = DeclaredSeries::default();
        let mut odd = series("p", "x\u{ff}y\u{e9}");
        odd.labels.push(Label::new("empty", ""));
        odd.kind = MetricKind::Counter;
        let bare = Sample {
            labels: Vec::new(),
            ..series("q", "")
        };
        table.declare(false, [odd.clone(), bare.clone()].into_iter(), &limits());
        let mut out = SampleBatch::new();
        table
            .points_into([point(0, 2.0, 3), point(1, 4.0, 5)], 0, &mut out)
            .unwrap();
        let out = out.to_samples();
        // Labels come back sorted by name: the series' identity.
        let expect = |s: Sample, value, timestamp_ms| Sample {
            value,
            timestamp_ms,
            labels: SeriesKey::of(&s).sample(s.kind, 0.0, 0).labels,
            ..s
        };
        assert_eq!(out, [expect(odd, 2.0, 3), expect(bare, 4.0, 5)]);
    }

    #[test]
    fn a_series_is_one_series_of_each_call_s_batch() {
        let mut table = DeclaredSeries::default();
        table.declare(
            false,
            [series("p", "A"), series("q", "A")].into_iter(),
            &limits(),
        );
        let mut first = SampleBatch::new();
        let points = vec![point(1, 1.0, 1), point(0, 2.0, 2), point(1, 3.0, 3)];
        table.points_into(points, 0, &mut first).unwrap();
        assert_eq!(first.series().len(), 2);
        let numbers: Vec<u32> = first.points().iter().map(|p| p.series).collect();
        assert_eq!(numbers, [0, 1, 0]);
        // The next call's batch is new: its series are looked up in it afresh.
        let mut second = SampleBatch::new();
        table
            .points_into(vec![point(0, 4.0, 4)], 0, &mut second)
            .unwrap();
        assert_eq!(second.series().len(), 1);
        assert_eq!(second.to_samples()[0].name, "p");
    }

    #[test]
    fn a_value_that_is_not_finite_is_refused() {
        let mut table = DeclaredSeries::default();
        table.declare(false, [series("p", "A")].into_iter(), &limits());
        let err = samples_of(&mut table, vec![point(0, f64::NAN, 1)]).unwrap_err();
        assert_eq!(err.item, "point #0 (series #0) `p`");
    }

    #[test]
    fn declaring_past_the_limit_drops_the_numbering_until_a_reset() {
        let mut table = DeclaredSeries::default();
        let many = |n: usize| (0..n).map(|i| series("p", &i.to_string()));
        table.declare(false, many(MAX_DECLARED_SERIES - 1), &limits());
        assert!(samples_of(&mut table, vec![point(5, 1.0, 1)]).is_ok());
        table.declare(false, many(2), &limits());
        assert_eq!(
            table.len(),
            0,
            "the table is dropped, not kept past its bound"
        );
        let err = samples_of(&mut table, vec![point(5, 1.0, 1)]).unwrap_err();
        assert!(err.problem.contains("series-reset"), "{err}");
        table.declare(false, many(1), &limits());
        assert!(
            samples_of(&mut table, vec![point(0, 1.0, 1)]).is_err(),
            "still lost"
        );

        table.declare(true, many(1), &limits());
        assert_eq!(
            samples_of(&mut table, vec![point(0, 1.0, 1)])
                .unwrap()
                .len(),
            1
        );
    }
}
