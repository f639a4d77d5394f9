//! # vwap: volume-weighted average price (world `metric`)
//!
//! ## Config
//!
//! | key         | default       | meaning                                         |
//! |-------------|---------------|-------------------------------------------------|
//! | `price`     | `trade_price` | metric name of the price samples                |
//! | `volume`    | `trade_qty`   | metric name of the volume (quantity) samples    |
//! | `output`    | `trade_vwap`  | metric name of the output gauge                 |
//! | `window_ms` | `300000`      | window length in milliseconds, `> 0`            |
//!
//! ## Output
//!
//! Within one `on-samples` batch, a price sample and a volume sample with identical labels
//! (in any order) and identical timestamps form one trade (several trades in the same
//! millisecond pair up in order). Each series (the labels, e.g. `symbol`) keeps its trades
//! of the last `window_ms` (relative to its newest trade) and emits, once per batch in
//! which it got trades, the gauge `<output>{labels}` = `sum(price * volume) / sum(volume)`,
//! stamped with the newest trade's timestamp. On each tick, trades older than
//! `now - window_ms` expire; a series that lost trades re-emits its VWAP stamped `now`, and
//! a series left without trades is forgotten and emits nothing. Unpaired samples are
//! ignored; negative volumes are ignored; a window whose volume is 0 emits nothing.
//!
//! State: the trades in the window of every series.

use std::collections::{BTreeMap, VecDeque};

use wasmeter_sdk::series::{self, is_valid_metric_name};
use wasmeter_sdk::state::{StateReader, StateWriter};
use wasmeter_sdk::{Config, Label, Metric, Plugin, PluginInfo, Sample};

const STATE_SCHEMA: &str = "vwap";

/// One paired trade: timestamp, price * volume, volume.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Trade {
    ts: i64,
    notional: f64,
    volume: f64,
}

/// The trades in the window of one series.
#[derive(Debug, Clone, Default, PartialEq)]
struct Window {
    labels: Vec<Label>,
    trades: VecDeque<Trade>,
}

impl Window {
    /// Drops trades older than `cutoff`; true if any was dropped.
    fn expire(&mut self, cutoff: i64) -> bool {
        let before = self.trades.len();
        while self.trades.front().is_some_and(|t| t.ts < cutoff) {
            self.trades.pop_front();
        }
        self.trades.len() != before
    }

    fn vwap(&self) -> Option<f64> {
        let (notional, volume) = self
            .trades
            .iter()
            .fold((0.0, 0.0), |(n, v), t| (n + t.notional, v + t.volume));
        (volume > 0.0)
            .then(|| notional / volume)
            .filter(|v| v.is_finite())
    }
}

/// The plugin: the names to pair, the window and one window per series.
#[derive(Debug)]
pub struct Vwap {
    price: String,
    volume: String,
    output: String,
    window_ms: i64,
    series: BTreeMap<String, Window>,
}

/// Price and volume samples of one (labels, timestamp) waiting for their partner.
#[derive(Default)]
struct Pending {
    prices: VecDeque<f64>,
    volumes: VecDeque<f64>,
}

impl Vwap {
    fn emit(&self, window: &Window, ts: i64, out: &mut Vec<Sample>) {
        if let Some(v) = window.vwap() {
            out.push(
                Sample::gauge(self.output.clone(), v)
                    .with_labels(window.labels.clone())
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
        let window_ms = config.parse_checked("window_ms", Some(300_000i64), |w| *w > 0, "> 0")?;
        let (price, volume) = (name("price", "trade_price")?, name("volume", "trade_qty")?);
        if price == volume {
            return Err("config `price` and `volume` must differ".to_string());
        }
        Ok(Vwap {
            price,
            volume,
            output: name("output", "trade_vwap")?,
            window_ms,
            series: BTreeMap::new(),
        })
    }

    fn export_state(&self) -> Option<Vec<u8>> {
        let mut w = StateWriter::new(STATE_SCHEMA, 1);
        w.count(self.series.len());
        for s in self.series.values() {
            w.labels(&s.labels).count(s.trades.len());
            for t in &s.trades {
                w.i64(t.ts).f64(t.notional).f64(t.volume);
            }
        }
        Some(w.finish())
    }

    fn import_state(&mut self, state: &[u8]) -> Result<(), String> {
        let mut r = StateReader::new(state, STATE_SCHEMA)?;
        let mut map = BTreeMap::new();
        for _ in 0..r.count()? {
            let mut s = Window {
                labels: r.labels()?,
                trades: VecDeque::new(),
            };
            for _ in 0..r.count()? {
                s.trades.push_back(Trade {
                    ts: r.i64()?,
                    notional: r.f64()?,
                    volume: r.f64()?,
                });
            }
            map.insert(series::key("", &s.labels), s);
        }
        r.finish()?;
        self.series = map;
        Ok(())
    }
}

impl Metric for Vwap {
    fn on_samples(&mut self, samples: Vec<Sample>) -> Result<Vec<Sample>, String> {
        // Pair prices and volumes by (labels, timestamp), in order.
        let mut pending: BTreeMap<(String, i64), Pending> = BTreeMap::new();
        let mut trades: Vec<(String, Vec<Label>, i64, f64, f64)> = Vec::new();
        for sample in samples {
            let is_price = sample.name == self.price;
            if !(is_price || sample.name == self.volume) || !sample.value.is_finite() {
                continue;
            }
            let key = series::key("", &sample.labels);
            let p = pending
                .entry((key.clone(), sample.timestamp_ms))
                .or_default();
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

        // Add the trades to their windows; emit each touched series once.
        let mut touched: BTreeMap<String, i64> = BTreeMap::new();
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
            let window = self.series.entry(key.clone()).or_insert_with(|| Window {
                labels,
                trades: VecDeque::new(),
            });
            let at = at.max(window.trades.back().map_or(i64::MIN, |t| t.ts));
            window.trades.push_back(Trade {
                ts: at,
                notional: price * volume,
                volume,
            });
            window.expire(at - self.window_ms);
            touched.insert(key, ts);
        }
        let mut out = Vec::new();
        for (key, ts) in touched {
            self.emit(&self.series[&key], ts, &mut out);
        }
        Ok(out)
    }

    fn on_tick(&mut self, now_ms: i64) -> Result<Vec<Sample>, String> {
        let cutoff = now_ms - self.window_ms;
        let mut changed = Vec::new();
        self.series.retain(|key, window| {
            if window.expire(cutoff) && !window.trades.is_empty() {
                changed.push(key.clone());
            }
            !window.trades.is_empty()
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
mod tests {
    use super::*;

    fn trade(symbol: &str, price: f64, qty: f64, ts: i64) -> Vec<Sample> {
        vec![
            Sample::gauge("trade_price", price)
                .with_label("symbol", symbol)
                .at(ts),
            Sample::gauge("trade_qty", qty)
                .with_label("symbol", symbol)
                .at(ts),
            Sample::counter("trades_total", 1.0)
                .with_label("symbol", symbol)
                .at(ts),
        ]
    }

    #[test]
    fn pairs_windows_and_ticks() {
        let mut p = Vwap::init(&Config::from_pairs(&[("window_ms", "1000")])).unwrap();
        let mut batch = trade("A", 10.0, 1.0, 1000);
        batch.extend(trade("A", 20.0, 3.0, 1000));
        batch.extend(trade("B", 5.0, 2.0, 1100));
        batch.push(
            Sample::gauge("trade_price", 99.0)
                .with_label("symbol", "A")
                .at(1),
        ); // unpaired
        let out = p.on_samples(batch).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].name, "trade_vwap");
        assert_eq!(out[0].label("symbol"), Some("A"));
        assert_eq!(out[0].value, 17.5);
        assert_eq!(out[1].value, 5.0);
        let out = p.on_samples(trade("A", 30.0, 4.0, 1900)).unwrap();
        assert_eq!(out[0].value, (10.0 + 60.0 + 120.0) / 8.0);
        let out = p.on_tick(2150).unwrap(); // A's 1000 trades and B's only trade expire
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].value, 30.0);
        assert_eq!(out[0].timestamp_ms, 2150);
        assert_eq!(p.series.len(), 1);
        let mut q = Vwap::init(&Config::default()).unwrap();
        q.import_state(&p.export_state().unwrap()).unwrap();
        assert_eq!(q.series, p.series);
    }
}
