//! Property tests: the engine against a brute-force oracle, and transitions that are
//! exactly where the state flips.

use chrono::{DateTime, Duration, NaiveDate, TimeDelta, Utc};
use chrono_tz::Tz;
use proptest::prelude::*;

use super::window::{DAY_NAMES, resolve_local, to_local};
use super::{CompiledSchedule, ScheduleState};
use crate::calendar::CalendarDays;
use crate::types::{
    CalendarEffect, ExceptionType, ObjectRef, OffHourWindow, Schedule, ScheduleException,
    ScheduleExceptionSpec,
};

const ZONES: &[&str] = &[
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "America/St_Johns",
    "Pacific/Auckland",
];
/// Starts of the test ranges: around the 2026 DST changes and an ordinary stretch.
const ANCHORS: &[&str] = &[
    "2026-03-01T00:00:00Z",
    "2026-09-20T00:00:00Z",
    "2026-10-20T00:00:00Z",
];
pub(crate) const RANGE_DAYS: i64 = 28;

#[derive(Clone, Debug)]
struct W {
    start: u16,
    end: u16,
    mask: u8,
}

impl W {
    fn to_window(&self) -> OffHourWindow {
        let fmt = |m: u16| format!("{:02}:{:02}", m / 60, m % 60);
        OffHourWindow {
            start: fmt(self.start),
            end: fmt(self.end),
            days_of_week: (0..7)
                .filter(|d| self.mask & (1 << d) != 0)
                .map(|d| DAY_NAMES[d].to_string())
                .collect(),
        }
    }
}

#[derive(Clone, Debug)]
struct E {
    kind: ExceptionType,
    from_min: i64,
    len_min: i64,
    lead_min: i64,
    windows: Vec<W>,
}

/// A calendar: days as offsets from the anchor's local date (R7).
#[derive(Clone, Debug)]
struct C {
    awake: bool,
    days: Vec<i64>,
}

#[derive(Clone, Debug)]
pub(crate) struct Case {
    pub(crate) zone: &'static str,
    pub(crate) anchor: DateTime<Utc>,
    base: Vec<W>,
    exceptions: Vec<E>,
    calendars: Vec<C>,
}

fn window() -> impl Strategy<Value = W> {
    // Half-hour grid, with 02:30-ish times to hit DST gaps and overlaps.
    (0u16..48, 1u16..=48, 1u8..128).prop_filter_map("start != end", |(s, e, mask)| {
        let (start, end) = (s * 30, e * 30);
        (start != end).then_some(W { start, end, mask })
    })
}

fn exception() -> impl Strategy<Value = E> {
    (
        prop_oneof![
            Just(ExceptionType::Replace),
            Just(ExceptionType::Extend),
            Just(ExceptionType::Suspend)
        ],
        0i64..(RANGE_DAYS * 1440 / 30),
        1i64..(10 * 1440 / 30),
        prop_oneof![Just(0i64), 1i64..8],
        prop::collection::vec(window(), 1..3),
    )
        .prop_map(|(kind, from, len, lead, windows)| E {
            kind,
            from_min: from * 30,
            len_min: len * 30,
            lead_min: if kind == ExceptionType::Suspend {
                lead * 30
            } else {
                0
            },
            windows,
        })
}

fn calendar() -> impl Strategy<Value = C> {
    (
        prop::bool::weighted(0.3),
        prop::collection::vec(-1i64..RANGE_DAYS + 1, 0..6),
    )
        .prop_map(|(awake, days)| C { awake, days })
}

pub(crate) fn case() -> impl Strategy<Value = Case> {
    (
        prop::sample::select(ZONES),
        prop::sample::select(ANCHORS),
        prop::collection::vec(window(), 0..4),
        prop::collection::vec(exception(), 0..4),
        prop::collection::vec(calendar(), 0..3),
    )
        .prop_map(|(zone, anchor, base, exceptions, calendars)| Case {
            zone,
            anchor: anchor.parse().unwrap(),
            base,
            exceptions,
            calendars,
        })
}

impl Case {
    fn exception_objects(&self) -> Vec<ScheduleException> {
        self.exceptions
            .iter()
            .enumerate()
            .map(|(i, e)| {
                ScheduleException::new(
                    &format!("e{i}"),
                    ScheduleExceptionSpec {
                        plan_ref: ObjectRef {
                            name: "p".into(),
                            namespace: None,
                        },
                        valid_from: self.anchor + Duration::minutes(e.from_min),
                        valid_until: self.anchor + Duration::minutes(e.from_min + e.len_min),
                        kind: e.kind,
                        lead_time: (e.lead_min > 0).then(|| format!("{}m", e.lead_min)),
                        windows: e.windows.iter().map(W::to_window).collect(),
                    },
                )
            })
            .collect()
    }

    fn local_day(&self, offset: i64) -> NaiveDate {
        to_local(self.zone.parse().unwrap(), self.anchor).date() + Duration::days(offset)
    }

    fn calendar_days(&self) -> Vec<CalendarDays> {
        self.calendars
            .iter()
            .enumerate()
            .map(|(i, c)| CalendarDays {
                id: format!("ns/c{i}"),
                effect: if c.awake {
                    CalendarEffect::Awake
                } else {
                    CalendarEffect::Hibernate
                },
                days: std::sync::Arc::new(
                    c.days
                        .iter()
                        .map(|d| (self.local_day(*d), "day".to_string()))
                        .collect(),
                ),
                coverage: None,
            })
            .collect()
    }

    pub(crate) fn compile(&self) -> CompiledSchedule {
        let schedule = Schedule {
            timezone: self.zone.into(),
            off_hours: self.base.iter().map(W::to_window).collect(),
            calendars: (0..self.calendars.len())
                .map(|i| ObjectRef {
                    name: format!("c{i}"),
                    namespace: None,
                })
                .collect(),
        };
        CompiledSchedule::compile_with_calendars(
            &schedule,
            &self.exception_objects(),
            &self.calendar_days(),
        )
        .unwrap()
    }
}

/// A deliberately naive reading of R1–R5, evaluated at one instant.
pub(crate) struct Oracle<'a> {
    pub(crate) case: &'a Case,
    pub(crate) tz: Tz,
}

impl Oracle<'_> {
    /// R1/R2 for one window: enumerate every event of the surrounding days.
    fn window_off(&self, w: &W, t: DateTime<Utc>) -> bool {
        let today: NaiveDate = to_local(self.tz, t).date();
        let mut latest: Option<(DateTime<Utc>, bool)> = None;
        for back in -1..=9 {
            let day = today - Duration::days(back);
            let wd = chrono::Datelike::weekday(&day).num_days_from_monday();
            if w.mask & (1 << wd) == 0 {
                continue;
            }
            let start = resolve_local(
                self.tz,
                day.and_hms_opt(0, 0, 0).unwrap() + Duration::minutes(i64::from(w.start)),
            );
            let end = resolve_local(
                self.tz,
                day.and_hms_opt(0, 0, 0).unwrap() + Duration::minutes(i64::from(w.end)),
            );
            for (at, hibernate) in [(start, true), (end, false)] {
                if at <= t {
                    latest = match latest {
                        Some((l, h)) if l > at || (l == at && h) => Some((l, h)),
                        _ => Some((at, hibernate)),
                    };
                }
            }
        }
        latest.is_some_and(|(_, h)| h)
    }

    fn any_off(&self, ws: &[W], t: DateTime<Utc>) -> bool {
        ws.iter().any(|w| self.window_off(w, t))
    }

    fn valid(&self, e: &E, t: DateTime<Utc>) -> bool {
        let from = self.case.anchor + Duration::minutes(e.from_min);
        from <= t && t < from + Duration::minutes(e.len_min)
    }

    fn active<'e>(
        &'e self,
        kind: ExceptionType,
        t: DateTime<Utc>,
    ) -> impl Iterator<Item = &'e E> + 'e {
        self.case
            .exceptions
            .iter()
            .filter(move |e| e.kind == kind && self.valid(e, t))
    }

    /// R7, read literally: t lies in [00:00 of a listed day, 00:00 of the next day),
    /// both midnights resolved with R4.
    fn calendar_day(&self, awake: bool, t: DateTime<Utc>) -> bool {
        self.case
            .calendars
            .iter()
            .filter(|c| c.awake == awake)
            .flat_map(|c| c.days.iter())
            .any(|d| {
                let day = self.case.local_day(*d);
                let from = resolve_local(self.tz, day.and_hms_opt(0, 0, 0).unwrap());
                let until = resolve_local(
                    self.tz,
                    (day + Duration::days(1)).and_hms_opt(0, 0, 0).unwrap(),
                );
                from <= t && t < until
            })
    }

    fn suspend(&self, t: DateTime<Utc>) -> bool {
        self.active(ExceptionType::Suspend, t)
            .any(|e| self.any_off(&e.windows, t))
            || self.calendar_day(true, t)
    }

    fn g(&self, t: DateTime<Utc>) -> bool {
        let mut replaces = self.active(ExceptionType::Replace, t).peekable();
        let base = if replaces.peek().is_some() {
            replaces.any(|e| self.any_off(&e.windows, t))
        } else {
            self.any_off(&self.case.base, t)
        };
        let extend = self
            .active(ExceptionType::Extend, t)
            .any(|e| self.any_off(&e.windows, t))
            || self.calendar_day(false, t);
        (base || extend) && !self.suspend(t)
    }

    /// The final state with leadTime suppression, on the one-minute grid (every event
    /// and boundary of the generated cases is on it).
    pub(crate) fn f(&self, t: DateTime<Utc>) -> bool {
        if !self.g(t) {
            return false;
        }
        let minute = Duration::minutes(1);
        let max_lead = self
            .case
            .exceptions
            .iter()
            .map(|e| e.lead_min)
            .max()
            .unwrap_or(0);
        let mut e = t - Duration::seconds(i64::from(chrono::Timelike::second(&t))) + minute;
        let limit = t + Duration::minutes(max_lead);
        while e <= limit && self.g(e) {
            e += minute;
        }
        if e > limit || !self.suspend(e) || self.suspend(e - minute) {
            return true;
        }
        let lead = self
            .active(ExceptionType::Suspend, e)
            .filter(|x| self.any_off(&x.windows, e))
            .map(|x| x.lead_min)
            .max()
            .unwrap_or(0);
        // Suppressed iff G is false somewhere in [e − lead, t].
        let mut m = e - Duration::minutes(lead);
        while m <= t {
            if !self.g(m) {
                return false;
            }
            m += minute;
        }
        true
    }
}

pub(crate) fn state(off: bool) -> ScheduleState {
    if off {
        ScheduleState::Hibernated
    } else {
        ScheduleState::Awake
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn state_matches_the_naive_oracle(case in case(), offsets in prop::collection::vec(0i64..(RANGE_DAYS * 1440), 8)) {
        let compiled = case.compile();
        let oracle = Oracle { case: &case, tz: case.zone.parse().unwrap() };
        for off in offsets {
            let t = case.anchor + Duration::minutes(off);
            prop_assert_eq!(compiled.state_at(t), state(oracle.f(t)), "at {}", t);
        }
    }

    #[test]
    fn transitions_are_exactly_where_the_state_flips(case in case(), start in 0i64..(RANGE_DAYS * 1440), probes in prop::collection::vec(1u32..1000, 3)) {
        let compiled = case.compile();
        let from = case.anchor + Duration::minutes(start) + Duration::seconds(17);
        let mut previous_at = from;
        let mut previous_state = compiled.state_at(from);
        for transition in compiled.transitions(from).take(12) {
            prop_assert!(transition.at > previous_at);
            prop_assert_ne!(transition.to, previous_state, "a transition must change the state");
            prop_assert_eq!(compiled.state_at(transition.at), transition.to);
            prop_assert_eq!(compiled.state_at(transition.at - TimeDelta::nanoseconds(1)), previous_state);
            // Strictly between consecutive transitions the state does not change.
            let gap = transition.at - previous_at;
            for p in &probes {
                let t = previous_at + gap * (*p as i32) / 1000;
                if t > previous_at && t < transition.at {
                    prop_assert_eq!(compiled.state_at(t), previous_state, "at {} between {} and {}", t, previous_at, transition.at);
                }
            }
            previous_at = transition.at;
            previous_state = transition.to;
        }
    }
}
