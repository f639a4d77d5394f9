//! Misbehaving plugins: the host survives, says what happened, rebuilds the
//! instance, quarantines repeat offenders, and other plugins keep working.

use std::cell::Cell;
use std::time::Duration;

use wasmeter_plugin::{CallError, CollectorWorld, Instance, PluginLimits};

use crate::support::{component, config, runtime};

async fn faulty(limits: PluginLimits) -> Instance<CollectorWorld> {
    let plugin = runtime()
        .load::<CollectorWorld>(component("faulty_collector"))
        .await
        .unwrap();
    plugin
        .instantiate_with_limits("faulty", vec![], limits)
        .await
        .unwrap()
}

fn limits() -> PluginLimits {
    PluginLimits {
        call_timeout: Duration::from_millis(100),
        memory_bytes: 16 << 20,
        quarantine_after: 100,
        ..PluginLimits::default()
    }
}

/// After a failure the plugin serves normal input again, from a fresh instance.
async fn still_serves(f: &mut Instance<CollectorWorld>) {
    let out = f.collect("src", b"fine\n").await.unwrap();
    assert_eq!(out.all_samples()[0].name, "faulty_lines_total");
}

#[tokio::test]
async fn infinite_loop_hits_the_deadline() {
    let mut f = faulty(limits()).await;
    let err = f.collect("src", b"loop\n").await.unwrap_err();
    assert_eq!(err, CallError::Deadline { limit_ms: 100 });
    assert_eq!(
        err.to_string(),
        "deadline exceeded: the call ran longer than 100 ms and was stopped"
    );
    still_serves(&mut f).await;
    assert_eq!(f.health().rebuilds, 1);
}

#[tokio::test]
async fn memory_hog_hits_the_cap() {
    let mut f = faulty(limits()).await;
    let err = f.collect("src", b"hog\n").await.unwrap_err();
    match &err {
        CallError::MemoryLimit {
            requested_bytes,
            limit_bytes,
        } => {
            assert_eq!(*limit_bytes, 16 << 20);
            assert!(requested_bytes > limit_bytes);
        }
        other => panic!("expected a memory limit error, got {other}"),
    }
    assert!(
        err.to_string().starts_with("memory limit exceeded"),
        "{err}"
    );
    still_serves(&mut f).await;
}

#[tokio::test]
async fn an_instance_that_keeps_growing_is_recycled_with_its_state() {
    // Each `leak` keeps 1 MiB the plugin never gives back (its runtime, say); it
    // would reach the 16 MiB cap in about 15 calls, trap, and be rebuilt without
    // its count. Past three quarters of the cap the host replaces it between two
    // calls by a fresh instance that imports the old one's state.
    let mut f = faulty(limits()).await;
    let mut counted = 0.0;
    for _ in 0..60 {
        let out = f.collect("src", b"leak\nline\n").await.unwrap();
        counted += 1.0;
        let count = &out.updates[0].fields[0].1;
        assert_eq!(
            count,
            &wasmeter_core::field::FieldValue::Number(counted),
            "the count carried over"
        );
    }
    let health = f.health();
    assert_eq!(health.failures, 0, "{health:?}");
    assert_eq!(health.rebuilds, 0, "{health:?}");
    assert!(health.recycles >= 4, "{health:?}");
}

#[tokio::test]
async fn panic_and_unreachable_are_traps_with_the_plugins_words() {
    let mut f = faulty(limits()).await;
    let err = f.collect("src", b"panic\n").await.unwrap_err();
    let CallError::Trap { message } = &err else {
        panic!("expected a trap, got {err}")
    };
    assert!(
        message.contains("faulty plugin panicked on purpose"),
        "the panic message is quoted: {message}"
    );
    still_serves(&mut f).await;

    let err = f.collect("src", b"unreachable\n").await.unwrap_err();
    assert!(err.to_string().contains("unreachable"), "{err}");
    still_serves(&mut f).await;
    assert_eq!(f.health().rebuilds, 2);
}

#[tokio::test]
async fn invalid_output_is_refused_with_the_reason() {
    let plugin = runtime()
        .load::<CollectorWorld>(component("faulty_collector"))
        .await
        .unwrap();
    // Building 150,000 samples takes a while on a loaded machine: a generous deadline.
    let limits = PluginLimits {
        memory_bytes: 128 << 20,
        call_timeout: Duration::from_secs(10),
        ..limits()
    };
    let mut f = plugin
        .instantiate_with_limits("faulty", config(&[("oversize_count", "150000")]), limits)
        .await
        .unwrap();
    for (trigger, expected) in [
        (
            "oversize",
            "150000 samples: more than the limit of 100000 per call",
        ),
        ("hugename", "longer than 200 bytes"),
        ("nan", "NaN is not a finite number"),
        ("badname", "metric name `bad name!` is not valid"),
    ] {
        let err = f
            .collect("src", format!("{trigger}\n").as_bytes())
            .await
            .unwrap_err();
        assert!(
            matches!(err, CallError::InvalidOutput(_)),
            "{trigger}: {err}"
        );
        assert!(err.to_string().contains(expected), "{trigger}: {err}");
        still_serves(&mut f).await;
    }
    let err = f.collect("src", b"error\n").await.unwrap_err();
    assert_eq!(
        err,
        CallError::Plugin("faulty plugin failed on purpose".into())
    );
    assert_eq!(
        f.health().rebuilds,
        0,
        "output problems do not poison the instance"
    );
}

#[tokio::test]
async fn repeated_failures_quarantine_the_plugin_until_released() {
    let mut f = faulty(PluginLimits {
        quarantine_after: 3,
        ..limits()
    })
    .await;
    for _ in 0..3 {
        f.collect("src", b"panic\n").await.unwrap_err();
    }
    assert!(f.health().quarantined);
    let err = f.collect("src", b"fine\n").await.unwrap_err();
    assert!(
        matches!(err, CallError::Quarantined { failures: 3, .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("panicked on purpose"),
        "names the last failure: {err}"
    );

    f.release();
    still_serves(&mut f).await;
    assert_eq!(f.health().failures, 3);
    assert_eq!(f.health().consecutive_failures, 0);
}

#[tokio::test]
async fn failures_in_init_refuse_the_instance() {
    let plugin = runtime()
        .load::<CollectorWorld>(component("faulty_collector"))
        .await
        .unwrap();
    for (mode, expected) in [
        ("error", "plugin error: init:"),
        ("panic", "panicked on purpose"),
        ("loop", "deadline exceeded"),
    ] {
        let err = plugin
            .instantiate_with_limits("faulty", config(&[("init", mode)]), limits())
            .await
            .err()
            .unwrap();
        assert!(err.to_string().contains(expected), "init={mode}: {err}");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_looping_plugin_does_not_stall_others() {
    let csv = runtime()
        .load::<CollectorWorld>(component("csv_collector"))
        .await
        .unwrap();
    let mut csv = csv.instantiate("csv", vec![]).await.unwrap();
    let mut f = faulty(PluginLimits {
        call_timeout: Duration::from_secs(2),
        ..limits()
    })
    .await;
    // One thread runs both: the looping guest and the CSV calls. The CSV calls make
    // progress only while the looping call is suspended, that is, only if the guest
    // yields to tokio (at every epoch tick). `progress` is read the moment the
    // looping call returns: CSV calls counted then ran while it was still running.
    let progress = Cell::new(0u32);
    let looping_done = Cell::new(false);
    let looping = async {
        let result = f.collect("src", b"loop\n").await;
        looping_done.set(true);
        (result, progress.get())
    };
    let working = async {
        let mut i = 0i64;
        while !looping_done.get() {
            let line = format!("BTC,{i},1,{}\n", 1_700_000_000_000i64 + i);
            let out = csv.collect("t.csv", line.as_bytes()).await.unwrap();
            assert_eq!(out.updates.len(), 1);
            progress.set(progress.get() + 1);
            i += 1;
            // Let the looping call resume, so that this loop ends with it.
            tokio::task::yield_now().await;
        }
    };
    let ((looped, progress_while_looping), ()) = tokio::join!(looping, working);
    assert!(
        matches!(looped, Err(CallError::Deadline { .. })),
        "{looped:?}"
    );
    assert!(
        progress_while_looping > 0,
        "the CSV plugin made no progress while the looping call ran"
    );
}

#[tokio::test]
async fn output_refused_by_the_host_counts_like_invalid_output() {
    let mut f = faulty(PluginLimits {
        quarantine_after: 3,
        ..limits()
    })
    .await;
    for round in 1..=3u64 {
        // The call succeeds; then the pipeline refuses its output.
        f.collect("src", b"forge\nfine\n").await.unwrap();
        f.record_failure("topic `trades/BTC-USD` belongs to pipeline `trades`");
        // Refusing the same call twice counts once.
        f.record_failure("topic `trades/BTC-USD` belongs to pipeline `trades`");
        let health = f.health();
        assert_eq!(health.failures, round);
        assert_eq!(health.calls, round);
        assert_eq!(health.consecutive_failures as u64, round);
        assert_eq!(health.quarantined, round == 3, "round {round}");
    }
    let health = f.health();
    assert_eq!(
        health.last_error.as_deref(),
        Some(
            "invalid output: output refused by the host: topic `trades/BTC-USD` belongs to pipeline `trades`"
        )
    );
    assert_eq!(
        health.rebuilds, 0,
        "refused output does not poison the instance"
    );
    let err = f.collect("src", b"fine\n").await.unwrap_err();
    assert!(
        matches!(err, CallError::Quarantined { failures: 3, .. }),
        "{err}"
    );

    // A success in between ends the streak, as for any failure.
    f.release();
    f.collect("src", b"fine\n").await.unwrap();
    f.record_failure("refused");
    f.collect("src", b"fine\n").await.unwrap();
    assert_eq!(f.health().consecutive_failures, 0);
}

#[tokio::test]
async fn guest_gets_no_files_network_or_environment() {
    // WASI is linked (Rust's std imports it) but grants nothing.
    let mut f = faulty(limits()).await;
    let out = f.collect("src", b"escape\n").await.unwrap();
    let report: Vec<_> = out.errors.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(report.len(), 3, "{report:?}");
    assert!(
        report[0].starts_with("read /etc/passwd: error"),
        "{report:?}"
    );
    assert!(
        report[1].starts_with("connect 127.0.0.1:1: error"),
        "{report:?}"
    );
    assert_eq!(report[2], "env: 0 variables");
}
