//! A derived metric's samples as they cross to and from the host (contract
//! 0.4.0): points of series declared once, each way. The host's points reach the
//! plugin as [`Points`] of the series it declared (only of those the plugin reads:
//! see [`crate::Metric::reads`]), and the plugin writes what it emits into a
//! [`CollectOutput`], whose series this instance declares once, numbered like a
//! collector's ([`SeriesNumbers`]). A metric that only implements
//! [`crate::Metric::on_samples`] gets and gives whole [`Sample`]s, made here.

use std::cell::RefCell;
use std::collections::HashMap;

use crate::bindings::collector::wasmeter::plugin::types::Point;
use crate::output::SeriesNumbers;
use crate::{CollectOutput, Label, Metric, MetricKind, Sample, SampleBatch};

thread_local! {
    /// The series the host declared to this instance, by number (a component
    /// has one instance).
    static GIVEN: RefCell<Vec<Given>> = const { RefCell::new(Vec::new()) };
    /// The series this instance declared to the host.
    static DERIVED: RefCell<SeriesNumbers> = RefCell::new(SeriesNumbers::default());
}

/// A series the host declared: as a sample with value and timestamp 0, and
/// whether the plugin reads it (asked on its first point).
#[derive(Debug, Clone)]
struct Given {
    series: Sample,
    read: Option<bool>,
}

/// What one derive call brings: the points of the series the metric reads, in
/// the order the pipeline produced them, each naming its series by the number
/// the host gave it in this instance.
///
/// A number means the same series from call to call, so a metric can keep what
/// it needs per series in a table indexed by [`InputPoint::series`] instead of
/// looking up names and labels for every sample; until [`Points::renumbered`]
/// says the host started its numbering over (a long-lived instance that saw very
/// many series), when every number kept from earlier calls must be forgotten.
#[derive(Debug, Clone, Copy)]
pub struct Points<'a> {
    given: &'a [Given],
    points: &'a [Point],
    renumbered: bool,
}

/// One sample of [`Points`]: its series' number, name, labels and kind, its value
/// and its time (Unix ms; 0 when the producer left it to the host).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InputPoint<'a> {
    /// The series' number in this instance (see [`Points`]).
    pub series: u32,
    /// The series' metric name.
    pub name: &'a str,
    /// The series' labels.
    pub labels: &'a [Label],
    /// Gauge or counter.
    pub kind: MetricKind,
    /// The sample's value.
    pub value: f64,
    /// The sample's time, Unix ms.
    pub timestamp_ms: i64,
}

impl InputPoint<'_> {
    /// Its timestamp, or the host's clock now when it has none (0).
    pub fn timestamp_or_now(&self) -> i64 {
        if self.timestamp_ms > 0 {
            self.timestamp_ms
        } else {
            crate::now_ms()
        }
    }
}

impl<'a> Points<'a> {
    /// True when the host numbered its series anew with this call: numbers kept
    /// from earlier calls no longer name the same series.
    pub fn renumbered(&self) -> bool {
        self.renumbered
    }

    /// The points of the series the metric reads, in order.
    pub fn iter(&self) -> impl Iterator<Item = InputPoint<'a>> + 'a {
        let given = self.given;
        self.points.iter().filter_map(move |p| {
            let g = &given[p.series as usize];
            (g.read == Some(true)).then_some(InputPoint {
                series: p.series,
                name: &g.series.name,
                labels: &g.series.labels,
                kind: g.series.kind,
                value: p.value,
                timestamp_ms: p.timestamp_ms,
            })
        })
    }

    /// The points of the series the metric reads as whole samples.
    pub fn samples(&self) -> Vec<Sample> {
        self.iter()
            .map(|p| Sample {
                name: p.name.to_string(),
                labels: p.labels.to_vec(),
                value: p.value,
                kind: p.kind,
                timestamp_ms: p.timestamp_ms,
            })
            .collect()
    }
}

/// Asks `reads` about every series of `points` not asked about yet; a point of a
/// series the host did not declare fails the call.
fn ask_reads(
    given: &mut [Given],
    points: &[Point],
    reads: impl Fn(&str, MetricKind) -> bool,
) -> Result<(), String> {
    let declared = given.len();
    for (i, p) in points.iter().enumerate() {
        let Some(g) = given.get_mut(p.series as usize) else {
            return Err(format!(
                "input point #{i}: no series #{} (the host declared {declared})",
                p.series
            ));
        };
        if g.read.is_none() {
            g.read = Some(reads(&g.series.name, g.series.kind));
        }
    }
    Ok(())
}

/// Writes whole samples into `out`, each as [`CollectOutput::sample`] does.
pub(crate) fn write_samples(samples: &[Sample], out: &mut CollectOutput) {
    let mut labels: Vec<(&str, &str)> = Vec::new();
    for s in samples {
        labels.clear();
        labels.extend(s.labels.iter().map(|l| (l.name.as_str(), l.value.as_str())));
        out.sample(s.kind, &s.name, &labels, s.value, s.timestamp_ms);
    }
}

/// The host's call: takes its declarations (whatever follows: the host counts
/// them as made) and returns its points and whether it renumbered.
pub fn given_points(batch: SampleBatch) -> (Vec<Point>, bool) {
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
        (batch.points, batch.series_reset)
    })
}

/// Runs [`Metric::on_points`] on the host's points (see [`given_points`]) and
/// returns what it wrote.
pub fn call_on_points<M: Metric>(
    metric: &mut M,
    (points, renumbered): (Vec<Point>, bool),
) -> Result<CollectOutput, String> {
    GIVEN.with(|given| {
        let mut given = given.borrow_mut();
        ask_reads(&mut given, &points, |name, kind| metric.reads(name, kind))?;
        let mut out = CollectOutput::new();
        let points = Points {
            given: &given,
            points: &points,
            renumbered,
        };
        metric.on_points(points, &mut out)?;
        Ok(out)
    })
}

/// What a derive call wrote, as the host receives it: series not declared
/// before are declared, every sample sent as a point. Only for a call that
/// returns `ok`: a failed call declares nothing.
pub fn batch_out(out: CollectOutput) -> Result<SampleBatch, String> {
    if !(out.samples.is_empty()
        && out.updates.is_empty()
        && out.events.is_empty()
        && out.errors.is_empty())
    {
        return Err(
            "a derived metric's output holds samples only (written with `sample` or `point`)"
                .to_string(),
        );
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

/// Whole samples, as [`batch_out`] sends them (what `on_tick` returns).
pub fn samples_out(samples: Vec<Sample>) -> Result<SampleBatch, String> {
    let mut out = CollectOutput::new();
    write_samples(&samples, &mut out);
    batch_out(out)
}

/// Feeds a metric's [`Metric::on_points`] samples numbered as the host numbers
/// them: a series keeps its number from call to call until [`PointFeed::renumber`].
/// For a metric that implements `on_points` (its `on_samples`, which the host no
/// longer calls, can be `PointFeed::default().call(self, samples)`) and its tests.
#[derive(Debug, Default)]
pub struct PointFeed {
    given: Vec<Given>,
    numbers: HashMap<(String, bool), u32>,
    renumber: bool,
}

impl PointFeed {
    /// Calls `metric.on_points` with `samples` and returns what it wrote, as
    /// whole samples.
    pub fn call<M: Metric>(
        &mut self,
        metric: &mut M,
        samples: Vec<Sample>,
    ) -> Result<Vec<Sample>, String> {
        // A feed's first numbering is new to the metric too (it may have been fed
        // by another feed, or by the host).
        let renumbered = std::mem::take(&mut self.renumber) || self.given.is_empty();
        let mut points = Vec::with_capacity(samples.len());
        for s in samples {
            let key = (
                crate::series::key(&s.name, &s.labels),
                s.kind == MetricKind::Counter,
            );
            let next = self.given.len() as u32;
            let series = *self.numbers.entry(key).or_insert(next);
            if series == next {
                self.given.push(Given {
                    series: Sample {
                        value: 0.0,
                        timestamp_ms: 0,
                        ..s.clone()
                    },
                    read: None,
                });
            }
            points.push(Point {
                series,
                value: s.value,
                timestamp_ms: s.timestamp_ms,
            });
        }
        ask_reads(&mut self.given, &points, |name, kind| {
            metric.reads(name, kind)
        })?;
        let mut out = CollectOutput::new();
        metric.on_points(
            Points {
                given: &self.given,
                points: &points,
                renumbered,
            },
            &mut out,
        )?;
        Ok(out.all_samples())
    }

    /// Starts the numbering over at the next call, as the host does when an
    /// instance has seen too many series.
    pub fn renumber(&mut self) {
        self.given.clear();
        self.numbers.clear();
        self.renumber = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::collector::wasmeter::plugin::types::Series;
    use crate::{Config, Plugin, PluginInfo};

    /// Returns its input (the samples of what it reads) and records each call's
    /// points and whether the host renumbered; reads what is not named `p` when
    /// `skip_p`.
    #[derive(Default)]
    struct Echo {
        skip_p: bool,
        asked: RefCell<Vec<String>>,
        calls: Vec<(Vec<u32>, bool)>,
    }

    impl Plugin for Echo {
        fn info() -> PluginInfo {
            PluginInfo::new("echo", "0", "echo")
        }
        fn init(_: &Config) -> Result<Self, String> {
            Ok(Echo::default())
        }
    }

    impl Metric for Echo {
        fn reads(&self, name: &str, _: MetricKind) -> bool {
            self.asked.borrow_mut().push(name.to_string());
            !(self.skip_p && name == "p")
        }
        fn on_samples(&mut self, samples: Vec<Sample>) -> Result<Vec<Sample>, String> {
            Ok(samples)
        }
        fn on_points(&mut self, points: Points<'_>, out: &mut CollectOutput) -> Result<(), String> {
            let numbers = points.iter().map(|p| p.series).collect();
            self.calls.push((numbers, points.renumbered()));
            write_samples(&points.samples(), out);
            Ok(())
        }
    }

    /// The samples `metric` gets of `batch`, as the export macro hands them.
    fn samples_in(metric: &mut Echo, batch: SampleBatch) -> Result<Vec<Sample>, String> {
        call_on_points(metric, given_points(batch)).map(|out| out.all_samples())
    }

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
    fn the_host_s_points_become_points_of_the_series_it_declared() {
        let m = &mut Echo::default();
        let first = SampleBatch {
            series_reset: true,
            series: vec![series("p", "A"), series("q", "A")],
            points: vec![point(1, 2.0), point(0, 1.0)],
        };
        let got = samples_in(m, first).unwrap();
        assert_eq!(got[0].name, "q");
        assert_eq!((got[1].name.as_str(), got[1].value), ("p", 1.0));
        assert_eq!(got[1].label("symbol"), Some("A"));
        // Numbers continue across calls; a reset starts them over.
        let second = SampleBatch {
            series_reset: false,
            series: vec![series("p", "B")],
            points: vec![point(2, 3.0)],
        };
        assert_eq!(samples_in(m, second).unwrap()[0].label("symbol"), Some("B"));
        let reset = SampleBatch {
            series_reset: true,
            series: vec![series("r", "C")],
            points: vec![point(0, 4.0), point(1, 5.0)],
        };
        let err = samples_in(m, reset).unwrap_err();
        assert!(err.contains("no series #1 (the host declared 1)"), "{err}");
        let after = SampleBatch {
            series_reset: false,
            series: vec![],
            points: vec![point(0, 6.0)],
        };
        assert_eq!(
            samples_in(m, after).unwrap()[0].name,
            "r",
            "the reset's declaration was kept"
        );
        let renumbered: Vec<bool> = m.calls.iter().map(|c| c.1).collect();
        assert_eq!(
            renumbered,
            [true, false, false],
            "the failed call made none"
        );
    }

    #[test]
    fn only_the_series_the_plugin_reads_are_given_asked_once_each() {
        let m = &mut Echo {
            skip_p: true,
            ..Echo::default()
        };
        let batch = SampleBatch {
            series_reset: true,
            series: vec![series("p", "A"), series("q", "A")],
            points: vec![point(0, 1.0), point(1, 2.0), point(0, 3.0), point(1, 4.0)],
        };
        let got = samples_in(m, batch).unwrap();
        let values: Vec<f64> = got.iter().map(|s| s.value).collect();
        assert_eq!(values, [2.0, 4.0]);
        let again = SampleBatch {
            series_reset: false,
            series: vec![],
            points: vec![point(1, 5.0), point(0, 6.0)],
        };
        assert_eq!(samples_in(m, again).unwrap()[0].value, 5.0);
        assert_eq!(m.calls[1], (vec![1], false), "the numbers the host gave");
        assert_eq!(*m.asked.borrow(), ["p", "q"], "once per series");
    }

    #[test]
    fn a_point_feed_numbers_series_as_the_host_does() {
        let m = &mut Echo {
            skip_p: true,
            ..Echo::default()
        };
        let sample = |name: &str, symbol: &str, value| {
            Sample::new(name, MetricKind::Gauge, value).with_label("symbol", symbol)
        };
        let mut feed = PointFeed::default();
        let got = feed
            .call(
                m,
                vec![
                    sample("q", "A", 1.0),
                    sample("p", "A", 2.0),
                    sample("q", "B", 3.0),
                ],
            )
            .unwrap();
        assert_eq!(got, vec![sample("q", "A", 1.0), sample("q", "B", 3.0)]);
        feed.call(m, vec![sample("q", "B", 4.0), sample("q", "A", 5.0)])
            .unwrap();
        feed.renumber();
        feed.call(m, vec![sample("q", "B", 6.0)]).unwrap();
        assert_eq!(
            m.calls,
            [(vec![0, 2], true), (vec![2, 0], false), (vec![0], true)]
        );
    }

    #[test]
    fn the_plugin_s_samples_cross_as_points_of_series_declared_once() {
        let sample = |symbol: &str, value| {
            Sample::new("vwap", MetricKind::Gauge, value)
                .with_labels(vec![Label::new("symbol", symbol)])
        };
        let first =
            samples_out(vec![sample("A", 1.0), sample("B", 2.0), sample("A", 3.0)]).unwrap();
        assert!(!first.series_reset);
        assert_eq!(first.series.len(), 2);
        let numbers: Vec<u32> = first.points.iter().map(|p| p.series).collect();
        assert_eq!(numbers, [0, 1, 0]);
        let second = samples_out(vec![sample("B", 4.0), sample("C", 5.0)]).unwrap();
        assert_eq!(second.series.len(), 1, "only C is new");
        assert_eq!(second.series[0].labels[0].value, "C");
        let numbers: Vec<u32> = second.points.iter().map(|p| p.series).collect();
        assert_eq!(numbers, [1, 2]);
        // A registered series crosses as the same declared series.
        let mut out = CollectOutput::new();
        let c = CollectOutput::series(MetricKind::Gauge, "vwap", &[("symbol", "C")]);
        out.point(c, 6.0, 7);
        let third = batch_out(out).unwrap();
        assert!(third.series.is_empty());
        assert_eq!(third.points[0].series, 2);
        let mut wrong = CollectOutput::new();
        wrong.update("t").set("x", 1.0);
        let err = batch_out(wrong).unwrap_err();
        assert!(err.contains("samples only"), "{err}");
    }
}
