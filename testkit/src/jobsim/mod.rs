//! [`JobSimulator`]: plays the Job controller and the kubelet for runner Jobs
//! on a cluster without nodes (the in-process API server, or a real cluster
//! whose Jobs never get scheduled).
//!
//! It watches the Jobs labelled `hibernator.dev/execution-id` in one
//! namespace. For each new Job it
//!
//! 1. creates a Pod as the Job controller would (labels
//!    `batch.kubernetes.io/job-name` and `job-name`, an owner reference to the
//!    Job, the Job's pod template and ServiceAccount) and marks the Job active;
//! 2. mints the projected ServiceAccount token through the TokenRequest API
//!    (`serviceaccounts/<sa>/token`, audience and expiry from the Job's
//!    projected volume, bound to the Pod) and writes it to a temporary file;
//! 3. calls the runner with the first container's environment and
//!    arguments ([`JobRun`]);
//! 4. writes the result as the kubelet and the Job controller would: the Pod's
//!    `containerStatuses[0].state.terminated {exitCode, message}` and phase,
//!    then the Job's `startTime`, `completionTime`, `succeeded`/`failed` and
//!    conditions (`SuccessCriteriaMet` + `Complete`, or `FailureTarget` +
//!    `Failed`, as Kubernetes 1.31+ does).
//!
//! `activeDeadlineSeconds` is honoured (the run is stopped and the Job fails
//! with reason `DeadlineExceeded`), and a Job deleted while it runs stops its
//! run and loses its Pod. [`JobSimulator::pause`] holds new runs and status
//! writes (for tests that restart the controller) until
//! [`JobSimulator::resume`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ::kube::api::{Api, DeleteParams, PostParams};
use ::kube::runtime::watcher;
use futures::future::BoxFuture;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Pod, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use serde_json::json;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

mod status;

use self::status::{
    condition, finish_failed, mint_token, patch_pod_status, patch_status, terminate_pod,
};

/// Label that marks runner Jobs.
pub const EXECUTION_ID_LABEL: &str = hibernator_core::wellknown::LABEL_EXECUTION_ID;

/// What the runner of one Job gets.
#[derive(Clone, Debug)]
pub struct JobRun {
    /// Namespace of the Job.
    pub namespace: String,
    /// Name of the Job.
    pub job_name: String,
    /// Name of the Pod created for it.
    pub pod_name: String,
    /// The first container's environment (`value`s, and `fieldRef`s to the
    /// Pod's name and namespace).
    pub env: BTreeMap<String, String>,
    /// The first container's `args`.
    pub args: Vec<String>,
    /// File holding the minted projected ServiceAccount token.
    pub token_path: PathBuf,
    /// uid of the Pod.
    pub pod_uid: String,
    /// The Pod's spec (containers, volumes, ServiceAccount), for runners
    /// that run the container as a process
    /// ([`Kubelet::job_runner`](crate::kubelet::Kubelet::job_runner)).
    pub spec: PodSpec,
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobOutcome {
    /// Container exit code (0: success).
    pub exit_code: i32,
    /// Termination message (what the container wrote to its termination log).
    pub message: String,
}

/// Options of a [`JobSimulator`].
#[derive(Clone, Debug)]
pub struct JobSimulatorOptions {
    /// At most this many runs at once (others wait).
    pub concurrency: usize,
}

impl Default for JobSimulatorOptions {
    fn default() -> Self {
        Self { concurrency: 64 }
    }
}

/// The runner callback.
pub type Runner = Arc<dyn Fn(JobRun) -> BoxFuture<'static, JobOutcome> + Send + Sync>;

/// What the simulator did with one Job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimulatedJob {
    /// Job name.
    pub job_name: String,
    /// `Complete`, `Failed`, `DeadlineExceeded`, `Deleted` or `Error: …`
    /// (the simulator could not drive it).
    pub result: String,
}

struct Shared {
    client: ::kube::Client,
    namespace: String,
    runner: Runner,
    semaphore: Semaphore,
    paused: watch::Sender<bool>,
    seen: Mutex<HashSet<String>>,
    running: Mutex<HashMap<String, CancellationToken>>,
    started: Mutex<Vec<String>>,
    finished: Mutex<Vec<SimulatedJob>>,
    finished_tx: watch::Sender<usize>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs runner Jobs of one namespace (see the module docs). Dropping it
/// stops the watch; runs in progress are cancelled.
pub struct JobSimulator {
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for JobSimulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobSimulator")
            .field("namespace", &self.shared.namespace)
            .finish_non_exhaustive()
    }
}

impl Drop for JobSimulator {
    fn drop(&mut self) {
        self.task.abort();
        for token in lock(&self.shared.running).values() {
            token.cancel();
        }
    }
}

impl JobSimulator {
    /// Starts simulating the runner Jobs of `namespace` with default options.
    pub fn start<F>(client: ::kube::Client, namespace: &str, runner: F) -> JobSimulator
    where
        F: Fn(JobRun) -> BoxFuture<'static, JobOutcome> + Send + Sync + 'static,
    {
        Self::start_with(client, namespace, JobSimulatorOptions::default(), runner)
    }

    /// Starts simulating with `options`.
    pub fn start_with<F>(
        client: ::kube::Client,
        namespace: &str,
        options: JobSimulatorOptions,
        runner: F,
    ) -> JobSimulator
    where
        F: Fn(JobRun) -> BoxFuture<'static, JobOutcome> + Send + Sync + 'static,
    {
        let shared = Arc::new(Shared {
            client,
            namespace: namespace.to_string(),
            runner: Arc::new(runner),
            semaphore: Semaphore::new(options.concurrency.max(1)),
            paused: watch::channel(false).0,
            seen: Mutex::new(HashSet::new()),
            running: Mutex::new(HashMap::new()),
            started: Mutex::new(Vec::new()),
            finished: Mutex::new(Vec::new()),
            finished_tx: watch::channel(0).0,
        });
        let task = tokio::spawn(watch_jobs(shared.clone()));
        JobSimulator { shared, task }
    }

    /// Holds new runs and the final status writes of running ones.
    pub fn pause(&self) {
        self.shared.paused.send_replace(true);
    }

    /// Lets held runs and status writes proceed.
    pub fn resume(&self) {
        self.shared.paused.send_replace(false);
    }

    /// Names of the Jobs whose runner was called, in call order (a Job run
    /// twice would appear twice).
    pub fn started(&self) -> Vec<String> {
        lock(&self.shared.started).clone()
    }

    /// Jobs the simulator finished, in order.
    pub fn finished(&self) -> Vec<SimulatedJob> {
        lock(&self.shared.finished).clone()
    }

    /// Waits until at least `count` Jobs finished (or `timeout` passed);
    /// returns the number finished.
    pub async fn wait_finished(&self, count: usize, timeout: Duration) -> usize {
        let mut rx = self.shared.finished_tx.subscribe();
        let waited = tokio::time::timeout(timeout, rx.wait_for(|n| *n >= count)).await;
        match waited {
            Ok(Ok(n)) => *n,
            _ => lock(&self.shared.finished).len(),
        }
    }
}

async fn watch_jobs(shared: Arc<Shared>) {
    let api: Api<Job> = Api::namespaced(shared.client.clone(), &shared.namespace);
    let config = watcher::Config::default().labels(EXECUTION_ID_LABEL);
    let mut events = watcher(api, config).boxed();
    loop {
        match events.try_next().await {
            Ok(Some(watcher::Event::Apply(job) | watcher::Event::InitApply(job))) => {
                consider(&shared, job);
            }
            Ok(Some(watcher::Event::Delete(job))) => {
                if let Some(uid) = job.metadata.uid.as_deref()
                    && let Some(token) = lock(&shared.running).get(uid)
                {
                    token.cancel();
                }
            }
            Ok(Some(_)) => {}
            Ok(None) => return,
            Err(e) => {
                tracing::debug!(error = %e, "job simulator watch error; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

fn is_finished(job: &Job) -> bool {
    let Some(status) = &job.status else {
        return false;
    };
    status.succeeded.unwrap_or(0) > 0
        || status.failed.unwrap_or(0) > 0
        || status
            .conditions
            .iter()
            .flatten()
            .any(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
}

fn consider(shared: &Arc<Shared>, job: Job) {
    let Some(uid) = job.metadata.uid.clone() else {
        return;
    };
    if job.metadata.deletion_timestamp.is_some() || is_finished(&job) {
        return;
    }
    if !lock(&shared.seen).insert(uid.clone()) {
        return;
    }
    let token = CancellationToken::new();
    lock(&shared.running).insert(uid.clone(), token.clone());
    let shared = shared.clone();
    tokio::spawn(async move {
        let name = job.metadata.name.clone().unwrap_or_default();
        let result = match drive(&shared, job, token).await {
            Ok(result) => result,
            Err(message) => {
                tracing::warn!(job = %name, %message, "job simulator could not drive the job");
                format!("Error: {message}")
            }
        };
        lock(&shared.running).remove(&uid);
        let count = {
            let mut finished = lock(&shared.finished);
            finished.push(SimulatedJob {
                job_name: name,
                result,
            });
            finished.len()
        };
        shared.finished_tx.send_replace(count);
    });
}

async fn wait_unpaused(shared: &Shared) {
    let mut rx = shared.paused.subscribe();
    // The sender lives in `shared`, so the channel never closes here.
    let _ = rx.wait_for(|paused| !*paused).await;
}

fn rfc3339_now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn random_suffix() -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5)
        .map(|_| char::from(CHARS[rng.random_range(0..CHARS.len())]))
        .collect()
}

/// Runs one Job to its end; returns the result name.
async fn drive(shared: &Shared, job: Job, cancel: CancellationToken) -> Result<String, String> {
    let _permit = shared
        .semaphore
        .acquire()
        .await
        .map_err(|e| e.to_string())?;
    tokio::select! {
        () = wait_unpaused(shared) => {}
        () = cancel.cancelled() => return Ok("Deleted".to_string()),
    }
    let jobs: Api<Job> = Api::namespaced(shared.client.clone(), &shared.namespace);
    let pods: Api<Pod> = Api::namespaced(shared.client.clone(), &shared.namespace);
    let job_name = job.metadata.name.clone().unwrap_or_default();
    let job_uid = job.metadata.uid.clone().unwrap_or_default();
    let template = job
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default();
    let spec: PodSpec = template.spec.clone().unwrap_or_default();
    let deadline = job
        .spec
        .as_ref()
        .and_then(|s| s.active_deadline_seconds)
        .map(|s| Duration::from_secs(u64::try_from(s).unwrap_or(0)));

    // 1. The Pod and the Job's start.
    let pod_name = format!("{job_name}-{}", random_suffix());
    let mut labels = template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    labels.insert("batch.kubernetes.io/job-name".into(), job_name.clone());
    labels.insert("job-name".into(), job_name.clone());
    labels.insert("batch.kubernetes.io/controller-uid".into(), job_uid.clone());
    let pod = Pod {
        metadata: ::kube::api::ObjectMeta {
            name: Some(pod_name.clone()),
            namespace: Some(shared.namespace.clone()),
            labels: Some(labels),
            annotations: template
                .metadata
                .as_ref()
                .and_then(|m| m.annotations.clone()),
            owner_references: Some(vec![OwnerReference {
                api_version: "batch/v1".into(),
                kind: "Job".into(),
                name: job_name.clone(),
                uid: job_uid.clone(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]),
            ..Default::default()
        },
        spec: Some(spec.clone()),
        status: None,
    };
    let pod = pods
        .create(&PostParams::default(), &pod)
        .await
        .map_err(|e| format!("create pod {pod_name}: {e}"))?;
    let pod_uid = pod.metadata.uid.clone().unwrap_or_default();
    let started_at = rfc3339_now();
    patch_status(
        &jobs,
        &job_name,
        json!({"status": {"startTime": started_at, "active": 1}}),
    )
    .await?;
    patch_pod_status(
        &pods,
        &pod_name,
        json!({"status": {"phase": "Running", "startTime": started_at}}),
    )
    .await?;

    // 2. The projected token.
    let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
    let token_path = dir.path().join("token");
    let token = mint_token(shared, &spec, &pod_name, &pod_uid).await;
    let token = match token {
        Ok(token) => token,
        Err(message) => {
            finish_failed(
                &jobs,
                &pods,
                &job_name,
                &pod_name,
                1,
                &message,
                "BackoffLimitExceeded",
            )
            .await?;
            return Ok("Failed".to_string());
        }
    };
    tokio::fs::write(&token_path, token)
        .await
        .map_err(|e| format!("write token: {e}"))?;

    // 3. The run.
    let container = spec.containers.first().cloned().unwrap_or_default();
    let mut env = BTreeMap::new();
    for var in container.env.iter().flatten() {
        let value = match (&var.value, &var.value_from) {
            (Some(v), _) => Some(v.clone()),
            (None, Some(from)) => {
                from.field_ref
                    .as_ref()
                    .and_then(|f| match f.field_path.as_str() {
                        "metadata.name" => Some(pod_name.clone()),
                        "metadata.namespace" => Some(shared.namespace.clone()),
                        "metadata.uid" => Some(pod_uid.clone()),
                        "spec.serviceAccountName" => spec.service_account_name.clone(),
                        _ => None,
                    })
            }
            _ => None,
        };
        if let Some(value) = value {
            env.insert(var.name.clone(), value);
        }
    }
    let run = JobRun {
        namespace: shared.namespace.clone(),
        job_name: job_name.clone(),
        pod_name: pod_name.clone(),
        env,
        args: container.args.clone().unwrap_or_default(),
        token_path,
        pod_uid: pod_uid.clone(),
        spec: spec.clone(),
    };
    lock(&shared.started).push(job_name.clone());
    let run_future = (shared.runner)(run);
    let expired = async {
        match deadline {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    let outcome = tokio::select! {
        outcome = run_future => Some(outcome),
        () = expired => None,
        () = cancel.cancelled() => {
            // The Job is gone: its Pod goes with it (no garbage collector in-process).
            let _ = pods.delete(&pod_name, &DeleteParams::background()).await;
            return Ok("Deleted".to_string());
        }
    };
    drop(dir);

    // 4. The result.
    tokio::select! {
        () = wait_unpaused(shared) => {}
        () = cancel.cancelled() => {
            let _ = pods.delete(&pod_name, &DeleteParams::background()).await;
            return Ok("Deleted".to_string());
        }
    }
    match outcome {
        Some(outcome) if outcome.exit_code == 0 => {
            terminate_pod(
                &pods,
                &pod_name,
                0,
                &outcome.message,
                "Completed",
                "Succeeded",
            )
            .await?;
            let now = rfc3339_now();
            patch_status(
                &jobs,
                &job_name,
                json!({"status": {
                    "active": 0, "ready": 0, "succeeded": 1, "completionTime": now,
                    "conditions": [
                        condition("SuccessCriteriaMet", "CompletionsReached", "Reached expected number of succeeded pods", &now),
                        condition("Complete", "CompletionsReached", "Reached expected number of succeeded pods", &now),
                    ],
                }}),
            )
            .await?;
            Ok("Complete".to_string())
        }
        Some(outcome) => {
            finish_failed(
                &jobs,
                &pods,
                &job_name,
                &pod_name,
                outcome.exit_code,
                &outcome.message,
                "BackoffLimitExceeded",
            )
            .await?;
            Ok("Failed".to_string())
        }
        None => {
            finish_failed(
                &jobs,
                &pods,
                &job_name,
                &pod_name,
                137,
                "",
                "DeadlineExceeded",
            )
            .await?;
            Ok("DeadlineExceeded".to_string())
        }
    }
}
