//! The standard output of trade collectors, so that every trade source (CSV, JSON lines,
//! an exchange feed) produces the same topics, fields, samples and state.
//!
//! For each trade of `symbol`, [`TradeBook::record`] emits:
//!
//! * the fields of topic `<prefix>/<symbol>`: `price`, `qty`, `ts`, `count` (running
//!   number of trades of the symbol), `volume` (running sum of `qty`) and any extra
//!   fields, set in the output's update of that topic ([`CollectOutput::update`]: a
//!   call's trades of one symbol make one update, the latest trade's values);
//! * samples labelled `symbol="<symbol>"`, stamped with the trade's `ts` (0 = host time):
//!   `trade_price` (gauge), `trade_qty` (gauge), `trades_total` (counter, the running
//!   count) and `trade_volume_total` (counter, the running volume);
//! * with a tape ([`TradeBook::from_config`], key `tape_prefix`), an event of the stream
//!   topic `<tape_prefix>/<symbol>` with fields `price`, `qty`, `ts`, `trade` (the
//!   trade's number for the symbol) and any extra fields: every trade, none merged.
//!
//! The running totals are the collector's state ([`TradeBook::export_state`]); the state is
//! the same for every trade collector, so a CSV collector can be swapped for a JSON one.
//! The `parse_*` functions validate raw values with messages that name the column and the
//! bad value, e.g. ``price: `abc` is not a number``.

use crate::series::is_valid_topic;
use crate::state::{StateReader, StateWriter};
use crate::str_map::{StrMap, same_bytes};
use crate::{CollectOutput, Config, Field, FieldValue, MetricKind, SeriesId, StreamEvent};

/// Field names the trade output uses itself; extra fields may not use them.
pub const RESERVED_FIELDS: [&str; 5] = ["price", "qty", "ts", "count", "volume"];

/// The metric names every trade collector emits.
pub const METRICS: [&str; 4] = [
    "trade_price",
    "trade_qty",
    "trades_total",
    "trade_volume_total",
];

/// The kind of each of [`METRICS`].
const METRIC_KINDS: [MetricKind; 4] = [
    MetricKind::Gauge,
    MetricKind::Gauge,
    MetricKind::Counter,
    MetricKind::Counter,
];

const STATE_SCHEMA: &str = "trades";
const STATE_VERSION: u32 = 1;

/// One validated trade.
#[derive(Debug, Clone, PartialEq)]
pub struct Trade {
    /// Instrument, e.g. `BTC-USD`; a valid topic segment (see [`parse_symbol`]).
    pub symbol: String,
    /// Finite price.
    pub price: f64,
    /// Finite, non-negative quantity.
    pub qty: f64,
    /// Unix ms; 0 means "now" (the host stamps the samples).
    pub ts: i64,
    /// More fields copied into the topic update.
    pub extra: Vec<Field>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Totals {
    count: u64,
    volume: f64,
    /// The symbol's series, in the order of [`METRICS`].
    series: [SeriesId; 4],
}

impl Totals {
    fn new(symbol: &str, count: u64, volume: f64) -> Self {
        let labels = [("symbol", symbol)];
        Totals {
            count,
            volume,
            series: std::array::from_fn(|i| {
                CollectOutput::series(METRIC_KINDS[i], METRICS[i], &labels)
            }),
        }
    }
}

/// Running per-symbol totals and the standard trade output; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct TradeBook {
    prefix: String,
    tape: Option<String>,
    totals: StrMap<Totals>,
    /// The topic of the trade being recorded (a buffer reused for every trade).
    topic: String,
}

fn topic_prefix(key: &str, value: &str) -> Result<String, String> {
    let prefix = value.trim().trim_end_matches('/');
    if !is_valid_topic(prefix) {
        return Err(format!(
            "config `{key}`: `{value}` is not a valid topic \
             (`/`-separated segments of [A-Za-z0-9_.:-])"
        ));
    }
    Ok(prefix.to_string())
}

impl TradeBook {
    /// A book publishing topics under `topic_prefix` (a valid topic such as `trades`).
    pub fn new(topic_prefix: &str) -> Result<Self, String> {
        Ok(TradeBook {
            prefix: self::topic_prefix("topic_prefix", topic_prefix)?,
            tape: None,
            totals: StrMap::default(),
            topic: String::new(),
        })
    }

    /// A book configured by the collector's keys `topic_prefix` (default `trades`)
    /// and `tape_prefix` (no tape unless given): with a tape, every trade is also
    /// an event of the stream topic `<tape_prefix>/<symbol>`.
    pub fn from_config(config: &Config) -> Result<Self, String> {
        let mut book = TradeBook::new(config.get_or("topic_prefix", "trades"))?;
        if let Some(tape) = config.get("tape_prefix") {
            let tape = self::topic_prefix("tape_prefix", tape)?;
            if tape == book.prefix {
                return Err(format!(
                    "config `tape_prefix`: `{tape}` is also the `topic_prefix`; a topic is \
                     either a stream of trades or the latest trade, not both"
                ));
            }
            book.tape = Some(tape);
        }
        Ok(book)
    }

    /// The metric names and topic patterns of this book, for `PluginInfo::emits`.
    pub fn emits(&self) -> Vec<String> {
        let mut emits: Vec<String> = METRICS.iter().map(|m| m.to_string()).collect();
        emits.push(format!("{}/*", self.prefix));
        if let Some(tape) = &self.tape {
            emits.push(format!("{tape}/*"));
        }
        emits
    }

    /// Counts `trade`, sets its topic's fields in `out` and appends its samples.
    pub fn record(&mut self, trade: Trade, out: &mut CollectOutput) {
        // One look-up for a known symbol; the symbol is cloned only when new.
        let Totals {
            count,
            volume,
            series,
        } = match self.totals.get_mut(&trade.symbol) {
            Some(totals) => {
                totals.count += 1;
                totals.volume += trade.qty;
                *totals
            }
            None => {
                let totals = Totals::new(&trade.symbol, 1, trade.qty);
                self.totals.insert(trade.symbol.clone(), totals);
                totals
            }
        };

        let field_ts = if trade.ts > 0 {
            trade.ts
        } else {
            crate::now_ms()
        };
        if let Some(tape) = &self.tape {
            let mut event = StreamEvent::new(join_topic(tape, &trade.symbol))
                .field("price", trade.price)
                .field("qty", trade.qty)
                .field("ts", field_ts as f64)
                .field("trade", count as f64);
            event.fields.extend(trade.extra.iter().cloned());
            out.events.push(event);
        }
        // The call's trades of one symbol merge into one update (see
        // `CollectOutput::update`); the topic is written into a reused buffer.
        self.topic.clear();
        push_topic(&mut self.topic, &self.prefix, &trade.symbol);
        let update = out.update(&self.topic);
        let values = [
            ("price", trade.price),
            ("qty", trade.qty),
            ("ts", field_ts as f64),
            ("count", count as f64),
            ("volume", volume),
        ];
        // A merged update has these fields first, in this order: one comparison each.
        for (at, (name, value)) in values.into_iter().enumerate() {
            match update.fields.get_mut(at) {
                Some(field) if same_bytes(field.name.as_bytes(), name.as_bytes()) => {
                    field.value = FieldValue::Number(value)
                }
                _ => {
                    update.set(name, value);
                }
            }
        }
        for extra in trade.extra {
            let name = extra.name.as_bytes();
            match update
                .fields
                .iter_mut()
                .find(|f| same_bytes(f.name.as_bytes(), name))
            {
                Some(field) => field.value = extra.value,
                None => update.fields.push(extra),
            }
        }

        // The symbol's registered series: no name or label copied or looked up.
        let values = [trade.price, trade.qty, count as f64, volume];
        for (series, value) in series.into_iter().zip(values) {
            out.point(series, value, trade.ts);
        }
    }

    /// Running `(count, volume)` of `symbol`.
    pub fn totals(&self, symbol: &str) -> Option<(u64, f64)> {
        self.totals.get(symbol).map(|t| (t.count, t.volume))
    }

    /// The running totals, encoded with [`state`](crate::state) (schema `trades`, v1).
    pub fn export_state(&self) -> Vec<u8> {
        let mut w = StateWriter::new(STATE_SCHEMA, STATE_VERSION);
        // In symbol order: the same totals always make the same bytes.
        let mut totals: Vec<_> = self.totals.iter().collect();
        totals.sort_unstable_by(|a, b| a.0.cmp(b.0));
        w.count(totals.len());
        for (symbol, t) in totals {
            w.str(symbol).u64(t.count).f64(t.volume);
        }
        w.finish()
    }

    /// Replaces the running totals with those of `state`.
    pub fn import_state(&mut self, state: &[u8]) -> Result<(), String> {
        let mut r = StateReader::new(state, STATE_SCHEMA)?;
        if r.version() > STATE_VERSION {
            return Err(format!(
                "state: trades v{} is newer than this plugin (v{STATE_VERSION})",
                r.version()
            ));
        }
        let mut totals = StrMap::default();
        for _ in 0..r.count()? {
            let symbol = r.str()?;
            let count = r.u64()?;
            let volume = r.f64()?;
            totals.insert(symbol.clone(), Totals::new(&symbol, count, volume));
        }
        r.finish()?;
        self.totals = totals;
        Ok(())
    }
}

/// `prefix/symbol`, without the formatting machinery (one per trade).
fn join_topic(prefix: &str, symbol: &str) -> String {
    let mut topic = String::with_capacity(prefix.len() + 1 + symbol.len());
    push_topic(&mut topic, prefix, symbol);
    topic
}

/// Appends `prefix/symbol` to `topic`.
fn push_topic(topic: &mut String, prefix: &str, symbol: &str) {
    topic.push_str(prefix);
    topic.push('/');
    topic.push_str(symbol);
}

/// Checks a symbol: non-empty and a valid topic segment (`[A-Za-z0-9_.:-]+`).
pub fn parse_symbol(what: &str, text: &str) -> Result<String, String> {
    let symbol = crate::lines::trim(text);
    if symbol.is_empty() {
        return Err(format!("{what}: empty (a symbol is required)"));
    }
    if !crate::series::is_valid_topic_segment(symbol) {
        return Err(format!(
            "{what}: `{symbol}` may only contain letters, digits and `_.:-`"
        ));
    }
    Ok(symbol.to_string())
}

/// Parses a finite number: ``price: `abc` is not a number``.
pub fn parse_number(what: &str, text: &str) -> Result<f64, String> {
    let t = crate::lines::trim(text);
    match t.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(_) => Err(format!("{what}: `{t}` is not a finite number")),
        Err(_) => Err(format!("{what}: `{t}` is not a number")),
    }
}

/// Parses a finite, non-negative quantity.
pub fn parse_qty(what: &str, text: &str) -> Result<f64, String> {
    let qty = parse_number(what, text)?;
    if qty < 0.0 {
        Err(format!(
            "{what}: `{}` is negative",
            crate::lines::trim(text)
        ))
    } else {
        Ok(qty)
    }
}

/// Parses a timestamp in Unix ms; empty means 0 (stamped by the host).
pub fn parse_ts(what: &str, text: &str) -> Result<i64, String> {
    let t = crate::lines::trim(text);
    if t.is_empty() {
        return Ok(0);
    }
    match t.parse::<i64>() {
        Ok(v) if v >= 0 => Ok(v),
        Ok(_) => Err(format!("{what}: `{t}` is negative")),
        Err(_) => Err(format!("{what}: `{t}` is not an integer (Unix ms)")),
    }
}

/// An extra field: a number if `text` parses as a finite number, else text.
pub fn extra_field(name: &str, text: &str) -> Field {
    let t = crate::lines::trim(text);
    let value = match t.parse::<f64>() {
        Ok(v) if v.is_finite() => FieldValue::Number(v),
        _ => FieldValue::Text(t.to_string()),
    };
    Field::new(name, value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trade(symbol: &str, qty: f64) -> Trade {
        Trade {
            symbol: symbol.into(),
            price: 10.0,
            qty,
            ts: 5,
            extra: vec![],
        }
    }

    #[test]
    fn totals_output_and_state() {
        let mut book = TradeBook::new("trades").unwrap();
        let mut out = CollectOutput::new();
        book.record(trade("A", 1.5), &mut out);
        book.record(trade("A", 2.0), &mut out);
        assert_eq!(book.totals("A"), Some((2, 3.5)));
        // One update per topic and call, with the later trade's values.
        assert_eq!(out.updates.len(), 1);
        assert_eq!(out.updates[0].topic, "trades/A");
        let count = out.updates[0].fields.iter().find(|f| f.name == "count");
        assert_eq!(count.unwrap().value, FieldValue::Number(2.0));
        let samples = out.all_samples();
        assert_eq!(samples.len(), 8);
        assert_eq!(samples[7].name, "trade_volume_total");
        assert_eq!(samples[7].value, 3.5);
        assert_eq!(samples[7].timestamp_ms, 5);
        assert_eq!(samples[7].label("symbol"), Some("A"));

        for symbol in ["D", "B", "C"] {
            book.record(trade(symbol, 1.0), &mut out);
        }
        let mut other = TradeBook::new("x").unwrap();
        other.import_state(&book.export_state()).unwrap();
        assert_eq!(other.totals("A"), Some((2, 3.5)));
        // The state's bytes follow the totals alone, in symbol order.
        assert_eq!(other.export_state(), book.export_state());
        let state = book.export_state();
        let mut r = StateReader::new(&state, STATE_SCHEMA).unwrap();
        let mut symbols = Vec::new();
        for _ in 0..r.count().unwrap() {
            symbols.push(r.str().unwrap());
            r.u64().unwrap();
            r.f64().unwrap();
        }
        assert_eq!(symbols, ["A", "B", "C", "D"]);
        assert!(TradeBook::new("bad topic").is_err());
    }

    #[test]
    fn a_tape_gets_every_trade_as_an_event() {
        let config = Config::from_pairs(&[("tape_prefix", "tape/")]);
        let mut book = TradeBook::from_config(&config).unwrap();
        assert_eq!(book.emits().last().unwrap(), "tape/*");
        let mut out = CollectOutput::new();
        book.record(trade("A", 1.5), &mut out);
        book.record(trade("A", 2.0), &mut out);
        assert_eq!(out.events.len(), 2);
        assert_eq!(out.events[1].topic, "tape/A");
        let names: Vec<_> = out.events[1]
            .fields
            .iter()
            .map(|f| f.name.as_str())
            .collect();
        assert_eq!(names, ["price", "qty", "ts", "trade"]);
        assert_eq!(out.events[1].fields[3].value, FieldValue::Number(2.0));

        let untaped = TradeBook::from_config(&Config::from_pairs(&[])).unwrap();
        assert!(!untaped.emits().iter().any(|e| e.starts_with("tape")));
        let same = Config::from_pairs(&[("topic_prefix", "t"), ("tape_prefix", "t")]);
        assert!(
            TradeBook::from_config(&same)
                .unwrap_err()
                .contains("`tape_prefix`")
        );
        let bad = Config::from_pairs(&[("tape_prefix", "a b")]);
        assert!(
            TradeBook::from_config(&bad)
                .unwrap_err()
                .contains("`tape_prefix`")
        );
    }

    #[test]
    fn messages_name_column_and_value() {
        assert_eq!(
            parse_number("price", "abc").unwrap_err(),
            "price: `abc` is not a number"
        );
        assert!(parse_number("price", "inf").is_err());
        assert!(parse_qty("qty", "-1").is_err());
        assert_eq!(parse_ts("ts", "").unwrap(), 0);
        assert!(parse_ts("ts", "1.5").unwrap_err().contains("`1.5`"));
        assert!(parse_symbol("symbol", " ").is_err());
        assert!(parse_symbol("symbol", "BTC USD").is_err());
        assert_eq!(
            extra_field("side", "buy").value,
            FieldValue::Text("buy".into())
        );
    }
}
