//! The derived-metric plugins: rate, EWMA, rolling min/max, VWAP, threshold alert.

use wasmeter_core::sample::{Label, MetricKind, Sample};
use wasmeter_plugin::MetricWorld;

use crate::support::{component, config, runtime, value_of};

fn sample(name: &str, symbol: &str, value: f64, kind: MetricKind, ts: i64) -> Sample {
    Sample {
        name: name.into(),
        labels: vec![Label::new("symbol", symbol)],
        value,
        kind,
        timestamp_ms: ts,
    }
}

fn gauge(name: &str, value: f64, ts: i64) -> Sample {
    sample(name, "BTC", value, MetricKind::Gauge, ts)
}

#[tokio::test]
async fn counter_rate_per_second_with_reset_and_state_carry_over() {
    let plugin = runtime()
        .load::<MetricWorld>(component("counter_rate"))
        .await
        .unwrap();
    assert!(plugin.meta().info.stateful);
    let mut rate = plugin.instantiate("rate", vec![]).await.unwrap();

    let c = |v, ts| sample("trades_total", "BTC", v, MetricKind::Counter, ts);
    assert!(
        rate.on_sample_list(&[c(10.0, 1_000)])
            .await
            .unwrap()
            .is_empty()
    );
    let out = rate.on_sample_list(&[c(30.0, 3_000)]).await.unwrap();
    assert_eq!(
        value_of(&out, "trades_total_per_second", &[("symbol", "BTC")]),
        10.0
    );

    // A hot swap: the state moves to a fresh instance, which continues from it.
    let state = rate
        .export_state()
        .await
        .unwrap()
        .expect("stateful plugin exports state");
    let mut next = plugin.instantiate("rate-v2", vec![]).await.unwrap();
    next.import_state(&state).await.unwrap();
    // Counter reset: 30 -> 4 means 4 new events; over the window (from the
    // first sample, 1 s, carried across the swap): 20 + 4 in 4 s.
    let out = next.on_sample_list(&[c(4.0, 5_000)]).await.unwrap();
    assert_eq!(
        value_of(&out, "trades_total_per_second", &[("symbol", "BTC")]),
        6.0
    );

    // Gauges are not rated by default.
    assert!(
        next.on_sample_list(&[gauge("trade_price", 1.0, 6_000)])
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn ewma_smooths_each_series() {
    let plugin = runtime()
        .load::<MetricWorld>(component("ewma"))
        .await
        .unwrap();
    let mut ewma = plugin
        .instantiate(
            "ewma",
            config(&[("alpha", "0.5"), ("metrics", "trade_price")]),
        )
        .await
        .unwrap();
    ewma.on_sample_list(&[gauge("trade_price", 100.0, 1)])
        .await
        .unwrap();
    let out = ewma
        .on_sample_list(&[gauge("trade_price", 200.0, 2)])
        .await
        .unwrap();
    assert_eq!(
        value_of(&out, "trade_price_ewma", &[("symbol", "BTC")]),
        150.0
    );
    let out = ewma
        .on_sample_list(&[gauge("trade_qty", 5.0, 3)])
        .await
        .unwrap();
    assert!(out.is_empty(), "only configured metrics: {out:?}");

    let err = plugin
        .instantiate("ewma", config(&[("alpha", "1.5")]))
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("alpha"), "{err}");
}

#[tokio::test]
async fn rolling_min_max_expires_old_samples() {
    let plugin = runtime()
        .load::<MetricWorld>(component("rolling_minmax"))
        .await
        .unwrap();
    let mut mm = plugin
        .instantiate("minmax", config(&[("window_ms", "1000")]))
        .await
        .unwrap();
    mm.on_sample_list(&[
        gauge("trade_price", 5.0, 1_000),
        gauge("trade_price", 9.0, 1_200),
    ])
    .await
    .unwrap();
    let out = mm
        .on_sample_list(&[gauge("trade_price", 7.0, 1_500)])
        .await
        .unwrap();
    assert_eq!(value_of(&out, "trade_price_min", &[("symbol", "BTC")]), 5.0);
    assert_eq!(value_of(&out, "trade_price_max", &[("symbol", "BTC")]), 9.0);
    // At 2.3 s the samples of 1.0 s and 1.2 s have left the window.
    let out = mm.on_tick(2_300).await.unwrap().to_samples();
    assert_eq!(value_of(&out, "trade_price_min", &[("symbol", "BTC")]), 7.0);
    assert_eq!(value_of(&out, "trade_price_max", &[("symbol", "BTC")]), 7.0);
}

#[tokio::test]
async fn vwap_over_a_window() {
    let plugin = runtime()
        .load::<MetricWorld>(component("vwap"))
        .await
        .unwrap();
    let mut vwap = plugin
        .instantiate("vwap", config(&[("window_ms", "10000")]))
        .await
        .unwrap();
    let trade = |p, q, ts| [gauge("trade_price", p, ts), gauge("trade_qty", q, ts)];
    vwap.on_sample_list(&trade(100.0, 1.0, 1_000))
        .await
        .unwrap();
    let out = vwap
        .on_sample_list(&trade(110.0, 3.0, 2_000))
        .await
        .unwrap();
    // (100*1 + 110*3) / 4 = 107.5
    assert_eq!(value_of(&out, "trade_vwap", &[("symbol", "BTC")]), 107.5);
    // The first trade leaves the window at 11.0 s.
    let out = vwap.on_tick(11_500).await.unwrap().to_samples();
    assert_eq!(value_of(&out, "trade_vwap", &[("symbol", "BTC")]), 110.0);
}

#[tokio::test]
async fn threshold_alert_fires_after_n_samples_and_clears() {
    let plugin = runtime()
        .load::<MetricWorld>(component("threshold_alert"))
        .await
        .unwrap();
    let mut alert = plugin
        .instantiate(
            "hot-cpu",
            config(&[
                ("metric", "cpu"),
                ("op", ">"),
                ("threshold", "90"),
                ("for_samples", "3"),
                ("name", "cpu_hot"),
            ]),
        )
        .await
        .unwrap();
    let cpu = |v, ts| gauge("cpu", v, ts);
    let mut fired_at = None;
    for (i, v) in [95.0, 96.0, 97.0, 98.0].into_iter().enumerate() {
        let out = alert.on_sample_list(&[cpu(v, i as i64 + 1)]).await.unwrap();
        if out
            .iter()
            .any(|s| s.name == "alert_state" && s.value == 1.0)
        {
            fired_at.get_or_insert(i + 1);
        }
    }
    assert_eq!(fired_at, Some(3), "fires on the third consecutive sample");
    let out = alert.on_sample_list(&[cpu(10.0, 10)]).await.unwrap();
    assert_eq!(
        value_of(
            &out,
            "alert_state",
            &[("alert", "cpu_hot"), ("symbol", "BTC")]
        ),
        0.0
    );
    let out = alert.on_tick(20).await.unwrap().to_samples();
    assert_eq!(value_of(&out, "alert_state", &[("alert", "cpu_hot")]), 0.0);

    let err = plugin
        .instantiate(
            "bad",
            config(&[("metric", "cpu"), ("op", "~"), ("threshold", "1")]),
        )
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("op"), "{err}");
}
