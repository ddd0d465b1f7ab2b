//! OpenTelemetry OTLP/gRPC export of runner logs (crate feature `otlp`).
//!
//! Each [`LogRecord`] becomes an OTLP log record: body = message, severity
//! from the level, timestamp = the runner's, attributes `execution.id`,
//! `k8s.namespace.name`, `hibernator.plan`, `hibernator.target` and the
//! record's fields; resource `service.name` (plus `OTEL_RESOURCE_ATTRIBUTES`).
//! Batches are exported directly from the caller's task with the
//! `opentelemetry-otlp` tonic exporter (no SDK processor thread); the gRPC
//! channel is created on first use, inside the Tokio runtime.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::{InstrumentationScope, Key};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::{LogBatch, LogExporter as _, SdkLogger, SdkLoggerProvider};
use tokio::sync::OnceCell;

use super::config::{ConfigError, OtlpConfig, duration_field, invalid};
use super::{LogRecord, LogSink, SinkError};

/// Settings of an [`OtlpSink`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OtlpOptions {
    /// Collector endpoint (`http://collector:4317`).
    pub endpoint: String,
    /// `service.name` of the resource.
    pub service_name: String,
    /// Timeout of one export.
    pub timeout: Duration,
}

impl OtlpOptions {
    /// Validates the `otlp` section.
    pub fn from_config(config: &OtlpConfig) -> Result<Self, ConfigError> {
        let url = reqwest::Url::parse(config.endpoint.trim())
            .map_err(|e| invalid("otlp.endpoint", format!("not a URL ({e})")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(invalid(
                "otlp.endpoint",
                "must be an http:// or https:// URL with a host",
            ));
        }
        Ok(Self {
            endpoint: config.endpoint.trim().to_string(),
            service_name: config
                .service_name
                .clone()
                .unwrap_or_else(|| "hibernator-operator".to_string()),
            timeout: duration_field(
                "otlp.timeout",
                config.timeout.as_ref(),
                Duration::from_secs(10),
            )?,
        })
    }
}

/// Exports log records to an OpenTelemetry collector over OTLP/gRPC.
pub struct OtlpSink {
    options: OtlpOptions,
    exporter: OnceCell<opentelemetry_otlp::LogExporter>,
    // Only used to create SDK log records; it has no processor.
    logger: SdkLogger,
    _provider: SdkLoggerProvider,
    scope: InstrumentationScope,
}

impl std::fmt::Debug for OtlpSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpSink")
            .field("options", &self.options)
            .finish()
    }
}

/// OpenTelemetry severity for a runner level.
pub fn severity_of(level: &str) -> (Severity, &'static str) {
    match level.to_ascii_uppercase().as_str() {
        "TRACE" => (Severity::Trace, "TRACE"),
        "DEBUG" => (Severity::Debug, "DEBUG"),
        "WARN" | "WARNING" => (Severity::Warn, "WARN"),
        "ERROR" => (Severity::Error, "ERROR"),
        "FATAL" | "CRITICAL" => (Severity::Fatal, "FATAL"),
        _ => (Severity::Info, "INFO"),
    }
}

fn export_error(message: impl std::fmt::Display) -> SinkError {
    SinkError::Transient {
        sink: "otlp",
        message: message.to_string(),
    }
}

impl OtlpSink {
    /// Builds the sink; the exporter connects on first use.
    pub fn new(options: OtlpOptions) -> Result<Self, ConfigError> {
        let provider = SdkLoggerProvider::builder().build();
        let logger = provider.logger("hibernator-streaming");
        Ok(Self {
            options,
            exporter: OnceCell::new(),
            logger,
            _provider: provider,
            scope: InstrumentationScope::builder("hibernator-streaming")
                .with_version(env!("CARGO_PKG_VERSION"))
                .build(),
        })
    }

    async fn exporter(&self) -> Result<&opentelemetry_otlp::LogExporter, SinkError> {
        self.exporter
            .get_or_try_init(|| async {
                let mut exporter = opentelemetry_otlp::LogExporter::builder()
                    .with_tonic()
                    .with_endpoint(self.options.endpoint.clone())
                    .with_timeout(self.options.timeout)
                    .build()
                    .map_err(|e| SinkError::Permanent {
                        sink: "otlp",
                        message: format!("cannot build the OTLP exporter: {e}"),
                    })?;
                exporter.set_resource(
                    &Resource::builder()
                        .with_service_name(self.options.service_name.clone())
                        .build(),
                );
                Ok(exporter)
            })
            .await
    }

    fn to_sdk(&self, record: &LogRecord) -> opentelemetry_sdk::logs::SdkLogRecord {
        let mut sdk = self.logger.create_log_record();
        let (severity, text) = severity_of(&record.level);
        sdk.set_timestamp(SystemTime::from(record.timestamp));
        sdk.set_observed_timestamp(SystemTime::now());
        sdk.set_severity_number(severity);
        sdk.set_severity_text(text);
        sdk.set_body(AnyValue::from(record.message.clone()));
        sdk.add_attribute("execution.id", record.execution_id.clone());
        sdk.add_attribute("k8s.namespace.name", record.namespace.clone());
        sdk.add_attribute("hibernator.plan", record.plan.clone());
        sdk.add_attribute("hibernator.target", record.target.clone());
        for (key, value) in &record.fields {
            sdk.add_attribute(Key::new(key.clone()), value.clone());
        }
        sdk
    }
}

#[async_trait]
impl LogSink for OtlpSink {
    fn name(&self) -> &'static str {
        "otlp"
    }

    async fn write_batch(&self, records: &[LogRecord]) -> Result<(), SinkError> {
        if records.is_empty() {
            return Ok(());
        }
        let exporter = self.exporter().await?;
        let sdk: Vec<_> = records.iter().map(|r| self.to_sdk(r)).collect();
        let data: Vec<_> = sdk.iter().map(|r| (r, &self.scope)).collect();
        exporter
            .export(LogBatch::new(&data))
            .await
            .map_err(export_error)
    }
}
