//! Samples held as points of the series they belong to: each series of a batch
//! once (its [`SeriesKey`] and kind), each sample as the series' number, a value
//! and a time. A pipeline's chunk brings ~100,000 samples of a few hundred
//! series: every stage that works per series (topics, `/metrics`' latest values,
//! the history's series references) does its work once per series of the batch
//! instead of once per sample.

use hashbrown::HashTable;

use crate::sample::{MetricKind, Sample};
use crate::series_key::{self, SeriesKey};

/// A series of a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchSeries {
    /// Name and labels.
    pub key: SeriesKey,
    /// Gauge or counter.
    pub kind: MetricKind,
}

/// A sample of a batch: the number of its series in the batch, its value and time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchPoint {
    /// Index into [`SampleBatch::series`].
    pub series: u32,
    /// The value.
    pub value: f64,
    /// Unix time in milliseconds.
    pub timestamp_ms: i64,
}

/// Samples in the order they were produced, their series held once each.
#[derive(Debug, Default, Clone)]
pub struct SampleBatch {
    series: Vec<BatchSeries>,
    points: Vec<BatchPoint>,
    /// Series numbers by key (by [`SeriesKey::hash_value`]).
    index: HashTable<u32>,
    /// Scratch for the keys of whole samples.
    packed: Vec<u8>,
    sorted: Vec<usize>,
    /// Where its series were declared, while every one of them was declared by
    /// the same table (see [`SampleBatch::declared_series_number`]).
    declared: Option<Declared>,
}

/// The numbers a batch's series have in the table that declared them.
#[derive(Debug, Clone)]
struct Declared {
    table: u64,
    /// By the series' number in the batch.
    numbers: Vec<u32>,
}

impl PartialEq for SampleBatch {
    fn eq(&self, other: &Self) -> bool {
        self.series == other.series && self.points == other.points
    }
}

impl SampleBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Samples held.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// True if it holds no sample.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// Makes room for `points` more samples.
    pub fn reserve(&mut self, points: usize) {
        self.points.reserve(points);
    }

    /// Its series, each once, in the order they first appeared.
    pub fn series(&self) -> &[BatchSeries] {
        &self.series
    }

    /// Its samples, in the order they were produced.
    pub fn points(&self) -> &[BatchPoint] {
        &self.points
    }

    /// The number of series `key` in the batch, added if new. A series keeps the
    /// kind it was first given.
    pub fn series_number(&mut self, key: &SeriesKey, kind: MetricKind) -> u32 {
        self.number_of(key.hash_value(), |held| held == key, kind, || key.clone())
    }

    /// [`Self::series_number`] of a series that `table` (a plugin instance's
    /// numbering of the series it declared, unique for the life of the process)
    /// holds as `number`. While every series of the batch comes from one table,
    /// [`Self::declared_number`] tells each one's number there, so that a
    /// consumer can remember what it did with a series by that number.
    pub fn declared_series_number(
        &mut self,
        key: &SeriesKey,
        kind: MetricKind,
        table: u64,
        number: u32,
    ) -> u32 {
        let before = self.series.len();
        let declared = self.declared.take();
        let n = self.series_number(key, kind);
        self.declared = match declared {
            _ if self.series.len() == before => declared,
            None if before == 0 => Some(Declared {
                table,
                numbers: vec![number],
            }),
            Some(mut d) if d.table == table => {
                d.numbers.push(number);
                Some(d)
            }
            _ => None,
        };
        n
    }

    /// The table and number series `series` of this batch was declared with (see
    /// [`Self::declared_series_number`]); `None` once the batch holds a series
    /// declared elsewhere or not at all.
    pub fn declared_number(&self, series: u32) -> Option<(u64, u32)> {
        let d = self.declared.as_ref()?;
        Some((d.table, *d.numbers.get(series as usize)?))
    }

    /// The number of the series whose key hashes to `hash` and is `is_key`,
    /// added (its key made by `key`) if new.
    fn number_of(
        &mut self,
        hash: u64,
        is_key: impl Fn(&SeriesKey) -> bool,
        kind: MetricKind,
        key: impl FnOnce() -> SeriesKey,
    ) -> u32 {
        let series = &self.series;
        let found = self.index.find(hash, |&n| is_key(&series[n as usize].key));
        if let Some(&n) = found {
            return n;
        }
        let n = u32::try_from(self.series.len()).expect("fewer than 2^32 series in a batch");
        // A series added by any other way than `declared_series_number`.
        self.declared = None;
        self.series.push(BatchSeries { key: key(), kind });
        let series = &self.series;
        self.index
            .insert_unique(hash, n, |&m| series[m as usize].key.hash_value());
        n
    }

    /// Appends a sample of series number `series` (from [`Self::series_number`]).
    pub fn push(&mut self, series: u32, value: f64, timestamp_ms: i64) {
        debug_assert!((series as usize) < self.series.len());
        self.points.push(BatchPoint {
            series,
            value,
            timestamp_ms,
        });
    }

    /// Appends a whole sample: its series is found by name and labels (a key is
    /// made only for a series new to the batch).
    pub fn push_sample(&mut self, sample: &Sample) {
        let mut packed = std::mem::take(&mut self.packed);
        let mut sorted = std::mem::take(&mut self.sorted);
        sorted.clear();
        sorted.extend(0..sample.labels.len());
        let labels = &sample.labels;
        sorted.sort_by(|&a, &b| series_key::label_order(&labels[a], &labels[b]));
        packed.clear();
        series_key::pack_into(
            &sample.name,
            sorted.iter().map(|&i| &labels[i]),
            &mut packed,
        );
        let hash = series_key::hash_bytes(&packed);
        let n = self.number_of(
            hash,
            |held| held.hash_value() == hash && held.bytes() == packed.as_slice(),
            sample.kind,
            || SeriesKey::from_packed(&packed),
        );
        self.push(n, sample.value, sample.timestamp_ms);
        self.packed = packed;
        self.sorted = sorted;
    }

    /// Appends every sample of `other`, in order.
    pub fn extend(&mut self, other: &SampleBatch) {
        let numbers: Vec<u32> = other
            .series
            .iter()
            .map(|s| self.series_number(&s.key, s.kind))
            .collect();
        self.points.extend(other.points.iter().map(|p| BatchPoint {
            series: numbers[p.series as usize],
            ..*p
        }));
    }

    /// The series of a point.
    pub fn series_of(&self, point: &BatchPoint) -> &BatchSeries {
        &self.series[point.series as usize]
    }

    /// The samples from the `from`-th on, each made whole (labels sorted by name).
    pub fn samples_from(&self, from: usize) -> impl Iterator<Item = Sample> + '_ {
        self.points[from.min(self.points.len())..].iter().map(|p| {
            let s = self.series_of(p);
            s.key.sample(s.kind, p.value, p.timestamp_ms)
        })
    }

    /// Every sample, made whole (labels sorted by name).
    pub fn to_samples(&self) -> Vec<Sample> {
        self.samples_from(0).collect()
    }

    /// How many samples each series has (by series number).
    pub fn points_per_series(&self) -> Vec<u64> {
        let mut counts = vec![0; self.series.len()];
        for p in &self.points {
            counts[p.series as usize] += 1;
        }
        counts
    }

    /// The newest point of each series that has one, in the order they were
    /// produced: a series whose newest point came later is listed later.
    pub fn last_points(&self) -> Vec<BatchPoint> {
        let mut last = vec![None; self.series.len()];
        for (at, p) in self.points.iter().enumerate() {
            last[p.series as usize] = Some(at);
        }
        let mut at: Vec<usize> = last.into_iter().flatten().collect();
        at.sort_unstable();
        at.into_iter().map(|at| self.points[at]).collect()
    }
}

impl From<&[Sample]> for SampleBatch {
    fn from(samples: &[Sample]) -> Self {
        let mut batch = SampleBatch::new();
        batch.reserve(samples.len());
        for s in samples {
            batch.push_sample(s);
        }
        batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::Label;

    fn sample(name: &str, labels: &[(&str, &str)], value: f64) -> Sample {
        Sample {
            name: name.into(),
            labels: labels.iter().map(|(n, v)| Label::new(*n, *v)).collect(),
            value,
            kind: MetricKind::Gauge,
            timestamp_ms: value as i64,
        }
    }

    #[test]
    fn samples_of_one_series_share_it_whatever_the_label_order() {
        let samples = [
            sample("p", &[("s", "A"), ("v", "x")], 1.0),
            sample("p", &[("s", "B"), ("v", "x")], 2.0),
            sample("q", &[("s", "A"), ("v", "x")], 3.0),
            sample("p", &[("v", "x"), ("s", "A")], 4.0),
        ];
        let batch = SampleBatch::from(&samples[..]);
        assert_eq!(batch.series().len(), 3);
        assert_eq!(batch.len(), 4);
        let numbers: Vec<u32> = batch.points().iter().map(|p| p.series).collect();
        assert_eq!(numbers, [0, 1, 2, 0]);
        let back = batch.to_samples();
        for (s, b) in samples.iter().zip(&back) {
            assert_eq!((&b.name, b.value), (&s.name, s.value));
            assert_eq!(b.labels, SeriesKey::of(s).sample(s.kind, 0.0, 0).labels);
        }
        // In the order the newest points came: B's (2), q's (3), A's (4).
        let last: Vec<f64> = batch.last_points().iter().map(|p| p.value).collect();
        assert_eq!(last, [2.0, 3.0, 4.0]);
        assert_eq!(batch.points_per_series(), [2, 1, 1]);
        // A series given by its key is the one its whole samples made.
        let mut batch = batch;
        let key = SeriesKey::new("p", &[Label::new("v", "x"), Label::new("s", "B")]);
        assert_eq!(batch.series_number(&key, MetricKind::Gauge), 1);
        let fresh = SeriesKey::new("r", &[]);
        assert_eq!(batch.series_number(&fresh, MetricKind::Gauge), 3);
        batch.push_sample(&sample("r", &[], 5.0));
        assert_eq!(batch.points().last().unwrap().series, 3);
    }

    #[test]
    fn declared_numbers_hold_while_one_table_declared_every_series() {
        let key = |symbol: &str| SeriesKey::of(&sample("p", &[("s", symbol)], 0.0));
        let mut b = SampleBatch::new();
        let a = b.declared_series_number(&key("A"), MetricKind::Gauge, 7, 40);
        let c = b.declared_series_number(&key("C"), MetricKind::Gauge, 7, 2);
        // Seen again under another number: the batch keeps the first.
        assert_eq!(
            b.declared_series_number(&key("A"), MetricKind::Gauge, 7, 41),
            a
        );
        assert_eq!(b.declared_number(a), Some((7, 40)));
        assert_eq!(b.declared_number(c), Some((7, 2)));
        assert_eq!(b.declared_number(2), None, "no such series");
        // A series of another table, or of none: no numbers any more.
        let mut mixed = b.clone();
        mixed.declared_series_number(&key("D"), MetricKind::Gauge, 8, 0);
        assert_eq!(mixed.declared_number(a), None);
        b.push_sample(&sample("q", &[], 1.0));
        assert_eq!(b.declared_number(a), None);
        b.declared_series_number(&key("E"), MetricKind::Gauge, 7, 3);
        assert_eq!(b.declared_number(a), None);
        // Whole samples never have any.
        let whole = SampleBatch::from(&[sample("p", &[("s", "A")], 1.0)][..]);
        assert_eq!(whole.declared_number(0), None);
    }

    #[test]
    fn a_batch_appended_to_another_keeps_its_order_and_series() {
        let mut a = SampleBatch::from(&[sample("p", &[("s", "A")], 1.0)][..]);
        let b = SampleBatch::from(
            &[
                sample("q", &[("s", "A")], 2.0),
                sample("p", &[("s", "A")], 3.0),
            ][..],
        );
        a.extend(&b);
        assert_eq!(a.series().len(), 2);
        let seen: Vec<(String, f64)> = a
            .to_samples()
            .into_iter()
            .map(|s| (s.name.to_string(), s.value))
            .collect();
        assert_eq!(
            seen,
            [("p".into(), 1.0), ("q".into(), 2.0), ("p".into(), 3.0)]
        );
        assert_eq!(a.samples_from(2).count(), 1);
    }

    #[test]
    fn many_series_are_told_apart() {
        let mut batch = SampleBatch::new();
        for round in 0..2 {
            for i in 0..5_000 {
                batch.push_sample(&sample("p", &[("s", &i.to_string())], round as f64));
            }
        }
        assert_eq!(batch.series().len(), 5_000);
        assert!(
            batch.points()[5_000..]
                .iter()
                .enumerate()
                .all(|(i, p)| p.series == i as u32)
        );
    }
}
