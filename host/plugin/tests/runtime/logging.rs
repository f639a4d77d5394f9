//! A plugin's log volume is bounded: each line is capped, the instance's log bytes
//! per second are rate limited with the suppressed lines counted and reported, and
//! a call that floods the log by far fails.

use std::time::Duration;

use wasmeter_plugin::{CallError, CollectorWorld, MAX_MESSAGE_BYTES, MetricWorld, PluginLimits};

use crate::support::{LogCapture, component, config, runtime};

fn limits(log_bytes_per_sec: u64) -> PluginLimits {
    PluginLimits {
        call_timeout: Duration::from_secs(10),
        quarantine_after: 2,
        log_bytes_per_sec,
        ..PluginLimits::default()
    }
}

/// The lines of `text` written by the flood (lines of `F`).
fn flood_lines(text: &str) -> Vec<&str> {
    text.lines().filter(|l| l.contains("FFFFFFFF")).collect()
}

/// Checks what a call that wrote 100 lines of 10,000 bytes left in the log.
fn check_capped_and_limited(text: &str, suppressed_lines: u64, suppressed_bytes: u64) {
    let lines = flood_lines(text);
    assert!(
        (1..100).contains(&lines.len()),
        "some lines pass, most do not: {} passed",
        lines.len()
    );
    assert_eq!(lines.len() as u64 + suppressed_lines, 100);
    for line in &lines {
        assert!(line.len() < MAX_MESSAGE_BYTES + 200, "{} bytes", line.len());
        assert!(
            line.contains("… [5904 bytes cut]"),
            "{}",
            &line[line.len() - 60..]
        );
    }
    // "N log lines (M bytes) suppressed": at the end of the call, and before a line
    // that passes again if the bucket refilled meanwhile. Together they count all.
    let (mut lines, mut bytes) = (0, 0);
    for summary in text.lines().filter(|l| l.contains(" bytes) suppressed")) {
        let words: Vec<&str> = summary.split_whitespace().collect();
        let at = words.iter().position(|w| *w == "log").expect("N log lines");
        lines += words[at - 1].parse::<u64>().unwrap();
        bytes += words[at + 2]
            .trim_start_matches('(')
            .parse::<u64>()
            .unwrap();
    }
    assert_eq!((lines, bytes), (suppressed_lines, suppressed_bytes));
}

#[tokio::test]
async fn log_import_lines_are_capped_and_rate_limited() {
    let plugin = runtime()
        .load::<CollectorWorld>(component("faulty_collector"))
        .await
        .unwrap();
    let mut f = plugin
        .instantiate_with_limits(
            "chatty",
            config(&[("log_lines", "100"), ("log_line_bytes", "10000")]),
            limits(100_000),
        )
        .await
        .unwrap();
    let (capture, _guard) = LogCapture::start();
    f.collect("src", b"log-flood\n").await.unwrap();
    let health = f.health();
    // 100,000 bytes of quota, ~4.2 KB per capped line: about 23 lines pass.
    assert!(health.log_lines_suppressed >= 70, "{health:?}");
    check_capped_and_limited(
        &capture.text(),
        health.log_lines_suppressed,
        health.log_bytes_suppressed,
    );
    assert_eq!(health.failures, 0, "chatty, not flooding: {health:?}");
}

#[tokio::test]
async fn stdout_shares_the_quota_and_the_caps() {
    let plugin = runtime()
        .load::<MetricWorld>(component("faulty_metric"))
        .await
        .unwrap();
    let mut m = plugin
        .instantiate_with_limits(
            "chatty",
            config(&[
                ("mode", "log-flood"),
                ("log_via", "stdout"),
                ("log_lines", "100"),
                ("log_line_bytes", "10000"),
            ]),
            limits(100_000),
        )
        .await
        .unwrap();
    let (capture, _guard) = LogCapture::start();
    m.on_tick(1).await.unwrap().to_samples();
    let health = m.health();
    assert!(health.log_lines_suppressed >= 70, "{health:?}");
    check_capped_and_limited(
        &capture.text(),
        health.log_lines_suppressed,
        health.log_bytes_suppressed,
    );
    // The quota is the instance's: the next call finds the bucket still empty.
    m.on_tick(2).await.unwrap().to_samples();
    assert!(m.health().log_lines_suppressed >= health.log_lines_suppressed + 90);
}

#[tokio::test]
async fn a_log_flood_fails_the_call_and_counts_toward_quarantine() {
    let plugin = runtime()
        .load::<CollectorWorld>(component("faulty_collector"))
        .await
        .unwrap();
    // Ten lines of 2 MiB: 20 MiB, more than 16 s of a 64 KiB/s quota.
    let mut f = plugin
        .instantiate_with_limits("flood", vec![], limits(64 << 10))
        .await
        .unwrap();
    for round in 1..=2 {
        let err = f.collect("src", b"log-flood\nfine\n").await.unwrap_err();
        assert!(matches!(err, CallError::InvalidOutput(_)), "{err}");
        assert_eq!(
            err.to_string(),
            "invalid output: log output: the call tried to log 20971650 bytes, more than 16 s of its quota of 65536 bytes/s (log_bytes_per_sec)"
        );
        assert_eq!(f.health().failures, round);
    }
    let health = f.health();
    assert!(health.quarantined, "{health:?}");
    assert_eq!(health.rebuilds, 0, "a flood does not poison the instance");
}
