//! The dashboard and the browser client, embedded in the binary.
//!
//! - `GET /`: the dashboard page (`web/index.html`);
//! - `GET /dashboard/dashboard.js`, `GET /dashboard/dashboard.css`: its script and style
//!   (and the modules the script imports, `history.js` and `format.js`);
//! - `GET /client/wasmeter.js`: the ES-module client of the subscriber protocol
//!   (`docs/CLIENT.md`), for any page.
//!
//! Responses carry `Cache-Control: no-cache` with an `ETag`: browsers revalidate on
//! every load (a `304` when unchanged), so a new binary never serves a stale mix of
//! page and script.

use std::hash::{Hash, Hasher};

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// One embedded file.
struct Asset {
    body: &'static str,
    content_type: &'static str,
}

const INDEX: Asset = Asset {
    body: include_str!("../web/index.html"),
    content_type: "text/html; charset=utf-8",
};
const DASHBOARD_JS: Asset = Asset {
    body: include_str!("../web/dashboard.js"),
    content_type: "text/javascript; charset=utf-8",
};
const DASHBOARD_HISTORY_JS: Asset = Asset {
    body: include_str!("../web/history.js"),
    content_type: "text/javascript; charset=utf-8",
};
const DASHBOARD_FORMAT_JS: Asset = Asset {
    body: include_str!("../web/format.js"),
    content_type: "text/javascript; charset=utf-8",
};
const DASHBOARD_CSS: Asset = Asset {
    body: include_str!("../web/dashboard.css"),
    content_type: "text/css; charset=utf-8",
};
/// The browser client, `/client/wasmeter.js`.
pub const CLIENT_JS: &str = include_str!("../../../clients/js/wasmeter.js");
const CLIENT: Asset = Asset {
    body: CLIENT_JS,
    content_type: "text/javascript; charset=utf-8",
};

/// The dashboard and client routes, to merge with [`wasmeter_server::router`].
pub fn router() -> Router {
    Router::new()
        .route("/", get(|h: HeaderMap| async move { serve(&INDEX, &h) }))
        .route(
            "/dashboard/dashboard.js",
            get(|h: HeaderMap| async move { serve(&DASHBOARD_JS, &h) }),
        )
        .route(
            "/dashboard/history.js",
            get(|h: HeaderMap| async move { serve(&DASHBOARD_HISTORY_JS, &h) }),
        )
        .route(
            "/dashboard/format.js",
            get(|h: HeaderMap| async move { serve(&DASHBOARD_FORMAT_JS, &h) }),
        )
        .route(
            "/dashboard/dashboard.css",
            get(|h: HeaderMap| async move { serve(&DASHBOARD_CSS, &h) }),
        )
        .route(
            "/client/wasmeter.js",
            get(|h: HeaderMap| async move { serve(&CLIENT, &h) }),
        )
}

fn etag(body: &str) -> String {
    // SipHash with fixed keys: stable for the same bytes within and across runs of a build.
    let mut hasher = std::hash::DefaultHasher::new();
    body.hash(&mut hasher);
    format!("\"{:016x}\"", hasher.finish())
}

fn serve(asset: &Asset, request: &HeaderMap) -> Response {
    let tag = etag(asset.body);
    let headers = [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (
            header::ETAG,
            HeaderValue::from_str(&tag).expect("hex etag is a valid header value"),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
    ];
    let matched = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"));
    if matched {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    (
        headers,
        [(header::CONTENT_TYPE, asset.content_type)],
        asset.body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_are_embedded_and_link_each_other() {
        assert!(INDEX.body.contains("/dashboard/dashboard.js"));
        assert!(INDEX.body.contains("/dashboard/dashboard.css"));
        assert!(DASHBOARD_JS.body.contains("from '/client/wasmeter.js'"));
        assert!(DASHBOARD_JS.body.contains("from './format.js'"));
        assert!(
            DASHBOARD_FORMAT_JS
                .body
                .contains("export function fmtBytes")
        );
        assert!(CLIENT_JS.contains("export function connect"));
        assert_eq!(etag(CLIENT_JS), etag(CLIENT_JS));
        assert_ne!(etag(CLIENT_JS), etag(INDEX.body));
    }
}
