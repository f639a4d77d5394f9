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
use wasmeter_sdk::{
    CollectOutput, Config, InputPoint, Label, Metric, MetricKind, PerSeries, Plugin, PluginInfo,
    PointFeed, Points, Sample, SeriesId,
};

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

/// A series and what a call does with it: the registered output series, and
/// the call that last traded it with its newest trade's timestamp.
#[derive(Debug)]
struct Slot {
    series: Series,
    output: Option<SeriesId>,
    traded_in: u64,
    newest: i64,
}

impl Slot {
    fn new(series: Series) -> Self {
        Slot {
            series,
            output: None,
            traded_in: 0,
            newest: 0,
        }
    }
}

/// What an input series (by the host's number) carries.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Role {
    /// Not met since the host last numbered its series.
    Unknown,
    Price,
    Volume,
}

/// The plugin: the names to pair, the window, every series (by its labels) and
/// what each input series carries.
#[derive(Debug)]
pub struct Vwap {
    price: String,
    volume: String,
    output: String,
    spec: BucketSpec,
    slots: PerSeries<Slot>,
    roles: Vec<Role>,
    calls: u64,
}

/// Price and volume samples of one (series, timestamp) waiting for their partner.
#[derive(Default)]
struct Pending {
    prices: VecDeque<f64>,
    volumes: VecDeque<f64>,
}

impl Vwap {
    /// The input series of `p`: whether it carries prices, and its slot, looked
    /// up by its labels the first time only.
    fn input(&mut self, p: &InputPoint<'_>) -> (bool, u32) {
        let at = p.series as usize;
        if at >= self.roles.len() {
            self.roles.resize(at + 1, Role::Unknown);
        }
        let is_price = match self.roles[at] {
            Role::Price => true,
            Role::Volume => false,
            Role::Unknown => {
                let is_price = p.name == self.price;
                self.roles[at] = if is_price { Role::Price } else { Role::Volume };
                is_price
            }
        };
        let slot = self.slots.slot(
            p,
            || series::key("", p.labels),
            || {
                Slot::new(Series {
                    labels: p.labels.to_vec(),
                    window: BucketWindow::new(),
                })
            },
        );
        (is_price, slot as u32)
    }

    fn emit(&mut self, slot: u32, ts: i64, out: &mut CollectOutput) {
        let slot = self.slots.get_mut(slot as usize);
        let Some(v) = slot.series.vwap() else {
            return;
        };
        let output = &self.output;
        let labels = &slot.series.labels;
        let id = *slot.output.get_or_insert_with(|| {
            CollectOutput::series_labelled(MetricKind::Gauge, output, labels)
        });
        out.point(id, v, ts);
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
            slots: PerSeries::new(),
            roles: Vec::new(),
            calls: 0,
        })
    }

    fn export_state(&self) -> Option<Vec<u8>> {
        let all: Vec<(&str, &Series)> = self
            .slots
            .sorted()
            .into_iter()
            .map(|(key, slot)| (key, &slot.series))
            .filter(|(_, s)| !s.window.is_empty())
            .collect();
        Some(state::export(&self.spec, &all))
    }

    fn import_state(&mut self, bytes: &[u8]) -> Result<(), String> {
        let mut slots = PerSeries::new();
        for (key, series) in state::import(&self.spec, bytes)? {
            slots.insert(key, Slot::new(series));
        }
        self.slots = slots;
        Ok(())
    }
}

impl Metric for Vwap {
    fn reads(&self, name: &str, _kind: MetricKind) -> bool {
        name == self.price || name == self.volume
    }

    fn on_samples(&mut self, samples: Vec<Sample>) -> Result<Vec<Sample>, String> {
        PointFeed::default().call(self, samples)
    }

    fn on_points(&mut self, points: Points<'_>, out: &mut CollectOutput) -> Result<(), String> {
        self.slots.start(&points);
        if points.renumbered() {
            self.roles.clear();
        }
        // Pair prices and volumes by (series, timestamp), in order. A pair that
        // comes adjacent (a collector writes a trade's samples together) while
        // nothing of its series and time waits is paired at once: the same pair
        // the queues below would make, without them.
        let mut pending: HashMap<(u32, i64), Pending> = HashMap::new();
        let mut trades: Vec<(u32, i64, f64, f64)> = Vec::new();
        let mut points = points.iter().filter(|p| p.value.is_finite());
        let mut next = points.next();
        while let Some(point) = next.take() {
            let (is_price, slot) = self.input(&point);
            let ts = point.timestamp_ms;
            next = points.next();
            let waiting = !pending.is_empty() && pending.contains_key(&(slot, ts));
            if !waiting && let Some(partner) = next {
                let (partner_is_price, partner_slot) = self.input(&partner);
                if partner_is_price != is_price
                    && partner_slot == slot
                    && partner.timestamp_ms == ts
                {
                    let (price, volume) = if is_price {
                        (point.value, partner.value)
                    } else {
                        (partner.value, point.value)
                    };
                    trades.push((slot, ts, price, volume));
                    next = points.next();
                    continue;
                }
            }
            let p = pending.entry((slot, ts)).or_default();
            let (mine, theirs) = if is_price {
                (&mut p.prices, &mut p.volumes)
            } else {
                (&mut p.volumes, &mut p.prices)
            };
            match theirs.pop_front() {
                None => mine.push_back(point.value),
                Some(other) => {
                    let (price, volume) = if is_price {
                        (point.value, other)
                    } else {
                        (other, point.value)
                    };
                    trades.push((slot, ts, price, volume));
                }
            }
        }

        // Add the trades to their windows; emit each traded series once, in the
        // order of their first trades, stamped with its newest trade's timestamp.
        self.calls += 1;
        let call = self.calls;
        let now = if trades.iter().any(|t| t.1 <= 0) {
            wasmeter_sdk::now_ms()
        } else {
            0
        };
        let mut traded: Vec<u32> = Vec::with_capacity(trades.len());
        for (slot, ts, price, volume) in trades {
            if volume < 0.0 {
                continue;
            }
            let at = if ts > 0 { ts } else { now };
            let sums = Sums {
                notional: price * volume,
                volume,
            };
            let s = self.slots.get_mut(slot as usize);
            s.series.window.add(&self.spec, at, sums);
            if s.traded_in != call {
                s.traded_in = call;
                traded.push(slot);
            }
            s.newest = ts;
        }
        for slot in traded {
            let ts = self.slots.get(slot as usize).newest;
            self.emit(slot, ts, out);
        }
        Ok(())
    }

    fn on_tick(&mut self, now_ms: i64) -> Result<Vec<Sample>, String> {
        let (spec, output) = (self.spec, &self.output);
        let mut out = Vec::new();
        // Series left without trades go (and with them any series made for an
        // input that never traded).
        self.slots.retain(|_, slot| {
            let series = &mut slot.series;
            if series.window.expire(&spec, now_ms)
                && !series.window.is_empty()
                && let Some(v) = series.vwap()
            {
                out.push(
                    Sample::gauge(output.clone(), v)
                        .with_labels(series.labels.clone())
                        .at(now_ms),
                );
            }
            !series.window.is_empty()
        });
        Ok(out)
    }
}

wasmeter_sdk::export_metric!(Vwap);

#[cfg(test)]
mod tests;
