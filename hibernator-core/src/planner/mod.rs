//! Planner and dispatcher: compiles a plan's execution strategy into an
//! [`ExecutionPlan`] for one [`Operation`] and dispatches its targets.
//!
//! The semantics are those of `docs/strategies.md`:
//!
//! - `Sequential` runs the targets one at a time in list order, `Parallel`
//!   runs them all (bounded by `maxConcurrency`), `DAG` starts a target as
//!   soon as each of *its* parents completed, `Staged` runs stage after stage
//!   (each stage waits until every target of the previous one is terminal).
//! - Wake-up mirrors shutdown: the target list, the stage list and every
//!   stage's target list are reversed, and every DAG edge is reversed.
//! - When more targets are ready than there are free slots they start in the
//!   order of the (for wake-up: reversed) target list.
//!
//! The [`Dispatcher`] is incremental (in-degree counters and a two-level
//! bitset of ready ranks), so a full dispatch costs O(V + E) plus a scan of
//! one summary word per 4096 targets and wave. Building a plan copies the
//! target names into one buffer and resolves dependency names through a
//! hash index of positions into it (no allocation per target or edge). [`ready_targets`] is
//! the pure form the operator uses: plan + every target's state in, targets
//! to start out.
//!
//! ```
//! use hibernator_core::input::PlanDocuments;
//! use hibernator_core::planner::ExecutionPlan;
//! use hibernator_core::types::Operation;
//! let docs = PlanDocuments::from_yaml(r#"
//! apiVersion: hibernator.dev/v1alpha1
//! kind: HibernatePlan
//! metadata: {name: dev}
//! spec:
//!   schedule: {timezone: UTC, offHours: [{start: "20:00", end: "06:00", daysOfWeek: [MON]}]}
//!   execution:
//!     strategy:
//!       type: DAG
//!       dependencies: [{from: app, to: db}]
//!   targets:
//!     - {name: db, type: rds, connectorRef: {kind: CloudProvider, name: aws}}
//!     - {name: app, type: eks, connectorRef: {kind: CloudProvider, name: aws}}
//! "#).unwrap();
//! let plan = ExecutionPlan::build(&docs.plan.spec, Operation::Shutdown).unwrap();
//! assert_eq!(plan.waves(), vec![vec!["app".to_string()], vec!["db".to_string()]]);
//! let wake = ExecutionPlan::build(&docs.plan.spec, Operation::Wakeup).unwrap();
//! assert_eq!(wake.waves(), vec![vec!["db".to_string()], vec!["app".to_string()]]);
//! ```

mod check;
mod dispatcher;
mod graph;
mod names;
mod queue;
mod render;
#[cfg(test)]
mod tests;

use std::sync::{Arc, OnceLock};

use thiserror::Error;

use crate::types::{HibernatePlanSpec, Operation, StrategyType};
use names::{NameIndex, Names};

pub use check::check_execution;
pub use dispatcher::{Dispatcher, makespan, ready_targets};

/// A structural problem in `spec.execution` (or in how it refers to `spec.targets`).
///
/// Every variant carries the path of the offending field; `Display` renders
/// `<field>: <message>`, e.g.
/// `spec.execution.strategy.dependencies[3].to: unknown target "x" (edge a -> x)`.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PlanError {
    /// `maxConcurrency` is 0.
    #[error("{field}: maxConcurrency must be at least 1 (leave it unset for no limit)")]
    ZeroConcurrency {
        /// Path of the `maxConcurrency` field.
        field: String,
    },
    /// `dependencies` are set but the strategy is not `DAG`.
    #[error("{field}: dependencies are only used with type DAG (type is {strategy})")]
    DependenciesWithoutDag {
        /// `spec.execution.strategy.dependencies`.
        field: String,
        /// The strategy type of the plan.
        strategy: &'static str,
    },
    /// `stages` are set but the strategy is not `Staged`.
    #[error("{field}: stages are only used with type Staged (type is {strategy})")]
    StagesWithoutStaged {
        /// `spec.execution.strategy.stages`.
        field: String,
        /// The strategy type of the plan.
        strategy: &'static str,
    },
    /// The strategy is `Staged` but there are no stages.
    #[error("{field}: type Staged needs at least one stage")]
    MissingStages {
        /// `spec.execution.strategy.stages`.
        field: String,
    },
    /// A dependency names a target that does not exist.
    #[error("{field}: unknown target {name:?} (edge {from} -> {to})")]
    UnknownDependencyTarget {
        /// Path of the `from` or `to` field of the edge.
        field: String,
        /// The unknown name.
        name: String,
        /// The edge's `from`.
        from: String,
        /// The edge's `to`.
        to: String,
    },
    /// A dependency from a target to itself.
    #[error("{field}: target {name:?} depends on itself")]
    SelfDependency {
        /// Path of the edge.
        field: String,
        /// The target.
        name: String,
    },
    /// The dependencies form a cycle.
    #[error("{field}: dependency cycle: {}", cycle.join(" -> "))]
    Cycle {
        /// Path of the edge leaving the first target of the cycle.
        field: String,
        /// The cycle in order, first target repeated at the end (`a -> b -> a`).
        cycle: Vec<String>,
    },
    /// A stage has an empty name.
    #[error("{field}: stage name must not be empty")]
    EmptyStageName {
        /// Path of the stage's `name`.
        field: String,
    },
    /// Two stages share a name.
    #[error("{field}: duplicate stage name {name:?} (also used by stages[{first}])")]
    DuplicateStageName {
        /// Path of the later stage's `name`.
        field: String,
        /// The repeated name.
        name: String,
        /// Index of the first stage with that name.
        first: usize,
    },
    /// A stage lists a target that does not exist.
    #[error("{field}: unknown target {name:?} in stage {stage:?}")]
    UnknownStageTarget {
        /// Path of the stage's target entry.
        field: String,
        /// The unknown name.
        name: String,
        /// The stage's name.
        stage: String,
    },
    /// A target is listed in more than one stage (or twice in one).
    #[error("{field}: target {name:?} is already in stage {first_stage:?}")]
    TargetInSeveralStages {
        /// Path of the repeated entry.
        field: String,
        /// The target.
        name: String,
        /// The stage that listed it first.
        first_stage: String,
    },
    /// A target is in no stage of a `Staged` plan.
    #[error("{field}: target {name:?} is not in any stage")]
    TargetNotInStage {
        /// Path of the target in `spec.targets`.
        field: String,
        /// The target.
        name: String,
    },
}

impl PlanError {
    /// The path of the offending field, e.g. `spec.execution.strategy.dependencies[3].to`.
    pub fn field(&self) -> &str {
        match self {
            Self::ZeroConcurrency { field }
            | Self::DependenciesWithoutDag { field, .. }
            | Self::StagesWithoutStaged { field, .. }
            | Self::MissingStages { field }
            | Self::UnknownDependencyTarget { field, .. }
            | Self::SelfDependency { field, .. }
            | Self::Cycle { field, .. }
            | Self::EmptyStageName { field }
            | Self::DuplicateStageName { field, .. }
            | Self::UnknownStageTarget { field, .. }
            | Self::TargetInSeveralStages { field, .. }
            | Self::TargetNotInStage { field, .. } => field,
        }
    }

    /// The message without the field prefix (what a [`Diagnostic`](crate::diag::Diagnostic) holds).
    pub fn message(&self) -> String {
        let text = self.to_string();
        let prefix = self.field().len() + 2;
        text.get(prefix..).unwrap_or_default().to_string()
    }
}

/// Compressed adjacency lists: the neighbours of node `i` are
/// `items[offsets[i]..offsets[i + 1]]`, sorted by node index.
#[derive(Clone, Debug, Default)]
pub(crate) struct Adjacency {
    offsets: Vec<usize>,
    items: Vec<usize>,
}

impl Adjacency {
    /// `n` nodes without edges.
    fn empty(n: usize) -> Self {
        Self {
            offsets: vec![0; n + 1],
            items: Vec::new(),
        }
    }

    /// The neighbours of `node`.
    fn of(&self, node: usize) -> &[usize] {
        match (self.offsets.get(node), self.offsets.get(node + 1)) {
            (Some(&start), Some(&end)) => self.items.get(start..end).unwrap_or_default(),
            _ => &[],
        }
    }
}

/// One stage of a compiled `Staged` plan, in operation order.
#[derive(Clone, Debug)]
pub(crate) struct StagePlan {
    /// The stage's name.
    name: String,
    /// Upper bound of the stage's targets running at once (1 when not parallel).
    limit: Option<u32>,
    /// The stage's targets in dispatch order for the operation.
    members: Vec<usize>,
}

/// Dispatch rank of each target: computed for the plain target order
/// (forward or reversed), looked up for Staged plans.
#[derive(Clone, Debug)]
pub(crate) enum Ranks {
    /// Rank = index (shutdown, not Staged).
    Forward,
    /// Rank = `len - 1 - index` (wake-up, not Staged).
    Reverse,
    /// Rank of each index.
    Table(Vec<u32>),
}

/// The immutable part of a plan, shared by clones.
#[derive(Debug)]
pub(crate) struct PlanInner {
    operation: Operation,
    strategy: StrategyType,
    names: Names,
    /// Name lookup; built during analysis for DAG and Staged plans, on the
    /// first [`ExecutionPlan::index_of`] otherwise.
    index: OnceLock<NameIndex>,
    /// Dispatch rank of each target (position in the operation's target order).
    rank: Ranks,
    /// Targets by rank.
    order: Vec<usize>,
    /// Parents for this operation (mirrored for wake-up).
    parents: Adjacency,
    /// Children for this operation (mirrored for wake-up).
    children: Adjacency,
    /// Global bound of running targets (1 for Sequential).
    limit: Option<u32>,
    /// Stages in operation order (Staged only).
    stages: Vec<StagePlan>,
    /// Stage (index into `stages`) of each target (Staged only).
    stage_of: Vec<usize>,
}

impl PlanInner {
    /// Dispatch rank of target `i` (`i < len`).
    pub(crate) fn rank_of(&self, i: usize) -> u32 {
        let rank = match &self.rank {
            Ranks::Forward => i,
            Ranks::Reverse => self.order.len().saturating_sub(i + 1),
            Ranks::Table(table) => return table.get(i).copied().unwrap_or(u32::MAX),
        };
        u32::try_from(rank).unwrap_or(u32::MAX)
    }

    /// The target of dispatch rank `rank` (`rank < len`).
    pub(crate) fn at_rank(&self, rank: u32) -> usize {
        let rank = rank as usize;
        match self.rank {
            Ranks::Forward => rank,
            _ => self.order[rank],
        }
    }
}

/// A plan's execution strategy compiled for one [`Operation`].
///
/// Targets are identified by their position in `spec.targets`, which is the
/// same for both operations. Cloning is cheap (the plan is shared).
#[derive(Clone, Debug)]
pub struct ExecutionPlan {
    inner: Arc<PlanInner>,
}

impl ExecutionPlan {
    /// Compiles `spec.execution` for `operation`, failing with the first
    /// structural error (see [`check_execution`] for all of them).
    pub fn build(spec: &HibernatePlanSpec, operation: Operation) -> Result<Self, PlanError> {
        let analysis = check::analyze(spec, operation, true);
        match (analysis.errors.into_iter().next(), analysis.plan) {
            (Some(error), _) => Err(error),
            (None, Some(inner)) => Ok(Self {
                inner: Arc::new(inner),
            }),
            (None, None) => Err(PlanError::MissingStages {
                field: check::STAGES_FIELD.to_string(),
            }),
        }
    }

    /// The operation this plan was compiled for.
    pub fn operation(&self) -> Operation {
        self.inner.operation
    }

    /// The strategy type.
    pub fn strategy(&self) -> StrategyType {
        self.inner.strategy
    }

    /// Number of targets.
    pub fn len(&self) -> usize {
        self.inner.names.len()
    }

    /// True when the plan has no targets.
    pub fn is_empty(&self) -> bool {
        self.inner.names.is_empty()
    }

    /// Name of the target at `index` (its position in `spec.targets`).
    ///
    /// # Panics
    /// When `index >= self.len()`.
    pub fn target_name(&self, index: usize) -> &str {
        &self.inner.names[index]
    }

    /// Position of the target called `name` in `spec.targets` (the first one
    /// if names repeat).
    pub fn index_of(&self, name: &str) -> Option<usize> {
        let inner = &*self.inner;
        inner
            .index
            .get_or_init(|| NameIndex::build(&inner.names))
            .get(&inner.names, name)
    }

    /// The targets `index` waits for in this operation (DAG only; mirrored
    /// for wake-up), sorted by index. Empty for other strategies and for an
    /// out-of-range index.
    pub fn parents(&self, index: usize) -> &[usize] {
        self.inner.parents.of(index)
    }

    /// The targets waiting for `index` in this operation (DAG only), sorted by index.
    pub fn children(&self, index: usize) -> &[usize] {
        self.inner.children.of(index)
    }

    /// Target indices in dispatch-priority order for this operation.
    pub fn dispatch_order(&self) -> &[usize] {
        &self.inner.order
    }

    /// Upper bound of targets running at once (`Some(1)` for Sequential, `None` = unbounded).
    pub fn max_concurrency(&self) -> Option<u32> {
        self.inner.limit
    }

    /// Stage names in the order they run for this operation (Staged only).
    pub fn stage_names(&self) -> Vec<&str> {
        self.inner.stages.iter().map(|s| s.name.as_str()).collect()
    }

    /// Simulates a run in which every target takes one time unit and
    /// succeeds; each wave holds the targets started together, in dispatch order.
    pub fn waves(&self) -> Vec<Vec<String>> {
        dispatcher::simulate_waves(self)
            .into_iter()
            .map(|wave| {
                wave.into_iter()
                    .map(|i| self.inner.names[i].to_owned())
                    .collect()
            })
            .collect()
    }

    /// Graphviz rendering: DAG edges, stage clusters for Staged, a chain for
    /// Sequential, loose nodes for Parallel. The output is stable.
    pub fn to_dot(&self) -> String {
        render::to_dot(self)
    }

    pub(crate) fn inner(&self) -> &PlanInner {
        &self.inner
    }
}
