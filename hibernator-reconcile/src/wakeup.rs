//! Ready-by wake-up bookkeeping (`status.wakeUp`): the lead in force, the
//! window end the next wake-up aims at, learned wake-up durations and how
//! early or late each scheduled wake-up was ready.
//!
//! Every field changes only at schedule transitions and cycle starts and
//! ends, so keeping it costs no extra status writes in steady state.

use chrono::{DateTime, Utc};
use hibernator_core::readyby::{LeadSchedule, LeadSource, WakeLead};
use hibernator_core::schedule::{ScheduleState, Transition};
use hibernator_core::types::{
    ExecutionState, HibernatePlanSpec, HibernatePlanStatus, MAX_WAKE_SAMPLES, Operation, Readiness,
    TargetDurations, WakeUpStatus,
};

use crate::model::{Decision, PlanEvent};

/// Brings `status.wakeUp` up to date at `now`: the lead, the end of the
/// current off window, and when the next wake-up starts.
pub(crate) fn refresh(
    status: &mut HibernatePlanStatus,
    spec: &HibernatePlanSpec,
    lead: &WakeLead,
    schedule: &LeadSchedule<'_>,
    now: DateTime<Utc>,
) {
    let w = status.wake_up.get_or_insert_with(WakeUpStatus::default);
    w.durations
        .retain(|d| spec.targets.iter().any(|t| t.name == d.target));
    w.lead_seconds = lead.lead.as_secs();
    w.lead_source = Some(lead.source.as_str().to_string());
    if let Some(end) = schedule.window_end(now) {
        w.window_end = Some(end);
    }
    let next = next_transition(schedule, Some(w), now);
    w.next_wake_up_start = match next {
        Some(t) if t.to == ScheduleState::Awake => Some(t.at),
        Some(t) => schedule.next_transition(t.at).map(|t| t.at),
        None => None,
    };
}

/// The state the schedule asks for at `now` with the lead: the lead
/// schedule's state, except that an off run the plan already woke up for
/// (a ready-by wake-up started, aimed at this run's end) stays awake even if
/// the lead has since become shorter. Without this, a wake-up that finished
/// faster than expected would hibernate the plan again until the new, later
/// wake-up start.
pub(crate) fn scheduled_state(
    schedule: &LeadSchedule<'_>,
    previous: Option<&WakeUpStatus>,
    now: DateTime<Utc>,
) -> ScheduleState {
    if woken_run_end(schedule, previous, now).is_some() {
        ScheduleState::Awake
    } else {
        schedule.state_at(now)
    }
}

/// The end of the off run at `now` when the plan already woke up for it
/// and the lead schedule would otherwise still hold it off.
fn woken_run_end(
    schedule: &LeadSchedule<'_>,
    wake: Option<&WakeUpStatus>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    if schedule.state_at(now) == ScheduleState::Awake {
        return None;
    }
    let woke_for = wake.and_then(|w| {
        w.cycle_window_end
            .or_else(|| w.readiness.first().map(|r| r.window_end))
    })?;
    schedule.window_end(now).filter(|end| *end == woke_for)
}

/// The next change of [`scheduled_state`] after `now`.
pub(crate) fn next_transition(
    schedule: &LeadSchedule<'_>,
    wake: Option<&WakeUpStatus>,
    now: DateTime<Utc>,
) -> Option<Transition> {
    match woken_run_end(schedule, wake, now) {
        Some(end) => schedule.next_transition(end),
        None => schedule.next_transition(now),
    }
}

/// A wake-up cycle started. When the schedule started it (no override, not
/// a deletion) and the plan hibernated for the window that ends at
/// `status.wakeUp.windowEnd`, remember that end to measure readiness.
pub(crate) fn on_wakeup_start(
    status: &mut HibernatePlanStatus,
    hibernated_at: Option<DateTime<Utc>>,
    scheduled: bool,
) {
    let Some(w) = status.wake_up.as_mut() else {
        return;
    };
    w.cycle_window_end = match (scheduled, w.window_end, hibernated_at) {
        (true, Some(end), Some(start)) if end > start => Some(end),
        _ => None,
    };
}

/// The open cycle just ended (`ledger::close_cycle` calls this before the
/// cycle is written to history, however the cycle ended).
/// After a wake-up: learns each target's duration (first dispatch to
/// completion, retries included) when the cycle succeeded at its first run,
/// and records readiness against the window end; with ready-by, a wake-up
/// that was not ready by the window end is a Warning Event.
pub(crate) fn on_close(d: &mut Decision) {
    let status = &mut d.status;
    let ready_by = status
        .wake_up
        .as_ref()
        .and_then(|w| w.lead_source.as_deref())
        .is_some_and(|source| source != LeadSource::Off.as_str());
    if status.current_operation != Some(Operation::Wakeup) {
        return;
    }
    let Some(cycle) = status.current_cycle_id.clone() else {
        return;
    };
    let rerun = status.history.iter().any(|h| h.cycle_id == cycle);
    let success = status
        .executions
        .iter()
        .all(|e| e.state == ExecutionState::Completed);
    let ready_at = success
        .then(|| status.executions.iter().filter_map(|e| e.finished_at).max())
        .flatten();
    let samples: Vec<(String, u64)> = if success && !rerun {
        status
            .executions
            .iter()
            .filter_map(|e| {
                let took = e.finished_at? - e.started_at?;
                Some((e.target.clone(), u64::try_from(took.num_seconds()).ok()?))
            })
            .collect()
    } else {
        Vec::new()
    };
    let w = status.wake_up.get_or_insert_with(WakeUpStatus::default);
    for (target, seconds) in samples {
        let index = match w.durations.iter().position(|d| d.target == target) {
            Some(i) => i,
            None => {
                w.durations.push(TargetDurations {
                    target,
                    seconds: Vec::new(),
                });
                w.durations.len() - 1
            }
        };
        let learned = &mut w.durations[index].seconds;
        learned.insert(0, seconds);
        learned.truncate(MAX_WAKE_SAMPLES);
    }
    let Some(window_end) = w.cycle_window_end else {
        return;
    };
    let early = ready_at.map(|at| (window_end - at).num_seconds());
    w.readiness.retain(|r| r.cycle_id != cycle);
    w.readiness.insert(
        0,
        Readiness {
            cycle_id: cycle.clone(),
            window_end,
            ready_at,
            early_seconds: early,
        },
    );
    w.readiness.truncate(MAX_WAKE_SAMPLES);
    if success {
        w.cycle_window_end = None;
    }
    if let Some(early) = early.filter(|e| ready_by && *e < 0) {
        d.events.push(PlanEvent::warning(
            "NotReadyByWindowEnd",
            format!(
                "wake-up cycle {cycle} was ready {} after the window end {}; the lead grows with the measured durations (spec.wakeUp.maxLead caps it)",
                hibernator_core::duration::format_duration(std::time::Duration::from_secs(
                    early.unsigned_abs()
                )),
                window_end.to_rfc3339()
            ),
        ));
    }
}
