//! Log sinks: where runner log lines go after the streaming server accepted
//! them (object storage, Splunk HEC, Datadog, OpenTelemetry).
//!
//! The server hands every accepted line to each configured [`LogSink`] as a
//! [`LogRecord`]; sinks batch internally and are flushed on shutdown.
//!
//! [`build_sinks`] turns a [`SinksConfig`] (the chart's persistence and
//! forwarder settings) into ready sinks, each behind a [`Batcher`]:
//! [`ObjectStoreSink`] (S3 or a directory), [`SplunkSink`], [`DatadogSink`]
//! and, with the crate feature `otlp`, `OtlpSink`.

pub mod batcher;
pub mod config;
pub mod datadog;
pub(crate) mod http;
pub mod object;
#[cfg(feature = "otlp")]
pub mod otlp;
pub mod secret;
pub mod splunk;

pub use batcher::{Batcher, BatcherOptions, BatcherStats};
pub use config::{
    BackendKind, ConfigError, DatadogConfig, FilesystemConfig, OtlpConfig, PersistenceConfig,
    S3Config, SinksConfig, SplunkConfig, build_batched_sinks_with_env, build_sinks,
    build_sinks_with_env,
};
pub use datadog::{DatadogOptions, DatadogSink};
pub use http::RetryPolicy;
pub use object::{ObjectSinkOptions, ObjectStoreSink};
#[cfg(feature = "otlp")]
pub use otlp::{OtlpOptions, OtlpSink};
pub use secret::{Secret, SecretSource};
pub use splunk::{SplunkOptions, SplunkSink};

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One runner log line, with the execution it belongs to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogRecord {
    /// Execution id (the runner Job's `hibernator.dev/execution-id`).
    pub execution_id: String,
    /// Namespace of the HibernatePlan.
    pub namespace: String,
    /// Name of the HibernatePlan.
    pub plan: String,
    /// Target name within the plan.
    pub target: String,
    /// When the runner emitted the line.
    pub timestamp: DateTime<Utc>,
    /// Level as sent by the runner (`DEBUG`, `INFO`, `WARN`, `ERROR`).
    pub level: String,
    /// The message.
    pub message: String,
    /// Structured fields.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, String>,
    /// When the execution's runner Job started: the date of its persisted
    /// object (the line's own date when unknown). Not forwarded.
    #[serde(skip)]
    pub started: Option<DateTime<Utc>>,
}

/// Why a sink could not take a batch.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    /// The destination rejected or did not answer the write; retrying may work.
    #[error("log sink {sink} failed: {message}")]
    Transient {
        /// Sink name.
        sink: &'static str,
        /// What failed (never contains credentials).
        message: String,
    },
    /// The sink is misconfigured or the destination refuses the data for good.
    #[error("log sink {sink} rejected the batch: {message}")]
    Permanent {
        /// Sink name.
        sink: &'static str,
        /// What is wrong (never contains credentials).
        message: String,
    },
}

/// A destination for runner logs.
#[async_trait]
pub trait LogSink: Send + Sync {
    /// Short stable name for logs and metric labels (`s3`, `splunk`, …).
    fn name(&self) -> &'static str;

    /// Takes a batch of records (all may belong to different executions).
    async fn write_batch(&self, records: &[LogRecord]) -> Result<(), SinkError>;

    /// Writes out anything buffered; called on shutdown and when an execution
    /// completes.
    async fn flush(&self) -> Result<(), SinkError> {
        Ok(())
    }
}
