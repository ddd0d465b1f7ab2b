//! Runner Jobs as Kubernetes objects: the Job of one attempt, with the
//! labels, annotations, environment, security context and projected stream
//! token of the controller/runner contract. Names and the reading of a
//! finished Job are `hibernator_reconcile::jobs`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use hibernator_core::types::{ENFORCE_OPERATION, HibernatePlan};
use hibernator_core::wellknown::{
    ANNOTATION_PLAN, ANNOTATION_TARGET, ENV_CYCLE_ID, ENV_EXECUTION_ID, ENV_LOG_FORMAT,
    ENV_OPERATION, ENV_PLAN, ENV_PLAN_NAMESPACE, ENV_TARGET, LABEL_ATTEMPT, LABEL_CYCLE_ID,
    LABEL_ENFORCE_CHECK, LABEL_EXECUTION_ID, LABEL_OPERATION, LABEL_PLAN, LABEL_TARGET,
    MAX_LABEL_LEN, STREAM_TOKEN_AUDIENCE, STREAM_TOKEN_DIR, STREAM_TOKEN_PATH, dns_label,
    plan_label,
};
use hibernator_reconcile::JobRequest;
use hibernator_reconcile::enforce::EnforceJobRequest;
use hibernator_reconcile::jobs::timeout_seconds;
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, EnvVar, PodSecurityContext, PodSpec, PodTemplateSpec,
    ProjectedVolumeSource, SeccompProfile, SecurityContext, ServiceAccountTokenProjection, Volume,
    VolumeMount, VolumeProjection,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Resource;

/// Lifetime of the projected stream token.
pub const STREAM_TOKEN_EXPIRATION_SECONDS: i64 = 600;

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
    /// Log format of the runners, the value of `HIBERNATOR_LOG_FORMAT`
    /// (`json` or `text`, from `--runner-log-format`; `None`: not set, the
    /// runner's default applies).
    pub log_format: Option<String>,
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
    let spec = RunnerJob {
        name: request.name(plan_name),
        target: &request.target,
        operation: request.operation.as_str(),
        cycle_id: &request.cycle_id,
        attempt: request.attempt,
        check_id: None,
    };
    build_runner_job(plan, &spec, settings)
}

/// Builds the enforce Job of one target in an enforcement check (drift
/// re-enforcement while hibernated): the runner Job contract of
/// [`build_job`] with `HIBERNATOR_OPERATION=enforce`, the shutdown cycle's
/// id and the label `hibernator.dev/enforce-check`.
pub fn build_enforce_job(
    plan: &HibernatePlan,
    request: &EnforceJobRequest,
    settings: &RunnerSettings,
) -> Result<Job, JobBuildError> {
    let plan_name = plan
        .metadata
        .name
        .as_deref()
        .ok_or(JobBuildError::MissingMetadata { field: "name" })?;
    let spec = RunnerJob {
        name: request.name(plan_name),
        target: &request.target,
        operation: ENFORCE_OPERATION,
        cycle_id: &request.cycle_id,
        attempt: 1,
        check_id: Some(&request.check_id),
    };
    build_runner_job(plan, &spec, settings)
}

/// What distinguishes one runner Job from another.
struct RunnerJob<'a> {
    name: String,
    target: &'a str,
    operation: &'a str,
    cycle_id: &'a str,
    attempt: u32,
    check_id: Option<&'a str>,
}

fn build_runner_job(
    plan: &HibernatePlan,
    request: &RunnerJob<'_>,
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
            target: request.target.to_string(),
        })?;
    let name = request.name.clone();
    let mut labels: BTreeMap<String, String> = [
        (LABEL_PLAN, plan_label(plan_name)),
        (LABEL_TARGET, dns_label(request.target, MAX_LABEL_LEN)),
        (LABEL_OPERATION, request.operation.to_string()),
        (LABEL_CYCLE_ID, dns_label(request.cycle_id, MAX_LABEL_LEN)),
        (LABEL_EXECUTION_ID, name.clone()),
        (LABEL_ATTEMPT, request.attempt.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    if let Some(check) = request.check_id {
        labels.insert(
            LABEL_ENFORCE_CHECK.to_string(),
            dns_label(check, MAX_LABEL_LEN),
        );
    }
    let annotations: BTreeMap<String, String> = [
        (ANNOTATION_PLAN.to_string(), plan_name.to_string()),
        (ANNOTATION_TARGET.to_string(), request.target.to_string()),
    ]
    .into_iter()
    .collect();
    let mut env_vars = vec![
        env(ENV_PLAN, plan_name),
        env(ENV_PLAN_NAMESPACE, namespace),
        env(ENV_TARGET, request.target),
        env(ENV_OPERATION, request.operation),
        env(ENV_EXECUTION_ID, name.clone()),
        env(ENV_CYCLE_ID, request.cycle_id),
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
    if let Some(format) = &settings.log_format {
        env_vars.push(env(ENV_LOG_FORMAT, format.clone()));
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

#[cfg(test)]
#[path = "jobs_tests.rs"]
mod tests;
