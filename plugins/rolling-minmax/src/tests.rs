use wasmeter_sdk::state::StateWriter;

use super::*;

fn values(out: &[Sample]) -> Vec<(String, f64)> {
    out.iter().map(|s| (s.name.clone(), s.value)).collect()
}

fn min_max(min: f64, max: f64) -> Vec<(String, f64)> {
    vec![("p_min".into(), min), ("p_max".into(), max)]
}

fn g(v: f64, ts: i64) -> Sample {
    Sample::gauge("p", v).at(ts)
}

/// A window of 1000 ms in 10 buckets of 100 ms.
fn plugin() -> RollingMinMax {
    let cfg = Config::from_pairs(&[("window_ms", "1000"), ("buckets", "10")]);
    RollingMinMax::init(&cfg).unwrap()
}

fn buckets(p: &RollingMinMax) -> usize {
    p.series.by_key("p{}").unwrap().window.len()
}

#[test]
fn window_and_ticks() {
    let mut p = plugin();
    let out = p
        .on_samples(vec![g(5.0, 1000), g(1.0, 1500), g(3.0, 1800)])
        .unwrap();
    assert_eq!(values(&out[4..]), min_max(1.0, 5.0));
    assert_eq!(out[4].timestamp_ms, 1800);
    let out = p.on_samples(vec![g(4.0, 2600)]).unwrap();
    // The buckets of 1000 and 1500 are wholly older than 1600.
    assert_eq!(values(&out), min_max(3.0, 4.0));
    assert!(p.on_tick(2700).unwrap().is_empty());
    let out = p.on_tick(2900).unwrap(); // [1800, 1900) leaves
    assert_eq!(values(&out), min_max(4.0, 4.0));
    assert_eq!(out[0].timestamp_ms, 2900);
    assert!(p.on_tick(4000).unwrap().is_empty());
    assert!(p.series.is_empty());
}

#[test]
fn exact_when_all_samples_fall_in_one_bucket() {
    let cfg = Config::from_pairs(&[("window_ms", "1000"), ("buckets", "1")]);
    let mut p = RollingMinMax::init(&cfg).unwrap();
    let vals: Vec<f64> = (0..999)
        .map(|i| f64::from((i * 7919) % 1009) - 500.25)
        .collect();
    for (i, &v) in vals.iter().enumerate() {
        let out = p.on_samples(vec![g(v, 5000 + i as i64)]).unwrap();
        let seen = &vals[..=i];
        let min = seen.iter().copied().fold(f64::INFINITY, f64::min);
        let max = seen.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        assert_eq!(values(&out), min_max(min, max), "after {} samples", i + 1);
    }
    assert_eq!(buckets(&p), 1);
}

#[test]
fn old_buckets_expire_and_ticks_emit_changes_only() {
    let mut p = plugin();
    p.on_samples(vec![g(5.0, 1000), g(9.0, 1099)]).unwrap(); // bucket [1000, 1100)
    p.on_samples(vec![g(5.0, 1150), g(7.0, 1300)]).unwrap();
    let out = p.on_samples(vec![g(6.0, 2099)]).unwrap();
    // The window of 2099 starts at 1099, inside [1000, 1100): 9 still counts.
    assert_eq!(values(&out), min_max(5.0, 9.0));
    assert!(p.on_tick(2099).unwrap().is_empty());
    // At 2100 [1000, 1100) leaves: the max changes.
    assert_eq!(values(&p.on_tick(2100).unwrap()), min_max(5.0, 7.0));
    assert_eq!(buckets(&p), 3);
    // At 2200 [1100, 1200) leaves, and with it the last 5.
    assert_eq!(values(&p.on_tick(2200).unwrap()), min_max(6.0, 7.0));
    // At 2400 [1300, 1400) leaves.
    assert_eq!(values(&p.on_tick(2400).unwrap()), min_max(6.0, 6.0));
    // Dropping a bucket that does not hold an extreme emits nothing.
    let mut p = plugin();
    p.on_samples(vec![g(5.0, 1000), g(5.0, 1150), g(8.0, 1160)])
        .unwrap();
    assert!(p.on_tick(2100).unwrap().is_empty());
    assert_eq!(buckets(&p), 1);
}

#[test]
fn a_million_samples_keep_the_state_size_constant() {
    let mut p = RollingMinMax::init(&Config::default()).unwrap(); // 60 s, 60 buckets
    p.on_samples(vec![g(0.0, 1)]).unwrap();
    let one_bucket = p.export_state().unwrap().len();
    // Each further bucket: index (1 + 8 bytes), min and max (2 * (1 + 8) bytes).
    let bound = one_bucket + 60 * 27;
    let mut sizes = Vec::new();
    // 1,000,000 samples over 200 s (5 per ms) in batches of 10,000.
    for batch in 0..100i64 {
        let samples = (0..10_000)
            .map(|i| {
                let n = batch * 10_000 + i;
                g((n % 1013) as f64, 1 + n / 5)
            })
            .collect();
        p.on_samples(samples).unwrap();
        let len = p.export_state().unwrap().len();
        assert!(
            len <= bound,
            "state of {len} bytes after {} samples",
            (batch + 1) * 10_000
        );
        sizes.push(len);
    }
    assert!(buckets(&p) <= 61);
    assert!(sizes[30..].iter().all(|&s| s == sizes[30]), "{sizes:?}");
}

#[test]
fn old_format_state_imports_into_buckets() {
    // What the deque releases (version 1) exported after 5@1000, 1@1500, 9@1600, 3@1800
    // with a window of 1000 ms: minimum candidates (1500, 1) (1800, 3), maximum
    // candidates (1600, 9) (1800, 3).
    let mut w = StateWriter::new("rolling-minmax", 1);
    w.count(1).str("p").labels(&[]).i64(1800);
    w.count(2).i64(1500).f64(1.0).i64(1800).f64(3.0);
    w.count(2).i64(1600).f64(9.0).i64(1800).f64(3.0);
    let old = w.finish();
    let mut p = plugin();
    p.import_state(&old).unwrap();
    assert_eq!(buckets(&p), 3);
    assert_eq!(
        values(&p.on_samples(vec![g(4.0, 1850)]).unwrap()),
        min_max(1.0, 9.0)
    );
    assert!(p.on_tick(2550).unwrap().is_empty());
    assert_eq!(values(&p.on_tick(2600).unwrap()), min_max(3.0, 9.0));
    assert_eq!(values(&p.on_tick(2700).unwrap()), min_max(3.0, 4.0));

    // Re-exported as version 2, it reads back the same.
    let new = p.export_state().unwrap();
    let mut q = plugin();
    q.import_state(&new).unwrap();
    let windows = |m: &RollingMinMax| -> Vec<(String, BucketWindow<Extremes>)> {
        let all = m.series.sorted();
        all.into_iter()
            .map(|(k, s)| (k.to_string(), s.window.clone()))
            .collect()
    };
    assert_eq!(windows(&q), windows(&p));
    assert_eq!(q.export_state().unwrap(), new);
}

#[test]
fn state_of_another_bucket_width_and_bad_states() {
    let mut p = plugin();
    p.on_samples(vec![g(3.0, 1000), g(8.0, 1250), g(2.0, 1600), g(4.0, 1990)])
        .unwrap();
    let state = p.export_state().unwrap();
    let cfg = Config::from_pairs(&[("window_ms", "1000"), ("buckets", "2")]);
    let mut q = RollingMinMax::init(&cfg).unwrap();
    q.import_state(&state).unwrap();
    assert_eq!(buckets(&q), 2); // [1000, 1500) and [1500, 2000)
    // At 2500 [1000, 1500) leaves (8 and 3); 2 and 4 stay.
    assert_eq!(values(&q.on_tick(2500).unwrap()), min_max(2.0, 4.0));

    let mut w = StateWriter::new("rolling-minmax", 7);
    w.count(0);
    let e = p.import_state(&w.finish()).unwrap_err();
    assert!(e.contains("version 7"), "{e}");
    let e = p.import_state(&state[..state.len() - 1]).unwrap_err();
    assert!(e.contains("truncated"), "{e}");
    assert_eq!(buckets(&p), 4, "a refused state leaves the series alone");
}

#[test]
fn config_errors_name_the_key() {
    let init = |pairs: &[(&str, &str)]| RollingMinMax::init(&Config::from_pairs(pairs));
    assert_eq!(
        init(&[("buckets", "0")]).unwrap_err(),
        "config `buckets`: `0` must be an integer between 1 and 3600"
    );
    assert_eq!(
        init(&[("buckets", "-3")]).unwrap_err(),
        "config `buckets`: `-3` is not a valid u32 (invalid digit found in string)"
    );
    assert_eq!(
        init(&[("window_ms", "0")]).unwrap_err(),
        "config `window_ms`: `0` must be > 0"
    );
    let p = init(&[("window_ms", "10")]).unwrap(); // more buckets than ms: 1 ms each
    assert_eq!(p.spec.width_ms(), 1);
}
