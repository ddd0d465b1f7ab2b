//! Unit tests of enforcement scheduling: a plan goes through a real shutdown
//! cycle with `decide`, then checks are due by the (manual) clock.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration as TimeDelta, Utc};
use hibernator_core::executor::{Jitter, RetryPolicy};
use hibernator_core::input::PlanDocuments;
use hibernator_core::params::ParameterCatalog;
use hibernator_core::types::{EnforceResult, HibernatePlan, Operation, PlanPhase};

use super::*;
use crate::decide::decide;
use crate::model::{JobObservation, RestoreView};

fn plan(enforce: &str) -> HibernatePlan {
    let yaml = format!(
        "apiVersion: hibernator.dev/v1alpha1\nkind: HibernatePlan\nmetadata: {{name: dev, namespace: ns, uid: u1, generation: 1}}\nspec:\n  schedule: {{timezone: UTC, offHours: [{{start: \"20:00\", end: \"06:00\", daysOfWeek: [MON, TUE, WED, THU, FRI]}}]}}\n{enforce}  targets:\n    - {{name: db, type: rds, connectorRef: {{kind: CloudProvider, name: aws}}, parameters: {{selector: {{instanceIds: [orders-db]}}}}}}\n    - {{name: vm, type: ec2, connectorRef: {{kind: CloudProvider, name: aws}}, parameters: {{selector: {{tags: {{app: vm}}}}}}}}\n"
    );
    PlanDocuments::from_yaml(&yaml).unwrap().plan
}

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// Monday 21:00 UTC, one hour into the off-hours (until Tuesday 06:00).
fn night() -> DateTime<Utc> {
    at("2026-11-23T21:00:00Z")
}

struct Sim {
    plan: HibernatePlan,
    now: DateTime<Utc>,
    jobs: Vec<JobObservation>,
    enforce_jobs: BTreeMap<String, EnforceJobObservation>,
    restore: RestoreView,
    catalog: ParameterCatalog,
    backoff: RetryPolicy,
    events: Vec<PlanEvent>,
}

impl Sim {
    fn new(plan: HibernatePlan) -> Self {
        Self {
            plan,
            now: night(),
            jobs: vec![],
            enforce_jobs: BTreeMap::new(),
            restore: RestoreView::default(),
            catalog: hibernator_executors::ExecutorSet::new().catalog(),
            backoff: RetryPolicy {
                max_retries: 0,
                base_delay: std::time::Duration::from_secs(10),
                max_delay: std::time::Duration::from_secs(60),
                jitter: Jitter::None,
            },
            events: vec![],
        }
    }

    /// One reconcile; cycle Jobs finish successfully at once, enforce Jobs
    /// are created running.
    fn step(&mut self) -> Decision {
        let enforce_jobs: Vec<EnforceJobObservation> =
            self.enforce_jobs.values().cloned().collect();
        let d = decide(&DecideInput {
            plan: &self.plan,
            exceptions: &[],
            calendars: &[],
            jobs: &self.jobs,
            restore: &self.restore,
            now: self.now,
            catalog: &self.catalog,
            backoff: &self.backoff,
            enforce_jobs: &enforce_jobs,
        });
        self.plan.status = Some(d.status.clone());
        for request in &d.create {
            let name = request.name("dev");
            self.jobs.retain(|j| j.name != name);
            self.jobs.push(JobObservation {
                name,
                target: request.target.clone(),
                operation: request.operation,
                cycle_id: request.cycle_id.clone(),
                attempt: request.attempt,
                phase: JobPhase::Succeeded,
                message: None,
                retryable: true,
                started_at: Some(self.now),
                finished_at: Some(self.now),
            });
            match request.operation {
                Operation::Shutdown => self.restore.targets.insert(request.target.clone()),
                Operation::Wakeup => self.restore.targets.remove(&request.target),
            };
        }
        for request in &d.enforce_create {
            let name = request.name("dev");
            self.enforce_jobs
                .entry(name.clone())
                .or_insert(EnforceJobObservation {
                    name,
                    target: request.target.clone(),
                    check_id: request.check_id.clone(),
                    phase: JobPhase::Running,
                    result: None,
                    failure: None,
                });
        }
        for name in &d.delete_jobs {
            self.enforce_jobs.remove(name);
        }
        self.events.extend(d.events.clone());
        d
    }

    /// Steps until nothing changes (the shutdown cycle runs to its end).
    fn settle(&mut self) -> Decision {
        for _ in 0..20 {
            let d = self.step();
            if d.create.is_empty() && d.status == *self.plan.status.as_ref().unwrap() {
                let again = self.step();
                if again.create.is_empty() {
                    return again;
                }
            }
        }
        panic!("did not settle");
    }

    fn finish_enforce(&mut self, target: &str, result: Result<u32, &str>) {
        let job = self
            .enforce_jobs
            .values_mut()
            .find(|j| j.target == target && j.phase == JobPhase::Running)
            .expect("a running enforce Job");
        match result {
            Ok(n) => {
                job.phase = JobPhase::Succeeded;
                job.result = Some(TerminationMessage {
                    success: true,
                    message: "enforcement done".into(),
                    resources: 2,
                    attempts: 1,
                    rehibernated: Some(n),
                });
            }
            Err(message) => {
                job.phase = JobPhase::Failed;
                job.result = Some(TerminationMessage {
                    success: false,
                    message: message.into(),
                    resources: 0,
                    attempts: 1,
                    rehibernated: None,
                });
            }
        }
    }

    fn enforcement(&self) -> EnforcementStatus {
        self.plan
            .status
            .as_ref()
            .and_then(|s| s.enforcement.clone())
            .expect("status.enforcement")
    }

    fn phase(&self) -> PlanPhase {
        self.plan.status.as_ref().unwrap().phase
    }
}

fn hibernated(enforce: &str) -> Sim {
    let mut sim = Sim::new(plan(enforce));
    sim.settle();
    assert_eq!(sim.phase(), PlanPhase::Hibernated);
    sim
}

#[test]
fn by_default_rds_targets_are_checked_one_interval_after_the_shutdown_and_then_every_interval() {
    let mut sim = hibernated("");
    let st = sim.enforcement();
    let first = night() + TimeDelta::hours(1);
    assert_eq!(st.next_check_at, Some(first));
    assert_eq!(
        st.cycle_id,
        sim.plan.status.as_ref().unwrap().current_cycle_id
    );

    sim.now = night() + TimeDelta::minutes(59);
    let d = sim.step();
    assert!(d.enforce_create.is_empty());
    assert_eq!(d.requeue_at, Some(first), "requeued exactly at the check");

    sim.now = first;
    let d = sim.step();
    let targets: Vec<&str> = d.enforce_create.iter().map(|r| r.target.as_str()).collect();
    assert_eq!(targets, ["db"], "rds only by default");
    let request = &d.enforce_create[0];
    assert_eq!(request.cycle_id, sim.enforcement().cycle_id.unwrap());
    let name = request.name("dev");
    assert!(name.len() <= 63 && name.starts_with("dev-db-ef-"), "{name}");
    let st = sim.enforcement();
    assert_eq!(st.pending_targets, ["db"]);
    assert_eq!(st.next_check_at, None);
    assert_eq!(st.last_check_at, Some(first));

    // Still running: nothing new; finished: folded.
    sim.now = first + TimeDelta::minutes(1);
    assert!(sim.step().enforce_create.is_empty());
    sim.finish_enforce("db", Ok(2));
    let d = sim.step();
    let st = sim.enforcement();
    assert_eq!(st.woke_up_count, 2);
    assert_eq!(st.last_result, Some(EnforceResult::ReHibernated));
    assert!(st.pending_targets.is_empty());
    assert_eq!(st.next_check_at, Some(first + TimeDelta::hours(1)));
    assert!(st.message.as_deref().unwrap().contains("2 resources"));
    assert_eq!(d.enforced.len(), 1);
    assert_eq!(d.enforced[0].rehibernated, 2);
    assert_eq!(d.enforced[0].executor, "rds");
    // ... and counted in the month's accounting (the savings report's
    // re-enforcements column).
    let accounting = sim
        .plan
        .status
        .as_ref()
        .unwrap()
        .accounting
        .clone()
        .unwrap();
    assert_eq!(accounting.months[0].month, "2026-11");
    assert_eq!(accounting.months[0].re_enforcements, 2);
    let warnings: Vec<_> = d
        .events
        .iter()
        .filter(|e| e.reason == "ReEnforced")
        .collect();
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].warning);

    // The next check finds nothing awake: no Event, the counter stays.
    sim.now = first + TimeDelta::hours(1);
    assert_eq!(sim.step().enforce_create.len(), 1);
    sim.finish_enforce("db", Ok(0));
    let d = sim.step();
    assert!(d.events.is_empty(), "{:?}", d.events);
    let st = sim.enforcement();
    assert_eq!(st.woke_up_count, 2);
    assert_eq!(st.last_result, Some(EnforceResult::NoDrift));
    assert!(
        d.delete_jobs.is_empty(),
        "the last check's Jobs stay for kubectl logs"
    );
    // The check after that deletes the Jobs of the earlier checks.
    sim.now = first + TimeDelta::hours(2);
    let d = sim.step();
    assert_eq!(d.enforce_create.len(), 1);
    assert_eq!(d.delete_jobs.len(), 1);
}

#[test]
fn enabled_covers_every_supporting_target_with_its_interval_and_false_covers_none() {
    let mut sim = hibernated("  behavior: {enforce: {enabled: true, interval: 30m}}\n");
    sim.now = night() + TimeDelta::minutes(30);
    let d = sim.step();
    let mut targets: Vec<&str> = d.enforce_create.iter().map(|r| r.target.as_str()).collect();
    targets.sort_unstable();
    assert_eq!(targets, ["db", "vm"]);
    sim.finish_enforce("db", Ok(1));
    sim.step();
    assert_eq!(
        sim.enforcement().pending_targets,
        ["vm"],
        "waits for every target"
    );
    sim.finish_enforce("vm", Err("AccessDenied: not authorized"));
    let d = sim.step();
    let st = sim.enforcement();
    assert_eq!(st.last_result, Some(EnforceResult::Failed));
    assert_eq!(st.woke_up_count, 1);
    assert!(
        d.events
            .iter()
            .any(|e| e.reason == "EnforceFailed" && e.note.contains("AccessDenied"))
    );
    assert!(d.events.iter().any(|e| e.reason == "ReEnforced"));

    let mut off = hibernated("  behavior: {enforce: {enabled: false}}\n");
    off.now = night() + TimeDelta::hours(5);
    let d = off.step();
    assert!(d.enforce_create.is_empty());
    assert_eq!(off.plan.status.as_ref().unwrap().enforcement, None);
}

#[test]
fn a_wakeup_stops_the_running_check_and_starts_its_jobs_once_the_check_is_gone() {
    let mut sim = hibernated("");
    sim.now = night() + TimeDelta::hours(1);
    assert_eq!(sim.step().enforce_create.len(), 1);
    let job = enforce_job_name("dev", "db", sim.enforcement().check_id.as_deref().unwrap());
    // 06:00 Tuesday: wake-up time, the enforce Job still runs. The check is
    // dropped and its Job stopped (in the foreground); the wake-up cycle is
    // recorded but creates no Job while the check's runner may still act.
    sim.now = at("2026-11-24T06:00:00Z");
    let d = sim.step();
    assert_eq!(sim.phase(), PlanPhase::WakingUp);
    assert!(d.create.is_empty(), "held: {:?}", d.create);
    assert_eq!(d.stop_jobs, std::slice::from_ref(&job));
    assert!(!d.delete_jobs.contains(&job));
    assert_eq!(
        d.requeue_at,
        Some(sim.now + crate::enforce::HOLD_RECHECK),
        "looks again soon"
    );
    assert!(d.enforce_create.is_empty());
    let st = sim.enforcement();
    assert!(st.pending_targets.is_empty());
    assert_eq!(st.next_check_at, None);
    // Still there (its Pod terminating): still held, stopped again.
    sim.now += TimeDelta::seconds(5);
    let d = sim.step();
    assert!(d.create.is_empty());
    assert_eq!(d.stop_jobs, std::slice::from_ref(&job));
    // Gone: the wake-up's Job is created under its recorded name.
    sim.enforce_jobs.clear();
    sim.now += TimeDelta::seconds(5);
    let d = sim.step();
    assert_eq!(d.create.len(), 1, "Sequential: one target");
    assert_eq!(d.create[0].operation, Operation::Wakeup);
    assert!(d.stop_jobs.is_empty());
    // While awake (and during the wake-up cycle), no checks are scheduled.
    let d = sim.settle();
    assert_eq!(sim.phase(), PlanPhase::Active);
    assert!(d.enforce_create.is_empty());
    assert_eq!(sim.enforcement().next_check_at, None);
}

#[test]
fn no_check_during_an_open_cycle_or_while_suspended_and_the_next_hibernation_starts_over() {
    let mut sim = hibernated("");
    // Suspended: phase Suspended, no checks.
    sim.plan.spec.suspend = true;
    sim.now = night() + TimeDelta::hours(2);
    let d = sim.step();
    assert_eq!(sim.phase(), PlanPhase::Suspended);
    assert!(d.enforce_create.is_empty());
    assert_eq!(sim.enforcement().next_check_at, None);
    sim.plan.spec.suspend = false;
    let d = sim.step();
    assert_eq!(sim.phase(), PlanPhase::Hibernated);
    assert_eq!(
        d.enforce_create.len(),
        1,
        "overdue check after the suspension"
    );

    // The next night's hibernation anchors its first check at its own end.
    let mut sim = hibernated("");
    sim.now = at("2026-11-24T06:00:00Z");
    sim.settle();
    assert_eq!(sim.phase(), PlanPhase::Active);
    let tuesday = at("2026-11-24T20:00:00Z");
    sim.now = tuesday;
    let d = sim.step();
    assert_eq!(sim.phase(), PlanPhase::Hibernating);
    assert!(d.enforce_create.is_empty(), "never while a cycle is open");
    sim.settle();
    assert_eq!(sim.phase(), PlanPhase::Hibernated);
    let st = sim.enforcement();
    assert_eq!(st.next_check_at, Some(tuesday + TimeDelta::hours(1)));
    assert_eq!(
        st.cycle_id,
        sim.plan.status.as_ref().unwrap().current_cycle_id
    );
}

#[test]
fn a_pending_job_that_is_missing_is_created_again_and_targets_without_restore_data_are_skipped() {
    let mut sim = hibernated("");
    sim.now = night() + TimeDelta::hours(1);
    let first = sim.step().enforce_create;
    sim.enforce_jobs.clear();
    let again = sim.step().enforce_create;
    assert_eq!(again, first, "same deterministic request");

    let mut sim = hibernated("");
    sim.restore.targets.remove("db");
    sim.now = night() + TimeDelta::hours(3);
    assert!(sim.step().enforce_create.is_empty());
}

#[test]
fn enforce_jobs_are_read_from_their_labels_and_termination_message() {
    use hibernator_core::wellknown::{LABEL_ENFORCE_CHECK, LABEL_OPERATION, LABEL_TARGET};
    use k8s_openapi::api::batch::v1::JobStatus;
    let mut job = Job::default();
    job.metadata.name = Some("dev-db-ef-e1".into());
    job.metadata.labels = Some(
        [
            (LABEL_OPERATION.to_string(), "enforce".to_string()),
            (LABEL_TARGET.to_string(), "db".to_string()),
            (LABEL_ENFORCE_CHECK.to_string(), "e1".to_string()),
        ]
        .into(),
    );
    let o = observe_enforce_job(&job, None).unwrap();
    assert_eq!(
        (o.target.as_str(), o.check_id.as_str(), o.phase),
        ("db", "e1", JobPhase::Running)
    );
    job.status = Some(JobStatus {
        succeeded: Some(1),
        ..JobStatus::default()
    });
    let message = TerminationMessage {
        success: true,
        message: "ok".into(),
        resources: 3,
        attempts: 1,
        rehibernated: Some(1),
    };
    let o = observe_enforce_job(&job, Some(&message.to_json())).unwrap();
    assert_eq!(o.phase, JobPhase::Succeeded);
    assert_eq!(o.result, Some(message));
    // A cycle Job is not an enforce Job.
    job.metadata
        .labels
        .as_mut()
        .unwrap()
        .insert(LABEL_OPERATION.into(), "shutdown".into());
    assert_eq!(observe_enforce_job(&job, None), None);
}
