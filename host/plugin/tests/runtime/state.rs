//! Exported and imported state: the `state_bytes` quota, and exports that fail
//! counting toward quarantine even when the plugin's other calls succeed.

use std::time::Duration;

use wasmeter_plugin::{CallError, Instance, MetricWorld, PluginLimits};

use crate::support::{component, config, runtime};

fn limits(state_bytes: usize) -> PluginLimits {
    PluginLimits {
        call_timeout: Duration::from_secs(5),
        quarantine_after: 3,
        state_bytes,
        ..PluginLimits::default()
    }
}

async fn faulty_metric(pairs: &[(&str, &str)], limits: PluginLimits) -> Instance<MetricWorld> {
    runtime()
        .load::<MetricWorld>(component("faulty_metric"))
        .await
        .unwrap()
        .instantiate_with_limits("faulty", config(pairs), limits)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_state_within_the_quota_is_exported() {
    let mut m = faulty_metric(
        &[("mode", "big-state"), ("state_bytes", "2097152")],
        limits(4 << 20),
    )
    .await;
    let state = m.export_state().await.unwrap().unwrap();
    assert_eq!(state.len(), 2 << 20);
}

#[tokio::test]
async fn exports_over_the_quota_fail_and_quarantine_between_successful_ticks() {
    let mut m = faulty_metric(
        &[("mode", "big-state"), ("state_bytes", "2097152")],
        limits(1 << 20),
    )
    .await;
    for round in 1..=3 {
        let Err(err) = m.export_state().await else {
            panic!("round {round}: a state over the quota was exported")
        };
        assert_eq!(
            err.to_string(),
            "invalid output: exported state: 2097152 bytes, more than the limit of 1048576 (state_bytes)"
        );
        assert_eq!(m.health().quarantined, round == 3, "round {round}");
        if round < 3 {
            // The checkpoint's export fails; the data path's calls succeed.
            m.on_tick(1).await.unwrap().to_samples();
        }
    }
    let health = m.health();
    assert_eq!(health.failures, 3);
    assert_eq!(health.consecutive_failures, 3, "the streak that led to it");
    assert!(matches!(
        m.on_tick(2).await,
        Err(CallError::Quarantined { failures: 3, .. })
    ));
}

#[tokio::test]
async fn a_trapping_export_fails_rebuilds_and_quarantines() {
    let mut m = faulty_metric(&[("mode", "export-trap")], limits(1 << 20)).await;
    for round in 1..=3 {
        let err = m.export_state().await.unwrap_err();
        let CallError::Trap { message } = &err else {
            panic!("expected a trap, got {err}")
        };
        assert!(
            message.contains("export-state trapped on purpose"),
            "{message}"
        );
        if round < 3 {
            m.on_tick(1).await.unwrap().to_samples();
        }
    }
    let health = m.health();
    assert!(health.quarantined, "{health:?}");
    assert_eq!(health.failures, 3);
    assert_eq!(health.rebuilds, 2, "rebuilt before each tick after a trap");
}

#[tokio::test]
async fn a_state_over_the_quota_is_refused_before_the_import() {
    let mut m = faulty_metric(&[], limits(1 << 20)).await;
    let calls = m.health().calls;
    let err = m.import_state(&vec![0; (1 << 20) + 1]).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid output: state to import: 1048577 bytes, more than the limit of 1048576 (state_bytes)"
    );
    let health = m.health();
    assert_eq!(health.calls, calls, "the plugin was not called");
    assert_eq!(health.failures, 0, "not this instance's failure");
    // A state within the quota is imported.
    let mut other = faulty_metric(&[], limits(1 << 20)).await;
    other.on_tick(1).await.unwrap().to_samples();
    let state = other.export_state().await.unwrap().unwrap();
    m.import_state(&state).await.unwrap();
    let out = m.on_tick(2).await.unwrap().to_samples();
    assert_eq!(out[0].value, 2.0, "carried over the count of 1");
}
