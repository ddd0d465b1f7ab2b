//! Hibernation accounting (`status.accounting`): hours actually hibernated
//! per target and month, against the off-hours of the schedule.
//!
//! Definitions (documented in `docs/savings-report.md`):
//!
//! - a target is *hibernated* from the finish of its successful shutdown
//!   until the start of the next wake-up of that target;
//! - the plan is hibernated while every target of its spec is;
//! - *scheduled* seconds are the off-hours of the schedule (R1–R5 with its
//!   exceptions), computed from its transitions, never by sampling;
//! - *covered* seconds are the scheduled seconds during which the plan was
//!   hibernated; coverage = covered / scheduled;
//! - months are calendar months in the schedule's time zone; every interval
//!   is split exactly at month boundaries.
//!
//! Accrual is incremental over `[accountedUntil, now)`, so a controller that
//! was down loses nothing, and happens only when the reconcile writes the
//! status anyway (or the month rolled over): [`account`] leaves the
//! accounting untouched on a reconcile that changes nothing else. Readers
//! (the report, the metrics) add the open interval with [`live`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use hibernator_core::restore::RestoreRecord;
use hibernator_core::schedule::{CompiledSchedule, ScheduleState};
use hibernator_core::types::{
    ExecutionState, HibernatePlanStatus, HibernatedTarget, MAX_ACCOUNTING_MONTHS,
    MAX_CLASSES_PER_TARGET, MonthAccounting, Operation, PlanAccounting, Target, TargetMonth,
    UNCLASSIFIED,
};

use crate::model::{DecideInput, RestoreView};

/// Resources of one target as its restore record lists them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResourceCounts {
    /// Number of resources with a recorded awake state.
    pub total: u32,
    /// Those resources by price class (`<executor>.<class>`, or
    /// [`UNCLASSIFIED`] when the executor records no class).
    pub classes: BTreeMap<String, u32>,
}

/// Awake-state fields that name a resource's price class, in order of
/// preference: EC2 records `instanceType`, RDS `dbInstanceClass`.
pub const CLASS_FIELDS: &[&str] = &["instanceType", "dbInstanceClass"];

/// Counts the resources of a restore record by class: the class of an entry
/// is the first string field of [`CLASS_FIELDS`] in its awake state,
/// prefixed with the executor type (`ec2.m5.large`).
pub fn resource_counts(record: &RestoreRecord) -> ResourceCounts {
    let mut counts = ResourceCounts::default();
    for entry in record.entries.values() {
        let class = CLASS_FIELDS
            .iter()
            .find_map(|field| entry.state.get(*field).and_then(|v| v.as_str()))
            .filter(|c| !c.is_empty())
            .map_or_else(
                || UNCLASSIFIED.to_string(),
                |c| format!("{}.{c}", record.executor),
            );
        counts.total = counts.total.saturating_add(1);
        let slot = counts.classes.entry(class).or_insert(0);
        *slot = slot.saturating_add(1);
    }
    counts
}

/// Month key (`YYYY-MM`) of instant `t` in time zone `tz`.
pub fn month_of(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz).format("%Y-%m").to_string()
}

/// `(year, month)` of instant `t` in `tz` (no formatting: on every reconcile).
fn year_month(t: DateTime<Utc>, tz: Tz) -> (i32, u32) {
    let local = t.with_timezone(&tz);
    (local.year(), local.month())
}

/// Parses a month key (`YYYY-MM`); `None` when malformed.
pub fn parse_month(month: &str) -> Option<(i32, u32)> {
    let (year, m) = month.split_once('-')?;
    if year.len() != 4 || m.len() != 2 {
        return None;
    }
    let year: i32 = year.parse().ok()?;
    let m: u32 = m.parse().ok()?;
    NaiveDate::from_ymd_opt(year, m, 1).map(|_| (year, m))
}

/// The instant at which month `(year, month)` begins in `tz` (local
/// midnight of the 1st; inside a DST gap, the first instant after it).
pub fn month_start(year: i32, month: u32, tz: Tz) -> Option<DateTime<Utc>> {
    let midnight = NaiveDate::from_ymd_opt(year, month, 1)?.and_hms_opt(0, 0, 0)?;
    // a gap at midnight is at most a few hours long: the first local
    // minute that exists is where the gap ends
    (0..=24 * 60).find_map(|minutes| {
        tz.from_local_datetime(&(midnight + TimeDelta::minutes(minutes)))
            .earliest()
            .map(|t| t.with_timezone(&Utc))
    })
}

/// The start of the month after the one containing `t`, in `tz`.
fn next_month_start(t: DateTime<Utc>, tz: Tz) -> DateTime<Utc> {
    let local = t.with_timezone(&tz);
    let (year, month) = if local.month() == 12 {
        (local.year() + 1, 1)
    } else {
        (local.year(), local.month() + 1)
    };
    // out of chrono's range only at the end of time: never split then
    month_start(year, month, tz).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Whole seconds of `[from, to)` per month in `tz` (empty when `to <= from`).
pub fn split_by_month(from: DateTime<Utc>, to: DateTime<Utc>, tz: Tz) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut cursor = from;
    while cursor < to {
        let end = next_month_start(cursor, tz).min(to);
        let seconds = u64::try_from((end - cursor).num_seconds()).unwrap_or(0);
        if seconds > 0 {
            out.push((month_of(cursor, tz), seconds));
        }
        if end <= cursor {
            break;
        }
        cursor = end;
    }
    out
}

/// Off-hours of `schedule` within `[from, to)`, per month of the schedule's
/// time zone: exact, from the schedule's transitions.
pub fn scheduled_by_month(
    schedule: &CompiledSchedule,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<(String, u64)> {
    let tz = schedule.timezone();
    let mut totals: BTreeMap<String, u64> = BTreeMap::new();
    if to <= from {
        return Vec::new();
    }
    let mut add = |a: DateTime<Utc>, b: DateTime<Utc>| {
        for (month, seconds) in split_by_month(a, b, tz) {
            *totals.entry(month).or_insert(0) += seconds;
        }
    };
    let mut off = schedule.state_at(from) == ScheduleState::Hibernated;
    let mut cursor = from;
    for transition in schedule.transitions(from) {
        if transition.at >= to {
            break;
        }
        if off {
            add(cursor, transition.at);
        }
        cursor = transition.at;
        off = transition.to == ScheduleState::Hibernated;
    }
    if off {
        add(cursor, to);
    }
    totals.into_iter().collect()
}

/// Adds `count` drift re-enforcements made at `now` to the month of `now`
/// (in `tz`). The enforcement logic calls this when it re-applies a
/// hibernated state that drifted.
pub fn record_re_enforcements(
    accounting: &mut PlanAccounting,
    tz: Tz,
    now: DateTime<Utc>,
    count: u64,
) {
    if count == 0 {
        return;
    }
    let month = month_entry(&mut accounting.months, &month_of(now, tz));
    month.re_enforcements = month.re_enforcements.saturating_add(count);
    trim(&mut accounting.months);
}

/// Records the resources an enforcement check just put back to sleep in
/// `status.accounting` (the month's `reEnforcements`), starting the
/// accounting if the plan has none yet.
pub(crate) fn account_re_enforcements(
    status: &mut HibernatePlanStatus,
    tz: Tz,
    now: DateTime<Utc>,
    count: u64,
) {
    if count == 0 {
        return;
    }
    let accounting = status
        .accounting
        .get_or_insert_with(|| Arc::new(PlanAccounting::default()));
    record_re_enforcements(Arc::make_mut(accounting), tz, now, count);
}

/// [`account`] for a decision of [`decide`](crate::decide::decide): the
/// plan's targets, restore data and clock from `input`.
pub(crate) fn account_plan(
    status: &mut HibernatePlanStatus,
    previous: &HibernatePlanStatus,
    input: &DecideInput<'_>,
    schedule: &CompiledSchedule,
) {
    account(
        status,
        previous,
        &input.plan.spec.targets,
        input.restore,
        schedule,
        input.now,
    );
}

/// Updates `status.accounting` after a decision: starts and ends the
/// hibernated intervals of targets from the cycle ledger in `status`, and
/// accrues `[accountedUntil, now)`.
///
/// Leaves the accounting untouched when `status` equals `previous` (nothing
/// else changed, so no status write is caused) unless the month rolled over.
pub fn account(
    status: &mut HibernatePlanStatus,
    previous: &HibernatePlanStatus,
    targets: &[Target],
    restore: &RestoreView,
    schedule: &CompiledSchedule,
    now: DateTime<Utc>,
) {
    let tz = schedule.timezone();
    let now = whole_second(now);
    let rolled_over = status
        .accounting
        .as_ref()
        .and_then(|a| a.accounted_until)
        .is_some_and(|until| year_month(until, tz) != year_month(now, tz));
    // cheap: the accounting is shared with `previous` (pointer comparison)
    if !rolled_over && status == previous {
        return;
    }
    let mut acc = status
        .accounting
        .take()
        .map(Arc::unwrap_or_clone)
        .unwrap_or_default();
    let first = acc.accounted_until.is_none();
    let from = acc.accounted_until.map_or(now, |t| t.min(now));
    let in_spec: BTreeSet<&str> = targets.iter().map(|t| t.name.as_str()).collect();
    let current: BTreeSet<String> = acc.hibernated.iter().map(|h| h.target.clone()).collect();

    // wake-ups that started, and targets that left the spec, end an interval
    let mut ended: BTreeMap<String, DateTime<Utc>> = BTreeMap::new();
    if status.current_operation == Some(Operation::Wakeup) {
        for e in &status.executions {
            if let Some(started) = e.started_at
                && current.contains(&e.target)
            {
                ended.insert(e.target.clone(), whole_second(started).clamp(from, now));
            }
        }
    }
    for h in &acc.hibernated {
        if !in_spec.contains(h.target.as_str()) {
            ended.entry(h.target.clone()).or_insert(now);
        }
    }
    // finished shutdowns begin one
    let mut began: Vec<HibernatedTarget> = Vec::new();
    if status.current_operation == Some(Operation::Shutdown) {
        for e in &status.executions {
            let Some(finished) = e.finished_at else {
                continue;
            };
            if e.state != ExecutionState::Completed
                || current.contains(&e.target)
                || !in_spec.contains(e.target.as_str())
            {
                continue;
            }
            let counts = restore
                .resources
                .get(&e.target)
                .cloned()
                .unwrap_or_default();
            let since = whole_second(finished).min(now);
            began.push(HibernatedTarget {
                target: e.target.clone(),
                type_: e.executor.clone(),
                // before the first accounting nothing is accrued, and never
                // before what is already accounted (a target removed and
                // added back while hibernated is not counted twice)
                since: if first {
                    since.max(now)
                } else {
                    since.max(from)
                },
                resources: counts.total,
                classes: counts.classes,
            });
        }
    }
    accrue(&mut acc, targets, &ended, &began, Some(schedule), from, now);
    acc.timezone = Some(tz.name().to_string());
    status.accounting = Some(Arc::new(acc));
}

/// The accounting as of `now`: `accounting` plus the open interval
/// `[accountedUntil, now)` (targets still hibernated, scheduled off-hours
/// when the schedule is known). For reports and metrics; writes nothing.
pub fn live(
    accounting: &PlanAccounting,
    targets: &[Target],
    schedule: Option<&CompiledSchedule>,
    now: DateTime<Utc>,
) -> PlanAccounting {
    let mut acc = accounting.clone();
    let now = whole_second(now);
    let Some(from) = acc.accounted_until else {
        return acc;
    };
    if now > from {
        let tz = schedule.map(CompiledSchedule::timezone).or_else(|| {
            acc.timezone
                .as_deref()
                .and_then(|name| name.parse::<Tz>().ok())
        });
        if tz.is_some() {
            accrue_in(
                &mut acc,
                targets,
                &BTreeMap::new(),
                &[],
                schedule,
                tz,
                from,
                now,
            );
        }
    }
    acc
}

/// Hibernated seconds per target accrued from `old` to `new` (for the
/// `hibernator_hibernated_seconds_total` counter).
pub fn accrued_between(
    old: Option<&PlanAccounting>,
    new: &PlanAccounting,
) -> BTreeMap<String, u64> {
    let mut out: BTreeMap<String, u64> = BTreeMap::new();
    for month in &new.months {
        let before = old.and_then(|o| o.months.iter().find(|m| m.month == month.month));
        for t in &month.targets {
            let was = before
                .and_then(|m| m.targets.iter().find(|x| x.target == t.target))
                .map_or(0, |x| x.hibernated_seconds);
            let delta = t.hibernated_seconds.saturating_sub(was);
            if delta > 0 {
                *out.entry(t.target.clone()).or_insert(0) += delta;
            }
        }
    }
    out
}

/// Covered / scheduled seconds of a month, `None` when nothing was scheduled.
pub fn coverage(month: &MonthAccounting) -> Option<f64> {
    (month.scheduled_seconds > 0)
        .then(|| month.covered_seconds as f64 / month.scheduled_seconds as f64)
}

fn accrue(
    acc: &mut PlanAccounting,
    targets: &[Target],
    ended: &BTreeMap<String, DateTime<Utc>>,
    began: &[HibernatedTarget],
    schedule: Option<&CompiledSchedule>,
    from: DateTime<Utc>,
    now: DateTime<Utc>,
) {
    let tz = schedule.map(CompiledSchedule::timezone);
    accrue_in(acc, targets, ended, began, schedule, tz, from, now);
}

#[allow(clippy::too_many_arguments)]
fn accrue_in(
    acc: &mut PlanAccounting,
    targets: &[Target],
    ended: &BTreeMap<String, DateTime<Utc>>,
    began: &[HibernatedTarget],
    schedule: Option<&CompiledSchedule>,
    tz: Option<Tz>,
    from: DateTime<Utc>,
    now: DateTime<Utc>,
) {
    let Some(tz) = tz else {
        return;
    };
    // every interval to accrue: (target, start, end); new ones from their start
    let mut intervals: Vec<(&HibernatedTarget, DateTime<Utc>, DateTime<Utc>)> = Vec::new();
    for h in &acc.hibernated {
        let end = ended.get(&h.target).copied().unwrap_or(now);
        intervals.push((h, h.since.max(from), end));
    }
    for h in began {
        intervals.push((h, h.since, now));
    }
    let mut months = std::mem::take(&mut acc.months);
    for (h, start, end) in &intervals {
        for (month, seconds) in split_by_month(*start, *end, tz) {
            let m = month_entry(&mut months, &month);
            let t = target_entry(m, h);
            t.hibernated_seconds = t.hibernated_seconds.saturating_add(seconds);
            t.resources = h.resources;
            for (class, count) in &h.classes {
                let key = if t.resource_seconds.contains_key(class)
                    || t.resource_seconds.len() < MAX_CLASSES_PER_TARGET
                {
                    class.clone()
                } else {
                    UNCLASSIFIED.to_string()
                };
                let slot = t.resource_seconds.entry(key).or_insert(0);
                *slot = slot.saturating_add(seconds.saturating_mul(u64::from(*count)));
            }
        }
    }
    // the plan: while every target of the spec is hibernated
    let all = !targets.is_empty()
        && targets
            .iter()
            .all(|t| intervals.iter().any(|(h, _, _)| h.target == t.name));
    if all {
        let relevant = intervals
            .iter()
            .filter(|(h, _, _)| targets.iter().any(|t| t.name == h.target));
        let start = relevant.clone().map(|(_, s, _)| *s).max().unwrap_or(from);
        let end = relevant.map(|(_, _, e)| *e).min().unwrap_or(now);
        for (month, seconds) in split_by_month(start, end, tz) {
            let m = month_entry(&mut months, &month);
            m.hibernated_seconds = m.hibernated_seconds.saturating_add(seconds);
        }
        if let Some(schedule) = schedule {
            for (month, seconds) in scheduled_by_month(schedule, start, end) {
                let m = month_entry(&mut months, &month);
                m.covered_seconds = m.covered_seconds.saturating_add(seconds);
            }
        }
    }
    if let Some(schedule) = schedule {
        for (month, seconds) in scheduled_by_month(schedule, from, now) {
            let m = month_entry(&mut months, &month);
            m.scheduled_seconds = m.scheduled_seconds.saturating_add(seconds);
        }
    }
    month_entry(&mut months, &month_of(now, tz));
    trim(&mut months);
    acc.months = months;
    // the hibernated set: survivors and new ones, in spec order
    let mut next: Vec<HibernatedTarget> = acc
        .hibernated
        .iter()
        .filter(|h| !ended.contains_key(&h.target))
        .cloned()
        .chain(began.iter().cloned())
        .collect();
    let position = |name: &str| targets.iter().position(|t| t.name == name);
    next.sort_by_key(|h| position(&h.target));
    acc.hibernated = next;
    acc.accounted_until = Some(now);
}

fn month_entry<'a>(months: &'a mut Vec<MonthAccounting>, month: &str) -> &'a mut MonthAccounting {
    // newest first: the index of the first entry not newer than `month`
    let index = months
        .iter()
        .position(|m| m.month.as_str() <= month)
        .unwrap_or(months.len());
    if months.get(index).is_none_or(|m| m.month != month) {
        months.insert(
            index,
            MonthAccounting {
                month: month.to_string(),
                ..MonthAccounting::default()
            },
        );
    }
    &mut months[index]
}

fn target_entry<'a>(month: &'a mut MonthAccounting, h: &HibernatedTarget) -> &'a mut TargetMonth {
    let index = match month.targets.iter().position(|t| t.target == h.target) {
        Some(index) => index,
        None => {
            month.targets.push(TargetMonth {
                target: h.target.clone(),
                type_: h.type_.clone(),
                ..TargetMonth::default()
            });
            month.targets.len() - 1
        }
    };
    &mut month.targets[index]
}

fn trim(months: &mut Vec<MonthAccounting>) {
    months.sort_by(|a, b| b.month.cmp(&a.month));
    months.truncate(MAX_ACCOUNTING_MONTHS);
}

fn whole_second(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
}

#[cfg(test)]
#[path = "accounting_tests.rs"]
mod tests;
