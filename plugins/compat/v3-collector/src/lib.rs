//! # v3-collector: a collector of contract 0.3.0 (TEST ONLY)
//!
//! Built with wit-bindgen from the frozen `wit/v0.3.0/`, so it exports
//! `wasmeter:plugin/collect@0.3.0`: the host must keep loading and calling it.
//! Each line `SYMBOL,PRICE` sets `price` on topic `v3/SYMBOL` and emits the
//! gauge `v3_price{symbol="SYMBOL"}` as a point of a series it declares the
//! first time it sees the symbol (numbered for the life of the instance);
//! anything else is a record error.

use std::cell::RefCell;
use std::collections::HashMap;

wit_bindgen::generate!({
    world: "collector",
    path: "../../../wit/v0.3.0",
});

use exports::wasmeter::plugin::collect::{CollectOutput, Guest as CollectGuest, Point, Series};
use exports::wasmeter::plugin::plugin::{Guest as PluginGuest, PluginInfo};
use wasmeter::plugin::types::{
    Field, FieldValue, Label, MetricKind, PluginKind, RecordError, TopicUpdate,
};

thread_local! {
    /// The series declared to the host, by symbol.
    static DECLARED: RefCell<HashMap<String, u32>> = RefCell::new(HashMap::new());
}

struct V3Collector;

impl PluginGuest for V3Collector {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "v3-collector".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            kind: PluginKind::Collector,
            description: "TEST ONLY: a collector of contract 0.3.0".to_string(),
            emits: vec!["v3/*".to_string(), "v3_price".to_string()],
            stateful: false,
        }
    }

    fn init(_config: Vec<(String, String)>) -> Result<(), String> {
        Ok(())
    }

    fn export_state() -> Option<Vec<u8>> {
        None
    }

    fn import_state(_state: Vec<u8>) -> Result<(), String> {
        Ok(())
    }
}

impl CollectGuest for V3Collector {
    fn collect(_source: String, chunk: Vec<u8>) -> Result<CollectOutput, String> {
        let mut out = CollectOutput {
            samples: Vec::new(),
            series_reset: false,
            series: Vec::new(),
            points: Vec::new(),
            updates: Vec::new(),
            events: Vec::new(),
            errors: Vec::new(),
        };
        DECLARED.with(|declared| {
            let mut declared = declared.borrow_mut();
            let mut offset = 0u32;
            for (i, raw) in chunk.split_inclusive(|b| *b == b'\n').enumerate() {
                let line = String::from_utf8_lossy(raw);
                let parsed = line
                    .trim_end()
                    .split_once(',')
                    .and_then(|(s, p)| p.parse::<f64>().ok().map(|p| (s.to_string(), p)));
                match parsed {
                    Some((symbol, price)) => {
                        let next = declared.len() as u32;
                        let series = *declared.entry(symbol.clone()).or_insert_with(|| {
                            out.series.push(Series {
                                name: "v3_price".to_string(),
                                labels: vec![Label {
                                    name: "symbol".to_string(),
                                    value: symbol.clone(),
                                }],
                                kind: MetricKind::Gauge,
                            });
                            next
                        });
                        out.points.push(Point {
                            series,
                            value: price,
                            timestamp_ms: 0,
                        });
                        out.updates.push(TopicUpdate {
                            topic: format!("v3/{symbol}"),
                            fields: vec![Field {
                                name: "price".to_string(),
                                value: FieldValue::Number(price),
                            }],
                        });
                    }
                    None => out.errors.push(RecordError {
                        line: i as u32 + 1,
                        offset,
                        message: format!("expected SYMBOL,PRICE, got `{}`", line.trim_end()),
                    }),
                }
                offset += raw.len() as u32;
            }
        });
        Ok(out)
    }
}

export!(V3Collector);
