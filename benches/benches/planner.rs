//! Planner and dispatcher benchmarks: building an [`ExecutionPlan`] and fully
//! dispatching it (every ready target completes at once, until the plan is
//! finished) for chains, wide parallel plans and random DAGs of 1k, 10k and
//! 100k targets.
//!
//! Targets: a 10k-target random DAG fully dispatched in ≤ 5 ms, 100k in
//! ≤ 60 ms, growing linearly.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use hibernator_core::planner::{Dispatcher, ExecutionPlan};
use hibernator_core::types::{
    BehaviorMode, ConnectorRef, Dependency, HibernatePlanSpec, Operation, Schedule, StrategyType,
    Target,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const SIZES: [usize; 3] = [1_000, 10_000, 100_000];

/// A plan of `n` `ec2` targets with the given strategy type.
fn base(n: usize, kind: StrategyType) -> HibernatePlanSpec {
    let mut spec = HibernatePlanSpec {
        schedule: Schedule {
            timezone: "UTC".into(),
            off_hours: Vec::new(),
            calendars: Vec::new(),
        },
        execution: Default::default(),
        behavior: Default::default(),
        suspend: false,
        on_delete: Default::default(),
        wake_up: None,
        targets: (0..n)
            .map(|i| Target {
                name: format!("target-{i}"),
                kind: "ec2".into(),
                connector_ref: Some(ConnectorRef::default()),
                ..Target::default()
            })
            .collect(),
    };
    spec.execution.strategy.kind = kind;
    spec
}

fn edge(from: usize, to: usize) -> Dependency {
    Dependency {
        from: format!("target-{from}"),
        to: format!("target-{to}"),
    }
}

/// `target-0 -> target-1 -> …`: n waves of one target.
fn chain(n: usize) -> HibernatePlanSpec {
    let mut spec = base(n, StrategyType::Dag);
    spec.execution.strategy.dependencies = (1..n).map(|i| edge(i - 1, i)).collect();
    spec
}

/// Parallel with `maxConcurrency: 50`.
fn wide(n: usize) -> HibernatePlanSpec {
    let mut spec = base(n, StrategyType::Parallel);
    spec.execution.strategy.max_concurrency = Some(50);
    spec
}

/// Random DAG: every target but the first gets 3 parents among the earlier ones (seeded).
fn random_dag(n: usize) -> HibernatePlanSpec {
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let mut spec = base(n, StrategyType::Dag);
    spec.execution.strategy.dependencies = (1..n)
        .flat_map(|to| {
            let parents: Vec<usize> = (0..3).map(|_| rng.random_range(0..to)).collect();
            parents.into_iter().map(move |from| edge(from, to))
        })
        .collect();
    spec
}

fn build(spec: &HibernatePlanSpec) -> ExecutionPlan {
    match ExecutionPlan::build(spec, Operation::Shutdown) {
        Ok(plan) => plan,
        Err(error) => panic!("benchmark plan is invalid: {error}"),
    }
}

/// Dispatches `plan` to the end; returns the number of waves.
fn dispatch(plan: ExecutionPlan) -> usize {
    let mut dispatcher = Dispatcher::new(plan, BehaviorMode::Strict);
    let mut waves = 0;
    loop {
        let ready = dispatcher.next_ready();
        if ready.is_empty() {
            break;
        }
        waves += 1;
        for index in ready {
            dispatcher.complete(index, true);
        }
    }
    assert!(dispatcher.is_finished());
    waves
}

type Shape = (&'static str, fn(usize) -> HibernatePlanSpec);

const SHAPES: [Shape; 3] = [("chain", chain), ("wide", wide), ("random_dag", random_dag)];

fn planner(c: &mut Criterion) {
    for (shape, make) in SHAPES {
        let mut group = c.benchmark_group(format!("planner/{shape}"));
        for n in SIZES {
            if n >= 100_000 {
                group.sample_size(10);
            }
            group.throughput(Throughput::Elements(n as u64));
            let spec = make(n);
            let plan = build(&spec);
            group.bench_with_input(BenchmarkId::new("build", n), &spec, |b, spec| {
                b.iter(|| build(black_box(spec)));
            });
            group.bench_with_input(BenchmarkId::new("dispatch", n), &plan, |b, plan| {
                b.iter(|| dispatch(black_box(plan.clone())));
            });
            group.bench_with_input(
                BenchmarkId::new("build_and_dispatch", n),
                &spec,
                |b, spec| {
                    b.iter(|| dispatch(build(black_box(spec))));
                },
            );
        }
        group.finish();
    }
}

criterion_group!(benches, planner);
criterion_main!(benches);
