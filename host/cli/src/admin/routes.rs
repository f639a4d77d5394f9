//! The admin API's HTTP routes (all behind the bearer token).
//!
//! | Method | Path                                | Does                                 |
//! |--------|-------------------------------------|--------------------------------------|
//! | GET    | `/v1/plugins`                       | list                                 |
//! | GET    | `/v1/plugins/{name}`                | inspect                              |
//! | POST   | `/v1/plugins/{name}`                | load a new plugin                    |
//! | DELETE | `/v1/plugins/{name}`                | unload                               |
//! | POST   | `/v1/plugins/{name}/swap`           | swap to a file or uploaded bytes     |
//! | POST   | `/v1/plugins/{name}/reload`         | read the plugin's file again         |
//! | POST   | `/v1/plugins/{name}/rollback`       | back to the previous version + config|
//! | POST   | `/v1/plugins/{name}/quarantine`     | stop calling it                      |
//! | POST   | `/v1/plugins/{name}/release`        | lift a quarantine                    |
//! | POST   | `/v1/config/reload`                 | apply the config file's changes      |
//!
//! `load` and `swap` take either JSON ([`ChangeRequest`], a `path` inside the
//! plugins directory) or the component itself (`Content-Type: application/wasm`)
//! with the other fields in the query string (`config` as a JSON object).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

use wasmeter_control::{ControlError, Supervisor, WasmSource};

use super::auth::token_matches;

/// Largest component accepted in an upload.
pub const MAX_UPLOAD_BYTES: usize = 64 << 20;

/// The media type of an uploaded component.
pub const WASM_MEDIA_TYPE: &str = "application/wasm";

/// The body of `load` and `swap` in JSON, or their query string with an upload.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChangeRequest {
    /// A component file inside the plugins directory (JSON form only).
    pub path: Option<PathBuf>,
    /// The plugin's config (replaces the current one).
    pub config: Option<BTreeMap<String, String>>,
    /// `load`: pipelines a metric or delta plugin joins (comma-separated in a query).
    #[serde(deserialize_with = "list")]
    pub pipelines: Vec<String>,
    /// `swap`: start the new version with an empty state.
    pub fresh_state: bool,
}

/// A list from JSON, or comma-separated in a query string.
fn list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Form {
        List(Vec<String>),
        Text(String),
    }
    Ok(match Form::deserialize(d)? {
        Form::List(l) => l,
        Form::Text(t) => t
            .split(',')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
    })
}

/// The query string accompanying an upload (`config` is a JSON object).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct UploadQuery {
    config: Option<String>,
    #[serde(deserialize_with = "list")]
    pipelines: Vec<String>,
    fresh_state: bool,
}

#[derive(Clone)]
struct Admin {
    supervisor: Arc<Supervisor>,
    /// The config file `/v1/config/reload` reads (`None`: the built-in demo config).
    config_path: Option<PathBuf>,
    token: Arc<str>,
}

/// The admin router, every route behind the token.
pub fn router(supervisor: Arc<Supervisor>, config_path: Option<PathBuf>, token: String) -> Router {
    let state = Admin {
        supervisor,
        config_path,
        token: token.into(),
    };
    Router::new()
        .route("/v1/plugins", get(list_plugins))
        .route("/v1/plugins/{name}", get(inspect).post(load).delete(unload))
        .route("/v1/plugins/{name}/swap", post(swap))
        .route("/v1/plugins/{name}/reload", post(reload))
        .route("/v1/plugins/{name}/rollback", post(rollback))
        .route("/v1/plugins/{name}/quarantine", post(quarantine))
        .route("/v1/plugins/{name}/release", post(release))
        .route("/v1/config/reload", post(reload_config))
        .route_layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .with_state(state)
}

/// An error body: `{"error": {"code": ..., "message": ...}}`.
fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body = json!({ "error": { "code": code, "message": message.into() } });
    (status, Json(body)).into_response()
}

/// A refused change as an HTTP answer.
struct Refusal(ControlError);

impl From<ControlError> for Refusal {
    fn from(error: ControlError) -> Self {
        Self(error)
    }
}

/// The HTTP status of a refusal.
fn status(error: &ControlError) -> StatusCode {
    match error {
        ControlError::UnknownPlugin { .. } | ControlError::UnknownPipeline { .. } => {
            StatusCode::NOT_FOUND
        }
        ControlError::BadRequest(_) => StatusCode::BAD_REQUEST,
        ControlError::Refused(_) | ControlError::Config(_) => StatusCode::UNPROCESSABLE_ENTITY,
        ControlError::Conflict(_) => StatusCode::CONFLICT,
        ControlError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
        ControlError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
        ControlError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        error(status(&self.0), self.0.code(), self.0.to_string())
    }
}

async fn authenticate(State(admin): State<Admin>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let refusal = match presented {
        None => "missing bearer token: send `Authorization: Bearer <token>`",
        Some(t) if !token_matches(t.trim().as_bytes(), admin.token.as_bytes()) => {
            "wrong admin token"
        }
        Some(_) => return next.run(request).await,
    };
    tracing::warn!(path = %request.uri().path(), "admin request refused: {refusal}");
    let mut response = error(StatusCode::UNAUTHORIZED, "unauthorized", refusal);
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, "Bearer".parse().expect("static"));
    response
}

type Reply = Result<Response, Refusal>;

fn ok(value: impl Serialize) -> Reply {
    Ok(Json(value).into_response())
}

async fn list_plugins(State(a): State<Admin>) -> Reply {
    ok(json!({ "plugins": a.supervisor.list().await, "control": a.supervisor.status() }))
}

async fn inspect(State(a): State<Admin>, Path(name): Path<String>) -> Reply {
    ok(a.supervisor.inspect(&name).await?)
}

/// The component and options of a `load` or `swap`, from JSON or an upload.
fn change(
    headers: &HeaderMap,
    query: Option<&str>,
    body: Bytes,
) -> Result<(WasmSource, ChangeRequest), ControlError> {
    let bad = |e: String| ControlError::BadRequest(e);
    let is_wasm = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(WASM_MEDIA_TYPE));
    if is_wasm {
        let q: UploadQuery =
            parse_query(query.unwrap_or("")).map_err(|e| bad(format!("query string: {e}")))?;
        let config = match q.config {
            Some(text) => Some(
                serde_json::from_str(&text)
                    .map_err(|e| bad(format!("config: expected a JSON object of strings: {e}")))?,
            ),
            None => None,
        };
        let request = ChangeRequest {
            path: None,
            config,
            pipelines: q.pipelines,
            fresh_state: q.fresh_state,
        };
        return Ok((WasmSource::Bytes(body.to_vec()), request));
    }
    let request: ChangeRequest = serde_json::from_slice(&body).map_err(|e| {
        bad(format!(
            "body: {e} (send JSON with `path`, or the component as {WASM_MEDIA_TYPE})"
        ))
    })?;
    let path = request
        .path
        .clone()
        .ok_or_else(|| bad(format!("body: give `path` (a file in the plugins directory) or send the component as {WASM_MEDIA_TYPE}")))?;
    Ok((WasmSource::File(path), request))
}

fn parse_query<T: serde::de::DeserializeOwned>(query: &str) -> Result<T, String> {
    Query::<T>::try_from_uri(&format!("/?{query}").parse().map_err(|e| format!("{e}"))?)
        .map(|q| q.0)
        .map_err(|e| e.body_text())
}

async fn load(State(a): State<Admin>, Path(name): Path<String>, request: Request) -> Reply {
    let (headers, query, body) = parts(request).await?;
    let (source, r) = change(&headers, query.as_deref(), body)?;
    ok(a.supervisor
        .load(&name, source, r.config, r.pipelines)
        .await?)
}

async fn swap(State(a): State<Admin>, Path(name): Path<String>, request: Request) -> Reply {
    let (headers, query, body) = parts(request).await?;
    let (source, r) = change(&headers, query.as_deref(), body)?;
    ok(a.supervisor
        .swap(&name, source, r.config, r.fresh_state)
        .await?)
}

/// Headers, query string and body of a request.
async fn parts(request: Request) -> Result<(HeaderMap, Option<String>, Bytes), ControlError> {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, MAX_UPLOAD_BYTES)
        .await
        .map_err(|e| {
            ControlError::BadRequest(format!("body: {e} (at most {MAX_UPLOAD_BYTES} bytes)"))
        })?;
    Ok((parts.headers, parts.uri.query().map(String::from), body))
}

async fn unload(State(a): State<Admin>, Path(name): Path<String>) -> Reply {
    a.supervisor.unload(&name).await?;
    ok(json!({ "unloaded": name }))
}

async fn reload(State(a): State<Admin>, Path(name): Path<String>) -> Reply {
    ok(a.supervisor.reload(&name).await?)
}

/// The query string of `rollback`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RollbackQuery {
    /// Start the previous version with an empty state.
    fresh_state: bool,
}

async fn rollback(State(a): State<Admin>, Path(name): Path<String>, request: Request) -> Reply {
    let q: RollbackQuery = parse_query(request.uri().query().unwrap_or(""))
        .map_err(|e| ControlError::BadRequest(format!("query string: {e}")))?;
    ok(a.supervisor.rollback_with(&name, q.fresh_state).await?)
}

async fn quarantine(State(a): State<Admin>, Path(name): Path<String>) -> Reply {
    ok(a.supervisor.set_quarantine(&name, true).await?)
}

async fn release(State(a): State<Admin>, Path(name): Path<String>) -> Reply {
    ok(a.supervisor.set_quarantine(&name, false).await?)
}

async fn reload_config(State(a): State<Admin>) -> Reply {
    ok(crate::reload::reload_config(&a.supervisor, a.config_path.clone()).await?)
}
