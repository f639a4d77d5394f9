//! The Prometheus HTTP API's JSON shapes: `{"status": "success", "data": ...}`
//! and `{"status": "error", "errorType": ..., "error": ...}` with the status
//! codes Prometheus uses (400 bad data, 422 execution, 503 unavailable, 500).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use wasmeter_tsdb::Labels;

/// A successful answer.
pub fn success(data: Value) -> Response {
    Json(json!({"status": "success", "data": data})).into_response()
}

/// What went wrong, in Prometheus's terms.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    kind: &'static str,
    message: String,
}

impl ApiError {
    /// The request is malformed (400, `bad_data`).
    pub fn bad_data(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            kind: "bad_data",
            message: message.into(),
        }
    }

    /// The query is valid but cannot be answered (422, `execution`).
    pub fn execution(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            kind: "execution",
            message: message.into(),
        }
    }

    /// The store failed (500, `internal`).
    pub fn internal(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            kind: "internal",
            message: message.into(),
        }
    }
}

impl From<wasmeter_tsdb::Error> for ApiError {
    fn from(e: wasmeter_tsdb::Error) -> Self {
        use wasmeter_tsdb::Error as E;
        match e {
            E::InvalidMatcher { .. }
            | E::EmptySelector { .. }
            | E::InvalidQuery(_)
            | E::InvalidLabelName { .. }
            | E::InvalidMetricName { .. }
            | E::TooManyPoints { .. } => Self::bad_data(e.to_string()),
            E::TooManySeries { .. } | E::QueryTooLarge { .. } => Self::execution(e.to_string()),
            other => Self::internal(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({"status": "error", "errorType": self.kind, "error": self.message})),
        )
            .into_response()
    }
}

/// A series' labels as a JSON object, `__name__` included.
pub fn metric(labels: &Labels) -> Value {
    let map: Map<String, Value> = labels
        .iter()
        .map(|l| (l.name.clone(), Value::String(l.value.clone())))
        .collect();
    Value::Object(map)
}

/// A sample as Prometheus writes it: `[<unix seconds>, "<value>"]`.
pub fn sample(t_ms: i64, value: f64) -> Value {
    json!([t_ms as f64 / 1000.0, format_value(value)])
}

/// A value as Prometheus formats it (Go's `FormatFloat(v, 'f', -1, 64)`).
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_formatted_like_prometheus() {
        assert_eq!(format_value(1.0), "1");
        assert_eq!(format_value(0.1), "0.1");
        assert_eq!(format_value(-2.5e-7), "-0.00000025");
        assert_eq!(format_value(1e21), "1000000000000000000000");
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(
            sample(1_700_000_000_500, 3.0),
            json!([1_700_000_000.5, "3"])
        );
    }
}
