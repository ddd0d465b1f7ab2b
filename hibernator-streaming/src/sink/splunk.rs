//! Splunk HTTP Event Collector forwarder.
//!
//! `POST {url}/services/collector/event` with `Authorization: Splunk <token>`
//! and a body of newline-separated JSON events
//! `{time, host, source, sourcetype, [index], event, fields}`: `event` is the
//! message, `fields` (indexed fields) carry the execution, plan, target,
//! namespace, level and the record's own fields.

use async_trait::async_trait;
use serde_json::{Map, Value, json};

use super::http::{RetryPolicy, client, send_with_retry};
use super::secret::Secret;
use super::{LogRecord, LogSink, SinkError};

/// Settings of a [`SplunkSink`].
#[derive(Clone, Debug)]
pub struct SplunkOptions {
    /// HEC URL (base, `…/services/collector` or `…/services/collector/event`).
    pub url: reqwest::Url,
    /// HEC token.
    pub token: Secret,
    /// Event `source`.
    pub source: String,
    /// Event `sourcetype`.
    pub sourcetype: String,
    /// Event `index` (omitted when `None`).
    pub index: Option<String>,
    /// Event `host`.
    pub host: String,
    /// Timeout per request.
    pub timeout: std::time::Duration,
    /// Retries of transient failures.
    pub retry: RetryPolicy,
    /// Upper bound of one request body; larger batches are split.
    pub max_batch_bytes: usize,
}

impl SplunkOptions {
    /// Default bound of one request body (1 MiB, HEC's default
    /// `max_content_length` is larger).
    pub const DEFAULT_MAX_BATCH_BYTES: usize = 1024 * 1024;
}

/// Forwards log records to Splunk HEC.
#[derive(Debug)]
pub struct SplunkSink {
    options: SplunkOptions,
    endpoint: reqwest::Url,
    client: reqwest::Client,
}

/// The `…/services/collector/event` URL for a configured HEC URL.
pub fn event_endpoint(url: &reqwest::Url) -> reqwest::Url {
    let mut endpoint = url.clone();
    let path = url.path().trim_end_matches('/');
    let full = if path.ends_with("/services/collector/event") {
        path.to_string()
    } else if path.ends_with("/services/collector") {
        format!("{path}/event")
    } else {
        format!("{path}/services/collector/event")
    };
    endpoint.set_path(&full);
    endpoint
}

impl SplunkSink {
    /// Builds the sink and its HTTP client.
    pub fn new(options: SplunkOptions) -> Result<Self, reqwest::Error> {
        Ok(Self {
            endpoint: event_endpoint(&options.url),
            client: client(options.timeout)?,
            options,
        })
    }

    /// The JSON event for one record.
    pub fn event(&self, record: &LogRecord) -> Value {
        let mut fields = Map::new();
        for (key, value) in &record.fields {
            fields.insert(key.clone(), Value::String(value.clone()));
        }
        fields.insert("execution_id".into(), record.execution_id.clone().into());
        fields.insert("namespace".into(), record.namespace.clone().into());
        fields.insert("plan".into(), record.plan.clone().into());
        fields.insert("target".into(), record.target.clone().into());
        fields.insert("level".into(), record.level.clone().into());
        let time = record.timestamp.timestamp_millis() as f64 / 1000.0;
        let mut event = json!({
            "time": time,
            "host": self.options.host,
            "source": self.options.source,
            "sourcetype": self.options.sourcetype,
            "event": record.message,
            "fields": fields,
        });
        if let (Some(index), Some(map)) = (&self.options.index, event.as_object_mut()) {
            map.insert("index".into(), index.clone().into());
        }
        event
    }

    async fn send(&self, body: String) -> Result<(), SinkError> {
        let token = self.options.token.expose();
        let authorization = format!("Splunk {token}");
        send_with_retry("splunk", &self.options.retry, &[token], || {
            self.client
                .post(self.endpoint.clone())
                .header(reqwest::header::AUTHORIZATION, &authorization)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone())
        })
        .await
    }
}

#[async_trait]
impl LogSink for SplunkSink {
    fn name(&self) -> &'static str {
        "splunk"
    }

    async fn write_batch(&self, records: &[LogRecord]) -> Result<(), SinkError> {
        let mut body = String::new();
        for record in records {
            let line = self.event(record).to_string();
            if !body.is_empty() && body.len() + line.len() + 1 > self.options.max_batch_bytes {
                self.send(std::mem::take(&mut body)).await?;
            }
            if !body.is_empty() {
                body.push('\n');
            }
            body.push_str(&line);
        }
        if !body.is_empty() {
            self.send(body).await?;
        }
        Ok(())
    }
}
