//! The field-level delta plugin.

use wasmeter_core::field::{FieldValue, TopicState};
use wasmeter_plugin::DeltaWorld;

use crate::support::{component, config, numbers, runtime};

#[tokio::test]
async fn field_delta_sends_changed_and_removed_fields_only() {
    let plugin = runtime()
        .load::<DeltaWorld>(component("field_delta"))
        .await
        .unwrap();
    let mut delta = plugin
        .instantiate("delta", config(&[("epsilon", "0.01")]))
        .await
        .unwrap();

    let mut previous = numbers(&[("price", 100.0), ("qty", 1.0), ("bid", 99.5)]);
    previous.insert("side".into(), FieldValue::Text("buy".into()));
    let mut current = numbers(&[("price", 100.005), ("qty", 2.0), ("ask", 100.5)]);
    current.insert("side".into(), FieldValue::Text("sell".into()));

    let d = delta.diff("trades/BTC", &previous, &current).await.unwrap();
    let changed: Vec<_> = d.changed.iter().map(|(n, _)| n.as_str()).collect();
    // price moved by less than epsilon: not sent.
    assert_eq!(changed, ["ask", "qty", "side"]);
    assert_eq!(d.removed, ["bid"]);

    // The plugin's apply and the host's merge agree, and reproduce the new state
    // up to epsilon.
    let applied = delta.apply(&previous, &d).await.unwrap();
    let mut merged = previous.clone();
    d.apply_to(&mut merged);
    assert_eq!(applied, merged);
    assert_eq!(
        merged.keys().collect::<Vec<_>>(),
        current.keys().collect::<Vec<_>>()
    );
    match (&merged["price"], &current["price"]) {
        (FieldValue::Number(a), FieldValue::Number(b)) => assert!((a - b).abs() <= 0.01),
        other => panic!("{other:?}"),
    }

    let none = delta.diff("trades/BTC", &current, &current).await.unwrap();
    assert!(none.is_empty(), "{none:?}");
    let from_empty = delta
        .diff("trades/BTC", &TopicState::new(), &current)
        .await
        .unwrap();
    assert_eq!(from_empty.changed.len(), current.len());
}

#[tokio::test]
async fn field_delta_rejects_a_bad_epsilon() {
    let plugin = runtime()
        .load::<DeltaWorld>(component("field_delta"))
        .await
        .unwrap();
    let err = plugin
        .instantiate("delta", config(&[("epsilon", "-1")]))
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("epsilon"), "{err}");
}
