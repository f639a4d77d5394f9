//! `mode = "latest"`: each line is the whole current state of one key (a ticker, an
//! order-book top, a device's readings), not a trade. The line's fields become the
//! fields of the topic `<topic_prefix>/<key>`, as they are: no running totals, no
//! samples, no state of the plugin's own. A delta plugin then sends subscribers only
//! the fields that changed since the key's previous line.

use serde_json::Value;
use wasmeter_sdk::trades;
use wasmeter_sdk::{CollectOutput, Config, Field, TopicUpdate};

use crate::{field_value, lookup, topic_prefix, type_name};

/// Config keys that only mean something for trades; refused in this mode.
const TRADE_ONLY_KEYS: [&str; 5] = [
    "field.price",
    "field.qty",
    "field.ts",
    "extra_fields",
    "tape_prefix",
];

/// Which JSON keys become topic fields.
#[derive(Debug, Clone, PartialEq)]
enum Fields {
    /// Every top-level key but the key field.
    All,
    /// These keys (dotted paths allowed), named by the key.
    Listed(Vec<String>),
}

/// The latest-state mapping: key field, published fields, topic prefix.
#[derive(Debug, Clone)]
pub struct Latest {
    key: String,
    fields: Fields,
    prefix: String,
}

impl Latest {
    /// Reads `field.symbol` (the key, default `symbol`), `fields` (comma list, default
    /// `*`: every key but the key field) and `topic_prefix` (default `trades`).
    pub fn from_config(config: &Config) -> Result<Latest, String> {
        if let Some(key) = TRADE_ONLY_KEYS.iter().find(|k| config.get(k).is_some()) {
            return Err(format!(
                "config `{key}`: only used with `mode = \"trades\"`, not `mode = \"latest\"`"
            ));
        }
        let key = config.get_or("field.symbol", "symbol").trim().to_string();
        if key.is_empty() {
            return Err("config `field.symbol`: must not be empty".into());
        }
        let listed = config.list("fields").unwrap_or_default();
        let fields = match listed.as_slice() {
            [] => Fields::All,
            [star] if star == "*" => Fields::All,
            _ => {
                if let Some(bad) = listed.iter().find(|f| *f == "*" || **f == key) {
                    return Err(format!(
                        "config `fields`: `{bad}` cannot be listed (`*` stands alone; the key \
                         field `{key}` names the topic)"
                    ));
                }
                Fields::Listed(listed)
            }
        };
        Ok(Latest {
            key,
            fields,
            prefix: topic_prefix(config)?,
        })
    }

    /// The topic pattern this mode publishes, for `PluginInfo::emits`.
    pub fn emits(&self) -> Vec<String> {
        vec![format!("{}/*", self.prefix)]
    }

    /// Parses one line into its topic update; errors name the key and the value.
    pub fn parse(&self, text: &str) -> Result<TopicUpdate, String> {
        let record: Value = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
        let Some(object) = record.as_object() else {
            return Err(format!(
                "expected a JSON object, found {}",
                type_name(&record)
            ));
        };
        let key = match lookup(&record, &self.key) {
            None => return Err(format!("key: `{}` is missing", self.key)),
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            Some(other) => {
                return Err(format!(
                    "key (`{}`): expected a string, found {}",
                    self.key,
                    type_name(other)
                ));
            }
        };
        let key = trades::parse_symbol(&format!("key (`{}`)", self.key), &key)?;
        let fields: Vec<Field> = match &self.fields {
            Fields::All => object
                .iter()
                .filter(|(name, v)| **name != self.key && !v.is_null())
                .map(|(name, v)| Field::new(name.as_str(), field_value(v)))
                .collect(),
            Fields::Listed(names) => names
                .iter()
                .filter_map(|name| {
                    lookup(&record, name).map(|v| Field::new(name.as_str(), field_value(v)))
                })
                .collect(),
        };
        if fields.is_empty() {
            return Err(format!(
                "no field to publish besides the key `{}` (config `fields`)",
                self.key
            ));
        }
        let mut update = TopicUpdate::new(format!("{}/{key}", self.prefix));
        update.fields = fields;
        Ok(update)
    }

    /// Parses every line of `chunk` into `out`.
    pub fn collect(&self, chunk: &[u8], out: &mut CollectOutput) {
        wasmeter_sdk::lines::for_each(chunk, out, |line, out| {
            if line.is_blank() {
                return Ok(());
            }
            out.updates.push(self.parse(line.text)?);
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn latest(pairs: &[(&str, &str)]) -> Latest {
        Latest::from_config(&Config::from_pairs(pairs)).unwrap()
    }

    #[test]
    fn every_field_but_the_key_is_published_with_its_json_type() {
        let l = latest(&[("field.symbol", "s"), ("topic_prefix", "ticker")]);
        let u = l
            .parse(r#"{"s":"BTC-USD","bid":64000.5,"ask":64001,"status":"open","halted":false,"x":null}"#)
            .unwrap();
        assert_eq!(u.topic, "ticker/BTC-USD");
        assert_eq!(
            u.fields,
            vec![
                Field::new("ask", 64001.0),
                Field::new("bid", 64000.5),
                Field::new("halted", false),
                Field::new("status", "open"),
            ]
        );
        assert_eq!(l.emits(), ["ticker/*"]);
    }

    #[test]
    fn listed_fields_only_and_dotted_paths() {
        let l = latest(&[("fields", "bid, book.ask")]);
        let u = l
            .parse(r#"{"symbol":"ETH","bid":1,"volume":9,"book":{"ask":2}}"#)
            .unwrap();
        assert_eq!(u.topic, "trades/ETH");
        assert_eq!(
            u.fields,
            vec![Field::new("bid", 1.0), Field::new("book.ask", 2.0)]
        );
    }

    #[test]
    fn bad_lines_and_configs_are_named() {
        let l = latest(&[("fields", "bid")]);
        assert_eq!(
            l.parse(r#"{"bid":1}"#).unwrap_err(),
            "key: `symbol` is missing"
        );
        assert_eq!(
            l.parse(r#"{"symbol":"A","ask":1}"#).unwrap_err(),
            "no field to publish besides the key `symbol` (config `fields`)"
        );
        assert_eq!(
            l.parse("[1]").unwrap_err(),
            "expected a JSON object, found an array"
        );
        let err =
            |pairs: &[(&str, &str)]| Latest::from_config(&Config::from_pairs(pairs)).unwrap_err();
        assert_eq!(
            err(&[("tape_prefix", "tape")]),
            "config `tape_prefix`: only used with `mode = \"trades\"`, not `mode = \"latest\"`"
        );
        assert!(err(&[("fields", "bid,symbol")]).starts_with("config `fields`: `symbol`"));
        assert!(err(&[("topic_prefix", "a b")]).starts_with("config `topic_prefix`"));
    }
}
