//! Unit tests of the pure controller decisions: a small simulator applies
//! each decision (status written, Jobs "created") and plays the Jobs out.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration as TimeDelta, Utc};
use hibernator_core::executor::{Jitter, RetryPolicy};
use hibernator_core::input::PlanDocuments;
use hibernator_core::types::{
    ExecutionState, HibernatePlan, Operation, PlanPhase, ScheduleException,
};

use super::*;
use crate::model::{JobObservation, JobPhase, RestoreView};

mod calendars;
mod controls;
mod readyby;

const SCHEDULE: &str = "schedule: {timezone: UTC, offHours: [{start: \"20:00\", end: \"06:00\", daysOfWeek: [MON, TUE, WED, THU, FRI]}]}";

pub(super) fn plan_yaml(strategy: &str, targets: &[&str], extra: &str) -> HibernatePlan {
    let targets: String = targets
        .iter()
        .map(|t| format!("    - {{name: {t}, type: ec2, connectorRef: {{kind: CloudProvider, name: aws}}, parameters: {{selector: {{tags: {{app: {t}}}}}}}}}\n"))
        .collect();
    let yaml = format!(
        "apiVersion: hibernator.dev/v1alpha1\nkind: HibernatePlan\nmetadata: {{name: dev, namespace: ns, uid: u1, generation: 1}}\nspec:\n  {SCHEDULE}\n  execution:\n    strategy: {strategy}\n{extra}  targets:\n{targets}"
    );
    PlanDocuments::from_yaml(&yaml).unwrap().plan
}

pub(super) fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// Monday 2026-11-23 21:00 UTC: off-hours.
pub(super) fn night() -> DateTime<Utc> {
    at("2026-11-23T21:00:00Z")
}

/// Tuesday 2026-11-24 07:00 UTC: awake.
pub(super) fn morning() -> DateTime<Utc> {
    at("2026-11-24T07:00:00Z")
}

pub(super) struct Sim {
    plan: HibernatePlan,
    exceptions: Vec<ScheduleException>,
    calendars: Vec<
        Result<hibernator_core::calendar::CalendarDays, hibernator_core::schedule::ScheduleError>,
    >,
    jobs: BTreeMap<String, JobObservation>,
    restore: RestoreView,
    now: DateTime<Utc>,
    catalog: hibernator_core::params::ParameterCatalog,
    backoff: RetryPolicy,
    created: Vec<String>,
    events: Vec<PlanEvent>,
}

impl Sim {
    fn new(plan: HibernatePlan, now: DateTime<Utc>) -> Self {
        Self {
            plan,
            exceptions: vec![],
            calendars: vec![],
            jobs: BTreeMap::new(),
            restore: RestoreView {
                config_map: "hibernator-restore-dev".into(),
                ..RestoreView::default()
            },
            now,
            catalog: hibernator_executors::ExecutorSet::new().catalog(),
            backoff: RetryPolicy {
                max_retries: 0,
                base_delay: std::time::Duration::from_secs(10),
                max_delay: std::time::Duration::from_secs(60),
                jitter: Jitter::None,
            },
            created: vec![],
            events: vec![],
        }
    }

    fn decide(&self) -> Decision {
        let jobs: Vec<JobObservation> = self.jobs.values().cloned().collect();
        decide(&DecideInput {
            plan: &self.plan,
            exceptions: &self.exceptions,
            calendars: &self.calendars,
            jobs: &jobs,
            restore: &self.restore,
            now: self.now,
            catalog: &self.catalog,
            backoff: &self.backoff,
            enforce_jobs: &[],
        })
    }

    /// One reconcile: decide, write status, create Jobs (idempotently).
    fn step(&mut self) -> Decision {
        let d = self.decide();
        self.plan.status = Some(d.status.clone());
        for request in &d.create {
            let name = request.name("dev");
            if !self.jobs.contains_key(&name) {
                self.created.push(name.clone());
                self.jobs.insert(
                    name.clone(),
                    JobObservation {
                        name,
                        target: request.target.clone(),
                        operation: request.operation,
                        cycle_id: request.cycle_id.clone(),
                        attempt: request.attempt,
                        phase: JobPhase::Running,
                        message: None,
                        retryable: true,
                        started_at: Some(self.now),
                        finished_at: None,
                    },
                );
            }
        }
        for name in &d.delete_jobs {
            self.jobs.remove(name);
        }
        self.events.extend(d.events.clone());
        d
    }

    fn running(&self) -> Vec<String> {
        self.jobs
            .values()
            .filter(|j| j.phase == JobPhase::Running)
            .map(|j| j.target.clone())
            .collect()
    }

    /// Finishes every running Job with `outcome(target)` (restore data written on shutdown success).
    fn finish(&mut self, outcome: impl Fn(&str, u32) -> Result<(), (String, bool)>) {
        for job in self
            .jobs
            .values_mut()
            .filter(|j| j.phase == JobPhase::Running)
        {
            job.finished_at = Some(self.now);
            match outcome(&job.target, job.attempt) {
                Ok(()) => {
                    job.phase = JobPhase::Succeeded;
                    match job.operation {
                        Operation::Shutdown => self.restore.targets.insert(job.target.clone()),
                        Operation::Wakeup => self.restore.targets.remove(&job.target),
                    };
                }
                Err((message, retryable)) => {
                    job.phase = JobPhase::Failed;
                    job.message = Some(message);
                    job.retryable = retryable;
                }
            }
        }
    }

    /// Reconciles and finishes Jobs until nothing runs; returns the waves of targets started.
    fn run_to_end(
        &mut self,
        outcome: impl Fn(&str, u32) -> Result<(), (String, bool)>,
    ) -> Vec<Vec<String>> {
        let mut waves = vec![];
        for _ in 0..200 {
            self.step();
            let mut wave = self.running();
            if wave.is_empty() {
                return waves;
            }
            wave.sort();
            waves.push(wave);
            self.finish(&outcome);
        }
        panic!("cycle did not finish");
    }

    fn phase(&self) -> PlanPhase {
        self.plan.status.as_ref().unwrap().phase
    }

    fn exec(&self, target: &str) -> hibernator_core::types::ExecutionStatus {
        self.plan
            .status
            .as_ref()
            .unwrap()
            .executions
            .iter()
            .find(|e| e.target == target)
            .unwrap()
            .clone()
    }
}

fn ok(_: &str, _: u32) -> Result<(), (String, bool)> {
    Ok(())
}

#[test]
fn full_cycle_for_every_strategy() {
    type Case<'a> = (&'a str, &'a str, Vec<Vec<&'a str>>, Vec<Vec<&'a str>>);
    let cases: [Case<'_>; 4] = [
        (
            "{type: Sequential}",
            "",
            vec![vec!["a"], vec!["b"], vec!["c"]],
            vec![vec!["c"], vec!["b"], vec!["a"]],
        ),
        (
            "{type: Parallel, maxConcurrency: 2}",
            "",
            vec![vec!["a", "b"], vec!["c"]],
            vec![vec!["b", "c"], vec!["a"]],
        ),
        (
            "{type: DAG, dependencies: [{from: a, to: b}, {from: a, to: c}]}",
            "",
            vec![vec!["a"], vec!["b", "c"]],
            vec![vec!["b", "c"], vec!["a"]],
        ),
        (
            "{type: Staged, stages: [{name: s1, targets: [a]}, {name: s2, parallel: true, targets: [b, c]}]}",
            "",
            vec![vec!["a"], vec!["b", "c"]],
            vec![vec!["b", "c"], vec!["a"]],
        ),
    ];
    for (strategy, extra, shutdown, wakeup) in cases {
        let mut sim = Sim::new(plan_yaml(strategy, &["a", "b", "c"], extra), night());
        let waves = sim.run_to_end(ok);
        assert_eq!(waves, shutdown, "{strategy} shutdown");
        assert_eq!(sim.phase(), PlanPhase::Hibernated, "{strategy}");
        assert_eq!(sim.restore.targets.len(), 3);
        let status = sim.plan.status.clone().unwrap();
        assert_eq!(status.history.len(), 1);
        assert!(status.history[0].success);
        assert_eq!(status.targets_summary.as_deref(), Some("3/3 hibernated"));
        sim.now = morning();
        let waves = sim.run_to_end(ok);
        assert_eq!(waves, wakeup, "{strategy} wakeup");
        assert_eq!(sim.phase(), PlanPhase::Active, "{strategy}");
        assert!(sim.restore.targets.is_empty());
        assert_eq!(sim.plan.status.as_ref().unwrap().history.len(), 2);
        // one Job per target per cycle
        assert_eq!(sim.created.len(), 6, "{strategy}: {:?}", sim.created);
    }
}

#[test]
fn requeues_exactly_at_the_next_transition_and_is_idempotent() {
    let mut sim = Sim::new(plan_yaml("{type: Parallel}", &["a"], ""), morning());
    let d = sim.step();
    assert_eq!(sim.phase(), PlanPhase::Active);
    assert!(d.create.is_empty());
    assert_eq!(d.requeue_at, Some(at("2026-11-24T20:00:00Z")));
    assert_eq!(d.status.next_transition, Some(at("2026-11-24T20:00:00Z")));
    // a second reconcile of the same world changes nothing
    let again = sim.decide();
    assert_eq!(again.status, sim.plan.status.clone().unwrap());
    assert!(again.create.is_empty() && again.events.is_empty());
    // at the boundary the first Jobs are created in the same reconcile
    sim.now = at("2026-11-24T20:00:00Z");
    let d = sim.step();
    assert_eq!(d.create.len(), 1);
    assert_eq!(sim.phase(), PlanPhase::Hibernating);
    let mid = sim.decide();
    assert_eq!(mid.status, sim.plan.status.clone().unwrap());
    assert!(
        mid.create.is_empty(),
        "running Job is not re-created: {:?}",
        mid.create
    );
}

#[test]
fn lost_status_write_and_missing_jobs_never_duplicate_work() {
    let mut sim = Sim::new(plan_yaml("{type: Parallel}", &["a", "b"], ""), night());
    let d = sim.step();
    assert_eq!(d.create.len(), 2);
    // the Job of `a` vanished (creation failed after the status write): re-requested with the same name
    let name_a = d
        .create
        .iter()
        .find(|r| r.target == "a")
        .unwrap()
        .name("dev");
    sim.jobs.remove(&name_a);
    let d = sim.decide();
    assert_eq!(d.create.len(), 1);
    assert_eq!(d.create[0].name("dev"), name_a);
    // a Job newer than the ledger (status write lost after a retry) is adopted, not duplicated
    let mut status = sim.plan.status.clone().unwrap();
    let cycle = status.current_cycle_id.clone().unwrap();
    status.executions[1].attempts = 1;
    sim.plan.status = Some(status);
    let newer = crate::jobs::job_name("dev", "b", Operation::Shutdown, &cycle, 2);
    sim.jobs.insert(
        newer.clone(),
        JobObservation {
            name: newer.clone(),
            target: "b".into(),
            operation: Operation::Shutdown,
            cycle_id: cycle,
            attempt: 2,
            phase: JobPhase::Succeeded,
            message: None,
            retryable: true,
            started_at: Some(sim.now),
            finished_at: Some(sim.now),
        },
    );
    let d = sim.decide();
    let b = d
        .status
        .executions
        .iter()
        .find(|e| e.target == "b")
        .unwrap();
    assert_eq!((b.attempts, b.state), (2, ExecutionState::Completed));
    assert_eq!(b.execution_id.as_deref(), Some(newer.as_str()));
    assert!(d.create.iter().all(|r| r.target != "b"));
}

#[test]
fn recorded_jobs_missing_after_the_status_write_are_created_again_at_once() {
    // Issue 17: the status (executions Running, jobRefs) was written, then
    // every Job create failed. The next reconcile, whenever it comes and
    // however far the next boundary is, asks for the same Jobs again.
    let mut plan = plan_yaml("{type: Parallel}", &["a", "b"], "");
    plan.spec.behavior.retries = 1;
    let mut sim = Sim::new(plan, night());
    let names = |d: &Decision| d.create.iter().map(|r| r.name("dev")).collect::<Vec<_>>();
    let first = sim.decide();
    assert_eq!(first.create.len(), 2);
    assert!(
        first.missing.is_empty(),
        "Jobs started by this reconcile are not missing: {:?}",
        first.missing
    );
    sim.plan.status = Some(first.status.clone());
    sim.now = night() + TimeDelta::minutes(5);
    let again = sim.decide();
    assert_eq!(names(&again), names(&first), "same deterministic names");
    assert_eq!(again.missing, names(&first));
    for e in &again.status.executions {
        assert_eq!((e.state, e.attempts), (ExecutionState::Running, 1), "{e:?}");
    }
    assert_eq!(again.status.phase, PlanPhase::Hibernating);
    // created now: the next reconcile finds them and asks for nothing
    sim.step();
    let settled = sim.decide();
    assert!(settled.create.is_empty() && settled.missing.is_empty());

    // a retry attempt whose create failed: attempt 2 is asked for again, not attempt 1
    sim.finish(|target, _| {
        if target == "a" {
            Err(("throttled".into(), true))
        } else {
            Ok(())
        }
    });
    sim.step();
    let retry_at = sim.exec("a").next_retry_at.expect("retry scheduled");
    sim.now = retry_at;
    let retry = sim.decide();
    assert_eq!(retry.create.len(), 1);
    assert!(retry.missing.is_empty());
    let a2 = retry.create[0].name("dev");
    assert!(a2.ends_with("-a2"), "{a2}");
    sim.plan.status = Some(retry.status.clone());
    sim.now = retry_at + TimeDelta::seconds(30);
    let again = sim.decide();
    assert_eq!(names(&again), vec![a2.clone()]);
    assert_eq!(again.missing, vec![a2]);
}

#[test]
fn retries_with_backoff_then_strict_failure_aborts_the_rest() {
    let mut plan = plan_yaml("{type: Sequential}", &["a", "b"], "");
    plan.spec.behavior.retries = 1;
    let mut sim = Sim::new(plan, night());
    sim.step();
    sim.finish(|_, _| Err(("throttled".into(), true)));
    let d = sim.step();
    let a = sim.exec("a");
    assert_eq!(a.state, ExecutionState::Running);
    let retry_at = a.next_retry_at.expect("retry scheduled");
    assert_eq!(
        retry_at,
        night() + TimeDelta::seconds(10),
        "base delay for the first retry"
    );
    assert_eq!(d.requeue_at, Some(retry_at));
    assert!(d.create.is_empty());
    assert!(d.events.iter().any(|e| e.reason == "RetryScheduled"));
    assert!(d.finished.iter().any(|f| !f.success));
    // before the backoff nothing happens
    sim.now = retry_at - TimeDelta::seconds(1);
    assert!(sim.step().create.is_empty());
    // What the runner of attempt 1 streamed into the status.
    for e in &mut sim.plan.status.as_mut().unwrap().executions {
        if e.target == "a" {
            e.progress = Some(40);
            e.message = Some("throttled".into());
            e.progress_time = Some(night());
        }
    }
    sim.now = retry_at;
    let d = sim.step();
    assert_eq!(d.create.len(), 1);
    assert_eq!(d.create[0].attempt, 2);
    assert!(d.create[0].name("dev").ends_with("-a2"));
    let a = sim.exec("a");
    assert_eq!(
        (a.progress, a.message, a.progress_time),
        (None, None, None),
        "attempt 2 does not start with attempt 1's runner progress"
    );
    assert!(
        a.execution_id
            .as_deref()
            .is_some_and(|id| id.ends_with("-a2"))
    );
    sim.finish(|_, _| Err(("AccessDenied".into(), false)));
    let d = sim.step();
    assert_eq!(sim.exec("a").state, ExecutionState::Failed);
    assert_eq!(sim.exec("b").state, ExecutionState::Aborted);
    assert_eq!(sim.phase(), PlanPhase::Error);
    assert!(
        d.events
            .iter()
            .any(|e| e.reason == "TargetFailed" && e.warning)
    );
    assert!(d.events.iter().any(|e| e.reason == "CycleFailed"));
    let degraded = d
        .status
        .conditions
        .iter()
        .find(|c| c.type_ == "Degraded")
        .unwrap();
    assert_eq!(degraded.status, "True");
}

#[test]
fn permanent_errors_are_not_retried_and_best_effort_continues() {
    let mut plan = plan_yaml(
        "{type: DAG, dependencies: [{from: a, to: b}]}",
        &["a", "b", "c"],
        "",
    );
    plan.spec.behavior.mode = hibernator_core::types::BehaviorMode::BestEffort;
    let mut sim = Sim::new(plan, night());
    sim.run_to_end(|t, _| {
        if t == "a" {
            Err(("denied".into(), false))
        } else {
            Ok(())
        }
    });
    assert_eq!(sim.exec("a").state, ExecutionState::Failed);
    assert_eq!(sim.exec("a").attempts, 1);
    assert_eq!(sim.exec("b").state, ExecutionState::Aborted);
    assert_eq!(sim.exec("c").state, ExecutionState::Completed);
    assert_eq!(sim.phase(), PlanPhase::Error);
    // at the wake-up boundary the Error plan wakes what was hibernated
    sim.now = morning();
    let waves = sim.run_to_end(ok);
    assert_eq!(waves, vec![vec!["c".to_string()]]);
    assert_eq!(sim.phase(), PlanPhase::Active);
    assert!(
        sim.exec("a")
            .message
            .as_deref()
            .unwrap()
            .starts_with("skipped")
    );
}

#[test]
fn retry_now_reruns_failed_targets_with_new_attempts() {
    let mut sim = Sim::new(plan_yaml("{type: Parallel}", &["a", "b"], ""), night());
    sim.run_to_end(|t, _| {
        if t == "b" {
            Err(("boom".into(), false))
        } else {
            Ok(())
        }
    });
    assert_eq!(sim.phase(), PlanPhase::Error);
    sim.plan.metadata.annotations = Some(
        [(
            hibernator_core::wellknown::ANNOTATION_RETRY_NOW.to_string(),
            "1".to_string(),
        )]
        .into(),
    );
    let d = sim.step();
    assert_eq!(d.create.len(), 1);
    assert_eq!((d.create[0].target.as_str(), d.create[0].attempt), ("b", 2));
    assert_eq!(sim.phase(), PlanPhase::Hibernating);
    sim.finish(ok);
    sim.step();
    assert_eq!(sim.phase(), PlanPhase::Hibernated);
    // the same token does not retry again
    assert!(sim.step().create.is_empty());
}

#[test]
fn invalid_spec_is_an_error_without_jobs_or_requeue() {
    let mut plan = plan_yaml(
        "{type: DAG, dependencies: [{from: a, to: b}, {from: b, to: a}]}",
        &["a", "b"],
        "",
    );
    plan.spec.schedule.timezone = "UTC".into();
    let sim = Sim::new(plan, night());
    let d = sim.decide();
    assert_eq!(d.status.phase, PlanPhase::Error);
    assert!(
        d.invalid.as_deref().unwrap().contains("cycle"),
        "{:?}",
        d.invalid
    );
    assert!(d.create.is_empty());
    assert_eq!(d.requeue_at, None);
    assert!(d.events.iter().any(|e| e.reason == "InvalidSpec"));
}

#[test]
fn wakeup_without_any_restore_data_creates_no_jobs() {
    let mut sim = Sim::new(plan_yaml("{type: Parallel}", &["a"], ""), night());
    sim.run_to_end(ok);
    sim.restore.targets.clear();
    sim.now = morning();
    let d = sim.step();
    assert!(d.create.is_empty());
    assert!(d.events.iter().any(|e| e.reason == "NoRestoreData"));
    assert_eq!(sim.phase(), PlanPhase::Active);
}

#[test]
fn new_cycle_prunes_finished_jobs_of_older_cycles() {
    let mut sim = Sim::new(plan_yaml("{type: Parallel}", &["a"], ""), night());
    sim.run_to_end(ok);
    let first = sim.created.clone();
    sim.now = morning();
    sim.run_to_end(ok);
    sim.now = at("2026-11-24T20:00:00Z");
    let d = sim.step();
    assert_eq!(d.delete_jobs, first);
}
