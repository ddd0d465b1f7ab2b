//! Time zones far from UTC and both DST changes in Europe and North America (R4).

use chrono::{DateTime, Utc};

use super::ScheduleState::{self, Awake, Hibernated};
use super::tests::{WEEKDAYS, compile, local, sched, win};

fn utc(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

/// The next `n` transitions after `from` (UTC), as (RFC 3339 UTC, state).
fn next_utc(c: &super::CompiledSchedule, from: &str, n: usize) -> Vec<(String, ScheduleState)> {
    c.transitions(utc(from))
        .take(n)
        .map(|t| (t.at.format("%Y-%m-%dT%H:%MZ").to_string(), t.to))
        .collect()
}

fn tr(text: &str, state: ScheduleState) -> (String, ScheduleState) {
    (text.to_string(), state)
}

#[test]
fn asia_jakarta_is_seven_hours_ahead() {
    let c = compile(
        &sched("Asia/Jakarta", vec![win("20:00", "06:00", WEEKDAYS)]),
        &[],
    );
    assert_eq!(
        next_utc(&c, "2026-11-23T00:00:00Z", 2),
        vec![
            tr("2026-11-23T13:00Z", Hibernated),
            tr("2026-11-23T23:00Z", Awake)
        ]
    );
}

#[test]
fn pacific_auckland_crosses_the_utc_date() {
    // NZDT (+13) in November: Monday 06:00 local is Sunday 17:00 UTC.
    let c = compile(
        &sched("Pacific/Auckland", vec![win("20:00", "06:00", WEEKDAYS)]),
        &[],
    );
    assert_eq!(
        c.state_at(utc("2026-11-22T12:00:00Z")),
        Hibernated,
        "Monday 01:00 local"
    );
    assert_eq!(
        next_utc(&c, "2026-11-22T12:00:00Z", 2),
        vec![
            tr("2026-11-22T17:00Z", Awake),
            tr("2026-11-23T07:00Z", Hibernated)
        ]
    );
}

#[test]
fn america_st_johns_has_a_half_hour_offset() {
    // NST is UTC−3:30 in November.
    let c = compile(
        &sched("America/St_Johns", vec![win("20:00", "06:00", WEEKDAYS)]),
        &[],
    );
    assert_eq!(
        next_utc(&c, "2026-11-23T12:00:00Z", 2),
        vec![
            tr("2026-11-23T23:30Z", Hibernated),
            tr("2026-11-24T09:30Z", Awake)
        ]
    );
}

#[test]
fn berlin_spring_forward_window_spanning_the_change() {
    // 2026-03-29 02:00 CET → 03:00 CEST. Friday 20:00 CET (19:00Z) to Monday 06:00 CEST (04:00Z).
    let c = compile(
        &sched("Europe/Berlin", vec![win("20:00", "06:00", WEEKDAYS)]),
        &[],
    );
    assert_eq!(
        next_utc(&c, "2026-03-27T12:00:00Z", 2),
        vec![
            tr("2026-03-27T19:00Z", Hibernated),
            tr("2026-03-30T04:00Z", Awake)
        ]
    );
}

#[test]
fn berlin_window_starting_in_the_spring_gap_starts_when_the_gap_ends() {
    // 02:30 does not exist on 2026-03-29: the window starts at 03:00 CEST (01:00Z).
    let c = compile(
        &sched("Europe/Berlin", vec![win("02:30", "05:00", &["SUN"])]),
        &[],
    );
    assert_eq!(
        next_utc(&c, "2026-03-28T12:00:00Z", 2),
        vec![
            tr("2026-03-29T01:00Z", Hibernated),
            tr("2026-03-29T03:00Z", Awake)
        ]
    );
    assert_eq!(c.state_at(utc("2026-03-29T00:59:59Z")), Awake);
    // A week earlier, in winter time, 02:30 CET is 01:30Z.
    assert_eq!(
        next_utc(&c, "2026-03-21T12:00:00Z", 2),
        vec![
            tr("2026-03-22T01:30Z", Hibernated),
            tr("2026-03-22T04:00Z", Awake)
        ]
    );
    assert_eq!(
        local("Europe/Berlin", "2026-03-29 02:30"),
        utc("2026-03-29T01:00:00Z")
    );
}

#[test]
fn berlin_window_ending_in_the_spring_gap_ends_when_the_gap_ends() {
    let c = compile(
        &sched("Europe/Berlin", vec![win("01:00", "02:30", &["SUN"])]),
        &[],
    );
    assert_eq!(
        next_utc(&c, "2026-03-28T12:00:00Z", 2),
        vec![
            tr("2026-03-29T00:00Z", Hibernated),
            tr("2026-03-29T01:00Z", Awake)
        ]
    );
}

#[test]
fn berlin_window_starting_in_the_autumn_overlap_uses_the_first_occurrence() {
    // 2026-10-25 03:00 CEST → 02:00 CET: 02:30 happens twice; the first is 00:30Z.
    let c = compile(
        &sched("Europe/Berlin", vec![win("02:30", "04:00", &["SUN"])]),
        &[],
    );
    assert_eq!(
        next_utc(&c, "2026-10-24T12:00:00Z", 2),
        vec![
            tr("2026-10-25T00:30Z", Hibernated),
            tr("2026-10-25T03:00Z", Awake)
        ]
    );
    // A window ending at 02:30 also ends at the first occurrence.
    let c = compile(
        &sched("Europe/Berlin", vec![win("01:00", "02:30", &["SUN"])]),
        &[],
    );
    assert_eq!(
        next_utc(&c, "2026-10-24T12:00:00Z", 2),
        vec![
            tr("2026-10-24T23:00Z", Hibernated),
            tr("2026-10-25T00:30Z", Awake)
        ]
    );
    assert_eq!(
        c.state_at(utc("2026-10-25T01:30:00Z")),
        Awake,
        "second 02:30 is not an event"
    );
}

#[test]
fn berlin_overnight_window_across_the_autumn_change_lasts_an_hour_longer() {
    let c = compile(
        &sched(
            "Europe/Berlin",
            vec![win("20:00", "06:00", &["SAT", "SUN"])],
        ),
        &[],
    );
    assert_eq!(
        next_utc(&c, "2026-10-24T12:00:00Z", 2),
        vec![
            tr("2026-10-24T18:00Z", Hibernated),
            tr("2026-10-25T05:00Z", Awake)
        ]
    );
}

#[test]
fn new_york_window_starting_in_the_spring_gap() {
    // 2026-03-08 02:00 EST → 03:00 EDT: 02:30 resolves to 03:00 EDT = 07:00Z.
    let c = compile(
        &sched("America/New_York", vec![win("02:30", "06:00", &["SUN"])]),
        &[],
    );
    assert_eq!(
        next_utc(&c, "2026-03-07T12:00:00Z", 2),
        vec![
            tr("2026-03-08T07:00Z", Hibernated),
            tr("2026-03-08T10:00Z", Awake)
        ]
    );
}

#[test]
fn new_york_window_starting_in_the_autumn_overlap() {
    // 2026-11-01 02:00 EDT → 01:00 EST: 01:30 happens twice; the first is 05:30Z (EDT).
    let c = compile(
        &sched("America/New_York", vec![win("01:30", "03:00", &["SUN"])]),
        &[],
    );
    assert_eq!(
        next_utc(&c, "2026-10-31T12:00:00Z", 2),
        vec![
            tr("2026-11-01T05:30Z", Hibernated),
            tr("2026-11-01T08:00Z", Awake)
        ]
    );
    assert_eq!(
        c.state_at(utc("2026-11-01T06:45:00Z")),
        Hibernated,
        "01:45 EST, second pass"
    );
}

#[test]
fn new_york_weeknights_across_both_changes() {
    let c = compile(
        &sched("America/New_York", vec![win("20:00", "06:00", WEEKDAYS)]),
        &[],
    );
    assert_eq!(
        next_utc(&c, "2026-03-06T12:00:00Z", 2),
        vec![
            tr("2026-03-07T01:00Z", Hibernated),
            tr("2026-03-09T10:00Z", Awake)
        ]
    );
    assert_eq!(
        next_utc(&c, "2026-10-30T12:00:00Z", 2),
        vec![
            tr("2026-10-31T00:00Z", Hibernated),
            tr("2026-11-02T11:00Z", Awake)
        ]
    );
}

#[test]
fn window_entirely_inside_the_spring_gap_follows_the_tie_rule() {
    // 02:15 and 02:45 both resolve to 03:00 CEST on 2026-03-29; hibernate and wake tie at
    // the same instant and the hibernation wins (R2), so the window stays off until its
    // next wake a week later.
    let c = compile(
        &sched("Europe/Berlin", vec![win("02:15", "02:45", &["SUN"])]),
        &[],
    );
    assert_eq!(
        next_utc(&c, "2026-03-28T12:00:00Z", 2),
        vec![
            tr("2026-03-29T01:00Z", Hibernated),
            tr("2026-04-05T00:45Z", Awake)
        ]
    );
}
