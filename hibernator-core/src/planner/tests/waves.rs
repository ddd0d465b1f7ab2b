//! Exact waves of every strategy, mirrored wake-up and rendering.

use pretty_assertions::assert_eq;

use super::{both, dag, spec, stage, w};
use crate::types::{Operation, StrategyType};

#[test]
fn sequential_runs_in_list_order_and_reverses_on_wakeup() {
    let (down, up) = both(&spec(StrategyType::Sequential, &["a", "b", "c"]));
    assert_eq!(down.waves(), w("[[a],[b],[c]]"));
    assert_eq!(up.waves(), w("[[c],[b],[a]]"));
    assert_eq!(down.max_concurrency(), Some(1));
    assert!(down.parents(1).is_empty());
    assert_eq!(down.operation(), Operation::Shutdown);
    assert_eq!(up.operation(), Operation::Wakeup);
    assert_eq!(down.strategy(), StrategyType::Sequential);
}

#[test]
fn sequential_ignores_max_concurrency() {
    let mut s = spec(StrategyType::Sequential, &["a", "b"]);
    s.execution.strategy.max_concurrency = Some(5);
    assert_eq!(both(&s).0.waves(), w("[[a],[b]]"));
}

#[test]
fn parallel_unbounded_starts_everything_at_once() {
    let (down, up) = both(&spec(StrategyType::Parallel, &["a", "b", "c", "d"]));
    assert_eq!(down.waves(), w("[[a,b,c,d]]"));
    assert_eq!(up.waves(), w("[[d,c,b,a]]"));
}

#[test]
fn parallel_bounded_fills_slots_in_list_order() {
    let mut s = spec(StrategyType::Parallel, &["a", "b", "c", "d", "e"]);
    s.execution.strategy.max_concurrency = Some(2);
    let (down, up) = both(&s);
    assert_eq!(down.waves(), w("[[a,b],[c,d],[e]]"));
    assert_eq!(up.waves(), w("[[e,d],[c,b],[a]]"));
}

#[test]
fn tie_breaking_follows_the_list_not_the_names() {
    let mut s = spec(StrategyType::Parallel, &["zeta", "alpha", "mid"]);
    s.execution.strategy.max_concurrency = Some(1);
    let (down, up) = both(&s);
    assert_eq!(down.waves(), w("[[zeta],[alpha],[mid]]"));
    assert_eq!(up.waves(), w("[[mid],[alpha],[zeta]]"));
}

#[test]
fn dag_diamond_and_its_mirror() {
    let s = dag(
        &["a", "b", "c", "d"],
        &[("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")],
    );
    let (down, up) = both(&s);
    assert_eq!(down.waves(), w("[[a],[b,c],[d]]"));
    assert_eq!(up.waves(), w("[[d],[c,b],[a]]"));
    assert_eq!(down.parents(3), &[1, 2]);
    assert_eq!(up.parents(0), &[1, 2]);
    assert_eq!(up.parents(3), &[] as &[usize]);
    assert_eq!(down.children(0), &[1, 2]);
}

#[test]
fn dag_respects_global_limit() {
    let mut s = dag(
        &["a", "b", "c", "d", "e"],
        &[("a", "e"), ("b", "e"), ("c", "e"), ("d", "e")],
    );
    s.execution.strategy.max_concurrency = Some(3);
    let (down, up) = both(&s);
    assert_eq!(down.waves(), w("[[a,b,c],[d],[e]]"));
    assert_eq!(up.waves(), w("[[e],[d,c,b],[a]]"));
}

#[test]
fn dag_without_edges_is_parallel() {
    let (down, up) = both(&dag(&["a", "b"], &[]));
    assert_eq!(down.waves(), w("[[a,b]]"));
    assert_eq!(up.waves(), w("[[b,a]]"));
}

#[test]
fn staged_parallel_and_serial_stages_with_limits() {
    let mut s = spec(StrategyType::Staged, &["a", "b", "c", "d", "e"]);
    s.execution.strategy.stages = vec![
        stage("apps", true, Some(2), &["a", "b", "c"]),
        stage("data", false, None, &["d", "e"]),
    ];
    let (down, up) = both(&s);
    assert_eq!(down.waves(), w("[[a,b],[c],[d],[e]]"));
    assert_eq!(up.waves(), w("[[e],[d],[c,b],[a]]"));
    assert_eq!(down.stage_names(), vec!["apps", "data"]);
    assert_eq!(up.stage_names(), vec!["data", "apps"]);
}

#[test]
fn staged_stage_order_beats_target_order_and_global_limit_applies() {
    let mut s = spec(StrategyType::Staged, &["a", "b", "c", "d"]);
    s.execution.strategy.max_concurrency = Some(2);
    s.execution.strategy.stages = vec![
        stage("first", true, None, &["d", "c", "b"]),
        stage("last", true, None, &["a"]),
    ];
    let (down, up) = both(&s);
    assert_eq!(down.waves(), w("[[d,c],[b],[a]]"));
    assert_eq!(up.waves(), w("[[a],[b,c],[d]]"));
}

#[test]
fn empty_plan_has_no_waves() {
    for kind in [
        StrategyType::Sequential,
        StrategyType::Parallel,
        StrategyType::Dag,
    ] {
        let (down, _) = both(&spec(kind, &[]));
        assert!(down.is_empty());
        assert_eq!(down.len(), 0);
        assert!(down.waves().is_empty());
    }
}

#[test]
fn duplicate_target_names_do_not_panic() {
    for kind in [
        StrategyType::Sequential,
        StrategyType::Parallel,
        StrategyType::Dag,
    ] {
        let mut s = spec(kind, &["a", "b", "a"]);
        if kind == StrategyType::Dag {
            s = dag(&["a", "b", "a"], &[("a", "b")]);
        }
        let (down, _) = both(&s);
        assert_eq!(down.index_of("a"), Some(0));
        assert_eq!(down.waves().iter().map(Vec::len).sum::<usize>(), 3);
    }
    let mut s = spec(StrategyType::Staged, &["a", "a"]);
    s.execution.strategy.stages = vec![stage("one", true, None, &["a"])];
    let error = crate::planner::ExecutionPlan::build(&s, Operation::Shutdown).unwrap_err();
    assert_eq!(error.field(), "spec.targets[1]");
}

#[test]
fn dot_shows_edges_clusters_and_chains() {
    let s = dag(&["a", "b", "c"], &[("a", "b"), ("a", "c")]);
    let (down, up) = both(&s);
    let dot = down.to_dot();
    assert!(
        dot.starts_with("digraph \"hibernator-shutdown\" {"),
        "{dot}"
    );
    assert!(
        dot.contains("  \"a\" -> \"b\";\n  \"a\" -> \"c\";\n"),
        "{dot}"
    );
    assert_eq!(dot, down.to_dot());
    let dot = up.to_dot();
    assert!(dot.contains("  \"b\" -> \"a\";\n"), "{dot}");
    assert!(dot.contains("  \"c\" -> \"a\";\n"), "{dot}");
    assert!(!dot.contains("\"a\" -> "), "{dot}");

    let (chain, _) = both(&spec(StrategyType::Sequential, &["x", "y\"q", "z"]));
    let dot = chain.to_dot();
    assert!(
        dot.contains("  \"x\" -> \"y\\\"q\";\n  \"y\\\"q\" -> \"z\";\n"),
        "{dot}"
    );

    let mut s = spec(StrategyType::Staged, &["a", "b", "c"]);
    s.execution.strategy.stages = vec![
        stage("one", true, None, &["a", "b"]),
        stage("two", false, None, &["c"]),
    ];
    let (down, up) = both(&s);
    let dot = down.to_dot();
    assert!(
        dot.contains("subgraph \"cluster_0\" {\n    label=\"one\";\n    \"a\";\n    \"b\";\n  }"),
        "{dot}"
    );
    assert!(
        dot.contains("\"a\" -> \"c\" [ltail=\"cluster_0\", lhead=\"cluster_1\"];"),
        "{dot}"
    );
    let dot = up.to_dot();
    assert!(
        dot.contains("subgraph \"cluster_0\" {\n    label=\"two\";"),
        "{dot}"
    );
    assert!(
        dot.contains("\"c\" -> \"b\" [ltail=\"cluster_0\", lhead=\"cluster_1\"];"),
        "{dot}"
    );

    let (par, _) = both(&spec(StrategyType::Parallel, &["a", "b"]));
    assert!(!par.to_dot().contains("->"));
}
