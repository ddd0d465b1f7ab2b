//! The compiled schedule and its exact event sweep (R1–R6).

use std::borrow::Borrow;
use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use chrono_tz::Tz;

use crate::calendar::CalendarDays;
use crate::types::{CalendarEffect, ExceptionType, Schedule, ScheduleException};

use super::sweep::{Change, Sweep};
use super::window::{DAY_MINUTES, DayMap, parse_day, parse_hhmm};
use super::{ScheduleError, ScheduleState, Transition, check_exception, check_schedule};

/// How far past the last exception boundary the search for a transition goes before
/// concluding that the state never changes (two weekly periods plus slack).
const SEARCH_SLACK_DAYS: i64 = 15;

/// What a set of windows does to the schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Role {
    Base,
    Replace,
    Extend,
    Suspend,
}

/// The plan's windows (owner 0) or one exception's.
#[derive(Clone, Debug)]
pub(super) struct Owner {
    pub(super) role: Role,
    valid_from: DateTime<Utc>,
    valid_until: DateTime<Utc>,
    pub(super) lead: TimeDelta,
    /// Off whenever valid, without windows: a run of calendar days (R7).
    pub(super) always_off: bool,
}

impl Owner {
    pub(super) fn valid_at(&self, t: DateTime<Utc>) -> bool {
        self.role == Role::Base || (self.valid_from <= t && t < self.valid_until)
    }

    pub(super) fn overlaps(&self, lo: DateTime<Utc>, hi: DateTime<Utc>) -> bool {
        self.role == Role::Base || (self.valid_from <= hi && self.valid_until > lo)
    }
}

/// One weekly event at `minute` of a weekday.
#[derive(Clone, Copy, Debug)]
pub(super) struct Event {
    pub(super) minute: u16,
    pub(super) window: u32,
    pub(super) hibernate: bool,
}

/// A change of an exception's validity.
#[derive(Clone, Copy, Debug)]
pub(super) struct Boundary {
    pub(super) at: DateTime<Utc>,
    pub(super) owner: u32,
}

/// A schedule with its exceptions, parsed once and cheap to query.
#[derive(Clone, Debug)]
pub struct CompiledSchedule {
    pub(super) tz: Tz,
    /// Owner index of each window.
    pub(super) window_owner: Vec<u32>,
    pub(super) owners: Vec<Owner>,
    /// Events per weekday (0 = Monday), sorted by minute. A `24:00` end is stored as
    /// minute 0 of the following weekday.
    pub(super) by_weekday: [Vec<Event>; 7],
    pub(super) boundaries: Vec<Boundary>,
    last_boundary: Option<DateTime<Utc>>,
    max_lead: TimeDelta,
    calendars: Vec<CalendarDays>,
}

impl CompiledSchedule {
    /// Compiles a plan's schedule and the exceptions that belong to it.
    ///
    /// Fails with the first structural error (see [`check_schedule`] and
    /// [`check_exception`]); exception fields are prefixed with the exception's name.
    /// A schedule that lists `calendars` needs their days: use
    /// [`compile_with_calendars`](Self::compile_with_calendars).
    pub fn compile(
        schedule: &Schedule,
        exceptions: &[ScheduleException],
    ) -> Result<Self, ScheduleError> {
        Self::compile_with_calendars::<CalendarDays>(schedule, exceptions, &[])
    }

    /// Compiles a schedule with its exceptions and the resolved days of the
    /// calendars it lists (`calendars[i]` for `schedule.calendars[i]`, see
    /// [`calendar::match_refs`](crate::calendar::match_refs)). Each calendar day is
    /// an all-day off window (or awake window for `effect: awake`) in the plan's
    /// time zone (R7).
    pub fn compile_with_calendars<C: Borrow<CalendarDays>>(
        schedule: &Schedule,
        exceptions: &[ScheduleException],
        calendars: &[C],
    ) -> Result<Self, ScheduleError> {
        let diags = check_schedule(schedule, "spec.schedule");
        if let Some(first) = diags.errors.into_iter().next() {
            return Err(ScheduleError::new(first.field, first.message));
        }
        let tz: Tz = schedule
            .timezone
            .parse()
            .map_err(|_| ScheduleError::new("spec.schedule.timezone", "unknown time zone"))?;
        let mut compiled = Self {
            tz,
            window_owner: Vec::new(),
            owners: vec![Owner {
                role: Role::Base,
                valid_from: DateTime::<Utc>::MIN_UTC,
                valid_until: DateTime::<Utc>::MAX_UTC,
                lead: TimeDelta::zero(),
                always_off: false,
            }],
            by_weekday: Default::default(),
            boundaries: Vec::new(),
            last_boundary: None,
            max_lead: TimeDelta::zero(),
            calendars: Vec::new(),
        };
        compiled.add_windows(0, &schedule.off_hours, "spec.schedule.offHours")?;
        for exception in exceptions {
            let name = exception.metadata.name.as_deref().unwrap_or("<unnamed>");
            let prefix = format!("scheduleexception/{name}: spec");
            let spec = &exception.spec;
            let diags = check_exception(spec, &prefix);
            if let Some(first) = diags.errors.into_iter().next() {
                return Err(ScheduleError::new(first.field, first.message));
            }
            let (role, lead) = match spec.kind {
                ExceptionType::Replace => (Role::Replace, TimeDelta::zero()),
                ExceptionType::Extend => (Role::Extend, TimeDelta::zero()),
                ExceptionType::Suspend => (
                    Role::Suspend,
                    parse_lead(spec.lead_time.as_deref(), &prefix)?,
                ),
            };
            let owner = compiled.owners.len() as u32;
            compiled.owners.push(Owner {
                role,
                valid_from: spec.valid_from,
                valid_until: spec.valid_until,
                lead,
                always_off: false,
            });
            compiled.max_lead = compiled.max_lead.max(lead);
            for at in [spec.valid_from, spec.valid_until] {
                compiled.boundaries.push(Boundary { at, owner });
                compiled.last_boundary = compiled.last_boundary.max(Some(at));
            }
            compiled.add_windows(owner, &spec.windows, &format!("{prefix}.windows"))?;
        }
        compiled.add_calendars(schedule, calendars)?;
        compiled.boundaries.sort_by_key(|b| b.at);
        for list in &mut compiled.by_weekday {
            list.sort_by_key(|e| (e.minute, e.hibernate));
        }
        Ok(compiled)
    }

    /// R7: every run of consecutive calendar days of one effect becomes an owner
    /// that is off (extend) or awake (suspend) from the local midnight that starts
    /// its first day to the one that ends its last, midnights resolved by R4.
    fn add_calendars<C: Borrow<CalendarDays>>(
        &mut self,
        schedule: &Schedule,
        calendars: &[C],
    ) -> Result<(), ScheduleError> {
        if let Some((i, r)) = schedule.calendars.iter().enumerate().nth(calendars.len()) {
            return Err(ScheduleError::new(
                format!("spec.schedule.calendars[{i}]"),
                format!(
                    "the days of HolidayCalendar {:?} were not resolved (compile_with_calendars)",
                    r.name
                ),
            ));
        }
        let mut off = BTreeSet::new();
        let mut awake = BTreeSet::new();
        for calendar in calendars {
            let calendar = calendar.borrow();
            let set = match calendar.effect {
                CalendarEffect::Hibernate => &mut off,
                CalendarEffect::Awake => &mut awake,
            };
            set.extend(calendar.days.keys().copied());
            self.calendars.push(calendar.clone());
        }
        for (days, role) in [(off, Role::Extend), (awake, Role::Suspend)] {
            let mut days = days.into_iter().peekable();
            while let Some(first) = days.next() {
                let mut last = first;
                while let Some(&next) = days.peek() {
                    if last.succ_opt() != Some(next) {
                        break;
                    }
                    last = next;
                    days.next();
                }
                let owner = self.owners.len() as u32;
                let from = DayMap::new(self.tz, first).at(0);
                let until = DayMap::new(self.tz, last.succ_opt().unwrap_or(NaiveDate::MAX)).at(0);
                self.owners.push(Owner {
                    role,
                    valid_from: from,
                    valid_until: until,
                    lead: TimeDelta::zero(),
                    always_off: true,
                });
                for at in [from, until] {
                    self.boundaries.push(Boundary { at, owner });
                    self.last_boundary = self.last_boundary.max(Some(at));
                }
            }
        }
        Ok(())
    }

    /// The resolved calendars the schedule was compiled with, in the order of
    /// `spec.schedule.calendars`.
    pub fn calendars(&self) -> &[CalendarDays] {
        &self.calendars
    }

    fn add_windows(
        &mut self,
        owner: u32,
        windows: &[crate::types::OffHourWindow],
        field: &str,
    ) -> Result<(), ScheduleError> {
        for (i, w) in windows.iter().enumerate() {
            let path = format!("{field}[{i}]");
            let start = parse_hhmm(&w.start, false)
                .map_err(|m| ScheduleError::new(format!("{path}.start"), m))?;
            let end = parse_hhmm(&w.end, true)
                .map_err(|m| ScheduleError::new(format!("{path}.end"), m))?;
            let window = self.window_owner.len() as u32;
            self.window_owner.push(owner);
            let mut mask = 0u8;
            for (j, name) in w.days_of_week.iter().enumerate() {
                let day = parse_day(name)
                    .map_err(|m| ScheduleError::new(format!("{path}.daysOfWeek[{j}]"), m))?;
                mask |= 1 << day;
            }
            for day in 0..7usize {
                if mask & (1 << day) == 0 {
                    continue;
                }
                self.by_weekday[day].push(Event {
                    minute: start,
                    window,
                    hibernate: true,
                });
                let (wake_day, wake_minute) = if end == DAY_MINUTES {
                    ((day + 1) % 7, 0)
                } else {
                    (day, end)
                };
                self.by_weekday[wake_day].push(Event {
                    minute: wake_minute,
                    window,
                    hibernate: false,
                });
            }
        }
        Ok(())
    }

    /// The time zone the windows are written in.
    pub fn timezone(&self) -> Tz {
        self.tz
    }

    /// The state at instant `t` (R1–R5, including `leadTime` suppression).
    pub fn state_at(&self, t: DateTime<Utc>) -> ScheduleState {
        if self.final_state_at(t) {
            ScheduleState::Hibernated
        } else {
            ScheduleState::Awake
        }
    }

    /// True when the targets should be hibernated at `t`.
    pub fn is_off(&self, t: DateTime<Utc>) -> bool {
        self.final_state_at(t)
    }

    /// The earliest instant after `t` at which the state changes, or `None` when it
    /// never changes again.
    pub fn next_transition(&self, t: DateTime<Utc>) -> Option<Transition> {
        let horizon = add(
            self.last_boundary.map_or(t, |b| b.max(t)),
            TimeDelta::days(SEARCH_SLACK_DAYS),
        );
        let mut sweep = Sweep::new(self, t, add(horizon, self.max_lead));
        if sweep.g() {
            // Inside a run of G: F changes at its end unless the run is suppressed.
            let end = sweep.next_change(add(horizon, self.max_lead))?;
            if !self.suppressed_containing(t, &end) {
                return Some(Transition {
                    at: end.at,
                    to: ScheduleState::Awake,
                });
            }
        }
        // G is false at the sweep position and so is F.
        loop {
            let start = sweep.next_change(horizon)?;
            let begins = Transition {
                at: start.at,
                to: ScheduleState::Hibernated,
            };
            if self.max_lead.is_zero() {
                return Some(begins);
            }
            match sweep.next_change(add(start.at, self.max_lead)) {
                Some(end) if end.lead > TimeDelta::zero() && end.at - start.at < end.lead => {}
                _ => return Some(begins),
            }
        }
    }

    /// The successive transitions after `from`.
    pub fn transitions(&self, from: DateTime<Utc>) -> impl Iterator<Item = Transition> + '_ {
        std::iter::successors(self.next_transition(from), move |prev| {
            self.next_transition(prev.at)
        })
    }

    fn final_state_at(&self, t: DateTime<Utc>) -> bool {
        let until = add(t, self.max_lead);
        let mut sweep = Sweep::new(self, t, until);
        if !sweep.g() {
            return false;
        }
        if self.max_lead.is_zero() {
            return true;
        }
        match sweep.next_change(until) {
            None => true,
            Some(end) => !self.suppressed_containing(t, &end),
        }
    }

    /// Whether the run of G that contains `t` and ends with `end` is suppressed by a
    /// suspend `leadTime`: the run started less than the lead before `end`, i.e. G was
    /// not true throughout `[end − lead, end)`.
    fn suppressed_containing(&self, t: DateTime<Utc>, end: &Change) -> bool {
        if end.lead <= TimeDelta::zero() {
            return false;
        }
        let from = end
            .at
            .checked_sub_signed(end.lead)
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        if from > t {
            return false; // the run began at or before t, more than `lead` before its end
        }
        let mut sweep = Sweep::new(self, from, t);
        !sweep.g() || sweep.next_change(t).is_some()
    }
}

/// `t + d`, saturating at the largest representable instant.
fn add(t: DateTime<Utc>, d: TimeDelta) -> DateTime<Utc> {
    t.checked_add_signed(d).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

fn parse_lead(lead: Option<&str>, prefix: &str) -> Result<TimeDelta, ScheduleError> {
    let Some(text) = lead else {
        return Ok(TimeDelta::zero());
    };
    let field = format!("{prefix}.leadTime");
    let std = crate::duration::parse_duration(text).map_err(|m| ScheduleError::new(&field, m))?;
    TimeDelta::from_std(std)
        .map_err(|e| ScheduleError::new(&field, format!("leadTime {text:?}: {e}")))
}
