//! The Prometheus API over a real store: known series written with explicit
//! timestamps, then every endpoint's answer checked field by field against
//! the Prometheus HTTP API documentation's shapes.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;
use wasmeter_history::api::router;
use wasmeter_tsdb::{Labels, MetricKind, Options, Sample, Store};

/// 1,700,000,000 s: 2023-11-14T22:13:20Z.
const T0: i64 = 1_700_000_000_000;

/// Two price series and a counter, one sample a second for 10 minutes:
/// `trade_price{symbol="BTC"}` = 100 + i, `{symbol="ETH"}` = 10 + i / 10,
/// `trades_total{symbol="BTC"}` = i.
fn store(dir: &std::path::Path) -> Arc<Store> {
    let opts = Options {
        max_future_ms: None,
        commit_interval: None,
        ..Options::default()
    };
    let (store, _) = Store::open(dir, opts).unwrap();
    let series = [
        ("trade_price", "BTC", MetricKind::Gauge),
        ("trade_price", "ETH", MetricKind::Gauge),
        ("trades_total", "BTC", MetricKind::Counter),
    ];
    for (name, symbol, kind) in series {
        let labels = Labels::new(name, [("symbol", symbol)]).unwrap();
        let samples: Vec<Sample> = (0..600)
            .map(|i| {
                let v = match (name, symbol) {
                    ("trade_price", "BTC") => 100.0 + i as f64,
                    ("trade_price", _) => 10.0 + i as f64 / 10.0,
                    _ => i as f64,
                };
                Sample::new(T0 + i * 1000, v)
            })
            .collect();
        let out = store.append_series(&labels, kind, &samples).unwrap();
        assert_eq!(out.accepted, 600);
    }
    store.commit().unwrap();
    Arc::new(store)
}

async fn call(
    store: &Arc<Store>,
    method: &str,
    uri: &str,
    form: Option<&str>,
) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    if form.is_some() {
        req = req.header("content-type", "application/x-www-form-urlencoded");
    }
    let req = req
        .body(Body::from(form.unwrap_or_default().to_string()))
        .unwrap();
    let resp = router(store.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

async fn get(store: &Arc<Store>, uri: &str) -> (StatusCode, Value) {
    call(store, "GET", uri, None).await
}

#[tokio::test]
async fn query_range_answers_a_matrix_at_every_step() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    // 60 s steps over the 10 minutes: the value at t is the newest sample <= t.
    let uri = format!(
        "/api/v1/query_range?query=trade_price%7Bsymbol%3D%22BTC%22%7D&start={}&end={}&step=60",
        T0 / 1000,
        T0 / 1000 + 540
    );
    let (status, body) = get(&store, &uri).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "success");
    assert_eq!(body["data"]["resultType"], "matrix");
    let result = body["data"]["result"].as_array().unwrap();
    assert_eq!(result.len(), 1);
    assert_eq!(
        result[0]["metric"],
        json!({"__name__": "trade_price", "symbol": "BTC"})
    );
    let values = result[0]["values"].as_array().unwrap();
    assert_eq!(values.len(), 10);
    for (k, v) in values.iter().enumerate() {
        let t = (T0 / 1000 + 60 * k as i64) as f64;
        assert_eq!(v, &json!([t, format!("{}", 100 + 60 * k)]), "step {k}");
    }

    // The same as a POST form, as Grafana sends it, over both symbols.
    let form = format!(
        "query=trade_price&start={}&end={}&step=5m",
        T0 / 1000 + 60,
        T0 / 1000 + 360
    );
    let (status, body) = call(&store, "POST", "/api/v1/query_range", Some(&form)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let result = body["data"]["result"].as_array().unwrap();
    let symbols: Vec<_> = result
        .iter()
        .map(|s| s["metric"]["symbol"].clone())
        .collect();
    assert_eq!(symbols.len(), 2);
    let eth = result
        .iter()
        .find(|s| s["metric"]["symbol"] == "ETH")
        .unwrap();
    assert_eq!(
        eth["values"],
        json!([
            [(T0 / 1000 + 60) as f64, "16"],
            [(T0 / 1000 + 360) as f64, "46"]
        ])
    );

    // A 10 min step is answered from the minute tier: at 22:20:00 the bucket
    // 22:19-22:20 has just ended, its last value is the sample of 22:19:59
    // (raw data would give 22:20:00's); at 22:30 no bucket ended in the 5 min
    // lookback (the data stops at 22:23:19).
    let (from, to) = (1_700_000_400, 1_700_001_000);
    let uri = format!("/api/v1/query_range?query=trade_price&start={from}&end={to}&step=10m");
    let (_, body) = get(&store, &uri).await;
    let mut result = body["data"]["result"].as_array().unwrap().clone();
    result.sort_by_key(|s| s["metric"]["symbol"].as_str().unwrap().to_string());
    assert_eq!(result[0]["values"], json!([[from as f64, "499"]]), "{body}");
    assert_eq!(
        result[1]["values"],
        json!([[from as f64, "49.9"]]),
        "{body}"
    );
}

#[tokio::test]
async fn an_instant_query_answers_a_vector_or_a_scalar() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let t = T0 / 1000 + 100;
    let (status, body) = get(
        &store,
        &format!(
            "/api/v1/query?query=%7B__name__%3D~%22trade.*%22%2Csymbol%3D%22BTC%22%7D&time={t}"
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["resultType"], "vector");
    let mut result = body["data"]["result"].as_array().unwrap().clone();
    result.sort_by_key(|s| s["metric"]["__name__"].as_str().unwrap().to_string());
    assert_eq!(
        Value::Array(result),
        json!([
            {"metric": {"__name__": "trade_price", "symbol": "BTC"}, "value": [t as f64, "200"]},
            {"metric": {"__name__": "trades_total", "symbol": "BTC"}, "value": [t as f64, "100"]},
        ])
    );
    // Past the lookback (5 min after the last sample): nothing.
    let late = T0 / 1000 + 600 + 301;
    let (_, body) = get(
        &store,
        &format!("/api/v1/query?query=trade_price&time={late}"),
    )
    .await;
    assert_eq!(body["data"]["result"], json!([]));
    // What Grafana asks to test a data source.
    let (status, body) = get(&store, "/api/v1/query?query=1%2B1&time=1700000000").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["data"],
        json!({"resultType": "scalar", "result": [1_700_000_000.0, "2"]})
    );
}

#[tokio::test]
async fn series_labels_and_label_values() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let (status, body) = get(
        &store,
        "/api/v1/series?match[]=trade_price&match[]=trades_total",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["data"],
        json!([
            {"__name__": "trade_price", "symbol": "BTC"},
            {"__name__": "trade_price", "symbol": "ETH"},
            {"__name__": "trades_total", "symbol": "BTC"},
        ])
    );
    let (_, body) = get(&store, "/api/v1/labels").await;
    assert_eq!(
        body,
        json!({"status": "success", "data": ["__name__", "symbol"]})
    );
    let (_, body) = get(&store, "/api/v1/label/symbol/values?match[]=trade_price").await;
    assert_eq!(body["data"], json!(["BTC", "ETH"]));
    let (_, body) = get(&store, "/api/v1/label/__name__/values").await;
    assert_eq!(body["data"], json!(["trade_price", "trades_total"]));
    // Outside the time range: nothing.
    let (_, body) = get(&store, "/api/v1/series?match[]=trade_price&start=1&end=2").await;
    assert_eq!(body["data"], json!([]));
}

#[tokio::test]
async fn errors_have_the_prometheus_shape_and_say_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let cases = [
        (
            "/api/v1/query_range?query=up&start=1&end=2",
            StatusCode::BAD_REQUEST,
            "bad_data",
            "invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer",
        ),
        (
            "/api/v1/query_range?query=up&start=10&end=1&step=1",
            StatusCode::BAD_REQUEST,
            "bad_data",
            "invalid parameter \"end\": end timestamp must not be before start time",
        ),
        (
            "/api/v1/query_range?query=up&start=0&end=100000&step=1",
            StatusCode::BAD_REQUEST,
            "bad_data",
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ),
        (
            "/api/v1/query?query=rate(up%5B5m%5D)",
            StatusCode::BAD_REQUEST,
            "bad_data",
            "1:5: parse error: functions are not supported: this host answers series selectors such as `trade_price{symbol=\"BTC\"}`",
        ),
        (
            "/api/v1/query?query=up&time=yesterday",
            StatusCode::BAD_REQUEST,
            "bad_data",
            "invalid parameter \"time\": cannot parse \"yesterday\" to a valid timestamp",
        ),
        (
            "/api/v1/query",
            StatusCode::BAD_REQUEST,
            "bad_data",
            "invalid parameter \"query\": missing",
        ),
        (
            "/api/v1/series",
            StatusCode::BAD_REQUEST,
            "bad_data",
            "no match[] parameter provided",
        ),
    ];
    for (uri, status, kind, message) in cases {
        let (got, body) = get(&store, uri).await;
        assert_eq!(got, status, "{uri}: {body}");
        assert_eq!(
            body,
            json!({"status": "error", "errorType": kind, "error": message}),
            "{uri}"
        );
    }
}

/// A store started a minute ago: `trade_price{symbol="NEW"}` = i at now - 60 s + i s.
fn young_store(dir: &std::path::Path) -> (Arc<Store>, i64) {
    let opts = Options {
        commit_interval: None,
        ..Options::default()
    };
    let (store, _) = Store::open(dir, opts).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        / 1000
        * 1000;
    let first = now - 60_000;
    let labels = Labels::new("trade_price", [("symbol", "NEW")]).unwrap();
    let samples: Vec<Sample> = (0..60)
        .map(|i| Sample::new(first + i * 1000, i as f64))
        .collect();
    store
        .append_series(&labels, MetricKind::Gauge, &samples)
        .unwrap();
    (Arc::new(store), now)
}

#[tokio::test]
async fn the_last_hour_of_a_store_started_a_minute_ago_is_its_raw_data() {
    let dir = tempfile::tempdir().unwrap();
    let (store, now) = young_store(dir.path());
    // Grafana's "last 1 hour" at a 2-minute step, and at a 15-second one.
    for step in [120, 15] {
        let uri = format!(
            "/api/v1/query_range?query=trade_price&start={}&end={}&step={step}",
            now / 1000 - 3600,
            now / 1000
        );
        let (status, body) = get(&store, &uri).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let result = body["data"]["result"].as_array().unwrap();
        assert_eq!(result.len(), 1, "step {step}: {body}");
        let values = result[0]["values"].as_array().unwrap();
        // The last evaluation time is `now`: the newest sample (59) is 1 s older.
        assert_eq!(
            values.last().unwrap(),
            &json!([(now / 1000) as f64, "59"]),
            "step {step}"
        );
    }
}
