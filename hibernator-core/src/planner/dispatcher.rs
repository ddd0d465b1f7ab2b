//! Incremental dispatcher: in-degree counters, a ready queue ordered by
//! dispatch rank, global and per-stage concurrency counters.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

use super::queue::RankQueue;
use super::{ExecutionPlan, PlanInner};
use crate::types::{BehaviorMode, ExecutionState};

/// Dispatches the targets of an [`ExecutionPlan`]: answers which targets
/// start now and records their outcomes.
///
/// - A target is *ready* when it is `Pending`, every parent (DAG) is
///   `Completed` and, for Staged, every target of the earlier stages is
///   terminal. Ready targets start in dispatch order (the target list,
///   reversed for wake-up) while the global `maxConcurrency` and the current
///   stage's limit leave room.
/// - `Strict`: the first failure aborts every still-`Pending` target; running
///   ones finish. `BestEffort`: a failure aborts the failed target's
///   transitive dependents (DAG); everything else continues.
///
/// Retries are not the dispatcher's business: report only final outcomes.
#[derive(Clone, Debug)]
pub struct Dispatcher {
    plan: ExecutionPlan,
    core: Core,
}

impl Dispatcher {
    /// A dispatcher with every target `Pending`.
    pub fn new(plan: ExecutionPlan, mode: BehaviorMode) -> Self {
        Self::from_states(plan, mode, &[])
    }

    /// Rebuilds a dispatcher from a ledger (controller restart). `states` is
    /// indexed like `spec.targets`; missing entries are `Pending`, extra ones
    /// ignored. `Running` targets count against the concurrency limits.
    /// Aborts implied by the ledger are applied (Strict: any `Failed` target
    /// aborts every `Pending` one; BestEffort: `Pending` dependents of a
    /// `Failed` or `Aborted` target are aborted).
    pub fn from_states(plan: ExecutionPlan, mode: BehaviorMode, states: &[ExecutionState]) -> Self {
        let core = Core::new(plan.inner(), mode, states);
        Self { plan, core }
    }

    /// The targets to start now, in dispatch order; they are marked `Running`.
    pub fn next_ready(&mut self) -> Vec<usize> {
        self.core.next_ready(self.plan.inner())
    }

    /// Records the final outcome of a `Running` target (`true` = `Completed`,
    /// `false` = `Failed`) and applies the Strict/BestEffort aborts. Outcomes
    /// of targets that are not `Running` (or out of range) are ignored.
    pub fn complete(&mut self, index: usize, success: bool) {
        self.core.complete(self.plan.inner(), index, success);
    }

    /// State of the target at `index` (`Pending` when out of range).
    pub fn state(&self, index: usize) -> ExecutionState {
        self.core.states.get(index).copied().unwrap_or_default()
    }

    /// States of all targets, indexed like `spec.targets`.
    pub fn states(&self) -> &[ExecutionState] {
        &self.core.states
    }

    /// Number of `Running` targets.
    pub fn running(&self) -> usize {
        self.core.running
    }

    /// True when every target is terminal.
    pub fn is_finished(&self) -> bool {
        self.core.terminal == self.core.states.len()
    }

    /// The plan being dispatched.
    pub fn plan(&self) -> &ExecutionPlan {
        &self.plan
    }

    /// The failure mode.
    pub fn mode(&self) -> BehaviorMode {
        self.core.mode
    }
}

/// Which targets start now, given the plan and every target's state (the
/// pure form of [`Dispatcher::from_states`] + [`Dispatcher::next_ready`];
/// nothing is mutated).
pub fn ready_targets(
    plan: &ExecutionPlan,
    mode: BehaviorMode,
    states: &[ExecutionState],
) -> Vec<usize> {
    let inner = plan.inner();
    Core::new(inner, mode, states).next_ready(inner)
}

/// How long a run of `plan` takes when every target succeeds after the
/// given duration (indexed like `spec.targets`; missing entries take no
/// time): the real dispatcher starts every ready target as soon as the
/// strategy and the concurrency limits allow, so this is the plan's
/// critical path under its strategy (Sequential: the sum; unbounded
/// Parallel: the longest target; DAG: the longest dependency chain, or
/// longer when `maxConcurrency` binds; Staged: stage after stage).
pub fn makespan(plan: &ExecutionPlan, durations: &[Duration]) -> Duration {
    let inner = plan.inner();
    let mut core = Core::new(inner, BehaviorMode::Strict, &[]);
    let mut running = BinaryHeap::new();
    let mut now = Duration::ZERO;
    loop {
        for index in core.next_ready(inner) {
            let took = durations.get(index).copied().unwrap_or_default();
            running.push(Reverse((now.saturating_add(took), index)));
        }
        let Some(Reverse((at, index))) = running.pop() else {
            return now;
        };
        now = at;
        core.complete(inner, index, true);
        while let Some(Reverse((next, _))) = running.peek() {
            if *next != at {
                break;
            }
            if let Some(Reverse((_, index))) = running.pop() {
                core.complete(inner, index, true);
            }
        }
    }
}

/// Simulates a run where every target takes one time unit and succeeds.
pub(crate) fn simulate_waves(plan: &ExecutionPlan) -> Vec<Vec<usize>> {
    let inner = plan.inner();
    let mut core = Core::new(inner, BehaviorMode::Strict, &[]);
    let mut waves = Vec::new();
    loop {
        let wave = core.next_ready(inner);
        if wave.is_empty() {
            return waves;
        }
        for &i in &wave {
            core.complete(inner, i, true);
        }
        waves.push(wave);
    }
}

/// Mutable dispatch state over a borrowed plan.
#[derive(Clone, Debug)]
struct Core {
    mode: BehaviorMode,
    states: Vec<ExecutionState>,
    /// Parents not yet `Completed`.
    waiting: Vec<u32>,
    /// Ranks of targets that may start (stale entries are skipped).
    ready: RankQueue,
    running: usize,
    terminal: usize,
    /// Running targets per stage (Staged only).
    stage_running: Vec<u32>,
    /// Non-terminal targets per stage (Staged only).
    stage_open: Vec<u32>,
    /// First stage with a non-terminal target.
    current_stage: usize,
    /// Strict mode saw a failure: nothing starts any more.
    halted: bool,
}

impl Core {
    fn new(plan: &PlanInner, mode: BehaviorMode, given: &[ExecutionState]) -> Self {
        let n = plan.names.len();
        let mut states = vec![ExecutionState::Pending; n];
        for (slot, &state) in states.iter_mut().zip(given) {
            *slot = state;
        }
        let waiting = (0..n)
            .map(|i| {
                let open = plan
                    .parents
                    .of(i)
                    .iter()
                    .filter(|&&p| states[p] != ExecutionState::Completed)
                    .count();
                u32::try_from(open).unwrap_or(u32::MAX)
            })
            .collect();
        let mut stage_running = vec![0u32; plan.stages.len()];
        let mut stage_open = vec![0u32; plan.stages.len()];
        for (i, &state) in states.iter().enumerate() {
            if let Some(s) = plan
                .stage_of
                .get(i)
                .copied()
                .filter(|&s| s < stage_open.len())
            {
                if !state.is_terminal() {
                    stage_open[s] += 1;
                }
                if state == ExecutionState::Running {
                    stage_running[s] += 1;
                }
            }
        }
        let mut core = Self {
            mode,
            running: states
                .iter()
                .filter(|s| **s == ExecutionState::Running)
                .count(),
            terminal: states.iter().filter(|s| s.is_terminal()).count(),
            states,
            waiting,
            ready: RankQueue::new(n),
            stage_running,
            stage_open,
            current_stage: 0,
            halted: false,
        };
        let failed: Vec<usize> = (0..n)
            .filter(|&i| match core.states[i] {
                ExecutionState::Failed => true,
                ExecutionState::Aborted => mode == BehaviorMode::BestEffort,
                _ => false,
            })
            .collect();
        for i in failed {
            core.on_failure(plan, i);
        }
        while core.current_stage < core.stage_open.len() && core.stage_open[core.current_stage] == 0
        {
            core.current_stage += 1;
        }
        if !core.halted {
            for i in 0..n {
                if core.is_startable(plan, i) {
                    core.ready.push(plan.rank_of(i));
                }
            }
        }
        core
    }

    /// Pending, all parents completed, and in the current stage (Staged).
    fn is_startable(&self, plan: &PlanInner, i: usize) -> bool {
        self.waiting[i] == 0
            && self.states[i] == ExecutionState::Pending
            && (plan.stages.is_empty() || plan.stage_of.get(i) == Some(&self.current_stage))
    }

    fn next_ready(&mut self, plan: &PlanInner) -> Vec<usize> {
        let mut started = Vec::new();
        if self.halted {
            return started;
        }
        let global = plan.limit.map_or(usize::MAX, |l| l as usize);
        let stage = plan.stages.get(self.current_stage);
        let stage_limit = stage
            .and_then(|s| s.limit)
            .map_or(usize::MAX, |l| l as usize);
        let mut stage_running = self
            .stage_running
            .get(self.current_stage)
            .map_or(0, |&r| r as usize);
        while self.running < global && stage_running < stage_limit {
            let Some(rank) = self.ready.pop() else {
                break;
            };
            let i = plan.at_rank(rank);
            if !self.is_startable(plan, i) {
                continue;
            }
            self.states[i] = ExecutionState::Running;
            self.running += 1;
            if let Some(count) = self.stage_running.get_mut(self.current_stage) {
                *count += 1;
                stage_running += 1;
            }
            started.push(i);
        }
        started
    }

    fn complete(&mut self, plan: &PlanInner, i: usize, success: bool) {
        if self.states.get(i) != Some(&ExecutionState::Running) {
            return;
        }
        self.running -= 1;
        if let Some(count) = plan
            .stage_of
            .get(i)
            .and_then(|&s| self.stage_running.get_mut(s))
        {
            *count = count.saturating_sub(1);
        }
        if success {
            self.states[i] = ExecutionState::Completed;
            for &child in plan.children.of(i) {
                self.waiting[child] = self.waiting[child].saturating_sub(1);
                if !self.halted && self.is_startable(plan, child) {
                    self.ready.push(plan.rank_of(child));
                }
            }
            self.on_terminal(plan, i);
        } else {
            self.states[i] = ExecutionState::Failed;
            self.on_terminal(plan, i);
            self.on_failure(plan, i);
        }
    }

    /// Applies the failure mode to a `Failed` (or, BestEffort, `Aborted`) target.
    fn on_failure(&mut self, plan: &PlanInner, i: usize) {
        match self.mode {
            BehaviorMode::Strict => {
                if !self.halted {
                    self.halted = true;
                    self.ready.clear();
                    for j in 0..self.states.len() {
                        if self.states[j] == ExecutionState::Pending {
                            self.abort(plan, j);
                        }
                    }
                }
            }
            BehaviorMode::BestEffort => {
                let mut stack: Vec<usize> = plan.children.of(i).to_vec();
                while let Some(j) = stack.pop() {
                    if self.states[j] == ExecutionState::Pending {
                        self.abort(plan, j);
                        stack.extend_from_slice(plan.children.of(j));
                    }
                }
            }
        }
    }

    fn abort(&mut self, plan: &PlanInner, i: usize) {
        self.states[i] = ExecutionState::Aborted;
        self.on_terminal(plan, i);
    }

    /// Bookkeeping for a target that just became terminal; opens the next
    /// stage once the current one is done.
    fn on_terminal(&mut self, plan: &PlanInner, i: usize) {
        self.terminal += 1;
        let Some(&s) = plan.stage_of.get(i) else {
            return;
        };
        if let Some(open) = self.stage_open.get_mut(s) {
            *open = open.saturating_sub(1);
        }
        while self.current_stage < self.stage_open.len() && self.stage_open[self.current_stage] == 0
        {
            self.current_stage += 1;
            if self.halted {
                continue;
            }
            if let Some(stage) = plan.stages.get(self.current_stage) {
                for &m in &stage.members {
                    if self.is_startable(plan, m) {
                        self.ready.push(plan.rank_of(m));
                    }
                }
            }
        }
    }
}
