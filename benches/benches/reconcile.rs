//! Reconcile cost of the controller's pure decision for a 1,000-target plan:
//! what one reconcile computes (validation, schedule, dispatcher, status,
//! Job requests) at the three moments that matter.
//!
//! - `cycle_start`: the off-hours boundary of an Active plan; every target
//!   is released (Parallel, no concurrency limit) → 1,000 Job requests.
//! - `mid_cycle`: the same cycle with half of the Jobs finished.
//! - `steady`: a Hibernated plan between transitions (the common case).
//!
//! `accounting_20_targets` compares `decide` for a 20-target plan without
//! and with a full `status.accounting` (12 months × 20 targets, two price
//! classes each): between transitions (`steady_*`, where accounting only
//! compares) and at the morning boundary (`wake_boundary_*`, where it
//! accrues the night and ends 20 hibernated intervals).
//!
//! Run: `cargo bench -p hibernator-benches --bench reconcile -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use chrono::{DateTime, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use hibernator_core::executor::{Jitter, RetryPolicy};
use hibernator_core::input::PlanDocuments;
use hibernator_core::params::ParameterCatalog;
use std::collections::BTreeMap;

use hibernator_core::types::{
    HibernatePlan, HibernatedTarget, MonthAccounting, Operation, PlanAccounting, TargetMonth,
};
use hibernator_reconcile::{DecideInput, Decision, JobObservation, JobPhase, RestoreView, decide};

/// The allocator of the `hibernator` binary, so the numbers are the binary's.
#[global_allocator]
static ALLOCATOR: hibernator_operator::Allocator = hibernator_operator::Allocator;

const TARGETS: usize = 1_000;

fn plan() -> HibernatePlan {
    plan_of(TARGETS)
}

fn plan_of(count: usize) -> HibernatePlan {
    let targets: String = (0..count)
        .map(|i| format!("    - {{name: t{i}, type: ec2, connectorRef: {{kind: CloudProvider, name: aws}}, parameters: {{selector: {{tags: {{app: t{i}}}}}}}}}\n"))
        .collect();
    let yaml = format!(
        "apiVersion: hibernator.dev/v1alpha1\nkind: HibernatePlan\nmetadata: {{name: dev, namespace: ns, uid: u1, generation: 1}}\nspec:\n  schedule: {{timezone: UTC, offHours: [{{start: \"20:00\", end: \"06:00\", daysOfWeek: [MON, TUE, WED, THU, FRI]}}]}}\n  execution:\n    strategy: {{type: Parallel}}\n  targets:\n{targets}"
    );
    match PlanDocuments::from_yaml(&yaml) {
        Ok(docs) => docs.plan,
        Err(e) => panic!("bench plan does not parse: {e}"),
    }
}

struct World {
    plan: HibernatePlan,
    jobs: Vec<JobObservation>,
    restore: RestoreView,
    catalog: ParameterCatalog,
    backoff: RetryPolicy,
}

impl World {
    fn decide(&self, now: DateTime<Utc>) -> Decision {
        decide(&DecideInput {
            plan: &self.plan,
            exceptions: &[],
            calendars: &[],
            jobs: &self.jobs,
            restore: &self.restore,
            now,
            catalog: &self.catalog,
            backoff: &self.backoff,
            enforce_jobs: &[],
        })
    }

    /// Writes the decision's status and "creates" its Jobs (Running).
    fn apply(&mut self, decision: &Decision, now: DateTime<Utc>) {
        self.plan.status = Some(decision.status.clone());
        for request in &decision.create {
            self.jobs.push(JobObservation {
                name: request.name("dev"),
                target: request.target.clone(),
                operation: request.operation,
                cycle_id: request.cycle_id.clone(),
                attempt: request.attempt,
                phase: JobPhase::Running,
                message: None,
                retryable: true,
                started_at: Some(now),
                finished_at: None,
            });
        }
    }

    /// Finishes every `step`-th running Job successfully.
    fn finish_every(&mut self, step: usize, now: DateTime<Utc>) {
        for job in self.jobs.iter_mut().step_by(step) {
            if job.phase == JobPhase::Running {
                job.phase = JobPhase::Succeeded;
                job.finished_at = Some(now);
                if job.operation == Operation::Shutdown {
                    self.restore.targets.insert(job.target.clone());
                }
            }
        }
    }
}

fn at(s: &str) -> DateTime<Utc> {
    match s.parse() {
        Ok(t) => t,
        Err(e) => panic!("{s}: {e}"),
    }
}

fn bench(c: &mut Criterion) {
    let mut world = World {
        plan: plan(),
        jobs: Vec::new(),
        restore: RestoreView {
            config_map: hibernator_core::wellknown::restore_config_map_name("dev"),
            ..RestoreView::default()
        },
        catalog: hibernator_executors::ExecutorSet::new().catalog(),
        backoff: RetryPolicy {
            max_retries: 0,
            base_delay: std::time::Duration::from_secs(10),
            max_delay: std::time::Duration::from_secs(60),
            jitter: Jitter::None,
        },
    };
    // Settle as Active in the morning, then cross into off-hours.
    let morning = at("2026-11-23T07:00:00Z");
    let first = world.decide(morning);
    world.apply(&first, morning);
    let night = at("2026-11-23T20:00:00Z");

    let mut group = c.benchmark_group("reconcile_1000_targets");
    group.bench_function("cycle_start", |b| {
        b.iter(|| black_box(world.decide(black_box(night))))
    });
    let start = world.decide(night);
    assert_eq!(start.create.len(), TARGETS, "every target released");
    world.apply(&start, night);
    let later = at("2026-11-23T20:05:00Z");
    world.finish_every(2, later);
    group.bench_function("mid_cycle", |b| {
        b.iter(|| black_box(world.decide(black_box(later))))
    });
    let mid = world.decide(later);
    world.apply(&mid, later);
    world.finish_every(1, later);
    let done = world.decide(later);
    world.apply(&done, later);
    let quiet = at("2026-11-23T23:00:00Z");
    group.bench_function("steady_hibernated", |b| {
        b.iter(|| black_box(world.decide(black_box(quiet))))
    });
    group.finish();
}

/// A full year of accounting for `plan`'s targets: 12 months, every
/// target with two classes, every target hibernated since the evening.
fn full_accounting(plan: &HibernatePlan, since: DateTime<Utc>) -> PlanAccounting {
    let classes: BTreeMap<String, u32> = [
        ("ec2.m5.large".to_string(), 2),
        ("ec2.c5.xlarge".to_string(), 1),
    ]
    .into();
    let months = (0..12)
        .map(|i| MonthAccounting {
            month: format!(
                "{}-{:02}",
                if i < 11 { 2026 } else { 2025 },
                if i < 11 { 11 - i } else { 12 }
            ),
            scheduled_seconds: 1_000_000,
            hibernated_seconds: 900_000,
            covered_seconds: 880_000,
            re_enforcements: 2,
            targets: plan
                .spec
                .targets
                .iter()
                .map(|t| TargetMonth {
                    target: t.name.clone(),
                    type_: t.kind.clone(),
                    hibernated_seconds: 900_000,
                    resources: 3,
                    resource_seconds: classes
                        .iter()
                        .map(|(c, n)| (c.clone(), 900_000 * u64::from(*n)))
                        .collect(),
                })
                .collect(),
        })
        .collect();
    PlanAccounting {
        accounted_until: Some(since),
        timezone: Some("UTC".to_string()),
        hibernated: plan
            .spec
            .targets
            .iter()
            .map(|t| HibernatedTarget {
                target: t.name.clone(),
                type_: t.kind.clone(),
                since,
                resources: 3,
                classes: classes.clone(),
            })
            .collect(),
        months,
    }
}

/// `decide` of a 20-target plan without and with a year of accounting.
fn bench_accounting(c: &mut Criterion) {
    let mut world = World {
        plan: plan_of(20),
        jobs: Vec::new(),
        restore: RestoreView {
            config_map: hibernator_core::wellknown::restore_config_map_name("dev"),
            ..RestoreView::default()
        },
        catalog: hibernator_executors::ExecutorSet::new().catalog(),
        backoff: RetryPolicy {
            max_retries: 0,
            base_delay: std::time::Duration::from_secs(10),
            max_delay: std::time::Duration::from_secs(60),
            jitter: Jitter::None,
        },
    };
    // a night: Active, shutdown cycle, every Job done, Hibernated
    let evening = at("2026-11-23T20:00:00Z");
    for now in [at("2026-11-23T07:00:00Z"), evening] {
        let d = world.decide(now);
        world.apply(&d, now);
    }
    let done = at("2026-11-23T20:05:00Z");
    world.finish_every(1, done);
    let d = world.decide(done);
    world.apply(&d, done);
    let with = full_accounting(&world.plan, done);
    let set = |world: &mut World, accounting: Option<PlanAccounting>| {
        if let Some(status) = world.plan.status.as_mut() {
            status.accounting = accounting.map(std::sync::Arc::new);
        }
    };
    let quiet = at("2026-11-23T23:00:00Z");
    let morning = at("2026-11-24T06:00:00Z");
    let mut group = c.benchmark_group("accounting_20_targets");
    set(&mut world, None);
    group.bench_function("steady_without", |b| {
        b.iter(|| black_box(world.decide(black_box(quiet))))
    });
    group.bench_function("wake_boundary_without", |b| {
        b.iter(|| black_box(world.decide(black_box(morning))))
    });
    set(&mut world, Some(with));
    let steady = world.decide(quiet);
    assert_eq!(
        steady.status.accounting,
        world
            .plan
            .status
            .as_ref()
            .and_then(|s| s.accounting.clone()),
        "a quiet reconcile leaves the accounting alone"
    );
    assert!(
        steady
            .status
            .accounting
            .as_ref()
            .zip(
                world
                    .plan
                    .status
                    .as_ref()
                    .and_then(|s| s.accounting.as_ref())
            )
            .is_some_and(|(a, b)| std::sync::Arc::ptr_eq(a, b)),
        "... and shares it (no copy)"
    );
    group.bench_function("steady_with_12_months", |b| {
        b.iter(|| black_box(world.decide(black_box(quiet))))
    });
    let wake = world.decide(morning);
    assert!(
        wake.status
            .accounting
            .as_ref()
            .is_some_and(|a| a.hibernated.is_empty()),
        "the wake-up ends every hibernated interval"
    );
    group.bench_function("wake_boundary_with_12_months", |b| {
        b.iter(|| black_box(world.decide(black_box(morning))))
    });
    group.finish();
}

criterion_group!(benches, bench, bench_accounting);
criterion_main!(benches);
