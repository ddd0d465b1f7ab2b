//! How close the dispatcher's makespan comes to the best possible one.
//!
//! For 100 random DAG plans of 50–500 targets (seeded) with random target
//! durations and a `maxConcurrency`, it simulates a shutdown driven by the
//! real dispatcher ([`makespan`]) (every ready target starts as soon as a slot is free,
//! in the plan's dispatch order) and compares the makespan with the lower
//! bound no scheduler can beat: max(critical path, total work /
//! concurrency). Prints the ratio's mean, median, p95 and worst case.
//!
//! ```sh
//! cargo run --release -p hibernator-core --example makespan
//! cargo run --release -p hibernator-core --example makespan -- --seed 7 --plans 500
//! ```

use std::time::Duration;

use hibernator_core::planner::{ExecutionPlan, makespan};
use hibernator_core::types::{
    ConnectorRef, Dependency, HibernatePlanSpec, Operation, Schedule, StrategyType, Target,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// One random plan: the spec, each target's duration (seconds) and the
/// concurrency limit.
struct Case {
    spec: HibernatePlanSpec,
    durations: Vec<u64>,
    concurrency: u32,
}

fn case(rng: &mut StdRng) -> Case {
    let n: usize = rng.random_range(50..=500);
    let concurrency = [2, 4, 8, 16, 32][rng.random_range(0..5)];
    let targets = (0..n)
        .map(|i| Target {
            name: format!("t{i}"),
            kind: "ec2".into(),
            connector_ref: Some(ConnectorRef::default()),
            ..Target::default()
        })
        .collect();
    // Each target but the first depends on 0–3 earlier ones; a few
    // parents are recent (chains), most anywhere before (fan-in).
    let mut dependencies = Vec::new();
    for to in 1..n {
        for _ in 0..rng.random_range(0..=3) {
            let from = if rng.random_bool(0.5) {
                rng.random_range(to.saturating_sub(5)..to)
            } else {
                rng.random_range(0..to)
            };
            let edge = Dependency {
                from: format!("t{from}"),
                to: format!("t{to}"),
            };
            if !dependencies.contains(&edge) {
                dependencies.push(edge);
            }
        }
    }
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
        targets,
    };
    spec.execution.strategy.kind = StrategyType::Dag;
    spec.execution.strategy.max_concurrency = Some(concurrency);
    spec.execution.strategy.dependencies = dependencies;
    // Executor-like durations: most targets take seconds to a few minutes,
    // some (databases, node groups) ten to fifteen minutes.
    let durations = (0..n)
        .map(|_| {
            if rng.random_bool(0.1) {
                rng.random_range(600..=900)
            } else {
                rng.random_range(5..=180)
            }
        })
        .collect();
    Case {
        spec,
        durations,
        concurrency,
    }
}

/// The makespan of a shutdown driven by the dispatcher.
fn simulate(plan: &ExecutionPlan, durations: &[u64]) -> u64 {
    let durations: Vec<Duration> = durations.iter().map(|&s| Duration::from_secs(s)).collect();
    makespan(plan, &durations).as_secs()
}

/// max(critical path, total work / concurrency).
fn lower_bound(plan: &ExecutionPlan, durations: &[u64], concurrency: u32) -> f64 {
    // dispatch_order of a DAG plan is a topological order.
    let mut finish = vec![0u64; plan.len()];
    for &index in plan.dispatch_order() {
        let start = plan
            .parents(index)
            .iter()
            .map(|&p| finish[p])
            .max()
            .unwrap_or(0);
        finish[index] = start + durations[index];
    }
    let critical = finish.iter().copied().max().unwrap_or(0) as f64;
    let work = durations.iter().sum::<u64>() as f64 / f64::from(concurrency);
    critical.max(work)
}

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let seed = arg("--seed", 0x5eed);
    let plans = arg("--plans", 100);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut ratios = Vec::new();
    let mut worst = (0.0, 0, 0);
    for _ in 0..plans {
        let case = case(&mut rng);
        let plan = match ExecutionPlan::build(&case.spec, Operation::Shutdown) {
            Ok(plan) => plan,
            Err(error) => panic!("generated plan is invalid: {error}"),
        };
        let bound = lower_bound(&plan, &case.durations, case.concurrency);
        let makespan = simulate(&plan, &case.durations) as f64;
        let ratio = makespan / bound;
        if ratio > worst.0 {
            worst = (ratio, case.durations.len(), case.concurrency);
        }
        ratios.push(ratio);
    }
    ratios.sort_by(f64::total_cmp);
    let mean = ratios.iter().sum::<f64>() / ratios.len() as f64;
    let at = |q: f64| ratios[((ratios.len() - 1) as f64 * q).round() as usize];
    println!("plans: {plans} random DAGs of 50–500 targets, seed {seed:#x}");
    println!(
        "makespan / lower bound: mean {mean:.4}, median {:.4}, p95 {:.4}",
        at(0.5),
        at(0.95)
    );
    println!(
        "worst: {:.4} ({} targets, maxConcurrency {})",
        worst.0, worst.1, worst.2
    );
}
