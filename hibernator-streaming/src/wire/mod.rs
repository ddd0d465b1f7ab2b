//! The wire: what runners and the control plane exchange, shared by the
//! `client` (feature `client`) and the
//! `server` (feature `server`) and available with either.
//!
//! - [`proto`]: the generated protocol of `hibernator.api.v1` (messages
//!   always; the gRPC client stubs with `client`, the service trait with
//!   `server`) and its descriptor set.
//! - [`payload`]: the JSON bodies of the HTTP webhook transport.
//! - [`LogLine`], [`Progress`], [`Completion`]: the transport-neutral forms
//!   both sides convert to and from.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

pub mod payload;
pub mod proto;

use self::proto::{LogEntry, ProgressUpdate};

/// One log line, transport-neutral.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    /// When the runner emitted it.
    pub timestamp: DateTime<Utc>,
    /// Level.
    pub level: String,
    /// Message.
    pub message: String,
    /// Structured fields.
    pub fields: BTreeMap<String, String>,
}

/// Progress of an execution, transport-neutral.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Execution id.
    pub execution_id: String,
    /// Operation phase (`Shutdown`, `WakeUp`).
    pub phase: String,
    /// Percent done, 0–100.
    pub progress: u8,
    /// Human-readable status.
    pub message: String,
    /// When the runner observed it.
    pub timestamp: DateTime<Utc>,
}

/// End of an execution, transport-neutral.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completion {
    /// Execution id.
    pub execution_id: String,
    /// Whether the operation succeeded.
    pub success: bool,
    /// Error text when it failed.
    pub error: Option<String>,
    /// How long the execution ran.
    pub duration: Option<Duration>,
    /// Log lines the runner dropped.
    pub dropped_logs: u64,
}

/// Converts a protobuf log entry.
pub fn line_of(entry: LogEntry) -> LogLine {
    LogLine {
        timestamp: proto::from_timestamp(entry.timestamp.as_ref()).unwrap_or_else(chrono::Utc::now),
        level: entry.level,
        message: entry.message,
        fields: entry.fields,
    }
}

/// Converts a protobuf progress update (progress clamped to 0–100).
pub fn progress_of(update: ProgressUpdate) -> Progress {
    Progress {
        timestamp: proto::from_timestamp(update.timestamp.as_ref())
            .unwrap_or_else(chrono::Utc::now),
        execution_id: update.execution_id,
        phase: update.phase,
        progress: u8::try_from(update.progress.clamp(0, 100)).unwrap_or(100),
        message: update.message,
    }
}

/// Converts a progress into its protobuf form.
pub fn update_of(p: &Progress) -> ProgressUpdate {
    ProgressUpdate {
        execution_id: p.execution_id.clone(),
        phase: p.phase.clone(),
        progress: i32::from(p.progress),
        message: p.message.clone(),
        timestamp: Some(proto::timestamp(p.timestamp)),
    }
}
