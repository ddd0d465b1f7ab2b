//! Calendars in `decide`: days change the desired state; a calendar that cannot
//! be used is reported once and left out.

use hibernator_core::calendar::CalendarDays;
use hibernator_core::schedule::ScheduleError;
use hibernator_core::types::{CalendarEffect, ObjectRef, PlanPhase};

use super::*;

fn with_calendar(resolved: Result<CalendarDays, ScheduleError>) -> Sim {
    let mut plan = plan_yaml("{type: Parallel}", &["a"], "");
    plan.spec.schedule.calendars = vec![ObjectRef {
        name: "company".into(),
        namespace: None,
    }];
    // Tuesday 2026-11-24 07:00 UTC: awake by the windows.
    let mut sim = Sim::new(plan, morning());
    sim.calendars = vec![resolved];
    sim
}

fn tuesday_off() -> CalendarDays {
    CalendarDays {
        id: "ns/company".into(),
        effect: CalendarEffect::Hibernate,
        days: std::sync::Arc::new(
            [(at("2026-11-24T00:00:00Z").date_naive(), "holiday".into())].into(),
        ),
        coverage: None,
    }
}

fn condition(d: &Decision) -> Option<(String, String)> {
    d.status
        .conditions
        .iter()
        .find(|c| c.type_ == crate::calendars::CALENDARS_READY)
        .map(|c| (c.status.clone(), c.message.clone()))
}

#[test]
fn a_calendar_day_hibernates_the_plan_until_the_next_wake() {
    let mut sim = with_calendar(Ok(tuesday_off()));
    let d = sim.step();
    assert_eq!(d.status.phase, PlanPhase::Hibernating, "{:?}", d.status);
    assert!(!d.create.is_empty(), "shutdown Jobs");
    // The holiday runs into Tuesday night's window: awake again Wednesday 06:00.
    assert_eq!(d.status.next_transition, Some(at("2026-11-25T06:00:00Z")));
    assert_eq!(
        condition(&d),
        Some(("True".to_string(), "1 calendar(s) resolved".to_string()))
    );
}

#[test]
fn an_unusable_calendar_is_reported_once_and_the_plan_follows_its_windows() {
    let mut sim = with_calendar(Err(ScheduleError::new(
        "spec.schedule.calendars[0]",
        "HolidayCalendar ns/company does not exist",
    )));
    let d = sim.step();
    assert_eq!(d.status.phase, PlanPhase::Active);
    assert_eq!(d.status.next_transition, Some(at("2026-11-24T20:00:00Z")));
    let (status, message) = condition(&d).unwrap();
    assert_eq!(status, "False");
    assert!(message.contains("spec.schedule.calendars[0]"), "{message}");
    let warnings = |d: &Decision| {
        d.events
            .iter()
            .filter(|e| e.reason == "CalendarUnavailable")
            .count()
    };
    assert_eq!(warnings(&d), 1);
    // The same problem again: no second Event, status unchanged.
    let again = sim.step();
    assert_eq!(warnings(&again), 0);
    assert_eq!(again.status, d.status);
    // Fixed: the condition turns True and the day applies.
    sim.calendars = vec![Ok(tuesday_off())];
    let fixed = sim.step();
    assert_eq!(condition(&fixed).unwrap().0, "True");
    assert_eq!(fixed.status.phase, PlanPhase::Hibernating);
}

#[test]
fn a_plan_without_calendars_has_no_calendar_condition() {
    let mut sim = Sim::new(plan_yaml("{type: Parallel}", &["a"], ""), morning());
    assert_eq!(condition(&sim.step()), None);
}
