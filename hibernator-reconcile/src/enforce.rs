//! Drift re-enforcement while a plan is hibernated (`spec.behavior.enforce`).
//!
//! While the plan is `Hibernated` (its shutdown cycle closed and complete, not
//! suspended, not being deleted), every `interval` after the last check —
//! the first one `interval` after the shutdown cycle finished — one enforce
//! Job starts per eligible target: a target whose executor supports
//! enforcement, that the mode covers (unset: `rds` only; `enabled: true`:
//! all; `enabled: false`: none) and that still has restore data. The Jobs run
//! [`run_enforce`](hibernator_core::executor::run_enforce), which acts only
//! on resources of the restore record and never writes it.
//!
//! Finished Jobs are folded into `status.enforcement` (the `wokeUpCount`
//! counter, the last result, per-target summaries), a Warning `ReEnforced`
//! Event is published when resources were put back to sleep (none when
//! nothing drifted) and `EnforceFailed` when a check failed. When the plan
//! leaves `Hibernated` (a wake-up starts, it is suspended or deleted), the
//! running check is dropped and its Jobs deleted: a wake-up never waits for
//! enforcement.

use chrono::{DateTime, Utc};
use hibernator_core::types::{
    Enforce, EnforceResult, EnforcementStatus, HibernatePlan, Operation, PlanPhase,
};
use hibernator_core::wellknown::{
    ANNOTATION_TARGET, LABEL_ENFORCE_CHECK, LABEL_OPERATION, LABEL_TARGET, MAX_LABEL_LEN, dns_label,
};
use k8s_openapi::api::batch::v1::Job;

use crate::model::{DecideInput, Decision, JobPhase, PlanEvent};
use crate::termination::TerminationMessage;

/// One enforce Job to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnforceJobRequest {
    /// Target name.
    pub target: String,
    /// The shutdown cycle whose resources are kept asleep (`HIBERNATOR_CYCLE_ID`).
    pub cycle_id: String,
    /// Id of the check.
    pub check_id: String,
}

impl EnforceJobRequest {
    /// The Job name (= execution id) of this request for `plan`.
    pub fn name(&self, plan: &str) -> String {
        enforce_job_name(plan, &self.target, &self.check_id)
    }
}

/// The Job name of a target's enforce Job in a check: deterministic, a DNS
/// label of at most 63 characters (hash suffix when cut).
pub fn enforce_job_name(plan: &str, target: &str, check_id: &str) -> String {
    dns_label(&format!("{plan}-{target}-ef-{check_id}"), MAX_LABEL_LEN)
}

/// A check id from `now`: `e20261122t004410z` (label-safe).
pub fn new_check_id(now: DateTime<Utc>) -> String {
    now.format("e%Y%m%dt%H%M%Sz").to_string()
}

/// What the controller knows about one enforce Job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnforceJobObservation {
    /// Job name.
    pub name: String,
    /// Target name.
    pub target: String,
    /// Check id (label `hibernator.dev/enforce-check`).
    pub check_id: String,
    /// Phase.
    pub phase: JobPhase,
    /// The runner's termination message, when known.
    pub result: Option<TerminationMessage>,
    /// The Job's failure reason when it failed without a termination message.
    pub failure: Option<String>,
}

/// Reads an enforce Job (`hibernator.dev/operation: enforce`); `None` for
/// any other Job. `termination` is the runner container's termination
/// message when known.
pub fn observe_enforce_job(job: &Job, termination: Option<&str>) -> Option<EnforceJobObservation> {
    let labels = job.metadata.labels.as_ref()?;
    if labels.get(LABEL_OPERATION).map(String::as_str)
        != Some(hibernator_core::types::ENFORCE_OPERATION)
    {
        return None;
    }
    let target = job
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ANNOTATION_TARGET))
        .or_else(|| labels.get(LABEL_TARGET))?
        .clone();
    let check_id = labels.get(LABEL_ENFORCE_CHECK)?.clone();
    let status = job.status.as_ref();
    let conditions = status.and_then(|s| s.conditions.as_deref()).unwrap_or(&[]);
    let condition = |kind: &str| {
        conditions
            .iter()
            .find(|c| c.type_ == kind && c.status == "True")
    };
    let succeeded =
        status.and_then(|s| s.succeeded).unwrap_or(0) > 0 || condition("Complete").is_some();
    let failed_condition = condition("Failed");
    let failed = !succeeded
        && (status.and_then(|s| s.failed).unwrap_or(0) > 0 || failed_condition.is_some());
    let phase = if succeeded {
        JobPhase::Succeeded
    } else if failed {
        JobPhase::Failed
    } else {
        JobPhase::Running
    };
    let failure = failed.then(|| {
        failed_condition.and_then(|c| c.reason.clone()).map_or_else(
            || "the enforce Job failed".to_string(),
            |r| format!("the enforce Job failed: {r}"),
        )
    });
    Some(EnforceJobObservation {
        name: job.metadata.name.clone().unwrap_or_default(),
        target,
        check_id,
        phase,
        result: termination.and_then(TerminationMessage::parse),
        failure,
    })
}

/// A finished enforce Job (for metrics).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnforceFinished {
    /// Target name.
    pub target: String,
    /// Executor type.
    pub executor: String,
    /// `NoDrift`, `ReHibernated` or `Failed`.
    pub result: EnforceResult,
    /// Resources found awake and put back to sleep.
    pub rehibernated: u32,
}

/// The shutdown cycle's finish time (the anchor of the first check), from
/// the newest history entry when it is that cycle.
fn hibernated_since(d: &Decision, cycle: &str) -> Option<DateTime<Utc>> {
    d.status
        .history
        .first()
        .filter(|h| h.cycle_id == cycle && h.operation == Operation::Shutdown)
        .and_then(|h| h.finished_at)
}

/// The targets a check covers now.
fn eligible(input: &DecideInput<'_>) -> Vec<String> {
    let plan = input.plan;
    let mode = Enforce::mode_of(plan.spec.behavior.enforce.as_ref());
    plan.spec
        .targets
        .iter()
        .filter(|t| {
            mode.covers(&t.kind)
                && input.catalog.supports_enforce(&t.kind)
                && input.restore.targets.contains(&t.name)
        })
        .map(|t| t.name.clone())
        .collect()
}

fn executor_of(plan: &HibernatePlan, target: &str) -> String {
    plan.spec
        .targets
        .iter()
        .find(|t| t.name == target)
        .map(|t| t.kind.clone())
        .unwrap_or_default()
}

/// Schedules and folds enforcement checks; called by
/// [`decide`](crate::decide()) once the phase is known. Adds enforce Jobs to
/// create, Jobs to delete, Events, metrics and the next check to
/// `requeue_at`.
pub fn enforce(d: &mut Decision, input: &DecideInput<'_>) {
    let plan = input.plan;
    let plan_name = plan.metadata.name.as_deref().unwrap_or_default();
    let now = input.now;
    let hibernated =
        d.status.phase == PlanPhase::Hibernated && plan.metadata.deletion_timestamp.is_none();
    let cycle = d.status.current_cycle_id.clone().unwrap_or_default();
    let targets = if hibernated {
        eligible(input)
    } else {
        Vec::new()
    };
    let mut st = match d.status.enforcement.clone() {
        Some(st) => st,
        None if targets.is_empty() => {
            delete_stray_jobs(d, input, None);
            return;
        }
        None => EnforcementStatus::default(),
    };

    if !st.pending_targets.is_empty() {
        if hibernated && st.cycle_id.as_deref() == Some(cycle.as_str()) {
            fold(d, input, &mut st, plan_name);
        } else {
            // A wake-up (or suspension, deletion) started: drop the check.
            let check = st.check_id.clone().unwrap_or_default();
            for target in std::mem::take(&mut st.pending_targets) {
                d.delete_jobs
                    .push(enforce_job_name(plan_name, &target, &check));
            }
            st.message = Some(format!("check {check} stopped: the plan left Hibernated"));
        }
    }

    if st.pending_targets.is_empty() {
        if targets.is_empty() {
            st.next_check_at = None;
        } else {
            let same_cycle = st.cycle_id.as_deref() == Some(cycle.as_str());
            let interval = chrono::Duration::from_std(Enforce::interval_of(
                plan.spec.behavior.enforce.as_ref(),
            ))
            .unwrap_or_else(|_| chrono::Duration::hours(1));
            let base = same_cycle
                .then_some(st.last_check_at)
                .flatten()
                .or_else(|| hibernated_since(d, &cycle))
                .unwrap_or(now);
            if !same_cycle {
                st.cycle_id = Some(cycle.clone());
                st.last_check_at = None;
            }
            let next = base + interval;
            if now >= next {
                let check_id = new_check_id(now);
                for target in &targets {
                    d.enforce_create.push(EnforceJobRequest {
                        target: target.clone(),
                        cycle_id: cycle.clone(),
                        check_id: check_id.clone(),
                    });
                }
                st.check_id = Some(check_id);
                st.pending_targets.clone_from(&targets);
                st.results.clear();
                st.check_rehibernated = 0;
                st.last_check_at = Some(now);
                st.next_check_at = None;
            } else {
                st.next_check_at = Some(next);
                d.requeue_at = Some(d.requeue_at.map_or(next, |at| at.min(next)));
            }
        }
    } else {
        st.next_check_at = None;
        // Jobs recorded as pending that were not observed: created again
        // under the same name (`AlreadyExists` means the read was stale).
        let check = st.check_id.clone().unwrap_or_default();
        for target in &st.pending_targets {
            let name = enforce_job_name(plan_name, target, &check);
            if !input.enforce_jobs.iter().any(|o| o.name == name) {
                d.enforce_create.push(EnforceJobRequest {
                    target: target.clone(),
                    cycle_id: cycle.clone(),
                    check_id: check.clone(),
                });
            }
        }
    }
    delete_stray_jobs(d, input, Some(&st));
    d.status.enforcement = Some(st);
}

/// Folds the finished Jobs of the running check; closes the check when
/// every target reported.
fn fold(d: &mut Decision, input: &DecideInput<'_>, st: &mut EnforcementStatus, plan_name: &str) {
    let check = st.check_id.clone().unwrap_or_default();
    let mut still = Vec::new();
    for target in std::mem::take(&mut st.pending_targets) {
        let name = enforce_job_name(plan_name, &target, &check);
        let Some(o) = input
            .enforce_jobs
            .iter()
            .find(|o| o.name == name && o.phase != JobPhase::Running)
        else {
            still.push(target);
            continue;
        };
        let executor = executor_of(input.plan, &target);
        let (result, rehibernated, summary) = match (&o.result, o.phase) {
            (Some(m), JobPhase::Succeeded) if m.success => {
                let n = m.rehibernated.unwrap_or(0);
                let result = if n > 0 {
                    EnforceResult::ReHibernated
                } else {
                    EnforceResult::NoDrift
                };
                (
                    result,
                    n,
                    format!("{target}: {} checked, {n} re-hibernated", m.resources),
                )
            }
            (Some(m), _) if !m.message.is_empty() => (
                EnforceResult::Failed,
                0,
                format!("{target}: failed: {}", m.message),
            ),
            _ => (
                EnforceResult::Failed,
                0,
                format!(
                    "{target}: failed: {}",
                    o.failure
                        .clone()
                        .unwrap_or_else(|| "no result from the runner".to_string())
                ),
            ),
        };
        st.woke_up_count += u64::from(rehibernated);
        st.check_rehibernated += u64::from(rehibernated);
        st.results.push(summary);
        d.enforced.push(EnforceFinished {
            target,
            executor,
            result,
            rehibernated,
        });
    }
    st.pending_targets = still;
    if !st.pending_targets.is_empty() {
        return;
    }
    // The check is complete: its results are in `st.results`.
    let failed: Vec<&String> = st
        .results
        .iter()
        .filter(|r| r.contains(": failed: "))
        .collect();
    let rehibernated = st.check_rehibernated;
    let result = if !failed.is_empty() {
        EnforceResult::Failed
    } else if rehibernated > 0 {
        EnforceResult::ReHibernated
    } else {
        EnforceResult::NoDrift
    };
    let message = format!(
        "check {check}: {rehibernated} resources found awake and put back to sleep; {}",
        st.results.join("; ")
    );
    if rehibernated > 0 {
        d.events.push(PlanEvent::warning(
            "ReEnforced",
            format!(
                "{rehibernated} resources woke up while the plan was hibernated and were put back to sleep ({} woken up in total)",
                st.woke_up_count
            ),
        ));
    }
    if !failed.is_empty() {
        d.events.push(PlanEvent::warning(
            "EnforceFailed",
            failed
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("; "),
        ));
    }
    st.last_result = Some(result);
    st.message = Some(message);
}

/// While the plan is not hibernated no enforce Job may act: every running
/// one is stopped (again on each reconcile until it is gone), and a wake-up
/// creates no Job while one is still observed, so a check that was already
/// putting a resource back to sleep can never race the wake-up that starts
/// it. The controller deletes these Jobs in the foreground: they stay
/// observed until their runner Pods have terminated. The Jobs the wake-up
/// holds back are created again by a later reconcile (the ledger records
/// them as running; see `Decision::missing`), at the latest `HOLD_RECHECK`
/// later.
pub(crate) fn hold_while_enforcing(d: &mut Decision, input: &DecideInput<'_>) {
    let hibernated =
        d.status.phase == PlanPhase::Hibernated && input.plan.metadata.deletion_timestamp.is_none();
    if hibernated {
        return;
    }
    let running: Vec<&str> = input
        .enforce_jobs
        .iter()
        .filter(|o| o.phase == JobPhase::Running)
        .map(|o| o.name.as_str())
        .collect();
    if running.is_empty() {
        return;
    }
    for name in &running {
        d.delete_jobs.retain(|j| j != name);
        d.stop_jobs.push((*name).to_string());
    }
    if d.status.current_operation == Some(Operation::Wakeup) && !d.create.is_empty() {
        d.create.clear();
        d.missing.clear();
        let recheck = input.now + HOLD_RECHECK;
        d.requeue_at = Some(d.requeue_at.map_or(recheck, |at| at.min(recheck)));
    }
}

/// How soon a wake-up held by a running enforce Job looks again (the Job's
/// deletion also triggers a reconcile through the Job watch).
pub const HOLD_RECHECK: chrono::Duration = chrono::Duration::seconds(5);

/// Deletes finished enforce Jobs of earlier checks (those of the last check
/// stay for `kubectl logs`), and every enforce Job when there is no
/// enforcement status.
fn delete_stray_jobs(d: &mut Decision, input: &DecideInput<'_>, st: Option<&EnforcementStatus>) {
    let current = st.and_then(|s| s.check_id.as_deref());
    for o in input.enforce_jobs {
        let keep = Some(o.check_id.as_str()) == current;
        if !keep && o.phase != JobPhase::Running && !d.delete_jobs.contains(&o.name) {
            d.delete_jobs.push(o.name.clone());
        }
    }
}

#[cfg(test)]
#[path = "enforce_tests.rs"]
mod tests;
