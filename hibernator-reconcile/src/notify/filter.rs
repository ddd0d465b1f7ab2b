//! Which derived events a `HibernateNotification` sends: its event types,
//! its minimum severity and its quiet hours.
//!
//! Quiet hours use the schedule engine itself (the windows mean exactly
//! what a plan's `offHours` mean, DST included) and are evaluated at the
//! instant the event **happened** ([`Notice::at`]), so the answer does not
//! depend on when the controller looks: an event that happened in quiet
//! hours is dropped for good, not delayed. Failures (severity `error`) are
//! always sent.

use chrono::{DateTime, Utc};
use hibernator_core::schedule::CompiledSchedule;
use hibernator_core::types::{NotificationFilter, QuietHours, Schedule, Severity};

use super::Notice;

/// A notification's filter, compiled.
#[derive(Debug)]
pub struct Filter {
    filter: NotificationFilter,
    quiet: Option<CompiledSchedule>,
}

/// Why an event is not sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Sent.
    Send,
    /// Its type is not in `spec.filter.events`.
    EventFiltered,
    /// Below `spec.filter.minSeverity`.
    BelowSeverity,
    /// A non-failure during quiet hours.
    QuietHours,
}

impl Filter {
    /// Compiles `filter` and `quiet`; an error names the field
    /// (`spec.quietHours...`).
    pub fn new(filter: &NotificationFilter, quiet: Option<&QuietHours>) -> Result<Self, String> {
        let quiet = match quiet {
            None => None,
            Some(q) => Some(compile_quiet_hours(q)?),
        };
        Ok(Self {
            filter: filter.clone(),
            quiet,
        })
    }

    /// Whether `notice` is sent.
    pub fn verdict(&self, notice: &Notice) -> Verdict {
        if !self.filter.events.is_empty() && !self.filter.events.contains(&notice.event) {
            return Verdict::EventFiltered;
        }
        if notice.severity < self.filter.min_severity {
            return Verdict::BelowSeverity;
        }
        if notice.severity < Severity::Error && self.is_quiet(notice.at) {
            return Verdict::QuietHours;
        }
        Verdict::Send
    }

    /// Whether `at` is inside quiet hours.
    pub fn is_quiet(&self, at: DateTime<Utc>) -> bool {
        self.quiet.as_ref().is_some_and(|q| q.is_off(at))
    }
}

/// Compiles quiet hours with the schedule engine; errors name the field.
pub fn compile_quiet_hours(quiet: &QuietHours) -> Result<CompiledSchedule, String> {
    let schedule = Schedule {
        timezone: quiet.timezone.clone(),
        off_hours: quiet.windows.clone(),
        calendars: Vec::new(),
    };
    CompiledSchedule::compile(&schedule, &[]).map_err(|e| {
        let field = e
            .field
            .replace("spec.schedule.offHours", "spec.quietHours.windows")
            .replace("spec.schedule", "spec.quietHours");
        format!("{field}: {}", e.message)
    })
}
