//! Which runner Job an execution id belongs to: the [`ExecutionDirectory`]
//! trait and its Kubernetes implementation (Jobs labelled
//! `hibernator.dev/execution-id`, in any namespace), with a bounded cache.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;

pub use hibernator_core::wellknown::{
    ANNOTATION_PLAN, ANNOTATION_TARGET, LABEL_EXECUTION_ID, LABEL_JOB_NAME, LABEL_PLAN,
    LABEL_TARGET,
};

/// The runner Job of an execution.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExecutionInfo {
    /// Execution id.
    pub execution_id: String,
    /// Namespace of the Job (and of the plan).
    pub namespace: String,
    /// Plan name.
    pub plan: String,
    /// Target name.
    pub target: String,
    /// Job name.
    pub job_name: String,
    /// Job UID.
    pub job_uid: String,
    /// ServiceAccount of the Job's Pods (`default` when unset).
    pub service_account: String,
    /// When the Job started (`status.startTime`, else its creation): dates
    /// the execution's persisted log (`logsRef`).
    pub started: Option<chrono::DateTime<chrono::Utc>>,
}

/// The directory could not be read.
#[derive(Debug, thiserror::Error)]
#[error("execution directory lookup of {object} failed: {message}")]
pub struct DirectoryError {
    /// What was looked up.
    pub object: String,
    /// What failed.
    pub message: String,
}

/// Resolves execution ids to their runner Job.
#[async_trait]
pub trait ExecutionDirectory: Send + Sync {
    /// The Job of `execution_id`, `None` when there is none.
    async fn execution(&self, execution_id: &str) -> Result<Option<ExecutionInfo>, DirectoryError>;

    /// Whether Pod `pod_name` with UID `pod_uid` in the execution's
    /// namespace belongs to the execution's Job.
    async fn pod_in_job(
        &self,
        execution: &ExecutionInfo,
        pod_name: &str,
        pod_uid: &str,
    ) -> Result<bool, DirectoryError>;
}

/// Whether `id` is usable as a label value (so it can never alter a label
/// selector): 1–63 characters `[A-Za-z0-9._-]`, alphanumeric at both ends.
pub fn valid_execution_id(id: &str) -> bool {
    let bytes = id.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
}

/// The exact name from `annotation`, else the (possibly shortened) label.
fn exact(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    annotation: &str,
    label: Option<&String>,
) -> String {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(annotation))
        .or(label)
        .cloned()
        .unwrap_or_default()
}

/// Reads an [`ExecutionInfo`] from a runner Job; `None` when it lacks the
/// execution id label or metadata.
pub fn execution_from_job(job: &Job) -> Option<ExecutionInfo> {
    let meta = &job.metadata;
    let labels = meta.labels.as_ref()?;
    let sa = job
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|p| p.service_account_name.clone())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "default".to_string());
    Some(ExecutionInfo {
        execution_id: labels.get(LABEL_EXECUTION_ID)?.clone(),
        namespace: meta.namespace.clone()?,
        plan: exact(meta, ANNOTATION_PLAN, labels.get(LABEL_PLAN)),
        target: exact(meta, ANNOTATION_TARGET, labels.get(LABEL_TARGET)),
        job_name: meta.name.clone()?,
        job_uid: meta.uid.clone().unwrap_or_default(),
        service_account: sa,
        started: job
            .status
            .as_ref()
            .and_then(|s| s.start_time.as_ref())
            .or(meta.creation_timestamp.as_ref())
            .and_then(|t| {
                chrono::DateTime::from_timestamp(
                    t.0.as_second(),
                    u32::try_from(t.0.subsec_nanosecond()).unwrap_or(0),
                )
            }),
    })
}

/// Whether `pod` belongs to the execution's Job (owner reference to the Job
/// UID, or the `batch.kubernetes.io/job-name` / `job-name` label).
pub fn pod_belongs_to(pod: &Pod, execution: &ExecutionInfo) -> bool {
    let meta = &pod.metadata;
    if meta.namespace.as_deref() != Some(execution.namespace.as_str()) {
        return false;
    }
    let owned = meta.owner_references.as_ref().is_some_and(|refs| {
        refs.iter().any(|r| {
            r.kind == "Job"
                && r.name == execution.job_name
                && (execution.job_uid.is_empty() || r.uid == execution.job_uid)
        })
    });
    let labelled = meta.labels.as_ref().is_some_and(|l| {
        l.get(LABEL_JOB_NAME).or_else(|| l.get("job-name")) == Some(&execution.job_name)
    });
    owned || labelled
}

/// [`ExecutionDirectory`] over the Kubernetes API, caching found executions
/// for `ttl` in a bounded map (unknown ids are not cached: their Job may be
/// created a moment later).
pub struct KubeExecutionDirectory {
    client: kube::Client,
    cache: Mutex<HashMap<String, (ExecutionInfo, Instant)>>,
    capacity: usize,
    ttl: Duration,
}

impl KubeExecutionDirectory {
    /// A directory over `client` (needs `list` on Jobs cluster-wide and `get`
    /// on Pods), caching up to 4096 executions for 60 s.
    pub fn new(client: kube::Client) -> Self {
        Self::with_cache(client, 4096, Duration::from_secs(60))
    }

    /// A directory with an explicit cache size and lifetime.
    pub fn with_cache(client: kube::Client, capacity: usize, ttl: Duration) -> Self {
        Self {
            client,
            cache: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
            ttl,
        }
    }
}

#[async_trait]
impl ExecutionDirectory for KubeExecutionDirectory {
    async fn execution(&self, execution_id: &str) -> Result<Option<ExecutionInfo>, DirectoryError> {
        let now = Instant::now();
        {
            let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((info, until)) = cache.get(execution_id)
                && *until > now
            {
                return Ok(Some(info.clone()));
            }
        }
        if !valid_execution_id(execution_id) {
            return Ok(None);
        }
        let api: kube::Api<Job> = kube::Api::all(self.client.clone());
        let selector = format!("{LABEL_EXECUTION_ID}={execution_id}");
        let jobs = api
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| DirectoryError {
                object: format!("jobs with {selector}"),
                message: e.to_string(),
            })?;
        let mut found: Vec<ExecutionInfo> =
            jobs.items.iter().filter_map(execution_from_job).collect();
        // Two Jobs claiming one execution id is ambiguous: trust neither.
        if found.len() != 1 {
            if found.len() > 1 {
                tracing::warn!(
                    execution_id,
                    jobs = found.len(),
                    "several runner Jobs carry one execution id"
                );
            }
            return Ok(None);
        }
        let info = found.remove(0);
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= self.capacity {
            cache.retain(|_, (_, until)| *until > now);
            if cache.len() >= self.capacity {
                cache.clear();
            }
        }
        cache.insert(execution_id.to_string(), (info.clone(), now + self.ttl));
        Ok(Some(info))
    }

    async fn pod_in_job(
        &self,
        execution: &ExecutionInfo,
        pod_name: &str,
        pod_uid: &str,
    ) -> Result<bool, DirectoryError> {
        let api: kube::Api<Pod> = kube::Api::namespaced(self.client.clone(), &execution.namespace);
        let pod = api.get_opt(pod_name).await.map_err(|e| DirectoryError {
            object: format!("pod {}/{pod_name}", execution.namespace),
            message: e.to_string(),
        })?;
        Ok(pod.is_some_and(|p| {
            p.metadata.uid.as_deref() == Some(pod_uid) && pod_belongs_to(&p, execution)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execution_ids_must_be_label_values() {
        assert!(valid_execution_id("exec-123"));
        assert!(valid_execution_id("a.b_c"));
        assert!(!valid_execution_id(""));
        assert!(!valid_execution_id("-x"));
        assert!(!valid_execution_id("x,hibernator.dev/plan=y"));
        assert!(!valid_execution_id(&"a".repeat(64)));
    }

    #[test]
    fn exact_names_come_from_annotations_when_labels_are_shortened() {
        let long = format!("{}-target", "x".repeat(70));
        let job: Job = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "runner-1", "namespace": "team-a",
              "labels": {"hibernator.dev/execution-id": "exec-1",
                         "hibernator.dev/plan": "p", "hibernator.dev/target": "x-shortened-1a2b3c4d"},
              "annotations": {"hibernator/plan": "p", "hibernator/target": long}},
        }))
        .unwrap();
        let info = execution_from_job(&job).unwrap();
        assert_eq!(info.target, long);
        assert_eq!(info.plan, "p");
    }

    #[test]
    fn job_and_pod_membership_are_read_from_labels_and_owners() {
        let job: Job = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "runner-1", "namespace": "team-a", "uid": "job-uid",
              "labels": {"hibernator.dev/execution-id": "exec-1", "hibernator.dev/plan": "p",
                         "hibernator.dev/target": "db"}},
            "spec": {"template": {"spec": {"serviceAccountName": "hibernator-runner",
                                           "containers": []}}}
        }))
        .unwrap();
        let info = execution_from_job(&job).unwrap();
        assert_eq!(info.service_account, "hibernator-runner");
        assert_eq!((info.plan.as_str(), info.target.as_str()), ("p", "db"));
        let owned: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "runner-1-abc", "namespace": "team-a", "uid": "pod-uid",
              "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "runner-1",
                                   "uid": "job-uid"}]}
        }))
        .unwrap();
        assert!(pod_belongs_to(&owned, &info));
        let other: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "x", "namespace": "team-a",
              "labels": {"batch.kubernetes.io/job-name": "runner-2"}}
        }))
        .unwrap();
        assert!(!pod_belongs_to(&other, &info));
    }
}
