//! The JSON that leaves the host: Alertmanager's v2 API (`POST /api/v2/alerts`,
//! a list of postable alerts) and the webhook message Alertmanager itself sends
//! to webhook receivers (version 4), so a receiver written for one takes both.

use std::hash::{DefaultHasher, Hash, Hasher};
use wasmeter_core::time::rfc3339_ms;

use serde_json::{Value, json};

use super::state::{LabelSet, Notice};

/// `[{labels, annotations, startsAt, endsAt, generatorURL}]`.
pub fn alertmanager(notices: &[Notice], generator_url: &str) -> Value {
    Value::Array(
        notices
            .iter()
            .map(|n| {
                let mut a = json!({
                    "labels": n.labels,
                    "annotations": n.annotations,
                    "startsAt": rfc3339_ms(n.starts_at),
                    "endsAt": rfc3339_ms(n.ends_at),
                });
                if !generator_url.is_empty() {
                    a["generatorURL"] = json!(generator_url);
                }
                a
            })
            .collect(),
    )
}

/// Alertmanager's webhook message: firing alerts have the zero `endsAt`, as
/// Alertmanager sends them.
pub fn webhook(notices: &[Notice], generator_url: &str) -> Value {
    let common = |pick: fn(&Notice) -> &LabelSet| -> LabelSet {
        let mut common = notices.first().map(pick).cloned().unwrap_or_default();
        for n in notices {
            common.retain(|k, v| pick(n).get(k) == Some(v));
        }
        common
    };
    let alerts: Vec<Value> = notices
        .iter()
        .map(|n| {
            json!({
                "status": if n.firing { "firing" } else { "resolved" },
                "labels": n.labels,
                "annotations": n.annotations,
                "startsAt": rfc3339_ms(n.starts_at),
                "endsAt": if n.firing { "0001-01-01T00:00:00Z".to_string() } else { rfc3339_ms(n.ends_at) },
                "generatorURL": generator_url,
                "fingerprint": fingerprint(&n.labels),
            })
        })
        .collect();
    let firing = notices.iter().any(|n| n.firing);
    let common_labels = common(|n| &n.labels);
    json!({
        "version": "4",
        "groupKey": format!("{{}}:{}", show(&common_labels)),
        "truncatedAlerts": 0,
        "status": if firing { "firing" } else { "resolved" },
        "receiver": "wasmeter",
        "groupLabels": {},
        "commonLabels": common_labels,
        "commonAnnotations": common(|n| &n.annotations),
        "externalURL": generator_url,
        "alerts": alerts,
    })
}

fn show(labels: &LabelSet) -> String {
    let parts: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", parts.join(","))
}

/// A stable hex id of a label set.
pub fn fingerprint(labels: &LabelSet) -> String {
    let mut h = DefaultHasher::new();
    labels.hash(&mut h);
    format!("{:016x}", h.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_messages_have_alertmanagers_shape() {
        let n = |name: &str, firing| Notice {
            key: Default::default(),
            labels: [
                ("alertname".into(), name.into()),
                ("env".into(), "prod".into()),
            ]
            .into(),
            annotations: Default::default(),
            starts_at: 0,
            ends_at: 1000,
            firing,
        };
        let m = webhook(&[n("a", false), n("b", true)], "http://h/");
        assert_eq!(m["version"], "4");
        assert_eq!(m["status"], "firing");
        assert_eq!(m["commonLabels"], json!({"env": "prod"}));
        assert_eq!(m["alerts"][0]["status"], "resolved");
        assert_eq!(m["alerts"][0]["endsAt"], "1970-01-01T00:00:01.000Z");
        assert_eq!(m["alerts"][1]["endsAt"], "0001-01-01T00:00:00Z");
        let am = alertmanager(&[n("a", true)], "");
        assert_eq!(am[0]["startsAt"], "1970-01-01T00:00:00.000Z");
        assert!(am[0].get("generatorURL").is_none());
    }
}
