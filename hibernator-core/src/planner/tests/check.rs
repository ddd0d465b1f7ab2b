//! `check_execution` and `ExecutionPlan::build` errors with exact field paths.

use pretty_assertions::assert_eq;

use super::{dag, spec, stage};
use crate::diag::Diagnostic;
use crate::planner::{ExecutionPlan, PlanError, check_execution};
use crate::types::{Operation, StrategyType};

fn errors(s: &crate::types::HibernatePlanSpec) -> Vec<String> {
    check_execution(s)
        .errors
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn valid_plans_have_no_diagnostics() {
    let s = dag(&["a", "b", "c"], &[("a", "b"), ("b", "c")]);
    let d = check_execution(&s);
    assert!(d.is_valid(), "{d:?}");
    assert!(d.warnings.is_empty());
}

#[test]
fn unknown_dependency_targets_name_the_edge() {
    let s = dag(
        &["a", "b", "c"],
        &[("a", "b"), ("b", "c"), ("a", "c"), ("a", "x"), ("y", "b")],
    );
    assert_eq!(
        errors(&s),
        vec![
            r#"spec.execution.strategy.dependencies[3].to: unknown target "x" (edge a -> x)"#,
            r#"spec.execution.strategy.dependencies[4].from: unknown target "y" (edge y -> b)"#,
        ]
    );
    let error = ExecutionPlan::build(&s, Operation::Shutdown).unwrap_err();
    assert_eq!(error.field(), "spec.execution.strategy.dependencies[3].to");
    assert_eq!(error.message(), r#"unknown target "x" (edge a -> x)"#);
    assert!(matches!(error, PlanError::UnknownDependencyTarget { ref name, .. } if name == "x"));
}

#[test]
fn self_dependency_is_rejected() {
    let s = dag(&["a", "b"], &[("a", "b"), ("b", "b")]);
    assert_eq!(
        errors(&s),
        vec![r#"spec.execution.strategy.dependencies[1]: target "b" depends on itself"#]
    );
}

#[test]
fn duplicate_edges_are_warnings() {
    let s = dag(&["a", "b"], &[("a", "b"), ("a", "b")]);
    let d = check_execution(&s);
    assert!(d.is_valid());
    assert_eq!(
        d.warnings,
        vec![Diagnostic::new(
            "spec.execution.strategy.dependencies[1]",
            "duplicate edge a -> b (same as dependencies[0]); ignored"
        )]
    );
    let plan = ExecutionPlan::build(&s, Operation::Shutdown).unwrap();
    assert_eq!(plan.parents(1), &[0]);
}

#[test]
fn cycles_are_named_in_order() {
    let s = dag(
        &["x", "a", "b", "c", "d"],
        &[("x", "a"), ("b", "c"), ("a", "b"), ("c", "a"), ("c", "d")],
    );
    assert_eq!(
        errors(&s),
        vec!["spec.execution.strategy.dependencies[2]: dependency cycle: a -> b -> c -> a"]
    );
    let error = ExecutionPlan::build(&s, Operation::Wakeup).unwrap_err();
    assert_eq!(
        error,
        PlanError::Cycle {
            field: "spec.execution.strategy.dependencies[2]".into(),
            cycle: vec!["a".into(), "b".into(), "c".into(), "a".into()],
        }
    );
}

#[test]
fn every_cycle_is_reported_and_the_shortest_one_named() {
    let s = dag(
        &["a", "b", "c", "d", "e"],
        &[
            ("a", "b"),
            ("b", "c"),
            ("c", "a"),
            ("b", "a"),
            ("d", "e"),
            ("e", "d"),
        ],
    );
    assert_eq!(
        errors(&s),
        vec![
            "spec.execution.strategy.dependencies[0]: dependency cycle: a -> b -> a",
            "spec.execution.strategy.dependencies[4]: dependency cycle: d -> e -> d",
        ]
    );
}

#[test]
fn dependencies_and_stages_need_their_strategy() {
    let mut s = dag(&["a", "b"], &[("a", "b")]);
    s.execution.strategy.kind = StrategyType::Parallel;
    s.execution.strategy.stages = vec![stage("one", true, None, &["a", "b"])];
    assert_eq!(
        errors(&s),
        vec![
            "spec.execution.strategy.dependencies: dependencies are only used with type DAG (type is Parallel)",
            "spec.execution.strategy.stages: stages are only used with type Staged (type is Parallel)",
        ]
    );
    let s = spec(StrategyType::Staged, &["a"]);
    assert_eq!(
        errors(&s),
        vec!["spec.execution.strategy.stages: type Staged needs at least one stage"]
    );
    assert!(matches!(
        ExecutionPlan::build(&s, Operation::Shutdown),
        Err(PlanError::MissingStages { .. })
    ));
}

#[test]
fn stage_errors_have_exact_paths() {
    let mut s = spec(StrategyType::Staged, &["a", "b", "c", "d"]);
    s.execution.strategy.stages = vec![
        stage("one", true, None, &["a", "b"]),
        stage("", true, None, &["c"]),
        stage("one", true, Some(0), &["b", "zz"]),
    ];
    assert_eq!(
        errors(&s),
        vec![
            "spec.execution.strategy.stages[1].name: stage name must not be empty",
            r#"spec.execution.strategy.stages[2].name: duplicate stage name "one" (also used by stages[0])"#,
            "spec.execution.strategy.stages[2].maxConcurrency: maxConcurrency must be at least 1 (leave it unset for no limit)",
            r#"spec.execution.strategy.stages[2].targets[0]: target "b" is already in stage "one""#,
            r#"spec.execution.strategy.stages[2].targets[1]: unknown target "zz" in stage "one""#,
            r#"spec.targets[3]: target "d" is not in any stage"#,
        ]
    );
}

#[test]
fn stage_warnings() {
    let mut s = spec(StrategyType::Staged, &["a"]);
    s.execution.strategy.stages = vec![
        stage("one", false, Some(3), &["a"]),
        stage("two", true, None, &[]),
    ];
    let d = check_execution(&s);
    assert!(d.is_valid());
    let fields: Vec<&str> = d.warnings.iter().map(|w| w.field.as_str()).collect();
    assert_eq!(
        fields,
        vec![
            "spec.execution.strategy.stages[0].maxConcurrency",
            "spec.execution.strategy.stages[1].targets",
        ]
    );
    let (down, up) = super::both(&s);
    assert_eq!(down.waves(), super::w("[[a]]"));
    assert_eq!(up.waves(), super::w("[[a]]"));
}

#[test]
fn zero_max_concurrency_is_rejected() {
    let mut s = spec(StrategyType::Parallel, &["a"]);
    s.execution.strategy.max_concurrency = Some(0);
    assert_eq!(
        errors(&s),
        vec![
            "spec.execution.strategy.maxConcurrency: maxConcurrency must be at least 1 (leave it unset for no limit)"
        ]
    );
    s.execution.strategy.kind = StrategyType::Sequential;
    assert_eq!(errors(&s).len(), 1);
    s.execution.strategy.max_concurrency = Some(2);
    let d = check_execution(&s);
    assert!(d.is_valid());
    assert_eq!(
        d.warnings[0].field,
        "spec.execution.strategy.maxConcurrency"
    );
}

#[test]
fn build_returns_the_first_error_and_check_returns_all() {
    let mut s = dag(&["a", "b"], &[("a", "q"), ("b", "b")]);
    s.execution.strategy.max_concurrency = Some(0);
    let all = check_execution(&s);
    assert_eq!(all.errors.len(), 3);
    let first = ExecutionPlan::build(&s, Operation::Shutdown).unwrap_err();
    assert_eq!(first.field(), all.errors[0].field);
    assert_eq!(first.message(), all.errors[0].message);
    assert_eq!(first.to_string(), all.errors[0].to_string());
}
