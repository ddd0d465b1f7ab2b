//! The HTTP webhook transport: `POST /logs`, `/progress`, `/completion`
//! with `Authorization: Bearer <token>`; errors are JSON `{"error": "…"}`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::{Bytes, HttpBody};
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::auth::{AuthError, Authenticator};
use crate::ingest::Ingest;
use crate::metrics::{AuthFailureReason, StreamingMetrics};
use crate::wire::LogLine;
use crate::wire::payload::{self, PayloadError};

#[derive(Clone)]
struct AppState {
    auth: Arc<Authenticator>,
    ingest: Arc<Ingest>,
}

/// Builds the webhook router (body limit `max_body_bytes`).
pub fn router(auth: Arc<Authenticator>, ingest: Arc<Ingest>, max_body_bytes: usize) -> Router {
    let metrics = ingest.metrics().clone();
    Router::new()
        .route("/logs", post(logs))
        .route("/progress", post(progress))
        .route("/completion", post(completion))
        .route("/healthz", get(|| async { "ok" }))
        .fallback(|| async {
            error(
                StatusCode::NOT_FOUND,
                "no such endpoint: use /logs, /progress or /completion",
            )
        })
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(axum::middleware::map_response_with_state(
            metrics, count_sent,
        ))
        .with_state(AppState { auth, ingest })
}

/// Counts a response body in `hibernator_streaming_bytes_sent_total`.
async fn count_sent(State(metrics): State<StreamingMetrics>, response: Response) -> Response {
    if let Some(bytes) = HttpBody::size_hint(response.body()).exact() {
        metrics.bytes_sent.inc_by(bytes);
    }
    response
}

/// A JSON error response.
fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        axum::Json(serde_json::json!({ "error": message.into() })),
    )
        .into_response()
}

/// An error answer of a webhook handler: status and JSON `{"error": …}`.
#[derive(Debug)]
struct WebhookError {
    status: StatusCode,
    message: String,
}

impl IntoResponse for WebhookError {
    fn into_response(self) -> Response {
        error(self.status, self.message)
    }
}

impl From<AuthError> for WebhookError {
    fn from(e: AuthError) -> Self {
        let status = match &e {
            AuthError::Denied { reason, .. } => match reason {
                AuthFailureReason::unknown_execution
                | AuthFailureReason::wrong_identity
                | AuthFailureReason::wrong_pod => StatusCode::FORBIDDEN,
                _ => StatusCode::UNAUTHORIZED,
            },
            AuthError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        };
        Self {
            status,
            message: e.to_string(),
        }
    }
}

impl From<PayloadError> for WebhookError {
    fn from(e: PayloadError) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: e.to_string(),
        }
    }
}

impl From<BytesRejection> for WebhookError {
    fn from(e: BytesRejection) -> Self {
        Self {
            status: e.status(),
            message: format!("request body: {}", e.body_text()),
        }
    }
}

/// Common prelude: counts the body, checks a bearer token is present and
/// returns the header and body.
fn prelude(
    state: &AppState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(Option<String>, Bytes), WebhookError> {
    let body = body?;
    state
        .ingest
        .metrics()
        .bytes_received
        .inc_by(body.len() as u64);
    let header = match headers.get(header::AUTHORIZATION) {
        None => None,
        Some(v) => Some(v.to_str().map(str::to_string).map_err(|_| {
            state
                .auth
                .metrics()
                .auth_failure(AuthFailureReason::malformed);
            WebhookError {
                status: StatusCode::UNAUTHORIZED,
                message: "Authorization header is not valid ASCII".into(),
            }
        })?),
    };
    state.auth.require_bearer(header.as_deref())?;
    Ok((header, body))
}

fn accepted(value: serde_json::Value) -> Response {
    (StatusCode::ACCEPTED, axum::Json(value)).into_response()
}

async fn logs(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, WebhookError> {
    let _connection = state.ingest.metrics().connection();
    let (header, body) = prelude(&state, &headers, body)?;
    let entries = payload::parse_logs(&body)?;
    let mut groups: BTreeMap<String, Vec<LogLine>> = BTreeMap::new();
    for entry in entries {
        groups
            .entry(entry.execution_id.clone())
            .or_default()
            .push(entry.into_line());
    }
    let mut authorized = Vec::with_capacity(groups.len());
    for (id, lines) in groups {
        authorized.push((state.auth.authorize(header.as_deref(), &id).await?, lines));
    }
    let mut count = 0usize;
    for (ok, lines) in authorized {
        count += lines.len();
        state.ingest.logs(&ok.execution, lines).await;
    }
    Ok(accepted(serde_json::json!({ "accepted": count })))
}

async fn progress(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, WebhookError> {
    let _connection = state.ingest.metrics().connection();
    let (header, body) = prelude(&state, &headers, body)?;
    let progress = payload::parse_progress(&body)?;
    let ok = state
        .auth
        .authorize(header.as_deref(), &progress.execution_id)
        .await?;
    state.ingest.progress(&ok.execution, progress).await;
    Ok(accepted(serde_json::json!({ "accepted": true })))
}

async fn completion(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, WebhookError> {
    let _connection = state.ingest.metrics().connection();
    let (header, body) = prelude(&state, &headers, body)?;
    let completion = payload::parse_completion(&body)?;
    let ok = state
        .auth
        .authorize(header.as_deref(), &completion.execution_id)
        .await?;
    state.ingest.completion(&ok.execution, completion).await;
    Ok(accepted(serde_json::json!({ "accepted": true })))
}
