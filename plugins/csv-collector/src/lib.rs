//! # csv-collector: trades from CSV lines (world `collector`)
//!
//! Each line is one trade, `symbol,price,qty,ts` by default. Blank lines and lines
//! starting with `#` are skipped silently.
//!
//! ## Config
//!
//! | key            | default                | meaning                                           |
//! |----------------|------------------------|---------------------------------------------------|
//! | `columns`      | `symbol,price,qty,ts`  | comma list naming the columns, in order; must contain `symbol`, `price` and `qty`; `ts` is optional; any other name becomes an extra field (number if it parses, else text); an empty name or `_` ignores the column |
//! | `delimiter`    | `,`                    | one character; `\t` or `tab` for tabs             |
//! | `topic_prefix` | `trades`               | topics are `<topic_prefix>/<symbol>`              |
//! | `tape_prefix`  | (none)                 | if set, every trade is also an event of the stream topic `<tape_prefix>/<symbol>` (fields `price`, `qty`, `ts`, `trade` = its number for the symbol, extras) |
//!
//! ## Values
//!
//! `symbol` is required, non-empty and a topic segment (`[A-Za-z0-9_.:-]`); `price` and
//! `qty` are finite numbers (`qty` not negative); `ts` is an integer in Unix ms, and an
//! empty or missing `ts` means 0 (the host stamps the samples). A line may omit a trailing
//! `ts` column.
//!
//! ## Output (per good line; see `wasmeter_sdk::trades`)
//!
//! * topic update `<prefix>/<symbol>`: `price`, `qty`, `ts`, `count` (running number of
//!   trades of the symbol), `volume` (running sum of qty), then the extra columns; a
//!   chunk's trades of one symbol make one update with the latest values;
//! * samples labelled `symbol`, stamped with `ts`: `trade_price` and `trade_qty` (gauges),
//!   `trades_total` and `trade_volume_total` (counters, the running totals).
//!
//! A bad line becomes a record error naming the column and the value
//! (``price: `abc` is not a number``), or ``expected 4 columns (symbol,price,qty,ts),
//! found 3``. The running totals are exported for hot swap (state schema `trades`, shared
//! with `jsonl-collector`).

use wasmeter_sdk::trades::{self, Trade, TradeBook};
use wasmeter_sdk::{CollectOutput, Collector, Config, Plugin, PluginInfo, lines};

/// Where each value is in a line.
#[derive(Debug, Clone)]
struct Layout {
    /// Column names as configured (for the column-count message).
    names: Vec<String>,
    delimiter: char,
    symbol: usize,
    price: usize,
    qty: usize,
    ts: Option<usize>,
    /// `(column index, field name)` of the extra columns.
    extra: Vec<(usize, String)>,
}

impl Layout {
    fn from_config(config: &Config) -> Result<Layout, String> {
        let delimiter = match config.get_or("delimiter", ",") {
            "\\t" | "tab" | "\t" => '\t',
            d => {
                let mut chars = d.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) if c != '\n' && c != '"' => c,
                    _ => {
                        return Err(format!(
                            "config `delimiter`: `{d}` must be a single character"
                        ));
                    }
                }
            }
        };
        let names: Vec<String> = config
            .get_or("columns", "symbol,price,qty,ts")
            .split(',')
            .map(|c| c.trim().to_string())
            .collect();
        let find = |name: &str| names.iter().position(|c| c == name);
        let required =
            |name: &str| find(name).ok_or_else(|| format!("config `columns`: no `{name}` column"));
        let mut extra = Vec::new();
        for (i, name) in names.iter().enumerate() {
            if name.is_empty() || name == "_" {
                continue;
            }
            if names[..i].contains(name) {
                return Err(format!("config `columns`: `{name}` appears twice"));
            }
            if trades::RESERVED_FIELDS.contains(&name.as_str())
                && !matches!(name.as_str(), "price" | "qty" | "ts")
            {
                return Err(format!("config `columns`: `{name}` is reserved"));
            }
            if !matches!(name.as_str(), "symbol" | "price" | "qty" | "ts") {
                extra.push((i, name.clone()));
            }
        }
        Ok(Layout {
            symbol: required("symbol")?,
            price: required("price")?,
            qty: required("qty")?,
            ts: find("ts"),
            extra,
            delimiter,
            names,
        })
    }

    /// Parses one data line into a trade; the error names the column and the value.
    fn parse(&self, text: &str) -> Result<Trade, String> {
        // The cells of a line of up to `INLINE` columns are kept on the stack.
        const INLINE: usize = 16;
        let (mut inline, mut spilled) = ([""; INLINE], Vec::new());
        let mut count = 0;
        split_cells(text, self.delimiter, |cell| {
            match count {
                ..INLINE => inline[count] = cell,
                INLINE => spilled.extend(inline.iter().copied().chain([cell])),
                _ => spilled.push(cell),
            }
            count += 1;
        });
        let cells: &[&str] = if count <= INLINE {
            &inline[..count]
        } else {
            &spilled
        };
        let expected = self.names.len();
        // A trailing `ts` column may be left out entirely.
        let ts_omitted = cells.len() + 1 == expected && self.ts == Some(expected - 1);
        if cells.len() != expected && !ts_omitted {
            return Err(format!(
                "expected {expected} columns ({}), found {}",
                self.names.join(","),
                cells.len()
            ));
        }
        let symbol = trades::parse_symbol("symbol", cells[self.symbol])?;
        let price = trades::parse_number("price", cells[self.price])?;
        let qty = trades::parse_qty("qty", cells[self.qty])?;
        let ts = match self.ts.and_then(|i| cells.get(i)) {
            Some(cell) => trades::parse_ts("ts", cell)?,
            None => 0,
        };
        let extra = self
            .extra
            .iter()
            .map(|(i, name)| trades::extra_field(name, cells[*i]))
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

/// Hands `each` the cells of `text` split at `delimiter`, trimmed. An ASCII
/// delimiter (the usual case) is found byte by byte, without decoding the line.
fn split_cells<'a>(text: &'a str, delimiter: char, mut each: impl FnMut(&'a str)) {
    if !delimiter.is_ascii() {
        return text
            .split(delimiter)
            .for_each(|cell| each(lines::trim(cell)));
    }
    let delimiter = delimiter as u8;
    let mut start = 0;
    for (at, &b) in text.as_bytes().iter().enumerate() {
        if b == delimiter {
            each(lines::trim(&text[start..at]));
            start = at + 1;
        }
    }
    each(lines::trim(&text[start..]));
}

/// The collector: a column layout and the running per-symbol totals.
pub struct CsvCollector {
    layout: Layout,
    book: TradeBook,
}

impl Plugin for CsvCollector {
    fn info() -> PluginInfo {
        let config = Config::from_host();
        let emits = TradeBook::from_config(&config)
            .map(|b| b.emits())
            .unwrap_or_default();
        PluginInfo::new(
            "csv-collector",
            env!("CARGO_PKG_VERSION"),
            "Trades from CSV lines (symbol,price,qty,ts)",
        )
        .emits(emits)
        .stateful(true)
    }

    fn init(config: &Config) -> Result<Self, String> {
        Ok(CsvCollector {
            layout: Layout::from_config(config)?,
            book: TradeBook::from_config(config)?,
        })
    }

    fn export_state(&self) -> Option<Vec<u8>> {
        Some(self.book.export_state())
    }

    fn import_state(&mut self, state: &[u8]) -> Result<(), String> {
        self.book.import_state(state)
    }
}

impl Collector for CsvCollector {
    fn collect(&mut self, _source: &str, chunk: &[u8]) -> Result<CollectOutput, String> {
        let mut out = CollectOutput::new();
        lines::for_each(chunk, &mut out, |line, out| {
            let text = lines::trim(line.text);
            if text.is_empty() || text.starts_with('#') {
                return Ok(());
            }
            let trade = self.layout.parse(text)?;
            self.book.record(trade, out);
            Ok(())
        });
        Ok(out)
    }
}

wasmeter_sdk::export_collector!(CsvCollector);

#[cfg(test)]
mod tests {
    use super::*;

    fn collector(pairs: &[(&str, &str)]) -> CsvCollector {
        CsvCollector::init(&Config::from_pairs(pairs)).unwrap()
    }

    #[test]
    fn cells_split_as_str_split_and_trim_split_them() {
        for (text, delimiter) in [
            ("A, 1 ,2,,3 ", ','),
            (",", ','),
            ("", ','),
            ("\u{a0}é\u{a0};x", ';'),
            ("A\t1\t 2", '\t'),
            ("A¦ 1 ¦2¦", '¦'),
            ("Aé1é2", 'é'),
        ] {
            let mut cells = Vec::new();
            split_cells(text, delimiter, |cell| cells.push(cell));
            let expected: Vec<&str> = text.split(delimiter).map(str::trim).collect();
            assert_eq!(cells, expected, "{text:?} split at {delimiter:?}");
        }
    }

    #[test]
    fn good_bad_and_skipped_lines() {
        let mut c = collector(&[]);
        let chunk = b"# header\nBTC,100.5,2,1700000000000\n\nBTC,abc,1,1\nETH,10,1\nBTC,1,2,3,4\n";
        let out = c.collect("f.csv", chunk).unwrap();
        assert_eq!(out.updates.len(), 2);
        assert_eq!(out.updates[0].topic, "trades/BTC");
        let samples = out.all_samples();
        assert_eq!(samples.len(), 8);
        assert_eq!(samples[0].timestamp_ms, 1_700_000_000_000);
        assert_eq!(samples[4].timestamp_ms, 0);
        assert_eq!(out.errors.len(), 2);
        assert_eq!(out.errors[0].line, 4);
        assert_eq!(out.errors[0].message, "price: `abc` is not a number");
        assert_eq!(
            out.errors[1].message,
            "expected 4 columns (symbol,price,qty,ts), found 5"
        );
    }

    #[test]
    fn lines_of_many_columns() {
        let names: Vec<String> = (0..20).map(|i| format!("c{i}")).collect();
        let mut columns = names.clone();
        columns[0] = "symbol".into();
        columns[17] = "price".into();
        columns[19] = "qty".into();
        let mut c = collector(&[("columns", &columns.join(","))]);
        let mut line: Vec<String> = (0..20).map(|i| i.to_string()).collect();
        line[0] = "AB".into();
        let out = c.collect("s", format!("{}\n", line.join(",")).as_bytes());
        let out = out.unwrap();
        assert!(out.errors.is_empty(), "{:?}", out.errors);
        let field = |name: &str| {
            let field = out.updates[0].fields.iter().find(|f| f.name == name);
            field.map(|f| f.value.clone())
        };
        assert_eq!(field("price"), Some(17.0.into()));
        assert_eq!(field("qty"), Some(19.0.into()));
        assert_eq!(field("c16"), Some(16.0.into()));
        assert_eq!(field("c18"), Some(18.0.into()));
        let out = c.collect("s", b"AB,1,2\n").unwrap();
        assert_eq!(
            out.errors[0].message,
            format!("expected 20 columns ({}), found 3", columns.join(","))
        );
    }

    #[test]
    fn custom_columns_and_state() {
        // `columns` is a comma list whatever the delimiter.
        let semicolons = Config::from_pairs(&[("columns", "ts;symbol;qty;price")]);
        assert!(CsvCollector::init(&semicolons).is_err());
        let mut c = collector(&[
            ("columns", "ts,symbol,side,qty,price"),
            ("delimiter", ";"),
            ("topic_prefix", "x/y"),
        ]);
        let out = c
            .collect("s", b"5;ETH;buy;2;10\n6;ETH;sell;3;11\n")
            .unwrap();
        assert!(out.errors.is_empty(), "{:?}", out.errors);
        // Both trades of ETH in one call: one update, the later values.
        assert_eq!(out.updates.len(), 1);
        assert_eq!(out.updates[0].topic, "x/y/ETH");
        let field = |name: &str| {
            let field = out.updates[0].fields.iter().find(|f| f.name == name);
            field.map(|f| f.value.clone())
        };
        assert_eq!(field("side"), Some("sell".into()));
        assert_eq!(field("count"), Some(2.0.into()));
        assert_eq!(field("price"), Some(11.0.into()));
        assert_eq!(out.all_samples().len(), 8, "every trade's samples");
        let mut d = collector(&[]);
        d.import_state(&c.export_state().unwrap()).unwrap();
        assert_eq!(d.book.totals("ETH"), Some((2, 5.0)));
        assert!(CsvCollector::init(&Config::from_pairs(&[("columns", "a,b")])).is_err());
    }
}
