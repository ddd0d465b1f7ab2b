//! Configuration of persistence and forwarders, as written in the chart's
//! values (`controller.streaming.persistence`, `datadog`, `splunk`, `otlp`),
//! its validation (errors name the field) and [`build_sinks`].

use std::sync::Arc;
use std::time::Duration;

use hibernator_core::duration::parse_duration;
use serde::{Deserialize, Serialize};

use super::LogSink;
use super::batcher::{Batcher, BatcherOptions};
use super::datadog::{DatadogOptions, DatadogSink};
use super::http::RetryPolicy;
use super::object::{ObjectSinkOptions, ObjectStoreSink};
use super::secret::SecretSource;
use super::splunk::{SplunkOptions, SplunkSink};

/// Why the sink configuration cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A field has a wrong or missing value.
    #[error("{field}: {message}")]
    Invalid {
        /// Dotted path of the field, e.g. `persistence.s3.bucket`.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A credential could not be read (the message names its source, never
    /// its value).
    #[error("{field}: {message}")]
    MissingSecret {
        /// Dotted path of the field, e.g. `datadog.apiKey`.
        field: String,
        /// Which source was tried.
        message: String,
    },
    /// The object store client could not be built.
    #[error("{field}: cannot set up the object store: {message}")]
    ObjectStore {
        /// Dotted path of the backend section.
        field: String,
        /// What the object store library reported.
        message: String,
    },
    /// A sink needs a crate feature that this build does not have.
    #[error("{field}: this build of hibernator has no `{feature}` support")]
    FeatureDisabled {
        /// Dotted path of the section.
        field: String,
        /// The missing crate feature.
        feature: &'static str,
    },
    /// An HTTP client could not be built.
    #[error("{field}: cannot build the HTTP client: {message}")]
    HttpClient {
        /// Dotted path of the section.
        field: String,
        /// What failed.
        message: String,
    },
}

pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

/// All log sinks of the streaming server.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SinksConfig {
    /// Persistence of execution logs to object storage.
    #[serde(default)]
    pub persistence: Option<PersistenceConfig>,
    /// Splunk HTTP Event Collector forwarder.
    #[serde(default)]
    pub splunk: Option<SplunkConfig>,
    /// Datadog HTTP log intake forwarder.
    #[serde(default)]
    pub datadog: Option<DatadogConfig>,
    /// OpenTelemetry OTLP log export (crate feature `otlp`).
    #[serde(default)]
    pub otlp: Option<OtlpConfig>,
}

/// Object storage backend.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// Amazon S3 or an S3-compatible store.
    #[default]
    S3,
    /// A local directory (single replica, development, tests).
    Filesystem,
}

/// `persistence`: execution logs written to object storage.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PersistenceConfig {
    /// Off unless `true`.
    #[serde(default)]
    pub enabled: bool,
    /// `s3` (default) or `filesystem`; `type` is accepted as an alias.
    #[serde(default, alias = "type")]
    pub backend: BackendKind,
    /// Settings of the `s3` backend.
    #[serde(default)]
    pub s3: Option<S3Config>,
    /// Settings of the `filesystem` backend.
    #[serde(default)]
    pub filesystem: Option<FilesystemConfig>,
    /// Lines buffered per execution before they are written (default 500).
    #[serde(default)]
    pub batch_lines: Option<usize>,
    /// How often buffered lines are written regardless of count (default `10s`).
    #[serde(default)]
    pub flush_interval: Option<String>,
}

/// `persistence.s3`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct S3Config {
    /// Bucket name.
    pub bucket: String,
    /// Key prefix, e.g. `hibernation/`.
    #[serde(default)]
    pub prefix: String,
    /// Days to keep objects; unset keeps them forever.
    #[serde(default)]
    pub retention: Option<u32>,
    /// AWS region (default: `AWS_REGION`/`AWS_DEFAULT_REGION`, else `us-east-1`).
    #[serde(default)]
    pub region: Option<String>,
    /// Endpoint of an S3-compatible store (MinIO, moto); implies path-style.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Allow `http://` endpoints (also when the controller's environment
    /// has `AWS_ALLOW_HTTP=true`).
    #[serde(default)]
    pub allow_http: bool,
    /// Use conditional puts (`If-Match`/`If-None-Match`) so that several
    /// controller replicas can write one execution's object safely (default
    /// `true`; set `false` for S3-compatible stores without support).
    #[serde(default)]
    pub conditional_writes: Option<bool>,
}

/// `persistence.filesystem`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FilesystemConfig {
    /// Root directory (created when missing).
    pub path: String,
    /// Key prefix below the root.
    #[serde(default)]
    pub prefix: String,
    /// Days to keep files; unset keeps them forever.
    #[serde(default)]
    pub retention: Option<u32>,
}

/// `splunk`: Splunk HTTP Event Collector.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SplunkConfig {
    /// Off unless `true`.
    #[serde(default)]
    pub enabled: bool,
    /// HEC URL: `https://host:8088`, `…/services/collector` or
    /// `…/services/collector/event`. `url` is accepted as an alias.
    #[serde(alias = "url")]
    pub endpoint: String,
    /// HEC token source (default `$SPLUNK_HEC_TOKEN`).
    #[serde(default)]
    pub token: Option<SecretSource>,
    /// Event `source` (default `hibernator-controller`).
    #[serde(default)]
    pub source: Option<String>,
    /// Event `sourcetype` (default `hibernator:runner`).
    #[serde(default)]
    pub sourcetype: Option<String>,
    /// Target index (default: the token's default index).
    #[serde(default)]
    pub index: Option<String>,
    /// Event `host` (default `$HOSTNAME`, else `hibernator`).
    #[serde(default)]
    pub host: Option<String>,
    /// Timeout per request (default `10s`).
    #[serde(default)]
    pub timeout: Option<String>,
    /// Retries of a transient failure (default 3).
    #[serde(default)]
    pub max_retries: Option<u32>,
}

/// `datadog`: Datadog HTTP log intake.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DatadogConfig {
    /// Off unless `true`.
    #[serde(default)]
    pub enabled: bool,
    /// API key source (default `$DATADOG_API_KEY`).
    #[serde(default)]
    pub api_key: Option<SecretSource>,
    /// Datadog site (default `$DATADOG_SITE`, else `datadoghq.com`); the
    /// intake is `https://http-intake.logs.<site>`.
    #[serde(default)]
    pub site: Option<String>,
    /// Intake URL overriding `site`: a base URL (`/api/v2/logs` is added) or a
    /// full intake path (`…/api/v2/logs`, `…/v1/input`). `url` is an alias.
    #[serde(default, alias = "url")]
    pub endpoint: Option<String>,
    /// `service` attribute (default `hibernator-operator`).
    #[serde(default)]
    pub service: Option<String>,
    /// `ddsource` attribute (default `hibernator`).
    #[serde(default)]
    pub source: Option<String>,
    /// Extra tags, `key:value`.
    #[serde(default)]
    pub tags: Vec<String>,
    /// `hostname` attribute (default `$HOSTNAME`, else `hibernator`).
    #[serde(default)]
    pub hostname: Option<String>,
    /// Timeout per request (default `10s`).
    #[serde(default)]
    pub timeout: Option<String>,
    /// Retries of a transient failure (default 3).
    #[serde(default)]
    pub max_retries: Option<u32>,
}

/// `otlp`: OpenTelemetry log export over OTLP/gRPC.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OtlpConfig {
    /// Off unless `true`.
    #[serde(default)]
    pub enabled: bool,
    /// Collector endpoint, e.g. `http://otel-collector:4317`.
    pub endpoint: String,
    /// `service.name` resource attribute (default `hibernator-operator`).
    #[serde(default)]
    pub service_name: Option<String>,
    /// Export timeout (default `10s`).
    #[serde(default)]
    pub timeout: Option<String>,
}

pub(crate) fn duration_field(
    field: &str,
    value: Option<&String>,
    default: Duration,
) -> Result<Duration, ConfigError> {
    match value {
        None => Ok(default),
        Some(raw) => {
            let parsed = parse_duration(raw).map_err(|message| invalid(field, message))?;
            if parsed.is_zero() {
                return Err(invalid(field, "must be greater than zero"));
            }
            Ok(parsed)
        }
    }
}

fn http_url(field: &str, raw: &str) -> Result<reqwest::Url, ConfigError> {
    let url =
        reqwest::Url::parse(raw.trim()).map_err(|e| invalid(field, format!("not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(field, "must be an http:// or https:// URL"));
    }
    if url.host_str().is_none() {
        return Err(invalid(field, "has no host"));
    }
    Ok(url)
}

fn retry_policy(field: &str, max_retries: Option<u32>) -> Result<RetryPolicy, ConfigError> {
    let retries = max_retries.unwrap_or(3);
    if retries > 20 {
        return Err(invalid(field, "must be at most 20"));
    }
    Ok(RetryPolicy {
        max_retries: retries,
        ..RetryPolicy::default()
    })
}

fn default_host(env: &dyn Fn(&str) -> Option<String>) -> String {
    env("HOSTNAME")
        .filter(|h| !h.trim().is_empty())
        .unwrap_or_else(|| "hibernator".to_string())
}

impl PersistenceConfig {
    /// Where the log of an execution is stored, as the plan's
    /// `status.executions[].logsRef` shows it: `s3://<bucket>/<key>` or the
    /// file path, the key dated by the day the runner Job `started` (UTC);
    /// `None` when persistence is off or the backend section is missing.
    pub fn logs_ref(
        &self,
        plan: &str,
        target: &str,
        execution_id: &str,
        started: chrono::DateTime<chrono::Utc>,
    ) -> Option<String> {
        if !self.enabled {
            return None;
        }
        let date = started.date_naive();
        let key =
            |prefix: &str| super::object::execution_key(prefix, date, plan, target, execution_id);
        match self.backend {
            BackendKind::S3 => {
                let s3 = self.s3.as_ref()?;
                Some(format!("s3://{}/{}", s3.bucket.trim(), key(&s3.prefix)))
            }
            BackendKind::Filesystem => {
                let fs = self.filesystem.as_ref()?;
                Some(format!(
                    "{}/{}",
                    fs.path.trim().trim_end_matches('/'),
                    key(&fs.prefix)
                ))
            }
        }
    }

    /// Validates the section and builds the sink options and backend.
    pub fn to_options(&self) -> Result<ObjectSinkOptions, ConfigError> {
        let batch_lines = self.batch_lines.unwrap_or(500);
        if batch_lines == 0 {
            return Err(invalid("persistence.batchLines", "must be at least 1"));
        }
        let flush_interval = duration_field(
            "persistence.flushInterval",
            self.flush_interval.as_ref(),
            Duration::from_secs(10),
        )?;
        let (prefix, retention, field) = match self.backend {
            BackendKind::S3 => {
                let s3 = self
                    .s3
                    .as_ref()
                    .ok_or_else(|| invalid("persistence.s3", "required when backend is s3"))?;
                (&s3.prefix, s3.retention, "persistence.s3.retention")
            }
            BackendKind::Filesystem => {
                let fs = self.filesystem.as_ref().ok_or_else(|| {
                    invalid(
                        "persistence.filesystem",
                        "required when backend is filesystem",
                    )
                })?;
                (&fs.prefix, fs.retention, "persistence.filesystem.retention")
            }
        };
        if retention == Some(0) {
            return Err(invalid(
                field,
                "must be at least 1 day (omit it to keep logs forever)",
            ));
        }
        Ok(ObjectSinkOptions {
            prefix: prefix.clone(),
            retention_days: retention,
            batch_lines,
            flush_interval,
            ..ObjectSinkOptions::default()
        })
    }
}

impl SplunkConfig {
    /// Validates the section, resolving the token with `env`.
    pub fn to_options(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<SplunkOptions, ConfigError> {
        let url = http_url("splunk.endpoint", &self.endpoint)?;
        let token_source = self
            .token
            .clone()
            .unwrap_or_else(|| SecretSource::Env("SPLUNK_HEC_TOKEN".to_string()));
        let token = token_source
            .resolve(env)
            .map_err(|message| ConfigError::MissingSecret {
                field: "splunk.token".to_string(),
                message,
            })?;
        Ok(SplunkOptions {
            url,
            token,
            source: self
                .source
                .clone()
                .unwrap_or_else(|| "hibernator-controller".to_string()),
            sourcetype: self
                .sourcetype
                .clone()
                .unwrap_or_else(|| "hibernator:runner".to_string()),
            index: self.index.clone(),
            host: self.host.clone().unwrap_or_else(|| default_host(env)),
            timeout: duration_field(
                "splunk.timeout",
                self.timeout.as_ref(),
                Duration::from_secs(10),
            )?,
            retry: retry_policy("splunk.maxRetries", self.max_retries)?,
            max_batch_bytes: SplunkOptions::DEFAULT_MAX_BATCH_BYTES,
        })
    }
}

impl DatadogConfig {
    /// Validates the section, resolving the API key and site with `env`.
    pub fn to_options(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<DatadogOptions, ConfigError> {
        let url = match &self.endpoint {
            Some(endpoint) => http_url("datadog.endpoint", endpoint)?,
            None => {
                let site = self
                    .site
                    .clone()
                    .or_else(|| env("DATADOG_SITE"))
                    .filter(|s| !s.trim().is_empty())
                    .unwrap_or_else(|| "datadoghq.com".to_string());
                http_url(
                    "datadog.site",
                    &format!("https://http-intake.logs.{}", site.trim()),
                )?
            }
        };
        let key_source = self
            .api_key
            .clone()
            .unwrap_or_else(|| SecretSource::Env("DATADOG_API_KEY".to_string()));
        let api_key = key_source
            .resolve(env)
            .map_err(|message| ConfigError::MissingSecret {
                field: "datadog.apiKey".to_string(),
                message,
            })?;
        for (i, tag) in self.tags.iter().enumerate() {
            if tag.trim().is_empty() || tag.contains(',') {
                return Err(invalid(
                    format!("datadog.tags[{i}]"),
                    "must be a non-empty `key:value` without commas",
                ));
            }
        }
        Ok(DatadogOptions {
            url,
            api_key,
            service: self
                .service
                .clone()
                .unwrap_or_else(|| "hibernator-operator".to_string()),
            source: self
                .source
                .clone()
                .unwrap_or_else(|| "hibernator".to_string()),
            tags: self.tags.clone(),
            hostname: self.hostname.clone().unwrap_or_else(|| default_host(env)),
            timeout: duration_field(
                "datadog.timeout",
                self.timeout.as_ref(),
                Duration::from_secs(10),
            )?,
            retry: retry_policy("datadog.maxRetries", self.max_retries)?,
        })
    }
}

/// Validates the configuration and builds every enabled sink, reading
/// credentials from the process environment. See [`build_sinks_with_env`].
pub fn build_sinks(config: &SinksConfig) -> Result<Vec<Arc<dyn LogSink>>, ConfigError> {
    build_sinks_with_env(config, &|name| std::env::var(name).ok())
}

/// Validates the configuration and builds every enabled sink, with `env` as
/// the environment (credentials, `DATADOG_SITE`, `HOSTNAME`, AWS settings).
///
/// Each sink comes wrapped in a [`Batcher`], so `write_batch` only queues
/// and a slow destination never blocks the streaming server; `flush` waits
/// until everything queued was written. Nothing is spawned until the first
/// call, so this can run outside a Tokio runtime.
pub fn build_sinks_with_env(
    config: &SinksConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Arc<dyn LogSink>>, ConfigError> {
    Ok(build_batched_sinks_with_env(config, env)?
        .into_iter()
        .map(|batcher| batcher as Arc<dyn LogSink>)
        .collect())
}

/// Like [`build_sinks_with_env`], but returns the [`Batcher`]s themselves so
/// that their counters ([`Batcher::stats`]: written, dropped, failed) can be
/// exported as metrics. Order: persistence, Splunk, Datadog, OTLP.
pub fn build_batched_sinks_with_env(
    config: &SinksConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Arc<Batcher>>, ConfigError> {
    let mut sinks: Vec<Arc<dyn LogSink>> = Vec::new();
    if let Some(persistence) = config.persistence.as_ref().filter(|p| p.enabled) {
        let options = persistence.to_options()?;
        let store = super::object::store_from_config(persistence, env)?;
        sinks.push(Arc::new(ObjectStoreSink::new(store, options)));
    }
    if let Some(splunk) = config.splunk.as_ref().filter(|s| s.enabled) {
        let sink =
            SplunkSink::new(splunk.to_options(env)?).map_err(|e| ConfigError::HttpClient {
                field: "splunk".to_string(),
                message: e.to_string(),
            })?;
        sinks.push(Arc::new(sink));
    }
    if let Some(datadog) = config.datadog.as_ref().filter(|d| d.enabled) {
        let sink =
            DatadogSink::new(datadog.to_options(env)?).map_err(|e| ConfigError::HttpClient {
                field: "datadog".to_string(),
                message: e.to_string(),
            })?;
        sinks.push(Arc::new(sink));
    }
    if let Some(otlp) = config.otlp.as_ref().filter(|o| o.enabled) {
        sinks.push(build_otlp(otlp)?);
    }
    Ok(sinks
        .into_iter()
        .map(|sink| Arc::new(Batcher::new(sink, BatcherOptions::default())))
        .collect())
}

#[cfg(feature = "otlp")]
fn build_otlp(otlp: &OtlpConfig) -> Result<Arc<dyn LogSink>, ConfigError> {
    let options = super::otlp::OtlpOptions::from_config(otlp)?;
    Ok(Arc::new(super::otlp::OtlpSink::new(options)?))
}

#[cfg(not(feature = "otlp"))]
fn build_otlp(_otlp: &OtlpConfig) -> Result<Arc<dyn LogSink>, ConfigError> {
    Err(ConfigError::FeatureDisabled {
        field: "otlp".to_string(),
        feature: "otlp",
    })
}
