//! One delivery: render the body, sign it (webhook sinks), POST it with a
//! per-request timeout, and retry transient failures with capped
//! exponential backoff. Errors never carry the URL or a key: the URL is
//! shown as its host, and every message is scrubbed of the sink's secrets.

use std::time::Duration;

use hibernator_core::types::{NotificationSink, SinkType};
use hibernator_reconcile::notify::Notice;
use hibernator_reconcile::notify::redact::{redact_url, scrub};
use hibernator_reconcile::notify::render::render;
use hibernator_reconcile::notify::sign::{
    DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, signature,
};

use super::NotifyConfig;
use crate::controller::metrics::Metrics;

/// A sink's credentials, read from its Secrets.
#[derive(Clone)]
pub struct SinkSecrets {
    /// The URL to POST to.
    pub url: String,
    /// The HMAC key (`Webhook`).
    pub signing_key: Option<Vec<u8>>,
}

impl std::fmt::Debug for SinkSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SinkSecrets")
            .field("host", &redact_url(&self.url))
            .finish_non_exhaustive()
    }
}

impl SinkSecrets {
    /// The secret values, for [`scrub`].
    fn values(&self) -> Vec<String> {
        let mut out = vec![self.url.clone()];
        if let Some(key) = &self.signing_key {
            out.push(String::from_utf8_lossy(key).into_owned());
        }
        out
    }

    /// `text` without any secret value.
    pub fn scrub(&self, text: &str) -> String {
        let values = self.values();
        let refs: Vec<&str> = values.iter().map(String::as_str).collect();
        scrub(text, &refs)
    }
}

/// How a delivery ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A 2xx answer.
    Delivered {
        /// Attempts made.
        attempts: u32,
    },
    /// Every attempt failed, or a permanent error (4xx, template).
    Failed {
        /// Attempts made.
        attempts: u32,
        /// Redacted reason, e.g. `hooks.slack.com answered 500`.
        reason: String,
    },
}

/// Delivers `notice` to `sink` (`field`: the sink's path, e.g.
/// `spec.sinks[1]`, named in template errors); never returns the URL or a
/// key in a reason.
pub async fn deliver(
    http: &reqwest::Client,
    config: &NotifyConfig,
    metrics: &Metrics,
    field: &str,
    sink: &NotificationSink,
    secrets: &SinkSecrets,
    notice: &Notice,
) -> Outcome {
    let kind = sink.kind.as_str();
    let body = match render(sink.kind, sink.template.as_deref(), notice) {
        Ok(body) => body,
        Err(e) => {
            metrics.record_notification(kind, "failed");
            return Outcome::Failed {
                attempts: 0,
                reason: secrets.scrub(&format!("{field}.template: {e}")),
            };
        }
    };
    let timeout = sink
        .timeout
        .as_deref()
        .and_then(|t| hibernator_core::duration::parse_duration(t).ok())
        .unwrap_or(config.request_timeout);
    let host = redact_url(&secrets.url);
    let mut delay = config.backoff_base;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result = send(http, sink.kind, secrets, notice, &body, timeout).await;
        let (reason, transient) = match result {
            Ok(status) if status.is_success() => {
                metrics.record_notification(kind, "delivered");
                return Outcome::Delivered { attempts: attempt };
            }
            Ok(status) => (
                format!("{host} answered {}", status.as_u16()),
                status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408,
            ),
            Err(e) => {
                let what = if e.is_timeout() {
                    format!("timed out after {}", humanize(timeout))
                } else if e.is_connect() {
                    "connection failed".to_string()
                } else {
                    "request failed".to_string()
                };
                // reqwest's text without the URL, scrubbed again in case a
                // piece of it is quoted elsewhere in the chain
                let detail = secrets.scrub(&e.without_url().to_string());
                (format!("{host}: {what} ({detail})"), true)
            }
        };
        if !transient || attempt >= config.max_attempts {
            metrics.record_notification(kind, "failed");
            tracing::warn!(sink = %sink.name, %host, attempts = attempt, reason = %reason, key = %notice.key(), "notification not delivered");
            return Outcome::Failed {
                attempts: attempt,
                reason,
            };
        }
        metrics.record_notification(kind, "retried");
        tracing::debug!(sink = %sink.name, %host, attempt, reason = %reason, "notification attempt failed; retrying");
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(config.backoff_max);
    }
}

fn humanize(d: Duration) -> String {
    if d.subsec_millis() != 0 || d.as_secs() == 0 {
        format!("{}ms", d.as_millis())
    } else {
        hibernator_core::duration::format_duration(d)
    }
}

async fn send(
    http: &reqwest::Client,
    kind: SinkType,
    secrets: &SinkSecrets,
    notice: &Notice,
    body: &str,
    timeout: Duration,
) -> Result<reqwest::StatusCode, reqwest::Error> {
    let mut request = http
        .post(&secrets.url)
        .timeout(timeout)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(EVENT_HEADER, notice.event.as_str())
        .header(DELIVERY_HEADER, notice.key());
    if kind == SinkType::Webhook
        && let Some(key) = &secrets.signing_key
    {
        let timestamp = chrono::Utc::now().timestamp();
        request = request
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, signature(key, timestamp, body.as_bytes()));
    }
    let response = request.body(body.to_string()).send().await?;
    Ok(response.status())
}
