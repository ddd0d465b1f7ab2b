//! Exceptions: replace, extend, suspend, their order, validity boundaries and leadTime (R5).

use super::CompiledSchedule;
use super::ScheduleState::{Awake, Hibernated};
use super::tests::{BERLIN, WEEKDAYS, compile, exc, local, local_transitions, sched, tr, win};
use crate::types::ExceptionType;

#[test]
fn replace_swaps_base_windows_while_valid() {
    let base = sched(BERLIN, vec![win("20:00", "06:00", WEEKDAYS)]);
    let replace = exc(
        BERLIN,
        ExceptionType::Replace,
        "2026-11-24 00:00",
        "2026-11-26 00:00",
        None,
        vec![win("22:00", "05:00", &["TUE", "WED"])],
    );
    let c = compile(&base, &[replace]);
    assert_eq!(
        local_transitions(&c, "2026-11-23 12:00", 7),
        vec![
            tr("Mon 2026-11-23 20:00 CET", Hibernated),
            // Validity starts Tue 00:00; the replace window is off since the Wednesday
            // before (its events count regardless of validity), so the night goes on
            // until the replace window's 05:00 wake instead of the base's 06:00.
            tr("Tue 2026-11-24 05:00 CET", Awake),
            tr("Tue 2026-11-24 22:00 CET", Hibernated),
            tr("Wed 2026-11-25 05:00 CET", Awake),
            tr("Wed 2026-11-25 22:00 CET", Hibernated),
            // Thu 00:00: validity ends while both the base and the replace window are off.
            tr("Thu 2026-11-26 06:00 CET", Awake),
            tr("Thu 2026-11-26 20:00 CET", Hibernated),
        ]
    );
}

#[test]
fn several_valid_replace_exceptions_or_their_windows() {
    let base = sched(BERLIN, vec![win("20:00", "06:00", WEEKDAYS)]);
    let a = exc(
        BERLIN,
        ExceptionType::Replace,
        "2026-11-23 00:00",
        "2026-11-30 00:00",
        None,
        vec![win("10:00", "11:00", &["TUE"])],
    );
    let b = exc(
        BERLIN,
        ExceptionType::Replace,
        "2026-11-23 00:00",
        "2026-11-30 00:00",
        None,
        vec![win("10:30", "12:00", &["TUE"])],
    );
    let c = compile(&base, &[a, b]);
    assert_eq!(
        local_transitions(&c, "2026-11-23 12:00", 2),
        vec![
            tr("Tue 2026-11-24 10:00 CET", Hibernated),
            tr("Tue 2026-11-24 12:00 CET", Awake)
        ]
    );
}

#[test]
fn extend_ors_extra_windows() {
    let base = sched(BERLIN, vec![win("20:00", "06:00", WEEKDAYS)]);
    let extend = exc(
        BERLIN,
        ExceptionType::Extend,
        "2026-11-24 00:00",
        "2026-11-25 00:00",
        None,
        vec![win("12:00", "14:00", &["TUE", "WED"])],
    );
    let c = compile(&base, &[extend]);
    assert_eq!(
        local_transitions(&c, "2026-11-24 07:00", 4),
        vec![
            tr("Tue 2026-11-24 12:00 CET", Hibernated),
            tr("Tue 2026-11-24 14:00 CET", Awake),
            tr("Tue 2026-11-24 20:00 CET", Hibernated),
            tr("Wed 2026-11-25 06:00 CET", Awake),
        ]
    );
    assert_eq!(
        c.state_at(local(BERLIN, "2026-11-25 13:00")),
        Awake,
        "expired on Wednesday"
    );
}

#[test]
fn suspend_forces_awake_while_its_window_is_off() {
    let base = sched(BERLIN, vec![win("20:00", "06:00", WEEKDAYS)]);
    let suspend = exc(
        BERLIN,
        ExceptionType::Suspend,
        "2026-11-01 00:00",
        "2026-12-31 00:00",
        None,
        vec![win("23:00", "02:00", &["TUE", "WED"])],
    );
    let c = compile(&base, &[suspend]);
    assert_eq!(
        local_transitions(&c, "2026-11-24 12:00", 4),
        vec![
            tr("Tue 2026-11-24 20:00 CET", Hibernated),
            tr("Tue 2026-11-24 23:00 CET", Awake),
            tr("Wed 2026-11-25 02:00 CET", Hibernated),
            tr("Wed 2026-11-25 06:00 CET", Awake),
        ]
    );
}

#[test]
fn exceptions_apply_replace_then_extend_then_suspend() {
    let base = sched(BERLIN, vec![win("20:00", "06:00", WEEKDAYS)]);
    let from = "2026-11-23 00:00";
    let until = "2026-11-30 00:00";
    let replace = exc(
        BERLIN,
        ExceptionType::Replace,
        from,
        until,
        None,
        vec![win("08:00", "10:00", &["TUE"])],
    );
    let extend = exc(
        BERLIN,
        ExceptionType::Extend,
        from,
        until,
        None,
        vec![win("09:00", "12:00", &["TUE"])],
    );
    let suspend = exc(
        BERLIN,
        ExceptionType::Suspend,
        from,
        until,
        None,
        vec![win("11:00", "11:30", &["TUE"])],
    );
    // Order in the list must not matter.
    let c = compile(&base, &[suspend, extend, replace]);
    assert_eq!(
        local_transitions(&c, "2026-11-23 12:00", 4),
        vec![
            tr("Tue 2026-11-24 08:00 CET", Hibernated),
            tr("Tue 2026-11-24 11:00 CET", Awake),
            tr("Tue 2026-11-24 11:30 CET", Hibernated),
            tr("Tue 2026-11-24 12:00 CET", Awake),
        ]
    );
    // Extend is not replaced: an extend window keeps things off even though a replace is valid.
    assert_eq!(c.state_at(local(BERLIN, "2026-11-24 10:30")), Hibernated);
    // Base is replaced: Tuesday 21:00 is awake.
    assert_eq!(c.state_at(local(BERLIN, "2026-11-24 21:00")), Awake);
}

#[test]
fn validity_start_is_inclusive_and_end_exclusive() {
    let base = sched(BERLIN, vec![]);
    let extend = exc(
        BERLIN,
        ExceptionType::Extend,
        "2026-11-24 10:00",
        "2026-11-24 11:00",
        None,
        vec![win("00:00", "24:00", &["TUE"])],
    );
    let c = compile(&base, &[extend]);
    assert_eq!(c.state_at(local(BERLIN, "2026-11-24 09:59")), Awake);
    assert_eq!(c.state_at(local(BERLIN, "2026-11-24 10:00")), Hibernated);
    assert_eq!(c.state_at(local(BERLIN, "2026-11-24 10:59")), Hibernated);
    assert_eq!(c.state_at(local(BERLIN, "2026-11-24 11:00")), Awake);
    assert_eq!(
        local_transitions(&c, "2026-11-23 12:00", 3),
        vec![
            tr("Tue 2026-11-24 10:00 CET", Hibernated),
            tr("Tue 2026-11-24 11:00 CET", Awake)
        ]
    );
}

#[test]
fn validity_boundary_is_a_transition_only_when_state_changes() {
    let base = sched(BERLIN, vec![win("20:00", "06:00", WEEKDAYS)]);
    // Becomes valid at Tue 22:00 while base is already off, with a window that is off then.
    let extend = exc(
        BERLIN,
        ExceptionType::Extend,
        "2026-11-24 22:00",
        "2026-11-25 03:00",
        None,
        vec![win("21:00", "04:00", &["TUE"])],
    );
    let c = compile(&base, &[extend]);
    assert_eq!(
        local_transitions(&c, "2026-11-24 12:00", 2),
        vec![
            tr("Tue 2026-11-24 20:00 CET", Hibernated),
            tr("Wed 2026-11-25 06:00 CET", Awake)
        ]
    );
}

#[test]
fn exception_window_events_count_before_validity() {
    // The suspend window started Mon 23:00, before the exception became valid at Tue 01:00:
    // at 01:00 the suspend window is already off, so the plan wakes at 01:00.
    let base = sched(BERLIN, vec![win("20:00", "06:00", WEEKDAYS)]);
    let suspend = exc(
        BERLIN,
        ExceptionType::Suspend,
        "2026-11-24 01:00",
        "2026-11-24 03:00",
        None,
        vec![win("23:00", "05:00", &["MON"])],
    );
    let c = compile(&base, &[suspend]);
    assert_eq!(
        local_transitions(&c, "2026-11-23 21:00", 3),
        vec![
            tr("Tue 2026-11-24 01:00 CET", Awake),
            tr("Tue 2026-11-24 03:00 CET", Hibernated),
            tr("Tue 2026-11-24 06:00 CET", Awake),
        ]
    );
}

fn lead_case(lead: &str) -> CompiledSchedule {
    // Base hibernates Tue 20:00; the suspend window starts Tue 21:00 (one hour later).
    let base = sched(BERLIN, vec![win("20:00", "06:00", WEEKDAYS)]);
    let suspend = exc(
        BERLIN,
        ExceptionType::Suspend,
        "2026-11-01 00:00",
        "2026-12-31 00:00",
        Some(lead),
        vec![win("21:00", "23:00", &["TUE"])],
    );
    compile(&base, &[suspend])
}

#[test]
fn lead_time_suppresses_a_short_hibernation_before_a_suspend_window() {
    let c = lead_case("61m");
    assert_eq!(
        local_transitions(&c, "2026-11-24 12:00", 2),
        vec![
            tr("Tue 2026-11-24 23:00 CET", Hibernated),
            tr("Wed 2026-11-25 06:00 CET", Awake)
        ]
    );
    assert_eq!(c.state_at(local(BERLIN, "2026-11-24 20:30")), Awake);
    assert_eq!(c.state_at(local(BERLIN, "2026-11-24 22:00")), Awake);
    assert_eq!(c.state_at(local(BERLIN, "2026-11-24 23:00")), Hibernated);
    // Other nights are not affected.
    assert_eq!(c.state_at(local(BERLIN, "2026-11-23 20:30")), Hibernated);
}

#[test]
fn lead_time_equal_to_the_gap_does_not_suppress() {
    let c = lead_case("1h");
    assert_eq!(
        local_transitions(&c, "2026-11-24 12:00", 3),
        vec![
            tr("Tue 2026-11-24 20:00 CET", Hibernated),
            tr("Tue 2026-11-24 21:00 CET", Awake),
            tr("Tue 2026-11-24 23:00 CET", Hibernated),
        ]
    );
    assert_eq!(c.state_at(local(BERLIN, "2026-11-24 20:30")), Hibernated);
}

#[test]
fn lead_time_applies_when_the_suspend_exception_becomes_valid() {
    // The suspend window is off since Tue 00:00; the exception becomes valid at 20:30.
    let base = sched(BERLIN, vec![win("20:00", "06:00", WEEKDAYS)]);
    let suspend = exc(
        BERLIN,
        ExceptionType::Suspend,
        "2026-11-24 20:30",
        "2026-11-25 02:00",
        Some("45m"),
        vec![win("00:00", "24:00", &["TUE"])],
    );
    let c = compile(&base, &[suspend]);
    assert_eq!(
        local_transitions(&c, "2026-11-24 12:00", 2),
        vec![
            tr("Wed 2026-11-25 00:00 CET", Hibernated),
            tr("Wed 2026-11-25 06:00 CET", Awake)
        ],
        "20:00–20:30 is suppressed; the suspend window wakes (ends) Wed 00:00"
    );
    assert_eq!(c.state_at(local(BERLIN, "2026-11-24 20:15")), Awake);
    // Without the lead time the half hour before validity is a real hibernation.
    let base = sched(BERLIN, vec![win("20:00", "06:00", WEEKDAYS)]);
    let suspend = exc(
        BERLIN,
        ExceptionType::Suspend,
        "2026-11-24 20:30",
        "2026-11-25 02:00",
        None,
        vec![win("00:00", "24:00", &["TUE"])],
    );
    let c = compile(&base, &[suspend]);
    assert_eq!(c.state_at(local(BERLIN, "2026-11-24 20:15")), Hibernated);
    assert_eq!(
        local_transitions(&c, "2026-11-24 12:00", 2),
        vec![
            tr("Tue 2026-11-24 20:00 CET", Hibernated),
            tr("Tue 2026-11-24 20:30 CET", Awake)
        ]
    );
}

#[test]
fn replace_becoming_valid_while_its_windows_are_awake_wakes_the_plan() {
    // Base is off Tue 21:00; the replace (valid from Tue 21:00) only has a Thursday window,
    // which is awake then, so the validity start is a transition to awake.
    let base = sched(BERLIN, vec![win("20:00", "06:00", WEEKDAYS)]);
    let replace = exc(
        BERLIN,
        ExceptionType::Replace,
        "2026-11-24 21:00",
        "2026-11-25 03:00",
        None,
        vec![win("10:00", "11:00", &["THU"])],
    );
    let c = compile(&base, &[replace]);
    assert_eq!(
        local_transitions(&c, "2026-11-24 12:00", 4),
        vec![
            tr("Tue 2026-11-24 20:00 CET", Hibernated),
            tr("Tue 2026-11-24 21:00 CET", Awake),
            tr("Wed 2026-11-25 03:00 CET", Hibernated),
            tr("Wed 2026-11-25 06:00 CET", Awake),
        ]
    );
}
