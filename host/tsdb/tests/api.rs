//! Matchers, label names and values, series limits, refusal counts, query
//! limits, validation, locking, the committer thread and concurrent readers.

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{HOUR, T0, test_options};
use wasmeter_tsdb::{
    Error, Labels, MatchOp, Matcher, MetricKind, Options, QueryLimits, Sample, Store, Tier,
};

fn m(op: MatchOp, name: &str, value: &str) -> Matcher {
    Matcher::new(op, name, value).unwrap()
}

fn names(v: &[Labels]) -> Vec<String> {
    v.iter().map(|l| l.to_string()).collect()
}

/// Four series: http_requests_total{job=api|web, code=200|500 (web has no code)}
/// and up{job=api}.
fn populated() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(dir.path(), test_options()).unwrap();
    let series = [
        Labels::new("http_requests_total", [("job", "api"), ("code", "200")]).unwrap(),
        Labels::new("http_requests_total", [("job", "api"), ("code", "500")]).unwrap(),
        Labels::new("http_requests_total", [("job", "web")]).unwrap(),
        Labels::new("up", [("job", "api")]).unwrap(),
    ];
    for (k, l) in series.iter().enumerate() {
        let samples: Vec<Sample> = (0..100)
            .map(|i| Sample::new(T0 + i * 1000, (k * 100 + i as usize) as f64))
            .collect();
        store
            .append_series(l, MetricKind::Counter, &samples)
            .unwrap();
    }
    // A series that only has data later.
    let late = Labels::new("late", [("job", "batch")]).unwrap();
    store
        .append_series(&late, MetricKind::Gauge, &[Sample::new(T0 + HOUR, 1.0)])
        .unwrap();
    store.commit().unwrap();
    (dir, store)
}

#[test]
fn matchers_follow_prometheus_semantics() {
    let (_d, s) = populated();
    let (a, b) = (T0, T0 + 2 * HOUR);
    let name = |v: &str| m(MatchOp::Equal, "__name__", v);
    let sel = |ms: &[Matcher]| names(&s.select(ms, a, b).unwrap());
    assert_eq!(sel(&[name("http_requests_total")]).len(), 3);
    assert_eq!(
        sel(&[
            name("http_requests_total"),
            m(MatchOp::Equal, "code", "200")
        ]),
        vec!["http_requests_total{code=\"200\", job=\"api\"}"]
    );
    // != matches series without the label.
    assert_eq!(
        sel(&[
            name("http_requests_total"),
            m(MatchOp::NotEqual, "code", "200")
        ])
        .len(),
        2
    );
    // code="" selects series without the label.
    assert_eq!(
        sel(&[name("http_requests_total"), m(MatchOp::Equal, "code", "")]),
        vec!["http_requests_total{job=\"web\"}"]
    );
    // Regexes are anchored.
    assert_eq!(sel(&[m(MatchOp::Regex, "job", "ap")]).len(), 0);
    assert_eq!(sel(&[m(MatchOp::Regex, "job", "ap.")]).len(), 3);
    assert_eq!(sel(&[m(MatchOp::Regex, "__name__", "http_.*|up")]).len(), 4);
    // !~ that matches the empty string also selects series without the label.
    assert_eq!(
        sel(&[
            name("http_requests_total"),
            m(MatchOp::NotRegex, "code", "5..")
        ])
        .len(),
        2
    );
    // =~ that matches empty: series without the label too.
    assert_eq!(
        sel(&[
            name("http_requests_total"),
            m(MatchOp::Regex, "code", "2..|")
        ])
        .len(),
        2
    );
    // A label nobody has, with a non-empty matcher: nothing.
    assert!(sel(&[m(MatchOp::Equal, "zone", "x")]).is_empty());
    // Only empty-matching matchers: refused, as in Prometheus.
    assert!(matches!(
        s.select(&[m(MatchOp::Regex, "job", ".*")], a, b),
        Err(Error::EmptySelector { .. })
    ));
    assert!(matches!(
        s.select(&[], a, b),
        Err(Error::EmptySelector { .. })
    ));
    // Time range: the late series is outside [T0, T0 + 10 min].
    assert!(names(&s.select(&[name("late")], T0, T0 + 600_000).unwrap()).is_empty());
    assert_eq!(
        names(&s.select(&[name("late")], T0, T0 + HOUR).unwrap()).len(),
        1
    );
}

#[test]
fn label_names_and_values() {
    let (_d, s) = populated();
    let (a, b) = (T0, T0 + 2 * HOUR);
    assert_eq!(
        s.label_names(&[], a, b).unwrap(),
        vec!["__name__", "code", "job"]
    );
    assert_eq!(
        s.label_values("job", &[], a, b).unwrap(),
        vec!["api", "batch", "web"]
    );
    assert_eq!(
        s.label_values("__name__", &[], a, b).unwrap(),
        vec!["http_requests_total", "late", "up"]
    );
    let up = [m(MatchOp::Equal, "__name__", "up")];
    assert_eq!(s.label_names(&up, a, b).unwrap(), vec!["__name__", "job"]);
    assert_eq!(
        s.label_values("code", &[m(MatchOp::Equal, "job", "api")], a, b)
            .unwrap(),
        vec!["200", "500"]
    );
    // Restricted by time: only the first 10 minutes.
    assert_eq!(
        s.label_values("job", &[], T0, T0 + 600_000).unwrap(),
        vec!["api", "web"]
    );
    assert!(
        s.label_values("job", &[], T0 - 2 * HOUR, T0 - HOUR)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn refusals_are_counted_not_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = Store::open(
        dir.path(),
        Options {
            max_future_ms: Some(60_000),
            ..test_options()
        },
    )
    .unwrap();
    let l = Labels::new("x", [("a", "b")]).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let t = now - 10_000;
    let out = s
        .append_series(
            &l,
            MetricKind::Gauge,
            &[
                Sample::new(t, 1.0),
                Sample::new(t + 1000, 2.0),
                Sample::new(t + 500, 3.0),       // out of order
                Sample::new(t + 1000, 4.0),      // duplicate timestamp
                Sample::new(t + 2000, f64::NAN), // non-finite
                Sample::new(t + 3000, f64::INFINITY),
                Sample::new(now + 3_600_000, 5.0), // too far in the future
                Sample::new(t + 4000, 6.0),
                Sample::new(t - 10 * HOUR, 7.0), // before the open window
            ],
        )
        .unwrap();
    assert_eq!(out.accepted, 3, "{out:?}");
    assert_eq!(out.out_of_order, 1);
    assert_eq!(out.duplicate, 1);
    assert_eq!(out.non_finite, 2);
    assert_eq!(out.too_new, 1);
    assert_eq!(out.too_old, 1);
    assert_eq!(out.refused(), 6);
    assert_eq!(out.new_series, 1);
    // Out of order against the stored data, in a later call, after a reopen too.
    let out = s
        .append_series(&l, MetricKind::Gauge, &[Sample::new(t + 3999, 1.0)])
        .unwrap();
    assert_eq!(out.out_of_order, 1);
    s.close().unwrap();
    let (s, _) = Store::open(dir.path(), test_options()).unwrap();
    let out = s
        .append_series(
            &l,
            MetricKind::Gauge,
            &[Sample::new(t + 3999, 1.0), Sample::new(t + 4000, 1.0)],
        )
        .unwrap();
    assert_eq!((out.out_of_order, out.duplicate, out.accepted), (1, 1, 0));
    // Invalid names fail before any work.
    assert!(matches!(
        Labels::new("x", [("bad-name", "v")]),
        Err(Error::InvalidLabelName { .. })
    ));
    assert!(matches!(
        Labels::new("0x", [("a", "v")]),
        Err(Error::InvalidMetricName { .. })
    ));
}

#[test]
fn series_limit_refuses_new_series_with_a_count() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = Store::open(
        dir.path(),
        Options {
            max_series: 3,
            ..test_options()
        },
    )
    .unwrap();
    let mut refused = 0;
    for i in 0..5 {
        let l = Labels::new("s", [("i", i.to_string())]).unwrap();
        let out = s
            .append_series(
                &l,
                MetricKind::Gauge,
                &[Sample::new(T0, 1.0), Sample::new(T0 + 1, 2.0)],
            )
            .unwrap();
        refused += out.series_limit;
    }
    assert_eq!(refused, 4);
    assert_eq!(s.stats().series, 3);
    // Existing series still take samples.
    let l = Labels::new("s", [("i", "0")]).unwrap();
    assert_eq!(
        s.append_series(&l, MetricKind::Gauge, &[Sample::new(T0 + 2, 3.0)])
            .unwrap()
            .accepted,
        1
    );
    let l9 = Labels::new("s", [("i", "9")]).unwrap();
    assert!(matches!(
        s.series_ref(&l9, MetricKind::Gauge),
        Err(Error::SeriesLimit { limit: 3, .. })
    ));
    // The limit holds across a reopen.
    s.close().unwrap();
    let (s, rec) = Store::open(
        dir.path(),
        Options {
            max_series: 3,
            ..test_options()
        },
    )
    .unwrap();
    assert_eq!(rec.series, 3);
    assert_eq!(
        s.append_series(&l9, MetricKind::Gauge, &[Sample::new(T0 + 5, 1.0)])
            .unwrap()
            .series_limit,
        1
    );
}

#[test]
fn query_limits_are_checked_before_work() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        limits: QueryLimits {
            max_series: 2,
            max_points_per_series: 11_000,
            max_total_points: 15_000,
        },
        ..test_options()
    };
    let (s, _) = Store::open(dir.path(), opts).unwrap();
    for i in 0..3 {
        let l = Labels::new("q", [("i", i.to_string())]).unwrap();
        s.append_series(&l, MetricKind::Gauge, &[Sample::new(T0, 1.0)])
            .unwrap();
    }
    let all = [Matcher::metric("q").unwrap()];
    let one = [
        Matcher::metric("q").unwrap(),
        Matcher::equal("i", "0").unwrap(),
    ];
    let two = [Matcher::metric("q").unwrap(), m(MatchOp::Regex, "i", "0|1")];
    let err = s
        .query_range(&one, T0, T0 + 11_000 * 1000, 1000, 300_000)
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::TooManyPoints {
                points: 11_001,
                limit: 11_000
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("11000 points per series"), "{err}");
    let err = s
        .query_range(&all, T0, T0 + 1000, 1000, 300_000)
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::TooManySeries {
                series: 3,
                limit: 2
            }
        ),
        "{err}"
    );
    let err = s
        .query_range(&two, T0, T0 + 10_000 * 1000, 1000, 300_000)
        .unwrap_err();
    assert!(matches!(err, Error::QueryTooLarge { .. }), "{err}");
    assert!(s.query_range(&two, T0, T0 + 1000, 1000, 300_000).is_ok());
    assert!(matches!(
        s.query_range(&one, T0, T0 - 1, 1000, 1),
        Err(Error::InvalidQuery(_))
    ));
    assert!(matches!(
        s.query_range(&one, T0, T0, 0, 1),
        Err(Error::InvalidQuery(_))
    ));
}

#[test]
fn one_store_per_directory() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = Store::open(dir.path(), test_options()).unwrap();
    assert!(matches!(
        Store::open(dir.path(), test_options()),
        Err(Error::Locked { .. })
    ));
    s.close().unwrap();
    assert!(Store::open(dir.path(), test_options()).is_ok());
}

#[test]
fn committer_thread_makes_appends_durable() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        commit_interval: Some(Duration::from_millis(20)),
        ..test_options()
    };
    let (s, _) = Store::open(dir.path(), opts).unwrap();
    let l = Labels::new("c", [("a", "b")]).unwrap();
    let out = s
        .append_series(&l, MetricKind::Gauge, &[Sample::new(T0, 1.0)])
        .unwrap();
    // Nobody calls commit: the store's own thread does.
    assert!(s.wait_durable(out.seq, Duration::from_secs(30)));
    assert!(s.stats().durable_seq >= out.seq);
    s.close().unwrap(); // joins the thread
}

#[test]
fn series_refs_are_the_fast_path() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = Store::open(dir.path(), test_options()).unwrap();
    let l = Labels::new("r", [("a", "b")]).unwrap();
    let r = s.series_ref(&l, MetricKind::Counter).unwrap();
    assert_eq!(s.series_ref(&l, MetricKind::Counter).unwrap(), r);
    let out = s
        .append_refs(&[(r, Sample::new(T0, 1.0)), (r, Sample::new(T0 + 1000, 2.0))])
        .unwrap();
    assert_eq!(out.accepted, 2);
    assert_eq!(s.kind(&l), Some(MetricKind::Counter));
    let q = s
        .query(&[Matcher::metric("r").unwrap()], T0 + 1000, 300_000)
        .unwrap();
    assert_eq!(q.series[0].points[0].value, 2.0);
    assert_eq!(q.tier, Tier::Raw);
}

/// A store whose chunks are cut at 16 samples (or buckets).
fn open_with_small_chunks(dir: &std::path::Path) -> Store {
    let opts = Options {
        chunk_items: 16,
        ..test_options()
    };
    Store::open(dir, opts).unwrap().0
}

#[test]
fn readers_run_while_a_writer_writes() {
    let dir = tempfile::tempdir().unwrap();
    let s = open_with_small_chunks(dir.path());
    let s = Arc::new(s);
    let l = Labels::new("w", [("a", "b")]).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let n = 20_000i64;
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (s, done) = (s.clone(), done.clone());
            std::thread::spawn(move || {
                let m = [Matcher::metric("w").unwrap()];
                let mut checks = 0;
                while !done.load(Ordering::SeqCst) || checks == 0 {
                    let r = s
                        .query_range(&m, T0, T0 + (n - 1) * 1000, 10_000, 1000)
                        .unwrap();
                    // Whatever is visible is a gap-free prefix with the right values.
                    if let Some(sp) = r.series.first() {
                        for (i, p) in sp.points.iter().enumerate() {
                            assert_eq!(p.t_ms, T0 + i as i64 * 10_000);
                            assert_eq!(p.value, (i * 10) as f64);
                        }
                    }
                    checks += 1;
                }
                checks
            })
        })
        .collect();
    for i in 0..n {
        s.append_series(
            &l,
            MetricKind::Gauge,
            &[Sample::new(T0 + i * 1000, i as f64)],
        )
        .unwrap();
        if i % 1000 == 0 {
            s.commit().unwrap();
        }
    }
    done.store(true, Ordering::SeqCst);
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
    let r = s
        .query_range(
            &[Matcher::metric("w").unwrap()],
            T0,
            T0 + (n - 1) * 1000,
            10_000,
            1000,
        )
        .unwrap();
    assert_eq!(r.series[0].points.len(), (n / 10) as usize);
}

/// The stats count the chunks cut to disk per tier;
/// what is still open in the head is not among them.
#[test]
fn stats_count_the_chunks_cut_per_tier() {
    let dir = tempfile::tempdir().unwrap();
    let s = open_with_small_chunks(dir.path());
    let l = Labels::new("c", [("a", "b")]).unwrap();
    // 100 samples a second apart: 6 raw chunks of 16 cut, 4 samples open; the
    // 1 s tier's buckets likewise (its newest bucket still filling).
    let samples: Vec<Sample> = (0..100)
        .map(|i| Sample::new(T0 + i * 1000, i as f64))
        .collect();
    s.append_series(&l, MetricKind::Gauge, &samples).unwrap();
    s.commit().unwrap();
    let chunks = s.stats().chunks;
    assert_eq!(chunks[Tier::Raw.index()], 6, "{chunks:?}");
    assert_eq!(chunks[Tier::Second.index()], 6, "{chunks:?}");
    assert_eq!(chunks[Tier::Minute.index()], 0, "{chunks:?}");
    s.close().unwrap();
}

/// The checkpoint and log segment files in a store's directory.
fn checkpoint_and_log_files(dir: &std::path::Path) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let named = |ext: &str| -> Vec<PathBuf> {
        common::dir_files(dir)
            .into_iter()
            .map(|(p, _)| p)
            .filter(|p| p.extension().is_some_and(|e| e == ext))
            .collect()
    };
    (named("ckpt"), named("wal"))
}

#[test]
fn a_live_checkpoint_deletes_what_it_replaced_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        checkpoint_wal_bytes: 16 * 1024,
        ..test_options()
    };
    let (s, _) = Store::open(dir.path(), opts.clone()).unwrap();
    let labels = Labels::new("ck", [("a", "b")]).unwrap();
    let r = s.series_ref(&labels, MetricKind::Gauge).unwrap();
    let mut seen = Vec::new();
    let mut written = 0i64;
    while seen.len() < 3 {
        let batch: Vec<_> = (written..written + 200)
            .map(|i| (r, Sample::new(T0 + i * 1000, i as f64)))
            .collect();
        written += 200;
        s.append_refs(&batch).unwrap();
        s.commit().unwrap();
        // After every commit, and so after every checkpoint it ran: the newest
        // checkpoint (once there is one) and the log segment after it.
        let (checkpoints, segments) = checkpoint_and_log_files(dir.path());
        assert!(
            checkpoints.len() <= 1 && segments.len() == 1,
            "after {written} samples: {checkpoints:?}, {segments:?}"
        );
        if let Some(newest) = checkpoints.first()
            && seen.last() != Some(newest)
        {
            seen.push(newest.clone());
        }
        assert!(
            written < 1_000_000,
            "no third checkpoint after {written} samples"
        );
    }
    drop(s);
    let (s, _) = Store::open(dir.path(), opts).unwrap();
    let end = T0 + (written - 1) * 1000;
    let q = s
        .query_range(&[Matcher::metric("ck").unwrap()], T0, end, 1000, 1000)
        .unwrap();
    let values: Vec<f64> = q.series[0].points.iter().map(|p| p.value).collect();
    assert_eq!(values, (0..written).map(|i| i as f64).collect::<Vec<_>>());
}

#[test]
fn commits_from_two_threads_and_checkpoints_meanwhile_lose_nothing() {
    // The committer thread commits every millisecond while this thread
    // appends and commits too, and a checkpoint rolls the log every 16 KiB:
    // commits syncing without the writer's lock overlap each other's taking,
    // and the checkpoints' commits under it.
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        checkpoint_wal_bytes: 16 * 1024,
        commit_interval: Some(Duration::from_millis(1)),
        ..test_options()
    };
    let (s, _) = Store::open(dir.path(), opts.clone()).unwrap();
    let r = s
        .series_ref(&Labels::new("cc", [("a", "b")]).unwrap(), MetricKind::Gauge)
        .unwrap();
    let mut durable = 0;
    for round in 0..300i64 {
        let batch: Vec<_> = (round * 20..(round + 1) * 20)
            .map(|i| (r, Sample::new(T0 + i * 1000, i as f64)))
            .collect();
        let seq = s.append_refs(&batch).unwrap().seq;
        if round % 3 == 0 {
            let committed = s.commit().unwrap();
            assert!(
                committed >= seq,
                "commit returned {committed} before append {seq}"
            );
        }
        assert!(
            s.wait_durable(seq, Duration::from_secs(30)),
            "append {seq} never durable"
        );
        let now = s.stats().durable_seq;
        assert!(
            now >= durable,
            "the durable sequence went back from {durable} to {now}"
        );
        durable = now;
    }
    s.close().unwrap();
    let (checkpoints, segments) = checkpoint_and_log_files(dir.path());
    assert_eq!((checkpoints.len(), segments.len()), (1, 1));
    let (s, _) = Store::open(dir.path(), opts).unwrap();
    let q = s
        .query_range(
            &[Matcher::metric("cc").unwrap()],
            T0,
            T0 + 5_999_000,
            1000,
            1000,
        )
        .unwrap();
    let values: Vec<f64> = q.series[0].points.iter().map(|p| p.value).collect();
    assert_eq!(values, (0..6000).map(|i| i as f64).collect::<Vec<_>>());
}

#[test]
fn appends_between_a_live_checkpoints_pieces_are_each_stored_once() {
    // 3,000 series: a live checkpoint encodes them in three pieces, and the
    // appends of this thread land between them (each series as it is when its
    // piece is encoded, later than the log's roll). Chunks of 8 samples are cut
    // into partition files while the head is encoded. The store is then left
    // as a killed process leaves it: reopened from the last checkpoint and
    // the log after it, every series holds each of its samples once.
    const SERIES: usize = 3000;
    const ROUNDS: i64 = 40;
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        checkpoint_wal_bytes: 64 * 1024,
        commit_interval: Some(Duration::from_millis(1)),
        chunk_items: 8,
        ..test_options()
    };
    let (s, _) = Store::open(dir.path(), opts.clone()).unwrap();
    let refs: Vec<_> = (0..SERIES)
        .map(|i| {
            let labels = Labels::new("pieces", [("i", i.to_string().as_str())]).unwrap();
            s.series_ref(&labels, MetricKind::Gauge).unwrap()
        })
        .collect();
    for round in 0..ROUNDS {
        for part in refs.chunks(250) {
            let batch: Vec<_> = part
                .iter()
                .map(|r| (*r, Sample::new(T0 + round * 1000, round as f64)))
                .collect();
            s.append_refs(&batch).unwrap();
        }
    }
    let seq = s.commit().unwrap();
    assert!(s.wait_durable(seq, Duration::from_secs(30)));
    s.abandon();
    // Checkpoints were taken live: the newest is past the log's first rolls.
    let (checkpoints, _) = checkpoint_and_log_files(dir.path());
    let newest = checkpoints
        .iter()
        .filter_map(|p| {
            p.file_stem()?
                .to_str()?
                .strip_prefix("checkpoint-")?
                .parse::<u64>()
                .ok()
        })
        .max()
        .unwrap();
    assert!(newest >= 3, "checkpoints: {checkpoints:?}");

    let (s, _) = Store::open(dir.path(), opts).unwrap();
    let q = s
        .query_range(
            &[Matcher::metric("pieces").unwrap()],
            T0,
            T0 + (ROUNDS - 1) * 1000,
            1000,
            1000,
        )
        .unwrap();
    assert_eq!(q.series.len(), SERIES);
    assert_eq!(s.stats().now_ms, T0 + (ROUNDS - 1) * 1000);
    let expected: Vec<f64> = (0..ROUNDS).map(|r| r as f64).collect();
    for series in &q.series {
        let values: Vec<f64> = series.points.iter().map(|p| p.value).collect();
        assert_eq!(values, expected, "{:?}", series.labels);
    }
}
