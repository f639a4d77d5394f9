//! Every error answer in the documented JSON shape,
//! `{"error": {"code": ..., "message": ...}}`, including those that axum and
//! its extractors write themselves as plain text (an unknown path, a wrong
//! method, a query string that does not parse, a WebSocket request without its
//! upgrade headers).

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;

/// Longest plain-text error body kept as the message.
const MAX_MESSAGE_BYTES: usize = 4 * 1024;

/// `response` unchanged, unless it is an error that is not JSON: then the same
/// status and headers with its text as the message of a JSON error.
pub(crate) async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, MAX_MESSAGE_BYTES)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        text
    };
    let body = serde_json::json!({ "error": { "code": code(status), "message": message } });
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body.to_string()))
}

/// `not_found` for 404, `method_not_allowed` for 405, ...: the status's reason,
/// in snake case.
fn code(status: StatusCode) -> String {
    status
        .canonical_reason()
        .unwrap_or("error")
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_reasons_in_snake_case() {
        assert_eq!(code(StatusCode::NOT_FOUND), "not_found");
        assert_eq!(code(StatusCode::METHOD_NOT_ALLOWED), "method_not_allowed");
        assert_eq!(code(StatusCode::UPGRADE_REQUIRED), "upgrade_required");
    }
}
