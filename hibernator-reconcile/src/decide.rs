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

use chrono::{DateTime, Utc};
use hibernator_core::readyby::{LeadSchedule, wake_lead};
use hibernator_core::schedule::{CompiledSchedule, ScheduleState};
use hibernator_core::types::{
    ExecutionState, HibernatePlanStatus, OnDelete, Operation, PlanPhase, ScheduleException,
};
use hibernator_core::validation::{validate_exception, validate_plan};

use crate::controls::Controls;
use crate::ledger::{abort_pending, advance, close_cycle, fold_jobs, rerun_failed, start_cycle};
use crate::model::{DecideInput, Decision, PlanEvent, has_restore_data, is_open};
use crate::status::{phase_name, targets_summary, update_conditions};
use crate::wakeup;

/// Settled state after the last closed cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Settled {
    Awake,
    Hibernated,
    Failed(Operation),
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
    let calendars = crate::calendars::usable(&mut d, plan, input.calendars, now);
    let compiled = match diagnostics.errors.first() {
        Some(first) => Err(format!("{}: {}", first.field, first.message)),
        None => CompiledSchedule::compile_with_calendars(
            &calendars.schedule,
            &exceptions,
            &calendars.days,
        )
        .map_err(|e| e.to_string()),
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
        d.events
            .push(PlanEvent::warning("InvalidAnnotation", problem.clone()));
    }
    let lead = wake_lead(&plan.spec, previous.wake_up.as_ref());
    let effective = LeadSchedule::new(&schedule, lead.delta());
    let scheduled = wakeup::scheduled_state(&effective, previous.wake_up.as_ref(), now);
    wakeup::refresh(&mut d.status, &plan.spec, &lead, &effective, now);
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
        d.events.push(PlanEvent::normal("OverrideActive", note));
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
                        d.events.push(PlanEvent::warning(
                            "DeletionBlocked",
                            "wake-up before deletion failed; set hibernator.dev/retry-now to retry or spec.onDelete: Abandon to delete anyway".to_string(),
                        ));
                    }
                }
                (OnDelete::WakeUp, Settled::Hibernated | Settled::Failed(Operation::Shutdown))
                    if has_data =>
                {
                    start_cycle(&mut d, input, Operation::Wakeup);
                    wakeup::on_wakeup_start(&mut d.status, None, false);
                }
                _ => d.cleanup = true,
            }
        } else if !controls.suspended() {
            match settled {
                Settled::Awake if desired == ScheduleState::Hibernated => {
                    start_cycle(&mut d, input, Operation::Shutdown);
                }
                Settled::Hibernated if desired == ScheduleState::Awake => {
                    let hibernated_at = d.status.cycle_started_at;
                    start_cycle(&mut d, input, Operation::Wakeup);
                    let scheduled = controls.override_.is_none();
                    wakeup::on_wakeup_start(&mut d.status, hibernated_at, scheduled);
                }
                Settled::Failed(_) if new_token => {
                    rerun_failed(&mut d, now);
                    advance(&mut d, input, false);
                }
                Settled::Failed(failed) if target_state(failed) != desired => {
                    let hibernated_at = d.status.cycle_started_at;
                    start_cycle(&mut d, input, opposite(failed));
                    if failed == Operation::Shutdown {
                        let scheduled = controls.override_.is_none();
                        wakeup::on_wakeup_start(&mut d.status, hibernated_at, scheduled);
                    }
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
    // A wake-up that just ended may have changed the lead.
    let lead = wake_lead(&plan.spec, d.status.wake_up.as_ref());
    let effective = LeadSchedule::new(&schedule, lead.delta());
    d.status.next_transition =
        wakeup::next_transition(&effective, d.status.wake_up.as_ref(), now).map(|t| t.at);
    wakeup::refresh(&mut d.status, &plan.spec, &lead, &effective, now);
    d.status.observed_generation = generation;
    d.status.targets_summary = targets_summary(d.status.current_operation, &d.status.executions);
    update_conditions(&mut d.status, None, generation, now);
    crate::accounting::account_plan(&mut d.status, &previous, input, &schedule);
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
    crate::enforce::enforce(&mut d, input);
    crate::enforce::hold_while_enforcing(&mut d, input);
    let re_enforced: u64 = d.enforced.iter().map(|e| u64::from(e.rehibernated)).sum();
    crate::accounting::account_re_enforcements(
        &mut d.status,
        schedule.timezone(),
        now,
        re_enforced,
    );
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
        c.type_ == crate::status::DEGRADED && c.reason == "InvalidSpec" && c.message == message
    });
    if !was_invalid {
        d.events
            .push(PlanEvent::warning("InvalidSpec", message.clone()));
    }
    d.invalid = Some(message);
    d.cleanup = deleting;
}

fn override_of(status: &HibernatePlanStatus) -> Option<crate::controls::Override> {
    let state = match status.override_state.as_deref()? {
        "hibernate" => ScheduleState::Hibernated,
        _ => ScheduleState::Awake,
    };
    Some(crate::controls::Override {
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

#[cfg(test)]
#[path = "decide_tests/mod.rs"]
mod tests;
