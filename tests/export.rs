//! Samples out of the host into a real VictoriaMetrics (remote_write and line
//! protocol, across a 10 s outage and a host restart during it), and alerts into
//! a real Alertmanager (fires after `for`, re-sent, resolved).

#[path = "support/export.rs"]
mod export_support;
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use export_support::{Alertmanager, Recorder, Vm, until};
use serde_json::Value;
use support::{Host, csv_config, tool};

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Series (metric name and labels, as VictoriaMetrics shows them) to points.
type Expected = BTreeMap<String, BTreeSet<(i64, u64)>>;

fn key(metric: &Value) -> String {
    let m: BTreeMap<String, String> = serde_json::from_value(metric.clone()).unwrap();
    format!("{m:?}")
}

fn series(name: &str, symbol: &str, via: &str) -> String {
    let m: BTreeMap<String, String> = [("__name__", name), ("symbol", symbol), ("via", via)]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    format!("{m:?}")
}

/// Appends `n` trades per symbol from `t0` on (a ms apart), and records what each
/// output must deliver: `rw` takes trade_price and trades_total, `lp` trade_price.
fn feed(
    host: &Host,
    file: &str,
    t0: i64,
    n: usize,
    counts: &mut BTreeMap<&'static str, u64>,
    want: &mut Expected,
) {
    let mut lines = String::new();
    for i in 0..n {
        for (k, symbol) in ["BTC", "ETH"].into_iter().enumerate() {
            let ts = t0 + (2 * i + k) as i64;
            let price = 100.0 + (i as f64) * 0.25 + k as f64 * 1000.0;
            lines.push_str(&format!("{symbol},{price},1,{ts}\n"));
            let count = counts.entry(symbol).or_default();
            *count += 1;
            for via in ["rw", "lp"] {
                want.entry(series("trade_price", symbol, via))
                    .or_default()
                    .insert((ts, price.to_bits()));
            }
            want.entry(series("trades_total", symbol, "rw"))
                .or_default()
                .insert((ts, (*count as f64).to_bits()));
        }
    }
    host.append(file, &lines);
}

/// What VictoriaMetrics holds of the outputs' series (duplicates folded: a
/// request cut off by the outage may have been stored and then sent again).
async fn stored(vm: &Vm) -> (Expected, usize) {
    let mut got = Expected::new();
    let mut points = 0;
    for (metric, values) in vm.export("{via=~\"rw|lp\"}").await {
        points += values.len();
        let set = got.entry(key(&metric)).or_default();
        set.extend(values.into_iter().map(|(t, v)| (t, v.to_bits())));
    }
    (got, points)
}

async fn wait_stored(vm: &Vm, want: &Expected, bound: Duration) {
    let want = want.clone();
    let vm_addr = vm.addr.clone();
    let mut last = Expected::new();
    let done = tokio::time::timeout(bound, async {
        loop {
            let (got, _) = stored(vm).await;
            if got == want {
                return;
            }
            last = got;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    if done.is_err() {
        let missing: usize = want
            .iter()
            .map(|(k, w)| {
                w.difference(last.get(k).unwrap_or(&BTreeSet::new()))
                    .count()
            })
            .sum();
        let extra: Vec<&String> = last.keys().filter(|k| !want.contains_key(*k)).collect();
        let got: Vec<(&String, usize)> = last.iter().map(|(k, v)| (k, v.len())).collect();
        panic!(
            "victoria-metrics at {vm_addr}: {missing} samples missing, unexpected series {extra:?}; got {got:?}"
        );
    }
}

fn export_config(vm: &str) -> String {
    format!(
        r#"
[outputs.rw]
protocol = "remote_write"
url = "http://{vm}/api/v1/write"
series = ["trade_price", "trades_total"]
labels = {{ via = "rw" }}
batch_samples = 50
flush_ms = 100
retry_min_ms = 100
retry_max_ms = 1000

[outputs.lp]
protocol = "influx_line"
url = "http://{vm}/write"
series = ["{{__name__=\"trade_price\"}}"]
labels = {{ via = "lp" }}
batch_samples = 50
flush_ms = 100
retry_min_ms = 100
retry_max_ms = 1000
"#
    )
}

async fn failed(host: &Host, output: &str) -> f64 {
    host.metric(
        "wasmeter_output_requests_failed_total",
        &format!("output=\"{output}\""),
    )
    .await
    .unwrap_or(0.0)
}

#[tokio::test]
async fn every_sample_reaches_victoria_metrics_across_an_outage_and_a_restart() {
    let Some(bin) = tool("victoria-metrics", "victoria-metrics") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut vm = Vm::start(&bin, dir.path()).await;
    let config = csv_config(&export_config(&vm.addr));
    let host = Host::start(dir.path(), &config);
    let (mut counts, mut want) = (BTreeMap::new(), Expected::new());
    let t0 = now_ms() - 600_000;

    // 1. Up: everything arrives, with the right names, labels, values and times.
    feed(&host, "a.csv", t0, 150, &mut counts, &mut want);
    wait_stored(&vm, &want, Duration::from_secs(60)).await;

    // 2. Down (stopped, not paused) for at least 10 s; the host keeps taking
    // samples, fails to send them, and is restarted in the middle.
    vm.down();
    let down_at = Instant::now();
    feed(&host, "a.csv", t0 + 10_000, 150, &mut counts, &mut want);
    for output in ["rw", "lp"] {
        until("a failed request", Duration::from_secs(30), || async {
            (failed(&host, output).await > 0.0).then_some(())
        })
        .await;
    }
    host.stop();
    // The unsent batches are in the disk buffers.
    for output in ["rw", "lp"] {
        let dir = dir.path().join("data/outputs").join(output);
        let bytes: u64 = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".seg"))
            .map(|e| e.metadata().unwrap().len())
            .sum();
        assert!(bytes > 0, "nothing buffered in {}", dir.display());
    }
    let host = Host::start(dir.path(), &config);
    feed(&host, "a.csv", t0 + 20_000, 150, &mut counts, &mut want);
    for output in ["rw", "lp"] {
        until(
            "a failed request after the restart",
            Duration::from_secs(30),
            || async { (failed(&host, output).await > 0.0).then_some(()) },
        )
        .await;
    }
    let buffered = host
        .metric("wasmeter_output_buffered_bytes", "output=\"rw\"")
        .await
        .unwrap();
    assert!(
        buffered > 0.0,
        "/metrics shows no buffered bytes during the outage"
    );
    // The outage lasts 10 s: this wait is the scenario, not a synchronisation.
    if let Some(rest) = Duration::from_secs(10).checked_sub(down_at.elapsed()) {
        tokio::time::sleep(rest).await;
    }

    // 3. Back on the same port and storage: nothing is lost.
    vm.up().await;
    wait_stored(&vm, &want, Duration::from_secs(60)).await;
    let total: usize = want.values().map(BTreeSet::len).sum();
    assert_eq!(
        total,
        150 * 2 * 3 * 3,
        "rw: 2 series x 2 symbols, lp: 1 x 2, 3 phases"
    );
    for (output, per) in [("rw", 2.0), ("lp", 1.0)] {
        let label = format!("output=\"{output}\"");
        let m = |name: &'static str| {
            let label = label.clone();
            let host = &host;
            async move { host.metric(name, &label).await.unwrap_or(-1.0) }
        };
        // This host sent what it was handed (phase 3) and what the first one
        // left in the buffer (phase 2).
        until(
            "every buffered sample counted as sent",
            Duration::from_secs(30),
            || async {
                (m("wasmeter_output_samples_sent_total").await == per * 2.0 * 300.0).then_some(())
            },
        )
        .await;
        assert_eq!(
            m("wasmeter_output_samples_selected_total").await,
            per * 2.0 * 150.0
        );
        assert!(m("wasmeter_output_requests_retried_total").await > 0.0);
        assert_eq!(m("wasmeter_output_buffered_bytes").await, 0.0);
        for reason in ["buffer_full", "refused", "corrupt"] {
            let l = format!("{label},reason=\"{reason}\"");
            assert_eq!(
                host.metric("wasmeter_output_samples_dropped_total", &l)
                    .await,
                Some(0.0),
                "{l}"
            );
        }
    }
    host.stop();
}

/// Unix ms of an RFC 3339 UTC time (`2026-12-04T23:20:01.123Z` or `...01Z`).
fn rfc3339_ms(s: &str) -> i64 {
    let n = |r: std::ops::Range<usize>| s[r].parse::<i64>().unwrap();
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    let (hh, mm, ss) = (n(11..13), n(14..16), n(17..19));
    let frac = s[19..].trim_end_matches('Z').trim_start_matches('.');
    let ms = format!("{frac:0<3}")[..3].parse::<i64>().unwrap_or(0);
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    ((days * 86_400 + hh * 3600 + mm * 60 + ss) * 1000) + ms
}

fn alert_of<'a>(alerts: &'a [Value], name: &str, symbol: &str) -> Option<&'a Value> {
    alerts
        .iter()
        .find(|a| a["labels"]["alertname"] == name && a["labels"]["symbol"] == symbol)
}

#[tokio::test]
async fn an_alert_fires_after_for_is_resent_and_resolves_in_alertmanager() {
    let Some(bin) = tool("prometheus-alertmanager", "prometheus-alertmanager") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let recorder = Recorder::start().await;
    let am = Alertmanager::start(&bin, dir.path(), &recorder.addr).await;
    let extra = format!(
        r#"
[plugins.hot]
builtin = "threshold-alert"
config = {{ metric = "trade_price", op = ">", threshold = "100", for_samples = "1", name = "PriceHigh" }}

[alerts]
alertmanagers = ["http://{am}"]
webhooks = ["http://{rec}/direct"]
for_ms = 1500
resend_ms = 1000
eval_ms = 100
labels = {{ severity = "page" }}
annotations = {{ summary = "{{{{ $labels.symbol }}}} above 100" }}
"#,
        am = am.addr,
        rec = recorder.addr
    );
    let config = csv_config(&extra).replace(
        "delta = \"delta\"",
        "delta = \"delta\"\nmetrics = [\"hot\"]",
    );
    let host = Host::start(dir.path(), &config);

    // ETH crosses and comes back within one chunk: shorter than `for`, never fires.
    let t = now_ms();
    host.append("a.csv", &format!("ETH,150,1,{t}\nETH,50,1,{}\n", t + 1));
    let written = now_ms();
    host.append("a.csv", &format!("BTC,150,1,{}\n", t + 2));
    let alert = until(
        "the alert in Alertmanager",
        Duration::from_secs(30),
        || async { alert_of(&am.alerts().await, "PriceHigh", "BTC").cloned() },
    )
    .await;
    assert_eq!(alert["labels"]["severity"], "page");
    assert_eq!(alert["labels"]["metric"], "trade_price");
    assert_eq!(alert["annotations"]["summary"], "BTC above 100");
    let starts = rfc3339_ms(alert["startsAt"].as_str().unwrap());
    assert!(
        starts >= written + 1500,
        "fired {} ms after the sample, before `for`",
        starts - written
    );
    let ends = rfc3339_ms(alert["endsAt"].as_str().unwrap());
    assert!(
        ends > now_ms(),
        "a firing alert ends in the future: {alert}"
    );

    // Re-sent while firing: Alertmanager's record of it is updated again.
    let first_update = alert["updatedAt"].clone();
    until("the alert re-sent", Duration::from_secs(30), || async {
        let alerts = am.alerts().await;
        let a = alert_of(&alerts, "PriceHigh", "BTC")?;
        (a["updatedAt"] != first_update).then_some(())
    })
    .await;
    let firing = |posts: &[Value]| {
        posts
            .iter()
            .flat_map(|p| p["alerts"].as_array().cloned().unwrap_or_default())
            .filter(|a| a["status"] == "firing" && a["labels"]["symbol"] == "BTC")
            .count()
    };
    // The webhook is sent to after Alertmanager, in the same evaluation.
    until(
        "the webhook's re-sent alert",
        Duration::from_secs(30),
        || async { (firing(&recorder.posts("/direct")) >= 2).then_some(()) },
    )
    .await;
    // Alertmanager notified its own receiver.
    until(
        "Alertmanager's firing notification",
        Duration::from_secs(30),
        || async { (firing(&recorder.posts("/am")) >= 1).then_some(()) },
    )
    .await;

    // Back under the threshold: resolved, with `endsAt` at the resolve time.
    let back = now_ms();
    host.append("a.csv", &format!("BTC,50,1,{}\n", t + 3));
    let resolved = until(
        "Alertmanager's resolved notification",
        Duration::from_secs(30),
        || async {
            recorder
                .posts("/am")
                .iter()
                .flat_map(|p| p["alerts"].as_array().cloned().unwrap_or_default())
                .find(|a| a["status"] == "resolved" && a["labels"]["symbol"] == "BTC")
        },
    )
    .await;
    let ended = rfc3339_ms(resolved["endsAt"].as_str().unwrap());
    assert!(
        ended >= back && ended <= now_ms(),
        "endsAt {ended} not the resolve time ({back}..now)"
    );
    let direct = recorder.posts("/direct");
    let last = direct.last().unwrap();
    assert_eq!(last["status"], "resolved", "{last}");
    assert_eq!(last["version"], "4");
    // The blip never fired anywhere.
    for path in ["/direct", "/am"] {
        let eth = recorder
            .posts(path)
            .iter()
            .flat_map(|p| p["alerts"].as_array().cloned().unwrap_or_default())
            .any(|a| a["labels"]["symbol"] == "ETH");
        assert!(!eth, "{path}: an alert shorter than `for` was sent");
    }
    assert_eq!(host.metric("wasmeter_alerts_firing", "").await, Some(0.0));
    assert!(host.metric("wasmeter_alerts_sent_total", "").await.unwrap() >= 4.0);
    host.stop();
}

#[test]
fn the_victoria_metrics_example_is_valid() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/victoria-metrics.toml");
    let config = wasmeter::config::Config::load(&path).unwrap();
    assert_eq!(config.outputs.len(), 1);
    assert!(config.alerts.enabled());
    assert_eq!(
        config.alerts.rules["BtcPriceHigh"].labels["team"],
        "markets"
    );
}

#[test]
fn config_errors_name_the_output_key() {
    let cases = [
        (
            "[outputs.db]\nprotocol = \"remote_write\"\nurl = \"ftp://x\"\n",
            "outputs.db.url",
        ),
        (
            "[outputs.db]\nprotocol = \"graphite\"\nurl = \"http://x\"\n",
            "outputs.db.protocol",
        ),
        (
            "[outputs.db]\nprotocol = \"remote_write\"\nurl = \"http://x\"\nseries = [\"up{\"]\n",
            "outputs.db.series",
        ),
        (
            "[outputs.db]\nprotocol = \"remote_write\"\nurl = \"http://x\"\nbatch_samples = 0\n",
            "outputs.db.batch_samples",
        ),
        (
            "[outputs.db]\nprotocol = \"influx_line\"\nurl = \"http://x/write?precision=s\"\n",
            "outputs.db.url",
        ),
        (
            "[outputs.db]\nprotocol = \"remote_write\"\nurl = \"http://x\"\nretry_min_ms = 10\nretry_max_ms = 5\n",
            "outputs.db.retry_max_ms",
        ),
        (
            "[alerts]\nalertmanagers = [\"localhost:9093\"]\n",
            "alerts.alertmanagers[0]",
        ),
        ("[alerts]\nresend_ms = 0\n", "alerts.resend_ms"),
        (
            "[alerts.rules.X]\nlabels = { \"bad-name\" = \"v\" }\n",
            "alerts.rules.X.labels.bad-name",
        ),
    ];
    for (extra, key) in cases {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wasmeter.toml");
        std::fs::write(&path, csv_config(extra)).unwrap();
        let error = wasmeter::config::Config::load(&path)
            .unwrap_err()
            .to_string();
        assert!(error.contains(key), "{extra}: {error}");
    }
}
