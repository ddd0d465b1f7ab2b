//! Notifications, the pure half: which notification events a plan's status
//! shows ([`derive`]), which of them a `HibernateNotification` sends
//! ([`filter`]), the bodies sinks receive ([`render`]), the webhook
//! signature ([`sign`]), spec validation ([`validate`]), the delivery
//! records that send each event once ([`records`]) and redaction of
//! secrets in messages ([`redact`]). The operator's controller delivers.
//!
//! Events are derived **level-based** from `status` (the current cycle,
//! the history, the executions, `status.enforcement`, `status.wakeUp`),
//! not from the edge-triggered Kubernetes Events of a single reconcile: a
//! controller that restarts sees the same events again and the delivery
//! records (keyed by [`Notice::key`]) make it send each one once.

pub mod filter;
pub mod records;
pub mod redact;
pub mod render;
pub mod sign;
pub mod validate;

use chrono::{DateTime, Utc};
use hibernator_core::types::{
    EnforceResult, ExecutionState, HibernatePlanSpec, HibernatePlanStatus, NotificationEvent,
    Operation, Severity,
};
use serde::Serialize;

#[cfg(test)]
mod tests;

/// One target of a finished cycle.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TargetSummary {
    /// Target name.
    pub target: String,
    /// Executor type.
    pub executor: String,
    /// `Completed`, `Failed`, `Aborted` (or `Pending`/`Running`).
    pub state: String,
    /// Seconds from the first attempt's start to the end, when known.
    pub duration_seconds: Option<i64>,
    /// Resources of the target recorded hibernated (shutdown; from
    /// `status.accounting`), when known.
    pub resources: Option<u32>,
    /// The target's error (failed targets).
    pub error: Option<String>,
}

/// A notification event derived from a plan's status.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Notice {
    /// Event type.
    pub event: NotificationEvent,
    /// Severity.
    pub severity: Severity,
    /// Namespace of the plan.
    pub namespace: String,
    /// Name of the plan.
    pub plan: String,
    /// The cycle (for `ReEnforced`: the shutdown cycle being enforced).
    pub cycle: String,
    /// `shutdown` or `wakeup`, when the event belongs to a cycle.
    pub operation: Option<Operation>,
    /// The target (`TargetFailed`, `RetriesExhausted`).
    pub target: Option<String>,
    /// The failed attempt (`TargetFailed`), or the enforcement check id
    /// (`ReEnforced`).
    pub detail: Option<String>,
    /// When the event happened (for quiet hours and the horizon).
    pub at: DateTime<Utc>,
    /// One-line human summary.
    pub message: String,
    /// Per-target summary (`CycleFinished`).
    pub targets: Vec<TargetSummary>,
}

impl Notice {
    /// The dedupe key: `<plan>/<cycle>/<event>[/<target>][/<detail>]`
    /// (the plan's namespace is the notification's).
    pub fn key(&self) -> String {
        let mut key = format!("{}/{}/{}", self.plan, self.cycle, self.event.as_str());
        for part in [&self.target, &self.detail].into_iter().flatten() {
            key.push('/');
            key.push_str(part);
        }
        key
    }

    /// A short title, e.g. `dev/app: shutdown cycle failed`.
    pub fn title(&self) -> String {
        let op = self.operation.map_or("", Operation::as_str);
        let what = match self.event {
            NotificationEvent::CycleStarted => format!("{op} cycle started"),
            NotificationEvent::CycleFinished if self.severity == Severity::Error => {
                format!("{op} cycle failed")
            }
            NotificationEvent::CycleFinished => format!("{op} cycle completed"),
            NotificationEvent::TargetFailed => format!(
                "{op} of {} failed",
                self.target.as_deref().unwrap_or_default()
            ),
            NotificationEvent::RetriesExhausted => format!(
                "{op} of {}: retries exhausted",
                self.target.as_deref().unwrap_or_default()
            ),
            NotificationEvent::ReEnforced => "drift re-enforced".to_string(),
            NotificationEvent::NotReadyByWindowEnd => "wake-up not ready by window end".to_string(),
        };
        format!("{}/{}: {what}", self.namespace, self.plan)
    }
}

/// What [`derive`] reads of a plan.
#[derive(Clone, Copy, Debug)]
pub struct PlanView<'a> {
    /// Namespace of the plan.
    pub namespace: &'a str,
    /// Name of the plan.
    pub name: &'a str,
    /// The plan's spec (retries, `wakeUp.readyBy`).
    pub spec: &'a HibernatePlanSpec,
    /// The plan's status as just decided.
    pub status: &'a HibernatePlanStatus,
}

/// Every notification event `plan`'s status shows, oldest first. `now`
/// dates events the status does not date (a failed attempt whose retry is
/// scheduled).
pub fn derive(plan: PlanView<'_>, now: DateTime<Utc>) -> Vec<Notice> {
    let status = plan.status;
    let base = |event, severity, cycle: &str, operation, at, message: String| Notice {
        event,
        severity,
        namespace: plan.namespace.to_string(),
        plan: plan.name.to_string(),
        cycle: cycle.to_string(),
        operation,
        target: None,
        detail: None,
        at,
        message,
        targets: Vec::new(),
    };
    let mut out = Vec::new();
    // finished cycles (history is newest first)
    for record in status.history.iter().rev() {
        if let Some(started) = record.started_at {
            out.push(base(
                NotificationEvent::CycleStarted,
                Severity::Info,
                &record.cycle_id,
                Some(record.operation),
                started,
                format!("{} cycle {} started", record.operation, record.cycle_id),
            ));
        }
        let Some(finished) = record.finished_at else {
            continue;
        };
        let mut notice = base(
            NotificationEvent::CycleFinished,
            if record.success {
                Severity::Info
            } else {
                Severity::Error
            },
            &record.cycle_id,
            Some(record.operation),
            finished,
            format!(
                "{} cycle {} {}: {} completed, {} failed, {} aborted{}",
                record.operation,
                record.cycle_id,
                if record.success {
                    "completed"
                } else {
                    "failed"
                },
                record.completed,
                record.failed,
                record.aborted,
                record
                    .message
                    .as_deref()
                    .map(|m| format!(" (first error: {m})"))
                    .unwrap_or_default()
            ),
        );
        if status.current_cycle_id.as_deref() == Some(record.cycle_id.as_str()) {
            notice.targets = summaries(status);
        }
        out.push(notice);
    }
    // the open cycle
    if let (Some(cycle), Some(op), Some(started)) = (
        status.current_cycle_id.as_deref(),
        status.current_operation,
        status.cycle_started_at,
    ) && !status.history.iter().any(|h| h.cycle_id == cycle)
    {
        out.push(base(
            NotificationEvent::CycleStarted,
            Severity::Info,
            cycle,
            Some(op),
            started,
            format!("{op} cycle {cycle} started"),
        ));
    }
    // failed targets of the current cycle
    if let (Some(cycle), Some(op)) = (status.current_cycle_id.as_deref(), status.current_operation)
    {
        let retries = plan.spec.behavior.retries;
        for e in &status.executions {
            let retry_scheduled = e.state == ExecutionState::Running && e.next_retry_at.is_some();
            if e.state != ExecutionState::Failed && !retry_scheduled {
                continue;
            }
            let error = e.message.clone().unwrap_or_else(|| "failed".to_string());
            let mut failed = base(
                NotificationEvent::TargetFailed,
                if retry_scheduled {
                    Severity::Warning
                } else {
                    Severity::Error
                },
                cycle,
                Some(op),
                if retry_scheduled {
                    now
                } else {
                    e.finished_at.unwrap_or(now)
                },
                if retry_scheduled {
                    format!("{op} of {}: {error}; a retry is scheduled", e.target)
                } else {
                    format!(
                        "{op} of {} failed after {} attempt(s): {error}",
                        e.target, e.attempts
                    )
                },
            );
            failed.target = Some(e.target.clone());
            failed.detail = Some(e.attempts.to_string());
            if e.state == ExecutionState::Failed && retries > 0 && e.attempts > retries {
                let mut exhausted = failed.clone();
                exhausted.event = NotificationEvent::RetriesExhausted;
                exhausted.detail = None;
                exhausted.message = format!(
                    "{op} of {} failed after {} attempts ({retries} retries): {error}",
                    e.target, e.attempts
                );
                out.push(failed);
                out.push(exhausted);
            } else {
                out.push(failed);
            }
        }
    }
    // drift re-enforced while hibernated
    if let Some(enforcement) = &status.enforcement
        && enforcement.last_result == Some(EnforceResult::ReHibernated)
        && enforcement.check_rehibernated > 0
        && let (Some(check), Some(at)) = (&enforcement.check_id, enforcement.last_check_at)
    {
        let mut notice = base(
            NotificationEvent::ReEnforced,
            Severity::Warning,
            enforcement.cycle_id.as_deref().unwrap_or("none"),
            Some(Operation::Shutdown),
            at,
            format!(
                "{} resources woke up while the plan was hibernated and were put back to sleep ({} in total)",
                enforcement.check_rehibernated, enforcement.woke_up_count
            ),
        );
        notice.detail = Some(check.clone());
        out.push(notice);
    }
    // late wake-ups
    let ready_by = plan.spec.wake_up.as_ref().is_some_and(|w| w.ready_by);
    if let Some(wake) = &status.wake_up
        && ready_by
    {
        for sample in wake.readiness.iter().rev() {
            let Some(early) = sample.early_seconds.filter(|e| *e < 0) else {
                continue;
            };
            out.push(base(
                NotificationEvent::NotReadyByWindowEnd,
                Severity::Warning,
                &sample.cycle_id,
                Some(Operation::Wakeup),
                sample.ready_at.unwrap_or(sample.window_end),
                format!(
                    "wake-up cycle {} was ready {}s after the window end {}",
                    sample.cycle_id,
                    early.unsigned_abs(),
                    sample.window_end.to_rfc3339()
                ),
            ));
        }
    }
    out.sort_by_key(|n| n.at);
    out
}

fn summaries(status: &HibernatePlanStatus) -> Vec<TargetSummary> {
    let resources = |target: &str| {
        status.accounting.as_ref().and_then(|a| {
            a.hibernated
                .iter()
                .find(|h| h.target == target)
                .map(|h| h.resources)
        })
    };
    status
        .executions
        .iter()
        .map(|e| TargetSummary {
            target: e.target.clone(),
            executor: e.executor.clone(),
            state: format!("{:?}", e.state),
            duration_seconds: match (e.started_at, e.finished_at) {
                (Some(s), Some(f)) => Some((f - s).num_seconds()),
                _ => None,
            },
            resources: if status.current_operation == Some(Operation::Shutdown) {
                resources(&e.target)
            } else {
                None
            },
            error: (e.state == ExecutionState::Failed)
                .then(|| e.message.clone())
                .flatten(),
        })
        .collect()
}
