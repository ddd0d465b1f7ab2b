//! Ready-by wake-up: start each wake-up early enough that the plan is
//! expected to be Active at the end of its off-hours window.
//!
//! Two pieces, both pure:
//!
//! - [`wake_lead`] computes the *lead*: the plan's expected wake-up duration,
//!   learned from its recent wake-ups (a high percentile of each target's
//!   last [`MAX_WAKE_SAMPLES`] durations, combined along the plan's wake-up
//!   strategy by the real dispatcher, see [`crate::planner::makespan`]),
//!   with a documented per-executor default for targets without history, and
//!   capped by `spec.wakeUp.maxLead`.
//! - [`LeadSchedule`] applies a lead to a [`CompiledSchedule`]: the schedule's
//!   rules (R1–R6) decide the off-hours exactly as before, and the lead only
//!   moves the start of each wake-up. Every off run `[a, b)` of the schedule
//!   becomes `[a, b − lead)`; a run no longer than the lead disappears (the
//!   plan stays awake: a wake-up could not finish before the window ends
//!   anyway). This rule L1 is the only one the lead adds; see
//!   `docs/wake-up-on-time.md`.
//!
//! ```
//! use chrono::TimeDelta;
//! use hibernator_core::readyby::LeadSchedule;
//! use hibernator_core::schedule::{CompiledSchedule, ScheduleState};
//! use hibernator_core::types::{OffHourWindow, Schedule};
//! let schedule = Schedule {
//!     timezone: "UTC".into(),
//!     off_hours: vec![OffHourWindow {
//!         start: "20:00".into(),
//!         end: "06:00".into(),
//!         days_of_week: ["MON", "TUE", "WED", "THU", "FRI"].map(String::from).to_vec(),
//!     }],
//!     calendars: Vec::new(),
//! };
//! let compiled = CompiledSchedule::compile(&schedule, &[]).unwrap();
//! let ready_by = LeadSchedule::new(&compiled, TimeDelta::minutes(45));
//! let tuesday_night = "2026-11-24T23:00:00Z".parse().unwrap();
//! let next = ready_by.next_transition(tuesday_night).unwrap();
//! assert_eq!(next.at.to_rfc3339(), "2026-11-25T05:15:00+00:00"); // 06:00 − 45m
//! assert_eq!(next.to, ScheduleState::Awake);
//! ```

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use crate::diag::Diagnostics;
use crate::duration::parse_duration;
use crate::planner::{ExecutionPlan, makespan};
use crate::schedule::{CompiledSchedule, ScheduleState, Transition};
use crate::types::{
    DEFAULT_MAX_LEAD, HibernatePlanSpec, MAX_WAKE_SAMPLES, Operation, WakeUpStatus,
};

/// Largest `spec.wakeUp.maxLead` accepted.
pub const MAX_LEAD_LIMIT: Duration = Duration::from_secs(24 * 3600);

/// The percentile of a target's recent wake-up durations used as its
/// expected duration.
pub const LEAD_PERCENTILE: f64 = 0.9;

/// Expected wake-up duration of a target of executor type `kind` that has
/// not been measured yet (documented in `docs/wake-up-on-time.md`):
/// RDS and EKS node groups are slow to come back, the rest fast.
pub fn default_wakeup_duration(kind: &str) -> Duration {
    let minutes = match kind {
        "rds" => 15,
        "eks" => 10,
        "ec2" | "karpenter" => 5,
        "workloadscaler" => 3,
        _ => 5,
    };
    Duration::from_secs(minutes * 60)
}

/// Nearest-rank percentile (`q` in `0..=1`) of `samples`; `None` when empty.
pub fn percentile(samples: &[u64], q: f64) -> Option<u64> {
    if samples.is_empty() {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let rank = (q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.saturating_sub(1)).copied()
}

/// Where a lead comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeadSource {
    /// `spec.wakeUp.readyBy` is off: no lead.
    Off,
    /// Every target has measured wake-ups.
    History,
    /// At least one target has no measured wake-up yet and uses its
    /// executor's default.
    Defaults,
    /// The expected duration was longer than `spec.wakeUp.maxLead`.
    MaxLead,
}

impl LeadSource {
    /// The name shown in `status.wakeUp.leadSource`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::History => "history",
            Self::Defaults => "defaults",
            Self::MaxLead => "maxLead",
        }
    }
}

/// The expected wake-up duration of one target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetEstimate {
    /// Target name.
    pub target: String,
    /// Expected duration.
    pub expected: Duration,
    /// Measured samples it was computed from (0: the executor default).
    pub samples: usize,
}

/// A plan's ready-by lead and how it was computed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WakeLead {
    /// How much earlier than the window's end wake-ups start.
    pub lead: Duration,
    /// The plan's expected wake-up duration under its strategy (before the cap).
    pub expected: Duration,
    /// Where the lead comes from.
    pub source: LeadSource,
    /// Per-target estimates, in `spec.targets` order.
    pub targets: Vec<TargetEstimate>,
}

impl WakeLead {
    /// No lead (ready-by off).
    pub fn none() -> Self {
        Self {
            lead: Duration::ZERO,
            expected: Duration::ZERO,
            source: LeadSource::Off,
            targets: Vec::new(),
        }
    }

    /// The lead as a chrono delta (saturating).
    pub fn delta(&self) -> TimeDelta {
        TimeDelta::from_std(self.lead).unwrap_or(TimeDelta::MAX)
    }
}

/// The ready-by lead of a plan from its spec and the durations recorded in
/// `status.wakeUp`. Without `spec.wakeUp.readyBy` the lead is zero. Expects
/// a valid spec (see [`check_wake_up`]); an unparsable `maxLead` or strategy
/// falls back to the default cap and the sequential sum.
pub fn wake_lead(spec: &HibernatePlanSpec, status: Option<&WakeUpStatus>) -> WakeLead {
    let Some(wake_up) = spec.wake_up.as_ref().filter(|w| w.ready_by) else {
        return WakeLead::none();
    };
    let cap = wake_up
        .max_lead
        .as_deref()
        .and_then(|text| parse_duration(text).ok())
        .unwrap_or(DEFAULT_MAX_LEAD);
    let targets: Vec<TargetEstimate> = spec
        .targets
        .iter()
        .map(|target| {
            let samples = status
                .and_then(|s| s.durations.iter().find(|d| d.target == target.name))
                .map(|d| &d.seconds[..d.seconds.len().min(MAX_WAKE_SAMPLES)])
                .unwrap_or(&[]);
            TargetEstimate {
                target: target.name.clone(),
                expected: percentile(samples, LEAD_PERCENTILE)
                    .map(Duration::from_secs)
                    .unwrap_or_else(|| default_wakeup_duration(&target.kind)),
                samples: samples.len(),
            }
        })
        .collect();
    let durations: Vec<Duration> = targets.iter().map(|t| t.expected).collect();
    let expected = match ExecutionPlan::build(spec, Operation::Wakeup) {
        Ok(plan) => makespan(&plan, &durations),
        Err(_) => durations.iter().sum(),
    };
    let (lead, source) = if expected > cap {
        (cap, LeadSource::MaxLead)
    } else if targets.iter().any(|t| t.samples == 0) {
        (expected, LeadSource::Defaults)
    } else {
        (expected, LeadSource::History)
    };
    WakeLead {
        lead,
        expected,
        source,
        targets,
    }
}

/// Checks `spec.wakeUp`: `maxLead` must be a positive duration of at most 24h.
pub fn check_wake_up(spec: &HibernatePlanSpec, d: &mut Diagnostics) {
    let Some(wake_up) = &spec.wake_up else {
        return;
    };
    let Some(text) = &wake_up.max_lead else {
        return;
    };
    let field = "spec.wakeUp.maxLead";
    match parse_duration(text) {
        Err(problem) => d.error(field, problem),
        Ok(lead) if lead.is_zero() => d.error(field, "must be positive"),
        Ok(lead) if lead > MAX_LEAD_LIMIT => {
            d.error(field, format!("{text} is longer than the maximum of 24h"))
        }
        Ok(_) if !wake_up.ready_by => d.warn(
            field,
            "has no effect without spec.wakeUp.readyBy: true".to_string(),
        ),
        Ok(_) => {}
    }
}

/// A [`CompiledSchedule`] whose wake-ups start `lead` early (rule L1: every
/// off run `[a, b)` becomes `[a, b − lead)`, and runs no longer than the lead
/// vanish). With a zero lead it answers exactly like the schedule.
#[derive(Clone, Copy, Debug)]
pub struct LeadSchedule<'a> {
    schedule: &'a CompiledSchedule,
    lead: TimeDelta,
}

/// Upper bound of off runs skipped in one [`LeadSchedule::next_transition`]
/// call (runs shorter than the lead); beyond it the search gives up.
const MAX_SKIPPED_RUNS: usize = 10_000;

/// How far ahead [`LeadSchedule::next_transition`] looks past runs shorter
/// than the lead before answering "no further transition" (a schedule
/// whose every run is shorter than the lead never hibernates).
const SKIP_HORIZON_DAYS: i64 = 400;

impl<'a> LeadSchedule<'a> {
    /// `schedule` with wake-ups `lead` early (a negative lead counts as zero).
    pub fn new(schedule: &'a CompiledSchedule, lead: TimeDelta) -> Self {
        Self {
            schedule,
            lead: lead.max(TimeDelta::zero()),
        }
    }

    /// The lead.
    pub fn lead(&self) -> TimeDelta {
        self.lead
    }

    /// The schedule without the lead.
    pub fn schedule(&self) -> &'a CompiledSchedule {
        self.schedule
    }

    /// The end of the schedule's off run that contains `t` (`None` when the
    /// schedule is awake at `t`, or the run never ends).
    pub fn window_end(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if !self.schedule.is_off(t) {
            return None;
        }
        self.schedule.next_transition(t).map(|end| end.at)
    }

    /// True when the targets should be hibernated at `t`: the schedule is
    /// off at `t` and its off run lasts beyond `t + lead`.
    pub fn is_off(&self, t: DateTime<Utc>) -> bool {
        if !self.schedule.is_off(t) {
            return false;
        }
        match self.schedule.next_transition(t) {
            None => true,
            Some(end) => t < sub(end.at, self.lead),
        }
    }

    /// The state at `t`.
    pub fn state_at(&self, t: DateTime<Utc>) -> ScheduleState {
        if self.is_off(t) {
            ScheduleState::Hibernated
        } else {
            ScheduleState::Awake
        }
    }

    /// The earliest instant after `t` at which [`Self::state_at`] changes.
    pub fn next_transition(&self, t: DateTime<Utc>) -> Option<Transition> {
        if self.lead.is_zero() {
            return self.schedule.next_transition(t);
        }
        let mut from = t;
        if self.schedule.is_off(t) {
            // Inside an off run [a, b): the wake-up starts at b − lead (if
            // that is still ahead), else the next change is after b.
            let end = self.schedule.next_transition(t)?.at;
            let wake = sub(end, self.lead);
            if wake > t {
                return Some(Transition {
                    at: wake,
                    to: ScheduleState::Awake,
                });
            }
            from = end;
        }
        let horizon = t
            .checked_add_signed(TimeDelta::days(SKIP_HORIZON_DAYS))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        for _ in 0..MAX_SKIPPED_RUNS {
            // Awake at `from` (or exactly at the end of a run): the next run.
            let start = self.schedule.next_transition(from)?.at;
            if start > horizon {
                return None;
            }
            match self.schedule.next_transition(start) {
                None => {
                    return Some(Transition {
                        at: start,
                        to: ScheduleState::Hibernated,
                    });
                }
                Some(end) if sub(end.at, self.lead) > start => {
                    return Some(Transition {
                        at: start,
                        to: ScheduleState::Hibernated,
                    });
                }
                Some(end) => from = end.at,
            }
        }
        None
    }

    /// The successive transitions after `from`.
    pub fn transitions(&self, from: DateTime<Utc>) -> impl Iterator<Item = Transition> + '_ {
        std::iter::successors(self.next_transition(from), move |prev| {
            self.next_transition(prev.at)
        })
    }
}

/// `t − d`, saturating at the smallest representable instant.
fn sub(t: DateTime<Utc>, d: TimeDelta) -> DateTime<Utc> {
    t.checked_sub_signed(d).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

#[cfg(test)]
mod tests;
