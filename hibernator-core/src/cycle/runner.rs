//! The cycle loop: dispatcher answers in, tokio tasks out, outcomes back.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;
use tokio::task::{Id, JoinSet};
use tokio::time::Instant;

use super::sink::EventSink;
use super::{
    CycleControl, CycleEvent, CycleOptions, CycleSummary, ExecutorProvider, TargetSummary,
};
use crate::duration::parse_duration;
use crate::executor::{
    CountingExecutor, ExecutionContext, ExecutorError, TargetReport, category, run_shutdown,
    run_wakeup,
};
use crate::planner::{Dispatcher, ExecutionPlan, PlanError};
use crate::restore::RestoreStore;
use crate::types::{BehaviorMode, ExecutionState, HibernatePlan, Operation, Target};

/// One in-process cycle of a plan, configured step by step and started with
/// [`run`](Self::run).
///
/// The plan, the operation, the executor provider and the restore store are
/// required; everything else has a default:
///
/// | setter | default |
/// |---|---|
/// | [`options`](Self::options) | [`CycleOptions::for_plan`] with the cycle id below |
/// | [`cycle_id`](Self::cycle_id) | `c` + the start time, e.g. `c20261122t200000z` |
/// | [`events`](Self::events) | none: events are dropped |
/// | [`control`](Self::control) | a fresh [`CycleControl`] nobody triggers |
///
/// ```ignore
/// let summary = CycleBuilder::new(&plan, Operation::Shutdown, &provider, store)
///     .cycle_id("c1")
///     .events(tx)
///     .control(control.clone())
///     .run()
///     .await?;
/// ```
#[must_use = "a cycle does nothing until `run` is awaited"]
pub struct CycleBuilder<'a> {
    plan: &'a HibernatePlan,
    operation: Operation,
    provider: &'a dyn ExecutorProvider,
    store: Arc<dyn RestoreStore>,
    options: Option<CycleOptions>,
    cycle_id: Option<String>,
    events: Option<UnboundedSender<CycleEvent>>,
    control: CycleControl,
}

impl<'a> CycleBuilder<'a> {
    /// A cycle running `operation` on every target of `plan`, with executors
    /// from `provider` and restore data in `store`.
    pub fn new(
        plan: &'a HibernatePlan,
        operation: Operation,
        provider: &'a dyn ExecutorProvider,
        store: Arc<dyn RestoreStore>,
    ) -> Self {
        Self {
            plan,
            operation,
            provider,
            store,
            options: None,
            cycle_id: None,
            events: None,
            control: CycleControl::new(),
        }
    }

    /// Retry policy, default timeout, names and cycle id (a later
    /// [`cycle_id`](Self::cycle_id) still overrides the id).
    pub fn options(mut self, options: CycleOptions) -> Self {
        self.options = Some(options);
        self
    }

    /// The cycle id; restore entries are tagged with it.
    pub fn cycle_id(mut self, cycle_id: impl Into<String>) -> Self {
        self.cycle_id = Some(cycle_id.into());
        self
    }

    /// Where every step is reported (a closed channel is fine).
    pub fn events(mut self, events: UnboundedSender<CycleEvent>) -> Self {
        self.events = Some(events);
        self
    }

    /// Stops dispatching or cancels running targets from outside (keep a
    /// clone).
    pub fn control(mut self, control: CycleControl) -> Self {
        self.control = control;
        self
    }

    /// Runs the cycle.
    ///
    /// Targets start as tokio tasks when the [`Dispatcher`] says they are
    /// ready (DAG order, stages and `maxConcurrency` respected); each task
    /// gets its executor from the provider and calls [`run_shutdown`] /
    /// [`run_wakeup`] with the store, the options' retry policy and the
    /// target's `timeout` (default `options.default_timeout`). Outcomes go
    /// back to the dispatcher, which applies the plan's `behavior.mode`:
    /// targets it aborts end `Aborted` with the reason.
    ///
    /// The control stops dispatching (targets not started end `Aborted`,
    /// "interrupted") or cancels the running targets as well; either way
    /// this returns once no task is running, and restore data already
    /// captured is persisted.
    ///
    /// Fails only when the plan's execution section is structurally invalid;
    /// target failures are reported in the [`CycleSummary`].
    pub async fn run(self) -> Result<CycleSummary, PlanError> {
        let Self {
            plan,
            operation,
            provider,
            store,
            options,
            cycle_id,
            events,
            control,
        } = self;
        let mut options = match options {
            Some(options) => options,
            None => CycleOptions::for_plan(plan, default_cycle_id()),
        };
        if let Some(id) = cycle_id {
            options.cycle_id = id;
        }
        // Without a listener, events go to a channel nobody reads.
        let events = events.unwrap_or_else(|| tokio::sync::mpsc::unbounded_channel().0);
        let execution = ExecutionPlan::build(&plan.spec, operation)?;
        let mut cycle = Cycle {
            targets: &plan.spec.targets,
            operation,
            dispatcher: Dispatcher::new(execution, plan.spec.behavior.mode),
            outcomes: vec![None; plan.spec.targets.len()],
            tasks: JoinSet::new(),
            running: HashMap::new(),
            sink: Arc::new(EventSink::new(events.clone())),
            events,
            store,
            options,
            control,
            stop_announced: false,
            cancel_announced: false,
        };
        cycle.run(provider).await;
        Ok(cycle.summary())
    }
}

/// `c` + the current UTC time, lowercase (`c20261122t200000z`).
fn default_cycle_id() -> String {
    chrono::Utc::now().format("c%Y%m%dt%H%M%Sz").to_string()
}

/// The final outcome of one target.
#[derive(Clone, Debug)]
struct Outcome {
    state: ExecutionState,
    message: Option<String>,
    resources: Vec<String>,
    attempts: u32,
    duration: Duration,
}

impl Outcome {
    fn aborted(reason: String) -> Self {
        Self {
            state: ExecutionState::Aborted,
            message: Some(reason),
            resources: Vec::new(),
            attempts: 0,
            duration: Duration::ZERO,
        }
    }
}

type TaskResult = (Result<TargetReport, ExecutorError>, u32);

struct Cycle<'a> {
    targets: &'a [Target],
    operation: Operation,
    dispatcher: Dispatcher,
    outcomes: Vec<Option<Outcome>>,
    tasks: JoinSet<TaskResult>,
    /// Running tasks: target index and start time.
    running: HashMap<Id, (usize, Instant)>,
    sink: Arc<EventSink>,
    events: UnboundedSender<CycleEvent>,
    store: Arc<dyn RestoreStore>,
    options: CycleOptions,
    control: CycleControl,
    stop_announced: bool,
    cancel_announced: bool,
}

impl Cycle<'_> {
    async fn run(&mut self, provider: &dyn ExecutorProvider) {
        loop {
            self.announce_control();
            if !self.control.is_stopping() {
                self.dispatch(provider).await;
            }
            if self.tasks.is_empty() {
                break;
            }
            let stop = self.control.stop_token().clone();
            let cancel = self.control.cancel_token().clone();
            tokio::select! {
                joined = self.tasks.join_next_with_id() => match joined {
                    Some(Ok((id, (result, attempts)))) => self.on_task_done(id, result, attempts),
                    Some(Err(error)) => {
                        let message = if error.is_panic() {
                            "the executor panicked".to_string()
                        } else {
                            "the target's task was cancelled".to_string()
                        };
                        let failure = ExecutorError::permanent(category::INTERNAL, message);
                        self.on_task_done(error.id(), Err(failure), 0);
                    }
                    None => {}
                },
                () = stop.cancelled(), if !self.stop_announced => {}
                () = cancel.cancelled(), if !self.cancel_announced => {}
            }
        }
        self.announce_control();
        for index in 0..self.targets.len() {
            if self.outcomes[index].is_none() {
                let reason = if self.control.is_stopping() {
                    "interrupted: the cycle was stopped before this target started".to_string()
                } else {
                    "not started".to_string()
                };
                self.abort(index, reason);
            }
        }
    }

    fn emit(&self, event: CycleEvent) {
        // Nobody listening is fine: the summary carries the outcome.
        let _ = self.events.send(event);
    }

    fn announce_control(&mut self) {
        if self.control.is_cancelled() && !self.cancel_announced {
            self.cancel_announced = true;
            self.stop_announced = true;
            self.emit(CycleEvent::Stopping {
                reason: "cancelling running targets; no new targets start".to_string(),
            });
        } else if self.control.is_stopping() && !self.stop_announced {
            self.stop_announced = true;
            self.emit(CycleEvent::Stopping {
                reason: "no new targets start; running targets finish".to_string(),
            });
        }
    }

    /// Starts every ready target; targets that fail before running (no
    /// executor, bad timeout) are recorded at once, which may make others ready.
    async fn dispatch(&mut self, provider: &dyn ExecutorProvider) {
        loop {
            let ready = self.dispatcher.next_ready();
            if ready.is_empty() {
                return;
            }
            for index in ready {
                if let Err((error, started)) = self.start(provider, index).await {
                    let outcome = Outcome {
                        state: ExecutionState::Failed,
                        message: Some(error.to_string()),
                        resources: Vec::new(),
                        attempts: 0,
                        duration: started.elapsed(),
                    };
                    self.finish(index, outcome);
                }
            }
        }
    }

    async fn start(
        &mut self,
        provider: &dyn ExecutorProvider,
        index: usize,
    ) -> Result<(), (ExecutorError, Instant)> {
        let started = Instant::now();
        let target = &self.targets[index];
        self.emit(CycleEvent::Started {
            target: target.name.clone(),
        });
        let timeout = match target.timeout.as_deref() {
            None => self.options.default_timeout,
            Some(text) => parse_duration(text).map_err(|message| {
                let error = ExecutorError::permanent(
                    category::INVALID_PARAMETERS,
                    format!("timeout: {message}"),
                );
                (error, started)
            })?,
        };
        let executor = provider
            .executor_for(target)
            .await
            .map_err(|e| (e, started))?;
        let ctx = ExecutionContext::builder(
            self.options.plan.clone(),
            target.name.clone(),
            self.options.cycle_id.clone(),
            self.operation,
        )
        .namespace(self.options.namespace.clone())
        .cancellation(self.control.cancel_token().child_token())
        .timeout(timeout)
        .log_sink(self.sink.clone())
        .progress_sink(self.sink.clone())
        .build();
        let params = target.parameters.clone().unwrap_or(serde_json::Value::Null);
        let store = self.store.clone();
        let policy = self.options.retry.clone();
        let operation = self.operation;
        let handle = self.tasks.spawn(async move {
            let executor = CountingExecutor::new(executor);
            let result = match operation {
                Operation::Shutdown => {
                    run_shutdown(&executor, &ctx, &params, store.as_ref(), &policy).await
                }
                Operation::Wakeup => {
                    run_wakeup(&executor, &ctx, &params, store.as_ref(), &policy).await
                }
            };
            (result, executor.attempts())
        });
        self.running.insert(handle.id(), (index, started));
        Ok(())
    }

    fn on_task_done(&mut self, id: Id, result: Result<TargetReport, ExecutorError>, attempts: u32) {
        let Some((index, started)) = self.running.remove(&id) else {
            return;
        };
        let duration = started.elapsed();
        let outcome = match result {
            Ok(report) => Outcome {
                state: ExecutionState::Completed,
                message: None,
                resources: report.resources,
                attempts: attempts.max(report.attempts),
                duration,
            },
            Err(error) => Outcome {
                state: ExecutionState::Failed,
                message: Some(error.to_string()),
                resources: Vec::new(),
                attempts,
                duration,
            },
        };
        self.finish(index, outcome);
    }

    /// Records a dispatched target's outcome, tells the dispatcher and
    /// reports the targets it aborted as a consequence.
    fn finish(&mut self, index: usize, outcome: Outcome) {
        let success = outcome.state == ExecutionState::Completed;
        self.emit(CycleEvent::Finished {
            target: self.targets[index].name.clone(),
            state: outcome.state,
            message: outcome.message.clone(),
            resources: outcome.resources.clone(),
            attempts: outcome.attempts,
            duration: outcome.duration,
        });
        self.outcomes[index] = Some(outcome);
        let pending: Vec<usize> = (0..self.targets.len())
            .filter(|&i| self.dispatcher.state(i) == ExecutionState::Pending)
            .collect();
        self.dispatcher.complete(index, success);
        if success {
            return;
        }
        let failed = &self.targets[index].name;
        let reason = if self.control.is_stopping() {
            format!("interrupted: the cycle was stopped and target {failed:?} failed")
        } else {
            match self.dispatcher.mode() {
                BehaviorMode::Strict => {
                    format!("not started: target {failed:?} failed and the plan's mode is Strict")
                }
                BehaviorMode::BestEffort => {
                    format!("not started: it depends on target {failed:?}, which failed")
                }
            }
        };
        for i in pending {
            if self.dispatcher.state(i) == ExecutionState::Aborted {
                self.abort(i, reason.clone());
            }
        }
    }

    fn abort(&mut self, index: usize, reason: String) {
        self.emit(CycleEvent::Aborted {
            target: self.targets[index].name.clone(),
            reason: reason.clone(),
        });
        self.outcomes[index] = Some(Outcome::aborted(reason));
    }

    fn summary(self) -> CycleSummary {
        let targets: Vec<TargetSummary> = self
            .targets
            .iter()
            .zip(self.outcomes)
            .map(|(target, outcome)| {
                let outcome = outcome.unwrap_or_else(|| Outcome::aborted("not started".into()));
                TargetSummary {
                    name: target.name.clone(),
                    executor: target.kind.clone(),
                    state: outcome.state,
                    message: outcome.message,
                    resources: outcome.resources,
                    attempts: outcome.attempts,
                    duration: outcome.duration,
                }
            })
            .collect();
        CycleSummary {
            operation: self.operation,
            cycle_id: self.options.cycle_id,
            success: targets.iter().all(|t| t.state == ExecutionState::Completed),
            targets,
        }
    }
}
