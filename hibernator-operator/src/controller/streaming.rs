//! The runner streaming server the controller runs next to its reconciler
//! (gRPC `ExecutionService` + HTTP webhook, `hibernator-streaming`), and the
//! runner Job environment derived from its configuration.

use std::path::Path;
use std::sync::Arc;

use hibernator_streaming::config::ServerConfig;
use hibernator_streaming::server::{RunningServer, StreamingServer};
use hibernator_streaming::sink::{LogSink, SinksConfig, build_sinks};
use kube::runtime::events::Reporter;

use super::metrics::Metrics;
use hibernator_kube::RunnerSettings;

/// Why the streaming configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StreamingSetupError {
    /// A configuration file cannot be read.
    #[error("cannot read {flag} file {path}: {source}")]
    Read {
        /// The flag that named the file.
        flag: &'static str,
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A configuration file is not valid YAML of the expected shape.
    #[error("{flag} file {path}: {message}")]
    Parse {
        /// The flag that named the file.
        flag: &'static str,
        /// The file.
        path: String,
        /// The field path and problem.
        message: String,
    },
    /// The configuration is inconsistent.
    #[error("{flag}: {message}")]
    Invalid {
        /// The flag whose file holds the bad value.
        flag: &'static str,
        /// The problem, naming the field.
        message: String,
    },
}

/// Streaming server and log sink configuration of the controller.
#[derive(Clone, Debug, Default)]
pub struct StreamingSetup {
    /// The server (`--streaming-config`, the `controller.streaming` values).
    pub server: ServerConfig,
    /// Persistence and forwarders (`--sinks-config`).
    pub sinks: SinksConfig,
    /// Start-up warnings (logged when the controller starts, printed by
    /// `--dry-run`), e.g. a gRPC bind address runners cannot reach.
    pub warnings: Vec<String>,
}

fn read_yaml<T: serde::de::DeserializeOwned>(
    flag: &'static str,
    path: &Path,
) -> Result<T, StreamingSetupError> {
    let text = std::fs::read_to_string(path).map_err(|source| StreamingSetupError::Read {
        flag,
        path: path.display().to_string(),
        source,
    })?;
    let de = yaml_serde::Deserializer::from_str(&text);
    serde_path_to_error::deserialize(de).map_err(|e| StreamingSetupError::Parse {
        flag,
        path: path.display().to_string(),
        message: format!("{}: {}", e.path(), e.inner()),
    })
}

impl StreamingSetup {
    /// Reads `--streaming-config` (the server; environment overrides such as
    /// `HIBERNATOR_GRPC_ENDPOINT` applied through `env`) and `--sinks-config`.
    pub fn load(
        streaming: &Path,
        sinks: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, StreamingSetupError> {
        let invalid = |e: hibernator_streaming::config::ConfigError| StreamingSetupError::Invalid {
            flag: "--streaming-config",
            message: e.to_string(),
        };
        let server: ServerConfig = read_yaml("--streaming-config", streaming)?;
        let server = server.with_env(&env).map_err(invalid)?;
        let warnings = server.startup_check(&env).map_err(invalid)?.warnings;
        let sinks = match sinks {
            Some(path) => read_yaml("--sinks-config", path)?,
            None => SinksConfig::default(),
        };
        let setup = Self {
            server,
            sinks,
            warnings,
        };
        setup.validate()?;
        Ok(setup)
    }

    /// Checks that runners can be told where to stream and that every
    /// enabled sink can be built (credentials resolved, fields valid).
    pub fn validate(&self) -> Result<(), StreamingSetupError> {
        if self.server.enabled {
            self.server
                .runner_env()
                .map_err(|e| StreamingSetupError::Invalid {
                    flag: "--streaming-config",
                    message: e.to_string(),
                })?;
        }
        self.build_sinks().map(|_| ())
    }

    /// The configured log sinks.
    pub fn build_sinks(&self) -> Result<Vec<Arc<dyn LogSink>>, StreamingSetupError> {
        build_sinks(&self.sinks).map_err(|e| StreamingSetupError::Invalid {
            flag: "--sinks-config",
            message: e.to_string(),
        })
    }

    /// Fills the runner settings from the server configuration: endpoints and
    /// transport unless given explicitly, plus TLS, timeout and retries. With
    /// gRPC TLS on, the runners' CA bundle is checked now and its path kept,
    /// so each Job gets the file's current content (see
    /// [`RunnerSettings::grpc_tls_ca`]).
    pub fn apply_to(&self, runner: &mut RunnerSettings) -> Result<(), StreamingSetupError> {
        if !self.server.enabled {
            return Ok(());
        }
        let env = self
            .server
            .runner_env()
            .map_err(|e| StreamingSetupError::Invalid {
                flag: "--streaming-config",
                message: e.to_string(),
            })?;
        for (key, value) in env {
            match key {
                hibernator_streaming::config::ENV_GRPC_ENDPOINT => {
                    runner.grpc_endpoint.get_or_insert(value);
                }
                hibernator_streaming::config::ENV_WEBHOOK_ENDPOINT => {
                    runner.webhook_endpoint.get_or_insert(value);
                }
                hibernator_streaming::config::ENV_TRANSPORT => {
                    if runner.stream_transport == "none" {
                        runner.stream_transport = value;
                    }
                }
                // Read again for every Job (rotation), not frozen here.
                hibernator_streaming::config::ENV_GRPC_TLS_CA_PEM => {
                    runner.grpc_tls_ca = self.server.runner_ca_path();
                }
                _ => runner.extra_env.push((key.to_string(), value)),
            }
        }
        Ok(())
    }
}

/// The metrics registry with the streaming server's metrics, and the server
/// (not yet listening) when streaming is enabled.
pub fn prepare(
    setup: Option<&StreamingSetup>,
    client: &kube::Client,
    instance: Option<String>,
) -> Result<(Metrics, Option<StreamingServer>), StreamingSetupError> {
    let Some(setup) = setup.filter(|s| s.server.enabled) else {
        return Ok((Metrics::new(), None));
    };
    for warning in &setup.warnings {
        tracing::warn!("{warning}");
    }
    let sinks = setup.build_sinks()?;
    let reporter = Reporter {
        controller: "hibernator-controller".to_string(),
        instance,
    };
    let mut server = None;
    let metrics = Metrics::new_with(|registry| {
        server = Some(StreamingServer::kube(
            setup.server.clone(),
            client.clone(),
            reporter,
            sinks,
            registry,
        ));
    });
    Ok((metrics, server))
}

/// Stops a running streaming server, logging (not failing on) errors.
pub async fn stop(server: Option<RunningServer>) {
    if let Some(server) = server
        && let Err(error) = server.shutdown().await
    {
        tracing::warn!(%error, "streaming server shutdown");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> std::path::PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn server_config_fills_runner_settings_without_overriding_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            &dir,
            "streaming.yaml",
            "enabled: true\ntransport: auto\ngrpc:\n  enabled: true\n  port: 50051\n  endpoint: hibernator-controller.hibernator-system.svc:50051\nwebhook:\n  enabled: true\n  port: 8082\n  endpoint: http://hibernator-controller.hibernator-system.svc:8082/logs\n  maxRetries: 4\n  timeout: 20s\n",
        );
        let setup = StreamingSetup::load(&path, None, |_| None).unwrap();
        let mut runner = RunnerSettings {
            webhook_endpoint: Some("http://explicit:1/logs".to_string()),
            ..RunnerSettings::default()
        };
        setup.apply_to(&mut runner).unwrap();
        assert_eq!(runner.stream_transport, "auto");
        assert_eq!(
            runner.grpc_endpoint.as_deref(),
            Some("hibernator-controller.hibernator-system.svc:50051")
        );
        assert_eq!(
            runner.webhook_endpoint.as_deref(),
            Some("http://explicit:1/logs")
        );
        let extra: std::collections::BTreeMap<_, _> = runner.extra_env.into_iter().collect();
        assert_eq!(
            extra
                .get("HIBERNATOR_STREAM_MAX_RETRIES")
                .map(String::as_str),
            Some("4")
        );
        assert!(extra.contains_key("HIBERNATOR_STREAM_TIMEOUT"));
    }

    #[test]
    fn bad_files_name_the_flag_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "streaming.yaml", "grpc:\n  port: not-a-port\n");
        let error = StreamingSetup::load(&path, None, |_| None)
            .unwrap_err()
            .to_string();
        assert!(error.contains("--streaming-config"), "{error}");
        assert!(error.contains("grpc.port"), "{error}");

        let missing = StreamingSetup::load(&dir.path().join("absent.yaml"), None, |_| None)
            .unwrap_err()
            .to_string();
        assert!(
            missing.contains("cannot read --streaming-config"),
            "{missing}"
        );
    }

    #[test]
    fn grpc_tls_needs_a_readable_runner_ca() {
        let dir = tempfile::tempdir().unwrap();
        let certs = dir.path().join("certs");
        std::fs::create_dir(&certs).unwrap();
        // The serving pair exists (it is checked first); the CA does not.
        std::fs::write(certs.join("tls.crt"), "").unwrap();
        std::fs::write(certs.join("tls.key"), "").unwrap();
        let config = format!(
            "enabled: true\ntransport: auto\ngrpc:\n  endpoint: https://c:50051\n  tls:\n    enabled: true\n    certPath: {0}/tls.crt\n    keyPath: {0}/tls.key\nwebhook:\n  endpoint: http://c:8082/logs\n",
            certs.display()
        );
        let path = write(&dir, "streaming.yaml", &config);
        let error = StreamingSetup::load(&path, None, |_| None)
            .unwrap_err()
            .to_string();
        assert!(error.contains("--streaming-config"), "{error}");
        assert!(error.contains("streaming.grpc.tls.caPath"), "{error}");
        assert!(
            error.contains(&certs.join("ca.crt").display().to_string()),
            "{error}"
        );

        // caPath names another file: that one is used.
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let key = rcgen::KeyPair::generate().unwrap();
        let bundle = write(&dir, "bundle.pem", &params.self_signed(&key).unwrap().pem());
        let path = write(
            &dir,
            "streaming.yaml",
            &config.replace(
                "    keyPath",
                &format!("    caPath: {}\n    keyPath", bundle.display()),
            ),
        );
        let setup = StreamingSetup::load(&path, None, |_| None).unwrap();
        let mut runner = RunnerSettings::default();
        setup.apply_to(&mut runner).unwrap();
        assert_eq!(runner.grpc_tls_ca, Some(bundle));
    }

    #[test]
    fn enabled_server_without_runner_endpoint_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            &dir,
            "streaming.yaml",
            "enabled: true\ntransport: grpc\ngrpc:\n  enabled: true\n",
        );
        let error = StreamingSetup::load(&path, None, |_| None)
            .unwrap_err()
            .to_string();
        assert!(error.contains("grpc.endpoint"), "{error}");
    }
}
