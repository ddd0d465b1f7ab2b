//! The runner side: [`StreamClient`] sends logs, progress, heartbeats and the
//! completion of one execution over gRPC or the webhook.
//!
//! - Transport `auto` tries gRPC and falls back to the webhook when gRPC
//!   cannot connect or breaks later; `grpc`/`webhook` use only that one.
//! - Logs go through a bounded queue: [`StreamClient::try_log`] never
//!   blocks; when the queue is full the line is dropped and counted. Drops
//!   are reported in a log line and in the completion report.
//! - Every request is retried with exponential backoff (`max_retries`,
//!   `timeout`); refusals (auth, bad request) are not retried.

mod token;
mod transport;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use rand::Rng;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

pub use token::{TokenError, TokenFile};

use crate::config::{ClientConfig, ConfigError, Transport};
use crate::wire::{Completion, LogLine, Progress};
use transport::{AttemptError, FailureKind, GrpcTransport, Op, WebhookTransport};

/// Log level of a runner line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// Debug.
    Debug,
    /// Info.
    Info,
    /// Warning.
    Warn,
    /// Error.
    Error,
}

impl Level {
    /// Wire name (`DEBUG`, `INFO`, `WARN`, `ERROR`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Debug => "DEBUG",
            Self::Info => "INFO",
            Self::Warn => "WARN",
            Self::Error => "ERROR",
        }
    }
}

/// The transport in use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActiveTransport {
    /// gRPC.
    Grpc,
    /// HTTP webhook.
    Webhook,
}

/// A client operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// Invalid configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The token file could not be read.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// No transport could be set up.
    #[error("no streaming transport available: {message}")]
    Connect {
        /// Why.
        message: String,
    },
    /// The server refused the request (not retried).
    #[error("{operation} refused: {message}")]
    Rejected {
        /// `logs`, `progress`, `completion` or `heartbeat`.
        operation: &'static str,
        /// Server answer.
        message: String,
    },
    /// Every attempt failed.
    #[error("{operation} failed after {attempts} attempts: {message}")]
    Exhausted {
        /// Operation.
        operation: &'static str,
        /// Attempts made.
        attempts: u32,
        /// Last error.
        message: String,
    },
    /// The client was closed.
    #[error("the stream client is closed")]
    Closed,
}

#[derive(Clone)]
enum Active {
    Grpc(GrpcTransport),
    Webhook(WebhookTransport),
}

struct Shared {
    config: ClientConfig,
    token: TokenFile,
    active: RwLock<Active>,
    fallback: Option<WebhookTransport>,
    fell_back: AtomicBool,
    dropped: AtomicU64,
    dropped_reported: AtomicU64,
    sent: AtomicU64,
    started: Instant,
}

enum QueueItem {
    Line(LogLine),
    Flush(oneshot::Sender<()>),
}

/// Runner streaming client for one execution.
pub struct StreamClient {
    shared: Arc<Shared>,
    queue: mpsc::Sender<QueueItem>,
    worker: JoinHandle<()>,
    heartbeat: JoinHandle<()>,
}

impl StreamClient {
    /// Validates `config`, picks the transport (connecting to gRPC first in
    /// `auto` and `grpc` mode) and starts the log sender and heartbeats.
    pub async fn connect(config: ClientConfig) -> Result<Self, ClientError> {
        config.validate()?;
        let (active, fallback) = match config.transport {
            Transport::Webhook => (Active::Webhook(webhook(&config)?), None),
            Transport::Grpc => (Active::Grpc(connect_grpc(&config).await?), None),
            Transport::Auto => {
                let fallback = match config.webhook_endpoint {
                    Some(_) => Some(webhook(&config)?),
                    None => None,
                };
                match (&config.grpc_endpoint, fallback) {
                    (Some(_), fallback) => match GrpcTransport::connect(&config, true).await {
                        Ok(grpc) => (Active::Grpc(grpc), fallback),
                        Err(e) => match fallback {
                            Some(w) if e.kind == FailureKind::Connection => {
                                tracing::warn!(error = %e.message, "gRPC streaming unavailable; using the webhook");
                                (Active::Webhook(w), None)
                            }
                            _ => return Err(ClientError::Connect { message: e.message }),
                        },
                    },
                    (None, Some(w)) => (Active::Webhook(w), None),
                    (None, None) => {
                        return Err(ConfigError::Missing {
                            field: crate::config::ENV_GRPC_ENDPOINT,
                        }
                        .into());
                    }
                }
            }
        };
        let shared = Arc::new(Shared {
            token: TokenFile::new(config.token_path.clone()),
            active: RwLock::new(active),
            fallback,
            fell_back: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
            dropped_reported: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            started: Instant::now(),
            config,
        });
        let (queue, rx) = mpsc::channel(shared.config.queue_size);
        let worker = tokio::spawn(run_worker(shared.clone(), rx));
        let heartbeat = tokio::spawn(run_heartbeat(Arc::downgrade(&shared)));
        Ok(Self {
            shared,
            queue,
            worker,
            heartbeat,
        })
    }

    /// The transport currently in use.
    pub fn transport(&self) -> ActiveTransport {
        self.shared.transport()
    }

    /// Lines dropped so far (queue full or undeliverable).
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Lines the server accepted so far.
    pub fn sent(&self) -> u64 {
        self.shared.sent.load(Ordering::Relaxed)
    }

    /// Queues a log line without ever waiting; returns `false` (and counts
    /// a drop) when the queue is full.
    pub fn try_log(
        &self,
        level: Level,
        message: impl Into<String>,
        fields: BTreeMap<String, String>,
    ) -> bool {
        let line = LogLine {
            timestamp: chrono::Utc::now(),
            level: level.as_str().to_string(),
            message: message.into(),
            fields,
        };
        match self.queue.try_send(QueueItem::Line(line)) {
            Ok(()) => true,
            Err(_) => {
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Queues a log line, waiting at most the configured timeout for room;
    /// returns `false` (and counts a drop) when none became free.
    pub async fn log(
        &self,
        level: Level,
        message: impl Into<String>,
        fields: BTreeMap<String, String>,
    ) -> bool {
        let line = LogLine {
            timestamp: chrono::Utc::now(),
            level: level.as_str().to_string(),
            message: message.into(),
            fields,
        };
        match self
            .queue
            .send_timeout(QueueItem::Line(line), self.shared.config.timeout)
            .await
        {
            Ok(()) => true,
            Err(_) => {
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Reports progress (`progress` is clamped to 100).
    pub async fn progress(
        &self,
        phase: &str,
        progress: u8,
        message: &str,
    ) -> Result<(), ClientError> {
        let p = Progress {
            execution_id: self.shared.config.execution_id.clone(),
            phase: phase.to_string(),
            progress: progress.min(100),
            message: message.to_string(),
            timestamp: chrono::Utc::now(),
        };
        self.shared.send(Op::Progress(&p)).await
    }

    /// Sends a heartbeat now (they are also sent every `heartbeat_interval`).
    pub async fn heartbeat(&self) -> Result<(), ClientError> {
        self.shared
            .send(Op::Heartbeat(&self.shared.config.execution_id))
            .await
    }

    /// Waits until every queued line was sent (or dropped).
    pub async fn flush(&self) -> Result<(), ClientError> {
        let (tx, rx) = oneshot::channel();
        self.queue
            .send(QueueItem::Flush(tx))
            .await
            .map_err(|_| ClientError::Closed)?;
        rx.await.map_err(|_| ClientError::Closed)
    }

    /// Flushes the logs, reports completion (with the number of dropped
    /// lines and the run time) and closes the client.
    pub async fn complete(self, success: bool, error: Option<String>) -> Result<(), ClientError> {
        let flushed = self.flush().await;
        // No heartbeat after the completion report.
        self.heartbeat.abort();
        let completion = Completion {
            execution_id: self.shared.config.execution_id.clone(),
            success,
            error,
            duration: Some(self.shared.started.elapsed()),
            dropped_logs: self.dropped(),
        };
        let reported = self.shared.send(Op::Completion(&completion)).await;
        self.close().await?;
        flushed.and(reported)
    }

    /// Flushes the logs and stops the background tasks.
    pub async fn close(self) -> Result<(), ClientError> {
        let flushed = self.flush().await;
        self.heartbeat.abort();
        drop(self.queue);
        let _ = self.worker.await;
        flushed
    }
}

fn webhook(config: &ClientConfig) -> Result<WebhookTransport, ClientError> {
    WebhookTransport::new(config).map_err(|e| ClientError::Connect { message: e.message })
}

async fn connect_grpc(config: &ClientConfig) -> Result<GrpcTransport, ClientError> {
    let mut last = String::new();
    for attempt in 0..=config.max_retries {
        match GrpcTransport::connect(config, true).await {
            Ok(t) => return Ok(t),
            Err(e) if e.kind == FailureKind::Permanent => {
                return Err(ClientError::Connect { message: e.message });
            }
            Err(e) => last = e.message,
        }
        if attempt < config.max_retries {
            tokio::time::sleep(backoff(attempt)).await;
        }
    }
    Err(ClientError::Connect { message: last })
}

/// Exponential backoff with jitter: ~100 ms, 200 ms, 400 ms … capped at 5 s.
fn backoff(attempt: u32) -> Duration {
    let base = 100u64.saturating_mul(1u64 << attempt.min(6)).min(5_000);
    let jitter = rand::rng().random_range(0..=base / 2);
    Duration::from_millis(base / 2 + jitter)
}

impl Shared {
    fn transport(&self) -> ActiveTransport {
        match &*self.active.read().unwrap_or_else(|e| e.into_inner()) {
            Active::Grpc(_) => ActiveTransport::Grpc,
            Active::Webhook(_) => ActiveTransport::Webhook,
        }
    }

    /// Switches to the webhook after a gRPC connection failure; `true` when
    /// a switch happened (or had already happened).
    fn fall_back(&self, reason: &str) -> bool {
        let Some(webhook) = &self.fallback else {
            return false;
        };
        let mut active = self.active.write().unwrap_or_else(|e| e.into_inner());
        if matches!(*active, Active::Grpc(_)) {
            tracing::warn!(
                error = reason,
                "gRPC streaming broke; falling back to the webhook"
            );
            *active = Active::Webhook(webhook.clone());
            self.fell_back.store(true, Ordering::Relaxed);
        }
        true
    }

    async fn send(&self, op: Op<'_>) -> Result<(), ClientError> {
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let token = self.token.token()?;
            let active = self
                .active
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            let result = match &active {
                Active::Grpc(g) => g.send(op, &token).await,
                Active::Webhook(w) => w.send(op, &token).await,
            };
            let AttemptError { kind, message } = match result {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            if kind == FailureKind::Connection
                && matches!(active, Active::Grpc(_))
                && self.fall_back(&message)
            {
                // Retry on the webhook at once; the switch does not use up an attempt.
                attempts -= 1;
                continue;
            }
            if kind == FailureKind::Permanent {
                return Err(ClientError::Rejected {
                    operation: op.name(),
                    message,
                });
            }
            if attempts > self.config.max_retries {
                return Err(ClientError::Exhausted {
                    operation: op.name(),
                    attempts,
                    message,
                });
            }
            tokio::time::sleep(backoff(attempts - 1)).await;
        }
    }

    async fn send_lines(&self, mut lines: Vec<LogLine>) {
        let dropped = self.dropped.load(Ordering::Relaxed);
        let reported = self.dropped_reported.swap(dropped, Ordering::Relaxed);
        if dropped > reported {
            lines.push(LogLine {
                timestamp: chrono::Utc::now(),
                level: Level::Warn.as_str().to_string(),
                message: format!(
                    "{} log lines dropped by the runner (queue full or undeliverable)",
                    dropped - reported
                ),
                fields: BTreeMap::new(),
            });
        }
        // Requests stay well below the server's limits (webhook
        // `maxBodyBytes`, 1 MiB by default; gRPC messages 4 MiB): a batch of
        // long lines goes out as several requests instead of being refused
        // whole.
        let mut start = 0;
        let mut size = 0;
        for (i, line) in lines.iter().enumerate() {
            let line_size = approximate_size(line);
            if i > start && size + line_size > MAX_REQUEST_BYTES {
                self.send_chunk(&lines[start..i]).await;
                start = i;
                size = 0;
            }
            size += line_size;
        }
        self.send_chunk(&lines[start..]).await;
    }

    async fn send_chunk(&self, lines: &[LogLine]) {
        if lines.is_empty() {
            return;
        }
        let count = lines.len() as u64;
        match self.send(Op::Logs(&self.config.execution_id, lines)).await {
            Ok(()) => {
                self.sent.fetch_add(count, Ordering::Relaxed);
            }
            Err(e) => {
                self.dropped.fetch_add(count, Ordering::Relaxed);
                tracing::warn!(error = %e, lines = count, "runner log lines could not be streamed");
            }
        }
    }
}

/// Largest (estimated) payload of one log request.
const MAX_REQUEST_BYTES: usize = 512 * 1024;

/// Upper estimate of a line's encoded size (JSON or protobuf).
fn approximate_size(line: &LogLine) -> usize {
    64 + line.level.len()
        + line.message.len()
        + line
            .fields
            .iter()
            .map(|(k, v)| k.len() + v.len() + 8)
            .sum::<usize>()
}

async fn run_worker(shared: Arc<Shared>, mut rx: mpsc::Receiver<QueueItem>) {
    let batch_size = shared.config.batch_size;
    let mut pending_flush = Vec::new();
    while let Some(first) = rx.recv().await {
        let mut lines = Vec::with_capacity(batch_size.min(1024));
        let mut item = Some(first);
        while let Some(current) = item.take() {
            match current {
                QueueItem::Line(l) => lines.push(l),
                QueueItem::Flush(done) => pending_flush.push(done),
            }
            if lines.len() >= batch_size {
                shared.send_lines(std::mem::take(&mut lines)).await;
            }
            item = rx.try_recv().ok();
        }
        if !lines.is_empty() {
            shared.send_lines(lines).await;
        }
        for done in pending_flush.drain(..) {
            let _ = done.send(());
        }
    }
}

/// Sends heartbeats until the client is closed or dropped (it holds only a
/// weak reference, so a dropped client does not keep it alive).
async fn run_heartbeat(shared: std::sync::Weak<Shared>) {
    let Some(period) = shared.upgrade().map(|s| s.config.heartbeat_interval) else {
        return;
    };
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    interval.tick().await;
    loop {
        interval.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        if let Err(e) = shared
            .send(Op::Heartbeat(&shared.config.execution_id))
            .await
        {
            tracing::warn!(error = %e, "runner heartbeat failed");
        }
    }
}
