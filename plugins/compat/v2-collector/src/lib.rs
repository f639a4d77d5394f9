//! # v2-collector: a collector of contract 0.2.0 (TEST ONLY)
//!
//! Built with wit-bindgen from the frozen `wit/v0.2.0/`, so it exports
//! `wasmeter:plugin/collect@0.2.0`: the host must keep loading and calling it.
//! Each line `SYMBOL,PRICE` sets `price` on topic `v2/SYMBOL`, appends an event
//! to the stream topic `v2-tape/SYMBOL` and emits the gauge
//! `v2_price{symbol="SYMBOL"}` with whole samples (no series declared);
//! anything else is a record error.

wit_bindgen::generate!({
    world: "collector",
    path: "../../../wit/v0.2.0",
});

use exports::wasmeter::plugin::collect::{CollectOutput, Guest as CollectGuest};
use exports::wasmeter::plugin::plugin::{Guest as PluginGuest, PluginInfo};
use wasmeter::plugin::types::{
    Field, FieldValue, Label, MetricKind, PluginKind, RecordError, Sample, StreamEvent, TopicUpdate,
};

struct V2Collector;

impl PluginGuest for V2Collector {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "v2-collector".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            kind: PluginKind::Collector,
            description: "TEST ONLY: a collector of contract 0.2.0".to_string(),
            emits: vec![
                "v2/*".to_string(),
                "v2-tape/*".to_string(),
                "v2_price".to_string(),
            ],
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

impl CollectGuest for V2Collector {
    fn collect(_source: String, chunk: Vec<u8>) -> Result<CollectOutput, String> {
        let mut out = CollectOutput {
            samples: Vec::new(),
            updates: Vec::new(),
            events: Vec::new(),
            errors: Vec::new(),
        };
        let mut offset = 0u32;
        for (i, raw) in chunk.split_inclusive(|b| *b == b'\n').enumerate() {
            let line = String::from_utf8_lossy(raw);
            let parsed = line
                .trim_end()
                .split_once(',')
                .and_then(|(s, p)| p.parse::<f64>().ok().map(|p| (s.to_string(), p)));
            match parsed {
                Some((symbol, price)) => {
                    out.events.push(StreamEvent {
                        topic: format!("v2-tape/{symbol}"),
                        fields: vec![Field {
                            name: "price".to_string(),
                            value: FieldValue::Number(price),
                        }],
                    });
                    out.updates.push(TopicUpdate {
                        topic: format!("v2/{symbol}"),
                        fields: vec![Field {
                            name: "price".to_string(),
                            value: FieldValue::Number(price),
                        }],
                    });
                    out.samples.push(Sample {
                        name: "v2_price".to_string(),
                        labels: vec![Label {
                            name: "symbol".to_string(),
                            value: symbol,
                        }],
                        value: price,
                        kind: MetricKind::Gauge,
                        timestamp_ms: 0,
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
        Ok(out)
    }
}

export!(V2Collector);
