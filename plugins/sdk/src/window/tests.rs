use super::*;

/// A sum and a count, so tests see how values were merged.
#[derive(Debug, Clone, PartialEq)]
struct Sum(f64, u32);

impl Aggregate for Sum {
    fn merge(&mut self, other: &Self) {
        self.0 += other.0;
        self.1 += other.1;
    }
}

fn one(v: f64) -> Sum {
    Sum(v, 1)
}

fn buckets(w: &BucketWindow<Sum>) -> Vec<(i64, f64)> {
    w.iter().map(|(i, s)| (i, s.0)).collect()
}

fn write(w: &BucketWindow<Sum>, width_ms: i64) -> Vec<u8> {
    let mut out = StateWriter::new("t", 1);
    out.i64(width_ms);
    w.write(&mut out, |o, s| {
        o.f64(s.0).u64(u64::from(s.1));
    });
    out.finish()
}

fn read(bytes: &[u8], spec: &BucketSpec) -> Result<BucketWindow<Sum>, String> {
    let mut r = StateReader::new(bytes, "t")?;
    let width = r.i64()?;
    let w = BucketWindow::read(&mut r, spec, width, |r| {
        Ok(Sum(r.f64()?, u32::try_from(r.u64()?).unwrap()))
    })?;
    r.finish()?;
    Ok(w)
}

#[test]
fn widths_and_config_errors() {
    let width = |w, b| BucketSpec::new(w, b).unwrap().width_ms();
    assert_eq!(width(60_000, 60), 1000);
    assert_eq!(width(1000, 60), 17); // rounded up: 60 buckets cover 1020 ms
    assert_eq!(width(10, 60), 1); // never below 1 ms
    assert_eq!(width(i64::MAX, 1), i64::MAX);
    assert!(BucketSpec::new(0, 1).is_err());
    assert!(BucketSpec::new(1, 0).is_err());

    let from = |pairs: &[(&str, &str)]| BucketSpec::from_config(&Config::from_pairs(pairs), 500);
    let spec = from(&[]).unwrap();
    assert_eq!((spec.window_ms(), spec.width_ms()), (500, 9));
    assert_eq!(from(&[("buckets", "5")]).unwrap().width_ms(), 100);
    assert_eq!(
        from(&[("buckets", "0")]).unwrap_err(),
        "config `buckets`: `0` must be an integer between 1 and 3600"
    );
    assert_eq!(
        from(&[("buckets", "3601")]).unwrap_err(),
        "config `buckets`: `3601` must be an integer between 1 and 3600"
    );
    let e = from(&[("buckets", "ten")]).unwrap_err();
    assert!(
        e.starts_with("config `buckets`: `ten` is not a valid u32"),
        "{e}"
    );
    let e = from(&[("window_ms", "-5")]).unwrap_err();
    assert_eq!(e, "config `window_ms`: `-5` must be > 0");
}

#[test]
fn a_bucket_leaves_when_wholly_older_than_the_window() {
    let spec = BucketSpec::new(1000, 10).unwrap();
    let mut w = BucketWindow::new();
    w.add(&spec, 1_000, one(1.0)); // bucket 10: [1000, 1100)
    w.add(&spec, 1_099, one(2.0)); // bucket 10
    w.add(&spec, 1_100, one(4.0)); // bucket 11
    assert_eq!(buckets(&w), vec![(10, 3.0), (11, 4.0)]);
    assert_eq!(w.total(), Some(&Sum(7.0, 3)));
    // A sample at 2_099 keeps [1000, 1100): 1_099 is exactly window_ms old.
    w.add(&spec, 2_099, one(8.0));
    assert_eq!(buckets(&w), vec![(10, 3.0), (11, 4.0), (20, 8.0)]);
    // At 2_100 the whole bucket 10 is older than 1_100: dropped (1_000 counted 1099 ms).
    assert!(w.expire(&spec, 2_100));
    assert_eq!(buckets(&w), vec![(11, 4.0), (20, 8.0)]);
    assert_eq!(w.total(), Some(&Sum(12.0, 2)));
    assert!(!w.expire(&spec, 2_199));
    assert!(w.expire(&spec, 3_200));
    assert!(w.is_empty());
    assert_eq!(w.total(), None);
    assert_eq!(w.newest(), Some(2_099));
}

#[test]
fn late_values_count_at_the_newest_and_memory_is_bounded() {
    let spec = BucketSpec::new(1000, 10).unwrap();
    let mut w = BucketWindow::new();
    assert_eq!(w.add(&spec, 5_000, one(1.0)), 5_000);
    assert_eq!(w.add(&spec, 100, one(1.0)), 5_000); // late: counted at 5_000
    assert_eq!(buckets(&w), vec![(50, 2.0)]);
    for ts in 5_001..200_000 {
        w.add(&spec, ts, one(1.0));
        assert!(w.len() <= 11, "{} buckets at {ts}", w.len());
    }
    // [198999, 199999] touches buckets 1989..=1999, of 100 values each.
    assert_eq!(w.len(), 11);
    assert_eq!(w.total().unwrap().1, 1100);
}

#[test]
fn state_round_trip_and_rebucketing() {
    let spec = BucketSpec::new(1000, 10).unwrap();
    let mut w = BucketWindow::new();
    for (ts, v) in [(1_000, 1.0), (1_250, 2.0), (1_260, 4.0), (1_900, 8.0)] {
        w.add(&spec, ts, one(v));
    }
    let bytes = write(&w, spec.width_ms());
    let back = read(&bytes, &spec).unwrap();
    assert_eq!(back, w);
    assert_eq!(back.total(), w.total());
    assert_eq!(write(&back, spec.width_ms()), bytes);

    // Another width: each old bucket counts as of its last millisecond.
    let coarse = BucketSpec::new(1000, 2).unwrap(); // 500 ms
    let w2 = read(&bytes, &coarse).unwrap();
    // 10 [1000,1100) -> 1099; 12 [1200,1300) -> 1299; 19 [1900,2000) -> 1900 (newest).
    assert_eq!(buckets(&w2), vec![(2, 7.0), (3, 8.0)]);
    assert_eq!(w2.newest(), Some(1_900));

    // A shorter window: buckets outside it are dropped while reading.
    let short = BucketSpec::new(200, 2).unwrap(); // 100 ms, window of 1900: from 1700
    assert_eq!(buckets(&read(&bytes, &short).unwrap()), vec![(19, 8.0)]);

    let empty = BucketWindow::<Sum>::new();
    assert_eq!(read(&write(&empty, 100), &spec).unwrap(), empty);
}

#[test]
fn corrupt_state_is_an_error() {
    let spec = BucketSpec::new(1000, 10).unwrap();
    let mut out = StateWriter::new("t", 1);
    out.i64(100).i64(2_000).count(2);
    out.i64(12).f64(1.0).u64(1);
    out.i64(12).f64(1.0).u64(1);
    let e = read(&out.finish(), &spec).unwrap_err();
    assert_eq!(
        e,
        "state: bucket 12 after bucket 12 (indexes must increase)"
    );
    let mut out = StateWriter::new("t", 1);
    out.i64(0).i64(2_000).count(0);
    assert!(
        read(&out.finish(), &spec)
            .unwrap_err()
            .contains("width 0 ms")
    );
}
