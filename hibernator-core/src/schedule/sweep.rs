//! The forward sweep over window events and validity boundaries that both
//! `state_at` and `next_transition` are built on.

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};

use super::engine::{Boundary, CompiledSchedule, Event, Role};
use super::window::{DayMap, to_local, weekday};

/// How many local days the look-back for a window's latest event may go (a window has
/// at least one event per week).
const LOOKBACK_DAYS: usize = 9;

/// A change of G found by the sweep.
#[derive(Clone, Copy, Debug)]
pub(super) struct Change {
    pub(super) at: DateTime<Utc>,
    /// When the suspend set S turned on at `at`: the largest `leadTime` among the
    /// suspend exceptions now in force; zero otherwise.
    pub(super) lead: TimeDelta,
}

/// A forward walk over the events and validity boundaries relevant to `[lo, hi]`,
/// tracking every window's state and the aggregate G = (base-or-replace ∨ extend) ∧ ¬suspend.
pub(super) struct Sweep<'a> {
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
    pub(super) fn new(s: &'a CompiledSchedule, lo: DateTime<Utc>, hi: DateTime<Utc>) -> Self {
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
            owner_off: s.owners.iter().map(|o| u32::from(o.always_off)).collect(),
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
    pub(super) fn g(&self) -> bool {
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
    pub(super) fn next_change(&mut self, limit: DateTime<Utc>) -> Option<Change> {
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
