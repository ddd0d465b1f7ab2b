//! Property tests over random plans, completion orders and failures.

use proptest::prelude::*;

use super::{spec, stage};
use crate::planner::{Dispatcher, ExecutionPlan, ready_targets};
use crate::types::{
    BehaviorMode, Dependency, ExecutionState, HibernatePlanSpec, Operation, StrategyType,
};

/// A random valid plan: strategy, targets, edges (acyclic by construction
/// through a random topological order), stages and limits.
fn arb_spec() -> impl Strategy<Value = HibernatePlanSpec> {
    (1usize..24, 0usize..4, proptest::option::of(1u32..5))
        .prop_flat_map(|(n, kind, limit)| {
            (
                Just(n),
                Just(kind),
                Just(limit),
                Just((0..n).collect::<Vec<usize>>()).prop_shuffle(),
                proptest::collection::vec((0..n, 0..n), 0..n * 3),
                proptest::collection::vec(
                    (0..4usize, any::<bool>(), proptest::option::of(1u32..4)),
                    n,
                ),
            )
        })
        .prop_map(|(n, kind, limit, topo, pairs, placement)| {
            let names: Vec<String> = (0..n).map(|i| format!("t{i}")).collect();
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            let kind = [
                StrategyType::Sequential,
                StrategyType::Parallel,
                StrategyType::Dag,
                StrategyType::Staged,
            ][kind];
            let mut s = spec(kind, &refs);
            s.execution.strategy.max_concurrency = limit;
            match kind {
                StrategyType::Dag => {
                    s.execution.strategy.dependencies = pairs
                        .into_iter()
                        .filter(|(x, y)| x < y)
                        .map(|(x, y)| Dependency {
                            from: names[topo[x]].clone(),
                            to: names[topo[y]].clone(),
                        })
                        .collect();
                }
                StrategyType::Staged => {
                    let mut stages: Vec<_> = (0..4)
                        .map(|k| {
                            let (_, parallel, limit) = placement[k % n];
                            stage(&format!("s{k}"), parallel, limit, &[])
                        })
                        .collect();
                    for &i in &topo {
                        stages[placement[i].0].targets.push(names[i].clone());
                    }
                    s.execution.strategy.stages = stages;
                }
                _ => {}
            }
            s
        })
}

/// Drives a dispatcher to the end with completion order and outcomes taken
/// from `choices`, checking every invariant on the way.
fn run(
    plan: &ExecutionPlan,
    mode: BehaviorMode,
    choices: &[(u8, bool)],
) -> Result<(), TestCaseError> {
    let n = plan.len();
    let inner = plan.inner();
    let mut d = Dispatcher::new(plan.clone(), mode);
    let mut steps = 0usize;
    let mut failed_seen = false;
    let mut running: Vec<usize> = Vec::new();
    while !d.is_finished() {
        let expected = ready_targets(plan, mode, d.states());
        let started = d.next_ready();
        prop_assert_eq!(&started, &expected, "pure and incremental answers differ");
        if mode == BehaviorMode::Strict && failed_seen {
            prop_assert!(started.is_empty(), "Strict started after a failure");
        }
        for &i in &started {
            for &p in plan.parents(i) {
                prop_assert_eq!(
                    d.state(p),
                    ExecutionState::Completed,
                    "{} started before parent {}",
                    i,
                    p
                );
            }
            if let Some(&s) = inner.stage_of.get(i) {
                for earlier in &inner.stages[..s] {
                    for &m in &earlier.members {
                        prop_assert!(d.state(m).is_terminal(), "stage barrier broken");
                    }
                }
            }
        }
        running.extend(started);
        prop_assert_eq!(d.running(), running.len());
        if let Some(limit) = plan.max_concurrency() {
            prop_assert!(d.running() <= limit as usize, "global limit exceeded");
        }
        for stage in &inner.stages {
            let in_stage = stage
                .members
                .iter()
                .filter(|&&m| d.state(m) == ExecutionState::Running)
                .count();
            prop_assert!(
                in_stage <= stage.limit.map_or(usize::MAX, |l| l as usize),
                "stage limit exceeded"
            );
        }
        prop_assert!(
            !running.is_empty(),
            "stuck: nothing running, nothing ready, not finished"
        );
        let (pick, success) = choices[steps % choices.len()];
        let i = running.swap_remove(pick as usize % running.len());
        d.complete(i, success);
        failed_seen |= !success;
        steps += 1;
        prop_assert!(steps <= n, "more completions than targets");
        // A restart from the ledger agrees with the live dispatcher.
        let restarted = Dispatcher::from_states(plan.clone(), mode, d.states());
        prop_assert_eq!(restarted.states(), d.states());
    }
    for i in 0..n {
        let state = d.state(i);
        prop_assert!(state.is_terminal());
        if state == ExecutionState::Aborted && mode == BehaviorMode::BestEffort {
            // BestEffort aborts only dependents of a failure.
            prop_assert!(
                plan.parents(i).iter().any(|&p| matches!(
                    d.state(p),
                    ExecutionState::Failed | ExecutionState::Aborted
                )),
                "{} aborted without a failed or aborted parent",
                i
            );
        }
        if state == ExecutionState::Completed || state == ExecutionState::Failed {
            for &p in plan.parents(i) {
                prop_assert_eq!(d.state(p), ExecutionState::Completed);
            }
        }
    }
    if !failed_seen {
        prop_assert!(d.states().iter().all(|s| *s == ExecutionState::Completed));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn dispatch_never_violates_the_plan(
        s in arb_spec(),
        choices in proptest::collection::vec((any::<u8>(), prop::bool::weighted(0.85)), 1..64),
        best_effort in any::<bool>(),
    ) {
        prop_assert!(crate::planner::check_execution(&s).is_valid());
        let mode = if best_effort { BehaviorMode::BestEffort } else { BehaviorMode::Strict };
        for operation in [Operation::Shutdown, Operation::Wakeup] {
            let plan = ExecutionPlan::build(&s, operation).unwrap();
            run(&plan, mode, &choices)?;
        }
    }

    #[test]
    fn wakeup_mirrors_shutdown(s in arb_spec()) {
        let down = ExecutionPlan::build(&s, Operation::Shutdown).unwrap();
        let up = ExecutionPlan::build(&s, Operation::Wakeup).unwrap();
        for i in 0..down.len() {
            prop_assert_eq!(up.parents(i), down.children(i));
            prop_assert_eq!(up.children(i), down.parents(i));
        }
        let mut reversed = down.dispatch_order().to_vec();
        reversed.reverse();
        prop_assert_eq!(up.dispatch_order(), &reversed[..]);
        // Every target appears in exactly one wave.
        let mut seen: Vec<String> = down.waves().into_iter().flatten().collect();
        seen.sort();
        let mut all: Vec<String> = (0..down.len()).map(|i| down.target_name(i).to_string()).collect();
        all.sort();
        prop_assert_eq!(seen, all);
    }

    #[test]
    fn chain_waves_reverse(
        order in Just((0..12usize).collect::<Vec<_>>()).prop_shuffle(),
        limit in proptest::option::of(1u32..4),
    ) {
        let names: Vec<String> = (0..order.len()).map(|i| format!("t{i}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let edges: Vec<(&str, &str)> = order.windows(2).map(|p| (refs[p[0]], refs[p[1]])).collect();
        let mut s = super::dag(&refs, &edges);
        s.execution.strategy.max_concurrency = limit;
        let down = ExecutionPlan::build(&s, Operation::Shutdown).unwrap().waves();
        let mut up = ExecutionPlan::build(&s, Operation::Wakeup).unwrap().waves();
        up.reverse();
        prop_assert_eq!(&down, &up);
        prop_assert_eq!(down.len(), order.len());
        prop_assert_eq!(&down[0][0], &names[order[0]]);

        let seq = super::both(&spec(StrategyType::Sequential, &refs));
        let mut up = seq.1.waves();
        up.reverse();
        prop_assert_eq!(seq.0.waves(), up);
    }

    #[test]
    fn random_graphs_with_cycles_are_rejected_with_a_real_cycle(
        n in 2usize..12,
        pairs in proptest::collection::vec((0usize..12, 0usize..12), 1..30),
    ) {
        let names: Vec<String> = (0..n).map(|i| format!("t{i}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let edges: Vec<(&str, &str)> = pairs
            .iter()
            .filter(|(a, b)| a % n != b % n)
            .map(|(a, b)| (refs[a % n], refs[b % n]))
            .collect();
        let s = super::dag(&refs, &edges);
        let diags = crate::planner::check_execution(&s);
        // Reference answer: a topological sort succeeds iff there is no cycle.
        let mut graph = petgraph::graphmap::DiGraphMap::<usize, ()>::new();
        for i in 0..n { graph.add_node(i); }
        for (a, b) in &pairs { if a % n != b % n { graph.add_edge(a % n, b % n, ()); } }
        let acyclic = petgraph::algo::toposort(&graph, None).is_ok();
        prop_assert_eq!(diags.is_valid(), acyclic);
        match ExecutionPlan::build(&s, Operation::Shutdown) {
            Ok(_) => prop_assert!(acyclic),
            Err(crate::planner::PlanError::Cycle { cycle, .. }) => {
                prop_assert!(cycle.len() >= 3);
                prop_assert_eq!(cycle.first(), cycle.last());
                for pair in cycle.windows(2) {
                    let a = names.iter().position(|x| *x == pair[0]).unwrap();
                    let b = names.iter().position(|x| *x == pair[1]).unwrap();
                    prop_assert!(graph.contains_edge(a, b), "{} -> {} is not an edge", a, b);
                }
            }
            Err(other) => prop_assert!(false, "unexpected error {}", other),
        }
    }
}

/// The longest chain of `durations` along the plan's dependency edges
/// (relaxed once per target, so no order is assumed).
fn longest_chain(plan: &ExecutionPlan, durations: &[std::time::Duration]) -> std::time::Duration {
    let mut finish = durations.to_vec();
    for _ in 0..plan.len() {
        for i in 0..plan.len() {
            let start = plan.parents(i).iter().map(|&p| finish[p]).max();
            finish[i] = start.unwrap_or_default() + durations[i];
        }
    }
    finish.into_iter().max().unwrap_or_default()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The expected wake-up duration (ready-by lead) under every strategy:
    /// the dispatcher-driven makespan equals the closed form where one
    /// exists and always lies between the longest chain and the total work.
    #[test]
    fn makespan_is_the_critical_path_under_every_strategy(
        spec in arb_spec(),
        seconds in proptest::collection::vec(0u64..3600, 24),
        operation in prop_oneof![Just(Operation::Shutdown), Just(Operation::Wakeup)],
    ) {
        let plan = ExecutionPlan::build(&spec, operation).unwrap();
        let durations: Vec<std::time::Duration> = seconds[..plan.len()]
            .iter()
            .map(|&s| std::time::Duration::from_secs(s))
            .collect();
        let got = crate::planner::makespan(&plan, &durations);
        let total: std::time::Duration = durations.iter().sum();
        let chain = longest_chain(&plan, &durations);
        prop_assert!(got <= total, "{:?} > total work {:?}", got, total);
        prop_assert!(got >= chain, "{:?} < longest chain {:?}", got, chain);
        let longest = durations.iter().max().copied().unwrap_or_default();
        prop_assert!(got >= longest);
        let inner = plan.inner();
        let unbounded = plan.max_concurrency().is_none();
        match plan.strategy() {
            StrategyType::Sequential => prop_assert_eq!(got, total),
            StrategyType::Parallel if unbounded => prop_assert_eq!(got, longest),
            StrategyType::Dag if unbounded => prop_assert_eq!(got, chain),
            StrategyType::Staged
                if unbounded && inner.stages.iter().all(|s| matches!(s.limit, None | Some(1))) =>
            {
                // Stage after stage: a parallel stage without a limit takes
                // its longest target, a sequential (limit 1) stage the sum.
                let expected: std::time::Duration = inner
                    .stages
                    .iter()
                    .map(|stage| {
                        let each = stage.members.iter().map(|&m| durations[m]);
                        match stage.limit {
                            None => each.max().unwrap_or_default(),
                            _ => each.sum(),
                        }
                    })
                    .sum();
                prop_assert_eq!(got, expected);
            }
            _ => {}
        }
    }
}
