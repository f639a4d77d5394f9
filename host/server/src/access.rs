//! Who may read what, per request: the token of a request (`?token=` or
//! `Authorization: Bearer`) verified into [`Grants`], or the anonymous grants,
//! or a 401 naming what is wrong. Topic reads outside the grants are 403.

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::Response;
use serde::Deserialize;

use crate::auth::Grants;
use crate::metrics::Event;
use crate::rest::json_error;
use crate::state::ServerState;

/// The verified grants of a request; its rejection is the 401 answer.
#[derive(Debug, Clone)]
pub(crate) struct Access(pub(crate) Grants);

#[derive(Deserialize)]
struct TokenParam {
    token: Option<String>,
}

/// The token a request carries, if any: the `token` query parameter (what a
/// browser's WebSocket and EventSource can send), else `Authorization: Bearer`.
fn token_of(parts: &Parts) -> Option<String> {
    if let Ok(Query(TokenParam { token: Some(t) })) = Query::try_from_uri(&parts.uri) {
        return Some(t);
    }
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

impl FromRequestParts<ServerState> for Access {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ServerState,
    ) -> Result<Self, Self::Rejection> {
        let Some(auth) = state.authenticator() else {
            return Ok(Access(Grants::everything()));
        };
        match (token_of(parts), auth.anonymous()) {
            (Some(token), _) => auth
                .verify(&token)
                .map(Access)
                .map_err(|e| unauthorized(state, e.0)),
            (None, Some(anonymous)) => Ok(Access(anonymous.clone())),
            (None, None) => Err(unauthorized(
                state,
                "this host requires a token: pass `?token=<jwt>` or `Authorization: Bearer <jwt>`"
                    .into(),
            )),
        }
    }
}

/// 401 with the reason, counted.
fn unauthorized(state: &ServerState, message: String) -> Response {
    state.inner.metrics.record(Event::Unauthorized);
    let mut response = json_error(StatusCode::UNAUTHORIZED, "unauthorized", message);
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    response
}

/// 403 for a topic or pattern outside the grants, counted.
pub(crate) fn forbidden(state: &ServerState, what: &str, grants: &Grants) -> Response {
    state.inner.metrics.record(Event::Forbidden);
    json_error(
        StatusCode::FORBIDDEN,
        "forbidden",
        format!("{what} is not permitted (permitted: {})", grants.describe()),
    )
}

/// Requires grants of every topic (`**`): for reads across all topics, like the
/// metric history's Prometheus API. Use as an axum middleware over those routes.
pub async fn require_every_topic(
    axum::extract::State(state): axum::extract::State<ServerState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let (mut parts, body) = request.into_parts();
    let grants = match Access::from_request_parts(&mut parts, &state).await {
        Ok(Access(grants)) => grants,
        Err(refused) => return refused,
    };
    if !grants.permits_everything() {
        return forbidden(
            &state,
            "reading the metric history (it spans every topic; a token with `**` is needed)",
            &grants,
        );
    }
    next.run(axum::extract::Request::from_parts(parts, body))
        .await
}
