//! Structural checks of `spec.execution` and compilation into a [`PlanInner`].

use std::collections::HashMap;
use std::sync::OnceLock;

use super::graph::{self, Edge};
use super::names::{NameIndex, Names};
use super::{Adjacency, PlanError, PlanInner, Ranks, StagePlan};
use crate::diag::{Diagnostic, Diagnostics};
use crate::types::{HibernatePlanSpec, Operation, StrategyType};

pub(crate) const STRATEGY_FIELD: &str = "spec.execution.strategy";
pub(crate) const DEPENDENCIES_FIELD: &str = "spec.execution.strategy.dependencies";
pub(crate) const STAGES_FIELD: &str = "spec.execution.strategy.stages";

/// Every structural problem of `spec.execution`, as field diagnostics.
///
/// Errors: `maxConcurrency: 0` (global or per stage), `dependencies` without
/// type `DAG`, `stages` without type `Staged` (and `Staged` without stages),
/// dependencies naming unknown targets (the message names the edge),
/// self-dependencies, cycles (named in order, `a -> b -> c -> a`), empty or
/// duplicate stage names, unknown stage targets, targets listed in more than
/// one stage, targets in no stage. Warnings: duplicate edges, `maxConcurrency`
/// with `Sequential`, `maxConcurrency` on a non-parallel stage, empty stages.
///
/// Duplicate target names are reported by plan validation, not here; they
/// resolve to the first target of that name.
pub fn check_execution(spec: &HibernatePlanSpec) -> Diagnostics {
    let analysis = analyze(spec, Operation::Shutdown, false);
    let mut out = Diagnostics::new();
    for error in &analysis.errors {
        out.error(error.field(), error.message());
    }
    out.warnings = analysis.warnings;
    out
}

/// Result of [`analyze`].
pub(crate) struct Analysis {
    pub(crate) errors: Vec<PlanError>,
    pub(crate) warnings: Vec<Diagnostic>,
    /// The compiled plan, when asked for and there are no errors.
    pub(crate) plan: Option<PlanInner>,
}

/// Checks `spec.execution` and, when `compile` is set and it is sound,
/// compiles it for `operation`.
pub(crate) fn analyze(spec: &HibernatePlanSpec, operation: Operation, compile: bool) -> Analysis {
    let strategy = &spec.execution.strategy;
    let kind = strategy.kind;
    let n = spec.targets.len();
    let mut errors = Vec::new();
    let mut warnings = Vec::new();

    let names = Names::from_targets(&spec.targets);
    // Only DAG and Staged plans resolve names here; the others build the
    // index when it is first asked for.
    let index = matches!(kind, StrategyType::Dag | StrategyType::Staged)
        .then(|| NameIndex::build(&names))
        .unwrap_or_default();
    let lookup = |name: &str| index.get(&names, name);

    match strategy.max_concurrency {
        Some(0) => errors.push(PlanError::ZeroConcurrency {
            field: format!("{STRATEGY_FIELD}.maxConcurrency"),
        }),
        Some(_) if kind == StrategyType::Sequential => warnings.push(Diagnostic::new(
            format!("{STRATEGY_FIELD}.maxConcurrency"),
            "has no effect with type Sequential (one target at a time)",
        )),
        _ => {}
    }
    if !strategy.dependencies.is_empty() && kind != StrategyType::Dag {
        errors.push(PlanError::DependenciesWithoutDag {
            field: DEPENDENCIES_FIELD.to_string(),
            strategy: kind.as_str(),
        });
    }
    if !strategy.stages.is_empty() && kind != StrategyType::Staged {
        errors.push(PlanError::StagesWithoutStaged {
            field: STAGES_FIELD.to_string(),
            strategy: kind.as_str(),
        });
    }
    if strategy.stages.is_empty() && kind == StrategyType::Staged {
        errors.push(PlanError::MissingStages {
            field: STAGES_FIELD.to_string(),
        });
    }

    let mut dag = None;
    if kind == StrategyType::Dag {
        let mut edges: Vec<Edge> = Vec::with_capacity(strategy.dependencies.len());
        // Edge lists are usually grouped by `from` or `to`: remember the last
        // resolution of each end to skip most hash lookups on large plans.
        let mut last_from: (&str, Option<usize>) = ("", None);
        let mut last_to: (&str, Option<usize>) = ("", None);
        let resolve = |name: &'_ str, last: (&str, Option<usize>)| {
            if !name.is_empty() && name == last.0 {
                last.1
            } else {
                lookup(name)
            }
        };
        for (k, dep) in strategy.dependencies.iter().enumerate() {
            let from = resolve(&dep.from, last_from);
            let to = resolve(&dep.to, last_to);
            last_from = (&dep.from, from);
            last_to = (&dep.to, to);
            for (end, name, resolved) in [("from", &dep.from, from), ("to", &dep.to, to)] {
                if resolved.is_none() {
                    errors.push(PlanError::UnknownDependencyTarget {
                        field: format!("{DEPENDENCIES_FIELD}[{k}].{end}"),
                        name: name.clone(),
                        from: dep.from.clone(),
                        to: dep.to.clone(),
                    });
                }
            }
            match (from, to) {
                (Some(f), Some(t)) if f == t => errors.push(PlanError::SelfDependency {
                    field: format!("{DEPENDENCIES_FIELD}[{k}]"),
                    name: dep.from.clone(),
                }),
                (Some(f), Some(t)) => {
                    // Indexed positions fit in u32 (see `NameIndex`); a list of
                    // more than 2³² dependencies cannot be held in memory.
                    if let (Ok(f), Ok(t), Ok(k)) =
                        (u32::try_from(f), u32::try_from(t), u32::try_from(k))
                    {
                        edges.push((f, t, k));
                    }
                }
                _ => {}
            }
        }
        let compiled = graph::compile(n, &edges);
        for &(k, first) in &compiled.duplicates {
            let dep = &strategy.dependencies[k];
            warnings.push(Diagnostic::new(
                format!("{DEPENDENCIES_FIELD}[{k}]"),
                format!(
                    "duplicate edge {} -> {} (same as dependencies[{first}]); ignored",
                    dep.from, dep.to
                ),
            ));
        }
        for cycle in &compiled.cycles {
            errors.push(PlanError::Cycle {
                field: format!("{DEPENDENCIES_FIELD}[{}]", cycle.edge),
                cycle: cycle
                    .nodes
                    .iter()
                    .map(|&i| spec.targets[i].name.clone())
                    .collect(),
            });
        }
        dag = Some(compiled);
    }

    let mut stages = Vec::new();
    let mut stage_of = Vec::new();
    if kind == StrategyType::Staged && !strategy.stages.is_empty() {
        stage_of = vec![usize::MAX; n];
        let mut names: HashMap<&str, usize> = HashMap::new();
        for (s, stage) in strategy.stages.iter().enumerate() {
            let field = format!("{STAGES_FIELD}[{s}]");
            if stage.name.is_empty() {
                errors.push(PlanError::EmptyStageName {
                    field: format!("{field}.name"),
                });
            } else if let Some(&first) = names.get(stage.name.as_str()) {
                errors.push(PlanError::DuplicateStageName {
                    field: format!("{field}.name"),
                    name: stage.name.clone(),
                    first,
                });
            } else {
                names.insert(&stage.name, s);
            }
            match stage.max_concurrency {
                Some(0) => errors.push(PlanError::ZeroConcurrency {
                    field: format!("{field}.maxConcurrency"),
                }),
                Some(_) if !stage.parallel => warnings.push(Diagnostic::new(
                    format!("{field}.maxConcurrency"),
                    "has no effect on a stage with parallel: false (one target at a time)",
                )),
                _ => {}
            }
            if stage.targets.is_empty() {
                warnings.push(Diagnostic::new(
                    format!("{field}.targets"),
                    format!("stage {:?} has no targets", stage.name),
                ));
            }
            let mut members = Vec::with_capacity(stage.targets.len());
            for (j, name) in stage.targets.iter().enumerate() {
                let entry = format!("{field}.targets[{j}]");
                match lookup(name) {
                    None => errors.push(PlanError::UnknownStageTarget {
                        field: entry,
                        name: name.clone(),
                        stage: stage.name.clone(),
                    }),
                    Some(i) if stage_of[i] != usize::MAX => {
                        errors.push(PlanError::TargetInSeveralStages {
                            field: entry,
                            name: name.clone(),
                            first_stage: strategy.stages[stage_of[i]].name.clone(),
                        })
                    }
                    Some(i) => {
                        stage_of[i] = s;
                        members.push(i);
                    }
                }
            }
            let limit = if stage.parallel {
                stage.max_concurrency
            } else {
                Some(1)
            };
            stages.push(StagePlan {
                name: stage.name.clone(),
                limit,
                members,
            });
        }
        for (i, target) in spec.targets.iter().enumerate() {
            if stage_of[i] == usize::MAX {
                errors.push(PlanError::TargetNotInStage {
                    field: format!("spec.targets[{i}]"),
                    name: target.name.clone(),
                });
            }
        }
    }

    let plan = (compile && errors.is_empty()).then(|| {
        let wake = operation == Operation::Wakeup;
        let order: Vec<usize> = if kind == StrategyType::Staged {
            if wake {
                stages.reverse();
                for (s, stage) in stages.iter_mut().enumerate() {
                    stage.members.reverse();
                    for &m in &stage.members {
                        stage_of[m] = s;
                    }
                }
            }
            stages
                .iter()
                .flat_map(|s| s.members.iter().copied())
                .collect()
        } else if wake {
            (0..n).rev().collect()
        } else {
            (0..n).collect()
        };
        let rank = if kind == StrategyType::Staged {
            let mut table = vec![0u32; n];
            for (r, &i) in order.iter().enumerate() {
                table[i] = u32::try_from(r).unwrap_or(u32::MAX);
            }
            Ranks::Table(table)
        } else if wake {
            Ranks::Reverse
        } else {
            Ranks::Forward
        };
        let (parents, children) = match dag {
            Some(compiled) if wake => (compiled.children, compiled.parents),
            Some(compiled) => (compiled.parents, compiled.children),
            None => (Adjacency::empty(n), Adjacency::empty(n)),
        };
        let limit = if kind == StrategyType::Sequential {
            Some(1)
        } else {
            strategy.max_concurrency
        };
        PlanInner {
            operation,
            strategy: kind,
            index: if matches!(kind, StrategyType::Dag | StrategyType::Staged) {
                OnceLock::from(index)
            } else {
                OnceLock::new()
            },
            names,
            rank,
            order,
            parents,
            children,
            limit,
            stages,
            stage_of,
        }
    });

    Analysis {
        errors,
        warnings,
        plan,
    }
}
