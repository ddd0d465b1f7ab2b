//! Planner and dispatcher tests.

mod check;
mod dispatch;
mod docs;
mod props;
mod waves;

use crate::types::{
    Behavior, BehaviorMode, ConnectorKind, ConnectorRef, Dependency, Execution, HibernatePlanSpec,
    OffHourWindow, OnDelete, Operation, Schedule, Stage, Strategy, StrategyType, Target,
};

use super::ExecutionPlan;

/// A spec with the given strategy type and targets (all `ec2`).
pub(super) fn spec(kind: StrategyType, names: &[&str]) -> HibernatePlanSpec {
    HibernatePlanSpec {
        schedule: Schedule {
            timezone: "UTC".into(),
            off_hours: vec![OffHourWindow {
                start: "20:00".into(),
                end: "06:00".into(),
                days_of_week: vec!["MON".into()],
            }],
            calendars: Vec::new(),
        },
        execution: Execution {
            strategy: Strategy {
                kind,
                ..Strategy::default()
            },
        },
        behavior: Behavior::default(),
        suspend: false,
        on_delete: OnDelete::default(),
        wake_up: None,
        targets: names
            .iter()
            .map(|name| Target {
                name: (*name).to_string(),
                kind: "ec2".into(),
                connector_ref: Some(ConnectorRef::new(ConnectorKind::CloudProvider, "aws")),
                ..Target::default()
            })
            .collect(),
    }
}

/// A DAG spec with edges given as `(from, to)`.
pub(super) fn dag(names: &[&str], edges: &[(&str, &str)]) -> HibernatePlanSpec {
    let mut s = spec(StrategyType::Dag, names);
    s.execution.strategy.dependencies = edges
        .iter()
        .map(|(from, to)| Dependency {
            from: (*from).to_string(),
            to: (*to).to_string(),
        })
        .collect();
    s
}

/// A stage.
pub(super) fn stage(name: &str, parallel: bool, limit: Option<u32>, targets: &[&str]) -> Stage {
    Stage {
        name: name.into(),
        parallel,
        max_concurrency: limit,
        targets: targets.iter().map(|t| (*t).to_string()).collect(),
    }
}

/// Builds both operations, panicking on errors.
pub(super) fn both(spec: &HibernatePlanSpec) -> (ExecutionPlan, ExecutionPlan) {
    (
        ExecutionPlan::build(spec, Operation::Shutdown).unwrap(),
        ExecutionPlan::build(spec, Operation::Wakeup).unwrap(),
    )
}

/// Parses `[[a],[b,c]]` into waves.
pub(super) fn w(text: &str) -> Vec<Vec<String>> {
    yaml_serde::from_str(text).unwrap()
}

/// Indices of `names` in `plan`.
pub(super) fn ix(plan: &ExecutionPlan, names: &[&str]) -> Vec<usize> {
    names.iter().map(|n| plan.index_of(n).unwrap()).collect()
}

/// Every failure mode.
pub(super) const MODES: [BehaviorMode; 2] = [BehaviorMode::Strict, BehaviorMode::BestEffort];
