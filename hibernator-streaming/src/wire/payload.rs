//! JSON bodies of the webhook transport (`POST /logs`, `/progress`,
//! `/completion`), as in the user journey:
//! `{"executionId": "exec-123", "timestamp": "…", "message": "…", "level": "INFO"}`
//! (`/logs` also takes an array of such objects).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Completion, LogLine, Progress};

/// A webhook body could not be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid request body: {message}")]
pub struct PayloadError {
    /// What is wrong (names the field and, for arrays, the index).
    pub message: String,
}

/// One log line as posted to `/logs`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookLog {
    /// Execution id.
    pub execution_id: String,
    /// When the runner emitted it (default: when received).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<DateTime<Utc>>,
    /// Message.
    pub message: String,
    /// Level (default `INFO`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    /// Structured fields (non-string values are kept as JSON text).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, serde_json::Value>,
}

impl WebhookLog {
    /// The transport-neutral line.
    pub fn into_line(self) -> LogLine {
        LogLine {
            timestamp: self.timestamp.unwrap_or_else(Utc::now),
            level: self.level.unwrap_or_else(|| "INFO".into()),
            message: self.message,
            fields: self
                .fields
                .into_iter()
                .map(|(k, v)| match v {
                    serde_json::Value::String(s) => (k, s),
                    other => (k, other.to_string()),
                })
                .collect(),
        }
    }
}

/// A progress report as posted to `/progress`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookProgress {
    /// Execution id.
    pub execution_id: String,
    /// Phase (`Shutdown`, `WakeUp`).
    #[serde(default)]
    pub phase: String,
    /// Percent done, 0–100.
    pub progress: u8,
    /// Message.
    #[serde(default)]
    pub message: String,
    /// When observed (default: when received).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<DateTime<Utc>>,
}

/// A completion report as posted to `/completion`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookCompletion {
    /// Execution id.
    pub execution_id: String,
    /// Whether the operation succeeded.
    pub success: bool,
    /// Error text when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Run time in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<f64>,
    /// Log lines the runner dropped.
    #[serde(default)]
    pub dropped_logs: u64,
}

fn err(message: impl Into<String>) -> PayloadError {
    PayloadError {
        message: message.into(),
    }
}

/// Parses a `/logs` body: one object or a non-empty array of objects.
pub fn parse_logs(body: &[u8]) -> Result<Vec<WebhookLog>, PayloadError> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| err(format!("not JSON: {e}")))?;
    let logs = match value {
        serde_json::Value::Array(items) => {
            if items.is_empty() {
                return Err(err("empty array: send at least one log entry"));
            }
            items
                .into_iter()
                .enumerate()
                .map(|(i, v)| {
                    serde_json::from_value(v).map_err(|e| err(format!("entry [{i}]: {e}")))
                })
                .collect::<Result<Vec<WebhookLog>, _>>()?
        }
        v @ serde_json::Value::Object(_) => {
            vec![serde_json::from_value(v).map_err(|e| err(e.to_string()))?]
        }
        _ => return Err(err("expected a log entry object or an array of them")),
    };
    if let Some(i) = logs.iter().position(|l| l.execution_id.is_empty()) {
        return Err(err(format!("entry [{i}]: executionId is empty")));
    }
    Ok(logs)
}

/// Parses a `/progress` body.
pub fn parse_progress(body: &[u8]) -> Result<Progress, PayloadError> {
    let p: WebhookProgress = serde_json::from_slice(body).map_err(|e| err(e.to_string()))?;
    if p.progress > 100 {
        return Err(err(format!("progress {} is above 100", p.progress)));
    }
    Ok(Progress {
        execution_id: p.execution_id,
        phase: p.phase,
        progress: p.progress,
        message: p.message,
        timestamp: p.timestamp.unwrap_or_else(Utc::now),
    })
}

/// Parses a `/completion` body.
pub fn parse_completion(body: &[u8]) -> Result<Completion, PayloadError> {
    let c: WebhookCompletion = serde_json::from_slice(body).map_err(|e| err(e.to_string()))?;
    let duration = match c.duration_seconds {
        None => None,
        Some(secs) => Some(
            Duration::try_from_secs_f64(secs)
                .map_err(|e| err(format!("durationSeconds {secs}: {e}")))?,
        ),
    };
    Ok(Completion {
        execution_id: c.execution_id,
        success: c.success,
        error: c.error.filter(|e| !e.is_empty()),
        duration,
        dropped_logs: c.dropped_logs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journey_body_parses() {
        let logs = parse_logs(
            br#"{"executionId": "exec-123", "timestamp": "2026-02-01T20:05:30Z",
                 "message": "Scaling EC2 instances to zero", "level": "INFO"}"#,
        )
        .unwrap();
        assert_eq!(logs.len(), 1);
        let line = logs[0].clone().into_line();
        assert_eq!(line.message, "Scaling EC2 instances to zero");
        assert_eq!(line.timestamp.to_rfc3339(), "2026-02-01T20:05:30+00:00");
    }

    #[test]
    fn arrays_and_errors() {
        let logs = parse_logs(
            br#"[{"executionId":"a","message":"x","fields":{"n":1}},
                                   {"executionId":"a","message":"y"}]"#,
        )
        .unwrap();
        assert_eq!(logs[0].clone().into_line().fields["n"], "1");
        assert_eq!(logs[1].clone().into_line().level, "INFO");
        assert!(parse_logs(b"[]").unwrap_err().message.contains("empty"));
        assert!(
            parse_logs(br#"[{"executionId":"a"}]"#)
                .unwrap_err()
                .message
                .contains("[0]")
        );
        assert!(parse_logs(b"42").is_err());
        assert!(parse_progress(br#"{"executionId":"a","progress":101}"#).is_err());
        assert!(
            parse_completion(br#"{"executionId":"a","success":true,"durationSeconds":-1}"#)
                .is_err()
        );
        let c = parse_completion(
            br#"{"executionId":"a","success":false,"error":"boom","durationSeconds":1.5}"#,
        )
        .unwrap();
        assert_eq!(c.duration, Some(Duration::from_millis(1500)));
    }
}
