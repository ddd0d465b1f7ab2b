//! Unit tests of windows, ties and exceptions; shared helpers for the other test modules.

use chrono::{DateTime, NaiveDateTime, Utc};
use chrono_tz::Tz;

use super::window::resolve_local;
use super::{CompiledSchedule, ScheduleState, Transition};
use crate::types::{
    ExceptionType, ObjectRef, OffHourWindow, Schedule, ScheduleException, ScheduleExceptionSpec,
};

use ScheduleState::{Awake, Hibernated};

pub(super) fn win(start: &str, end: &str, days: &[&str]) -> OffHourWindow {
    OffHourWindow {
        start: start.into(),
        end: end.into(),
        days_of_week: days.iter().map(|d| d.to_string()).collect(),
    }
}

pub(super) const WEEKDAYS: &[&str] = &["MON", "TUE", "WED", "THU", "FRI"];

pub(super) fn sched(tz: &str, windows: Vec<OffHourWindow>) -> Schedule {
    Schedule {
        timezone: tz.into(),
        off_hours: windows,
        calendars: Vec::new(),
    }
}

/// An exception valid on `[from, until)`, both local times in `tz`.
pub(super) fn exc(
    tz: &str,
    kind: ExceptionType,
    from: &str,
    until: &str,
    lead: Option<&str>,
    windows: Vec<OffHourWindow>,
) -> ScheduleException {
    ScheduleException::new(
        "exc",
        ScheduleExceptionSpec {
            plan_ref: ObjectRef {
                name: "plan".into(),
                namespace: None,
            },
            valid_from: local(tz, from),
            valid_until: local(tz, until),
            kind,
            lead_time: lead.map(String::from),
            windows,
        },
    )
}

/// A wall-clock time `YYYY-MM-DD HH:MM` in `tz`, resolved with R4.
pub(super) fn local(tz: &str, text: &str) -> DateTime<Utc> {
    let tz: Tz = tz.parse().unwrap();
    let naive = NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").unwrap();
    resolve_local(tz, naive)
}

pub(super) fn compile(schedule: &Schedule, exceptions: &[ScheduleException]) -> CompiledSchedule {
    CompiledSchedule::compile(schedule, exceptions).unwrap()
}

/// The first `n` transitions after local time `from`, as (local time, state) in the plan's zone.
pub(super) fn local_transitions(
    c: &CompiledSchedule,
    from: &str,
    n: usize,
) -> Vec<(String, ScheduleState)> {
    let tz = c.timezone();
    c.transitions(local(tz.name(), from))
        .take(n)
        .map(|t: Transition| {
            (
                t.at.with_timezone(&tz)
                    .format("%a %Y-%m-%d %H:%M %Z")
                    .to_string(),
                t.to,
            )
        })
        .collect()
}

pub(super) fn tr(text: &str, state: ScheduleState) -> (String, ScheduleState) {
    (text.to_string(), state)
}

pub(super) const BERLIN: &str = "Europe/Berlin";

#[test]
fn weekday_nights_wake_only_on_listed_days() {
    let c = compile(&sched(BERLIN, vec![win("20:00", "06:00", WEEKDAYS)]), &[]);
    // 2026-11-23 is a Monday.
    assert_eq!(c.state_at(local(BERLIN, "2026-11-23 12:00")), Awake);
    assert_eq!(c.state_at(local(BERLIN, "2026-11-23 20:00")), Hibernated);
    assert_eq!(c.state_at(local(BERLIN, "2026-11-23 19:59")), Awake);
    assert_eq!(c.state_at(local(BERLIN, "2026-11-24 06:00")), Awake);
    assert_eq!(
        c.state_at(local(BERLIN, "2026-11-29 12:00")),
        Hibernated,
        "Sunday stays off"
    );
    assert_eq!(
        local_transitions(&c, "2026-11-26 12:00", 4),
        vec![
            tr("Thu 2026-11-26 20:00 CET", Hibernated),
            tr("Fri 2026-11-27 06:00 CET", Awake),
            tr("Fri 2026-11-27 20:00 CET", Hibernated),
            tr("Mon 2026-11-30 06:00 CET", Awake),
        ]
    );
}

#[test]
fn weekend_block_with_24_00_is_one_block() {
    let c = compile(
        &sched(BERLIN, vec![win("00:00", "24:00", &["SAT", "SUN"])]),
        &[],
    );
    assert_eq!(
        local_transitions(&c, "2026-11-23 12:00", 4),
        vec![
            tr("Sat 2026-11-28 00:00 CET", Hibernated),
            tr("Mon 2026-11-30 00:00 CET", Awake),
            tr("Sat 2026-12-05 00:00 CET", Hibernated),
            tr("Mon 2026-12-07 00:00 CET", Awake),
        ]
    );
    // Sunday 00:00: the Saturday wake and the Sunday hibernation tie; hibernation wins.
    assert_eq!(c.state_at(local(BERLIN, "2026-11-29 00:00")), Hibernated);
    assert_eq!(c.state_at(local(BERLIN, "2026-11-29 23:59")), Hibernated);
    assert_eq!(c.state_at(local(BERLIN, "2026-11-30 00:00")), Awake);
}

#[test]
fn guide_example_combines_weeknights_and_weekend() {
    let c = compile(
        &sched(
            BERLIN,
            vec![
                win("20:00", "06:00", WEEKDAYS),
                win("00:00", "24:00", &["SAT", "SUN"]),
            ],
        ),
        &[],
    );
    assert_eq!(
        local_transitions(&c, "2026-11-27 12:00", 3),
        vec![
            tr("Fri 2026-11-27 20:00 CET", Hibernated),
            tr("Mon 2026-11-30 06:00 CET", Awake),
            tr("Mon 2026-11-30 20:00 CET", Hibernated),
        ]
    );
}

#[test]
fn overnight_single_day_window_lasts_until_next_listed_day() {
    let c = compile(&sched(BERLIN, vec![win("22:00", "02:00", &["WED"])]), &[]);
    // Off since the previous Wednesday 22:00: the only wake-up is on Wednesday.
    assert_eq!(c.state_at(local(BERLIN, "2026-11-23 12:00")), Hibernated);
    assert_eq!(
        local_transitions(&c, "2026-11-23 12:00", 3),
        vec![
            tr("Wed 2026-11-25 02:00 CET", Awake),
            tr("Wed 2026-11-25 22:00 CET", Hibernated),
            tr("Wed 2026-12-02 02:00 CET", Awake),
        ]
    );
    let c = compile(
        &sched(BERLIN, vec![win("22:00", "02:00", &["WED", "THU"])]),
        &[],
    );
    assert_eq!(
        local_transitions(&c, "2026-11-25 12:00", 3),
        vec![
            tr("Wed 2026-11-25 22:00 CET", Hibernated),
            tr("Thu 2026-11-26 02:00 CET", Awake),
            tr("Thu 2026-11-26 22:00 CET", Hibernated),
        ]
    );
}

#[test]
fn back_to_back_windows_do_not_flicker() {
    // One window wakes at 06:00 when another hibernates: no transition at 06:00.
    let c = compile(
        &sched(
            BERLIN,
            vec![
                win("20:00", "06:00", &["TUE"]),
                win("06:00", "08:00", &["TUE"]),
            ],
        ),
        &[],
    );
    assert_eq!(
        local_transitions(&c, "2026-11-23 12:00", 2),
        vec![
            tr("Tue 2026-11-24 08:00 CET", Awake),
            tr("Tue 2026-11-24 20:00 CET", Hibernated),
        ],
        "the 20:00–06:00 TUE window is off since the Tuesday before and hands over at 06:00"
    );
    assert_eq!(c.state_at(local(BERLIN, "2026-11-23 12:00")), Hibernated);
    assert_eq!(c.state_at(local(BERLIN, "2026-11-24 06:00")), Hibernated);
    assert_eq!(
        local_transitions(&c, "2026-11-24 12:00", 2),
        vec![
            tr("Tue 2026-11-24 20:00 CET", Hibernated),
            tr("Tue 2026-12-01 08:00 CET", Awake),
        ]
    );
}

#[test]
fn overlapping_windows_or_together() {
    let c = compile(
        &sched(
            BERLIN,
            vec![
                win("18:00", "22:00", &["MON"]),
                win("20:00", "23:00", &["MON"]),
                win("21:00", "21:30", &["MON"]),
            ],
        ),
        &[],
    );
    assert_eq!(
        local_transitions(&c, "2026-11-23 12:00", 2),
        vec![
            tr("Mon 2026-11-23 18:00 CET", Hibernated),
            tr("Mon 2026-11-23 23:00 CET", Awake),
        ]
    );
    assert_eq!(c.state_at(local(BERLIN, "2026-11-23 21:45")), Hibernated);
}

#[test]
fn no_windows_never_changes() {
    let c = compile(&sched(BERLIN, vec![]), &[]);
    assert_eq!(c.state_at(local(BERLIN, "2026-11-23 12:00")), Awake);
    assert_eq!(c.next_transition(local(BERLIN, "2026-11-23 12:00")), None);
}

#[test]
fn always_off_window_never_wakes_after_starting() {
    let every_day = &["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"];
    let c = compile(&sched(BERLIN, vec![win("00:00", "24:00", every_day)]), &[]);
    let t = local(BERLIN, "2026-11-23 12:00");
    assert_eq!(c.state_at(t), Hibernated);
    assert_eq!(c.next_transition(t), None);
}

#[test]
fn state_and_transition_serialize_lowercase() {
    let t = Transition {
        at: "2026-11-24T20:00:00Z".parse().unwrap(),
        to: Hibernated,
    };
    let json = serde_json::to_value(t).unwrap();
    assert_eq!(json["to"], "hibernated");
    assert_eq!(Awake.to_string(), "awake");
    assert_eq!(
        serde_json::from_str::<ScheduleState>("\"awake\"").unwrap(),
        Awake
    );
}

#[test]
fn compile_reports_the_first_error_with_its_field() {
    let err = CompiledSchedule::compile(
        &sched("Mars/Olympus", vec![win("20:00", "06:00", WEEKDAYS)]),
        &[],
    )
    .unwrap_err();
    assert_eq!(err.field, "spec.schedule.timezone");
    let bad = exc(
        BERLIN,
        ExceptionType::Suspend,
        "2026-11-24 20:30",
        "2026-11-25 02:00",
        Some("soon"),
        vec![win("00:00", "24:00", &["TUE"])],
    );
    let err = CompiledSchedule::compile(&sched(BERLIN, vec![]), &[bad]).unwrap_err();
    assert_eq!(err.field, "scheduleexception/exc: spec.leadTime");
    assert!(
        err.to_string()
            .starts_with("scheduleexception/exc: spec.leadTime: ")
    );
}
