//! A guest that waits inside a host call (a WASI sleep: no guest code runs, so the
//! epoch deadline never fires) is abandoned at the wall-clock bound: the call
//! fails like a deadline, the next call gets a fresh instance, and repeats
//! quarantine the plugin.

use std::time::Duration;

use wasmeter_core::delta::Delta;
use wasmeter_core::field::FieldValue;
use wasmeter_core::sample::Sample;
use wasmeter_plugin::{
    CallError, CollectorWorld, DeltaWorld, Instance, LoadError, MetricWorld, PluginLimits,
};

use crate::support::{component, config, numbers, runtime, within_bound};

fn limits() -> PluginLimits {
    PluginLimits {
        call_timeout: Duration::from_millis(100),
        quarantine_after: 100,
        ..PluginLimits::default()
    }
}

const DEADLINE: CallError = CallError::Deadline { limit_ms: 100 };

/// A faulty metric that sleeps 30 s in the calls listed in `sleep_in`.
async fn sleepy(sleep_in: &str, limits: PluginLimits) -> Instance<MetricWorld> {
    let plugin = runtime()
        .load::<MetricWorld>(component("faulty_metric"))
        .await
        .unwrap();
    plugin
        .instantiate_with_limits(
            "sleepy",
            config(&[
                ("mode", "sleep"),
                ("sleep_ms", "30000"),
                ("sleep_in", sleep_in),
            ]),
            limits,
        )
        .await
        .unwrap()
}

fn calls_total(samples: &[Sample]) -> f64 {
    crate::support::value_of(samples, "faulty_metric_calls_total", &[])
}

/// Runs the call named `call` (as in the plugin's `sleep_in`).
async fn invoke(m: &mut Instance<MetricWorld>, call: &str, state: &[u8]) -> Result<(), CallError> {
    match call {
        "on-samples" => m.on_sample_list(&[]).await.map(drop),
        "on-tick" => m.on_tick(1).await.map(drop),
        "export-state" => m.export_state().await.map(drop),
        "import-state" => m.import_state(state).await,
        other => unreachable!("{other}"),
    }
}

#[tokio::test]
async fn a_sleeping_call_of_any_kind_is_abandoned_and_the_next_call_runs_on_a_fresh_instance() {
    for call in ["on-samples", "on-tick", "export-state", "import-state"] {
        let mut m = sleepy(call, limits()).await;
        // Two calls that do not sleep: the instance's count is 2 before the failure.
        let other_call = if call == "on-tick" {
            "on-samples"
        } else {
            "on-tick"
        };
        let state = if call == "export-state" {
            Vec::new()
        } else {
            m.export_state().await.unwrap().unwrap()
        };
        invoke(&mut m, other_call, &state).await.unwrap();
        invoke(&mut m, other_call, &state).await.unwrap();

        let err = within_bound(call, invoke(&mut m, call, &state))
            .await
            .unwrap_err();
        assert_eq!(err, DEADLINE, "{call}");
        let health = m.health();
        assert_eq!(health.failures, 1, "{call}");
        assert_eq!(health.consecutive_failures, 1, "{call}");
        assert_eq!(
            health.last_error.as_deref(),
            Some("deadline exceeded: the call ran longer than 100 ms and was stopped")
        );

        // The next call works, on a fresh instance: its count starts again.
        let out = if call == "on-samples" {
            m.on_tick(1).await.unwrap().to_samples()
        } else {
            m.on_sample_list(&[]).await.unwrap()
        };
        assert_eq!(calls_total(&out), 1.0, "{call}: a fresh instance");
        let health = m.health();
        assert_eq!(health.rebuilds, 1, "{call}");
        assert_eq!(health.consecutive_failures, 0, "{call}");
    }
}

#[tokio::test]
async fn a_sleeping_collect_is_abandoned() {
    let plugin = runtime()
        .load::<CollectorWorld>(component("faulty_collector"))
        .await
        .unwrap();
    let mut f = plugin
        .instantiate_with_limits("sleepy", config(&[("sleep_ms", "30000")]), limits())
        .await
        .unwrap();
    let err = within_bound("collect", f.collect("src", b"sleep\n"))
        .await
        .unwrap_err();
    assert_eq!(err, DEADLINE);
    let out = f.collect("src", b"fine\n").await.unwrap();
    assert_eq!(
        out.all_samples()[0].value,
        1.0,
        "a fresh instance counts from 1"
    );
    assert_eq!(f.health().rebuilds, 1);
}

#[tokio::test]
async fn repeated_sleeps_quarantine_even_between_successful_calls_of_another_kind() {
    let mut m = sleepy(
        "on-tick",
        PluginLimits {
            quarantine_after: 3,
            ..limits()
        },
    )
    .await;
    for round in 1..=3 {
        let err = within_bound("on-tick", m.on_tick(1)).await.unwrap_err();
        assert_eq!(err, DEADLINE, "round {round}");
        assert_eq!(m.health().quarantined, round == 3, "round {round}");
        if round < 3 {
            // on-samples succeeds in between: the overall streak restarts, the
            // streak of on-tick does not.
            m.on_sample_list(&[]).await.unwrap();
        }
    }
    let health = m.health();
    assert_eq!(health.failures, 3);
    assert_eq!(health.quarantines, 1);
    let err = m.on_sample_list(&[]).await.unwrap_err();
    assert!(
        matches!(err, CallError::Quarantined { failures: 3, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("deadline exceeded"), "{err}");
}

#[tokio::test]
async fn sleeping_in_init_fails_the_instantiation_in_bounded_time() {
    let collector = runtime()
        .load::<CollectorWorld>(component("faulty_collector"))
        .await
        .unwrap();
    let err = within_bound(
        "collector init",
        collector.instantiate_with_limits("sleepy", config(&[("init", "sleep")]), limits()),
    )
    .await
    .err()
    .unwrap();
    assert_eq!(err, DEADLINE);

    let metric = runtime()
        .load::<MetricWorld>(component("faulty_metric"))
        .await
        .unwrap();
    let err = within_bound(
        "metric init",
        metric.instantiate_with_limits(
            "sleepy",
            config(&[("mode", "sleep"), ("sleep_in", "init")]),
            limits(),
        ),
    )
    .await
    .err()
    .unwrap();
    assert_eq!(err, DEADLINE);
}

#[tokio::test]
async fn sleeping_in_describe_fails_the_load_in_bounded_time() {
    let err = within_bound(
        "load",
        runtime().load::<CollectorWorld>(component("sleepy_describe")),
    )
    .await
    .err()
    .unwrap();
    assert!(
        matches!(
            &err,
            LoadError::Start {
                stage: "describe",
                source: CallError::Deadline { .. },
                ..
            }
        ),
        "{err}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("sleepy_describe.wasm: describe failed: deadline exceeded"),
        "{msg}"
    );
}

#[tokio::test]
async fn a_sleeping_diff_or_apply_is_abandoned() {
    let plugin = runtime()
        .load::<DeltaWorld>(component("faulty_delta"))
        .await
        .unwrap();
    let mut d = plugin
        .instantiate_with_limits("sleepy", vec![], limits())
        .await
        .unwrap();
    let previous = numbers(&[("a", 1.0)]);
    let current = numbers(&[("a", 2.0)]);
    let err = within_bound("diff", d.diff("sleep", &previous, &current))
        .await
        .unwrap_err();
    assert_eq!(err, DEADLINE);
    let delta = d.diff("t", &previous, &current).await.unwrap();
    assert_eq!(
        delta.changed,
        vec![("a".to_string(), FieldValue::Number(2.0))]
    );

    let sleepy = Delta {
        changed: vec![("sleep".to_string(), FieldValue::Number(1.0))],
        removed: vec![],
    };
    let err = within_bound("apply", d.apply(&previous, &sleepy))
        .await
        .unwrap_err();
    assert_eq!(err, DEADLINE);
    assert_eq!(d.apply(&previous, &delta).await.unwrap(), current);
    let health = d.health();
    assert_eq!((health.failures, health.rebuilds), (2, 2));
}
