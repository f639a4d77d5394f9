//! The Prometheus HTTP query API over the metric history: the endpoints
//! Grafana's Prometheus data source uses for plain queries.
//!
//! | endpoint | answers |
//! |---|---|
//! | `/api/v1/query` (`query`, `time`) | a vector (a selector) or a scalar (constant arithmetic) at `time` |
//! | `/api/v1/query_range` (`query`, `start`, `end`, `step`) | a matrix: each series' value at every step |
//! | `/api/v1/series` (`match[]`, `start`, `end`) | the series the selectors match |
//! | `/api/v1/labels` (`match[]`, `start`, `end`) | label names |
//! | `/api/v1/label/<name>/values` (`match[]`, `start`, `end`) | a label's values |
//! | `/api/v1/status/buildinfo` | the host's version |
//!
//! GET and POST (form body) alike. A value at time t is the newest sample in
//! (t - 5 min, t] (`lookback_delta` changes it), as Prometheus's instant vector
//! selectors do. Steps up to 5 minutes over raw data still held are answered
//! from it, exactly; longer steps and older ranges from the 1 s, 1 min or 1 h
//! tier whose bucket fits the step (the last value of the newest bucket that
//! ended by each step), so a week at 1 min steps reads a week of minute
//! buckets, not of raw samples.

mod params;
mod respond;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};
use wasmeter_tsdb::{
    DEFAULT_LOOKBACK_MS, Matcher, RangeQuery, Store, Tier, TierChoice, earliest_held,
};

use params::{BadParam, Params};
pub use params::{parse_duration_ms, parse_time_ms};
pub use respond::ApiError;
use respond::{metric, sample, success};

use crate::selector::{Expr, parse, parse_selector};

/// Earliest and latest times a range defaults to (Prometheus's min and max time).
const MIN_TIME_MS: i64 = -9_223_372_036_854_775;
const MAX_TIME_MS: i64 = 9_223_372_036_854_775;

/// The API's routes over `store`.
pub fn router(store: Arc<Store>) -> Router {
    Router::new()
        .route("/api/v1/query", get(query).post(query))
        .route("/api/v1/query_range", get(query_range).post(query_range))
        .route("/api/v1/series", get(series).post(series))
        .route("/api/v1/labels", get(labels).post(labels))
        .route("/api/v1/label/{name}/values", get(label_values))
        .route("/api/v1/status/buildinfo", get(buildinfo))
        .with_state(store)
}

impl From<BadParam> for ApiError {
    fn from(e: BadParam) -> Self {
        ApiError::bad_data(e.0)
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Runs a store read on a blocking thread (it decodes chunks).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("query task failed: {e}")))?
}

fn answer(result: Result<Value, ApiError>) -> Response {
    match result {
        Ok(data) => success(data),
        Err(e) => axum::response::IntoResponse::into_response(e),
    }
}

fn lookback(p: &Params) -> Result<i64, ApiError> {
    Ok(p.duration_ms("lookback_delta")?
        .unwrap_or(DEFAULT_LOOKBACK_MS))
}

async fn query(State(store): State<Arc<Store>>, RawQuery(q): RawQuery, body: Bytes) -> Response {
    let p = Params::parse(q.as_deref(), &body);
    answer(instant(store, p).await)
}

async fn instant(store: Arc<Store>, p: Params) -> Result<Value, ApiError> {
    let expr = parse(p.required("query")?).map_err(|e| ApiError::bad_data(e.to_string()))?;
    let t = p.time_ms("time", now_ms())?;
    let lookback = lookback(&p)?;
    match expr {
        Expr::Scalar(v) => Ok(json!({"resultType": "scalar", "result": sample(t, v)})),
        Expr::Selector(matchers) => {
            let result = blocking(move || Ok(store.query(&matchers, t, lookback)?)).await?;
            let vector: Vec<Value> = result
                .series
                .iter()
                .filter_map(|s| {
                    let point = s.points.last()?;
                    Some(json!({"metric": metric(&s.labels), "value": sample(t, point.value)}))
                })
                .collect();
            Ok(json!({"resultType": "vector", "result": vector}))
        }
    }
}

async fn query_range(
    State(store): State<Arc<Store>>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    let p = Params::parse(q.as_deref(), &body);
    answer(range(store, p).await)
}

async fn range(store: Arc<Store>, p: Params) -> Result<Value, ApiError> {
    let expr = parse(p.required("query")?).map_err(|e| ApiError::bad_data(e.to_string()))?;
    p.required("start")?;
    p.required("end")?;
    let (start, end) = (p.time_ms("start", 0)?, p.time_ms("end", 0)?);
    if end < start {
        return Err(ApiError::bad_data(
            "invalid parameter \"end\": end timestamp must not be before start time",
        ));
    }
    let Some(step) = p.duration_ms("step")? else {
        return Err(ApiError::bad_data(
            "invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer",
        ));
    };
    if (end - start) / step > 11_000 {
        return Err(ApiError::bad_data(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ));
    }
    let lookback = lookback(&p)?;
    let matchers = match expr {
        Expr::Scalar(v) => {
            let values: Vec<Value> = (0..=(end - start) / step)
                .map(|i| sample(start + i * step, v))
                .collect();
            return Ok(
                json!({"resultType": "matrix", "result": [{"metric": {}, "values": values}]}),
            );
        }
        Expr::Selector(m) => m,
    };
    let q = RangeQuery {
        start_ms: start,
        end_ms: end,
        step_ms: step,
        lookback_ms: lookback,
        tier: tier_for(&store, start, step),
    };
    let result = blocking(move || Ok(store.query_range_with(&matchers, &q)?)).await?;
    let matrix: Vec<Value> = result
        .series
        .iter()
        .filter(|s| !s.points.is_empty())
        .map(|s| {
            let values: Vec<Value> = s.points.iter().map(|p| sample(p.t_ms, p.value)).collect();
            json!({"metric": metric(&s.labels), "values": values})
        })
        .collect();
    Ok(json!({"resultType": "matrix", "result": matrix}))
}

/// Steps up to this long are answered from raw data whenever it reaches back far
/// enough: exactly what Prometheus would answer, up to the newest sample.
const RAW_STEP_MS: i64 = 5 * 60_000;

/// Raw data when it covers the range from `from` and the step is fine enough;
/// else the store's choice of tier (downsampled: each point is the last value of
/// the newest bucket that ended by then).
fn tier_for(store: &Store, from: i64, step: i64) -> TierChoice {
    let held = store.tier_min_ms();
    // Raw covers the range if it holds all any tier holds from `from` on.
    let earliest = earliest_held(&held);
    if step <= RAW_STEP_MS && held[Tier::Raw.index()] <= from.max(earliest) {
        TierChoice::Fixed(Tier::Raw)
    } else {
        TierChoice::Auto
    }
}

/// The `match[]` selectors of a request, at least one if `required`.
fn selectors(p: &Params, required: bool) -> Result<Vec<Vec<Matcher>>, ApiError> {
    let all = p.all("match[]");
    if all.is_empty() && required {
        return Err(ApiError::bad_data("no match[] parameter provided"));
    }
    all.into_iter()
        .map(|s| {
            parse_selector(s)
                .map_err(|e| ApiError::bad_data(format!("invalid parameter \"match[]\": {e}")))
        })
        .collect()
}

fn window(p: &Params) -> Result<(i64, i64), ApiError> {
    Ok((
        p.time_ms("start", MIN_TIME_MS)?,
        p.time_ms("end", MAX_TIME_MS)?,
    ))
}

async fn series(State(store): State<Arc<Store>>, RawQuery(q): RawQuery, body: Bytes) -> Response {
    let p = Params::parse(q.as_deref(), &body);
    answer(
        async {
            let sets = selectors(&p, true)?;
            let (start, end) = window(&p)?;
            blocking(move || {
                let mut found = std::collections::BTreeMap::new();
                for matchers in &sets {
                    for labels in store.select(matchers, start, end)? {
                        found.insert(labels.to_string(), metric(&labels));
                    }
                }
                Ok(Value::Array(found.into_values().collect()))
            })
            .await
        }
        .await,
    )
}

/// The union over `sets` of what `f` finds for each selector (everything, if no
/// selector was given), sorted and without repeats.
fn union(
    sets: &[Vec<Matcher>],
    f: impl Fn(&[Matcher]) -> wasmeter_tsdb::Result<Vec<String>>,
) -> Result<Value, ApiError> {
    let mut all = std::collections::BTreeSet::new();
    if sets.is_empty() {
        all.extend(f(&[])?);
    }
    for matchers in sets {
        all.extend(f(matchers)?);
    }
    Ok(json!(all))
}

async fn labels(State(store): State<Arc<Store>>, RawQuery(q): RawQuery, body: Bytes) -> Response {
    let p = Params::parse(q.as_deref(), &body);
    answer(
        async {
            let sets = selectors(&p, false)?;
            let (start, end) = window(&p)?;
            blocking(move || union(&sets, |m| store.label_names(m, start, end))).await
        }
        .await,
    )
}

async fn label_values(
    State(store): State<Arc<Store>>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let p = Params::parse(q.as_deref(), &[]);
    answer(
        async {
            if !(name == "__name__" || wasmeter_tsdb::is_valid_label_name(&name)) {
                return Err(ApiError::bad_data(format!(
                    "invalid label name: \"{name}\""
                )));
            }
            let sets = selectors(&p, false)?;
            let (start, end) = window(&p)?;
            blocking(move || union(&sets, |m| store.label_values(&name, m, start, end))).await
        }
        .await,
    )
}

async fn buildinfo() -> Response {
    success(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "revision": "",
        "branch": "",
        "buildUser": "",
        "buildDate": "",
        "goVersion": "",
    }))
}
