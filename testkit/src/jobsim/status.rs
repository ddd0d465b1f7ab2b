//! Writing Pod and Job status as the kubelet and the Job controller would,
//! and minting the Pod's projected ServiceAccount token.

use ::kube::api::{Api, Patch, PatchParams, PostParams};
use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Pod, PodSpec, ServiceAccount};
use serde_json::json;

use super::{Shared, rfc3339_now};

pub(super) fn condition(kind: &str, reason: &str, message: &str, now: &str) -> serde_json::Value {
    json!({
        "type": kind, "status": "True", "reason": reason, "message": message,
        "lastProbeTime": now, "lastTransitionTime": now,
    })
}

pub(super) async fn finish_failed(
    jobs: &Api<Job>,
    pods: &Api<Pod>,
    job_name: &str,
    pod_name: &str,
    exit_code: i32,
    message: &str,
    reason: &str,
) -> Result<(), String> {
    let (container_reason, job_message) = if reason == "DeadlineExceeded" {
        (
            "DeadlineExceeded",
            "Job was active longer than specified deadline",
        )
    } else {
        ("Error", "Job has reached the specified backoff limit")
    };
    terminate_pod(
        pods,
        pod_name,
        exit_code,
        message,
        container_reason,
        "Failed",
    )
    .await?;
    let now = rfc3339_now();
    patch_status(
        jobs,
        job_name,
        json!({"status": {
            "active": 0, "ready": 0, "failed": 1,
            "conditions": [
                condition("FailureTarget", reason, job_message, &now),
                condition("Failed", reason, job_message, &now),
            ],
        }}),
    )
    .await
}

pub(super) async fn terminate_pod(
    pods: &Api<Pod>,
    pod_name: &str,
    exit_code: i32,
    message: &str,
    reason: &str,
    phase: &str,
) -> Result<(), String> {
    let now = rfc3339_now();
    let mut terminated = json!({
        "exitCode": exit_code, "reason": reason, "finishedAt": now, "startedAt": now,
    });
    if !message.is_empty() {
        terminated["message"] = json!(message);
    }
    patch_pod_status(
        pods,
        pod_name,
        json!({"status": {
            "phase": phase,
            "containerStatuses": [{
                "name": "runner", "ready": false, "restartCount": 0, "image": "hibernator",
                "imageID": "", "started": false,
                "state": {"terminated": terminated},
            }],
        }}),
    )
    .await
}

pub(super) async fn patch_status(
    jobs: &Api<Job>,
    name: &str,
    patch: serde_json::Value,
) -> Result<(), String> {
    jobs.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(|_| ())
        .map_err(|e| format!("update status of job {name}: {e}"))
}

pub(super) async fn patch_pod_status(
    pods: &Api<Pod>,
    name: &str,
    patch: serde_json::Value,
) -> Result<(), String> {
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(|_| ())
        .map_err(|e| format!("update status of pod {name}: {e}"))
}

/// Mints the token of the Pod's projected `serviceAccountToken` volume (the
/// API's defaults when it has none).
pub(super) async fn mint_token(
    shared: &Shared,
    spec: &PodSpec,
    pod_name: &str,
    pod_uid: &str,
) -> Result<String, String> {
    let sa = spec
        .service_account_name
        .clone()
        .unwrap_or_else(|| "default".to_string());
    let projection = spec
        .volumes
        .iter()
        .flatten()
        .filter_map(|v| v.projected.as_ref())
        .flat_map(|p| p.sources.iter().flatten())
        .find_map(|s| s.service_account_token.clone());
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: projection
                .as_ref()
                .and_then(|p| p.audience.clone())
                .map(|a| vec![a])
                .unwrap_or_default(),
            expiration_seconds: Some(
                projection
                    .as_ref()
                    .and_then(|p| p.expiration_seconds)
                    .unwrap_or(3600),
            ),
            bound_object_ref: Some(BoundObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: Some(pod_name.to_string()),
                uid: Some(pod_uid.to_string()),
            }),
        },
        ..Default::default()
    };
    let api: Api<ServiceAccount> = Api::namespaced(shared.client.clone(), &shared.namespace);
    let minted = api
        .create_token_request(&sa, &PostParams::default(), &request)
        .await
        .map_err(|e| format!("TokenRequest for ServiceAccount {sa}: {e}"))?;
    minted
        .status
        .map(|s| s.token)
        .ok_or_else(|| format!("TokenRequest for ServiceAccount {sa} returned no token"))
}
