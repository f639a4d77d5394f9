//! # vwap: volume-weighted average price (world `metric`)
//!
//! ## Config
//!
//! | key         | default       | meaning                                             |
//! |-------------|---------------|-----------------------------------------------------|
//! | `price`     | `trade_price` | metric name of the price samples                    |
//! | `volume`    | `trade_qty`   | metric name of the volume (quantity) samples        |
//! | `output`    | `trade_vwap`  | metric name of the output gauge                     |
//! | `window_ms` | `300000`      | window length in milliseconds, `> 0`                |
//! | `buckets`   | `60`          | time buckets per window, integer from 1 to 3600     |
//!
//! ## Output
//!
//! Within one `on-samples` batch, a price sample and a volume sample with identical labels
//! (in any order) and identical timestamps form one trade (several trades in the same
//! millisecond pair up in order). Each series (the labels, e.g. `symbol`) keeps the trades
//! of its window and emits, once per batch in which it got trades, the gauge
//! `<output>{labels}` = `sum(price * volume) / sum(volume)` over them, stamped with the
//! newest trade's timestamp. On each tick, the window moves to `now`; a series that lost
//! trades re-emits its VWAP stamped `now`, and a series left without trades is forgotten
//! and emits nothing. Unpaired samples are ignored; negative volumes are ignored; a window
//! whose volume is 0 emits nothing.
//!
//! ## The window, in time buckets
//!
//! Memory does not grow with the trade rate: the time axis is cut into buckets of
//! `width = ceil(window_ms / buckets)` ms (at least 1), aligned on the Unix epoch, and a
//! series keeps only `sum(price * volume)` and `sum(volume)` per bucket. The window of a
//! reference time `t` (the series' newest trade, or `now` on a tick) is `[t - window_ms,
//! t]`, and a bucket leaves it only once all of it is older than `t - window_ms`. So the
//! VWAP covers every trade of the last `window_ms`, plus those of up to `width - 1` ms
//! before (the rest of the oldest bucket): a trade counts for at least `window_ms` and at
//! most `window_ms + width - 1` ms. The old edge moves in steps of one bucket; a series
//! holds at most `buckets + 1` buckets. A trade older than its series' newest is counted
//! at the newest timestamp (windows only move forward). All trades in one bucket give
//! exactly the per-trade result.
//!
//! State (schema `vwap`, version 2): the bucket width, then each series' labels and
//! buckets, O(buckets) per series. Version 1 (the per-trade window of earlier releases)
//! is imported by putting its trades into buckets; a state of another bucket width counts
//! each old bucket as of its last millisecond.

mod state;

use std::collections::{HashMap, VecDeque};

use wasmeter_sdk::series::{self, is_valid_metric_name};
use wasmeter_sdk::window::{Aggregate, BucketSpec, BucketWindow};
use wasmeter_sdk::{Config, Label, Metric, MetricKind, Plugin, PluginInfo, Sample};

/// What a bucket keeps of its trades: the sums of `price * volume` and of `volume`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Sums {
    notional: f64,
    volume: f64,
}

impl Aggregate for Sums {
    fn merge(&mut self, other: &Self) {
        self.notional += other.notional;
        self.volume += other.volume;
    }
}

/// The labels and bucketed window of one series.
#[derive(Debug, Clone, Default, PartialEq)]
struct Series {
    labels: Vec<Label>,
    window: BucketWindow<Sums>,
}

impl Series {
    fn vwap(&self) -> Option<f64> {
        let t = self.window.total()?;
        (t.volume > 0.0)
            .then(|| t.notional / t.volume)
            .filter(|v| v.is_finite())
    }
}

/// The plugin: the names to pair, the window and one window per series.
#[derive(Debug)]
pub struct Vwap {
    price: String,
    volume: String,
    output: String,
    spec: BucketSpec,
    series: HashMap<String, Series>,
}

/// Price and volume samples of one (labels, timestamp) waiting for their partner.
#[derive(Default)]
struct Pending {
    prices: VecDeque<f64>,
    volumes: VecDeque<f64>,
}

impl Vwap {
    fn emit(&self, series: &Series, ts: i64, out: &mut Vec<Sample>) {
        if let Some(v) = series.vwap() {
            out.push(
                Sample::gauge(self.output.clone(), v)
                    .with_labels(series.labels.clone())
                    .at(ts),
            );
        }
    }
}

impl Plugin for Vwap {
    fn info() -> PluginInfo {
        let output = Config::from_host()
            .get_or("output", "trade_vwap")
            .to_string();
        PluginInfo::new(
            "vwap",
            env!("CARGO_PKG_VERSION"),
            "Volume-weighted average price per series over a rolling window",
        )
        .emits([output])
        .stateful(true)
    }

    fn init(config: &Config) -> Result<Self, String> {
        let name = |key: &str, default: &str| -> Result<String, String> {
            let v = config.get_or(key, default).trim();
            if is_valid_metric_name(v) {
                Ok(v.to_string())
            } else {
                Err(format!("config `{key}`: `{v}` is not a valid metric name"))
            }
        };
        let spec = BucketSpec::from_config(config, 300_000)?;
        let (price, volume) = (name("price", "trade_price")?, name("volume", "trade_qty")?);
        if price == volume {
            return Err("config `price` and `volume` must differ".to_string());
        }
        Ok(Vwap {
            price,
            volume,
            output: name("output", "trade_vwap")?,
            spec,
            series: HashMap::new(),
        })
    }

    fn export_state(&self) -> Option<Vec<u8>> {
        Some(state::export(&self.spec, &self.series))
    }

    fn import_state(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.series = state::import(&self.spec, bytes)?;
        Ok(())
    }
}

impl Metric for Vwap {
    fn reads(&self, name: &str, _kind: MetricKind) -> bool {
        name == self.price || name == self.volume
    }

    fn on_samples(&mut self, samples: Vec<Sample>) -> Result<Vec<Sample>, String> {
        // Pair prices and volumes by (labels, timestamp), in order. A pair that
        // comes adjacent (a collector writes a trade's samples together) while
        // nothing of its series and time waits is paired at once: the same pair
        // the queues below would make, without them.
        let mut pending: HashMap<String, Vec<(i64, Pending)>> = HashMap::new();
        let mut trades: Vec<(String, Vec<Label>, i64, f64, f64)> = Vec::new();
        let mut samples = samples
            .into_iter()
            .filter(|s| (s.name == self.price || s.name == self.volume) && s.value.is_finite());
        let mut next = samples.next();
        while let Some(sample) = next.take() {
            let is_price = sample.name == self.price;
            let key = series::key("", &sample.labels);
            next = samples.next();
            let waiting = pending
                .get(&key)
                .is_some_and(|at| at.iter().any(|(ts, _)| *ts == sample.timestamp_ms));
            if !waiting
                && let Some(partner) = next.take_if(|n| {
                    (n.name == self.price) != is_price
                        && n.timestamp_ms == sample.timestamp_ms
                        && n.labels == sample.labels
                })
            {
                let (price, volume) = if is_price {
                    (sample.value, partner.value)
                } else {
                    (partner.value, sample.value)
                };
                trades.push((key, sample.labels, sample.timestamp_ms, price, volume));
                next = samples.next();
                continue;
            }
            let at = match pending.get_mut(&key) {
                Some(at) => at,
                None => pending.entry(key.clone()).or_default(),
            };
            let p = match at.iter().position(|(ts, _)| *ts == sample.timestamp_ms) {
                Some(i) => &mut at[i].1,
                None => {
                    at.push((sample.timestamp_ms, Pending::default()));
                    &mut at.last_mut().expect("just pushed").1
                }
            };
            let (mine, theirs) = if is_price {
                (&mut p.prices, &mut p.volumes)
            } else {
                (&mut p.volumes, &mut p.prices)
            };
            match theirs.pop_front() {
                None => mine.push_back(sample.value),
                Some(other) => {
                    let (price, volume) = if is_price {
                        (sample.value, other)
                    } else {
                        (other, sample.value)
                    };
                    trades.push((key, sample.labels, sample.timestamp_ms, price, volume));
                }
            }
        }

        // Add the trades to their windows; emit each touched series once, in key
        // order, stamped with its newest trade's timestamp.
        let mut touched: Vec<(String, i64)> = Vec::with_capacity(trades.len());
        let now = if trades.iter().any(|t| t.2 <= 0) {
            wasmeter_sdk::now_ms()
        } else {
            0
        };
        for (key, labels, ts, price, volume) in trades {
            if volume < 0.0 {
                continue;
            }
            let at = if ts > 0 { ts } else { now };
            let sums = Sums {
                notional: price * volume,
                volume,
            };
            match self.series.get_mut(&key) {
                Some(series) => {
                    series.window.add(&self.spec, at, sums);
                }
                None => {
                    let mut window = BucketWindow::new();
                    window.add(&self.spec, at, sums);
                    self.series.insert(key.clone(), Series { labels, window });
                }
            }
            touched.push((key, ts));
        }
        // Stable: of a series' entries the last (its newest trade) comes last.
        touched.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out = Vec::new();
        for (i, (key, ts)) in touched.iter().enumerate() {
            if touched.get(i + 1).is_some_and(|(next, _)| next == key) {
                continue;
            }
            self.emit(&self.series[key], *ts, &mut out);
        }
        Ok(out)
    }

    fn on_tick(&mut self, now_ms: i64) -> Result<Vec<Sample>, String> {
        let spec = self.spec;
        let mut changed = Vec::new();
        self.series.retain(|key, series| {
            if series.window.expire(&spec, now_ms) && !series.window.is_empty() {
                changed.push(key.clone());
            }
            !series.window.is_empty()
        });
        let mut out = Vec::new();
        for key in changed {
            self.emit(&self.series[&key], now_ms, &mut out);
        }
        Ok(out)
    }
}

wasmeter_sdk::export_metric!(Vwap);

#[cfg(test)]
mod tests;
