//! The plan's holiday calendars as `decide` sees them: resolved days, or why not.
//!
//! A calendar that cannot be used (missing, or a source that does not resolve)
//! does not stop the plan: its weekly windows and exceptions still apply, the
//! condition `CalendarsReady` turns False naming the field, and a Warning
//! `CalendarUnavailable` is published once per new problem.

use chrono::{DateTime, Utc};
use hibernator_core::calendar::CalendarDays;
use hibernator_core::schedule::ScheduleError;
use hibernator_core::types::{HibernatePlan, Schedule};

use crate::model::{Decision, PlanEvent};
use crate::status::set_condition;

/// Condition type: every calendar of `spec.schedule.calendars` is resolved.
pub const CALENDARS_READY: &str = "CalendarsReady";

/// The schedule to compile (only the usable calendars listed) and their days.
pub(crate) struct Usable {
    pub(crate) schedule: Schedule,
    pub(crate) days: Vec<CalendarDays>,
}

/// Splits the plan's calendars into the usable ones and problems, records the
/// condition and the Event in `d`.
pub(crate) fn usable(
    d: &mut Decision,
    plan: &HibernatePlan,
    resolved: &[Result<CalendarDays, ScheduleError>],
    now: DateTime<Utc>,
) -> Usable {
    let refs = &plan.spec.schedule.calendars;
    let (schedule, days, problems) =
        hibernator_core::calendar::usable(&plan.spec.schedule, resolved.iter().cloned());
    let problems: Vec<String> = problems.iter().map(ToString::to_string).collect();
    let conditions = &mut d.status.conditions;
    if refs.is_empty() {
        conditions.retain(|c| c.type_ != CALENDARS_READY);
    } else {
        let generation = plan.metadata.generation;
        let message = if problems.is_empty() {
            format!("{} calendar(s) resolved", refs.len())
        } else {
            format!(
                "{}; the plan follows its windows and exceptions without {}",
                problems.join("; "),
                if problems.len() == 1 { "it" } else { "them" }
            )
        };
        let before = conditions
            .iter()
            .find(|c| c.type_ == CALENDARS_READY)
            .map(|c| c.message.clone());
        let ok = problems.is_empty();
        let reason = if ok {
            "Resolved"
        } else {
            "CalendarUnavailable"
        };
        set_condition(
            conditions,
            CALENDARS_READY,
            ok,
            reason,
            message.clone(),
            generation,
            now,
        );
        if !ok && before.as_deref() != Some(message.as_str()) {
            d.events
                .push(PlanEvent::warning("CalendarUnavailable", message));
        }
    }
    Usable { schedule, days }
}
