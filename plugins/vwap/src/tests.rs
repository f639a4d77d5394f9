use wasmeter_sdk::state::StateWriter;

use std::collections::HashMap;

use super::*;

fn trade(symbol: &str, price: f64, qty: f64, ts: i64) -> Vec<Sample> {
    vec![
        Sample::gauge("trade_price", price)
            .with_label("symbol", symbol)
            .at(ts),
        Sample::gauge("trade_qty", qty)
            .with_label("symbol", symbol)
            .at(ts),
        Sample::counter("trades_total", 1.0)
            .with_label("symbol", symbol)
            .at(ts),
    ]
}

/// A window of 1000 ms in 10 buckets of 100 ms.
fn plugin() -> Vwap {
    Vwap::init(&Config::from_pairs(&[
        ("window_ms", "1000"),
        ("buckets", "10"),
    ]))
    .unwrap()
}

fn vwaps(out: &[Sample]) -> Vec<(String, f64, i64)> {
    out.iter()
        .map(|s| {
            let symbol = s.label("symbol").unwrap_or_default().to_string();
            (symbol, s.value, s.timestamp_ms)
        })
        .collect()
}

/// The series with trades, by key.
fn with_trades(p: &Vwap) -> HashMap<String, Series> {
    p.slots
        .sorted()
        .into_iter()
        .filter(|(_, slot)| !slot.series.window.is_empty())
        .map(|(key, slot)| (key.to_string(), slot.series.clone()))
        .collect()
}

fn buckets(p: &Vwap, symbol: &str) -> usize {
    let key = series::key("", &[Label::new("symbol", symbol)]);
    with_trades(p)[&key].window.len()
}

#[test]
fn pairs_windows_and_ticks() {
    let mut p = plugin();
    let mut batch = trade("A", 10.0, 1.0, 1000);
    batch.extend(trade("A", 20.0, 3.0, 1000));
    batch.extend(trade("B", 5.0, 2.0, 1100));
    batch.extend(trade("B", 7.0, -1.0, 1100)); // negative volume: ignored
    batch.push(
        Sample::gauge("trade_price", 99.0)
            .with_label("symbol", "A")
            .at(1),
    ); // unpaired
    let out = p.on_samples(batch).unwrap();
    assert_eq!(out[0].name, "trade_vwap");
    assert_eq!(
        vwaps(&out),
        vec![("A".into(), 17.5, 1000), ("B".into(), 5.0, 1100)]
    );
    let out = p.on_samples(trade("A", 30.0, 4.0, 1900)).unwrap();
    assert_eq!(vwaps(&out), vec![("A".into(), 190.0 / 8.0, 1900)]);
    // At 2200 the buckets [1000, 1100) and [1100, 1200) are wholly older than 1200.
    let out = p.on_tick(2200).unwrap();
    assert_eq!(vwaps(&out), vec![("A".into(), 30.0, 2200)]);
    assert_eq!(
        with_trades(&p).len(),
        1,
        "B, left without trades, is forgotten"
    );
    assert!(p.on_tick(2210).unwrap().is_empty(), "nothing expired");
}

#[test]
fn exact_when_all_trades_fall_in_one_bucket() {
    // One bucket of 1000 ms: [5000, 6000).
    let mut p = Vwap::init(&Config::from_pairs(&[
        ("window_ms", "1000"),
        ("buckets", "1"),
    ]))
    .unwrap();
    let trades: Vec<(f64, f64, i64)> = (0..500)
        .map(|i| {
            (
                100.0 + f64::from(i % 37) * 0.013,
                0.1 + f64::from(i % 11),
                5000 + i64::from(i) * 2,
            )
        })
        .collect();
    let mut last = None;
    for chunk in trades.chunks(7) {
        let batch = chunk
            .iter()
            .flat_map(|&(pr, q, ts)| trade("X", pr, q, ts))
            .collect();
        last = p.on_samples(batch).unwrap().pop();
    }
    let (n, v) = trades
        .iter()
        .fold((0.0, 0.0), |(n, v), &(pr, q, _)| (n + pr * q, v + q));
    assert_eq!(buckets(&p, "X"), 1);
    // Bit for bit the per-trade result: same sums, in the same order.
    assert_eq!(last.unwrap().value, n / v);
}

#[test]
fn old_buckets_expire() {
    let mut p = plugin();
    p.on_samples(trade("A", 10.0, 1.0, 1000)).unwrap(); // bucket [1000, 1100)
    p.on_samples(trade("A", 20.0, 1.0, 1099)).unwrap(); // same bucket
    p.on_samples(trade("A", 40.0, 2.0, 1100)).unwrap(); // bucket [1100, 1200)
    let out = p.on_samples(trade("A", 100.0, 1.0, 2099)).unwrap();
    // The window of 2099 starts at 1099, inside [1000, 1100): all four trades count.
    assert_eq!(vwaps(&out), vec![("A".into(), 210.0 / 5.0, 2099)]);
    assert!(p.on_tick(2099).unwrap().is_empty());
    // At 2100 the bucket [1000, 1100) is wholly out: 1000 counted for 1099 ms, 1099 for 1000.
    let out = p.on_tick(2100).unwrap();
    assert_eq!(vwaps(&out), vec![("A".into(), 180.0 / 3.0, 2100)]);
    assert_eq!(buckets(&p, "A"), 2);
    let out = p.on_tick(2200).unwrap(); // [1100, 1200) out
    assert_eq!(vwaps(&out), vec![("A".into(), 100.0, 2200)]);
    assert!(p.on_tick(3100).unwrap().is_empty()); // the last bucket out: forgotten
    assert!(with_trades(&p).is_empty() && p.slots.is_empty());
}

#[test]
fn a_million_trades_keep_the_state_size_constant() {
    let mut p = Vwap::init(&Config::from_pairs(&[("window_ms", "60000")])).unwrap();
    p.on_samples(trade("BTC", 1.0, 1.0, 1)).unwrap();
    let one_bucket = p.export_state().unwrap().len();
    // Each further bucket: index (1 + 8 bytes) and two sums (2 * (1 + 8) bytes).
    let bound = one_bucket + 60 * 27;
    let mut sizes = Vec::new();
    // 1,000,000 trades over 200 s (5 per ms) in batches of 10,000.
    for batch in 0..100 {
        let samples = (0..10_000i64)
            .flat_map(|i| {
                let n = batch * 10_000 + i;
                trade("BTC", 100.0 + (n % 13) as f64, 1.0, 1 + n / 5)
            })
            .collect();
        p.on_samples(samples).unwrap();
        let len = p.export_state().unwrap().len();
        assert!(
            len <= bound,
            "state of {len} bytes after {} trades",
            (batch + 1) * 10_000
        );
        sizes.push(len);
    }
    assert!(buckets(&p, "BTC") <= 61);
    // From 60 s on (300,000 trades) the window is full: the size no longer changes.
    assert!(sizes[30..].iter().all(|&s| s == sizes[30]), "{sizes:?}");
}

/// A trade of a version 1 state: timestamp, price, quantity.
type OldTrade = (i64, f64, f64);

/// The state the per-trade releases (schema version 1) exported.
fn v1_state(series: &[(&str, &[OldTrade])]) -> Vec<u8> {
    let mut w = StateWriter::new("vwap", 1);
    w.count(series.len());
    for (symbol, trades) in series {
        w.labels(&[Label::new("symbol", *symbol)])
            .count(trades.len());
        for &(ts, price, qty) in *trades {
            w.i64(ts).f64(price * qty).f64(qty);
        }
    }
    w.finish()
}

#[test]
fn old_format_state_imports_into_buckets() {
    let old = v1_state(&[
        (
            "A",
            &[(1000, 10.0, 1.0), (1050, 20.0, 3.0), (1900, 30.0, 4.0)],
        ),
        ("B", &[(1100, 5.0, 2.0)]),
    ]);
    let mut p = plugin();
    p.import_state(&old).unwrap();
    assert_eq!((buckets(&p, "A"), buckets(&p, "B")), (2, 1));
    let a = &with_trades(&p)[&series::key("", &[Label::new("symbol", "A")])];
    assert_eq!(a.vwap(), Some(190.0 / 8.0));
    // The same answers as the per-trade window: A (10 + 60 + 120) / 8, B 5.
    let out = p.on_samples(trade("B", 5.0, 2.0, 1950)).unwrap();
    assert_eq!(vwaps(&out), vec![("B".into(), 5.0, 1950)]);
    let out = p.on_tick(2100).unwrap(); // A's [1000, 1100) leaves; B's [1100, 1200) stays
    assert_eq!(vwaps(&out), vec![("A".into(), 30.0, 2100)]);

    // Re-exported as version 2, it reads back the same.
    let new = p.export_state().unwrap();
    let mut q = plugin();
    q.import_state(&new).unwrap();
    assert_eq!(with_trades(&q), with_trades(&p));
    assert_eq!(q.export_state().unwrap(), new);

    // An old window longer than the new one is cut to it while reading.
    let long: Vec<OldTrade> = (0..100_000).map(|i| (i, 1.0, 1.0)).collect();
    let mut p = plugin();
    p.import_state(&v1_state(&[("A", &long)])).unwrap();
    assert_eq!(buckets(&p, "A"), 11);
}

#[test]
fn state_of_another_bucket_width_and_bad_states() {
    let mut p = plugin();
    for ts in [1000, 1150, 1420, 1990] {
        p.on_samples(trade("A", ts as f64, 1.0, ts)).unwrap();
    }
    let state = p.export_state().unwrap();
    let cfg = Config::from_pairs(&[("window_ms", "1000"), ("buckets", "2")]);
    let mut q = Vwap::init(&cfg).unwrap();
    q.import_state(&state).unwrap();
    assert_eq!(buckets(&q, "A"), 2); // [1000, 1500) and [1500, 2000)
    let out = q.on_samples(trade("A", 2000.0, 1.0, 2000)).unwrap();
    assert_eq!(
        out[0].value,
        (1000.0 + 1150.0 + 1420.0 + 1990.0 + 2000.0) / 5.0
    );

    let mut w = StateWriter::new("vwap", 3);
    w.count(0);
    let e = p.import_state(&w.finish()).unwrap_err();
    assert!(e.contains("version 3"), "{e}");
    let e = p.import_state(&state[..state.len() - 3]).unwrap_err();
    assert!(e.contains("truncated"), "{e}");
    let mut e = StateWriter::new("ewma", 1);
    e.count(0);
    assert!(p.import_state(&e.finish()).unwrap_err().contains("`ewma`"));
    assert_eq!(
        buckets(&p, "A"),
        4,
        "a refused state leaves the series alone"
    );
}

#[test]
fn config_errors_name_the_key() {
    let init = |pairs: &[(&str, &str)]| Vwap::init(&Config::from_pairs(pairs)).unwrap_err();
    assert_eq!(
        init(&[("buckets", "0")]),
        "config `buckets`: `0` must be an integer between 1 and 3600"
    );
    assert!(init(&[("buckets", "many")]).starts_with("config `buckets`: `many`"));
    assert_eq!(
        init(&[("window_ms", "0")]),
        "config `window_ms`: `0` must be > 0"
    );
    assert!(init(&[("price", "trade_qty")]).contains("must differ"));
    let p = Vwap::init(&Config::default()).unwrap();
    assert_eq!((p.spec.window_ms(), p.spec.width_ms()), (300_000, 5_000));
}

#[test]
fn prices_and_volumes_pair_in_order_adjacent_or_not() {
    let price = |v: f64, ts| {
        Sample::gauge("trade_price", v)
            .with_label("symbol", "A")
            .at(ts)
    };
    let qty = |v: f64, ts| {
        Sample::gauge("trade_qty", v)
            .with_label("symbol", "A")
            .at(ts)
    };
    let mut p = plugin();
    // Two trades of one millisecond, their prices first: paired in order.
    let out = p
        .on_samples(vec![
            price(10.0, 1000),
            price(20.0, 1000),
            qty(1.0, 1000),
            qty(3.0, 1000),
        ])
        .unwrap();
    assert_eq!(vwaps(&out), vec![("A".into(), 70.0 / 4.0, 1000)]);
    // A price waits; the adjacent pair after it pairs its volume with the
    // waiting price, not with its neighbour (which is left unpaired).
    let out = p
        .on_samples(vec![price(30.0, 2000), price(40.0, 2000), qty(2.0, 2000)])
        .unwrap();
    assert_eq!(vwaps(&out), vec![("A".into(), 130.0 / 6.0, 2000)]);
}

#[test]
fn series_kept_by_number_across_calls_give_what_series_looked_up_each_call_do() {
    // Two instances fed the same calls: one through a feed that keeps the
    // host's numbers across calls (and starts them over now and then), one
    // whose series are numbered afresh at every call. Ticks drop series that
    // lost their trades, which moves the others' slots.
    let (mut kept, mut fresh) = (plugin(), plugin());
    let mut feed = PointFeed::default();
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    };
    let mut now = 1_000;
    for call in 0..400 {
        let mut batch = Vec::new();
        for _ in 0..next(8) {
            let symbol = format!("S{}", next(12));
            let mut trade = trade(&symbol, 1.0 + next(100) as f64, next(5) as f64, now);
            if next(4) == 0 {
                trade.swap(0, 1);
            }
            batch.extend(trade);
        }
        if next(10) == 0 {
            feed.renumber();
        }
        let a = feed.call(&mut kept, batch.clone()).unwrap();
        let b = fresh.on_samples(batch).unwrap();
        assert_eq!(a, b, "call {call}");
        now += next(300) as i64;
        if next(3) == 0 {
            let (mut a, mut b) = (kept.on_tick(now).unwrap(), fresh.on_tick(now).unwrap());
            a.sort_by(|x, y| x.labels[0].value.cmp(&y.labels[0].value));
            b.sort_by(|x, y| x.labels[0].value.cmp(&y.labels[0].value));
            assert_eq!(a, b, "tick after call {call}");
        }
    }
    assert_eq!(with_trades(&kept), with_trades(&fresh));
}
