//! The compiled schedule and its exact event sweep (R1–R6).

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use chrono_tz::Tz;

use crate::types::{ExceptionType, Schedule, ScheduleException};

use super::window::{DAY_MINUTES, DayMap, parse_day, parse_hhmm, to_local, weekday};
use super::{ScheduleError, ScheduleState, Transition, check_exception, check_schedule};

/// How far past the last exception boundary the search for a transition goes before
/// concluding that the state never changes (two weekly periods plus slack).
const SEARCH_SLACK_DAYS: i64 = 15;
/// How many local days the look-back for a window's latest event may go (a window has
/// at least one event per week).
const LOOKBACK_DAYS: usize = 9;

/// What a set of windows does to the schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Base,
    Replace,
    Extend,
    Suspend,
}

/// The plan's windows (owner 0) or one exception's.
#[derive(Clone, Debug)]
struct Owner {
    role: Role,
    valid_from: DateTime<Utc>,
    valid_until: DateTime<Utc>,
    lead: TimeDelta,
}

impl Owner {
    fn valid_at(&self, t: DateTime<Utc>) -> bool {
        self.role == Role::Base || (self.valid_from <= t && t < self.valid_until)
    }

    fn overlaps(&self, lo: DateTime<Utc>, hi: DateTime<Utc>) -> bool {
        self.role == Role::Base || (self.valid_from <= hi && self.valid_until > lo)
    }
}

/// One weekly event at `minute` of a weekday.
#[derive(Clone, Copy, Debug)]
struct Event {
    minute: u16,
    window: u32,
    hibernate: bool,
}

/// A change of an exception's validity.
#[derive(Clone, Copy, Debug)]
struct Boundary {
    at: DateTime<Utc>,
    owner: u32,
}

/// A schedule with its exceptions, parsed once and cheap to query.
#[derive(Clone, Debug)]
pub struct CompiledSchedule {
    tz: Tz,
    /// Owner index of each window.
    window_owner: Vec<u32>,
    owners: Vec<Owner>,
    /// Events per weekday (0 = Monday), sorted by minute. A `24:00` end is stored as
    /// minute 0 of the following weekday.
    by_weekday: [Vec<Event>; 7],
    boundaries: Vec<Boundary>,
    last_boundary: Option<DateTime<Utc>>,
    max_lead: TimeDelta,
}

impl CompiledSchedule {
    /// Compiles a plan's schedule and the exceptions that belong to it.
    ///
    /// Fails with the first structural error (see [`check_schedule`] and
    /// [`check_exception`]); exception fields are prefixed with the exception's name.
    pub fn compile(
        schedule: &Schedule,
        exceptions: &[ScheduleException],
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
            }],
            by_weekday: Default::default(),
            boundaries: Vec::new(),
            last_boundary: None,
            max_lead: TimeDelta::zero(),
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
            });
            compiled.max_lead = compiled.max_lead.max(lead);
            for at in [spec.valid_from, spec.valid_until] {
                compiled.boundaries.push(Boundary { at, owner });
                compiled.last_boundary = compiled.last_boundary.max(Some(at));
            }
            compiled.add_windows(owner, &spec.windows, &format!("{prefix}.windows"))?;
        }
        compiled.boundaries.sort_by_key(|b| b.at);
        for list in &mut compiled.by_weekday {
            list.sort_by_key(|e| (e.minute, e.hibernate));
        }
        Ok(compiled)
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

/// A change of G found by the sweep.
#[derive(Clone, Copy, Debug)]
struct Change {
    at: DateTime<Utc>,
    /// When the suspend set S turned on at `at`: the largest `leadTime` among the
    /// suspend exceptions now in force; zero otherwise.
    lead: TimeDelta,
}

/// A forward walk over the events and validity boundaries relevant to `[lo, hi]`,
/// tracking every window's state and the aggregate G = (base-or-replace ∨ extend) ∧ ¬suspend.
struct Sweep<'a> {
    s: &'a CompiledSchedule,
    hi: DateTime<Utc>,
    relevant: Vec<bool>,
    window_off: Vec<bool>,
    owner_off: Vec<u32>,
    owner_valid: Vec<bool>,
    replace_valid: u32,
    on: [u32; 4],
    // Event cursor.
    day: NaiveDate,
    last_day: NaiveDate,
    day_map: Option<DayMap>,
    index: usize,
    next_event: Option<(DateTime<Utc>, Event)>,
    // Boundary cursor.
    boundary: usize,
    group: Vec<Event>,
}

impl<'a> Sweep<'a> {
    /// A sweep positioned at `lo` (every event at or before `lo` applied).
    fn new(s: &'a CompiledSchedule, lo: DateTime<Utc>, hi: DateTime<Utc>) -> Self {
        let relevant: Vec<bool> = s.owners.iter().map(|o| o.overlaps(lo, hi)).collect();
        let owner_valid: Vec<bool> = s.owners.iter().map(|o| o.valid_at(lo)).collect();
        let today = to_local(s.tz, lo).date();
        let last_day = to_local(s.tz, hi)
            .date()
            .succ_opt()
            .unwrap_or(NaiveDate::MAX);
        let mut sweep = Self {
            s,
            hi,
            window_off: vec![false; s.window_owner.len()],
            owner_off: vec![0; s.owners.len()],
            owner_valid,
            replace_valid: 0,
            on: [0; 4],
            day: today,
            last_day,
            day_map: None,
            index: 0,
            next_event: None,
            boundary: s.boundaries.partition_point(|b| b.at <= lo),
            group: Vec::new(),
            relevant,
        };
        let today_map = sweep.look_back(lo, today);
        sweep.day_map = today_map;
        for owner in 0..s.owners.len() {
            if sweep.owner_valid[owner] && sweep.relevant[owner] {
                if s.owners[owner].role == Role::Replace {
                    sweep.replace_valid += 1;
                }
                if sweep.owner_off[owner] > 0 {
                    sweep.on[s.owners[owner].role as usize] += 1;
                }
            }
        }
        // Position the event cursor on the first event after `lo`.
        loop {
            match sweep.peek_event() {
                Some((at, _)) if at <= lo => sweep.next_event = None,
                _ => break,
            }
        }
        sweep
    }

    fn window_relevant(&self, window: u32) -> bool {
        self.relevant[self.s.window_owner[window as usize] as usize]
    }

    /// Sets every relevant window's state from its latest event at or before `t`
    /// (R2; a hibernate wins a tie). Returns the day map of `today` when computed.
    fn look_back(&mut self, t: DateTime<Utc>, today: NaiveDate) -> Option<DayMap> {
        let s = self.s;
        let mut unresolved = (0..s.window_owner.len() as u32)
            .filter(|&w| self.window_relevant(w))
            .count();
        let mut resolved: Vec<Option<DateTime<Utc>>> = vec![None; s.window_owner.len()];
        let mut today_map = None;
        let mut day = today;
        for _ in 0..LOOKBACK_DAYS {
            if unresolved == 0 {
                break;
            }
            let list = &s.by_weekday[weekday(day)];
            let map = DayMap::new(s.tz, day);
            if day == today {
                today_map = Some(map);
            }
            for event in list.iter().rev() {
                if !self.window_relevant(event.window) {
                    continue;
                }
                let at = map.at(event.minute);
                if at > t {
                    continue;
                }
                let w = event.window as usize;
                match resolved[w] {
                    None => {
                        resolved[w] = Some(at);
                        self.window_off[w] = event.hibernate;
                        unresolved -= 1;
                    }
                    Some(r) if r == at && event.hibernate => self.window_off[w] = true,
                    Some(_) => {}
                }
            }
            // An event of the previous day can only tie with one at this day's start.
            let day_start = map.at(0);
            if unresolved == 0 && resolved.contains(&Some(day_start)) {
                // Look at one more day for ties, then stop.
                let prev = day.pred_opt().unwrap_or(day);
                let prev_map = DayMap::new(s.tz, prev);
                for event in s.by_weekday[weekday(prev)].iter() {
                    let w = event.window as usize;
                    if event.hibernate
                        && self.window_relevant(event.window)
                        && resolved[w] == Some(prev_map.at(event.minute))
                    {
                        self.window_off[w] = true;
                    }
                }
                break;
            }
            match day.pred_opt() {
                Some(prev) => day = prev,
                None => break,
            }
        }
        for (w, off) in self.window_off.iter().enumerate() {
            if *off {
                self.owner_off[s.window_owner[w] as usize] += 1;
            }
        }
        today_map
    }

    /// The next relevant event after the cursor, converted to an instant.
    fn peek_event(&mut self) -> Option<(DateTime<Utc>, Event)> {
        if self.next_event.is_some() {
            return self.next_event;
        }
        let s = self.s;
        loop {
            if self.day > self.last_day {
                return None;
            }
            let list = &s.by_weekday[weekday(self.day)];
            while self.index < list.len() {
                let event = list[self.index];
                self.index += 1;
                if !self.window_relevant(event.window) {
                    continue;
                }
                let day = self.day;
                let map = *self.day_map.get_or_insert_with(|| DayMap::new(s.tz, day));
                self.next_event = Some((map.at(event.minute), event));
                return self.next_event;
            }
            self.day = self.day.succ_opt()?;
            self.index = 0;
            self.day_map = None;
        }
    }

    fn next_boundary(&mut self) -> Option<Boundary> {
        while let Some(b) = self.s.boundaries.get(self.boundary) {
            if self.relevant[b.owner as usize] {
                return Some(*b);
            }
            self.boundary += 1;
        }
        None
    }

    /// G at the sweep position.
    fn g(&self) -> bool {
        let base = if self.replace_valid > 0 {
            self.on[Role::Replace as usize] > 0
        } else {
            self.on[Role::Base as usize] > 0
        };
        (base || self.on[Role::Extend as usize] > 0) && self.on[Role::Suspend as usize] == 0
    }

    fn contribution(&self, owner: usize) -> bool {
        self.owner_valid[owner] && self.owner_off[owner] > 0
    }

    /// Updates an owner's state, keeping the aggregate counts in step.
    fn update_owner(&mut self, owner: usize, valid: bool, off: u32) {
        let role = self.s.owners[owner].role as usize;
        if self.contribution(owner) {
            self.on[role] -= 1;
        }
        if self.owner_valid[owner] && role == Role::Replace as usize {
            self.replace_valid -= 1;
        }
        self.owner_valid[owner] = valid;
        self.owner_off[owner] = off;
        if self.contribution(owner) {
            self.on[role] += 1;
        }
        if valid && role == Role::Replace as usize {
            self.replace_valid += 1;
        }
    }

    /// Advances to the next instant (≤ `limit`) at which G changes.
    fn next_change(&mut self, limit: DateTime<Utc>) -> Option<Change> {
        let limit = limit.min(self.hi);
        loop {
            let event_at = self.peek_event().map(|(at, _)| at);
            let boundary_at = self.next_boundary().map(|b| b.at);
            let at = match (event_at, boundary_at) {
                (Some(e), Some(b)) => e.min(b),
                (Some(e), None) => e,
                (None, Some(b)) => b,
                (None, None) => return None,
            };
            if at > limit {
                return None;
            }
            let g_before = self.g();
            let s_before = self.on[Role::Suspend as usize];
            self.apply_instant(at);
            if self.g() != g_before {
                let lead = if s_before == 0 && self.on[Role::Suspend as usize] > 0 {
                    self.suspend_lead()
                } else {
                    TimeDelta::zero()
                };
                return Some(Change { at, lead });
            }
        }
    }

    /// Applies every event and boundary at instant `at`: wakes first, then
    /// hibernations, so a hibernation wins a tie (R2).
    fn apply_instant(&mut self, at: DateTime<Utc>) {
        let mut group = std::mem::take(&mut self.group);
        group.clear();
        while let Some((event_at, event)) = self.peek_event() {
            if event_at != at {
                break;
            }
            group.push(event);
            self.next_event = None;
        }
        for hibernate in [false, true] {
            for event in group.iter().filter(|e| e.hibernate == hibernate) {
                let w = event.window as usize;
                if self.window_off[w] != hibernate {
                    self.window_off[w] = hibernate;
                    let owner = self.s.window_owner[w] as usize;
                    let off = if hibernate {
                        self.owner_off[owner] + 1
                    } else {
                        self.owner_off[owner] - 1
                    };
                    self.update_owner(owner, self.owner_valid[owner], off);
                }
            }
        }
        self.group = group;
        while let Some(b) = self.s.boundaries.get(self.boundary) {
            if b.at > at {
                break;
            }
            self.boundary += 1;
            let owner = b.owner as usize;
            if self.relevant[owner] {
                let valid = self.s.owners[owner].valid_at(at);
                self.update_owner(owner, valid, self.owner_off[owner]);
            }
        }
    }

    /// The largest `leadTime` among the suspend exceptions currently in force.
    fn suspend_lead(&self) -> TimeDelta {
        (0..self.s.owners.len())
            .filter(|&o| self.s.owners[o].role == Role::Suspend && self.contribution(o))
            .map(|o| self.s.owners[o].lead)
            .max()
            .unwrap_or_else(TimeDelta::zero)
    }
}
