//! Tests of the structural checks and their field paths.

use chrono::{DateTime, Utc};

use super::tests::{WEEKDAYS, sched, win};
use super::{check_exception, check_schedule, check_windows};
use crate::types::{ExceptionType, ObjectRef, ScheduleExceptionSpec};

fn fields(list: &[crate::diag::Diagnostic]) -> Vec<&str> {
    list.iter().map(|d| d.field.as_str()).collect()
}

#[test]
fn valid_guide_schedule_has_no_findings() {
    let s = sched(
        "Europe/Berlin",
        vec![
            win("20:00", "06:00", WEEKDAYS),
            win("00:00", "24:00", &["SAT", "SUN"]),
        ],
    );
    let d = check_schedule(&s, "spec.schedule");
    assert!(d.errors.is_empty() && d.warnings.is_empty(), "{d:?}");
}

#[test]
fn rejects_malformed_times_with_field_paths() {
    let windows = vec![
        win("8:00", "06:00", WEEKDAYS),
        win("20:00", "24:01", WEEKDAYS),
        win("24:00", "06:00", WEEKDAYS),
        win("20:60", "25:00", WEEKDAYS),
        win("20:00", "20:00", WEEKDAYS),
    ];
    let d = check_windows(&windows, "spec.schedule.offHours");
    assert_eq!(
        fields(&d.errors),
        vec![
            "spec.schedule.offHours[0].start",
            "spec.schedule.offHours[1].end",
            "spec.schedule.offHours[2].start",
            "spec.schedule.offHours[3].start",
            "spec.schedule.offHours[3].end",
            "spec.schedule.offHours[4].end",
        ]
    );
    assert!(d.errors[2].message.contains("24:00 is not a valid start"));
    assert!(d.errors[5].message.contains("both 20:00"));
}

#[test]
fn rejects_unknown_and_empty_days_and_warns_on_duplicates() {
    let windows = vec![
        win("20:00", "06:00", &["MON", "Tue", "FRIDAY"]),
        win("20:00", "06:00", &[]),
        win(
            "20:00",
            "06:00",
            &["MON", "TUE", "MON", "WED", "THU", "FRI"],
        ),
    ];
    let d = check_windows(&windows, "spec.schedule.offHours");
    assert_eq!(
        fields(&d.errors),
        vec![
            "spec.schedule.offHours[0].daysOfWeek[1]",
            "spec.schedule.offHours[0].daysOfWeek[2]",
            "spec.schedule.offHours[1].daysOfWeek",
        ]
    );
    assert!(d.errors[0].message.contains("upper-case"));
    assert_eq!(
        fields(&d.warnings),
        vec!["spec.schedule.offHours[2].daysOfWeek[2]"]
    );
}

#[test]
fn rejects_unknown_or_empty_time_zones() {
    let d = check_schedule(
        &sched("Europe/Berlinn", vec![win("20:00", "06:00", WEEKDAYS)]),
        "spec.schedule",
    );
    assert_eq!(fields(&d.errors), vec!["spec.schedule.timezone"]);
    let d = check_schedule(
        &sched("", vec![win("20:00", "06:00", WEEKDAYS)]),
        "spec.schedule",
    );
    assert_eq!(fields(&d.errors), vec!["spec.schedule.timezone"]);
}

#[test]
fn warns_on_long_single_window_off_stretches() {
    let d = check_windows(&[win("20:00", "06:00", &["MON"])], "w");
    assert_eq!(fields(&d.warnings), vec!["w[0]"]);
    assert!(
        d.warnings[0].message.contains("6d10h"),
        "{}",
        d.warnings[0].message
    );
    // Bridging a weekend is 58h: fine.
    let d = check_windows(&[win("20:00", "06:00", WEEKDAYS)], "w");
    assert!(d.warnings.is_empty(), "{d:?}");
    // 00:00–24:00 every day never wakes.
    let all = ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"];
    let d = check_windows(&[win("00:00", "24:00", &all)], "w");
    assert!(d.warnings[0].message.contains("never wakes"));
    // Friday 18:00 to Tuesday 08:00 (86h) is under the limit; to Wednesday (110h) is not.
    let d = check_windows(&[win("18:00", "08:00", &["TUE", "FRI"])], "w");
    assert!(d.warnings.is_empty(), "{d:?}");
    let d = check_windows(&[win("18:00", "08:00", &["WED", "FRI"])], "w");
    assert_eq!(fields(&d.warnings), vec!["w[0]"]);
    assert!(
        d.warnings[0].message.contains("4d14h"),
        "{}",
        d.warnings[0].message
    );
}

#[test]
fn warns_on_23_59_end() {
    let d = check_windows(&[win("00:00", "23:59", &["SAT", "SUN"])], "w");
    assert!(d.errors.is_empty());
    assert_eq!(fields(&d.warnings), vec!["w[0].end"]);
    assert!(d.warnings[0].message.contains("24:00"));
}

fn spec(kind: ExceptionType, from: &str, until: &str, lead: Option<&str>) -> ScheduleExceptionSpec {
    ScheduleExceptionSpec {
        plan_ref: ObjectRef {
            name: "dev".into(),
            namespace: None,
        },
        valid_from: from.parse::<DateTime<Utc>>().unwrap(),
        valid_until: until.parse::<DateTime<Utc>>().unwrap(),
        kind,
        lead_time: lead.map(String::from),
        windows: vec![win("20:00", "06:00", WEEKDAYS)],
    }
}

#[test]
fn exception_checks() {
    let ok = spec(
        ExceptionType::Suspend,
        "2026-11-01T00:00:00Z",
        "2026-11-02T00:00:00Z",
        Some("1h"),
    );
    let d = check_exception(&ok, "spec");
    assert!(d.errors.is_empty() && d.warnings.is_empty(), "{d:?}");

    let d = check_exception(
        &spec(
            ExceptionType::Extend,
            "2026-11-02T00:00:00Z",
            "2026-11-02T00:00:00Z",
            None,
        ),
        "spec",
    );
    assert_eq!(fields(&d.errors), vec!["spec.validUntil"]);

    let d = check_exception(
        &spec(
            ExceptionType::Suspend,
            "2026-11-01T00:00:00Z",
            "2026-11-02T00:00:00Z",
            Some("60"),
        ),
        "spec",
    );
    assert_eq!(fields(&d.errors), vec!["spec.leadTime"]);

    let d = check_exception(
        &spec(
            ExceptionType::Extend,
            "2026-11-01T00:00:00Z",
            "2026-11-02T00:00:00Z",
            Some("1h"),
        ),
        "spec",
    );
    assert!(d.errors.is_empty());
    assert_eq!(fields(&d.warnings), vec!["spec.leadTime"]);

    let mut empty = ok.clone();
    empty.windows.clear();
    let d = check_exception(&empty, "spec");
    assert_eq!(fields(&d.errors), vec!["spec.windows"]);

    let mut bad_window = ok;
    bad_window.windows[0].days_of_week[1] = "XYZ".into();
    let d = check_exception(&bad_window, "spec");
    assert_eq!(fields(&d.errors), vec!["spec.windows[0].daysOfWeek[1]"]);
}
