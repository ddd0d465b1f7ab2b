//! Dispatcher behaviour: per-dependency readiness, failure modes, restarts.

use pretty_assertions::assert_eq;

use super::{MODES, both, dag, ix, spec, stage};
use crate::planner::{Dispatcher, ExecutionPlan, ready_targets};
use crate::types::{BehaviorMode, ExecutionState, Operation, StrategyType};

use ExecutionState::{Aborted, Completed, Failed, Pending, Running};

#[test]
fn dag_readiness_is_per_dependency_not_per_level() {
    // a -> c, b -> d: when b finishes first, d starts while a (same level) still runs.
    let (plan, _) = both(&dag(&["a", "b", "c", "d"], &[("a", "c"), ("b", "d")]));
    let mut d = Dispatcher::new(plan.clone(), BehaviorMode::Strict);
    assert_eq!(d.next_ready(), ix(&plan, &["a", "b"]));
    assert_eq!(d.next_ready(), Vec::<usize>::new());
    d.complete(1, true);
    assert_eq!(d.next_ready(), ix(&plan, &["d"]));
    assert_eq!(d.states(), &[Running, Completed, Pending, Running]);
    assert_eq!(d.running(), 2);
    d.complete(0, true);
    assert_eq!(d.next_ready(), ix(&plan, &["c"]));
    d.complete(2, true);
    assert!(!d.is_finished());
    d.complete(3, true);
    assert!(d.is_finished());
    assert_eq!(d.next_ready(), Vec::<usize>::new());
}

#[test]
fn wakeup_readiness_follows_reversed_edges() {
    let (_, plan) = both(&dag(&["a", "b", "c"], &[("a", "b"), ("b", "c")]));
    let mut d = Dispatcher::new(plan, BehaviorMode::Strict);
    assert_eq!(d.next_ready(), vec![2]);
    d.complete(2, true);
    assert_eq!(d.next_ready(), vec![1]);
    d.complete(1, true);
    assert_eq!(d.next_ready(), vec![0]);
}

#[test]
fn strict_aborts_pending_and_lets_running_finish() {
    let mut s = spec(StrategyType::Parallel, &["a", "b", "c", "d"]);
    s.execution.strategy.max_concurrency = Some(2);
    let (plan, _) = both(&s);
    let mut d = Dispatcher::new(plan, BehaviorMode::Strict);
    assert_eq!(d.next_ready(), vec![0, 1]);
    d.complete(0, false);
    assert_eq!(d.states(), &[Failed, Running, Aborted, Aborted]);
    assert_eq!(d.next_ready(), Vec::<usize>::new());
    assert!(!d.is_finished());
    d.complete(1, true);
    assert_eq!(d.states(), &[Failed, Completed, Aborted, Aborted]);
    assert!(d.is_finished());
}

#[test]
fn strict_stops_later_stages() {
    let mut s = spec(StrategyType::Staged, &["a", "b", "c"]);
    s.execution.strategy.stages = vec![
        stage("one", true, None, &["a", "b"]),
        stage("two", true, None, &["c"]),
    ];
    let (plan, _) = both(&s);
    let mut d = Dispatcher::new(plan, BehaviorMode::Strict);
    assert_eq!(d.next_ready(), vec![0, 1]);
    d.complete(1, false);
    d.complete(0, true);
    assert_eq!(d.states(), &[Completed, Failed, Aborted]);
    assert!(d.is_finished());
}

#[test]
fn best_effort_aborts_transitive_dependents_only() {
    let (plan, _) = both(&dag(
        &["a", "b", "c", "d", "e"],
        &[("a", "b"), ("b", "c"), ("d", "e")],
    ));
    let mut d = Dispatcher::new(plan, BehaviorMode::BestEffort);
    assert_eq!(d.next_ready(), vec![0, 3]);
    d.complete(0, false);
    assert_eq!(d.states(), &[Failed, Aborted, Aborted, Running, Pending]);
    d.complete(3, true);
    assert_eq!(d.next_ready(), vec![4]);
    d.complete(4, true);
    assert_eq!(
        d.states(),
        &[Failed, Aborted, Aborted, Completed, Completed]
    );
    assert!(d.is_finished());
}

#[test]
fn best_effort_continues_sequential_and_staged() {
    let (plan, _) = both(&spec(StrategyType::Sequential, &["a", "b"]));
    let mut d = Dispatcher::new(plan, BehaviorMode::BestEffort);
    assert_eq!(d.next_ready(), vec![0]);
    d.complete(0, false);
    assert_eq!(d.next_ready(), vec![1]);

    let mut s = spec(StrategyType::Staged, &["a", "b", "c"]);
    s.execution.strategy.stages = vec![
        stage("one", true, None, &["a", "b"]),
        stage("two", true, None, &["c"]),
    ];
    let (plan, _) = both(&s);
    let mut d = Dispatcher::new(plan, BehaviorMode::BestEffort);
    assert_eq!(d.next_ready(), vec![0, 1]);
    d.complete(0, false);
    assert_eq!(
        d.next_ready(),
        Vec::<usize>::new(),
        "stage barrier waits for b"
    );
    d.complete(1, true);
    assert_eq!(d.next_ready(), vec![2]);
}

#[test]
fn staged_barrier_waits_for_every_target_of_the_stage() {
    let mut s = spec(StrategyType::Staged, &["a", "b", "c"]);
    s.execution.strategy.stages = vec![
        stage("one", true, None, &["a", "b"]),
        stage("two", true, None, &["c"]),
    ];
    let (plan, _) = both(&s);
    let mut d = Dispatcher::new(plan, BehaviorMode::Strict);
    assert_eq!(d.next_ready(), vec![0, 1]);
    d.complete(0, true);
    assert_eq!(d.next_ready(), Vec::<usize>::new());
    d.complete(1, true);
    assert_eq!(d.next_ready(), vec![2]);
}

#[test]
fn complete_ignores_targets_that_are_not_running() {
    let (plan, _) = both(&spec(StrategyType::Parallel, &["a", "b"]));
    let mut d = Dispatcher::new(plan, BehaviorMode::Strict);
    d.complete(0, false);
    d.complete(7, true);
    assert_eq!(d.states(), &[Pending, Pending]);
    assert_eq!(d.state(9), Pending);
    assert_eq!(d.next_ready(), vec![0, 1]);
    d.complete(0, true);
    d.complete(0, false);
    assert_eq!(d.state(0), Completed);
    assert_eq!(d.running(), 1);
}

#[test]
fn from_states_counts_running_against_limits() {
    let mut s = spec(StrategyType::Parallel, &["a", "b", "c", "d"]);
    s.execution.strategy.max_concurrency = Some(2);
    let (plan, _) = both(&s);
    let states = [Completed, Running, Pending, Pending];
    assert_eq!(ready_targets(&plan, BehaviorMode::Strict, &states), vec![2]);
    let mut d = Dispatcher::from_states(plan.clone(), BehaviorMode::Strict, &states);
    assert_eq!(d.running(), 1);
    assert_eq!(d.next_ready(), vec![2]);
    d.complete(1, true);
    assert_eq!(d.next_ready(), vec![3]);
    // Short ledgers are padded with Pending.
    assert_eq!(
        ready_targets(&plan, BehaviorMode::Strict, &[Running]),
        vec![1]
    );
}

#[test]
fn from_states_applies_implied_aborts() {
    let (plan, _) = both(&dag(&["a", "b", "c"], &[("a", "b")]));
    let states = [Failed, Pending, Pending];
    let strict = Dispatcher::from_states(plan.clone(), BehaviorMode::Strict, &states);
    assert_eq!(strict.states(), &[Failed, Aborted, Aborted]);
    assert!(strict.is_finished());
    let mut best = Dispatcher::from_states(plan.clone(), BehaviorMode::BestEffort, &states);
    assert_eq!(best.states(), &[Failed, Aborted, Pending]);
    assert_eq!(best.next_ready(), vec![2]);
    assert_eq!(
        ready_targets(&plan, BehaviorMode::Strict, &states),
        Vec::<usize>::new()
    );
    assert_eq!(
        ready_targets(&plan, BehaviorMode::BestEffort, &states),
        vec![2]
    );
}

#[test]
fn restart_at_every_step_matches_uninterrupted_run() {
    let mut s = dag(
        &["a", "b", "c", "d", "e", "f"],
        &[("a", "c"), ("b", "c"), ("c", "d"), ("a", "e"), ("e", "f")],
    );
    s.execution.strategy.max_concurrency = Some(2);
    for operation in [Operation::Shutdown, Operation::Wakeup] {
        for mode in MODES {
            let plan = ExecutionPlan::build(&s, operation).unwrap();
            let mut live = Dispatcher::new(plan.clone(), mode);
            let mut step = 0;
            while !live.is_finished() {
                let restarted = Dispatcher::from_states(plan.clone(), mode, live.states());
                assert_eq!(restarted.states(), live.states());
                assert_eq!(restarted.running(), live.running());
                let expected = ready_targets(&plan, mode, live.states());
                let mut restarted = restarted;
                assert_eq!(restarted.next_ready(), expected);
                assert_eq!(live.next_ready(), expected);
                let first = (0..plan.len()).find(|&i| live.state(i) == Running).unwrap();
                live.complete(first, step % 3 != 1);
                step += 1;
            }
        }
    }
}

#[test]
fn dispatcher_exposes_its_plan_and_mode() {
    let (plan, _) = both(&spec(StrategyType::Parallel, &["a"]));
    let d = Dispatcher::new(plan, BehaviorMode::BestEffort);
    assert_eq!(d.plan().target_name(0), "a");
    assert_eq!(d.mode(), BehaviorMode::BestEffort);
}
