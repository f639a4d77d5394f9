//! The demo's ticker feed, `feed/ticker.jsonl`: per symbol a 24 h ticker with the
//! best bid and ask (Binance `24hrTicker` / `bookTicker` style, 20 fields besides the
//! symbol). Each line is the symbol's whole ticker, but only 2 or 3 fields differ from
//! its previous line: the top of the book moves often, the 24 h statistics less often.
//! Values are kept as integers (price ticks, quantity lots) so that a field that is
//! meant to change always does.

use super::Noise;

/// The fields of a line besides `symbol`, in the order written.
#[cfg(test)]
const FIELDS: [&str; 20] = [
    "bid",
    "bid_qty",
    "ask",
    "ask_qty",
    "last",
    "last_qty",
    "open",
    "high",
    "low",
    "prev_close",
    "change",
    "change_pct",
    "weighted_avg",
    "volume",
    "quote_volume",
    "trades",
    "first_id",
    "last_id",
    "open_time",
    "close_time",
];

/// Quantities are in lots of 0.0001.
const LOT: f64 = 1e-4;
/// A day, ms.
const DAY_MS: i64 = 86_400_000;

/// One symbol's ticker; prices in ticks, quantities in lots.
#[derive(Debug, Clone)]
pub struct Ticker {
    symbol: &'static str,
    /// Price decimals (a tick is `10^-decimals`).
    decimals: usize,
    bid: i64,
    bid_qty: i64,
    ask: i64,
    ask_qty: i64,
    last: i64,
    last_qty: i64,
    open: i64,
    high: i64,
    low: i64,
    prev_close: i64,
    change: i64,
    /// Change in 0.01 %.
    change_pct: i64,
    weighted_avg: i64,
    volume: i64,
    /// In 0.01 of the quote currency.
    quote_volume: i64,
    trades: i64,
    first_id: i64,
    last_id: i64,
    open_time: i64,
    close_time: i64,
}

/// What one line changes.
#[derive(Debug, Clone, Copy)]
enum Move {
    /// `bid`, `bid_qty`.
    Bid,
    /// `ask`, `ask_qty`.
    Ask,
    /// `bid_qty`, `ask_qty`.
    Sizes,
    /// `last`, `last_qty` (or `high`/`low` when the price breaks out), `trades`.
    Trade,
    /// `change`, `change_pct` (a bid move when neither would change).
    Change,
    /// `volume`, `quote_volume`, and `last_id` when trades were counted since.
    Volume,
}

impl Move {
    /// The top of the book moves most often; 24 h statistics less often.
    fn pick(noise: &mut Noise) -> Move {
        match (noise.next() * 100.0) as u32 {
            0..30 => Move::Bid,
            30..60 => Move::Ask,
            60..75 => Move::Sizes,
            75..88 => Move::Trade,
            88..94 => Move::Change,
            _ => Move::Volume,
        }
    }
}

/// A random quantity in lots, different from `old`.
fn new_qty(noise: &mut Noise, old: i64) -> i64 {
    let qty = ((noise.next() * 3.0).powi(3) / LOT) as i64 + 1;
    if qty == old { qty + 1 } else { qty }
}

impl Ticker {
    /// A ticker around `price`, as of `now_ms`.
    pub fn new(symbol: &'static str, price: f64, now_ms: i64, noise: &mut Noise) -> Ticker {
        let decimals = if price < 1.0 { 5 } else { 2 };
        let scale = 10f64.powi(decimals as i32);
        let ticks = |p: f64| (p * scale).round() as i64;
        let mid = ticks(price);
        let spread = (mid / 20_000).max(1);
        let trades = 100_000 + (noise.next() * 900_000.0) as i64;
        let first_id = 1_000_000_000 + (noise.next() * 1e9) as i64;
        let open = ticks(price * (1.0 + (noise.next() - 0.5) * 0.02));
        Ticker {
            symbol,
            decimals,
            bid: mid - spread,
            bid_qty: new_qty(noise, 0),
            ask: mid + spread,
            ask_qty: new_qty(noise, 0),
            last: mid,
            last_qty: new_qty(noise, 0),
            open,
            high: ticks(price * 1.05).max(mid + spread + 1),
            low: ticks(price * 0.95).min(mid - spread - 1),
            prev_close: open - spread,
            change: mid - open,
            change_pct: ((mid - open) as f64 / open as f64 * 10_000.0).round() as i64,
            weighted_avg: ticks(price * 1.001),
            volume: (1_000_000.0 / price.max(0.01) / LOT) as i64,
            quote_volume: 100_000_000,
            trades,
            first_id,
            last_id: first_id + trades - 1,
            open_time: now_ms - DAY_MS,
            close_time: now_ms,
        }
    }

    /// The ticker as one JSON line (with its newline).
    pub fn line(&self) -> String {
        let p = |ticks: i64| format!("{:.*}", self.decimals, ticks as f64 / self.scale());
        let q = |lots: i64| format!("{:.4}", lots as f64 * LOT);
        format!(
            "{{\"symbol\":\"{}\",\"bid\":{},\"bid_qty\":{},\"ask\":{},\"ask_qty\":{},\
             \"last\":{},\"last_qty\":{},\"open\":{},\"high\":{},\"low\":{},\"prev_close\":{},\
             \"change\":{},\"change_pct\":{:.2},\"weighted_avg\":{},\"volume\":{},\
             \"quote_volume\":{:.2},\"trades\":{},\"first_id\":{},\"last_id\":{},\
             \"open_time\":{},\"close_time\":{}}}\n",
            self.symbol,
            p(self.bid),
            q(self.bid_qty),
            p(self.ask),
            q(self.ask_qty),
            p(self.last),
            q(self.last_qty),
            p(self.open),
            p(self.high),
            p(self.low),
            p(self.prev_close),
            p(self.change),
            self.change_pct as f64 / 100.0,
            p(self.weighted_avg),
            q(self.volume),
            self.quote_volume as f64 / 100.0,
            self.trades,
            self.first_id,
            self.last_id,
            self.open_time,
            self.close_time,
        )
    }

    fn scale(&self) -> f64 {
        10f64.powi(self.decimals as i32)
    }

    /// Moves the ticker towards the traded `price`: 2 or 3 fields change.
    pub fn step(&mut self, price: f64, noise: &mut Noise) {
        let target = (price * self.scale()).round() as i64;
        match Move::pick(noise) {
            Move::Bid => self.move_bid(target, noise),
            Move::Ask => {
                let spread = (target / 20_000).max(1);
                let mut ask = (target + spread).max(self.bid + 1);
                if ask == self.ask {
                    ask += 1;
                }
                self.ask = ask;
                self.ask_qty = new_qty(noise, self.ask_qty);
            }
            Move::Sizes => {
                self.bid_qty = new_qty(noise, self.bid_qty);
                self.ask_qty = new_qty(noise, self.ask_qty);
            }
            Move::Trade => {
                // A print between the bid and the ask, never the same as the last.
                let width = self.ask - self.bid + 1;
                let mut last = self.bid + (noise.next() * width as f64) as i64 % width;
                if last == self.last {
                    last = if last < self.ask { last + 1 } else { last - 1 };
                }
                self.last = last;
                if last > self.high {
                    self.high = last;
                } else if last < self.low {
                    self.low = last;
                } else {
                    self.last_qty = new_qty(noise, self.last_qty);
                }
                self.trades += 1;
            }
            Move::Change => {
                let change = self.last - self.open;
                let pct = (change as f64 / self.open as f64 * 10_000.0).round() as i64;
                if change != self.change && pct != self.change_pct {
                    self.change = change;
                    self.change_pct = pct;
                } else {
                    self.move_bid(target, noise);
                }
            }
            Move::Volume => {
                self.volume += self.last_qty;
                let quote = self.last as f64 / self.scale() * self.last_qty as f64 * LOT;
                self.quote_volume += ((quote * 100.0).round() as i64).max(1);
                self.last_id = self.first_id + self.trades - 1;
            }
        }
    }

    fn move_bid(&mut self, target: i64, noise: &mut Noise) {
        let spread = (target / 20_000).max(1);
        let mut bid = (target - spread).min(self.ask - 1);
        if bid == self.bid {
            bid -= 1;
        }
        self.bid = bid;
        self.bid_qty = new_qty(noise, self.bid_qty);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Map, Value};

    fn parse(line: &str) -> Map<String, Value> {
        let v: Value = serde_json::from_str(line).expect(line);
        v.as_object().unwrap().clone()
    }

    #[test]
    fn each_line_is_the_whole_ticker_with_two_or_three_fields_changed() {
        let mut noise = Noise(0x9E37_79B9_7F4A_7C15);
        for (symbol, start) in super::super::SYMBOLS {
            let mut price = start;
            let mut ticker = Ticker::new(symbol, price, 1_700_000_000_000, &mut noise);
            let mut previous = parse(&ticker.line());
            let names: Vec<&str> = previous.keys().map(String::as_str).collect();
            let mut expected: Vec<&str> = FIELDS.to_vec();
            expected.push("symbol");
            expected.sort_unstable();
            assert_eq!(names, expected);
            for i in 0..5_000 {
                // The trades' random walk, far enough to break out of the 24 h range.
                price *= 1.0 + (noise.next() - 0.45) * 0.004;
                ticker.step(price, &mut noise);
                let line = ticker.line();
                let current = parse(&line);
                assert_eq!(current.len(), FIELDS.len() + 1, "{line}");
                let changed: Vec<&String> = current
                    .iter()
                    .filter(|(k, v)| previous.get(*k) != Some(v))
                    .map(|(k, _)| k)
                    .collect();
                assert!(
                    (2..=3).contains(&changed.len()),
                    "{symbol} line {i}: {changed:?} changed in {line}"
                );
                let num = |k: &str| current[k].as_f64().unwrap();
                assert!(num("bid") < num("ask"), "{line}");
                assert!(
                    num("low") <= num("last") && num("last") <= num("high"),
                    "{line}"
                );
                previous = current;
            }
        }
    }
}
