//! Runner Jobs: deterministic names and labels, the Job builder, and what a
//! Job (and its pod's termination message) says about an attempt.

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use hibernator_core::duration::parse_duration;
use hibernator_core::types::{DEFAULT_TARGET_TIMEOUT, HibernatePlan, Operation, Target};
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, EnvVar, PodSecurityContext, PodSpec, PodTemplateSpec,
    ProjectedVolumeSource, SeccompProfile, SecurityContext, ServiceAccountTokenProjection, Volume,
    VolumeMount, VolumeProjection,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Resource;

use crate::logging::{ENV_LOG_FORMAT, LogFormat};
use crate::runner::TerminationMessage;

/// Label: the plan a Job belongs to (label-safe form of the plan name).
pub const LABEL_PLAN: &str = "hibernator.dev/plan";
/// Label: the target the Job runs.
pub const LABEL_TARGET: &str = "hibernator.dev/target";
/// Label: `shutdown` or `wakeup`.
pub const LABEL_OPERATION: &str = "hibernator.dev/operation";
/// Label: the cycle id.
pub const LABEL_CYCLE_ID: &str = "hibernator.dev/cycle-id";
/// Label: the execution id (equal to the Job name).
pub const LABEL_EXECUTION_ID: &str = "hibernator.dev/execution-id";
/// Label: the attempt number (1-based).
pub const LABEL_ATTEMPT: &str = "hibernator.dev/attempt";
/// Annotation: the full plan name.
pub const ANNOTATION_PLAN: &str = "hibernator/plan";
/// Annotation: the full target name.
pub const ANNOTATION_TARGET: &str = "hibernator/target";
/// Audience of the projected ServiceAccount token the runner streams with.
pub const STREAM_TOKEN_AUDIENCE: &str = "hibernator-control-plane";
/// Lifetime of the projected stream token.
pub const STREAM_TOKEN_EXPIRATION_SECONDS: i64 = 600;
/// Directory the stream token is mounted in.
pub const STREAM_TOKEN_DIR: &str = "/var/run/secrets/stream";
/// Full path of the stream token.
pub const STREAM_TOKEN_PATH: &str = "/var/run/secrets/stream/token";
/// Longest Kubernetes label value / DNS label.
pub const MAX_LABEL_LEN: usize = 63;

/// Settings of runner Jobs that come from the controller's flags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunnerSettings {
    /// Container image of the runner (the `hibernator` binary).
    pub image: String,
    /// ServiceAccount the runner pods use (`--runner-service-account`).
    pub service_account: String,
    /// gRPC streaming endpoint handed to runners, if any.
    pub grpc_endpoint: Option<String>,
    /// Webhook streaming endpoint handed to runners, if any.
    pub webhook_endpoint: Option<String>,
    /// Streaming transport: `auto`, `grpc`, `webhook` or `none`.
    pub stream_transport: String,
    /// More runner environment from the streaming server configuration
    /// (TLS, timeout, retries); the explicit settings above win.
    pub extra_env: Vec<(String, String)>,
    /// The CA bundle (PEM file, `streaming.grpc.tls.caPath`) runners trust
    /// for gRPC TLS: read whenever a Job is built, so a rotated CA reaches
    /// new Jobs, and passed inline as `HIBERNATOR_GRPC_TLS_CA_PEM` (a Secret
    /// cannot be mounted into the plan's namespace).
    pub grpc_tls_ca: Option<PathBuf>,
    /// Log format of the runners (`HIBERNATOR_LOG_FORMAT`, from
    /// `--runner-log-format`; `None`: not set, the runner's default applies).
    pub log_format: Option<LogFormat>,
}

impl Default for RunnerSettings {
    fn default() -> Self {
        Self {
            image: "ghcr.io/hibernator-dev/hibernator:latest".to_string(),
            service_account: "hibernator-runner".to_string(),
            grpc_endpoint: None,
            webhook_endpoint: None,
            stream_transport: "none".to_string(),
            extra_env: Vec::new(),
            grpc_tls_ca: None,
            log_format: None,
        }
    }
}

/// 32-bit FNV-1a of `input`, rendered as 8 hex digits: a stable short hash
/// for name suffixes (stable across releases, unlike std's hashers).
pub fn short_hash(input: &str) -> String {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in input.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    format!("{hash:08x}")
}

/// `input` as a valid DNS label / label value of at most `max` characters:
/// lowercase, runs of other characters replaced by `-`, no leading or
/// trailing `-`. Longer results are cut and get `-<hash of input>` so
/// distinct inputs stay distinct.
pub fn dns_label(input: &str, max: usize) -> String {
    let mut out = String::with_capacity(input.len());
    for c in input.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let trimmed = out.trim_matches('-');
    if trimmed == input && trimmed.len() <= max && !trimmed.is_empty() {
        return trimmed.to_string();
    }
    let hash = short_hash(input);
    let keep = max.saturating_sub(hash.len() + 1);
    let prefix = trimmed.get(..keep.min(trimmed.len())).unwrap_or("");
    let prefix = prefix.trim_end_matches('-');
    if prefix.is_empty() {
        hash
    } else {
        format!("{prefix}-{hash}")
    }
}

/// The label-safe form of a plan name (its `hibernator.dev/plan` label value).
pub fn plan_label(plan: &str) -> String {
    dns_label(plan, MAX_LABEL_LEN)
}

/// Short operation code used in Job names.
fn op_code(operation: Operation) -> &'static str {
    match operation {
        Operation::Shutdown => "sd",
        Operation::Wakeup => "wu",
    }
}

/// The Job name (and execution id) of one attempt: deterministic from
/// (plan, target, operation, cycle id, attempt), a DNS label of at most 63
/// characters (hash suffix when cut).
pub fn job_name(
    plan: &str,
    target: &str,
    operation: Operation,
    cycle_id: &str,
    attempt: u32,
) -> String {
    let full = format!(
        "{plan}-{target}-{}-{cycle_id}-a{attempt}",
        op_code(operation)
    );
    dns_label(&full, MAX_LABEL_LEN)
}

/// One runner Job to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobRequest {
    /// Target name.
    pub target: String,
    /// Operation.
    pub operation: Operation,
    /// Cycle id.
    pub cycle_id: String,
    /// Attempt number (1-based).
    pub attempt: u32,
}

impl JobRequest {
    /// The Job name (= execution id) of this request for `plan`.
    pub fn name(&self, plan: &str) -> String {
        job_name(
            plan,
            &self.target,
            self.operation,
            &self.cycle_id,
            self.attempt,
        )
    }
}

/// Errors building a runner Job.
#[derive(Debug, thiserror::Error)]
pub enum JobBuildError {
    /// The plan has no name, namespace or uid.
    #[error("HibernatePlan is missing metadata.{field}")]
    MissingMetadata {
        /// The missing field.
        field: &'static str,
    },
    /// The target named in the request is not in the plan.
    #[error("target {target:?} is not in spec.targets of plan {plan:?}")]
    UnknownTarget {
        /// Plan name.
        plan: String,
        /// Target name.
        target: String,
    },
    /// The CA bundle runners must trust for gRPC TLS cannot be used.
    #[error(transparent)]
    RunnerCa(#[from] hibernator_streaming::config::ConfigError),
}

/// The owner reference that makes the plan own (and garbage-collect) an object.
pub fn plan_owner_reference(plan: &HibernatePlan) -> Option<OwnerReference> {
    plan.controller_owner_ref(&())
}

/// The target's operation timeout (`target.timeout`, default 1h) in seconds.
/// An unparsable timeout (rejected by validation) falls back to the default.
pub fn timeout_seconds(target: &Target) -> i64 {
    let timeout = target
        .timeout
        .as_deref()
        .and_then(|t| parse_duration(t).ok())
        .unwrap_or(DEFAULT_TARGET_TIMEOUT);
    i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX).max(1)
}

fn env(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value: Some(value.into()),
        ..EnvVar::default()
    }
}

/// Builds the runner Job of one attempt.
pub fn build_job(
    plan: &HibernatePlan,
    request: &JobRequest,
    settings: &RunnerSettings,
) -> Result<Job, JobBuildError> {
    let plan_name = plan
        .metadata
        .name
        .as_deref()
        .ok_or(JobBuildError::MissingMetadata { field: "name" })?;
    let namespace = plan
        .metadata
        .namespace
        .as_deref()
        .ok_or(JobBuildError::MissingMetadata { field: "namespace" })?;
    let owner =
        plan_owner_reference(plan).ok_or(JobBuildError::MissingMetadata { field: "uid" })?;
    let target = plan
        .spec
        .targets
        .iter()
        .find(|t| t.name == request.target)
        .ok_or_else(|| JobBuildError::UnknownTarget {
            plan: plan_name.to_string(),
            target: request.target.clone(),
        })?;
    let name = request.name(plan_name);
    let labels: BTreeMap<String, String> = [
        (LABEL_PLAN, plan_label(plan_name)),
        (LABEL_TARGET, dns_label(&request.target, MAX_LABEL_LEN)),
        (LABEL_OPERATION, request.operation.as_str().to_string()),
        (LABEL_CYCLE_ID, dns_label(&request.cycle_id, MAX_LABEL_LEN)),
        (LABEL_EXECUTION_ID, name.clone()),
        (LABEL_ATTEMPT, request.attempt.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let annotations: BTreeMap<String, String> = [
        (ANNOTATION_PLAN.to_string(), plan_name.to_string()),
        (ANNOTATION_TARGET.to_string(), request.target.clone()),
    ]
    .into_iter()
    .collect();
    let mut env_vars = vec![
        env("HIBERNATOR_PLAN", plan_name),
        env("HIBERNATOR_PLAN_NAMESPACE", namespace),
        env("HIBERNATOR_TARGET", request.target.clone()),
        env("HIBERNATOR_OPERATION", request.operation.as_str()),
        env("HIBERNATOR_EXECUTION_ID", name.clone()),
        env("HIBERNATOR_CYCLE_ID", request.cycle_id.clone()),
        env("HIBERNATOR_STREAM_TOKEN_PATH", STREAM_TOKEN_PATH),
    ];
    // `none`: no streaming server; the runner logs to stdout only (it has no
    // endpoint), and gets no transport it would have to reject.
    if settings.stream_transport != "none" {
        env_vars.push(env(
            "HIBERNATOR_STREAM_TRANSPORT",
            settings.stream_transport.clone(),
        ));
    }
    if let Some(endpoint) = &settings.grpc_endpoint {
        env_vars.push(env("HIBERNATOR_GRPC_ENDPOINT", endpoint.clone()));
    }
    if let Some(endpoint) = &settings.webhook_endpoint {
        env_vars.push(env("HIBERNATOR_WEBHOOK_ENDPOINT", endpoint.clone()));
    }
    if let Some(format) = settings.log_format {
        env_vars.push(env(ENV_LOG_FORMAT, format.as_str()));
    }
    if let Some(ca) = &settings.grpc_tls_ca {
        env_vars.push(env(
            hibernator_streaming::config::ENV_GRPC_TLS_CA_PEM,
            hibernator_streaming::config::read_runner_ca(ca)?,
        ));
    }
    for (key, value) in &settings.extra_env {
        if !env_vars.iter().any(|e| &e.name == key) {
            env_vars.push(env(key, value.clone()));
        }
    }
    let container = Container {
        name: "runner".to_string(),
        image: Some(settings.image.clone()),
        args: Some(vec!["runner".to_string()]),
        env: Some(env_vars),
        termination_message_policy: Some("FallbackToLogsOnError".to_string()),
        volume_mounts: Some(vec![VolumeMount {
            name: "stream-token".to_string(),
            mount_path: STREAM_TOKEN_DIR.to_string(),
            read_only: Some(true),
            ..VolumeMount::default()
        }]),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".to_string()]),
                ..Capabilities::default()
            }),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".to_string(),
                ..SeccompProfile::default()
            }),
            ..SecurityContext::default()
        }),
        ..Container::default()
    };
    let pod = PodSpec {
        restart_policy: Some("Never".to_string()),
        service_account_name: Some(settings.service_account.clone()),
        containers: vec![container],
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".to_string(),
                ..SeccompProfile::default()
            }),
            ..PodSecurityContext::default()
        }),
        volumes: Some(vec![Volume {
            name: "stream-token".to_string(),
            projected: Some(ProjectedVolumeSource {
                sources: Some(vec![VolumeProjection {
                    service_account_token: Some(ServiceAccountTokenProjection {
                        audience: Some(STREAM_TOKEN_AUDIENCE.to_string()),
                        expiration_seconds: Some(STREAM_TOKEN_EXPIRATION_SECONDS),
                        path: "token".to_string(),
                    }),
                    ..VolumeProjection::default()
                }]),
                ..ProjectedVolumeSource::default()
            }),
            ..Volume::default()
        }]),
        ..PodSpec::default()
    };
    Ok(Job {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: Some(namespace.to_string()),
            labels: Some(labels.clone()),
            annotations: Some(annotations.clone()),
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        spec: Some(JobSpec {
            backoff_limit: Some(0),
            active_deadline_seconds: Some(timeout_seconds(target)),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    annotations: Some(annotations),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod),
            },
            ..JobSpec::default()
        }),
        status: None,
    })
}

/// Phase of a runner Job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobPhase {
    /// Created, not finished.
    Running,
    /// The runner exited 0.
    Succeeded,
    /// The runner failed, was killed or exceeded its deadline.
    Failed,
}

/// What the controller knows about one runner Job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobObservation {
    /// Job name (= execution id).
    pub name: String,
    /// Target name (annotation `hibernator/target`).
    pub target: String,
    /// Operation.
    pub operation: Operation,
    /// Cycle id.
    pub cycle_id: String,
    /// Attempt number (1-based).
    pub attempt: u32,
    /// Phase.
    pub phase: JobPhase,
    /// Result text (termination message, or the Job's failure reason).
    pub message: Option<String>,
    /// Whether a failure may be retried (false when the runner reported a permanent error).
    pub retryable: bool,
    /// When the Job started.
    pub started_at: Option<DateTime<Utc>>,
    /// When the Job finished.
    pub finished_at: Option<DateTime<Utc>>,
}

/// The result a runner wrote to its termination message, as far as the
/// controller needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunnerResult {
    /// The runner reported success.
    pub success: bool,
    /// Its summary message.
    pub message: Option<String>,
    /// False when the runner classified the failure as permanent.
    pub retryable: bool,
}

/// Reads a runner's termination message ([`TerminationMessage`] JSON) or,
/// with `FallbackToLogsOnError`, the tail of its log.
///
/// The runner already retried transient errors in-process with the plan's
/// policy, so a failure it *reported* is final (`retryable: false`); a Job
/// that failed without a result (crash, eviction, deadline) is retryable.
pub fn parse_termination_message(text: &str) -> Option<RunnerResult> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return None;
    }
    match TerminationMessage::parse(trimmed) {
        Some(message) => Some(RunnerResult {
            success: message.success,
            message: Some(message.message).filter(|m| !m.is_empty()),
            retryable: false,
        }),
        None => Some(RunnerResult {
            success: false,
            message: Some(tail(trimmed, 512)),
            retryable: true,
        }),
    }
}

fn tail(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("…{}", &text[start..])
}

/// Reads a runner Job. `termination` is the runner container's termination
/// message when known. Returns `None` for Jobs without the runner labels.
pub fn observe_job(job: &Job, termination: Option<&str>) -> Option<JobObservation> {
    let labels = job.metadata.labels.as_ref()?;
    let annotations = job.metadata.annotations.as_ref();
    let target = annotations
        .and_then(|a| a.get(ANNOTATION_TARGET))
        .or_else(|| labels.get(LABEL_TARGET))?
        .clone();
    let operation = labels.get(LABEL_OPERATION)?.parse::<Operation>().ok()?;
    let cycle_id = labels.get(LABEL_CYCLE_ID)?.clone();
    let attempt = labels
        .get(LABEL_ATTEMPT)
        .and_then(|a| a.parse::<u32>().ok())
        .unwrap_or(1);
    let status = job.status.as_ref();
    let conditions = status.and_then(|s| s.conditions.as_deref()).unwrap_or(&[]);
    let condition = |kind: &str| {
        conditions
            .iter()
            .find(|c| c.type_ == kind && c.status == "True")
    };
    let failed_condition = condition("Failed");
    let succeeded =
        status.and_then(|s| s.succeeded).unwrap_or(0) > 0 || condition("Complete").is_some();
    let failed = !succeeded
        && (status.and_then(|s| s.failed).unwrap_or(0) > 0 || failed_condition.is_some());
    let result = termination.and_then(parse_termination_message);
    let (phase, message, retryable) = if succeeded {
        (JobPhase::Succeeded, result.and_then(|r| r.message), true)
    } else if failed {
        match result {
            Some(r) => (
                JobPhase::Failed,
                r.message.or_else(|| Some("runner failed".to_string())),
                r.retryable,
            ),
            None => {
                let reason = failed_condition
                    .map(|c| {
                        let reason = c.reason.as_deref().unwrap_or("Failed");
                        match c.message.as_deref() {
                            Some(m) if !m.is_empty() => format!("Job failed: {reason}: {m}"),
                            _ => format!("Job failed: {reason}"),
                        }
                    })
                    .unwrap_or_else(|| "Job failed without a termination message".to_string());
                (JobPhase::Failed, Some(reason), true)
            }
        }
    } else {
        (JobPhase::Running, None, true)
    };
    Some(JobObservation {
        name: job.metadata.name.clone().unwrap_or_default(),
        target,
        operation,
        cycle_id,
        attempt,
        phase,
        message,
        retryable,
        started_at: status
            .and_then(|s| s.start_time.as_ref())
            .map(super::time::from_k8s),
        finished_at: status
            .and_then(|s| s.completion_time.as_ref())
            .map(super::time::from_k8s)
            .or_else(|| {
                failed_condition
                    .and_then(|c| c.last_transition_time.as_ref())
                    .map(super::time::from_k8s)
            }),
    })
}

#[cfg(test)]
#[path = "jobs_tests.rs"]
mod tests;
