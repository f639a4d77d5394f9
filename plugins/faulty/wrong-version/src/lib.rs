//! # wrong-version: a collector of a different contract version (TEST ONLY)
//!
//! Built from an inline copy of the collector world declared as
//! `package wasmeter:plugin@0.9.0`, so the component exports
//! `wasmeter:plugin/plugin@0.9.0` and `wasmeter:plugin/collect@0.9.0` instead of `@0.2.0` or `@0.1.0`.
//! The host must refuse it with a clear "unsupported contract version" error instead of
//! failing obscurely. The functions work (an empty output per chunk), so a host that
//! wrongly accepted it would be noticed. No config keys, no state.

wit_bindgen::generate!({
    inline: r#"
        package wasmeter:plugin@0.9.0;

        interface types {
            enum metric-kind { gauge, counter }
            record label { name: string, value: string }
            record sample {
                name: string,
                labels: list<label>,
                value: f64,
                kind: metric-kind,
                timestamp-ms: s64,
            }
            variant field-value { number(f64), text(string), flag(bool) }
            record field { name: string, value: field-value }
            record topic-update { topic: string, fields: list<field> }
            record record-error { line: u32, offset: u32, message: string }
            enum plugin-kind { collector, delta, metric }
            record plugin-info {
                name: string,
                version: string,
                kind: plugin-kind,
                description: string,
                emits: list<string>,
                stateful: bool,
            }
            type config = list<tuple<string, string>>;
        }

        interface plugin {
            use types.{plugin-info, config};
            describe: func() -> plugin-info;
            init: func(config: config) -> result<_, string>;
            export-state: func() -> option<list<u8>>;
            import-state: func(state: list<u8>) -> result<_, string>;
        }

        interface collect {
            use types.{sample, topic-update, record-error};
            record collect-output {
                samples: list<sample>,
                updates: list<topic-update>,
                errors: list<record-error>,
            }
            collect: func(source: string, chunk: list<u8>) -> result<collect-output, string>;
        }

        world collector {
            export plugin;
            export collect;
        }
    "#,
    world: "collector",
});

use exports::wasmeter::plugin::collect::{CollectOutput, Guest as CollectGuest};
use exports::wasmeter::plugin::plugin::{Guest as PluginGuest, PluginInfo};
use wasmeter::plugin::types::PluginKind;

struct WrongVersion;

impl PluginGuest for WrongVersion {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "wrong-version".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            kind: PluginKind::Collector,
            description: "TEST ONLY: speaks wasmeter:plugin@0.9.0".to_string(),
            emits: Vec::new(),
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

impl CollectGuest for WrongVersion {
    fn collect(_source: String, _chunk: Vec<u8>) -> Result<CollectOutput, String> {
        Ok(CollectOutput {
            samples: Vec::new(),
            updates: Vec::new(),
            errors: Vec::new(),
        })
    }
}

export!(WrongVersion);
