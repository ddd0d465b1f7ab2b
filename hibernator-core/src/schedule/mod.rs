//! The schedule engine: when is a plan off, and when does that change next?
//!
//! A [`CompiledSchedule`] is built once from a plan's `spec.schedule` and the
//! `ScheduleException`s that belong to the plan, and then answers
//! [`state_at`](CompiledSchedule::state_at) and
//! [`next_transition`](CompiledSchedule::next_transition) exactly, from window
//! events and exception validity boundaries (never by sampling). The semantics are
//! the rules R1–R6 of `docs/schedules.md`:
//!
//! - R1: a window hibernates at `start` and wakes at `end` on each listed day
//!   (`24:00` is midnight of the following day);
//! - R2: a window is off iff its latest event at or before t is a hibernation
//!   (a hibernation wins a tie with a wake);
//! - R3: the base schedule is off iff any window is off;
//! - R4: times are wall-clock times in the plan's time zone; a time in a DST gap
//!   means the first instant after the gap, an ambiguous time its first occurrence;
//! - R5: exceptions apply while valid, in the order replace → extend → suspend,
//!   with `leadTime` suppressing short hibernations right before a suspend window;
//! - R6: the next transition is the earliest later instant at which the state changes.
//!
//! ```
//! use hibernator_core::schedule::{CompiledSchedule, ScheduleState};
//! use hibernator_core::types::{OffHourWindow, Schedule};
//! let schedule = Schedule {
//!     timezone: "Europe/Berlin".into(),
//!     off_hours: vec![OffHourWindow {
//!         start: "20:00".into(),
//!         end: "06:00".into(),
//!         days_of_week: ["MON", "TUE", "WED", "THU", "FRI"].map(String::from).to_vec(),
//!     }],
//!     calendars: Vec::new(),
//! };
//! let compiled = CompiledSchedule::compile(&schedule, &[]).unwrap();
//! let friday_night = "2026-11-27T21:00:00+01:00".parse().unwrap();
//! assert_eq!(compiled.state_at(friday_night), ScheduleState::Hibernated);
//! let next = compiled.next_transition(friday_night).unwrap();
//! assert_eq!(next.at.to_rfc3339(), "2026-11-30T05:00:00+00:00"); // Monday 06:00 in Berlin
//! assert_eq!(next.to, ScheduleState::Awake);
//! ```

mod check;
mod engine;
mod sweep;
mod window;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_check;
#[cfg(test)]
mod tests_docs;
#[cfg(test)]
mod tests_exceptions;
#[cfg(test)]
pub(crate) mod tests_prop;
#[cfg(test)]
mod tests_tz;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use check::{check_exception, check_schedule, check_windows};
pub use engine::CompiledSchedule;

/// Whether a plan's targets should be running or hibernated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScheduleState {
    /// Targets run.
    Awake,
    /// Targets are shut down.
    Hibernated,
}

impl ScheduleState {
    /// The lowercase name, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Awake => "awake",
            Self::Hibernated => "hibernated",
        }
    }
}

impl std::fmt::Display for ScheduleState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A change of state at an instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    /// When the state changes.
    pub at: DateTime<Utc>,
    /// The state from `at` on.
    pub to: ScheduleState,
}

/// A schedule or exception that cannot be compiled, naming the offending field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
#[non_exhaustive]
pub struct ScheduleError {
    /// Field path, e.g. `spec.schedule.offHours[1].start`.
    pub field: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl ScheduleError {
    /// An error about `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}
