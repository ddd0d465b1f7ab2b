//! # hibernator-reconcile
//!
//! The controller's state machine as a library: given a `HibernatePlan`, the
//! ScheduleExceptions that refer to it, its runner Jobs, its restore data and
//! the time, [`decide`](decide::decide) answers what the status should be,
//! which runner Jobs start, which Events to publish and when the next
//! reconcile is due. Pure functions of their input: no Kubernetes client, no
//! async runtime, so other tools can embed the controller's decisions or
//! simulate whole cycles (the unit tests do).
//!
//! - [`accounting`]: hibernated hours per month and target (`status.accounting`);
//! - [`model`]: the data `decide` reads and answers with;
//! - [`decide`]: the decision (and, privately, the cycle ledger behind it);
//! - [`controls`]: the plan control annotations (suspend, override, retry);
//! - [`status`]: conditions, the targets summary and cycle history;
//! - [`enforce`]: drift re-enforcement checks while hibernated;
//! - [`jobs`]: runner Job names and reading a Job's outcome;
//! - [`termination`]: the runner's termination message;
//! - [`time`]: Kubernetes timestamps and the controller's clock;
//! - [`notify`]: notification events derived from status, filters, templates, signatures;
//! - `wakeup` (private): ready-by bookkeeping in `status.wakeUp`.
//!
//! The `hibernator-kube` crate turns decisions into Kubernetes objects; the
//! operator's controller applies them.

pub mod accounting;
pub mod calendars;
pub mod controls;
pub mod decide;
pub mod enforce;
pub mod jobs;
mod ledger;
pub mod model;
pub mod notify;
pub mod status;
pub mod termination;
pub mod time;
mod wakeup;

pub use decide::decide;
pub use model::{
    DecideInput, Decision, FinishedAttempt, JobObservation, JobPhase, JobRequest, PlanEvent,
    RestoreView,
};
