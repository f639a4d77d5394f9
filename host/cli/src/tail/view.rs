//! What `wasmeter tail` holds per topic and how it prints it: pure functions over
//! the protocol's JSON messages (no I/O).

use std::collections::HashMap;
use std::fmt::Write;
use wasmeter_core::time::rfc3339_ms;

use serde_json::{Map, Value, json};

/// One topic's position and state, as applied from snapshots and updates.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TopicView {
    /// The epoch of the last applied message.
    pub epoch: String,
    /// The seq of the last applied message.
    pub seq: u64,
    /// The fields.
    pub state: Map<String, Value>,
}

/// Every topic received.
#[derive(Debug, Default)]
pub struct Views {
    topics: HashMap<String, TopicView>,
}

impl Views {
    /// Applies a `snapshot`, `update`, `event`, `gap` or `removed` message; other
    /// messages change nothing. Returns whether the message was one of those
    /// (worth printing).
    pub fn apply(&mut self, msg: &Value) -> bool {
        let (Some(kind), Some(topic)) = (msg["type"].as_str(), msg["topic"].as_str()) else {
            return false;
        };
        let position = || {
            (
                msg["epoch"].as_str().unwrap_or_default().to_string(),
                msg["seq"].as_u64().unwrap_or(0),
            )
        };
        match kind {
            "snapshot" => {
                let (epoch, seq) = position();
                let state = msg["state"].as_object().cloned().unwrap_or_default();
                self.topics
                    .insert(topic.to_string(), TopicView { epoch, seq, state });
            }
            "update" => {
                let (epoch, seq) = position();
                let view = self.topics.entry(topic.to_string()).or_default();
                view.epoch = epoch;
                view.seq = seq;
                if let Some(delta) = msg["delta"].as_object() {
                    for (field, value) in delta {
                        if value.is_null() {
                            view.state.remove(field);
                        } else {
                            view.state.insert(field.clone(), value.clone());
                        }
                    }
                }
            }
            "event" => {
                let (epoch, seq) = position();
                let state = msg["fields"].as_object().cloned().unwrap_or_default();
                self.topics
                    .insert(topic.to_string(), TopicView { epoch, seq, state });
            }
            "gap" => {
                // Resume from the next event the host still has.
                if let (Some(view), Some(next)) = (self.topics.get_mut(topic), msg["next"].as_u64())
                    && msg["epoch"].as_str() == Some(view.epoch.as_str())
                {
                    view.seq = next.saturating_sub(1);
                }
            }
            "removed" => {
                self.topics.remove(topic);
            }
            _ => return false,
        }
        true
    }

    /// A topic's view.
    pub fn get(&self, topic: &str) -> Option<&TopicView> {
        self.topics.get(topic)
    }

    /// The `since` of a resuming `subscribe`: the last position per topic.
    pub fn since(&self) -> Map<String, Value> {
        self.topics
            .iter()
            .map(|(topic, v)| (topic.clone(), json!({"epoch": v.epoch, "seq": v.seq})))
            .collect()
    }
}

/// A readable line for a data message: time, topic, seq, then the changed fields
/// `name=value`, removed fields `-name`, and stale fields `stale=a,b`.
pub fn line(msg: &Value) -> Option<String> {
    let kind = msg["type"].as_str()?;
    let topic = msg["topic"].as_str()?;
    let mut out = String::new();
    match msg["ts"].as_i64() {
        Some(ts) => out.push_str(&rfc3339_ms(ts)),
        None => out.push('-'),
    }
    let _ = write!(out, " {topic}");
    if let Some(seq) = msg["seq"].as_u64() {
        let _ = write!(out, " #{seq}");
    }
    let fields = match kind {
        "snapshot" => {
            out.push_str(" snapshot");
            if msg["recovered"] == Value::Bool(false) {
                out.push_str(" (not recovered)");
            }
            msg["state"].as_object()
        }
        "update" => msg["delta"].as_object(),
        "event" => {
            out.push_str(" event");
            msg["fields"].as_object()
        }
        "gap" => {
            let _ = write!(
                out,
                " gap: {} events missed (#{}..#{})",
                msg["missed"].as_u64().unwrap_or(0),
                msg["after"].as_u64().unwrap_or(0) + 1,
                msg["next"].as_u64().unwrap_or(1).saturating_sub(1)
            );
            None
        }
        "removed" => {
            out.push_str(" removed");
            None
        }
        _ => return None,
    };
    for (name, value) in fields.into_iter().flatten() {
        match value {
            Value::Null => {
                let _ = write!(out, " -{name}");
            }
            Value::String(s) => {
                let _ = write!(out, " {name}={s}");
            }
            Value::Number(n) => {
                let _ = write!(out, " {name}={}", number(name, n));
            }
            other => {
                let _ = write!(out, " {name}={other}");
            }
        }
    }
    if let Some(stale) = msg["stale"].as_array().filter(|s| !s.is_empty()) {
        let names: Vec<_> = stale.iter().filter_map(Value::as_str).collect();
        let _ = write!(out, " stale={}", names.join(","));
    }
    Some(out)
}

/// A field's number as people read it: a whole number without `.0`, and Unix
/// milliseconds (a field named `ts`, `time`, `timestamp` or `..._ms` whose value
/// is a time between 2001 and 2286) as a UTC time.
fn number(name: &str, n: &serde_json::Number) -> String {
    let Some(x) = n.as_f64() else {
        return n.to_string();
    };
    let whole = x.fract() == 0.0 && x.abs() < 9.0e15;
    let timeish = matches!(name, "ts" | "time" | "timestamp") || name.ends_with("_ms");
    if whole && timeish && (1.0e12..1.0e13).contains(&x) {
        rfc3339_ms(x as i64)
    } else if whole {
        format!("{}", x as i64)
    } else {
        n.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_people_write_them() {
        let msg = serde_json::json!({
            "type": "update", "topic": "t", "seq": 3, "ts": 1_700_000_000_000i64,
            "delta": {"count": 3399.0, "price": 64000.25, "ts": 1_700_000_000_123.0,
                      "at_ms": 1_700_000_000_000.0, "qty": 1.0e12, "n": -2.0}
        });
        let text = line(&msg).unwrap();
        assert!(text.contains(" count=3399 "), "{text}");
        assert!(text.contains(" price=64000.25"), "{text}");
        assert!(text.contains(" ts=2023-11-14T22:13:20.123Z"), "{text}");
        assert!(text.contains(" at_ms=2023-11-14T22:13:20.000Z"), "{text}");
        assert!(text.contains(" qty=1000000000000"), "{text}");
        assert!(text.contains(" n=-2"), "{text}");
    }

    #[test]
    fn applies_snapshots_updates_and_removals() {
        let mut v = Views::default();
        let snap = json!({"type":"snapshot","topic":"t/a","epoch":"e","seq":2,"ts":0,
            "state":{"p":1,"q":2}});
        assert!(v.apply(&snap));
        let upd = json!({"type":"update","topic":"t/a","epoch":"e","seq":3,"ts":1700000000012i64,
            "delta":{"p":5,"q":null},"stale":["x"]});
        assert!(v.apply(&upd));
        let view = v.get("t/a").unwrap();
        assert_eq!((view.seq, view.state.len()), (3, 1));
        assert_eq!(view.state["p"], 5);
        assert_eq!(v.since()["t/a"], json!({"epoch":"e","seq":3}));
        assert_eq!(
            line(&upd).unwrap(),
            "2023-11-14T22:13:20.012Z t/a #3 p=5 -q stale=x"
        );
        assert!(!v.apply(&json!({"type":"subscribed","id":1})));
        assert!(v.apply(&json!({"type":"removed","topic":"t/a","epoch":"e"})));

        let ev = json!({"type":"event","topic":"tape/a","epoch":"e","seq":7,"ts":1700000000012i64,
                        "fields":{"price":1.5,"side":"buy"}});
        assert!(v.apply(&ev));
        assert_eq!(v.get("tape/a").unwrap().seq, 7);
        assert_eq!(
            line(&ev).unwrap(),
            "2023-11-14T22:13:20.012Z tape/a #7 event price=1.5 side=buy"
        );
        let gap =
            json!({"type":"gap","topic":"tape/a","epoch":"e","after":7,"next":20,"missed":12});
        assert!(v.apply(&gap));
        assert_eq!(v.get("tape/a").unwrap().seq, 19, "resumes after the gap");
        assert_eq!(
            line(&gap).unwrap(),
            "- tape/a gap: 12 events missed (#8..#19)"
        );
        assert!(v.get("t/a").is_none());
    }
}
