//! One attempt of one operation over gRPC or the webhook, with errors
//! classified for retry and fallback decisions.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tonic::Code;
use tonic::metadata::MetadataValue;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::config::{ClientConfig, ConfigError};
use crate::wire::payload::{WebhookCompletion, WebhookLog, WebhookProgress};
use crate::wire::proto::{self, execution_service_client::ExecutionServiceClient};
use crate::wire::{Completion, LogLine, Progress};

/// One request to the server.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Op<'a> {
    Logs(&'a str, &'a [LogLine]),
    Progress(&'a Progress),
    Completion(&'a Completion),
    Heartbeat(&'a str),
}

impl Op<'_> {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Op::Logs(..) => "logs",
            Op::Progress(_) => "progress",
            Op::Completion(_) => "completion",
            Op::Heartbeat(_) => "heartbeat",
        }
    }
}

/// How an attempt failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FailureKind {
    /// The server could not be reached or the connection broke.
    Connection,
    /// A transient server answer (overloaded, timeout); retry.
    Transient,
    /// The server refused for good (auth, bad request); do not retry.
    Permanent,
}

#[derive(Debug)]
pub(crate) struct AttemptError {
    pub(crate) kind: FailureKind,
    pub(crate) message: String,
}

/// gRPC transport.
#[derive(Clone)]
pub(crate) struct GrpcTransport {
    client: ExecutionServiceClient<Channel>,
    /// Whether the server has `StreamLogBatches` (cleared on `UNIMPLEMENTED`).
    batches: Arc<AtomicBool>,
}

/// Log lines as protobuf entries naming `execution_id` (empty inside a
/// [`proto::LogBatch`]).
fn lines_as_entries(execution_id: &str, lines: &[LogLine]) -> Vec<proto::LogEntry> {
    lines
        .iter()
        .map(|l| proto::LogEntry {
            execution_id: execution_id.to_string(),
            timestamp: Some(proto::timestamp(l.timestamp)),
            level: l.level.clone(),
            message: l.message.clone(),
            fields: l.fields.clone(),
        })
        .collect()
}

async fn stream_entries<S>(
    client: &mut ExecutionServiceClient<Channel>,
    request: tonic::Request<S>,
) -> Result<(), tonic::Status>
where
    S: futures::Stream<Item = proto::LogEntry> + Send + 'static,
{
    client.stream_logs(request).await.map(|_| ())
}

fn url_of(endpoint: &str, tls: bool) -> String {
    if endpoint.starts_with("http://") || endpoint.starts_with("https://") {
        endpoint.to_string()
    } else if tls {
        format!("https://{endpoint}")
    } else {
        format!("http://{endpoint}")
    }
}

impl GrpcTransport {
    /// Builds the channel; `eager` connects now (and fails when the server
    /// is unreachable).
    pub(crate) async fn connect(config: &ClientConfig, eager: bool) -> Result<Self, AttemptError> {
        let endpoint_str = config.grpc_endpoint.as_deref().ok_or(AttemptError {
            kind: FailureKind::Permanent,
            message: ConfigError::Missing {
                field: crate::config::ENV_GRPC_ENDPOINT,
            }
            .to_string(),
        })?;
        let url = url_of(endpoint_str, config.grpc_tls);
        let permanent = |message: String| AttemptError {
            kind: FailureKind::Permanent,
            message,
        };
        let mut endpoint = Endpoint::from_shared(url.clone())
            .map_err(|e| permanent(format!("gRPC endpoint {url}: {e}")))?
            .connect_timeout(config.timeout)
            .timeout(config.timeout);
        if url.starts_with("https://") {
            let mut tls = ClientTlsConfig::new();
            // The trust root: a file (`HIBERNATOR_GRPC_TLS_CA`) wins over
            // inline PEM (`HIBERNATOR_GRPC_TLS_CA_PEM`, set by the controller).
            let ca = match (&config.grpc_ca_path, &config.grpc_ca_pem) {
                (Some(ca_path), _) => tokio::fs::read(ca_path)
                    .await
                    .map_err(|e| permanent(format!("reading CA {}: {e}", ca_path.display())))?,
                (None, Some(pem)) => pem.clone().into_bytes(),
                (None, None) => {
                    return Err(permanent(format!(
                        "{} (a file) or {} (inline PEM) is required for gRPC TLS",
                        crate::config::ENV_GRPC_TLS_CA,
                        crate::config::ENV_GRPC_TLS_CA_PEM
                    )));
                }
            };
            tls = tls.ca_certificate(Certificate::from_pem(ca));
            if let Some((cert, key)) = &config.grpc_client_identity {
                let cert = tokio::fs::read(cert).await.map_err(|e| {
                    permanent(format!(
                        "reading client certificate {}: {e}",
                        cert.display()
                    ))
                })?;
                let key = tokio::fs::read(key)
                    .await
                    .map_err(|e| permanent(format!("reading client key {}: {e}", key.display())))?;
                tls = tls.identity(Identity::from_pem(cert, key));
            }
            endpoint = endpoint
                .tls_config(tls)
                .map_err(|e| permanent(format!("gRPC TLS for {url}: {e}")))?;
        }
        let channel = if eager {
            endpoint.connect().await.map_err(|e| AttemptError {
                kind: FailureKind::Connection,
                message: format!("connecting to {url}: {}", error_chain(&e)),
            })?
        } else {
            endpoint.connect_lazy()
        };
        Ok(Self {
            client: ExecutionServiceClient::new(channel),
            batches: Arc::new(AtomicBool::new(true)),
        })
    }

    pub(crate) async fn send(&self, op: Op<'_>, token: &str) -> Result<(), AttemptError> {
        let mut client = self.client.clone();
        let bearer: MetadataValue<_> =
            format!("Bearer {token}")
                .parse()
                .map_err(|_| AttemptError {
                    kind: FailureKind::Permanent,
                    message: "the stream token is not a valid header value".into(),
                })?;
        macro_rules! req {
            ($msg:expr) => {{
                let mut r = tonic::Request::new($msg);
                r.metadata_mut().insert("authorization", bearer.clone());
                r
            }};
        }
        let result = match op {
            Op::Logs(execution_id, lines) => {
                if self.batches.load(Ordering::Relaxed) {
                    // Entries of a batch leave `execution_id` empty: the batch names it.
                    let batch = proto::LogBatch {
                        execution_id: execution_id.to_string(),
                        entries: lines_as_entries("", lines),
                    };
                    match client
                        .stream_log_batches(req!(tokio_stream::once(batch)))
                        .await
                    {
                        // A server from before `StreamLogBatches` (e.g. an old
                        // controller replica during an upgrade): use
                        // `StreamLogs` from now on.
                        Err(status) if status.code() == Code::Unimplemented => {
                            tracing::debug!(
                                "the server lacks StreamLogBatches; streaming logs line by line"
                            );
                            self.batches.store(false, Ordering::Relaxed);
                            stream_entries(
                                &mut client,
                                req!(tokio_stream::iter(lines_as_entries(execution_id, lines))),
                            )
                            .await
                        }
                        other => other.map(|_| ()),
                    }
                } else {
                    stream_entries(
                        &mut client,
                        req!(tokio_stream::iter(lines_as_entries(execution_id, lines))),
                    )
                    .await
                }
            }
            Op::Progress(p) => client
                .report_progress(req!(crate::wire::update_of(p)))
                .await
                .map(|_| ()),
            Op::Completion(c) => client
                .report_completion(req!(proto::CompletionReport {
                    execution_id: c.execution_id.clone(),
                    success: c.success,
                    error: c.error.clone().unwrap_or_default(),
                    duration: c
                        .duration
                        .and_then(|d| prost_types::Duration::try_from(d).ok()),
                    dropped_logs: c.dropped_logs,
                }))
                .await
                .map(|_| ()),
            Op::Heartbeat(execution_id) => client
                .heartbeat(req!(proto::HeartbeatRequest {
                    execution_id: execution_id.to_string(),
                    timestamp: Some(proto::timestamp(chrono::Utc::now())),
                }))
                .await
                .map(|_| ()),
        };
        result.map_err(|status| {
            let kind = match status.code() {
                Code::Unavailable | Code::Unknown | Code::Cancelled => FailureKind::Connection,
                Code::DeadlineExceeded
                | Code::ResourceExhausted
                | Code::Aborted
                | Code::Internal => FailureKind::Transient,
                _ => FailureKind::Permanent,
            };
            AttemptError {
                kind,
                message: format!("gRPC {}: {}", op.name(), status.message()),
            }
        })
    }
}

/// Webhook transport.
#[derive(Clone)]
pub(crate) struct WebhookTransport {
    http: reqwest::Client,
    base: String,
}

impl WebhookTransport {
    pub(crate) fn new(config: &ClientConfig) -> Result<Self, AttemptError> {
        let permanent = |message: String| AttemptError {
            kind: FailureKind::Permanent,
            message,
        };
        let endpoint = config.webhook_endpoint.as_deref().ok_or_else(|| {
            permanent(
                ConfigError::Missing {
                    field: crate::config::ENV_WEBHOOK_ENDPOINT,
                }
                .to_string(),
            )
        })?;
        let trimmed = endpoint.trim_end_matches('/');
        let base = trimmed.strip_suffix("/logs").unwrap_or(trimmed).to_string();
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|e| permanent(format!("webhook client: {e}")))?;
        Ok(Self { http, base })
    }

    pub(crate) async fn send(&self, op: Op<'_>, token: &str) -> Result<(), AttemptError> {
        let (path, body) = match op {
            Op::Logs(execution_id, lines) => {
                let logs: Vec<WebhookLog> = lines
                    .iter()
                    .map(|l| WebhookLog {
                        execution_id: execution_id.to_string(),
                        timestamp: Some(l.timestamp),
                        message: l.message.clone(),
                        level: Some(l.level.clone()),
                        fields: l
                            .fields
                            .iter()
                            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                            .collect(),
                    })
                    .collect();
                ("logs", serde_json::to_vec(&logs))
            }
            Op::Progress(p) => (
                "progress",
                serde_json::to_vec(&WebhookProgress {
                    execution_id: p.execution_id.clone(),
                    phase: p.phase.clone(),
                    progress: p.progress,
                    message: p.message.clone(),
                    timestamp: Some(p.timestamp),
                }),
            ),
            Op::Completion(c) => (
                "completion",
                serde_json::to_vec(&WebhookCompletion {
                    execution_id: c.execution_id.clone(),
                    success: c.success,
                    error: c.error.clone(),
                    duration_seconds: c.duration.map(|d| d.as_secs_f64()),
                    dropped_logs: c.dropped_logs,
                }),
            ),
            // The webhook has no heartbeat endpoint: every POST is a sign of life.
            Op::Heartbeat(_) => return Ok(()),
        };
        let body = body.map_err(|e| AttemptError {
            kind: FailureKind::Permanent,
            message: format!("encoding {path}: {e}"),
        })?;
        let url = format!("{}/{path}", self.base);
        let response = self
            .http
            .post(&url)
            .bearer_auth(token)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| AttemptError {
                kind: if e.is_timeout() {
                    FailureKind::Transient
                } else {
                    FailureKind::Connection
                },
                message: format!("POST {url}: {}", error_chain(&e)),
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let text = response.text().await.unwrap_or_default();
        let kind = if status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429 {
            FailureKind::Transient
        } else {
            FailureKind::Permanent
        };
        Err(AttemptError {
            kind,
            message: format!(
                "POST {url}: {status}: {}",
                text.chars().take(300).collect::<String>()
            ),
        })
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
