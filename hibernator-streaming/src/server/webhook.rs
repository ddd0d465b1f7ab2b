//! The HTTP webhook transport: `POST /logs`, `/progress`, `/completion`
//! with `Authorization: Bearer <token>`; errors are JSON `{"error": "…"}`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::auth::{AuthError, Authenticator, Authorized};
use crate::ingest::{Ingest, LogLine};
use crate::metrics::AuthFailureReason;
use crate::server::payload::{self, PayloadError};

#[derive(Clone)]
struct AppState {
    auth: Arc<Authenticator>,
    ingest: Arc<Ingest>,
}

/// Builds the webhook router (body limit `max_body_bytes`).
pub fn router(auth: Arc<Authenticator>, ingest: Arc<Ingest>, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/logs", post(logs))
        .route("/progress", post(progress))
        .route("/completion", post(completion))
        .route("/healthz", get(|| async { "ok" }))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such endpoint: use /logs, /progress or /completion") })
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(AppState { auth, ingest })
}

/// A JSON error response.
fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(serde_json::json!({ "error": message.into() }))).into_response()
}

fn auth_error(e: AuthError) -> Response {
    let status = match &e {
        AuthError::Denied { reason, .. } => match reason {
            AuthFailureReason::unknown_execution
            | AuthFailureReason::wrong_identity
            | AuthFailureReason::wrong_pod => StatusCode::FORBIDDEN,
            _ => StatusCode::UNAUTHORIZED,
        },
        AuthError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
    };
    error(status, e.to_string())
}

fn payload_error(e: PayloadError) -> Response {
    error(StatusCode::BAD_REQUEST, e.to_string())
}

fn body_error(e: BytesRejection) -> Response {
    error(e.status(), format!("request body: {}", e.body_text()))
}

/// Common prelude: counts the request, checks the bearer token is present
/// and returns the header and body.
fn prelude(
    state: &AppState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(Option<String>, Bytes), Response> {
    let body = body.map_err(body_error)?;
    state.ingest.metrics().bytes_received.inc_by(body.len() as u64);
    let header = match headers.get(header::AUTHORIZATION) {
        None => None,
        Some(v) => Some(v.to_str().map(str::to_string).map_err(|_| {
            state.auth.metrics().auth_failure(AuthFailureReason::malformed);
            error(StatusCode::UNAUTHORIZED, "Authorization header is not valid ASCII")
        })?),
    };
    state.auth.require_bearer(header.as_deref()).map_err(auth_error)?;
    Ok((header, body))
}

async fn authorize(state: &AppState, header: Option<&str>, id: &str) -> Result<Authorized, Response> {
    state.auth.authorize(header, id).await.map_err(auth_error)
}

async fn logs(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let _connection = state.ingest.metrics().connection();
    let (header, body) = match prelude(&state, &headers, body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let entries = match payload::parse_logs(&body) {
        Ok(e) => e,
        Err(e) => return payload_error(e),
    };
    let mut groups: BTreeMap<String, Vec<LogLine>> = BTreeMap::new();
    for entry in entries {
        groups.entry(entry.execution_id.clone()).or_default().push(entry.into_line());
    }
    let mut authorized = Vec::with_capacity(groups.len());
    for (id, lines) in groups {
        match authorize(&state, header.as_deref(), &id).await {
            Ok(ok) => authorized.push((ok, lines)),
            Err(r) => return r,
        }
    }
    let mut accepted = 0usize;
    for (ok, lines) in authorized {
        accepted += lines.len();
        state.ingest.logs(&ok.execution, lines).await;
    }
    (StatusCode::ACCEPTED, axum::Json(serde_json::json!({ "accepted": accepted }))).into_response()
}

async fn progress(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let _connection = state.ingest.metrics().connection();
    let (header, body) = match prelude(&state, &headers, body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let progress = match payload::parse_progress(&body) {
        Ok(p) => p,
        Err(e) => return payload_error(e),
    };
    match authorize(&state, header.as_deref(), &progress.execution_id).await {
        Ok(ok) => {
            state.ingest.progress(&ok.execution, progress).await;
            (StatusCode::ACCEPTED, axum::Json(serde_json::json!({ "accepted": true }))).into_response()
        }
        Err(r) => r,
    }
}

async fn completion(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let _connection = state.ingest.metrics().connection();
    let (header, body) = match prelude(&state, &headers, body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let completion = match payload::parse_completion(&body) {
        Ok(c) => c,
        Err(e) => return payload_error(e),
    };
    match authorize(&state, header.as_deref(), &completion.execution_id).await {
        Ok(ok) => {
            state.ingest.completion(&ok.execution, completion).await;
            (StatusCode::ACCEPTED, axum::Json(serde_json::json!({ "accepted": true }))).into_response()
        }
        Err(r) => r,
    }
}
