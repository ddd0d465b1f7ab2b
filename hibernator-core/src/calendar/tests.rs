use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};

use super::*;
use crate::schedule::{CompiledSchedule, ScheduleState};
use crate::types::{
    ConfigMapKeyRef, ExceptionType, ICalSource, ObjectRef, OffHourWindow, PublicHolidays, Schedule,
    ScheduleException, ScheduleExceptionSpec,
};

fn d(text: &str) -> NaiveDate {
    text.parse().unwrap()
}

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

fn today() -> NaiveDate {
    d("2026-12-07")
}

/// Documents from a map of `name/key` → text.
struct Docs(BTreeMap<String, String>);

impl Documents for Docs {
    fn document(&self, _ns: &str, name: &str, key: &str) -> Result<Option<String>, String> {
        Ok(self.0.get(&format!("{name}/{key}")).cloned())
    }
}

fn calendar(spec: HolidayCalendarSpec) -> HolidayCalendar {
    let mut c = HolidayCalendar::new("company", spec);
    c.metadata.namespace = Some("platform".into());
    c
}

fn ical_calendar(text: &str) -> Result<CalendarDays, ScheduleError> {
    let docs = Docs(BTreeMap::from([("cal/ics".to_string(), text.to_string())]));
    resolve(
        &calendar(HolidayCalendarSpec {
            ical: vec![ICalSource {
                config_map_ref: ConfigMapKeyRef {
                    name: "cal".into(),
                    key: "ics".into(),
                },
            }],
            ..Default::default()
        }),
        &docs,
        today(),
    )
}

fn vcal(events: &str) -> String {
    format!("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n{events}END:VCALENDAR\r\n")
}

#[test]
fn explicit_dates_and_ranges_are_days_and_exclude_removes_them() {
    let days = resolve(
        &calendar(HolidayCalendarSpec {
            dates: vec!["2026-12-24..2026-12-31".into(), "2027-01-04".into()],
            exclude: vec!["2026-12-27".into()],
            ..Default::default()
        }),
        &NoDocuments,
        today(),
    )
    .unwrap();
    assert_eq!(days.id, "platform/company");
    let listed: Vec<NaiveDate> = days.days.keys().copied().collect();
    assert_eq!(listed.len(), 8, "{listed:?}");
    assert!(days.contains(d("2026-12-24")) && days.contains(d("2026-12-31")));
    assert!(!days.contains(d("2026-12-27")), "excluded");
    assert!(days.contains(d("2027-01-04")));
    // Coverage is the whole years the list spans.
    assert_eq!(days.coverage, Some((d("2026-01-01"), d("2027-12-31"))));
}

#[test]
fn bad_dates_name_their_field() {
    for (dates, field, needle) in [
        (
            vec!["2026-12-24", "24.12.2026"],
            "spec.dates[1]",
            "not a date",
        ),
        (
            vec!["2026-12-31..2026-12-24"],
            "spec.dates[0]",
            "ends before it starts",
        ),
        (vec!["2020-01-01..2035-01-01"], "spec.dates[0]", "at most"),
    ] {
        let err = resolve(
            &calendar(HolidayCalendarSpec {
                dates: dates.into_iter().map(String::from).collect(),
                ..Default::default()
            }),
            &NoDocuments,
            today(),
        )
        .unwrap_err();
        assert_eq!(err.field, format!("holidaycalendar/company: {field}"));
        assert!(err.message.contains(needle), "{err}");
    }
    let err = resolve(
        &calendar(HolidayCalendarSpec::default()),
        &NoDocuments,
        today(),
    )
    .unwrap_err();
    assert!(err.message.contains("at least one source"), "{err}");
}

#[test]
fn public_holidays_by_country_and_subdivision() {
    let national = public_holidays("de", None).unwrap();
    let bavaria = public_holidays("DE", Some("BY")).unwrap();
    let has = |set: &public::HolidaySet, day: &str| set.days.iter().any(|(x, _)| *x == d(day));
    // Epiphany and All Saints' Day are Bavarian, not national; Christmas is both.
    assert!(!has(&national, "2026-01-06") && has(&bavaria, "2026-01-06"));
    assert!(!has(&national, "2026-11-01") && has(&bavaria, "2026-11-01"));
    assert!(has(&national, "2026-12-25") && has(&bavaria, "2026-12-25"));
    let good_friday = national
        .days
        .iter()
        .find(|(x, _)| *x == d("2026-04-03"))
        .unwrap();
    assert_eq!(good_friday.1, "Good Friday");
    assert_eq!(national.years, (d("2020-01-01"), d("2040-12-31")));
    // Easter moves: Good Friday 2027 is 26 March.
    assert!(has(&national, "2027-03-26"));

    let err = public_holidays("XX", None).unwrap_err();
    assert_eq!(err.0, "country");
    let err = public_holidays("DE", Some("ZZ")).unwrap_err();
    assert_eq!(err.0, "subdivision");
    assert!(err.1.contains("BY") && err.1.contains("BW"), "{}", err.1);

    let cal = calendar(HolidayCalendarSpec {
        public_holidays: vec![PublicHolidays {
            country: "DE".into(),
            subdivision: Some("XY".into()),
        }],
        ..Default::default()
    });
    let err = resolve(&cal, &NoDocuments, today()).unwrap_err();
    assert_eq!(
        err.field,
        "holidaycalendar/company: spec.publicHolidays[0].subdivision"
    );
}

#[test]
fn ical_all_day_events_recurrences_and_exdates() {
    let text = vcal(concat!(
        // A company shutdown: DTEND of an all-day event is exclusive.
        "BEGIN:VEVENT\r\nUID:shutdown\r\nSUMMARY:Winter shutdown\r\n",
        "DTSTART;VALUE=DATE:20261224\r\nDTEND;VALUE=DATE:20270102\r\nEND:VEVENT\r\n",
        // A yearly day without end, one year skipped.
        "BEGIN:VEVENT\r\nUID:founders\r\nSUMMARY:Founders' day\r\n",
        "DTSTART;VALUE=DATE:20250612\r\nRRULE:FREQ=YEARLY\r\n",
        "EXDATE;VALUE=DATE:20270612\r\nEND:VEVENT\r\n",
        // First Friday of each month until June 2027, ending on a date; DTSTART (a
        // second Friday) counts as the first occurrence although the rule skips it.
        "BEGIN:VEVENT\r\nUID:fridays\r\nSUMMARY:Focus Friday\r\n",
        "DTSTART;VALUE=DATE:20270108\r\nRRULE:FREQ=MONTHLY;BYDAY=1FR;UNTIL=20270630\r\nEND:VEVENT\r\n",
        // A cancelled event counts for nothing.
        "BEGIN:VEVENT\r\nUID:off\r\nSUMMARY:Cancelled\r\nSTATUS:CANCELLED\r\n",
        "DTSTART;VALUE=DATE:20260301\r\nEND:VEVENT\r\n",
        // A timed event in its own zone covers its dates.
        "BEGIN:VEVENT\r\nUID:offsite\r\nSUMMARY:Offsite\r\n",
        "DTSTART;TZID=Europe/Berlin:20260910T090000\r\nDTEND;TZID=Europe/Berlin:20260911T170000\r\nEND:VEVENT\r\n",
    ));
    let days = ical_calendar(&text).unwrap();
    assert!((24..=31).all(|x| days.contains(d(&format!("2026-12-{x}")))));
    assert!(days.contains(d("2027-01-01")) && !days.contains(d("2027-01-02")));
    assert_eq!(days.name_of(d("2026-12-24")), Some("Winter shutdown"));
    assert!(days.contains(d("2025-06-12")) && days.contains(d("2026-06-12")));
    assert!(!days.contains(d("2027-06-12")), "EXDATE");
    assert!(days.contains(d("2031-06-12")), "expanded 5 years ahead");
    assert!(!days.contains(d("2032-06-12")), "not past the horizon");
    let fridays: Vec<_> = days
        .between(d("2027-01-01"), d("2027-12-31"))
        .filter(|(_, n)| *n == "Focus Friday")
        .map(|(x, _)| x)
        .collect();
    assert_eq!(
        fridays,
        [
            "2027-01-08",
            "2027-02-05",
            "2027-03-05",
            "2027-04-02",
            "2027-05-07",
            "2027-06-04"
        ]
        .map(d)
    );
    assert!(!days.contains(d("2026-03-01")), "cancelled");
    assert!(days.contains(d("2026-09-10")) && days.contains(d("2026-09-11")));
    // Covered through the horizon, because one recurrence has no end.
    assert_eq!(days.coverage, Some((d("2025-01-01"), d("2031-12-31"))));
}

#[test]
fn ical_errors_name_the_source() {
    let err = ical_calendar("not a calendar").unwrap_err();
    assert!(
        err.field
            .ends_with("spec.ical[0].configMapRef (ConfigMap cal)"),
        "{err}"
    );
    let err = ical_calendar(&vcal(
        "BEGIN:VEVENT\r\nUID:x\r\nDTSTART;VALUE=DATE:20260101\r\nRRULE:FREQ=SOMETIMES\r\nEND:VEVENT\r\n",
    ))
    .unwrap_err();
    assert!(err.message.contains("RRULE"), "{err}");
    let err = resolve(
        &calendar(HolidayCalendarSpec {
            ical: vec![ICalSource {
                config_map_ref: ConfigMapKeyRef {
                    name: "missing".into(),
                    key: "ics".into(),
                },
            }],
            ..Default::default()
        }),
        &NoDocuments,
        today(),
    )
    .unwrap_err();
    assert_eq!(
        err.field,
        "holidaycalendar/company: spec.ical[0].configMapRef"
    );
    assert!(err.message.contains("platform/missing"), "{err}");
}

#[test]
fn coverage_is_the_intersection_and_warns_outside() {
    let days = resolve(
        &calendar(HolidayCalendarSpec {
            dates: vec!["2026-12-24".into()],
            public_holidays: vec![PublicHolidays {
                country: "FR".into(),
                subdivision: None,
            }],
            ..Default::default()
        }),
        &NoDocuments,
        today(),
    )
    .unwrap();
    assert_eq!(days.coverage, Some((d("2026-01-01"), d("2026-12-31"))));
    assert_eq!(
        days.coverage_warning(d("2026-12-01"), d("2026-12-31")),
        None
    );
    let warning = days
        .coverage_warning(d("2026-12-20"), d("2027-01-10"))
        .unwrap();
    assert!(
        warning.contains("platform/company") && warning.contains("2026-12-31"),
        "{warning}"
    );
}

// ---- R7 in the engine ----

fn weeknights(zone: &str) -> Schedule {
    Schedule {
        timezone: zone.into(),
        off_hours: vec![OffHourWindow {
            start: "20:00".into(),
            end: "06:00".into(),
            days_of_week: ["MON", "TUE", "WED", "THU", "FRI"]
                .map(String::from)
                .to_vec(),
        }],
        calendars: vec![ObjectRef {
            name: "company".into(),
            namespace: None,
        }],
    }
}

fn days_of(effect: CalendarEffect, dates: &[&str]) -> CalendarDays {
    CalendarDays {
        id: "platform/company".into(),
        effect,
        days: std::sync::Arc::new(
            dates
                .iter()
                .map(|x| (d(x), "holiday".to_string()))
                .collect(),
        ),
        coverage: None,
    }
}

fn transitions(s: &CompiledSchedule, from: &str, n: usize) -> Vec<(String, ScheduleState)> {
    s.transitions(at(from))
        .take(n)
        .map(|t| (t.at.to_rfc3339(), t.to))
        .collect()
}

#[test]
fn a_holiday_midweek_keeps_the_plan_off_from_the_night_before_to_the_morning_after() {
    // Wednesday 2026-12-09 is a holiday in Berlin (UTC+1).
    let s = CompiledSchedule::compile_with_calendars(
        &weeknights("Europe/Berlin"),
        &[],
        &[days_of(CalendarEffect::Hibernate, &["2026-12-09"])],
    )
    .unwrap();
    use ScheduleState::*;
    assert_eq!(
        transitions(&s, "2026-12-08T12:00:00Z", 2),
        [
            ("2026-12-08T19:00:00+00:00".to_string(), Hibernated), // Tue 20:00
            ("2026-12-10T05:00:00+00:00".to_string(), Awake),      // Thu 06:00
        ]
    );
    // Off all Wednesday, including its working hours.
    assert_eq!(s.state_at(at("2026-12-09T11:00:00Z")), Hibernated);
}

#[test]
fn a_holiday_that_starts_inside_an_off_window_extends_it_without_a_transition() {
    // Friday 2026-12-25: off from Thursday 20:00 until Monday 06:00, no wake at midnight.
    let s = CompiledSchedule::compile_with_calendars(
        &weeknights("Europe/Berlin"),
        &[],
        &[days_of(CalendarEffect::Hibernate, &["2026-12-25"])],
    )
    .unwrap();
    assert_eq!(
        transitions(&s, "2026-12-24T12:00:00Z", 2),
        [
            (
                "2026-12-24T19:00:00+00:00".to_string(),
                ScheduleState::Hibernated
            ),
            (
                "2026-12-28T05:00:00+00:00".to_string(),
                ScheduleState::Awake
            ),
        ]
    );
}

#[test]
fn holiday_days_follow_local_midnights_across_dst() {
    // No windows: a day's off run is exactly its local midnights.
    let mut schedule = weeknights("Europe/Berlin");
    schedule.off_hours.clear();
    // Sunday 2026-03-29 has 23 hours in Berlin (02:00 → 03:00).
    let s = CompiledSchedule::compile_with_calendars(
        &schedule,
        &[],
        &[days_of(CalendarEffect::Hibernate, &["2026-03-29"])],
    )
    .unwrap();
    assert_eq!(
        transitions(&s, "2026-03-28T12:00:00Z", 2),
        [
            (
                "2026-03-28T23:00:00+00:00".to_string(),
                ScheduleState::Hibernated
            ),
            (
                "2026-03-29T22:00:00+00:00".to_string(),
                ScheduleState::Awake
            ),
        ]
    );
    // Santiago skips local midnight on 2026-09-06 (00:00 -04 → 01:00 -03): the day
    // starts at the first instant after the gap (R4) and has 23 hours.
    schedule.timezone = "America/Santiago".into();
    let s = CompiledSchedule::compile_with_calendars(
        &schedule,
        &[],
        &[days_of(CalendarEffect::Hibernate, &["2026-09-06"])],
    )
    .unwrap();
    assert_eq!(
        transitions(&s, "2026-09-05T12:00:00Z", 2),
        [
            (
                "2026-09-06T04:00:00+00:00".to_string(),
                ScheduleState::Hibernated
            ),
            (
                "2026-09-07T03:00:00+00:00".to_string(),
                ScheduleState::Awake
            ),
        ]
    );
}

#[test]
fn calendars_combine_with_exceptions_in_rule_order() {
    use ScheduleState::*;
    let exception = |kind: ExceptionType, windows: Vec<OffHourWindow>| {
        ScheduleException::new(
            "x",
            ScheduleExceptionSpec {
                plan_ref: ObjectRef {
                    name: "p".into(),
                    namespace: None,
                },
                valid_from: at("2026-12-01T00:00:00Z"),
                valid_until: at("2026-12-31T00:00:00Z"),
                kind,
                lead_time: None,
                windows,
            },
        )
    };
    let all_day = OffHourWindow {
        start: "00:00".into(),
        end: "24:00".into(),
        days_of_week: ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"]
            .map(String::from)
            .to_vec(),
    };
    let noon = at("2026-12-09T11:00:00Z");
    let holiday = [days_of(CalendarEffect::Hibernate, &["2026-12-09"])];
    // A replace exception swaps the windows, the holiday still extends them (replace → extend).
    let sunday_night = OffHourWindow {
        start: "01:00".into(),
        end: "02:00".into(),
        days_of_week: vec!["SUN".into()],
    };
    let replace = exception(ExceptionType::Replace, vec![sunday_night]);
    let s = CompiledSchedule::compile_with_calendars(
        &weeknights("Europe/Berlin"),
        &[replace],
        &holiday,
    )
    .unwrap();
    assert_eq!(s.state_at(noon), Hibernated);
    // A suspend exception beats the holiday (extend → suspend).
    let suspend = exception(ExceptionType::Suspend, vec![all_day.clone()]);
    let s = CompiledSchedule::compile_with_calendars(
        &weeknights("Europe/Berlin"),
        &[suspend],
        &holiday,
    )
    .unwrap();
    assert_eq!(s.state_at(noon), Awake);
    // An awake calendar beats the windows, an extend exception and an off calendar.
    let extend = exception(ExceptionType::Extend, vec![all_day]);
    let mut schedule = weeknights("Europe/Berlin");
    schedule.calendars.push(ObjectRef {
        name: "release-freeze".into(),
        namespace: None,
    });
    let s = CompiledSchedule::compile_with_calendars(
        &schedule,
        &[extend],
        &[
            days_of(CalendarEffect::Hibernate, &["2026-12-09"]),
            days_of(CalendarEffect::Awake, &["2026-12-09"]),
        ],
    )
    .unwrap();
    assert_eq!(s.state_at(noon), Awake);
    assert_eq!(
        s.state_at(at("2026-12-09T22:00:00Z")),
        Awake,
        "the whole local day"
    );
    assert_eq!(
        s.state_at(at("2026-12-09T23:00:00Z")),
        Hibernated,
        "the extend exception again"
    );
}

#[test]
fn a_schedule_with_calendars_needs_their_days() {
    let err = CompiledSchedule::compile(&weeknights("Europe/Berlin"), &[]).unwrap_err();
    assert_eq!(err.field, "spec.schedule.calendars[0]");
    let found = match_refs(&weeknights("UTC").calendars, "team-a", |ns, name| {
        (ns == "team-a" && name == "company").then_some(Ok(1))
    })
    .unwrap();
    assert_eq!(found, [1]);
    let err = match_refs::<i32>(&weeknights("UTC").calendars, "team-b", |_, _| None).unwrap_err();
    assert_eq!(err.field, "spec.schedule.calendars[0]");
    assert!(err.message.contains("team-b/company"), "{err}");
}

#[test]
fn calendar_references_are_checked() {
    let mut schedule = weeknights("UTC");
    schedule.calendars.push(ObjectRef {
        name: "company".into(),
        namespace: None,
    });
    schedule.calendars.push(ObjectRef {
        name: " ".into(),
        namespace: None,
    });
    let diags = crate::schedule::check_schedule(&schedule, "spec.schedule");
    assert_eq!(diags.errors.len(), 1, "{diags:?}");
    assert_eq!(diags.errors[0].field, "spec.schedule.calendars[2].name");
    assert!(
        diags
            .warnings
            .iter()
            .any(|w| w.field == "spec.schedule.calendars[1]"),
        "{diags:?}"
    );
}
