//! Running a whole cycle in-process: the dispatcher's answers turned into
//! tokio tasks.
//!
//! [`CycleBuilder`] is what `hibernator run` uses, and what an embedder
//! calls to hibernate or wake up a plan from its own service. It compiles the plan's
//! strategy with [`ExecutionPlan::build`](crate::planner::ExecutionPlan::build),
//! asks the [`Dispatcher`](crate::planner::Dispatcher) which targets start,
//! runs each one as a task calling [`run_shutdown`](crate::executor::run_shutdown)
//! or [`run_wakeup`](crate::executor::run_wakeup) (restore ledger, retries and
//! the target's deadline included) and feeds the outcomes back, so
//! concurrency limits, DAG order and Strict/BestEffort behave exactly as in
//! the operator.
//!
//! Executors come from an [`ExecutorProvider`] (one executor per target, built
//! with the target's connector); what happens is reported as [`CycleEvent`]s
//! on a channel; a [`CycleControl`] stops dispatching or cancels running
//! targets (e.g. on Ctrl-C).
//!
//! ```
//! use std::sync::Arc;
//! use hibernator_core::cycle::{CycleBuilder, CycleControl, ExecutorProvider};
//! use hibernator_core::executor::{Executor, ExecutorError};
//! use hibernator_core::input::PlanDocuments;
//! use hibernator_core::restore::MemoryRestoreStore;
//! use hibernator_core::types::{Operation, Target};
//!
//! struct NoExecutors;
//! #[async_trait::async_trait]
//! impl ExecutorProvider for NoExecutors {
//!     async fn executor_for(&self, target: &Target) -> Result<Arc<dyn Executor>, ExecutorError> {
//!         Err(ExecutorError::permanent("internal", format!("no executor for {}", target.kind)))
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let docs = PlanDocuments::from_yaml(r#"
//! apiVersion: hibernator.dev/v1alpha1
//! kind: HibernatePlan
//! metadata: {name: dev}
//! spec:
//!   schedule: {timezone: UTC, offHours: [{start: "20:00", end: "06:00", daysOfWeek: [MON]}]}
//!   targets:
//!     - {name: db, type: rds, connectorRef: {kind: CloudProvider, name: aws}}
//! "#).unwrap();
//! let (events, _rx) = tokio::sync::mpsc::unbounded_channel();
//! let summary = CycleBuilder::new(
//!     &docs.plan, Operation::Shutdown, &NoExecutors, Arc::new(MemoryRestoreStore::new()),
//! )
//! .cycle_id("c1")
//! .events(events)
//! .control(CycleControl::new())
//! .run()
//! .await
//! .unwrap();
//! assert!(!summary.success);
//! assert!(summary.targets[0].message.as_deref().unwrap().contains("no executor for rds"));
//! # });
//! ```

mod runner;
mod sink;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::executor::{Executor, ExecutorError, LogLevel, RetryPolicy};
use crate::types::{DEFAULT_TARGET_TIMEOUT, ExecutionState, HibernatePlan, Operation, Target};

pub use runner::CycleBuilder;
pub use sink::EventSink;

/// Supplies the executor for each target of a cycle.
#[async_trait]
pub trait ExecutorProvider: Send + Sync {
    /// The executor for one target (built with the target's connector).
    /// Errors are target failures: the target ends `Failed` with the error's
    /// message and the rest of the cycle follows the plan's failure mode.
    async fn executor_for(&self, target: &Target) -> Result<Arc<dyn Executor>, ExecutorError>;
}

/// Settings of one cycle.
#[derive(Clone, Debug)]
pub struct CycleOptions {
    /// Plan name (for contexts, logs and STS session names).
    pub plan: String,
    /// Plan namespace (empty outside Kubernetes).
    pub namespace: String,
    /// Cycle id; restore entries are tagged with it.
    pub cycle_id: String,
    /// Retry policy for transient executor errors.
    pub retry: RetryPolicy,
    /// Timeout of a target without its own `timeout`.
    pub default_timeout: Duration,
}

impl CycleOptions {
    /// Options for `plan`: its name and namespace, `behavior.retries` retries
    /// with the default backoff, and [`DEFAULT_TARGET_TIMEOUT`].
    pub fn for_plan(plan: &HibernatePlan, cycle_id: impl Into<String>) -> Self {
        Self {
            plan: plan.metadata.name.clone().unwrap_or_default(),
            namespace: plan.metadata.namespace.clone().unwrap_or_default(),
            cycle_id: cycle_id.into(),
            retry: RetryPolicy::with_max_retries(plan.spec.behavior.retries),
            default_timeout: DEFAULT_TARGET_TIMEOUT,
        }
    }
}

/// What happened during a cycle, in the order it happened.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum CycleEvent {
    /// A target was dispatched.
    Started {
        /// Target name.
        target: String,
    },
    /// An executor reported progress.
    Progress {
        /// Target name.
        target: String,
        /// 0–100.
        percent: u8,
        /// What it is doing.
        message: String,
    },
    /// An executor (or the run function) logged a line.
    Log {
        /// Target name.
        target: String,
        /// Severity.
        level: LogLevel,
        /// The line.
        message: String,
    },
    /// A dispatched target finished (`Completed` or `Failed`).
    Finished {
        /// Target name.
        target: String,
        /// `Completed` or `Failed`.
        state: ExecutionState,
        /// The error for a failed target.
        message: Option<String>,
        /// Shutdown: resources touched; wake-up: resources restored.
        resources: Vec<String>,
        /// Executor calls made (1 + retries; 0 when no executor was found).
        attempts: u32,
        /// Time from dispatch to outcome.
        duration: Duration,
    },
    /// A target will not run.
    Aborted {
        /// Target name.
        target: String,
        /// Why (a failed dependency, Strict mode, or an interruption).
        reason: String,
    },
    /// [`CycleControl::stop_dispatching`] or [`CycleControl::cancel_running`] took effect.
    Stopping {
        /// What was requested.
        reason: String,
    },
}

/// Stops a running cycle from outside (e.g. on Ctrl-C). Clones share state.
#[derive(Clone, Debug, Default)]
pub struct CycleControl {
    stop: CancellationToken,
    cancel: CancellationToken,
}

impl CycleControl {
    /// A control nobody has triggered yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// No new targets start; running ones finish; targets not started end
    /// `Aborted` ("interrupted").
    pub fn stop_dispatching(&self) {
        self.stop.cancel();
    }

    /// Stops dispatching and cancels the running targets' contexts. Restore
    /// data a shutdown already captured is still persisted.
    pub fn cancel_running(&self) {
        self.stop.cancel();
        self.cancel.cancel();
    }

    /// True once dispatching was stopped (by either call).
    pub fn is_stopping(&self) -> bool {
        self.stop.is_cancelled()
    }

    /// True once running targets were cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    pub(crate) fn stop_token(&self) -> &CancellationToken {
        &self.stop
    }

    pub(crate) fn cancel_token(&self) -> &CancellationToken {
        &self.cancel
    }
}

/// The outcome of one target in a cycle.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct TargetSummary {
    /// Target name.
    pub name: String,
    /// Executor type (the target's `type`).
    pub executor: String,
    /// Final state: `Completed`, `Failed` or `Aborted`.
    pub state: ExecutionState,
    /// The error of a failed target or the reason of an aborted one.
    pub message: Option<String>,
    /// Shutdown: resources touched; wake-up: resources restored.
    pub resources: Vec<String>,
    /// Executor calls made.
    pub attempts: u32,
    /// Time from dispatch to outcome (zero when never started).
    #[serde(rename = "durationSeconds", serialize_with = "seconds")]
    pub duration: Duration,
}

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// The outcome of a cycle.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct CycleSummary {
    /// The operation that ran.
    pub operation: Operation,
    /// The cycle id.
    pub cycle_id: String,
    /// True when every target completed.
    pub success: bool,
    /// One entry per target, in `spec.targets` order.
    pub targets: Vec<TargetSummary>,
}

impl CycleSummary {
    /// Number of targets in `state`.
    pub fn count(&self, state: ExecutionState) -> usize {
        self.targets.iter().filter(|t| t.state == state).count()
    }
}
