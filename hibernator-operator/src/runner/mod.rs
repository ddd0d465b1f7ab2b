//! `hibernator runner`: one target's shutdown or wake-up, as run by a runner
//! Job (or by hand, or in-process by tests).
//!
//! [`run_with`] reads the plan, target and connector from the cluster
//! (`hibernator_kube::resolve`), builds the executor from the binary's executor set, runs
//! [`run_shutdown`]/[`run_wakeup`] with the target's timeout and the plan's
//! retry policy against the restore ConfigMap
//! ([`ConfigMapRestoreStore`]), streams logs and progress when endpoints are
//! configured ([`stream`]), and writes a [`TerminationMessage`]. It never
//! exits the process: the caller turns [`RunnerOutcome::exit_code`] into one.

pub(crate) mod stream;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use hibernator_core::executor::{
    CountingExecutor, EnforceReport, ExecutionContext, ExecutorError, RetryPolicy, TargetReport,
    category, run_enforce, run_shutdown, run_wakeup,
};
use hibernator_core::types::{Operation, PlanPhase, RunnerOperation};
use hibernator_executors::ExecutorSet;
use hibernator_streaming::client::StreamClient;
use hibernator_streaming::config::{ClientConfig, DEFAULT_TOKEN_PATH, Transport};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Resource;
use kube::api::ObjectMeta;

use hibernator_kube::ConfigMapRestoreStore;
use hibernator_kube::resolve::{self, ResolveError};
pub use hibernator_reconcile::termination::TerminationMessage;

use crate::logging::LogFormat;

/// Default path of the termination log (the container's
/// `terminationMessagePath`).
pub const DEFAULT_TERMINATION_LOG: &str = "/dev/termination-log";

/// Inputs of one runner execution. Every flag also reads its environment
/// variable, which is how the runner Job passes them.
#[derive(Clone, Debug, clap::Args)]
pub struct RunnerArgs {
    /// Name of the HibernatePlan.
    #[arg(long, env = "HIBERNATOR_PLAN")]
    pub plan: String,
    /// Namespace of the plan (its connectors default to it too).
    #[arg(long, env = "HIBERNATOR_PLAN_NAMESPACE")]
    pub namespace: String,
    /// Target name (`spec.targets[].name`).
    #[arg(long, env = "HIBERNATOR_TARGET")]
    pub target: String,
    /// Operation: `shutdown`, `wakeup` or `enforce` (drift re-enforcement
    /// of a hibernated target; `--cycle-id` names its shutdown cycle).
    #[arg(long, env = "HIBERNATOR_OPERATION")]
    pub operation: RunnerOperation,
    /// Execution id (streaming identity; labels of the Job).
    #[arg(long, env = "HIBERNATOR_EXECUTION_ID")]
    pub execution_id: Option<String>,
    /// Cycle id (restore entries are tagged with it).
    #[arg(long, env = "HIBERNATOR_CYCLE_ID")]
    pub cycle_id: String,
    /// gRPC streaming endpoint of the control plane (`host:port`).
    #[arg(long, env = "HIBERNATOR_GRPC_ENDPOINT")]
    pub grpc_endpoint: Option<String>,
    /// Webhook streaming endpoint (`http://host:8080/logs`).
    #[arg(long, env = "HIBERNATOR_WEBHOOK_ENDPOINT")]
    pub webhook_endpoint: Option<String>,
    /// Streaming transport: `auto`, `grpc` or `webhook`.
    #[arg(long, env = "HIBERNATOR_STREAM_TRANSPORT", default_value = "auto")]
    pub stream_transport: Transport,
    /// Projected ServiceAccount token presented to the streaming endpoint.
    #[arg(long, env = "HIBERNATOR_STREAM_TOKEN_PATH", default_value = DEFAULT_TOKEN_PATH)]
    pub stream_token_path: PathBuf,
    /// gRPC streaming over TLS (implied by an `https://` endpoint).
    #[arg(long, env = "HIBERNATOR_GRPC_TLS", default_value_t = false, action = clap::ArgAction::Set)]
    pub grpc_tls: bool,
    /// Trust root (PEM file) for gRPC TLS; wins over `--grpc-tls-ca-pem`.
    #[arg(long, env = "HIBERNATOR_GRPC_TLS_CA")]
    pub grpc_tls_ca: Option<PathBuf>,
    /// Trust root for gRPC TLS as inline PEM (what the controller sets on
    /// runner Jobs from `streaming.grpc.tls.caPath`).
    #[arg(long, env = "HIBERNATOR_GRPC_TLS_CA_PEM", hide_env_values = true)]
    pub grpc_tls_ca_pem: Option<String>,
    /// Timeout of one streaming request (`30s`, `1m`; default 30 s).
    #[arg(long, env = "HIBERNATOR_STREAM_TIMEOUT", value_parser = parse_stream_timeout)]
    pub stream_timeout: Option<std::time::Duration>,
    /// Retries of one failed streaming request after the first attempt
    /// (default 3).
    #[arg(long, env = "HIBERNATOR_STREAM_MAX_RETRIES")]
    pub stream_max_retries: Option<u32>,
    /// Log lines buffered for streaming before lines are dropped (default
    /// 10000).
    #[arg(long, env = "HIBERNATOR_STREAM_QUEUE_SIZE", value_parser = parse_queue_size)]
    pub stream_queue_size: Option<usize>,
    /// AWS endpoint override (emulators such as moto); the SDK's own
    /// `AWS_ENDPOINT_URL` handling applies as well.
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    pub aws_endpoint_url: Option<String>,
    /// Where the termination message is written.
    #[arg(long, env = "HIBERNATOR_TERMINATION_LOG", default_value = DEFAULT_TERMINATION_LOG)]
    pub termination_log: PathBuf,
    /// Log format on stdout: `text` (`<time> [LEVEL] message key=value`) or
    /// `json` (one object per line); default `text`. The controller sets it
    /// on runner Jobs (`--runner-log-format`).
    #[arg(long, env = "HIBERNATOR_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
}

impl RunnerArgs {
    /// Arguments for `operation` on `target` of `namespace/plan` in
    /// `cycle_id`, without streaming, writing the termination message to
    /// `termination_log`.
    pub fn new(
        namespace: &str,
        plan: &str,
        target: &str,
        operation: impl Into<RunnerOperation>,
        cycle_id: &str,
        termination_log: PathBuf,
    ) -> Self {
        Self {
            plan: plan.to_string(),
            namespace: namespace.to_string(),
            target: target.to_string(),
            operation: operation.into(),
            execution_id: None,
            cycle_id: cycle_id.to_string(),
            grpc_endpoint: None,
            webhook_endpoint: None,
            stream_transport: Transport::Auto,
            stream_token_path: PathBuf::from(DEFAULT_TOKEN_PATH),
            grpc_tls: false,
            grpc_tls_ca: None,
            grpc_tls_ca_pem: None,
            stream_timeout: None,
            stream_max_retries: None,
            stream_queue_size: None,
            aws_endpoint_url: None,
            termination_log,
            log_format: None,
        }
    }
}

/// Environment variables of the runner and the flags they stand for.
pub const ENV_FLAGS: &[(&str, &str)] = &[
    ("HIBERNATOR_PLAN", "--plan"),
    ("HIBERNATOR_PLAN_NAMESPACE", "--namespace"),
    ("HIBERNATOR_TARGET", "--target"),
    ("HIBERNATOR_OPERATION", "--operation"),
    ("HIBERNATOR_EXECUTION_ID", "--execution-id"),
    ("HIBERNATOR_CYCLE_ID", "--cycle-id"),
    ("HIBERNATOR_GRPC_ENDPOINT", "--grpc-endpoint"),
    ("HIBERNATOR_WEBHOOK_ENDPOINT", "--webhook-endpoint"),
    ("HIBERNATOR_STREAM_TRANSPORT", "--stream-transport"),
    ("HIBERNATOR_STREAM_TOKEN_PATH", "--stream-token-path"),
    ("HIBERNATOR_GRPC_TLS", "--grpc-tls"),
    ("HIBERNATOR_GRPC_TLS_CA", "--grpc-tls-ca"),
    ("HIBERNATOR_GRPC_TLS_CA_PEM", "--grpc-tls-ca-pem"),
    ("HIBERNATOR_STREAM_TIMEOUT", "--stream-timeout"),
    ("HIBERNATOR_STREAM_MAX_RETRIES", "--stream-max-retries"),
    ("HIBERNATOR_STREAM_QUEUE_SIZE", "--stream-queue-size"),
    ("AWS_ENDPOINT_URL", "--aws-endpoint-url"),
    ("HIBERNATOR_TERMINATION_LOG", "--termination-log"),
    ("HIBERNATOR_LOG_FORMAT", "--log-format"),
];

/// The runner's log format when neither `--log-format` nor
/// `HIBERNATOR_LOG_FORMAT` is given.
pub const DEFAULT_LOG_FORMAT: LogFormat = LogFormat::Text;

#[derive(clap::Parser)]
#[command(name = "runner")]
struct Standalone {
    #[command(flatten)]
    args: RunnerArgs,
}

impl RunnerArgs {
    /// Parses a runner container's `args` (a leading `runner` subcommand is
    /// skipped) and environment map as the process would, without reading
    /// the process environment: flags win over variables (see [`ENV_FLAGS`]).
    /// Used to run a Job's runner in-process (e.g. by the Job simulator).
    pub fn from_container(
        args: &[String],
        env: &std::collections::BTreeMap<String, String>,
    ) -> Result<Self, clap::Error> {
        use clap::Parser;
        let given: Vec<String> = args
            .iter()
            .skip_while(|a| a.as_str() == "runner")
            .cloned()
            .collect();
        let mut argv = vec!["runner".to_string()];
        for (var, flag) in ENV_FLAGS {
            let already = given
                .iter()
                .any(|a| a == flag || a.starts_with(&format!("{flag}=")));
            if let (Some(value), false) = (env.get(*var), already) {
                argv.push(format!("{flag}={value}"));
            }
        }
        argv.extend(given);
        Standalone::try_parse_from(argv).map(|s| s.args)
    }
}

/// Result of [`run`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunnerOutcome {
    /// 0 on success, 1 on failure.
    pub exit_code: i32,
    /// What was written to the termination log.
    pub termination: TerminationMessage,
}

/// Why an execution failed.
#[derive(Debug, thiserror::Error)]
enum RunnerError {
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    #[error("{operation} of target {target:?} failed: {source}")]
    Executor {
        operation: RunnerOperation,
        target: String,
        #[source]
        source: ExecutorError,
    },
}

/// [`run_with`] with the built-in executors.
pub async fn run(args: RunnerArgs, client: kube::Client) -> RunnerOutcome {
    run_with(args, client, &ExecutorSet::new()).await
}

/// Runs one execution, building the target's executor from `executors`,
/// and writes its termination message; never exits.
pub async fn run_with(
    args: RunnerArgs,
    client: kube::Client,
    executors: &ExecutorSet,
) -> RunnerOutcome {
    // Enforce runs do not stream: they belong to no cycle, and their logs
    // stay with their Job.
    let (stream_client, phase_of) = match args.operation {
        RunnerOperation::Cycle(op) => (connect_stream(&args).await, op),
        RunnerOperation::Enforce => (None, Operation::Shutdown),
    };
    let sinks = stream::Sinks::new(stream_client, phase_of);
    let attempts = Arc::new(AtomicU32::new(0));
    tracing::info!(
        plan = %args.plan, namespace = %args.namespace, target = %args.target,
        operation = %args.operation, cycle = %args.cycle_id, streaming = sinks.is_streaming(),
        "runner starting"
    );
    let result = execute(&args, client, executors, &sinks, attempts.clone()).await;
    let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    let termination = match &result {
        Ok(Report::Cycle(report)) => TerminationMessage {
            success: true,
            message: summary(report),
            resources: count(report.resources.len()),
            attempts: report.attempts,
            rehibernated: None,
        },
        Ok(Report::Enforce(report)) => TerminationMessage {
            success: true,
            message: enforce_summary(report),
            resources: count(report.checked.len()),
            attempts: report.attempts,
            rehibernated: Some(count(report.rehibernated.len())),
        },
        Err(error) => TerminationMessage {
            success: false,
            message: error.to_string(),
            resources: 0,
            attempts: attempts.load(Ordering::Relaxed),
            rehibernated: None,
        },
    };
    match &result {
        // Not `message = …`: that is the event's own message field.
        Ok(_) => tracing::info!(summary = %termination.message, "runner succeeded"),
        Err(_) => tracing::error!(error = %termination.message, "runner failed"),
    }
    sinks
        .finish(
            termination.success,
            (!termination.success).then(|| termination.message.clone()),
        )
        .await;
    if let Err(e) = write_termination_log(&args.termination_log, &termination).await {
        tracing::warn!(
            path = %args.termination_log.display(), error = %e,
            "cannot write the termination message"
        );
    }
    RunnerOutcome {
        exit_code: if termination.success { 0 } else { 1 },
        termination,
    }
}

fn parse_stream_timeout(value: &str) -> Result<std::time::Duration, String> {
    hibernator_core::duration::parse_duration(value)
}

fn parse_queue_size(value: &str) -> Result<usize, String> {
    match value.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_string()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// The streaming client configuration of `args` (`None` when no endpoint
/// is set, or without an execution id).
fn stream_config(args: &RunnerArgs) -> Option<ClientConfig> {
    if args.grpc_endpoint.is_none() && args.webhook_endpoint.is_none() {
        return None;
    }
    let Some(execution_id) = args.execution_id.clone() else {
        tracing::warn!(
            "streaming endpoints are set but HIBERNATOR_EXECUTION_ID is not: logging to stdout only"
        );
        return None;
    };
    let mut config = ClientConfig::new(execution_id);
    config.transport = args.stream_transport;
    config.grpc_endpoint = args.grpc_endpoint.clone();
    config.webhook_endpoint = args.webhook_endpoint.clone();
    config.token_path = args.stream_token_path.clone();
    config.grpc_tls = args.grpc_tls;
    config.grpc_ca_path = args.grpc_tls_ca.clone();
    config.grpc_ca_pem = args
        .grpc_tls_ca_pem
        .clone()
        .filter(|pem| !pem.trim().is_empty());
    if let Some(timeout) = args.stream_timeout {
        config.timeout = timeout;
    }
    if let Some(retries) = args.stream_max_retries {
        config.max_retries = retries;
    }
    if let Some(size) = args.stream_queue_size {
        config.queue_size = size;
    }
    Some(config)
}

async fn connect_stream(args: &RunnerArgs) -> Option<StreamClient> {
    let config = stream_config(args)?;
    match StreamClient::connect(config).await {
        Ok(client) => Some(client),
        Err(e) => {
            tracing::warn!(error = %e, "cannot connect to the streaming endpoint: logging to stdout only");
            None
        }
    }
}

async fn execute(
    args: &RunnerArgs,
    client: kube::Client,
    executors: &ExecutorSet,
    sinks: &stream::Sinks,
    attempts: Arc<AtomicU32>,
) -> Result<Report, RunnerError> {
    let resolved = resolve::resolve(
        &client,
        executors,
        &args.namespace,
        &args.plan,
        &args.target,
        args.aws_endpoint_url.as_deref(),
    )
    .await?;
    let mut store = ConfigMapRestoreStore::new(client, &args.namespace, &args.plan);
    if let Some(owner) = owner_of(&resolved.plan.metadata) {
        store = store.with_owner(owner);
    }
    let policy = RetryPolicy::with_max_retries(resolved.plan.spec.behavior.retries);
    // An enforcement re-hibernates: its context carries the shutdown
    // direction (and the shutdown cycle's id).
    let context_op = args.operation.cycle().unwrap_or(Operation::Shutdown);
    let ctx = ExecutionContext::builder(&args.plan, &args.target, &args.cycle_id, context_op)
        .namespace(&args.namespace)
        .timeout(resolved.timeout)
        .log_sink(sinks.log_sink())
        .progress_sink(sinks.progress_sink())
        .build();
    let executor = CountingExecutor::with_counter(resolved.executor.clone(), attempts);
    let params = resolved
        .target
        .parameters
        .clone()
        .unwrap_or(serde_json::Value::Null);
    let result = match args.operation {
        RunnerOperation::Cycle(Operation::Shutdown) => {
            run_shutdown(&executor, &ctx, &params, &store, &policy)
                .await
                .map(Report::Cycle)
        }
        RunnerOperation::Cycle(Operation::Wakeup) => {
            run_wakeup(&executor, &ctx, &params, &store, &policy)
                .await
                .map(Report::Cycle)
        }
        RunnerOperation::Enforce => match still_hibernated(&resolved.plan, &args.cycle_id) {
            Err(e) => Err(e),
            Ok(()) => run_enforce(&executor, &ctx, &params, &store, &policy)
                .await
                .map(Report::Enforce),
        },
    };
    result.map_err(|source| RunnerError::Executor {
        operation: args.operation,
        target: args.target.clone(),
        source,
    })
}

/// The controller owner reference to the plan (for the restore ConfigMap),
/// so the plan's controller is triggered by its changes and it goes with the plan.
fn owner_of(meta: &ObjectMeta) -> Option<OwnerReference> {
    Some(OwnerReference {
        api_version: hibernator_core::types::HibernatePlan::api_version(&()).into_owned(),
        kind: hibernator_core::types::HibernatePlan::kind(&()).into_owned(),
        name: meta.name.clone()?,
        uid: meta.uid.clone()?,
        controller: Some(true),
        block_owner_deletion: Some(false),
    })
}

/// What one runner execution did.
enum Report {
    /// A cycle's shutdown or wake-up.
    Cycle(TargetReport),
    /// An enforcement check.
    Enforce(EnforceReport),
}

/// An enforcement acts only while the plan is still hibernated by the
/// shutdown cycle it was started for: a wake-up that started since must not
/// be undone.
fn still_hibernated(
    plan: &hibernator_core::types::HibernatePlan,
    cycle_id: &str,
) -> Result<(), ExecutorError> {
    let status = plan.status.as_ref();
    let phase = status.map(|s| s.phase).unwrap_or_default();
    let cycle = status.and_then(|s| s.current_cycle_id.as_deref());
    if phase == PlanPhase::Hibernated && cycle == Some(cycle_id) {
        return Ok(());
    }
    Err(ExecutorError::permanent(
        category::CONFLICT,
        format!(
            "the plan is no longer hibernated by cycle {cycle_id} (phase {phase:?}, cycle {}); enforcement skipped, nothing was touched",
            cycle.unwrap_or("none")
        ),
    ))
}

fn enforce_summary(report: &EnforceReport) -> String {
    format!(
        "enforcement of target {} done: {} resources checked, {} found awake and put back to sleep",
        report.target,
        report.checked.len(),
        report.rehibernated.len()
    )
}

fn summary(report: &TargetReport) -> String {
    match report.operation {
        Operation::Shutdown => format!(
            "shutdown of target {} done: {} resources, {} restore entries recorded",
            report.target,
            report.resources.len(),
            report.recorded.len()
        ),
        Operation::Wakeup => format!(
            "wake-up of target {} done: {} resources restored",
            report.target,
            report.resources.len()
        ),
    }
}

async fn write_termination_log(
    path: &std::path::Path,
    message: &TerminationMessage,
) -> std::io::Result<()> {
    tokio::fs::write(path, message.to_json()).await
}

/// `hibernator runner`: logs to stdout in `--log-format` (`RUST_LOG`,
/// default `info`), builds the Kubernetes client (in-cluster or
/// `KUBECONFIG`), runs [`run_with`] with `executors` and returns its exit
/// code.
pub fn command(
    args: RunnerArgs,
    executors: &ExecutorSet,
) -> anyhow::Result<std::process::ExitCode> {
    use anyhow::Context;
    let runtime = crate::cli::service::start(args.log_format.unwrap_or(DEFAULT_LOG_FORMAT))?;
    runtime.block_on(async {
        let client = kube::Client::try_default()
            .await
            .context("cannot configure the Kubernetes client (in-cluster or KUBECONFIG)")?;
        let outcome = run_with(args, client, executors).await;
        Ok(std::process::ExitCode::from(
            u8::try_from(outcome.exit_code).unwrap_or(1),
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> std::collections::BTreeMap<String, String> {
        let mut env: std::collections::BTreeMap<String, String> = [
            ("HIBERNATOR_PLAN", "dev"),
            ("HIBERNATOR_PLAN_NAMESPACE", "team-a"),
            ("HIBERNATOR_TARGET", "db"),
            ("HIBERNATOR_OPERATION", "shutdown"),
            ("HIBERNATOR_CYCLE_ID", "c1"),
            ("HIBERNATOR_EXECUTION_ID", "exec-1"),
            ("HIBERNATOR_WEBHOOK_ENDPOINT", "http://controller:8082/logs"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        env.extend(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        env
    }

    #[test]
    fn the_streaming_client_uses_the_jobs_timeout_retries_and_queue_size() {
        let args = RunnerArgs::from_container(
            &[],
            &env(&[
                ("HIBERNATOR_STREAM_TIMEOUT", "45s"),
                ("HIBERNATOR_STREAM_MAX_RETRIES", "5"),
                ("HIBERNATOR_STREAM_QUEUE_SIZE", "2500"),
            ]),
        )
        .unwrap();
        let config = stream_config(&args).unwrap();
        assert_eq!(config.timeout, std::time::Duration::from_secs(45));
        assert_eq!(config.max_retries, 5);
        assert_eq!(config.queue_size, 2500);

        let defaults = stream_config(&RunnerArgs::from_container(&[], &env(&[])).unwrap()).unwrap();
        let reference = ClientConfig::new("exec-1");
        assert_eq!(
            (defaults.timeout, defaults.max_retries, defaults.queue_size),
            (
                reference.timeout,
                reference.max_retries,
                reference.queue_size
            )
        );
    }

    #[test]
    fn the_log_format_comes_from_the_flag_or_the_environment() {
        let parse = |args: &[&str], pairs: &[(&str, &str)]| {
            let args: Vec<String> = args.iter().map(|a| (*a).to_string()).collect();
            RunnerArgs::from_container(&args, &env(pairs)).map(|a| a.log_format)
        };
        assert_eq!(parse(&[], &[]).unwrap(), None);
        assert_eq!(
            parse(&[], &[("HIBERNATOR_LOG_FORMAT", "json")]).unwrap(),
            Some(LogFormat::Json)
        );
        assert_eq!(
            parse(
                &["runner", "--log-format", "text"],
                &[("HIBERNATOR_LOG_FORMAT", "json")]
            )
            .unwrap(),
            Some(LogFormat::Text),
            "the flag wins"
        );
        let error = parse(&[], &[("HIBERNATOR_LOG_FORMAT", "pretty")])
            .unwrap_err()
            .to_string();
        assert!(error.contains("--log-format"), "{error}");
        assert_eq!(DEFAULT_LOG_FORMAT, LogFormat::Text);
    }

    #[test]
    fn the_operation_is_shutdown_wakeup_or_enforce() {
        let parse = |op: &str| {
            RunnerArgs::from_container(&[], &env(&[("HIBERNATOR_OPERATION", op)]))
                .map(|a| a.operation)
        };
        assert_eq!(parse("enforce").unwrap(), RunnerOperation::Enforce);
        assert_eq!(parse("wakeup").unwrap(), Operation::Wakeup.into());
        assert_eq!(parse("shutdown").unwrap(), Operation::Shutdown.into());
        assert_eq!(RunnerOperation::Enforce.cycle(), None);
        let error = parse("verify").unwrap_err().to_string();
        assert!(
            error.contains("--operation") && error.contains("enforce"),
            "{error}"
        );
    }

    #[test]
    fn an_enforcement_needs_the_plan_hibernated_by_its_cycle() {
        use hibernator_core::types::{HibernatePlan, HibernatePlanStatus};
        let mut plan = HibernatePlan::new(
            "p",
            serde_json::from_value(serde_json::json!({
                "schedule": {"timezone": "UTC"}, "targets": []
            }))
            .unwrap(),
        );
        assert!(still_hibernated(&plan, "c1").is_err(), "no status");
        plan.status = Some(HibernatePlanStatus {
            phase: PlanPhase::Hibernated,
            current_cycle_id: Some("c1".into()),
            ..HibernatePlanStatus::default()
        });
        assert!(still_hibernated(&plan, "c1").is_ok());
        let error = still_hibernated(&plan, "c0").unwrap_err();
        assert!(error.message.contains("enforcement skipped"), "{error}");
        if let Some(status) = plan.status.as_mut() {
            status.phase = PlanPhase::WakingUp;
        }
        assert!(still_hibernated(&plan, "c1").is_err(), "a wake-up started");
    }

    #[test]
    fn bad_stream_settings_are_refused_naming_the_flag() {
        for (var, value, flag) in [
            ("HIBERNATOR_STREAM_TIMEOUT", "soon", "--stream-timeout"),
            ("HIBERNATOR_STREAM_QUEUE_SIZE", "0", "--stream-queue-size"),
            (
                "HIBERNATOR_STREAM_MAX_RETRIES",
                "-1",
                "--stream-max-retries",
            ),
        ] {
            let error = RunnerArgs::from_container(&[], &env(&[(var, value)]))
                .unwrap_err()
                .to_string();
            assert!(error.contains(flag), "{var}={value}: {error}");
        }
    }
}
