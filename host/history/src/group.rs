//! A batch's samples grouped per series, so that the writer resolves each
//! series once per batch instead of once per sample: a chunk of 30,000 trades
//! over 100 symbols is 120,000 samples but only 400 series.

use std::hash::{BuildHasher, Hash, Hasher};

use foldhash::fast::RandomState;
use foldhash::{HashMap, HashMapExt};

use wasmeter_core::sample::{Label, MetricKind, Sample, sort_labels};
use wasmeter_tsdb::Sample as Point;

/// The samples of one series within a batch, in batch order.
pub(crate) struct SeriesGroup<'a> {
    /// Metric name.
    pub name: &'a str,
    /// Labels sorted by name (then value): the same series whatever order a
    /// plugin gave them in.
    pub labels: Vec<&'a Label>,
    /// Kind of the series' first sample in the batch.
    pub kind: MetricKind,
    /// Hash of name and sorted labels, by the hasher the batch was grouped with.
    pub hash: u64,
    /// The samples' points, in the order they came.
    pub points: Vec<Point>,
}

impl SeriesGroup<'_> {
    fn is(&self, name: &str, labels: &[&Label]) -> bool {
        self.name == name && self.labels == labels
    }
}

/// Groups `batch` per series, in the order each series first appears; each
/// series' samples keep their order, so time order within a series is kept.
/// A series' hash is the same in every batch grouped with the same `hasher`.
pub(crate) fn by_series<'a>(batch: &'a [Sample], hasher: &RandomState) -> Vec<SeriesGroup<'a>> {
    let mut groups: Vec<SeriesGroup<'_>> = Vec::new();
    // Group indices by the hash of name and sorted labels; collisions share a bucket.
    let mut index: HashMap<u64, Vec<usize>> = HashMap::new();
    let mut sorted: Vec<&Label> = Vec::new();
    for sample in batch {
        sort_labels(sample, &mut sorted);
        let mut h = hasher.build_hasher();
        sample.name.hash(&mut h);
        sorted.hash(&mut h);
        let hash = h.finish();
        let bucket = index.entry(hash).or_default();
        let point = Point::new(sample.timestamp_ms, sample.value);
        match bucket
            .iter()
            .find(|&&g| groups[g].is(&sample.name, &sorted))
        {
            Some(&g) => groups[g].points.push(point),
            None => {
                bucket.push(groups.len());
                groups.push(SeriesGroup {
                    name: &sample.name,
                    labels: sorted.clone(),
                    kind: sample.kind,
                    hash,
                    points: vec![point],
                });
            }
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str, labels: &[(&str, &str)], t: i64) -> Sample {
        Sample {
            name: name.into(),
            labels: labels.iter().map(|(n, v)| Label::new(*n, *v)).collect(),
            value: t as f64,
            kind: MetricKind::Gauge,
            timestamp_ms: t,
        }
    }

    #[test]
    fn samples_group_per_series_in_order_whatever_the_label_order() {
        let batch = [
            sample("p", &[("s", "A"), ("v", "x")], 1),
            sample("p", &[("s", "B"), ("v", "x")], 2),
            sample("q", &[("s", "A"), ("v", "x")], 3),
            sample("p", &[("v", "x"), ("s", "A")], 4),
            sample("p", &[("s", "B"), ("v", "x")], 5),
            sample("p", &[("s", "A"), ("v", "x")], 6),
        ];
        let groups = by_series(&batch, &RandomState::default());
        let seen: Vec<(&str, Vec<&str>, Vec<i64>)> = groups
            .iter()
            .map(|g| {
                let values = g.labels.iter().map(|l| l.value.as_str()).collect();
                (
                    g.name,
                    values,
                    g.points.iter().map(|p| p.timestamp_ms).collect(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("p", vec!["A", "x"], vec![1, 4, 6]),
                ("p", vec!["B", "x"], vec![2, 5]),
                ("q", vec!["A", "x"], vec![3]),
            ]
        );
    }
}
