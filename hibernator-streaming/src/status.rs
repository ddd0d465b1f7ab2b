//! Where progress and completion reports go: the [`StatusSink`] trait and its
//! Kubernetes implementation, which updates the plan's `status.executions[]`
//! entry of the target (`progress`, `message`, `progressTime`) and emits
//! Events, coalescing bursts into one write per plan every
//! [`COALESCE_WINDOW`]. The sink also reads the latest progress of an
//! execution back from the plan ([`StatusSink::latest`]), so any controller
//! replica can answer `GetProgress` for reports another replica received.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hibernator_core::types::{
    ExecutionState, ExecutionStatus, HibernatePlan, HibernatePlanStatus, Operation,
};
use kube::Resource;
use kube::api::PostParams;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use tokio::sync::{Mutex, Notify};

use crate::auth::ExecutionInfo;
use crate::wire::{Completion, Progress};

/// How long a burst of reports is collected before one status write.
pub const COALESCE_WINDOW: Duration = Duration::from_millis(250);
/// Attempts of a read–modify–replace of the plan status on conflicts.
pub const MAX_CONFLICT_RETRIES: usize = 8;

/// A change to reflect in the plan status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatusChange {
    /// New progress.
    Progress(Progress),
    /// The execution ended.
    Completed(Completion),
}

/// A status write or read failed.
#[derive(Debug, thiserror::Error)]
#[error("status of HibernatePlan {namespace}/{plan}: {message}")]
pub struct StatusError {
    /// Plan namespace.
    pub namespace: String,
    /// Plan name.
    pub plan: String,
    /// What failed.
    pub message: String,
}

/// The latest progress of an execution as recorded in the plan status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredProgress {
    /// The progress (phase derived from the plan's current operation).
    pub progress: Progress,
    /// Whether the execution is over: its entry is terminal (`Completed`,
    /// `Failed`, `Aborted`) or its attempt failed and a retry is scheduled.
    pub finished: bool,
}

/// Phase name of `operation`, as runners report it (`Shutdown`, `WakeUp`).
pub fn phase_of(operation: Operation) -> &'static str {
    match operation {
        Operation::Shutdown => "Shutdown",
        Operation::Wakeup => "WakeUp",
    }
}

/// Reads the progress of `execution_id` from a plan status: the
/// `executions[]` entry whose `executionId` matches (`None` when there is
/// none). Without a runner report the progress is 0 and the time falls back
/// to `finishedAt`, then `startedAt`.
pub fn stored_progress(status: &HibernatePlanStatus, execution_id: &str) -> Option<StoredProgress> {
    let entry = status
        .executions
        .iter()
        .find(|e| e.execution_id.as_deref() == Some(execution_id))?;
    let timestamp = entry
        .progress_time
        .or(entry.finished_at)
        .or(entry.started_at)
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
    Some(StoredProgress {
        progress: Progress {
            execution_id: execution_id.to_string(),
            phase: status
                .current_operation
                .map(phase_of)
                .unwrap_or_default()
                .to_string(),
            progress: entry.progress.unwrap_or(0).min(100),
            message: entry.message.clone().unwrap_or_default(),
            timestamp,
        },
        finished: entry.state.is_terminal() || entry.next_retry_at.is_some(),
    })
}

/// Reflects runner progress and completion in the plan.
#[async_trait]
pub trait StatusSink: Send + Sync {
    /// Records a change of `execution`; implementations may coalesce, but
    /// must reflect it within 2 s.
    async fn record(
        &self,
        execution: &ExecutionInfo,
        change: StatusChange,
    ) -> Result<(), StatusError>;

    /// Writes out everything recorded so far.
    async fn flush(&self) -> Result<(), StatusError> {
        Ok(())
    }

    /// The latest progress of `execution` as stored (possibly written by
    /// another controller replica); `None` when nothing is stored for it.
    async fn latest(
        &self,
        _execution: &ExecutionInfo,
    ) -> Result<Option<StoredProgress>, StatusError> {
        Ok(None)
    }

    /// [`latest`](Self::latest) of several executions of one plan, in
    /// order. The status pollers call this once per plan and interval; a
    /// sink that can read the plan once for all of them should (the default
    /// asks `latest` for each).
    async fn latest_of_plan(
        &self,
        executions: &[ExecutionInfo],
    ) -> Result<Vec<Option<StoredProgress>>, StatusError> {
        let mut out = Vec::with_capacity(executions.len());
        for execution in executions {
            out.push(self.latest(execution).await?);
        }
        Ok(out)
    }
}

#[derive(Clone, Debug, Default)]
struct PendingTarget {
    execution_id: Option<String>,
    progress: Option<u8>,
    message: Option<String>,
    /// When the runner reported it.
    progress_time: Option<DateTime<Utc>>,
    /// A completion: `progress_time` never goes back (the runner's clock
    /// may be ahead of the controller's).
    completed: bool,
    events: Vec<(EventType, &'static str, String)>,
}

type PlanKey = (String, String);

/// [`StatusSink`] writing `HibernatePlan` status and Events.
pub struct KubeStatusSink {
    client: kube::Client,
    recorder: Recorder,
    pending: std::sync::Mutex<HashMap<PlanKey, BTreeMap<String, PendingTarget>>>,
    notify: Arc<Notify>,
    write_lock: Mutex<()>,
}

impl KubeStatusSink {
    /// Creates the sink and starts its writer task (needs `get`/`update` on
    /// `hibernateplans/status` and `create` on Events).
    pub fn spawn(client: kube::Client, reporter: Reporter) -> Arc<Self> {
        let sink = Arc::new(Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            pending: std::sync::Mutex::new(HashMap::new()),
            notify: Arc::new(Notify::new()),
            write_lock: Mutex::new(()),
        });
        let weak = Arc::downgrade(&sink);
        let notify = sink.notify.clone();
        tokio::spawn(async move {
            loop {
                notify.notified().await;
                if weak.strong_count() == 0 {
                    return;
                }
                tokio::time::sleep(COALESCE_WINDOW).await;
                let Some(sink) = weak.upgrade() else { return };
                if let Err(e) = sink.write_pending().await {
                    tracing::warn!(error = %e, "runner status update failed");
                }
            }
        });
        sink
    }

    async fn write_pending(&self) -> Result<(), StatusError> {
        let _guard = self.write_lock.lock().await;
        let batch: Vec<(PlanKey, BTreeMap<String, PendingTarget>)> = self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .collect();
        let mut first_error = None;
        for ((namespace, plan), targets) in batch {
            if let Err(e) = self.write_plan(&namespace, &plan, &targets).await {
                tracing::warn!(error = %e, "runner status update failed");
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    async fn write_plan(
        &self,
        namespace: &str,
        plan: &str,
        targets: &BTreeMap<String, PendingTarget>,
    ) -> Result<(), StatusError> {
        let api: kube::Api<HibernatePlan> = kube::Api::namespaced(self.client.clone(), namespace);
        let err = |message: String| StatusError {
            namespace: namespace.to_string(),
            plan: plan.to_string(),
            message,
        };
        let mut attempt = 0;
        let written = loop {
            attempt += 1;
            let Some(mut current) = api.get_opt(plan).await.map_err(|e| err(e.to_string()))? else {
                return Err(err("the plan does not exist".into()));
            };
            apply(current.status.get_or_insert_with(Default::default), targets);
            match api
                .replace_status(plan, &PostParams::default(), &current)
                .await
            {
                Ok(p) => break p,
                Err(kube::Error::Api(status))
                    if status.code == 409 && attempt < MAX_CONFLICT_RETRIES =>
                {
                    continue;
                }
                Err(e) => return Err(err(e.to_string())),
            }
        };
        let reference = written.object_ref(&());
        for change in targets.values() {
            for (type_, reason, note) in &change.events {
                let event = Event {
                    type_: *type_,
                    reason: (*reason).to_string(),
                    note: Some(truncate(note, 1000)),
                    action: "RunnerReport".into(),
                    secondary: None,
                };
                if let Err(e) = self.recorder.publish(&event, &reference).await {
                    tracing::warn!(error = %e, namespace, plan, "publishing runner event failed");
                }
            }
        }
        Ok(())
    }
}

/// Applies pending changes to the plan status: the `executions[]` entry of
/// each target gets the latest progress, message and progress time (an
/// entry is added, `Running`, when the controller has not created one yet;
/// an entry without `executionId` gets the reporting one). Reports of
/// another execution than the entry's (an earlier attempt) and progress
/// older than the entry's are ignored.
fn apply(status: &mut HibernatePlanStatus, targets: &BTreeMap<String, PendingTarget>) {
    for (target, change) in targets {
        let index = match status.executions.iter().position(|e| &e.target == target) {
            Some(i) => i,
            None => {
                status.executions.push(ExecutionStatus {
                    target: target.clone(),
                    state: ExecutionState::Running,
                    ..ExecutionStatus::default()
                });
                status.executions.len() - 1
            }
        };
        let entry = &mut status.executions[index];
        if entry.execution_id.is_none() {
            entry.execution_id.clone_from(&change.execution_id);
        } else if change.execution_id.is_some() && entry.execution_id != change.execution_id {
            // A late report of an earlier attempt: the entry belongs to a
            // newer one now.
            continue;
        }
        if !change.completed
            && let (Some(before), Some(t)) = (entry.progress_time, change.progress_time)
            && t < before
        {
            // An older report arriving late (e.g. retried): keep the newer.
            continue;
        }
        if let Some(p) = change.progress {
            entry.progress = Some(p);
        }
        if let Some(m) = &change.message {
            entry.message = Some(m.clone());
        }
        if let Some(t) = change.progress_time {
            entry.progress_time = Some(match entry.progress_time {
                Some(before) if change.completed => before.max(t),
                _ => t,
            });
        }
    }
}

/// The final message of an execution: `completed successfully`, or its
/// error (`failed` without one).
pub fn completion_message(completion: &Completion) -> String {
    if completion.success {
        "completed successfully".to_string()
    } else {
        completion
            .error
            .clone()
            .unwrap_or_else(|| "failed".to_string())
    }
}

/// The message as stored in the plan status (at most 1000 bytes).
pub fn stored_message(message: &str) -> String {
    truncate(message, 1000)
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[async_trait]
impl StatusSink for KubeStatusSink {
    async fn record(
        &self,
        execution: &ExecutionInfo,
        change: StatusChange,
    ) -> Result<(), StatusError> {
        {
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            let target = pending
                .entry((execution.namespace.clone(), execution.plan.clone()))
                .or_default()
                .entry(execution.target.clone())
                .or_default();
            if target.execution_id.as_deref() != Some(execution.execution_id.as_str()) {
                // Another attempt of the target: its pending values are not
                // this one's (its Events are still published).
                target.progress = None;
                target.message = None;
                target.progress_time = None;
                target.completed = false;
                target.execution_id = Some(execution.execution_id.clone());
            }
            match change {
                StatusChange::Progress(p)
                    if target.completed
                        || target.progress_time.is_some_and(|t| p.timestamp < t) =>
                {
                    // Older than what is pending (or after the completion).
                }
                StatusChange::Progress(p) => {
                    target.progress = Some(p.progress.min(100));
                    target.message = Some(stored_message(&p.message));
                    target.progress_time = Some(p.timestamp);
                    target.completed = false;
                    // One progress event per coalesced write and target.
                    target
                        .events
                        .retain(|(_, reason, _)| *reason != "RunnerProgress");
                    target.events.push((
                        EventType::Normal,
                        "RunnerProgress",
                        format!(
                            "{} {}: {}% {}",
                            execution.target, p.phase, p.progress, p.message
                        ),
                    ));
                }
                StatusChange::Completed(c) => {
                    let message = completion_message(&c);
                    let (type_, reason) = if c.success {
                        target.progress = Some(100);
                        (EventType::Normal, "RunnerSucceeded")
                    } else {
                        (EventType::Warning, "RunnerFailed")
                    };
                    target.message = Some(stored_message(&message));
                    target.progress_time = Some(Utc::now());
                    target.completed = true;
                    let dropped = if c.dropped_logs > 0 {
                        format!(" ({} log lines dropped by the runner)", c.dropped_logs)
                    } else {
                        String::new()
                    };
                    target.events.push((
                        type_,
                        reason,
                        format!(
                            "{} execution {}: {message}{dropped}",
                            execution.target, c.execution_id
                        ),
                    ));
                }
            }
        }
        self.notify.notify_one();
        Ok(())
    }

    async fn flush(&self) -> Result<(), StatusError> {
        self.write_pending().await
    }

    async fn latest(
        &self,
        execution: &ExecutionInfo,
    ) -> Result<Option<StoredProgress>, StatusError> {
        let status = self.read_status(execution).await?;
        Ok(status.and_then(|s| stored_progress(&s, &execution.execution_id)))
    }

    /// One GET of the plan for all of `executions` (of that plan).
    async fn latest_of_plan(
        &self,
        executions: &[ExecutionInfo],
    ) -> Result<Vec<Option<StoredProgress>>, StatusError> {
        let Some(first) = executions.first() else {
            return Ok(Vec::new());
        };
        let status = self.read_status(first).await?;
        Ok(executions
            .iter()
            .map(|e| {
                status
                    .as_ref()
                    .and_then(|s| stored_progress(s, &e.execution_id))
            })
            .collect())
    }
}

impl KubeStatusSink {
    /// The status of `execution`'s plan (`None`: no plan, or no status).
    async fn read_status(
        &self,
        execution: &ExecutionInfo,
    ) -> Result<Option<HibernatePlanStatus>, StatusError> {
        let api: kube::Api<HibernatePlan> =
            kube::Api::namespaced(self.client.clone(), &execution.namespace);
        let plan = api
            .get_opt(&execution.plan)
            .await
            .map_err(|e| StatusError {
                namespace: execution.namespace.clone(),
                plan: execution.plan.clone(),
                message: format!(
                    "reading progress of execution {}: {e}",
                    execution.execution_id
                ),
            })?;
        Ok(plan.and_then(|p| p.status))
    }
}

impl Drop for KubeStatusSink {
    fn drop(&mut self) {
        // Wakes the writer task so it sees the sink is gone and exits.
        self.notify.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_update_the_target_entry_only() {
        let mut status = HibernatePlanStatus {
            executions: vec![
                ExecutionStatus {
                    target: "db".into(),
                    state: ExecutionState::Running,
                    ..Default::default()
                },
                ExecutionStatus {
                    target: "ec2".into(),
                    progress: Some(5),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let mut targets = BTreeMap::new();
        targets.insert(
            "db".to_string(),
            PendingTarget {
                progress: Some(60),
                message: Some("Scaling".into()),
                execution_id: Some("exec-db".into()),
                progress_time: Some(at(10)),
                ..PendingTarget::default()
            },
        );
        targets.insert(
            "new".to_string(),
            PendingTarget {
                progress: Some(1),
                execution_id: Some("exec-new".into()),
                ..PendingTarget::default()
            },
        );
        apply(&mut status, &targets);
        assert_eq!(status.executions[0].progress, Some(60));
        assert_eq!(status.executions[0].message.as_deref(), Some("Scaling"));
        assert_eq!(status.executions[1].progress, Some(5));
        assert_eq!(status.executions[2].target, "new");
        assert_eq!(status.executions[2].state, ExecutionState::Running);
        assert_eq!(status.executions[0].progress_time, Some(at(10)));
        assert_eq!(
            status.executions[0].execution_id.as_deref(),
            Some("exec-db")
        );
        assert_eq!(
            status.executions[2].execution_id.as_deref(),
            Some("exec-new")
        );
        assert_eq!(status.executions[1].progress_time, None);
    }

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
    }

    #[test]
    fn the_controller_owns_the_execution_id_and_completion_time_never_goes_back() {
        let mut status = HibernatePlanStatus {
            executions: vec![ExecutionStatus {
                target: "db".into(),
                execution_id: Some("exec-2".into()),
                progress_time: Some(at(30)),
                ..Default::default()
            }],
            ..Default::default()
        };
        let mut targets = BTreeMap::new();
        targets.insert(
            "db".to_string(),
            PendingTarget {
                execution_id: Some("exec-1".into()),
                progress: Some(100),
                progress_time: Some(at(20)),
                completed: true,
                ..PendingTarget::default()
            },
        );
        apply(&mut status, &targets);
        assert_eq!(status.executions[0].execution_id.as_deref(), Some("exec-2"));
        assert_eq!(
            (
                status.executions[0].progress,
                status.executions[0].progress_time
            ),
            (None, Some(at(30))),
            "a late report of attempt exec-1 does not touch exec-2's entry"
        );

        // Reports of the entry's own execution: completion time never goes
        // back; a progress report older than the entry's is ignored.
        let pending = targets.get_mut("db").unwrap();
        pending.execution_id = Some("exec-2".into());
        apply(&mut status, &targets);
        assert_eq!(
            (
                status.executions[0].progress,
                status.executions[0].progress_time
            ),
            (Some(100), Some(at(30)))
        );
        let pending = targets.get_mut("db").unwrap();
        pending.completed = false;
        pending.progress = Some(40);
        apply(&mut status, &targets);
        assert_eq!(
            (
                status.executions[0].progress,
                status.executions[0].progress_time
            ),
            (Some(100), Some(at(30))),
            "an older progress report does not overwrite a newer one"
        );
        let pending = targets.get_mut("db").unwrap();
        pending.progress_time = Some(at(40));
        apply(&mut status, &targets);
        assert_eq!(
            (
                status.executions[0].progress,
                status.executions[0].progress_time
            ),
            (Some(40), Some(at(40)))
        );
    }

    #[test]
    fn stored_progress_reads_the_entry_of_the_execution() {
        let mut status = HibernatePlanStatus {
            current_operation: Some(Operation::Wakeup),
            executions: vec![
                ExecutionStatus {
                    target: "ec2".into(),
                    execution_id: Some("exec-ec2".into()),
                    progress: Some(10),
                    progress_time: Some(at(1)),
                    ..Default::default()
                },
                ExecutionStatus {
                    target: "db".into(),
                    execution_id: Some("exec-db".into()),
                    state: ExecutionState::Running,
                    progress: Some(60),
                    message: Some("Starting instances".into()),
                    progress_time: Some(at(5)),
                    started_at: Some(at(0)),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let got = stored_progress(&status, "exec-db").unwrap();
        assert_eq!(
            got,
            StoredProgress {
                progress: Progress {
                    execution_id: "exec-db".into(),
                    phase: "WakeUp".into(),
                    progress: 60,
                    message: "Starting instances".into(),
                    timestamp: at(5),
                },
                finished: false,
            }
        );
        assert!(stored_progress(&status, "exec-other").is_none());

        status.current_operation = Some(Operation::Shutdown);
        status.executions[1].next_retry_at = Some(at(100));
        let retrying = stored_progress(&status, "exec-db").unwrap();
        assert_eq!(retrying.progress.phase, "Shutdown");
        assert!(retrying.finished, "a failed attempt awaiting retry is over");

        status.executions[1].next_retry_at = None;
        status.executions[1].state = ExecutionState::Completed;
        assert!(stored_progress(&status, "exec-db").unwrap().finished);

        // No runner report yet: 0 %, the start time.
        status.executions[1].progress = None;
        status.executions[1].message = None;
        status.executions[1].progress_time = None;
        status.executions[1].state = ExecutionState::Running;
        let fresh = stored_progress(&status, "exec-db").unwrap();
        assert_eq!(
            (fresh.progress.progress, fresh.progress.timestamp),
            (0, at(0))
        );
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate("abc", 5), "abc");
        assert_eq!(truncate("ééé", 3), "é…");
    }
}
