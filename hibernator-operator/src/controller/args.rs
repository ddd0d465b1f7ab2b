//! Flags and environment of `hibernator controller`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::streaming::{StreamingSetup, StreamingSetupError};

use super::client::{ControllerClients, KubeRateLimit};
use super::leader::LeaseConfig;
use super::shard::Shard;
use super::{ControllerConfig, run};
use crate::logging::LogFormat;
use hibernator_kube::RunnerSettings;

/// `hibernator controller` flags (each also readable from its environment variable).
#[derive(Debug, Clone, clap::Args)]
pub struct ControllerArgs {
    /// Container image of runner Jobs (the `hibernator` image).
    #[arg(
        long,
        env = "HIBERNATOR_RUNNER_IMAGE",
        default_value = "ghcr.io/hibernator-dev/hibernator:latest"
    )]
    pub runner_image: String,
    /// ServiceAccount of runner Jobs.
    #[arg(
        long,
        env = "HIBERNATOR_RUNNER_SERVICE_ACCOUNT",
        default_value = "hibernator-runner"
    )]
    pub runner_service_account: String,
    /// gRPC streaming endpoint handed to runners (`HIBERNATOR_GRPC_ENDPOINT` in the Job).
    #[arg(long, env = "HIBERNATOR_CONTROLLER_GRPC_ENDPOINT")]
    pub grpc_endpoint: Option<String>,
    /// Webhook streaming endpoint handed to runners (`HIBERNATOR_WEBHOOK_ENDPOINT` in the Job).
    #[arg(long, env = "HIBERNATOR_CONTROLLER_WEBHOOK_ENDPOINT")]
    pub webhook_endpoint: Option<String>,
    /// Streaming transport of runners: `auto`, `grpc`, `webhook` or `none`
    /// (`none` with `--streaming-config`: the file's `transport`).
    #[arg(
        long,
        env = "HIBERNATOR_CONTROLLER_STREAM_TRANSPORT",
        default_value = "none",
        value_parser = ["auto", "grpc", "webhook", "none"]
    )]
    pub stream_transport: String,
    /// Runner streaming server configuration (YAML in the shape of the
    /// chart's `controller.streaming` values). Without it the controller runs
    /// no streaming server and runners log to stdout only.
    #[arg(long, env = "HIBERNATOR_STREAMING_CONFIG")]
    pub streaming_config: Option<PathBuf>,
    /// Execution-log persistence and forwarders (YAML, docs/streaming-sinks.md);
    /// needs `--streaming-config`.
    #[arg(long, env = "HIBERNATOR_SINKS_CONFIG", requires = "streaming_config")]
    pub sinks_config: Option<PathBuf>,
    /// Parse and validate the flags, environment and configuration files,
    /// print the effective configuration as JSON, and exit.
    #[arg(long)]
    pub dry_run: bool,
    /// Only watch this namespace (default: all namespaces).
    #[arg(long, env = "HIBERNATOR_WATCH_NAMESPACE")]
    pub namespace: Option<String>,
    /// Only reconcile HibernatePlans whose labels match this label selector
    /// (API syntax, e.g. `team=payments` or `tier in (dev,qa)`): several
    /// controller releases, each with its own `--lease-name`, can split one
    /// cluster's plans. Default: every plan.
    #[arg(long, env = "HIBERNATOR_PLAN_SELECTOR", value_parser = non_empty)]
    pub plan_selector: Option<String>,
    /// Only reconcile HibernatePlans in namespaces whose labels match this
    /// label selector (needs `list`/`watch` on namespaces). Default: every
    /// namespace (or `--namespace`).
    #[arg(long, env = "HIBERNATOR_NAMESPACE_SELECTOR", value_parser = non_empty)]
    pub namespace_selector: Option<String>,
    /// Probe address (`/healthz`, `/readyz`).
    #[arg(long, env = "HIBERNATOR_HEALTH_ADDR", default_value = "0.0.0.0:8081")]
    pub health_addr: SocketAddr,
    /// Metrics address (`/metrics`).
    #[arg(long, env = "HIBERNATOR_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,
    /// Elect a leader through a Lease before reconciling.
    #[arg(long, env = "HIBERNATOR_LEADER_ELECT", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_elect: bool,
    /// Namespace of the Lease (default: the pod's namespace from `POD_NAMESPACE`, else `hibernator-system`).
    #[arg(long, env = "POD_NAMESPACE", default_value = "hibernator-system")]
    pub lease_namespace: String,
    /// Name of the Lease.
    #[arg(
        long,
        env = "HIBERNATOR_LEASE_NAME",
        default_value = "hibernator-controller"
    )]
    pub lease_name: String,
    /// This replica's identity (default: the pod name from `POD_NAME`).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// Log format of the controller on stdout: `json` (one object per line,
    /// the default) or `text` (`<time> [LEVEL] message key=value`).
    #[arg(long, env = "HIBERNATOR_LOG_FORMAT", value_enum, default_value_t = DEFAULT_LOG_FORMAT)]
    pub log_format: LogFormat,
    /// Log format of runner Jobs (`HIBERNATOR_LOG_FORMAT` in the Job);
    /// unset: the Job gets none and the runner logs `text`.
    #[arg(long, env = "HIBERNATOR_RUNNER_LOG_FORMAT", value_enum)]
    pub runner_log_format: Option<LogFormat>,
    /// Sustained Kubernetes API requests per second of the controller
    /// (reconciler, watches, streaming status); `0`: unlimited. Events and
    /// leader election have clients of their own.
    #[arg(long, env = "HIBERNATOR_KUBE_QPS", default_value_t = super::client::DEFAULT_QPS, value_parser = parse_qps)]
    pub kube_qps: f64,
    /// Kubernetes API requests that may go out at once above `--kube-qps`
    /// (the token bucket's size).
    #[arg(long, env = "HIBERNATOR_KUBE_BURST", default_value_t = super::client::DEFAULT_BURST, value_parser = clap::value_parser!(u32).range(1..))]
    pub kube_burst: u32,
    /// Sustained Event writes per second (Events are queued by reconciles
    /// and published in the background, on a budget of their own); `0`:
    /// unlimited.
    #[arg(long, env = "HIBERNATOR_KUBE_EVENT_QPS", default_value_t = super::client::DEFAULT_EVENT_QPS, value_parser = parse_qps)]
    pub kube_event_qps: f64,
    /// Event writes that may go out at once above `--kube-event-qps`.
    #[arg(long, env = "HIBERNATOR_KUBE_EVENT_BURST", default_value_t = super::client::DEFAULT_EVENT_BURST, value_parser = clap::value_parser!(u32).range(1..))]
    pub kube_event_burst: u32,
    /// Plans reconciled at once; `0`: no limit. Bounds the memory of a burst
    /// (start-up, a boundary many plans share) and lets plans finish in turn.
    #[arg(long, env = "HIBERNATOR_MAX_CONCURRENT_RECONCILES", default_value_t = super::DEFAULT_MAX_CONCURRENT_RECONCILES)]
    pub max_concurrent_reconciles: u16,
}

/// A selector flag: not blank (an empty selector would select everything,
/// which is what leaving the flag out says).
fn non_empty(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty selector: leave the flag out to select every plan".to_string());
    }
    Ok(text.to_string())
}

/// `--kube-qps`: a finite number ≥ 0.
fn parse_qps(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(qps) if qps.is_finite() && qps >= 0.0 => Ok(qps),
        _ => Err(format!(
            "{text:?} is not a request rate: a number >= 0 (0 disables the limit)"
        )),
    }
}

/// The controller's log format when neither `--log-format` nor
/// `HIBERNATOR_LOG_FORMAT` is given.
pub const DEFAULT_LOG_FORMAT: LogFormat = LogFormat::Json;

impl ControllerArgs {
    /// The controller configuration these flags describe, with the
    /// streaming configuration files read and validated.
    pub fn config(&self) -> Result<ControllerConfig, StreamingSetupError> {
        let mut config = self.base_config();
        if let Some(path) = &self.streaming_config {
            let setup = StreamingSetup::load(path, self.sinks_config.as_deref(), |name| {
                std::env::var(name).ok()
            })?;
            setup.apply_to(&mut config.runner)?;
            config.streaming = Some(setup);
        }
        Ok(config)
    }

    /// The effective configuration as JSON (what `--dry-run` prints; no
    /// secrets: sink credentials print redacted), with the controller's own
    /// log format.
    pub fn describe(&self, config: &ControllerConfig) -> serde_json::Value {
        serde_json::json!({
            "logFormat": self.log_format.as_str(),
            "runner": {
                "image": config.runner.image,
                "serviceAccount": config.runner.service_account,
                "grpcEndpoint": config.runner.grpc_endpoint,
                "webhookEndpoint": config.runner.webhook_endpoint,
                "streamTransport": config.runner.stream_transport,
                "extraEnv": config.runner.extra_env.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
                "grpcTlsCa": config.runner.grpc_tls_ca,
                "logFormat": config.runner.log_format.as_deref(),
            },
            "namespace": config.namespace,
            "shard": {
                "planSelector": config.shard.plan_selector,
                "namespaceSelector": config.shard.namespace_selector,
            },
            "healthAddr": config.health_addr.map(|a| a.to_string()),
            "metricsAddr": config.metrics_addr.map(|a| a.to_string()),
            "lease": config.lease.as_ref().map(|l| format!("{}/{}", l.namespace, l.name)),
            "instance": config.instance,
            "kubeApi": {
                "qps": config.kube_api.qps,
                "burst": config.kube_api.burst,
                "eventQps": config.kube_events.qps,
                "eventBurst": config.kube_events.burst,
            },
            "maxConcurrentReconciles": config.max_concurrent_reconciles,
            "streaming": config.streaming.as_ref().map(|s| serde_json::json!({
                "server": serde_json::to_value(&s.server).unwrap_or_default(),
                "sinks": serde_json::to_value(&s.sinks).unwrap_or_default(),
                "warnings": s.warnings,
            })),
        })
    }

    fn base_config(&self) -> ControllerConfig {
        let identity = self
            .identity
            .clone()
            .unwrap_or_else(|| format!("hibernator-{}", std::process::id()));
        ControllerConfig {
            runner: RunnerSettings {
                image: self.runner_image.clone(),
                service_account: self.runner_service_account.clone(),
                grpc_endpoint: self.grpc_endpoint.clone(),
                webhook_endpoint: self.webhook_endpoint.clone(),
                stream_transport: self.stream_transport.clone(),
                extra_env: Vec::new(),
                grpc_tls_ca: None,
                log_format: self.runner_log_format.map(|f| f.as_str().to_string()),
            },
            namespace: self.namespace.clone(),
            shard: Shard {
                plan_selector: self.plan_selector.clone(),
                namespace_selector: self.namespace_selector.clone(),
            },
            health_addr: Some(self.health_addr),
            metrics_addr: Some(self.metrics_addr),
            lease: self.leader_elect.then(|| LeaseConfig {
                namespace: self.lease_namespace.clone(),
                name: self.lease_name.clone(),
                identity: identity.clone(),
                lease_duration: Duration::from_secs(15),
                renew_every: Duration::from_secs(5),
            }),
            instance: Some(identity),
            streaming: None,
            kube_api: KubeRateLimit {
                qps: self.kube_qps,
                burst: self.kube_burst,
            },
            kube_events: KubeRateLimit {
                qps: self.kube_event_qps,
                burst: self.kube_event_burst,
            },
            max_concurrent_reconciles: self.max_concurrent_reconciles,
            ..ControllerConfig::default()
        }
    }
}

/// Runs `hibernator controller` until SIGTERM/SIGINT, validating plans
/// against the executor types of `executors`.
pub fn command(
    args: ControllerArgs,
    executors: &hibernator_executors::ExecutorSet,
) -> anyhow::Result<std::process::ExitCode> {
    use anyhow::Context;
    let mut config = args.config()?;
    config.catalog = executors.catalog();
    if args.dry_run {
        println!("{}", serde_json::to_string_pretty(&args.describe(&config))?);
        return Ok(std::process::ExitCode::SUCCESS);
    }
    let runtime = crate::cli::service::start(args.log_format)?;
    runtime.block_on(async {
        let kube_config = kube::Config::infer()
            .await
            .context("cannot configure a Kubernetes client (in-cluster config or KUBECONFIG)")?;
        let clients = ControllerClients::new(kube_config, config.kube_api, config.kube_events)
            .context("cannot build a Kubernetes client")?;
        config
            .shard
            .check(&clients.api, config.namespace.as_deref())
            .await?;
        run(clients, config, shutdown_signal())
            .await
            .context("controller stopped")?;
        Ok(std::process::ExitCode::SUCCESS)
    })
}

/// Resolves on SIGTERM or Ctrl-C (SIGINT).
pub(crate) async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    tracing::info!("shutdown signal received: finishing in-flight work");
}
