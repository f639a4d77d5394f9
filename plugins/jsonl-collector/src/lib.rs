//! # jsonl-collector: trades (or latest states) from JSON lines (world `collector`)
//!
//! Each line is one JSON object describing a trade, e.g. a Binance trade event
//! `{"s":"BTCUSDT","p":"64000.10","q":"0.5","T":1700000000000}` or a plain
//! `{"symbol":"BTC-USD","price":64000.1,"qty":0.5,"ts":1700000000000}`. Blank lines are
//! skipped. With `mode = "latest"` each line is instead the whole current state of one
//! key (a 24 h ticker, an order-book top): see [Latest states](#latest-states).
//!
//! ## Config
//!
//! | key             | default  | meaning                                                   |
//! |-----------------|----------|-----------------------------------------------------------|
//! | `mode`          | `trades` | `trades`, or `latest` (each line is the latest state of its key) |
//! | `field.symbol`  | `symbol` | JSON key of the symbol (string, or number)                |
//! | `field.price`   | `price`  | JSON key of the price (number or numeric string)          |
//! | `field.qty`     | `qty`    | JSON key of the quantity (number or numeric string)       |
//! | `field.ts`      | `ts`     | JSON key of the Unix-ms timestamp; missing/null means 0   |
//! | `extra_fields`  | (none)   | comma list of more JSON keys copied into the topic update |
//! | `topic_prefix`  | `trades` | topics are `<topic_prefix>/<symbol>`                      |
//! | `tape_prefix`   | (none)   | if set, every trade is also an event of the stream topic `<tape_prefix>/<symbol>` (fields `price`, `qty`, `ts`, `trade` = its number for the symbol, extras) |
//!
//! Keys are dotted paths into nested objects (`data.p` reads `{"data":{"p":..}}`); a key
//! that literally contains a dot is found too. Extra fields keep their JSON type (number,
//! text, flag; objects and arrays as JSON text) and are named by their key.
//!
//! ## Latest states
//!
//! With `mode = "latest"`, a line such as `{"symbol":"BTC-USD","bid":64000.1,"ask":64000.3,
//! "volume":1234.5,...}` sets the fields of topic `<topic_prefix>/<symbol>` to its values
//! (keeping their JSON types, as extra fields do): every key but `field.symbol`, or only
//! those listed in `fields` (comma list, dotted paths allowed). There are no running
//! totals, samples or stream events, and the keys `field.price`, `field.qty`,
//! `field.ts`, `extra_fields` and `tape_prefix` are refused. With a delta plugin,
//! subscribers get only the fields that changed since the key's previous line.
//!
//! ## Output
//!
//! In `trades` mode, exactly that of `csv-collector` (see `wasmeter_sdk::trades`): topic `<prefix>/<symbol>`
//! with `price`, `qty`, `ts`, `count`, `volume` and the extra fields; samples
//! `trade_price`, `trade_qty` (gauges), `trades_total`, `trade_volume_total` (counters)
//! labelled `symbol`; the same state (schema `trades`).
//!
//! Record errors: ``invalid JSON: <serde's message>``, ``price: `p` is missing``,
//! ``price (`p`): `abc` is not a number``.

mod latest;

use serde_json::Value;
use wasmeter_sdk::trades::{self, Trade, TradeBook};
use wasmeter_sdk::{
    CollectOutput, Collector, Config, Field, FieldValue, Plugin, PluginInfo, lines,
};

/// The JSON keys of each value.
#[derive(Debug, Clone)]
struct Mapping {
    symbol: String,
    price: String,
    qty: String,
    ts: String,
    extra: Vec<String>,
}

impl Mapping {
    fn from_config(config: &Config) -> Result<Mapping, String> {
        let key = |name: &str, default: &str| -> Result<String, String> {
            let config_key = format!("field.{name}");
            let v = config.get_or(&config_key, default).trim();
            if v.is_empty() {
                return Err(format!("config `{config_key}`: must not be empty"));
            }
            Ok(v.to_string())
        };
        let extra = config.list("extra_fields").unwrap_or_default();
        for name in &extra {
            if trades::RESERVED_FIELDS.contains(&name.as_str()) {
                return Err(format!("config `extra_fields`: `{name}` is reserved"));
            }
        }
        Ok(Mapping {
            symbol: key("symbol", "symbol")?,
            price: key("price", "price")?,
            qty: key("qty", "qty")?,
            ts: key("ts", "ts")?,
            extra,
        })
    }

    /// Parses one line into a trade; errors name the JSON key and the value.
    fn parse(&self, text: &str) -> Result<Trade, String> {
        let record: Value = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
        if !record.is_object() {
            return Err(format!(
                "expected a JSON object, found {}",
                type_name(&record)
            ));
        }
        let required = |what: &str, key: &str| {
            lookup(&record, key).ok_or_else(|| format!("{what}: `{key}` is missing"))
        };
        let symbol = match required("symbol", &self.symbol)? {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            other => {
                return Err(format!(
                    "symbol (`{}`): expected a string, found {}",
                    self.symbol,
                    type_name(other)
                ));
            }
        };
        let symbol = trades::parse_symbol(&format!("symbol (`{}`)", self.symbol), &symbol)?;
        let price = number("price", &self.price, required("price", &self.price)?)?;
        let qty = number("qty", &self.qty, required("qty", &self.qty)?)?;
        if qty < 0.0 {
            return Err(format!("qty (`{}`): `{qty}` is negative", self.qty));
        }
        let ts = match lookup(&record, &self.ts) {
            None => 0,
            Some(v) => timestamp(&self.ts, v)?,
        };
        let extra = self
            .extra
            .iter()
            .filter_map(|key| {
                lookup(&record, key).map(|v| Field::new(key.as_str(), field_value(v)))
            })
            .collect();
        Ok(Trade {
            symbol,
            price,
            qty,
            ts,
            extra,
        })
    }
}

/// The value at `key`: a literal key first, else a dotted path. `null` counts as missing.
fn lookup<'a>(record: &'a Value, key: &str) -> Option<&'a Value> {
    let found = match record.get(key) {
        Some(v) => Some(v),
        None => key
            .split('.')
            .try_fold(record, |value, segment| value.get(segment)),
    };
    found.filter(|v| !v.is_null())
}

/// A JSON number or numeric string as a finite number.
fn number(what: &str, key: &str, value: &Value) -> Result<f64, String> {
    let what = format!("{what} (`{key}`)");
    match value {
        Value::Number(n) => match n.as_f64() {
            Some(v) if v.is_finite() => Ok(v),
            _ => Err(format!("{what}: `{n}` is not a finite number")),
        },
        Value::String(s) => trades::parse_number(&what, s),
        other => Err(format!("{what}: `{other}` is not a number")),
    }
}

/// A Unix-ms timestamp: an integer (or integral float) number, or an integer string.
fn timestamp(key: &str, value: &Value) -> Result<i64, String> {
    let what = format!("ts (`{key}`)");
    match value {
        Value::Number(n) => {
            let ts = match (n.as_i64(), n.as_f64()) {
                (Some(i), _) => Some(i),
                (None, Some(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => Some(f as i64),
                _ => None,
            };
            match ts {
                Some(ts) if ts >= 0 => Ok(ts),
                Some(_) => Err(format!("{what}: `{n}` is negative")),
                None => Err(format!("{what}: `{n}` is not an integer (Unix ms)")),
            }
        }
        Value::String(s) => trades::parse_ts(&what, s),
        other => Err(format!("{what}: `{other}` is not an integer (Unix ms)")),
    }
}

/// An extra field's value, keeping the JSON type.
fn field_value(value: &Value) -> FieldValue {
    match value {
        Value::Number(n) => match n.as_f64() {
            Some(v) if v.is_finite() => FieldValue::Number(v),
            _ => FieldValue::Text(n.to_string()),
        },
        Value::String(s) => FieldValue::Text(s.clone()),
        Value::Bool(b) => FieldValue::Flag(*b),
        other => FieldValue::Text(other.to_string()),
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `topic_prefix` (default `trades`), checked to be a valid topic.
fn topic_prefix(config: &Config) -> Result<String, String> {
    let value = config.get_or("topic_prefix", "trades");
    let prefix = value.trim().trim_end_matches('/');
    if !wasmeter_sdk::series::is_valid_topic(prefix) {
        return Err(format!(
            "config `topic_prefix`: `{value}` is not a valid topic \
             (`/`-separated segments of [A-Za-z0-9_.:-])"
        ));
    }
    Ok(prefix.to_string())
}

/// What a line is: a trade, or the latest state of its key.
enum Mode {
    /// A key mapping and the running per-symbol totals.
    Trades { mapping: Mapping, book: TradeBook },
    /// The whole current state of one key.
    Latest(latest::Latest),
}

impl Mode {
    fn from_config(config: &Config) -> Result<Mode, String> {
        match config.get_or("mode", "trades").trim() {
            "trades" => Ok(Mode::Trades {
                mapping: Mapping::from_config(config)?,
                book: TradeBook::from_config(config)?,
            }),
            "latest" => Ok(Mode::Latest(latest::Latest::from_config(config)?)),
            other => Err(format!(
                "config `mode`: `{other}` must be `trades` or `latest`"
            )),
        }
    }

    fn emits(&self) -> Vec<String> {
        match self {
            Mode::Trades { book, .. } => book.emits(),
            Mode::Latest(latest) => latest.emits(),
        }
    }
}

/// The collector: trades (a key mapping and the running per-symbol totals), or
/// latest states.
pub struct JsonlCollector {
    mode: Mode,
}

impl Plugin for JsonlCollector {
    fn info() -> PluginInfo {
        let config = Config::from_host();
        let mode = Mode::from_config(&config);
        let emits = mode.as_ref().map(|m| m.emits()).unwrap_or_default();
        let stateful = !matches!(mode, Ok(Mode::Latest(_)));
        PluginInfo::new(
            "jsonl-collector",
            env!("CARGO_PKG_VERSION"),
            "Trades or latest states from JSON lines (one object per line, configurable keys)",
        )
        .emits(emits)
        .stateful(stateful)
    }

    fn init(config: &Config) -> Result<Self, String> {
        Ok(JsonlCollector {
            mode: Mode::from_config(config)?,
        })
    }

    fn export_state(&self) -> Option<Vec<u8>> {
        match &self.mode {
            Mode::Trades { book, .. } => Some(book.export_state()),
            Mode::Latest(_) => None,
        }
    }

    fn import_state(&mut self, state: &[u8]) -> Result<(), String> {
        match &mut self.mode {
            Mode::Trades { book, .. } => book.import_state(state),
            // Latest states are whole in every line: nothing to carry over (a
            // trades collector's totals, on a switch of mode, no longer apply).
            Mode::Latest(_) => Ok(()),
        }
    }
}

impl Collector for JsonlCollector {
    fn collect(&mut self, _source: &str, chunk: &[u8]) -> Result<CollectOutput, String> {
        let mut out = CollectOutput::new();
        match &mut self.mode {
            Mode::Trades { mapping, book } => lines::for_each(chunk, &mut out, |line, out| {
                if line.is_blank() {
                    return Ok(());
                }
                let trade = mapping.parse(line.text)?;
                book.record(trade, out);
                Ok(())
            }),
            Mode::Latest(latest) => latest.collect(chunk, &mut out),
        }
        Ok(out)
    }
}

wasmeter_sdk::export_collector!(JsonlCollector);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binance_style_nested_and_errors() {
        let config = Config::from_pairs(&[
            ("field.symbol", "data.s"),
            ("field.price", "data.p"),
            ("field.qty", "data.q"),
            ("field.ts", "data.T"),
            ("extra_fields", "data.m, stream"),
        ]);
        let mut c = JsonlCollector::init(&config).unwrap();
        let chunk = concat!(
            r#"{"stream":"btcusdt@trade","data":{"s":"BTCUSDT","p":"64000.10","q":"0.5","T":1700000000000,"m":true}}"#,
            "\n",
            "{not json\n",
            r#"{"data":{"s":"BTCUSDT","q":"1"}}"#,
            "\n",
            r#"{"data":{"s":"BTCUSDT","p":"x","q":"1"}}"#,
            "\n",
            "\n",
            r#"{"data":{"s":"BTCUSDT","p":64001,"q":1.5}}"#,
            "\n",
        );
        let out = c.collect("feed", chunk.as_bytes()).unwrap();
        // Both trades in one update: the later price, the first one's extras.
        assert_eq!(out.updates.len(), 1, "{:?}", out.errors);
        assert_eq!(out.updates[0].topic, "trades/BTCUSDT");
        let fields = &out.updates[0].fields;
        assert_eq!(fields[0], Field::new("price", 64001.0));
        assert!(fields.contains(&Field::new("count", 2.0)));
        assert!(fields.contains(&Field::new("data.m", true)));
        assert!(fields.contains(&Field::new("stream", "btcusdt@trade")));
        let samples = out.all_samples();
        assert_eq!(samples[0].timestamp_ms, 1_700_000_000_000);
        assert_eq!(samples[4].timestamp_ms, 0);
        let Mode::Trades { book, .. } = &c.mode else {
            panic!("trades mode by default")
        };
        assert_eq!(book.totals("BTCUSDT"), Some((2, 2.0)));
        let errors: Vec<_> = out
            .errors
            .iter()
            .map(|e| (e.line, e.message.as_str()))
            .collect();
        assert_eq!(errors.len(), 3);
        assert!(errors[0].1.starts_with("invalid JSON: "), "{errors:?}");
        assert_eq!(errors[1], (3, "price: `data.p` is missing"));
        assert_eq!(errors[2], (4, "price (`data.p`): `x` is not a number"));
    }

    #[test]
    fn latest_mode_publishes_states_without_samples_or_totals() {
        let config = Config::from_pairs(&[("mode", "latest"), ("topic_prefix", "ticker")]);
        let mut c = JsonlCollector::init(&config).unwrap();
        let chunk = "{\"symbol\":\"BTC\",\"bid\":1,\"ask\":2}\n{\"bid\":1}\n";
        let out = c.collect("feed", chunk.as_bytes()).unwrap();
        assert_eq!(out.updates.len(), 1);
        assert_eq!(out.updates[0].topic, "ticker/BTC");
        assert_eq!(out.updates[0].fields.len(), 2);
        assert!(out.all_samples().is_empty() && out.events.is_empty());
        assert_eq!(out.errors.len(), 1);
        assert_eq!(out.errors[0].message, "key: `symbol` is missing");
        assert_eq!(c.export_state(), None);

        let bad = Config::from_pairs(&[("mode", "ticks")]);
        assert_eq!(
            JsonlCollector::init(&bad).err().unwrap(),
            "config `mode`: `ticks` must be `trades` or `latest`"
        );
    }
}
