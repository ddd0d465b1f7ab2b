//! Where progress and completion reports go: the [`StatusSink`] trait and its
//! Kubernetes implementation, which updates the plan's `status.executions[]`
//! entry of the target (`progress`, `message`) and emits Events, coalescing
//! bursts into one write per plan every [`COALESCE_WINDOW`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use hibernator_core::types::{ExecutionState, ExecutionStatus, HibernatePlan, HibernatePlanStatus};
use kube::Resource;
use kube::api::PostParams;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use tokio::sync::{Mutex, Notify};

use crate::auth::ExecutionInfo;
use crate::progress::Progress;

/// How long a burst of reports is collected before one status write.
pub const COALESCE_WINDOW: Duration = Duration::from_millis(250);
/// Attempts of a read–modify–replace of the plan status on conflicts.
pub const MAX_CONFLICT_RETRIES: usize = 8;

/// End of an execution, transport-neutral.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completion {
    /// Execution id.
    pub execution_id: String,
    /// Whether the operation succeeded.
    pub success: bool,
    /// Error text when it failed.
    pub error: Option<String>,
    /// How long the execution ran.
    pub duration: Option<Duration>,
    /// Log lines the runner dropped.
    pub dropped_logs: u64,
}

/// A change to reflect in the plan status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatusChange {
    /// New progress.
    Progress(Progress),
    /// The execution ended.
    Completed(Completion),
}

/// A status write failed.
#[derive(Debug, thiserror::Error)]
#[error("updating status of HibernatePlan {namespace}/{plan}: {message}")]
pub struct StatusError {
    /// Plan namespace.
    pub namespace: String,
    /// Plan name.
    pub plan: String,
    /// What failed.
    pub message: String,
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
}

#[derive(Clone, Debug, Default)]
struct PendingTarget {
    progress: Option<u8>,
    message: Option<String>,
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
/// each target gets the latest progress and message (an entry is added,
/// `Running`, when the controller has not created one yet).
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
        if let Some(p) = change.progress {
            entry.progress = Some(p);
        }
        if let Some(m) = &change.message {
            entry.message = Some(m.clone());
        }
    }
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
            match change {
                StatusChange::Progress(p) => {
                    target.progress = Some(p.progress.min(100));
                    target.message = Some(truncate(&p.message, 1000));
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
                    let (type_, reason, message) = if c.success {
                        target.progress = Some(100);
                        (
                            EventType::Normal,
                            "RunnerSucceeded",
                            "completed successfully".to_string(),
                        )
                    } else {
                        let error = c.error.clone().unwrap_or_else(|| "failed".into());
                        (EventType::Warning, "RunnerFailed", error)
                    };
                    target.message = Some(truncate(&message, 1000));
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
                events: Vec::new(),
            },
        );
        targets.insert(
            "new".to_string(),
            PendingTarget {
                progress: Some(1),
                message: None,
                events: Vec::new(),
            },
        );
        apply(&mut status, &targets);
        assert_eq!(status.executions[0].progress, Some(60));
        assert_eq!(status.executions[0].message.as_deref(), Some("Scaling"));
        assert_eq!(status.executions[1].progress, Some(5));
        assert_eq!(status.executions[2].target, "new");
        assert_eq!(status.executions[2].state, ExecutionState::Running);
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate("abc", 5), "abc");
        assert_eq!(truncate("ééé", 3), "é…");
    }
}
