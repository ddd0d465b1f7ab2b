//! The pure heart of the controller: given a plan, its exceptions, its runner
//! Jobs, the restore data and the time, what should the status be, which Jobs
//! start, and when is the next reconcile due?
//!
//! Nothing here talks to the API server; [`decide`] is a function of its
//! input, so restarts, stale caches and every phase change are unit-tested.
//!
//! The ledger in `status` is the source of truth for the current cycle: a
//! cycle id is first written to status and only then are its Jobs created
//! (see `apply` in the controller), so a restarted controller finds the cycle
//! in status and the Jobs by their deterministic names.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use hibernator_core::executor::RetryPolicy;
use hibernator_core::params::ParameterCatalog;
use hibernator_core::schedule::{CompiledSchedule, ScheduleState};
use hibernator_core::types::{
    ExecutionState, HibernatePlan, HibernatePlanStatus, OnDelete, Operation, PlanPhase,
    ScheduleException,
};
use hibernator_core::validation::{validate_exception, validate_plan};

use super::controls::Controls;
use super::jobs::{JobObservation, JobRequest};
use super::ledger::{abort_pending, advance, close_cycle, fold_jobs, rerun_failed, start_cycle};
use super::status::{phase_name, targets_summary, update_conditions};

/// Restore data of a plan as the controller sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RestoreView {
    /// Targets whose record still holds entries (resources not yet restored).
    pub targets: BTreeSet<String>,
    /// Size of the restore ConfigMap's data in bytes.
    pub bytes: usize,
    /// Name of the restore ConfigMap.
    pub config_map: String,
}

/// Everything [`decide`] looks at.
#[derive(Clone, Copy, Debug)]
pub struct DecideInput<'a> {
    /// The plan (spec, metadata, current status).
    pub plan: &'a HibernatePlan,
    /// The ScheduleExceptions that refer to the plan.
    pub exceptions: &'a [ScheduleException],
    /// The plan's runner Jobs (every cycle).
    pub jobs: &'a [JobObservation],
    /// The plan's restore data.
    pub restore: &'a RestoreView,
    /// The current instant.
    pub now: DateTime<Utc>,
    /// Executor parameter catalog for validation.
    pub catalog: &'a ParameterCatalog,
    /// Backoff between attempts (`max_retries` is taken from the plan).
    pub backoff: &'a RetryPolicy,
}

/// A Kubernetes Event to publish about the plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanEvent {
    /// Warning (true) or Normal.
    pub warning: bool,
    /// PascalCase reason.
    pub reason: &'static str,
    /// Human message.
    pub note: String,
}

/// An attempt that finished in this reconcile (for metrics).
#[derive(Clone, Debug, PartialEq)]
pub struct FinishedAttempt {
    /// Target name.
    pub target: String,
    /// Executor type.
    pub executor: String,
    /// Operation.
    pub operation: Operation,
    /// Whether it succeeded.
    pub success: bool,
    /// How long the Job ran, when known.
    pub duration: Option<Duration>,
}

/// What the controller should do.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Decision {
    /// The new status (written only when it differs from the current one).
    pub status: HibernatePlanStatus,
    /// Runner Jobs to create (after the status is written).
    pub create: Vec<JobRequest>,
    /// Names of Jobs in `create` that the ledger already records as running
    /// but that were not observed: created before and gone, or never created
    /// because a create after the status write failed. Created again under
    /// the same deterministic name (`AlreadyExists` means the read was stale).
    pub missing: Vec<String>,
    /// Finished Jobs of old cycles to delete.
    pub delete_jobs: Vec<String>,
    /// Events to publish.
    pub events: Vec<PlanEvent>,
    /// Attempts that finished (for metrics).
    pub finished: Vec<FinishedAttempt>,
    /// When the next reconcile is due (`None`: only on change).
    pub requeue_at: Option<DateTime<Utc>>,
    /// Deletion: the plan may go (remove Jobs, restore ConfigMap, finalizer).
    pub cleanup: bool,
    /// The spec (or an exception) is invalid; the message names the field.
    pub invalid: Option<String>,
}

/// Settled state after the last closed cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Settled {
    Awake,
    Hibernated,
    Failed(Operation),
}

/// A fresh cycle id from `now`: `c20261122t004410z` (label-safe).
pub fn new_cycle_id(now: DateTime<Utc>) -> String {
    now.format("c%Y%m%dt%H%M%Sz").to_string()
}

/// Decides the next step for a plan. Pure: the same input gives the same output.
pub fn decide(input: &DecideInput<'_>) -> Decision {
    let plan = input.plan;
    let now = input.now;
    let generation = plan.metadata.generation;
    let previous = plan.status.clone().unwrap_or_default();
    let mut d = Decision {
        status: previous.clone(),
        ..Decision::default()
    };
    let deleting = plan.metadata.deletion_timestamp.is_some();

    // validate
    let diagnostics = validate_plan(plan, input.catalog);
    let exceptions: Vec<ScheduleException> = input
        .exceptions
        .iter()
        .filter(|e| validate_exception(e).is_valid())
        .cloned()
        .collect();
    let compiled = match diagnostics.errors.first() {
        Some(first) => Err(format!("{}: {}", first.field, first.message)),
        None => {
            CompiledSchedule::compile(&plan.spec.schedule, &exceptions).map_err(|e| e.to_string())
        }
    };
    let schedule = match compiled {
        Ok(schedule) => schedule,
        Err(message) => {
            invalid(&mut d, &previous, message, deleting, generation, now);
            return d;
        }
    };

    let controls = Controls::read(plan, now);
    for problem in &controls.problems {
        d.events.push(warning("InvalidAnnotation", problem.clone()));
    }
    let scheduled = schedule.state_at(now);
    d.status.next_transition = schedule.next_transition(now).map(|t| t.at);
    d.status.override_state = controls.override_.map(|o| o.as_str().to_string());
    d.status.override_until = controls.override_.and_then(|o| o.until);
    d.status.suspended_until = controls.suspend_until;
    if controls.override_ != override_of(&previous) && controls.override_.is_some() {
        let note = match d.status.override_until {
            Some(until) => format!(
                "override {} until {}",
                d.status.override_state.as_deref().unwrap_or(""),
                until.to_rfc3339()
            ),
            None => format!(
                "override {} until the annotation is removed",
                d.status.override_state.as_deref().unwrap_or("")
            ),
        };
        d.events.push(normal("OverrideActive", note));
    }
    let desired = if deleting {
        ScheduleState::Awake
    } else {
        controls.override_.map_or(scheduled, |o| o.state)
    };
    let max_retries = plan.spec.behavior.retries;

    // 1. fold the Jobs of the open cycle into the ledger
    let was_open = is_open(&d.status);
    if was_open {
        fold_jobs(&mut d, input, max_retries);
    }

    // 2. advance the open cycle
    let op = d.status.current_operation;
    let hold_for_delete = deleting && op == Some(Operation::Shutdown);
    if is_open(&d.status) {
        if hold_for_delete {
            abort_pending(&mut d.status, "plan is being deleted");
        }
        let hold = hold_for_delete || (controls.suspended() && !deleting);
        advance(&mut d, input, hold);
    } else if was_open {
        close_cycle(&mut d, now);
    }

    // 3. start a cycle (or finish a deletion) when none is open
    if !is_open(&d.status) {
        let settled = settled(&d.status);
        let new_token =
            controls.retry_token.is_some() && controls.retry_token != previous.last_retry_token;
        d.status.last_retry_token.clone_from(&controls.retry_token);
        if deleting {
            let has_data = has_restore_data(input);
            match (plan.spec.on_delete, settled) {
                (OnDelete::WakeUp, Settled::Failed(Operation::Wakeup)) if new_token => {
                    rerun_failed(&mut d, now);
                    advance(&mut d, input, false);
                }
                (OnDelete::WakeUp, Settled::Failed(Operation::Wakeup)) => {
                    if previous.phase != PlanPhase::Error || is_open(&previous) {
                        d.events.push(warning(
                            "DeletionBlocked",
                            "wake-up before deletion failed; set hibernator.dev/retry-now to retry or spec.onDelete: Abandon to delete anyway".to_string(),
                        ));
                    }
                }
                (OnDelete::WakeUp, Settled::Hibernated | Settled::Failed(Operation::Shutdown))
                    if has_data =>
                {
                    start_cycle(&mut d, input, Operation::Wakeup);
                }
                _ => d.cleanup = true,
            }
        } else if !controls.suspended() {
            match settled {
                Settled::Awake if desired == ScheduleState::Hibernated => {
                    start_cycle(&mut d, input, Operation::Shutdown);
                }
                Settled::Hibernated if desired == ScheduleState::Awake => {
                    start_cycle(&mut d, input, Operation::Wakeup);
                }
                Settled::Failed(_) if new_token => {
                    rerun_failed(&mut d, now);
                    advance(&mut d, input, false);
                }
                Settled::Failed(failed) if target_state(failed) != desired => {
                    start_cycle(&mut d, input, opposite(failed));
                }
                _ => {}
            }
        }
    }

    // 4. phase, summary, conditions, events, requeue
    let open = is_open(&d.status);
    let running = d
        .status
        .executions
        .iter()
        .any(|e| e.state == ExecutionState::Running && e.next_retry_at.is_none());
    d.status.phase = if open {
        if controls.suspended() && !deleting && !running {
            PlanPhase::Suspended
        } else {
            match d.status.current_operation {
                Some(Operation::Wakeup) => PlanPhase::WakingUp,
                _ => PlanPhase::Hibernating,
            }
        }
    } else if controls.suspended() && !deleting {
        PlanPhase::Suspended
    } else {
        match settled(&d.status) {
            Settled::Awake => PlanPhase::Active,
            Settled::Hibernated => PlanPhase::Hibernated,
            Settled::Failed(_) => PlanPhase::Error,
        }
    };
    d.status.observed_generation = generation;
    d.status.targets_summary = targets_summary(d.status.current_operation, &d.status.executions);
    update_conditions(&mut d.status, None, generation, now);
    if d.status.phase != previous.phase {
        d.events.push(PlanEvent {
            warning: d.status.phase == PlanPhase::Error,
            reason: "PhaseChanged",
            note: format!(
                "{} -> {}{}",
                phase_name(previous.phase),
                phase_name(d.status.phase),
                d.status
                    .targets_summary
                    .as_deref()
                    .map(|s| format!(" ({s})"))
                    .unwrap_or_default()
            ),
        });
    }
    let hold = controls.suspended() && !deleting;
    let retry_due = if hold {
        None
    } else {
        d.status
            .executions
            .iter()
            .filter_map(|e| e.next_retry_at)
            .min()
    };
    d.requeue_at = [d.status.next_transition, controls.next_expiry(), retry_due]
        .into_iter()
        .flatten()
        .min();
    d
}

fn invalid(
    d: &mut Decision,
    previous: &HibernatePlanStatus,
    message: String,
    deleting: bool,
    generation: Option<i64>,
    now: DateTime<Utc>,
) {
    d.status.phase = PlanPhase::Error;
    d.status.observed_generation = generation;
    update_conditions(&mut d.status, Some(&message), generation, now);
    let was_invalid = previous.conditions.iter().any(|c| {
        c.type_ == super::status::DEGRADED && c.reason == "InvalidSpec" && c.message == message
    });
    if !was_invalid {
        d.events.push(warning("InvalidSpec", message.clone()));
    }
    d.invalid = Some(message);
    d.cleanup = deleting;
}

pub(super) fn normal(reason: &'static str, note: String) -> PlanEvent {
    PlanEvent {
        warning: false,
        reason,
        note,
    }
}

pub(super) fn warning(reason: &'static str, note: String) -> PlanEvent {
    PlanEvent {
        warning: true,
        reason,
        note,
    }
}

fn override_of(status: &HibernatePlanStatus) -> Option<super::controls::Override> {
    let state = match status.override_state.as_deref()? {
        "hibernate" => ScheduleState::Hibernated,
        _ => ScheduleState::Awake,
    };
    Some(super::controls::Override {
        state,
        until: status.override_until,
    })
}

fn target_state(op: Operation) -> ScheduleState {
    match op {
        Operation::Shutdown => ScheduleState::Hibernated,
        Operation::Wakeup => ScheduleState::Awake,
    }
}

fn opposite(op: Operation) -> Operation {
    match op {
        Operation::Shutdown => Operation::Wakeup,
        Operation::Wakeup => Operation::Shutdown,
    }
}

/// A cycle is open while it has a non-terminal target.
pub(super) fn is_open(status: &HibernatePlanStatus) -> bool {
    status.current_cycle_id.is_some()
        && status.current_operation.is_some()
        && status.executions.iter().any(|e| !e.state.is_terminal())
}

fn settled(status: &HibernatePlanStatus) -> Settled {
    let Some(op) = status.current_operation else {
        return Settled::Awake;
    };
    if status.current_cycle_id.is_none() {
        return Settled::Awake;
    }
    if status
        .executions
        .iter()
        .all(|e| e.state == ExecutionState::Completed)
    {
        match op {
            Operation::Shutdown => Settled::Hibernated,
            Operation::Wakeup => Settled::Awake,
        }
    } else {
        Settled::Failed(op)
    }
}

pub(super) fn has_restore_data(input: &DecideInput<'_>) -> bool {
    input
        .plan
        .spec
        .targets
        .iter()
        .any(|t| input.restore.targets.contains(&t.name))
}

#[cfg(test)]
#[path = "decide_tests/mod.rs"]
mod tests;
