//! The data the reconcile state machine reads and produces: its input
//! ([`DecideInput`], [`RestoreView`], [`JobObservation`]) and its answer
//! ([`Decision`], [`JobRequest`], [`PlanEvent`], [`FinishedAttempt`]).
//!
//! `decide` and `ledger` both work on these types; neither imports the
//! other's data.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use hibernator_core::executor::RetryPolicy;
use hibernator_core::params::ParameterCatalog;
use hibernator_core::types::{HibernatePlan, HibernatePlanStatus, Operation, ScheduleException};

/// Restore data of a plan as the controller sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RestoreView {
    /// Targets whose record still holds entries (resources not yet restored).
    pub targets: BTreeSet<String>,
    /// Size of the restore ConfigMap's data in bytes.
    pub bytes: usize,
    /// Name of the restore ConfigMap.
    pub config_map: String,
    /// Resources per target with restore entries, by class (accounting).
    pub resources: std::collections::BTreeMap<String, crate::accounting::ResourceCounts>,
}

/// Everything [`decide`] looks at.
#[derive(Clone, Copy, Debug)]
pub struct DecideInput<'a> {
    /// The plan (spec, metadata, current status).
    pub plan: &'a HibernatePlan,
    /// The ScheduleExceptions that refer to the plan.
    pub exceptions: &'a [ScheduleException],
    /// The plan's calendars, one per `spec.schedule.calendars` entry in order:
    /// their days, or why they cannot be used (see [`crate::calendars`]).
    pub calendars: &'a [Result<
        hibernator_core::calendar::CalendarDays,
        hibernator_core::schedule::ScheduleError,
    >],
    /// The plan's runner Jobs (every cycle).
    pub jobs: &'a [JobObservation],
    /// The plan's restore data.
    pub restore: &'a RestoreView,
    /// The current instant.
    pub now: DateTime<Utc>,
    /// Executor parameter catalog for validation.
    pub catalog: &'a ParameterCatalog,
    /// Backoff between attempts (`max_retries` is taken from the plan).
    pub backoff: &'a RetryPolicy,
    /// The plan's enforce Jobs (drift re-enforcement while hibernated).
    pub enforce_jobs: &'a [crate::enforce::EnforceJobObservation],
}

/// A Kubernetes Event to publish about the plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanEvent {
    /// Warning (true) or Normal.
    pub warning: bool,
    /// PascalCase reason.
    pub reason: &'static str,
    /// Human message.
    pub note: String,
}

/// An attempt that finished in this reconcile (for metrics).
#[derive(Clone, Debug, PartialEq)]
pub struct FinishedAttempt {
    /// Target name.
    pub target: String,
    /// Executor type.
    pub executor: String,
    /// Operation.
    pub operation: Operation,
    /// Whether it succeeded.
    pub success: bool,
    /// How long the Job ran, when known.
    pub duration: Option<Duration>,
}

/// What the controller should do.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Decision {
    /// The new status (written only when it differs from the current one).
    pub status: HibernatePlanStatus,
    /// Runner Jobs to create (after the status is written).
    pub create: Vec<JobRequest>,
    /// Names of Jobs in `create` that the ledger already records as running
    /// but that were not observed: created before and gone, or never created
    /// because a create after the status write failed. Created again under
    /// the same deterministic name (`AlreadyExists` means the read was stale).
    pub missing: Vec<String>,
    /// Finished Jobs of old cycles to delete.
    pub delete_jobs: Vec<String>,
    /// Events to publish.
    pub events: Vec<PlanEvent>,
    /// Attempts that finished (for metrics).
    pub finished: Vec<FinishedAttempt>,
    /// When the next reconcile is due (`None`: only on change).
    pub requeue_at: Option<DateTime<Utc>>,
    /// Deletion: the plan may go (remove Jobs, restore ConfigMap, finalizer).
    pub cleanup: bool,
    /// The spec (or an exception) is invalid; the message names the field.
    pub invalid: Option<String>,
    /// Enforce Jobs to create (after the status is written; `AlreadyExists`
    /// means already done).
    pub enforce_create: Vec<crate::enforce::EnforceJobRequest>,
    /// Running enforce Jobs to stop: deleted in the foreground, so that they
    /// stay visible (and hold the wake-up, see `hold_while_enforcing`) until
    /// their runner Pods are gone.
    pub stop_jobs: Vec<String>,
    /// Enforce Jobs that finished in this reconcile (for metrics).
    pub enforced: Vec<crate::enforce::EnforceFinished>,
}

impl PlanEvent {
    /// A Normal Event.
    pub fn normal(reason: &'static str, note: String) -> PlanEvent {
        PlanEvent {
            warning: false,
            reason,
            note,
        }
    }

    /// A Warning Event.
    pub fn warning(reason: &'static str, note: String) -> PlanEvent {
        PlanEvent {
            warning: true,
            reason,
            note,
        }
    }
}

/// One runner Job to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobRequest {
    /// Target name.
    pub target: String,
    /// Operation.
    pub operation: Operation,
    /// Cycle id.
    pub cycle_id: String,
    /// Attempt number (1-based).
    pub attempt: u32,
}

/// Phase of a runner Job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobPhase {
    /// Created, not finished.
    Running,
    /// The runner exited 0.
    Succeeded,
    /// The runner failed, was killed or exceeded its deadline.
    Failed,
}

/// What the controller knows about one runner Job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobObservation {
    /// Job name (= execution id).
    pub name: String,
    /// Target name (annotation `hibernator/target`).
    pub target: String,
    /// Operation.
    pub operation: Operation,
    /// Cycle id.
    pub cycle_id: String,
    /// Attempt number (1-based).
    pub attempt: u32,
    /// Phase.
    pub phase: JobPhase,
    /// Result text (termination message, or the Job's failure reason).
    pub message: Option<String>,
    /// Whether a failure may be retried (false when the runner reported a permanent error).
    pub retryable: bool,
    /// When the Job started.
    pub started_at: Option<DateTime<Utc>>,
    /// When the Job finished.
    pub finished_at: Option<DateTime<Utc>>,
}

/// A fresh cycle id from `now`: `c20261122t004410z` (label-safe).
pub fn new_cycle_id(now: DateTime<Utc>) -> String {
    now.format("c%Y%m%dt%H%M%Sz").to_string()
}

/// A cycle is open while it has a non-terminal target.
pub(crate) fn is_open(status: &HibernatePlanStatus) -> bool {
    status.current_cycle_id.is_some()
        && status.current_operation.is_some()
        && status.executions.iter().any(|e| !e.state.is_terminal())
}

/// Whether any of the plan's targets still has restore data (resources
/// not yet restored).
pub(crate) fn has_restore_data(input: &DecideInput<'_>) -> bool {
    input
        .plan
        .spec
        .targets
        .iter()
        .any(|t| input.restore.targets.contains(&t.name))
}
