//! Ledger mechanics of one cycle: folding runner Jobs into
//! `status.executions`, retries with backoff, dispatching ready targets,
//! starting, re-running and closing cycles. Called by [`decide`](crate::decide::decide).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use hibernator_core::executor::{Jitter, RetryPolicy};
use hibernator_core::planner::{Dispatcher, ExecutionPlan};
use hibernator_core::types::{
    ExecutionState, ExecutionStatus, HibernatePlan, HibernatePlanStatus, Operation,
};

use hibernator_core::wellknown::short_hash;

use crate::jobs::job_name;
use crate::model::{
    DecideInput, Decision, FinishedAttempt, JobObservation, JobPhase, JobRequest, PlanEvent,
    has_restore_data, is_open, new_cycle_id,
};
use crate::status::cycle_record;

/// Backoff before the retry after failed attempt `attempt` (1-based), with
/// equal jitter derived from the execution id so it is stable across reconciles.
pub(super) fn backoff(policy: &RetryPolicy, attempt: u32, execution_id: &str) -> Duration {
    let ceiling = policy.ceiling(attempt.saturating_sub(1));
    let hash = u64::from_str_radix(&short_hash(execution_id), 16).unwrap_or(0);
    let fraction = (hash % 1000) as f64 / 1000.0;
    match policy.jitter {
        Jitter::None => ceiling,
        Jitter::Full => ceiling.mul_f64(fraction),
        Jitter::Equal => ceiling.mul_f64(0.5 + fraction / 2.0),
    }
}

pub(super) fn plan_name(plan: &HibernatePlan) -> &str {
    plan.metadata.name.as_deref().unwrap_or_default()
}

pub(super) fn fold_jobs(d: &mut Decision, input: &DecideInput<'_>, max_retries: u32) {
    let (Some(cycle), Some(op)) = (
        d.status.current_cycle_id.clone(),
        d.status.current_operation,
    ) else {
        return;
    };
    let mut latest: BTreeMap<&str, &JobObservation> = BTreeMap::new();
    for job in input
        .jobs
        .iter()
        .filter(|j| j.cycle_id == cycle && j.operation == op)
    {
        let slot = latest.entry(job.target.as_str()).or_insert(job);
        if job.attempt > slot.attempt {
            *slot = job;
        }
    }
    let namespace = input.plan.metadata.namespace.clone().unwrap_or_default();
    for e in &mut d.status.executions {
        if e.state.is_terminal() {
            continue;
        }
        let Some(job) = latest.get(e.target.as_str()).copied() else {
            if e.state == ExecutionState::Running && e.next_retry_at.is_none() && e.attempts > 0 {
                // status was written, the Job is missing: (re)create it
                let request = JobRequest {
                    target: e.target.clone(),
                    operation: op,
                    cycle_id: cycle.clone(),
                    attempt: e.attempts,
                };
                d.missing.push(request.name(plan_name(input.plan)));
                d.create.push(request);
            }
            continue;
        };
        if job.attempt > e.attempts {
            // a Job newer than the ledger (status write lost): adopt it
            e.attempts = job.attempt;
            e.state = ExecutionState::Running;
            e.next_retry_at = None;
            e.started_at
                .get_or_insert(job.started_at.unwrap_or(input.now));
        } else if job.attempt < e.attempts {
            if e.state == ExecutionState::Running && e.next_retry_at.is_none() {
                // only an older attempt's Job exists: the recorded one is missing
                let request = JobRequest {
                    target: e.target.clone(),
                    operation: op,
                    cycle_id: cycle.clone(),
                    attempt: e.attempts,
                };
                d.missing.push(request.name(plan_name(input.plan)));
                d.create.push(request);
            }
            continue;
        } else if e.state == ExecutionState::Pending || e.next_retry_at.is_some() {
            continue;
        }
        e.job_ref = Some(format!("{namespace}/{}", job.name));
        e.execution_id = Some(job.name.clone());
        e.logs_ref = Some(format!("job/{}", job.name));
        let duration = match (job.started_at, job.finished_at) {
            (Some(s), Some(f)) => (f - s).to_std().ok(),
            _ => None,
        };
        match job.phase {
            JobPhase::Running => e.state = ExecutionState::Running,
            JobPhase::Succeeded => {
                e.state = ExecutionState::Completed;
                e.finished_at = Some(job.finished_at.unwrap_or(input.now));
                e.message.clone_from(&job.message);
                e.progress = Some(100);
                d.finished.push(finished(e, op, true, duration));
            }
            JobPhase::Failed => {
                let text = job
                    .message
                    .clone()
                    .unwrap_or_else(|| "runner failed".to_string());
                d.finished.push(finished(e, op, false, duration));
                if job.retryable && job.attempt <= max_retries {
                    let at = job.finished_at.unwrap_or(input.now)
                        + backoff(input.backoff, job.attempt, &job.name);
                    e.next_retry_at = Some(at);
                    e.message = Some(format!("attempt {} failed: {text}", job.attempt));
                    d.events.push(PlanEvent::warning(
                        "RetryScheduled",
                        format!(
                            "{} {} attempt {} failed ({text}); retry {} of {max_retries} at {}",
                            op,
                            e.target,
                            job.attempt,
                            job.attempt,
                            at.to_rfc3339()
                        ),
                    ));
                } else {
                    e.state = ExecutionState::Failed;
                    e.finished_at = Some(job.finished_at.unwrap_or(input.now));
                    e.message = Some(text.clone());
                    d.events.push(PlanEvent::warning(
                        "TargetFailed",
                        format!(
                            "{op} of {} failed after {} attempt(s): {text}",
                            e.target, job.attempt
                        ),
                    ));
                }
            }
        }
    }
}

pub(super) fn finished(
    e: &ExecutionStatus,
    operation: Operation,
    success: bool,
    duration: Option<Duration>,
) -> FinishedAttempt {
    FinishedAttempt {
        target: e.target.clone(),
        executor: e.executor.clone(),
        operation,
        success,
        duration,
    }
}

pub(super) fn abort_pending(status: &mut HibernatePlanStatus, why: &str) {
    for e in &mut status.executions {
        if e.state == ExecutionState::Pending
            || (e.state == ExecutionState::Running && e.next_retry_at.is_some())
        {
            e.state = ExecutionState::Aborted;
            e.next_retry_at = None;
            e.message = Some(format!("aborted: {why}"));
        }
    }
}

/// Dispatches due retries and ready targets; closes the cycle when every target is terminal.
pub(super) fn advance(d: &mut Decision, input: &DecideInput<'_>, hold: bool) {
    let (Some(cycle), Some(op)) = (
        d.status.current_cycle_id.clone(),
        d.status.current_operation,
    ) else {
        return;
    };
    let spec = &input.plan.spec;
    let Ok(plan) = ExecutionPlan::build(spec, op) else {
        return;
    };
    let namespace = input.plan.metadata.namespace.clone().unwrap_or_default();
    let name = plan_name(input.plan).to_string();
    // the ledger in spec order (targets added mid-cycle start Pending, removed ones drop out)
    let mut by_name: BTreeMap<String, ExecutionStatus> = std::mem::take(&mut d.status.executions)
        .into_iter()
        .map(|e| (e.target.clone(), e))
        .collect();
    let mut executions: Vec<ExecutionStatus> = spec
        .targets
        .iter()
        .map(|t| {
            by_name.remove(&t.name).unwrap_or_else(|| ExecutionStatus {
                target: t.name.clone(),
                executor: t.kind.clone(),
                restore_config_map_ref: Some(input.restore.config_map.clone()),
                ..ExecutionStatus::default()
            })
        })
        .collect();
    let start = |e: &mut ExecutionStatus, d: &mut Decision| {
        e.attempts += 1;
        e.state = ExecutionState::Running;
        e.next_retry_at = None;
        // A new attempt: the previous one's runner progress is not its own.
        e.progress = None;
        e.message = None;
        e.progress_time = None;
        e.started_at.get_or_insert(input.now);
        let job = job_name(&name, &e.target, op, &cycle, e.attempts);
        e.job_ref = Some(format!("{namespace}/{job}"));
        e.execution_id = Some(job.clone());
        e.logs_ref = Some(format!("job/{job}"));
        e.restore_ref = Some(format!("{}#{}", input.restore.config_map, e.target));
        d.create.push(JobRequest {
            target: e.target.clone(),
            operation: op,
            cycle_id: cycle.clone(),
            attempt: e.attempts,
        });
    };
    if !hold {
        for e in &mut executions {
            if e.state == ExecutionState::Running
                && e.next_retry_at.is_some_and(|at| at <= input.now)
            {
                d.events.push(PlanEvent::normal(
                    "Retrying",
                    format!("{op} of {}: attempt {}", e.target, e.attempts + 1),
                ));
                start(e, d);
            }
        }
    }
    let states: Vec<ExecutionState> = executions.iter().map(|e| e.state).collect();
    let mut dispatcher = Dispatcher::from_states(plan, spec.behavior.mode, &states);
    let mut ready = if hold {
        Vec::new()
    } else {
        dispatcher.next_ready()
    };
    while !ready.is_empty() {
        let mut skipped = false;
        for index in ready {
            let Some(e) = executions.get_mut(index) else {
                continue;
            };
            if op == Operation::Wakeup && !input.restore.targets.contains(&e.target) {
                // wake-up only runs where restore data exists
                e.state = ExecutionState::Completed;
                e.started_at.get_or_insert(input.now);
                e.finished_at = Some(input.now);
                e.message = Some(
                    "skipped: no restore data for this target (nothing was hibernated)".to_string(),
                );
                dispatcher.complete(index, true);
                skipped = true;
                continue;
            }
            start(e, d);
        }
        ready = if skipped {
            dispatcher.next_ready()
        } else {
            Vec::new()
        };
    }
    for (e, state) in executions.iter_mut().zip(dispatcher.states()) {
        if *state == ExecutionState::Aborted && e.state != ExecutionState::Aborted {
            e.state = ExecutionState::Aborted;
            e.message = Some(match spec.behavior.mode {
                hibernator_core::types::BehaviorMode::Strict => {
                    "aborted: another target failed (Strict)".to_string()
                }
                hibernator_core::types::BehaviorMode::BestEffort => {
                    "aborted: a dependency failed".to_string()
                }
            });
        }
    }
    d.status.executions = executions;
    if !is_open(&d.status) {
        close_cycle(d, input.now);
    }
}

pub(super) fn close_cycle(d: &mut Decision, now: DateTime<Utc>) {
    crate::wakeup::on_close(d);
    let Some(record) = cycle_record(&d.status, now) else {
        return;
    };
    let note = format!(
        "{} cycle {}: {} completed, {} failed, {} aborted",
        record.operation, record.cycle_id, record.completed, record.failed, record.aborted
    );
    d.events.push(PlanEvent {
        warning: !record.success,
        reason: if record.success {
            "CycleCompleted"
        } else {
            "CycleFailed"
        },
        note,
    });
    if d.status.history.first().map(|h| (&h.cycle_id, h.operation))
        == Some((&record.cycle_id, record.operation))
    {
        d.status.history.remove(0);
    }
    d.status.push_history(record);
}

/// A cycle id not used by the current cycle, the history or an existing Job
/// (two cycles may start within the same second, e.g. an override flip).
pub(super) fn unique_cycle_id(d: &Decision, input: &DecideInput<'_>) -> String {
    let base = new_cycle_id(input.now);
    let used = |id: &str| {
        d.status.current_cycle_id.as_deref() == Some(id)
            || d.status.history.iter().any(|h| h.cycle_id == id)
            || input.jobs.iter().any(|j| j.cycle_id == id)
    };
    if !used(&base) {
        return base;
    }
    (2u32..)
        .map(|n| format!("{base}-{n}"))
        .find(|id| !used(id))
        .unwrap_or(base)
}

pub(super) fn start_cycle(d: &mut Decision, input: &DecideInput<'_>, op: Operation) {
    let cycle = unique_cycle_id(d, input);
    let keep: BTreeSet<&str> = [d.status.current_cycle_id.as_deref(), Some(cycle.as_str())]
        .into_iter()
        .flatten()
        .collect();
    d.delete_jobs = input
        .jobs
        .iter()
        .filter(|j| j.phase != JobPhase::Running && !keep.contains(j.cycle_id.as_str()))
        .map(|j| j.name.clone())
        .collect();
    d.status.current_cycle_id = Some(cycle.clone());
    d.status.current_operation = Some(op);
    d.status.cycle_started_at = Some(input.now);
    d.status.executions = input
        .plan
        .spec
        .targets
        .iter()
        .map(|t| ExecutionStatus {
            target: t.name.clone(),
            executor: t.kind.clone(),
            restore_config_map_ref: Some(input.restore.config_map.clone()),
            ..ExecutionStatus::default()
        })
        .collect();
    if op == Operation::Wakeup && !has_restore_data(input) {
        d.events.push(PlanEvent::warning(
            "NoRestoreData",
            "wake-up found no restore data: nothing to wake up".to_string(),
        ));
    }
    d.events.push(PlanEvent::normal(
        "CycleStarted",
        format!("{op} cycle {cycle} started"),
    ));
    advance(d, input, false);
}

pub(super) fn rerun_failed(d: &mut Decision, now: DateTime<Utc>) {
    let mut count = 0;
    for e in &mut d.status.executions {
        if matches!(e.state, ExecutionState::Failed | ExecutionState::Aborted) {
            e.state = ExecutionState::Pending;
            e.finished_at = None;
            e.next_retry_at = None;
            e.message = None;
            count += 1;
        }
    }
    d.status.cycle_started_at = Some(now);
    d.events.push(PlanEvent::normal(
        "RetryRequested",
        format!("retry-now: re-running {count} failed or aborted target(s)"),
    ));
}
