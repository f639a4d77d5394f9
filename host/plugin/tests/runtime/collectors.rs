//! The collector plugins on real input, good and malformed.

use wasmeter_core::field::FieldValue;
use wasmeter_plugin::CollectorWorld;

use crate::support::{component, config, runtime, value_of};

fn field<'a>(fields: &'a [(String, FieldValue)], name: &str) -> &'a FieldValue {
    &fields
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no field {name} in {fields:?}"))
        .1
}

#[tokio::test]
async fn csv_collector_parses_trades_and_reports_bad_lines() {
    let plugin = runtime()
        .load::<CollectorWorld>(component("csv_collector"))
        .await
        .unwrap();
    assert_eq!(plugin.meta().info.name, "csv-collector");
    let mut csv = plugin.instantiate("trades-csv", vec![]).await.unwrap();

    let chunk = b"# symbol,price,qty,ts\n\
        BTC,64000.5,0.25,1700000000000\n\
        ETH,3000,2,1700000000001\n\
        BTC,abc,1,1700000000002\n\
        BTC,64010,0.75,1700000000003\n\
        SOL,150\n";
    let out = csv.collect("trades.csv", chunk).await.unwrap();

    // Three good trades come through although two lines in the same chunk are bad;
    // the chunk's two BTC trades as one update with the later values.
    let topics: Vec<_> = out.updates.iter().map(|u| u.topic.as_str()).collect();
    assert_eq!(topics, ["trades/BTC", "trades/ETH"]);
    let last_btc = &out.updates[0].fields;
    assert_eq!(field(last_btc, "price"), &FieldValue::Number(64010.0));
    assert_eq!(field(last_btc, "count"), &FieldValue::Number(2.0));
    assert_eq!(field(last_btc, "volume"), &FieldValue::Number(1.0));
    assert_eq!(
        value_of(&out.all_samples(), "trades_total", &[("symbol", "BTC")]),
        2.0
    );
    assert_eq!(
        value_of(&out.all_samples(), "trade_price", &[("symbol", "ETH")]),
        3000.0
    );
    let ts = out
        .all_samples()
        .iter()
        .find(|s| s.name == "trade_price")
        .unwrap()
        .timestamp_ms;
    assert_eq!(ts, 1_700_000_000_000);

    assert_eq!(out.errors.len(), 2, "{:?}", out.errors);
    assert_eq!(out.errors[0].line, 4);
    assert!(
        out.errors[0].message.contains("price") && out.errors[0].message.contains("abc"),
        "{:?}",
        out.errors[0]
    );
    assert_eq!(out.errors[1].line, 6);
    assert_eq!(&chunk[out.errors[1].offset as usize..][..7], b"SOL,150");

    // Running totals continue across chunks.
    let out = csv
        .collect("trades.csv", b"BTC,1,1,1700000000004\n")
        .await
        .unwrap();
    assert_eq!(
        value_of(&out.all_samples(), "trades_total", &[("symbol", "BTC")]),
        3.0
    );
}

#[tokio::test]
async fn jsonl_collector_maps_fields_and_reports_bad_records() {
    let plugin = runtime()
        .load::<CollectorWorld>(component("jsonl_collector"))
        .await
        .unwrap();
    let mut jsonl = plugin
        .instantiate(
            "binance",
            config(&[
                ("field.symbol", "s"),
                ("field.price", "data.p"),
                ("field.qty", "data.q"),
                ("field.ts", "T"),
                ("extra_fields", "side"),
            ]),
        )
        .await
        .unwrap();
    let chunk = br#"{"s":"BTCUSDT","data":{"p":"64000.10","q":0.5},"T":1700000000000,"side":"buy"}
{"s":"BTCUSDT","data":{"p":"64001.00","q":"1.5"},"T":1700000000100,"side":"sell"}
{not json
{"s":"ETHUSDT","data":{"q":1},"T":1700000000200}
{"s":"ETHUSDT","data":{"p":"x","q":1},"T":1700000000300}
"#;
    let out = jsonl.collect("history.jsonl", chunk).await.unwrap();
    // Both BTCUSDT trades as one update, with the later values.
    assert_eq!(out.updates.len(), 1, "{out:#?}");
    assert_eq!(out.updates[0].topic, "trades/BTCUSDT");
    assert_eq!(
        field(&out.updates[0].fields, "price"),
        &FieldValue::Number(64001.0)
    );
    assert_eq!(
        field(&out.updates[0].fields, "side"),
        &FieldValue::Text("sell".into())
    );
    assert_eq!(
        value_of(
            &out.all_samples(),
            "trade_volume_total",
            &[("symbol", "BTCUSDT")]
        ),
        2.0
    );

    let lines: Vec<_> = out.errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, [3, 4, 5], "{:?}", out.errors);
    assert!(
        out.errors[1].message.contains("data.p"),
        "missing field must be named: {:?}",
        out.errors[1]
    );
    assert!(out.errors[2].message.contains('x'), "{:?}", out.errors[2]);
}

const STAT_1: &str = "cpu  100 0 100 800 0 0 0 0 0 0\n\
cpu0 50 0 50 400 0 0 0 0 0 0\n\
cpu1 50 0 50 400 0 0 0 0 0 0\n\
intr 12345\nctxt 999\n";
const STAT_2: &str = "cpu  200 0 150 850 0 0 0 0 0 0\n\
cpu0 100 0 100 400 0 0 0 0 0 0\n\
cpu1 100 0 50 450 0 0 0 0 0 0\n\
intr 12400\nctxt 1000\n";

#[tokio::test]
async fn system_collector_computes_cpu_memory_and_load() {
    let plugin = runtime()
        .load::<CollectorWorld>(component("system_collector"))
        .await
        .unwrap();
    let mut sys = plugin.instantiate("system", vec![]).await.unwrap();

    let first = sys.collect("/proc/stat", STAT_1.as_bytes()).await.unwrap();
    assert!(
        first
            .all_samples()
            .iter()
            .all(|s| s.name != "system_cpu_usage_percent"),
        "no CPU % before two readings"
    );
    let second = sys.collect("/proc/stat", STAT_2.as_bytes()).await.unwrap();
    // total: busy +150 of +200 ticks = 75 %; cpu0: +100 of +100 = 100 %; cpu1: +50 of +100 = 50 %.
    assert_eq!(
        value_of(
            &second.all_samples(),
            "system_cpu_usage_percent",
            &[("cpu", "total")]
        ),
        75.0
    );
    assert_eq!(
        value_of(
            &second.all_samples(),
            "system_cpu_usage_percent",
            &[("cpu", "cpu0")]
        ),
        100.0
    );
    assert_eq!(
        value_of(
            &second.all_samples(),
            "system_cpu_usage_percent",
            &[("cpu", "cpu1")]
        ),
        50.0
    );
    assert!(second.updates.iter().any(|u| u.topic == "system/cpu"));

    let meminfo = "MemTotal:       16000000 kB\nMemFree:         1000000 kB\nMemAvailable:    4000000 kB\nBuffers: oops kB\n";
    let mem = sys
        .collect("/proc/meminfo", meminfo.as_bytes())
        .await
        .unwrap();
    assert_eq!(
        value_of(&mem.all_samples(), "system_memory_total_bytes", &[]),
        16_000_000.0 * 1024.0
    );
    assert_eq!(
        value_of(&mem.all_samples(), "system_memory_available_bytes", &[]),
        4_000_000.0 * 1024.0
    );
    assert_eq!(
        value_of(&mem.all_samples(), "system_memory_used_percent", &[]),
        75.0
    );
    assert_eq!(
        mem.errors.len(),
        1,
        "the malformed Buffers line: {:?}",
        mem.errors
    );
    assert_eq!(mem.errors[0].line, 4);

    let load = sys
        .collect("/proc/loadavg", b"0.52 0.58 0.59 2/1183 123456\n")
        .await
        .unwrap();
    assert_eq!(value_of(&load.all_samples(), "system_load1", &[]), 0.52);
    assert_eq!(value_of(&load.all_samples(), "system_load15", &[]), 0.59);

    let err = sys
        .collect("/etc/passwd", b"root:x:0:0\n")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("/etc/passwd"), "{err}");
}

#[tokio::test]
async fn system_collector_reads_this_machines_proc() {
    // The real files of the machine running the test, handed over as the system
    // source would: everything parses, nothing is reported as malformed.
    let plugin = runtime()
        .load::<CollectorWorld>(component("system_collector"))
        .await
        .unwrap();
    let mut sys = plugin.instantiate("system", vec![]).await.unwrap();
    for source in ["/proc/stat", "/proc/meminfo", "/proc/loadavg", "/proc/stat"] {
        let text = std::fs::read(source).unwrap();
        let out = sys.collect(source, &text).await.unwrap();
        assert!(out.errors.is_empty(), "{source}: {:?}", out.errors);
    }
    let text = std::fs::read("/proc/meminfo").unwrap();
    let out = sys.collect("/proc/meminfo", &text).await.unwrap();
    assert!(value_of(&out.all_samples(), "system_memory_total_bytes", &[]) > 0.0);
}
