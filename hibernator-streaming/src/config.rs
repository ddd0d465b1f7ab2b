//! Server and client configuration, mirroring the Helm values
//! (`controller.streaming.*`) and the environment variables of the runner
//! and controller (`HIBERNATOR_GRPC_ENDPOINT`, `HIBERNATOR_WEBHOOK_ENDPOINT`,
//! `HIBERNATOR_EXECUTION_ID`, …).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

mod ca;

pub use self::ca::{check_ca_pem, read_runner_ca};

/// Default gRPC port.
pub const DEFAULT_GRPC_PORT: u16 = 50051;
/// Default webhook port.
pub const DEFAULT_WEBHOOK_PORT: u16 = 8082;
/// Audience the runner's projected token must carry.
pub const AUDIENCE: &str = "hibernator-control-plane";
/// Where the runner's projected token is mounted.
pub const DEFAULT_TOKEN_PATH: &str = "/var/run/secrets/stream/token";
/// Default largest accepted webhook body (1 MiB).
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// Environment variable: gRPC endpoint (`host:port`; bind address on the
/// controller, server address on the runner).
pub const ENV_GRPC_ENDPOINT: &str = "HIBERNATOR_GRPC_ENDPOINT";
/// Environment variable: `true` enables TLS on gRPC.
pub const ENV_GRPC_TLS: &str = "HIBERNATOR_GRPC_TLS";
/// Environment variable: certificate (PEM) path (the server's on the
/// controller, the client certificate on the runner).
pub const ENV_GRPC_TLS_CERT: &str = "HIBERNATOR_GRPC_TLS_CERT";
/// Environment variable: key (PEM) path of that certificate.
pub const ENV_GRPC_TLS_KEY: &str = "HIBERNATOR_GRPC_TLS_KEY";
/// Environment variable: CA bundle (PEM) path; on the server it enables
/// client-certificate verification, on the runner it is the trust root.
pub const ENV_GRPC_TLS_CA: &str = "HIBERNATOR_GRPC_TLS_CA";
/// Environment variable (runner): the gRPC trust root as inline PEM. The
/// controller sets it on every runner Job from `streaming.grpc.tls.caPath`
/// (a Secret cannot be mounted across namespaces; a CA certificate is
/// public). [`ENV_GRPC_TLS_CA`] (a file) wins when both are set.
pub const ENV_GRPC_TLS_CA_PEM: &str = "HIBERNATOR_GRPC_TLS_CA_PEM";
/// Environment variable: webhook URL on the runner (`http://host:8082/logs`),
/// listen port on the controller (`HIBERNATOR_WEBHOOK_PORT`).
pub const ENV_WEBHOOK_ENDPOINT: &str = "HIBERNATOR_WEBHOOK_ENDPOINT";
/// Environment variable: webhook listen port on the controller.
pub const ENV_WEBHOOK_PORT: &str = "HIBERNATOR_WEBHOOK_PORT";
/// Environment variable: execution id of the runner.
pub const ENV_EXECUTION_ID: &str = "HIBERNATOR_EXECUTION_ID";
/// Environment variable: transport (`auto`, `grpc`, `webhook`).
pub const ENV_TRANSPORT: &str = "HIBERNATOR_STREAM_TRANSPORT";
/// Environment variable: projected token path.
pub const ENV_TOKEN_PATH: &str = "HIBERNATOR_STREAM_TOKEN_PATH";
/// Environment variable: per-request timeout (`30s`).
pub const ENV_TIMEOUT: &str = "HIBERNATOR_STREAM_TIMEOUT";
/// Environment variable: retries per request.
pub const ENV_MAX_RETRIES: &str = "HIBERNATOR_STREAM_MAX_RETRIES";
/// Environment variable: log queue capacity.
pub const ENV_QUEUE_SIZE: &str = "HIBERNATOR_STREAM_QUEUE_SIZE";

/// Invalid streaming configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value could not be parsed.
    #[error("invalid {field}: {message}")]
    Invalid {
        /// Field or environment variable.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A required value is missing.
    #[error("{field} is required")]
    Missing {
        /// Field or environment variable.
        field: &'static str,
    },
    /// The CA bundle runners must trust (`streaming.grpc.tls.caPath`)
    /// cannot be read or holds no PEM certificate.
    #[error("streaming.grpc.tls.caPath {}: {message}", path.display())]
    RunnerCa {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// Which transport the runner uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// gRPC when it connects, webhook otherwise (and when gRPC breaks).
    #[default]
    Auto,
    /// gRPC only.
    Grpc,
    /// Webhook only.
    Webhook,
}

impl FromStr for Transport {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "grpc" => Ok(Self::Grpc),
            "webhook" => Ok(Self::Webhook),
            other => Err(ConfigError::Invalid {
                field: "transport",
                message: format!("{other:?} is not one of auto, grpc, webhook"),
            }),
        }
    }
}

/// Server TLS settings (`streaming.grpc.tls`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServerTls {
    /// Whether TLS is on.
    pub enabled: bool,
    /// Certificate chain (PEM).
    pub cert_path: PathBuf,
    /// Private key (PEM).
    pub key_path: PathBuf,
    /// When set, clients must present a certificate signed by this CA (PEM).
    pub client_ca_path: Option<PathBuf>,
    /// CA bundle (PEM) runners must trust; passed to every runner Job
    /// inline as `HIBERNATOR_GRPC_TLS_CA_PEM`. Default: `ca.crt` in the
    /// directory of `cert_path` (where cert-manager and the chart's
    /// generated Secret put it).
    pub ca_path: Option<PathBuf>,
}

impl ServerTls {
    /// The CA bundle runners must trust: `ca_path`, else `ca.crt` next to
    /// `cert_path`.
    pub fn runner_ca_path(&self) -> PathBuf {
        match &self.ca_path {
            Some(path) => path.clone(),
            None => self
                .cert_path
                .parent()
                .unwrap_or_else(|| Path::new(""))
                .join("ca.crt"),
        }
    }
}

/// gRPC listener settings (`streaming.grpc`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GrpcServerConfig {
    /// Whether the gRPC listener runs.
    pub enabled: bool,
    /// Bind host.
    pub host: String,
    /// Bind port (0 picks a free port).
    pub port: u16,
    /// TLS.
    pub tls: ServerTls,
    /// Address runners dial (`hibernator-grpc-service.hibernator-system:50051`).
    pub endpoint: Option<String>,
}

impl Default for GrpcServerConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            host: "0.0.0.0".into(),
            port: DEFAULT_GRPC_PORT,
            endpoint: None,
            tls: ServerTls::default(),
        }
    }
}

/// Webhook listener settings (`streaming.webhook`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct WebhookServerConfig {
    /// Whether the webhook listener runs.
    pub enabled: bool,
    /// Bind host.
    pub host: String,
    /// Bind port (0 picks a free port).
    pub port: u16,
    /// Largest accepted request body in bytes.
    pub max_body_bytes: usize,
    /// URL runners post logs to (`http://hibernator-controller.hibernator-system.svc:8082/logs`).
    pub endpoint: Option<String>,
    /// Retries of a runner request after the first attempt.
    pub max_retries: u32,
    /// Timeout of one runner request (`30s`).
    pub timeout: String,
}

impl Default for WebhookServerConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            host: "0.0.0.0".into(),
            port: DEFAULT_WEBHOOK_PORT,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            endpoint: None,
            max_retries: 3,
            timeout: "30s".into(),
        }
    }
}

/// Controller-side streaming settings (`controller.streaming`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServerConfig {
    /// Whether the controller runs the streaming server at all.
    pub enabled: bool,
    /// Transport the runners are told to use.
    pub transport: Transport,
    /// gRPC listener.
    pub grpc: GrpcServerConfig,
    /// Webhook listener.
    pub webhook: WebhookServerConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            transport: Transport::Auto,
            grpc: GrpcServerConfig::default(),
            webhook: WebhookServerConfig::default(),
        }
    }
}

impl ServerConfig {
    /// Whether runners are told to use gRPC (its listener is on and the
    /// transport is not `webhook`).
    fn runners_use_grpc(&self) -> bool {
        self.grpc.enabled && self.transport != Transport::Webhook
    }

    /// The CA bundle runner Jobs get inline (`HIBERNATOR_GRPC_TLS_CA_PEM`):
    /// `Some` when runners use gRPC and gRPC TLS is on.
    pub fn runner_ca_path(&self) -> Option<PathBuf> {
        (self.runners_use_grpc() && self.grpc.tls.enabled).then(|| self.grpc.tls.runner_ca_path())
    }

    /// Environment of a runner Job reporting to this server (everything but
    /// `HIBERNATOR_EXECUTION_ID`, which is per Job): transport, endpoints,
    /// TLS, timeout and retries. Endpoints of disabled listeners are left out.
    /// With gRPC TLS on, the CA bundle of [`Self::runner_ca_path`] is read
    /// now and included as `HIBERNATOR_GRPC_TLS_CA_PEM` (an error naming
    /// `streaming.grpc.tls.caPath` when it is unreadable or holds no
    /// certificate); a controller re-reads it for every Job it builds with
    /// [`read_runner_ca`], so a rotated CA reaches new Jobs.
    pub fn runner_env(&self) -> Result<Vec<(&'static str, String)>, ConfigError> {
        let timeout = hibernator_core::duration::parse_duration(&self.webhook.timeout).map_err(
            |message| ConfigError::Invalid {
                field: "webhook.timeout",
                message,
            },
        )?;
        let transport = match self.transport {
            Transport::Auto => "auto",
            Transport::Grpc => "grpc",
            Transport::Webhook => "webhook",
        };
        let mut env = vec![(ENV_TRANSPORT, transport.to_string())];
        if self.transport == Transport::Grpc
            && self.grpc.tls.enabled
            && self.grpc.tls.client_ca_path.is_some()
        {
            return Err(ConfigError::Invalid {
                field: "grpc.tls.clientCaPath",
                message: "runners present no client certificate, so with transport grpc they \
                          could never connect; unset clientCaPath or use transport auto or webhook"
                    .into(),
            });
        }
        if self.runners_use_grpc() {
            let endpoint = self.grpc.endpoint.clone().ok_or(ConfigError::Missing {
                field: "grpc.endpoint",
            })?;
            env.push((ENV_GRPC_ENDPOINT, endpoint));
            env.push((ENV_GRPC_TLS, self.grpc.tls.enabled.to_string()));
            if let Some(ca) = self.runner_ca_path() {
                env.push((ENV_GRPC_TLS_CA_PEM, read_runner_ca(&ca)?));
            }
        }
        if self.webhook.enabled && self.transport != Transport::Grpc {
            let endpoint = self.webhook.endpoint.clone().ok_or(ConfigError::Missing {
                field: "webhook.endpoint",
            })?;
            env.push((ENV_WEBHOOK_ENDPOINT, endpoint));
        }
        env.push((
            ENV_TIMEOUT,
            hibernator_core::duration::format_duration(timeout),
        ));
        env.push((ENV_MAX_RETRIES, self.webhook.max_retries.to_string()));
        Ok(env)
    }

    /// Applies the controller's environment (`HIBERNATOR_GRPC_ENDPOINT`,
    /// `HIBERNATOR_GRPC_TLS*`, `HIBERNATOR_WEBHOOK_PORT`) over `self`.
    pub fn with_env(self, env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut cfg = self;
        if let Some(endpoint) = env(ENV_GRPC_ENDPOINT) {
            let (host, port) = split_host_port(&endpoint, ENV_GRPC_ENDPOINT)?;
            cfg.grpc.host = host;
            cfg.grpc.port = port;
        }
        if let Some(tls) = env(ENV_GRPC_TLS) {
            cfg.grpc.tls.enabled = parse_bool(&tls, ENV_GRPC_TLS)?;
        }
        if let Some(cert) = env(ENV_GRPC_TLS_CERT) {
            cfg.grpc.tls.cert_path = cert.into();
        }
        if let Some(key) = env(ENV_GRPC_TLS_KEY) {
            cfg.grpc.tls.key_path = key.into();
        }
        if let Some(ca) = env(ENV_GRPC_TLS_CA) {
            cfg.grpc.tls.client_ca_path = Some(ca.into());
        }
        if let Some(port) = env(ENV_WEBHOOK_PORT) {
            cfg.webhook.port = port.trim().parse().map_err(|e| ConfigError::Invalid {
                field: ENV_WEBHOOK_PORT,
                message: format!("{port:?}: {e}"),
            })?;
        }
        Ok(cfg)
    }
}

/// Runner-side streaming settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientConfig {
    /// Transport choice.
    pub transport: Transport,
    /// Execution this runner reports for.
    pub execution_id: String,
    /// gRPC server (`host:port`, `http://host:port` or `https://host:port`).
    pub grpc_endpoint: Option<String>,
    /// Use TLS for gRPC (implied by an `https://` endpoint).
    pub grpc_tls: bool,
    /// Trust root (PEM file) for gRPC TLS; the system roots are not used.
    /// Wins over `grpc_ca_pem` when both are set.
    pub grpc_ca_path: Option<PathBuf>,
    /// Trust root as inline PEM (`HIBERNATOR_GRPC_TLS_CA_PEM`, what the
    /// controller sets on runner Jobs), used when `grpc_ca_path` is unset.
    pub grpc_ca_pem: Option<String>,
    /// Client certificate and key (PEM) presented to a server that verifies
    /// client certificates.
    pub grpc_client_identity: Option<(PathBuf, PathBuf)>,
    /// Webhook URL of the logs endpoint (`http://host:8082/logs`); progress
    /// and completion go to `/progress` and `/completion` next to it.
    pub webhook_endpoint: Option<String>,
    /// Projected ServiceAccount token file (re-read when it changes).
    pub token_path: PathBuf,
    /// Timeout of one request (and of connecting).
    pub timeout: Duration,
    /// Retries of one request after the first attempt.
    pub max_retries: u32,
    /// Capacity of the log queue; lines beyond it are dropped and counted.
    pub queue_size: usize,
    /// Largest number of lines sent in one batch.
    pub batch_size: usize,
    /// Interval of heartbeats.
    pub heartbeat_interval: Duration,
}

impl ClientConfig {
    /// A configuration with defaults for one execution.
    pub fn new(execution_id: impl Into<String>) -> Self {
        Self {
            transport: Transport::Auto,
            execution_id: execution_id.into(),
            grpc_endpoint: None,
            grpc_tls: false,
            grpc_ca_path: None,
            grpc_ca_pem: None,
            grpc_client_identity: None,
            webhook_endpoint: None,
            token_path: PathBuf::from(DEFAULT_TOKEN_PATH),
            timeout: Duration::from_secs(30),
            max_retries: 3,
            queue_size: 10_000,
            batch_size: 500,
            heartbeat_interval: Duration::from_secs(30),
        }
    }

    /// Reads the runner's environment (`HIBERNATOR_EXECUTION_ID` required;
    /// `HIBERNATOR_GRPC_ENDPOINT`, `HIBERNATOR_WEBHOOK_ENDPOINT`,
    /// `HIBERNATOR_STREAM_TRANSPORT`, … optional). The gRPC trust root is
    /// `HIBERNATOR_GRPC_TLS_CA` (a file) or `HIBERNATOR_GRPC_TLS_CA_PEM`
    /// (inline PEM, checked to hold a certificate); the file wins when both
    /// are given.
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let execution_id = env(ENV_EXECUTION_ID)
            .filter(|v| !v.trim().is_empty())
            .ok_or(ConfigError::Missing {
                field: ENV_EXECUTION_ID,
            })?;
        let mut cfg = Self::new(execution_id);
        if let Some(t) = env(ENV_TRANSPORT) {
            cfg.transport = t.parse()?;
        }
        cfg.grpc_endpoint = env(ENV_GRPC_ENDPOINT).filter(|v| !v.trim().is_empty());
        if let Some(tls) = env(ENV_GRPC_TLS) {
            cfg.grpc_tls = parse_bool(&tls, ENV_GRPC_TLS)?;
        }
        cfg.grpc_ca_path = env(ENV_GRPC_TLS_CA)
            .filter(|v| !v.trim().is_empty())
            .map(PathBuf::from);
        if let Some(pem) = env(ENV_GRPC_TLS_CA_PEM).filter(|v| !v.trim().is_empty()) {
            check_ca_pem(pem.as_bytes()).map_err(|message| ConfigError::Invalid {
                field: ENV_GRPC_TLS_CA_PEM,
                message,
            })?;
            cfg.grpc_ca_pem = Some(pem);
        }
        if let (Some(cert), Some(key)) = (env(ENV_GRPC_TLS_CERT), env(ENV_GRPC_TLS_KEY)) {
            cfg.grpc_client_identity = Some((cert.into(), key.into()));
        }
        cfg.webhook_endpoint = env(ENV_WEBHOOK_ENDPOINT).filter(|v| !v.trim().is_empty());
        if let Some(p) = env(ENV_TOKEN_PATH) {
            cfg.token_path = p.into();
        }
        if let Some(t) = env(ENV_TIMEOUT) {
            cfg.timeout = hibernator_core::duration::parse_duration(&t).map_err(|message| {
                ConfigError::Invalid {
                    field: ENV_TIMEOUT,
                    message,
                }
            })?;
        }
        if let Some(r) = env(ENV_MAX_RETRIES) {
            cfg.max_retries = r.trim().parse().map_err(|e| ConfigError::Invalid {
                field: ENV_MAX_RETRIES,
                message: format!("{r:?}: {e}"),
            })?;
        }
        if let Some(q) = env(ENV_QUEUE_SIZE) {
            cfg.queue_size = q.trim().parse().map_err(|e| ConfigError::Invalid {
                field: ENV_QUEUE_SIZE,
                message: format!("{q:?}: {e}"),
            })?;
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks that the chosen transport has an endpoint and limits are sane.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self.transport {
            Transport::Grpc if self.grpc_endpoint.is_none() => {
                return Err(ConfigError::Missing {
                    field: ENV_GRPC_ENDPOINT,
                });
            }
            Transport::Webhook if self.webhook_endpoint.is_none() => {
                return Err(ConfigError::Missing {
                    field: ENV_WEBHOOK_ENDPOINT,
                });
            }
            Transport::Auto if self.grpc_endpoint.is_none() && self.webhook_endpoint.is_none() => {
                return Err(ConfigError::Missing {
                    field: ENV_GRPC_ENDPOINT,
                });
            }
            _ => {}
        }
        if self.queue_size == 0 {
            return Err(ConfigError::Invalid {
                field: "queueSize",
                message: "must be at least 1".into(),
            });
        }
        if self.batch_size == 0 {
            return Err(ConfigError::Invalid {
                field: "batchSize",
                message: "must be at least 1".into(),
            });
        }
        Ok(())
    }
}

/// Parses the process environment with [`std::env::var`].
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn parse_bool(value: &str, field: &'static str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" | "" => Ok(false),
        other => Err(ConfigError::Invalid {
            field,
            message: format!("{other:?} is not a boolean"),
        }),
    }
}

/// Splits `host:port` (also `[::1]:port`); the port is required.
pub fn split_host_port(endpoint: &str, field: &'static str) -> Result<(String, u16), ConfigError> {
    let trimmed = endpoint.trim();
    let trimmed = trimmed
        .strip_prefix("http://")
        .or_else(|| trimmed.strip_prefix("https://"))
        .unwrap_or(trimmed);
    if let Ok(addr) = trimmed.parse::<SocketAddr>() {
        return Ok((addr.ip().to_string(), addr.port()));
    }
    let (host, port) = trimmed
        .rsplit_once(':')
        .ok_or_else(|| ConfigError::Invalid {
            field,
            message: format!("{trimmed:?} is not host:port"),
        })?;
    let port = port.parse().map_err(|e| ConfigError::Invalid {
        field,
        message: format!("port of {trimmed:?}: {e}"),
    })?;
    if host.is_empty() {
        return Err(ConfigError::Invalid {
            field,
            message: format!("{trimmed:?} has no host"),
        });
    }
    Ok((host.to_string(), port))
}

#[cfg(test)]
mod tests;
