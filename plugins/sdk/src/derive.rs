//! A derived metric's samples as they cross to and from the host (contract
//! 0.4.0): points of series declared once, each way. The plugin still takes and
//! gives whole [`Sample`]s; this module turns the host's points into samples of
//! the series it declared (only of those the plugin reads: see
//! [`crate::Metric::reads`]), and the plugin's samples into points of series
//! this instance declares, numbered like a collector's ([`SeriesNumbers`]).

use std::cell::RefCell;

use crate::bindings::collector::wasmeter::plugin::types::Point;
use crate::output::SeriesNumbers;
use crate::{CollectOutput, MetricKind, Sample, SampleBatch};

thread_local! {
    /// The series the host declared to this instance, by number (a component
    /// has one instance).
    static GIVEN: RefCell<Vec<Given>> = const { RefCell::new(Vec::new()) };
    /// The series this instance declared to the host.
    static DERIVED: RefCell<SeriesNumbers> = RefCell::new(SeriesNumbers::default());
}

/// A series the host declared: as a sample with value and timestamp 0, and
/// whether the plugin reads it (asked on its first point).
struct Given {
    series: Sample,
    read: Option<bool>,
}

/// Takes the host's declarations of `batch` (whatever follows: the host counts
/// them as made) and returns its points.
pub fn given_points(batch: SampleBatch) -> Vec<Point> {
    GIVEN.with(|given| {
        let mut given = given.borrow_mut();
        if batch.series_reset {
            given.clear();
        }
        given.extend(batch.series.into_iter().map(|s| Given {
            series: Sample {
                name: s.name,
                labels: s.labels,
                value: 0.0,
                kind: s.kind,
                timestamp_ms: 0,
            },
            read: None,
        }));
        batch.points
    })
}

/// The samples of the `points` whose series `reads` (asked once per series),
/// whole. A point of a series the host did not declare fails the call.
pub fn samples_read(
    points: Vec<Point>,
    reads: impl Fn(&str, MetricKind) -> bool,
) -> Result<Vec<Sample>, String> {
    GIVEN.with(|given| {
        let mut given = given.borrow_mut();
        let declared = given.len();
        let mut samples = Vec::new();
        for (i, p) in points.into_iter().enumerate() {
            let Some(g) = given.get_mut(p.series as usize) else {
                return Err(format!(
                    "input point #{i}: no series #{} (the host declared {declared})",
                    p.series
                ));
            };
            let read = *g
                .read
                .get_or_insert_with(|| reads(&g.series.name, g.series.kind));
            if read {
                samples.push(Sample {
                    value: p.value,
                    timestamp_ms: p.timestamp_ms,
                    ..g.series.clone()
                });
            }
        }
        Ok(samples)
    })
}

/// The plugin's samples as the host receives them: series not declared before
/// are declared, every sample sent as a point. Only for a call that returns
/// `ok`: a failed call declares nothing.
pub fn batch_out(samples: Vec<Sample>) -> Result<SampleBatch, String> {
    let mut out = CollectOutput::new();
    let mut labels: Vec<(&str, &str)> = Vec::new();
    for s in &samples {
        labels.clear();
        labels.extend(s.labels.iter().map(|l| (l.name.as_str(), l.value.as_str())));
        out.sample(s.kind, &s.name, &labels, s.value, s.timestamp_ms);
    }
    let wire = DERIVED.with(|numbers| numbers.borrow_mut().wire(out));
    if !wire.samples.is_empty() {
        return Err(format!(
            "more than {} new series in one call: the host takes at most that many at once",
            crate::MAX_SERIES
        ));
    }
    Ok(SampleBatch {
        series_reset: wire.series_reset,
        series: wire.series,
        points: wire.points,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::collector::wasmeter::plugin::types::Series;

    fn samples_in(batch: SampleBatch) -> Result<Vec<Sample>, String> {
        samples_read(given_points(batch), |_, _| true)
    }
    use crate::{Label, MetricKind};

    fn series(name: &str, symbol: &str) -> Series {
        Series {
            name: name.into(),
            labels: vec![Label::new("symbol", symbol)],
            kind: MetricKind::Gauge,
        }
    }

    fn point(series: u32, value: f64) -> Point {
        Point {
            series,
            value,
            timestamp_ms: 5,
        }
    }

    #[test]
    fn the_host_s_points_become_samples_of_the_series_it_declared() {
        let first = SampleBatch {
            series_reset: false,
            series: vec![series("p", "A"), series("q", "A")],
            points: vec![point(1, 2.0), point(0, 1.0)],
        };
        let got = samples_in(first).unwrap();
        assert_eq!(got[0].name, "q");
        assert_eq!((got[1].name.as_str(), got[1].value), ("p", 1.0));
        assert_eq!(got[1].label("symbol"), Some("A"));
        // Numbers continue across calls; a reset starts them over.
        let second = SampleBatch {
            series_reset: false,
            series: vec![series("p", "B")],
            points: vec![point(2, 3.0)],
        };
        assert_eq!(samples_in(second).unwrap()[0].label("symbol"), Some("B"));
        let reset = SampleBatch {
            series_reset: true,
            series: vec![series("r", "C")],
            points: vec![point(0, 4.0), point(1, 5.0)],
        };
        let err = samples_in(reset).unwrap_err();
        assert!(err.contains("no series #1 (the host declared 1)"), "{err}");
        let after = SampleBatch {
            series_reset: false,
            series: vec![],
            points: vec![point(0, 6.0)],
        };
        assert_eq!(
            samples_in(after).unwrap()[0].name,
            "r",
            "the reset's declaration was kept"
        );
    }

    #[test]
    fn only_the_series_the_plugin_reads_are_made_whole_asked_once_each() {
        let asked = std::cell::RefCell::new(Vec::new());
        let reads = |name: &str, _| {
            asked.borrow_mut().push(name.to_string());
            name == "q"
        };
        let batch = SampleBatch {
            series_reset: true,
            series: vec![series("p", "A"), series("q", "A")],
            points: vec![point(0, 1.0), point(1, 2.0), point(0, 3.0), point(1, 4.0)],
        };
        let got = samples_read(given_points(batch), reads).unwrap();
        let values: Vec<f64> = got.iter().map(|s| s.value).collect();
        assert_eq!(values, [2.0, 4.0]);
        let again = SampleBatch {
            series_reset: false,
            series: vec![],
            points: vec![point(1, 5.0), point(0, 6.0)],
        };
        assert_eq!(
            samples_read(given_points(again), reads).unwrap()[0].value,
            5.0
        );
        assert_eq!(*asked.borrow(), ["p", "q"], "once per series");
    }

    #[test]
    fn the_plugin_s_samples_cross_as_points_of_series_declared_once() {
        let sample = |symbol: &str, value| {
            Sample::new("vwap", MetricKind::Gauge, value)
                .with_labels(vec![Label::new("symbol", symbol)])
        };
        let first = batch_out(vec![sample("A", 1.0), sample("B", 2.0), sample("A", 3.0)]).unwrap();
        assert!(!first.series_reset);
        assert_eq!(first.series.len(), 2);
        let numbers: Vec<u32> = first.points.iter().map(|p| p.series).collect();
        assert_eq!(numbers, [0, 1, 0]);
        let second = batch_out(vec![sample("B", 4.0), sample("C", 5.0)]).unwrap();
        assert_eq!(second.series.len(), 1, "only C is new");
        assert_eq!(second.series[0].labels[0].value, "C");
        let numbers: Vec<u32> = second.points.iter().map(|p| p.series).collect();
        assert_eq!(numbers, [1, 2]);
    }
}
