//! Datadog HTTP log intake (v2) forwarder.
//!
//! `POST {url}/api/v2/logs` with header `DD-API-KEY` and a JSON array of
//! `{ddsource, ddtags, hostname, service, message, status, timestamp,
//! execution_id, namespace, plan, target, fields}`; at most 1000 entries and
//! 5 MB per request (Datadog's limits), larger batches are split.

use async_trait::async_trait;
use serde_json::{Value, json};

use super::http::{RetryPolicy, client, send_with_retry};
use super::secret::Secret;
use super::{LogRecord, LogSink, SinkError};

/// Entries per request accepted by the intake.
pub const MAX_ENTRIES: usize = 1000;
/// Bytes per (uncompressed) request accepted by the intake.
pub const MAX_BYTES: usize = 5 * 1024 * 1024;

/// Settings of a [`DatadogSink`].
#[derive(Clone, Debug)]
pub struct DatadogOptions {
    /// Intake URL: a base (`/api/v2/logs` is added) or a full intake path.
    pub url: reqwest::Url,
    /// API key.
    pub api_key: Secret,
    /// `service` attribute.
    pub service: String,
    /// `ddsource` attribute.
    pub source: String,
    /// Extra `key:value` tags.
    pub tags: Vec<String>,
    /// `hostname` attribute.
    pub hostname: String,
    /// Timeout per request.
    pub timeout: std::time::Duration,
    /// Retries of transient failures.
    pub retry: RetryPolicy,
}

/// Forwards log records to Datadog.
#[derive(Debug)]
pub struct DatadogSink {
    options: DatadogOptions,
    endpoint: reqwest::Url,
    client: reqwest::Client,
}

/// The intake URL for a configured URL: kept when it already names an intake
/// path (`/api/v2/logs`, `/v1/input…`), else `/api/v2/logs` is added.
pub fn intake_endpoint(url: &reqwest::Url) -> reqwest::Url {
    let path = url.path().trim_end_matches('/');
    if path.ends_with("/api/v2/logs") || path.contains("/v1/input") {
        return url.clone();
    }
    let mut endpoint = url.clone();
    endpoint.set_path(&format!("{path}/api/v2/logs"));
    endpoint
}

/// Datadog `status` for a runner level.
pub fn status_of(level: &str) -> &'static str {
    match level.to_ascii_uppercase().as_str() {
        "TRACE" | "DEBUG" => "debug",
        "WARN" | "WARNING" => "warn",
        "ERROR" => "error",
        "FATAL" | "CRITICAL" => "critical",
        _ => "info",
    }
}

impl DatadogSink {
    /// Builds the sink and its HTTP client.
    pub fn new(options: DatadogOptions) -> Result<Self, reqwest::Error> {
        Ok(Self {
            endpoint: intake_endpoint(&options.url),
            client: client(options.timeout)?,
            options,
        })
    }

    /// The JSON entry for one record.
    pub fn entry(&self, record: &LogRecord) -> Value {
        let mut tags = vec![
            format!("execution_id:{}", record.execution_id),
            format!("kube_namespace:{}", record.namespace),
            format!("plan:{}", record.plan),
            format!("target:{}", record.target),
        ];
        tags.extend(self.options.tags.iter().cloned());
        json!({
            "ddsource": self.options.source,
            "ddtags": tags.join(","),
            "hostname": self.options.hostname,
            "service": self.options.service,
            "message": record.message,
            "status": status_of(&record.level),
            "timestamp": record.timestamp.timestamp_millis(),
            "execution_id": record.execution_id,
            "namespace": record.namespace,
            "plan": record.plan,
            "target": record.target,
            "fields": record.fields,
        })
    }

    async fn send(&self, entries: &[String]) -> Result<(), SinkError> {
        let body = format!("[{}]", entries.join(","));
        let key = self.options.api_key.expose();
        send_with_retry("datadog", &self.options.retry, &[key], || {
            self.client
                .post(self.endpoint.clone())
                .header("DD-API-KEY", key)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone())
        })
        .await
    }
}

#[async_trait]
impl LogSink for DatadogSink {
    fn name(&self) -> &'static str {
        "datadog"
    }

    async fn write_batch(&self, records: &[LogRecord]) -> Result<(), SinkError> {
        let mut chunk: Vec<String> = Vec::new();
        let mut bytes = 2;
        let mut oversized = 0usize;
        for record in records {
            let entry = self.entry(record).to_string();
            if entry.len() + 2 > MAX_BYTES {
                oversized += 1;
                continue;
            }
            if !chunk.is_empty()
                && (chunk.len() == MAX_ENTRIES || bytes + entry.len() + 1 > MAX_BYTES)
            {
                self.send(&chunk).await?;
                chunk.clear();
                bytes = 2;
            }
            bytes += entry.len() + 1;
            chunk.push(entry);
        }
        if !chunk.is_empty() {
            self.send(&chunk).await?;
        }
        if oversized > 0 {
            return Err(SinkError::Permanent {
                sink: "datadog",
                message: format!(
                    "{oversized} log lines larger than the 5 MB request limit were not sent"
                ),
            });
        }
        Ok(())
    }
}
