//! What a derived metric keeps per series, found for each point by the number
//! the host gave its series ([`InputPoint::series`]): the metric's own key of a
//! series (its name and labels, or its labels alone) is made and looked up once
//! per input series instead of once per sample, and the values stay in key
//! order for the metric's state.

use std::collections::HashMap;

use crate::{InputPoint, Points};

/// An input series whose slot is not known (yet, or any more).
const UNKNOWN: u32 = u32::MAX;

/// Values by series key, each in a slot that input series find by number.
#[derive(Debug, Clone)]
pub struct PerSeries<T> {
    keys: Vec<String>,
    values: Vec<T>,
    slot_of_key: HashMap<String, u32>,
    /// By the host's number of an input series: its slot, or [`UNKNOWN`].
    by_input: Vec<u32>,
}

impl<T> Default for PerSeries<T> {
    fn default() -> Self {
        Self {
            keys: Vec::new(),
            values: Vec::new(),
            slot_of_key: HashMap::new(),
            by_input: Vec::new(),
        }
    }
}

impl<T> PerSeries<T> {
    /// None yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a call's points: when the host numbered its series anew, which
    /// slot each number had is forgotten.
    pub fn start(&mut self, points: &Points<'_>) {
        if points.renumbered() {
            self.by_input.clear();
        }
    }

    /// The slot of `point`'s series: found by its number, else by `key()`, else
    /// made with `make()`. Call [`PerSeries::start`] first in each call.
    pub fn slot(
        &mut self,
        point: &InputPoint<'_>,
        key: impl FnOnce() -> String,
        make: impl FnOnce() -> T,
    ) -> usize {
        let at = point.series as usize;
        if let Some(&slot) = self.by_input.get(at)
            && slot != UNKNOWN
        {
            return slot as usize;
        }
        let key = key();
        let slot = match self.slot_of_key.get(&key) {
            Some(&slot) => slot,
            None => self.insert(key, make()),
        };
        if self.by_input.len() <= at {
            self.by_input.resize(at + 1, UNKNOWN);
        }
        self.by_input[at] = slot;
        slot as usize
    }

    /// Sets the value of `key` (a state being imported); returns its slot.
    pub fn insert(&mut self, key: String, value: T) -> u32 {
        if let Some(&slot) = self.slot_of_key.get(&key) {
            self.values[slot as usize] = value;
            return slot;
        }
        let slot = u32::try_from(self.values.len()).expect("fewer than 2^32 series");
        self.slot_of_key.insert(key.clone(), slot);
        self.keys.push(key);
        self.values.push(value);
        slot
    }

    /// The value in `slot`.
    pub fn get(&self, slot: usize) -> &T {
        &self.values[slot]
    }

    /// The value in `slot`, to change.
    pub fn get_mut(&mut self, slot: usize) -> &mut T {
        &mut self.values[slot]
    }

    /// The value of series `key`.
    pub fn by_key(&self, key: &str) -> Option<&T> {
        self.slot_of_key
            .get(key)
            .map(|&slot| &self.values[slot as usize])
    }

    /// How many series it holds.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True if it holds none.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Keeps the series `keep` is true of (it may change them); the others'
    /// slots go, and which slot each input series had is forgotten.
    pub fn retain(&mut self, mut keep: impl FnMut(&str, &mut T) -> bool) {
        let mut kept = 0;
        for at in 0..self.values.len() {
            if keep(&self.keys[at], &mut self.values[at]) {
                self.keys.swap(kept, at);
                self.values.swap(kept, at);
                kept += 1;
            }
        }
        if kept == self.values.len() {
            return;
        }
        self.keys.truncate(kept);
        self.values.truncate(kept);
        self.slot_of_key.clear();
        for (slot, key) in self.keys.iter().enumerate() {
            self.slot_of_key.insert(key.clone(), slot as u32);
        }
        self.by_input.clear();
    }

    /// Every series with its key, in key order (the same series give the same
    /// order, whatever order they came in).
    pub fn sorted(&self) -> Vec<(&str, &T)> {
        let mut all: Vec<(&str, &T)> = self
            .keys
            .iter()
            .map(String::as_str)
            .zip(&self.values)
            .collect();
        all.sort_by(|a, b| a.0.cmp(b.0));
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::derive::PointFeed;
    use crate::{CollectOutput, Config, Metric, MetricKind, Plugin, PluginInfo, Sample, series};

    /// Counts the points of each series (by name and labels) through a
    /// `PerSeries`, and records the slots it found.
    #[derive(Default)]
    struct Count {
        counts: PerSeries<u32>,
        slots: Vec<usize>,
    }

    impl Plugin for Count {
        fn info() -> PluginInfo {
            PluginInfo::new("count", "0", "count")
        }
        fn init(_: &Config) -> Result<Self, String> {
            Ok(Count::default())
        }
    }

    impl Metric for Count {
        fn on_samples(&mut self, samples: Vec<Sample>) -> Result<Vec<Sample>, String> {
            PointFeed::default().call(self, samples)
        }
        fn on_points(&mut self, points: Points<'_>, _: &mut CollectOutput) -> Result<(), String> {
            self.counts.start(&points);
            for p in points.iter() {
                let slot = self.counts.slot(&p, || series::key(p.name, p.labels), || 0);
                *self.counts.get_mut(slot) += 1;
                self.slots.push(slot);
            }
            Ok(())
        }
    }

    fn sample(name: &str, symbol: &str) -> Sample {
        Sample::new(name, MetricKind::Gauge, 1.0).with_label("symbol", symbol)
    }

    fn counts(m: &Count) -> Vec<(String, u32)> {
        let all = m.counts.sorted();
        all.into_iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn a_series_keeps_its_slot_across_calls_renumbering_and_dropped_neighbours() {
        let m = &mut Count::default();
        let mut feed = PointFeed::default();
        feed.call(
            m,
            vec![sample("p", "A"), sample("p", "B"), sample("p", "A")],
        )
        .unwrap();
        assert_eq!(m.slots, [0, 1, 0]);
        // The host renumbers: B is now number 0, and keeps its slot.
        feed.renumber();
        feed.call(m, vec![sample("p", "B"), sample("q", "A")])
            .unwrap();
        assert_eq!(m.slots[3..], [1, 2]);
        // A's slot goes: B and q/A move, and are found by key again.
        m.counts.retain(|key, _| !key.contains("p{symbol=\"A\"}"));
        feed.call(m, vec![sample("q", "A"), sample("p", "B")])
            .unwrap();
        assert_eq!(
            counts(m),
            [
                ("p{symbol=\"B\"}".to_string(), 3),
                ("q{symbol=\"A\"}".to_string(), 2)
            ]
        );
        assert_eq!(m.counts.by_key("q{symbol=\"A\"}"), Some(&2));
        m.counts.insert("q{symbol=\"A\"}".to_string(), 7);
        assert_eq!(m.counts.len(), 2, "insert replaces a key's value");
    }
}
