//! # v3-delta: a delta plugin of contract 0.3.0 (TEST ONLY)
//!
//! Built with wit-bindgen from the frozen `wit/v0.3.0/`: one `diff` call per
//! batch of topics, whole fields (names given with every field). Sends the exact
//! difference (fields set and removed); a topic named `refuse` gets an `err`.

wit_bindgen::generate!({
    world: "delta",
    path: "../../../wit/v0.3.0",
    additional_derives: [PartialEq],
});

use exports::wasmeter::plugin::diff::{Delta, Guest as DiffGuest, TopicChange};
use exports::wasmeter::plugin::plugin::{Guest as PluginGuest, PluginInfo};
use wasmeter::plugin::types::{Field, PluginKind};

struct V3Delta;

impl PluginGuest for V3Delta {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "v3-delta".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            kind: PluginKind::Delta,
            description: "TEST ONLY: a delta plugin of contract 0.3.0".to_string(),
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

impl DiffGuest for V3Delta {
    fn diff(changes: Vec<TopicChange>) -> Vec<Result<Delta, String>> {
        changes
            .into_iter()
            .map(|c| match c.topic.as_str() {
                "refuse" => Err("refused on purpose".to_string()),
                _ => Ok(exact(c.previous, c.current)),
            })
            .collect()
    }

    fn apply(previous: Vec<Field>, delta: Delta) -> Result<Vec<Field>, String> {
        let mut fields: Vec<Field> = previous
            .into_iter()
            .filter(|f| !delta.removed.contains(&f.name))
            .filter(|f| !delta.changed.iter().any(|c| c.name == f.name))
            .collect();
        fields.extend(delta.changed);
        fields.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(fields)
    }
}

/// The fields set and removed from `previous` to `current`.
fn exact(previous: Vec<Field>, current: Vec<Field>) -> Delta {
    let changed = current
        .iter()
        .filter(|f| !previous.contains(f))
        .cloned()
        .collect();
    let removed = previous
        .iter()
        .filter(|p| !current.iter().any(|c| c.name == p.name))
        .map(|p| p.name.clone())
        .collect();
    Delta { changed, removed }
}

export!(V3Delta);
