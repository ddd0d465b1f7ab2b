//! HTTP delivery shared by the forwarders: one request with retries and a
//! transient/permanent classification from the status code.

use std::error::Error as _;
use std::time::Duration;

use super::SinkError;

/// Retries of transient failures (timeouts, connection errors, 408, 429, 5xx).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// Wait before the first retry; doubles each time.
    pub initial_backoff: Duration,
    /// Upper bound of the wait.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 3,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    fn backoff(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry.min(16)).unwrap_or(u32::MAX);
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

enum Attempt {
    Done,
    Transient(String),
    Permanent(String),
}

/// Removes every occurrence of the secrets from `text` and bounds its length.
pub(crate) fn redact(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_string();
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        out = out.replace(secret, "***");
    }
    if out.chars().count() > 300 {
        out = out.chars().take(300).collect::<String>() + "…";
    }
    out
}

fn describe_error(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    let mut text = kind.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

async fn attempt(request: reqwest::RequestBuilder, secrets: &[&str]) -> Attempt {
    match request.send().await {
        Ok(response) => {
            let status = response.status();
            if status.is_success() {
                return Attempt::Done;
            }
            let body = response.text().await.unwrap_or_default();
            let message = redact(&format!("HTTP {status}: {}", body.trim()), secrets);
            let code = status.as_u16();
            if code == 408 || code == 429 || status.is_server_error() {
                Attempt::Transient(message)
            } else {
                Attempt::Permanent(message)
            }
        }
        Err(error) => Attempt::Transient(redact(&describe_error(&error.without_url()), secrets)),
    }
}

/// Sends the request built by `build` until it succeeds, fails permanently or
/// the retries are used up. Error messages never contain `secrets`.
pub(crate) async fn send_with_retry(
    sink: &'static str,
    policy: &RetryPolicy,
    secrets: &[&str],
    build: impl Fn() -> reqwest::RequestBuilder,
) -> Result<(), SinkError> {
    let mut retry = 0;
    loop {
        match attempt(build(), secrets).await {
            Attempt::Done => return Ok(()),
            Attempt::Permanent(message) => return Err(SinkError::Permanent { sink, message }),
            Attempt::Transient(message) => {
                if retry >= policy.max_retries {
                    return Err(SinkError::Transient {
                        sink,
                        message: format!("{message} (after {} attempts)", retry + 1),
                    });
                }
                tracing::debug!(sink, retry, %message, "log forwarder retrying");
                tokio::time::sleep(policy.backoff(retry)).await;
                retry += 1;
            }
        }
    }
}

pub(crate) fn client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .build()
}
