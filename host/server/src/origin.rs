//! Which web pages may read from the host: the `Origin` check and CORS.
//!
//! A browser sends `Origin` with every WebSocket handshake, every `EventSource`
//! and every cross-origin request. Without a check, any page a user opens could
//! subscribe to every topic through the user's browser. So a request with an
//! `Origin` is served only if it comes from the host's own pages (the origin's
//! host and port are the request's `Host`) or from an origin listed in
//! `[server] allowed_origins` (`"*"`: any). A request without `Origin` (curl,
//! bots, server-side clients) is not a browser page and is served. Anything else
//! is refused with 403 and a JSON error naming the origin.
//!
//! Responses to an allowed foreign origin carry `Access-Control-Allow-Origin`
//! (with `Vary: Origin`), and a CORS preflight (`OPTIONS` with
//! `Access-Control-Request-Method`) is answered here, so that the published
//! client script, `/sse` and the REST API can be used from those pages.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::rest::json_error;
use crate::state::ServerState;

/// How long a browser may cache a preflight answer, seconds.
const PREFLIGHT_MAX_AGE_SECS: &str = "600";

/// Checks a config entry of `allowed_origins`: `*` or `scheme://host[:port]`.
pub fn check_origin_entry(entry: &str) -> Result<(), String> {
    if entry == "*" {
        return Ok(());
    }
    let Some((scheme, authority)) = entry.split_once("://") else {
        return Err(format!(
            "`{entry}`: expected `*` or an origin such as `https://dash.example.com:8443`"
        ));
    };
    let scheme_ok = !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric());
    let authority_ok =
        !authority.is_empty() && !authority.contains(['/', '?', '#', ' ']) && authority.is_ascii();
    if !scheme_ok || !authority_ok {
        return Err(format!(
            "`{entry}`: an origin is `scheme://host[:port]`, without a path or a trailing slash"
        ));
    }
    Ok(())
}

/// What the check says of one request.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// No `Origin`, or the host's own pages: served as is.
    Own,
    /// A listed foreign origin: served with CORS headers.
    Allowed(HeaderValue),
    /// Refused, naming the origin.
    Refused(String),
}

fn judge(headers: &HeaderMap, allowed: &[String]) -> Verdict {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Verdict::Own;
    };
    let text = origin.to_str().unwrap_or("").to_ascii_lowercase();
    let authority = text.split_once("://").map(|(_, a)| a);
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_ascii_lowercase);
    if authority.is_some() && authority == host.as_deref() {
        return Verdict::Own;
    }
    if allowed
        .iter()
        .any(|a| a == "*" || a.eq_ignore_ascii_case(&text))
    {
        return Verdict::Allowed(origin.clone());
    }
    Verdict::Refused(String::from_utf8_lossy(origin.as_bytes()).into_owned())
}

/// The middleware: refuses foreign origins that are not allowed, answers CORS
/// preflights, and marks responses to allowed ones.
pub(crate) async fn guard(State(state): State<ServerState>, req: Request, next: Next) -> Response {
    match judge(req.headers(), &state.config().allowed_origins) {
        Verdict::Own => next.run(req).await,
        Verdict::Refused(origin) => json_error(
            StatusCode::FORBIDDEN,
            "origin_not_allowed",
            format!(
                "origin `{origin}` may not read from this host: add it to `[server] \
                 allowed_origins` (the host's own pages and clients that send no Origin \
                 are always served)"
            ),
        ),
        Verdict::Allowed(origin) => {
            let preflight = req.method() == Method::OPTIONS
                && req
                    .headers()
                    .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
            let mut response = if preflight {
                let mut r = StatusCode::NO_CONTENT.into_response();
                let h = r.headers_mut();
                h.insert(
                    header::ACCESS_CONTROL_ALLOW_METHODS,
                    HeaderValue::from_static("GET, POST, OPTIONS"),
                );
                if let Some(asked) = req.headers().get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
                    h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, asked.clone());
                }
                h.insert(
                    header::ACCESS_CONTROL_MAX_AGE,
                    HeaderValue::from_static(PREFLIGHT_MAX_AGE_SECS),
                );
                r
            } else {
                next.run(req).await
            };
            let h = response.headers_mut();
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            h.append(header::VARY, HeaderValue::from_static("Origin"));
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_str(host).unwrap());
        if let Some(o) = origin {
            h.insert(header::ORIGIN, HeaderValue::from_str(o).unwrap());
        }
        h
    }

    #[test]
    fn own_pages_and_originless_clients_are_served() {
        let none: Vec<String> = Vec::new();
        assert_eq!(judge(&headers(None, "127.0.0.1:8080"), &none), Verdict::Own);
        assert_eq!(
            judge(
                &headers(Some("http://127.0.0.1:8080"), "127.0.0.1:8080"),
                &none
            ),
            Verdict::Own
        );
        assert_eq!(
            judge(
                &headers(Some("HTTP://Host.Example:80"), "host.example:80"),
                &none
            ),
            Verdict::Own
        );
    }

    #[test]
    fn foreign_origins_need_to_be_listed() {
        let h = headers(Some("http://evil.example"), "127.0.0.1:8080");
        assert_eq!(
            judge(&h, &[]),
            Verdict::Refused("http://evil.example".into())
        );
        // Another port of the same host is another origin.
        let other_port = headers(Some("http://127.0.0.1:3000"), "127.0.0.1:8080");
        assert!(matches!(judge(&other_port, &[]), Verdict::Refused(_)));
        let listed = vec!["http://127.0.0.1:3000".to_string()];
        assert!(matches!(judge(&other_port, &listed), Verdict::Allowed(_)));
        assert!(matches!(judge(&h, &listed), Verdict::Refused(_)));
        assert!(matches!(judge(&h, &["*".to_string()]), Verdict::Allowed(_)));
        // `null` (sandboxed frames, files) is foreign.
        let null = headers(Some("null"), "127.0.0.1:8080");
        assert!(matches!(judge(&null, &[]), Verdict::Refused(_)));
    }

    #[test]
    fn config_entries_are_origins() {
        assert!(check_origin_entry("*").is_ok());
        assert!(check_origin_entry("https://dash.example.com:8443").is_ok());
        assert!(check_origin_entry("dash.example.com").is_err());
        assert!(check_origin_entry("https://dash.example.com/").is_err());
        assert!(check_origin_entry("https://").is_err());
    }
}
