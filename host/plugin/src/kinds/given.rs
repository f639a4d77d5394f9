//! The series the host declared to a metric instance (contract 0.4.0): a
//! derive call's samples cross as points of series declared once, numbered by
//! the host in the order it first handed each one to the instance.
//!
//! The table lives with the instance's store, like the guest's own
//! declarations ([`super::DeclaredSeries`]): a rebuilt instance starts with
//! none, on both sides. The guest takes a call's declarations whatever the call
//! returns, so the host keeps them too.

use std::collections::HashMap;

use wasmeter_core::sample::MetricKind;
use wasmeter_core::sample_batch::SampleBatch;
use wasmeter_core::series_key::SeriesKey;

use super::series::MAX_DECLARED_SERIES;

/// The series declared to one instance, by key.
#[derive(Debug, Default)]
pub(crate) struct GivenSeries {
    numbers: HashMap<SeriesKey, (u32, MetricKind), foldhash::fast::RandomState>,
    /// Numbers handed out since the last reset (a series whose kind changed is
    /// declared again under a new number).
    declared: usize,
}

/// One call's input in the host's numbering, its points made by the caller.
pub(crate) struct GivenBatch<'a, P> {
    /// The instance must forget what was declared before.
    pub(crate) reset: bool,
    /// Series declared by this call, in number order.
    pub(crate) series: Vec<(&'a SeriesKey, MetricKind)>,
    /// Each point, made of its series' number for the instance, value and time.
    pub(crate) points: Vec<P>,
}

impl GivenSeries {
    /// `batch` in the instance's numbering: the series it has not been given
    /// yet are declared (all of them again after a reset, when the new ones
    /// would take it past [`MAX_DECLARED_SERIES`]). `point` makes each point of
    /// its number, value and time.
    pub(crate) fn give<'a, P>(
        &mut self,
        batch: &'a SampleBatch,
        point: impl Fn(u32, f64, i64) -> P,
    ) -> GivenBatch<'a, P> {
        let known = |numbers: &HashMap<_, (u32, MetricKind), _>, key, kind| {
            numbers
                .get(key)
                .is_some_and(|(_, k): &(u32, MetricKind)| *k == kind)
        };
        // Only a call that could take the table past its bound counts its new
        // series first; the others go straight to numbering.
        let reset = self.declared + batch.series().len() > MAX_DECLARED_SERIES && {
            let new = batch
                .series()
                .iter()
                .filter(|s| !known(&self.numbers, &s.key, s.kind))
                .count();
            self.declared + new > MAX_DECLARED_SERIES
        };
        if reset {
            self.numbers.clear();
            self.declared = 0;
        }
        let mut series = Vec::new();
        let numbers: Vec<u32> = batch
            .series()
            .iter()
            .map(|s| match self.numbers.get(&s.key) {
                Some((number, kind)) if *kind == s.kind => *number,
                _ => {
                    let number = self.declared as u32;
                    self.declared += 1;
                    self.numbers.insert(s.key.clone(), (number, s.kind));
                    series.push((&s.key, s.kind));
                    number
                }
            })
            .collect();
        let points = batch
            .points()
            .iter()
            .map(|p| point(numbers[p.series as usize], p.value, p.timestamp_ms))
            .collect();
        GivenBatch {
            reset,
            series,
            points,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmeter_core::sample::{Label, Sample};

    fn sample(name: &str, symbol: &str, value: f64) -> Sample {
        Sample {
            name: name.into(),
            labels: vec![Label::new("symbol", symbol)],
            value,
            kind: MetricKind::Gauge,
            timestamp_ms: 7,
        }
    }

    fn batch(samples: &[Sample]) -> SampleBatch {
        SampleBatch::from(samples)
    }

    fn give<'a>(
        table: &mut GivenSeries,
        batch: &'a SampleBatch,
    ) -> GivenBatch<'a, (u32, f64, i64)> {
        table.give(batch, |series, value, ts| (series, value, ts))
    }

    fn names(given: &GivenBatch<'_, (u32, f64, i64)>) -> Vec<String> {
        given
            .series
            .iter()
            .map(|(key, _)| {
                let symbol = key.labels().next().map(|(_, v)| v).unwrap_or_default();
                format!("{}/{symbol}", key.name())
            })
            .collect()
    }

    #[test]
    fn a_series_is_declared_once_and_then_given_by_number() {
        let mut table = GivenSeries::default();
        let first = batch(&[
            sample("p", "A", 1.0),
            sample("q", "A", 2.0),
            sample("p", "A", 3.0),
        ]);
        let given = give(&mut table, &first);
        assert!(!given.reset);
        assert_eq!(names(&given), ["p/A", "q/A"]);
        assert_eq!(given.points, [(0, 1.0, 7), (1, 2.0, 7), (0, 3.0, 7)]);

        let second = batch(&[sample("q", "A", 4.0), sample("p", "B", 5.0)]);
        let given = give(&mut table, &second);
        assert_eq!(names(&given), ["p/B"], "only the new series is declared");
        assert_eq!(given.points, [(1, 4.0, 7), (2, 5.0, 7)]);
    }

    #[test]
    fn a_series_whose_kind_changed_is_declared_again() {
        let mut table = GivenSeries::default();
        give(&mut table, &batch(&[sample("p", "A", 1.0)]));
        let mut counter = sample("p", "A", 2.0);
        counter.kind = MetricKind::Counter;
        let changed = batch(&[counter]);
        let given = give(&mut table, &changed);
        assert_eq!(given.series.len(), 1);
        assert_eq!(given.series[0].1, MetricKind::Counter);
        assert_eq!(given.points, [(1, 2.0, 7)]);
    }

    #[test]
    fn past_the_bound_the_table_is_reset_and_the_call_s_series_declared_again() {
        let mut table = GivenSeries::default();
        let many: Vec<Sample> = (0..MAX_DECLARED_SERIES)
            .map(|i| sample("p", &i.to_string(), 1.0))
            .collect();
        let many = batch(&many);
        let given = give(&mut table, &many);
        assert!(!given.reset);
        assert_eq!(given.series.len(), MAX_DECLARED_SERIES);
        // A known series and a new one: the new one would pass the bound.
        let next = batch(&[sample("p", "5", 2.0), sample("p", "new", 3.0)]);
        let given = give(&mut table, &next);
        assert!(given.reset);
        assert_eq!(names(&given), ["p/5", "p/new"]);
        assert_eq!(given.points, [(0, 2.0, 7), (1, 3.0, 7)]);
        // And from there on, numbering continues from the reset.
        let again = batch(&[sample("p", "new", 4.0)]);
        let given = give(&mut table, &again);
        assert!(!given.reset && given.series.is_empty());
        assert_eq!(given.points, [(1, 4.0, 7)]);
    }
}
