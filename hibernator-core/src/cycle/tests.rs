//! Tests of [`run_cycle`] with small in-test executors.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

use super::*;
use crate::diag::Diagnostics;
use crate::executor::{
    ExecutionContext, ShutdownOutcome, TypedExecutor, WakeupOutcome, category, typed,
};
use crate::input::PlanDocuments;
use crate::params::ValidateParameters;
use crate::restore::{FileRestoreStore, MemoryRestoreStore, RestoreRecord, RestoreStore};

/// Per-target behaviour, from the target's parameters.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
struct Behaviour {
    /// Resources of the target (sizes live in the lab).
    resources: Vec<String>,
    /// How long each call takes.
    delay_ms: u64,
    /// This many calls fail with a transient error first.
    transient_failures: u32,
    /// Every call fails permanently.
    permanent: bool,
    /// Shutdown records the first resource, sleeps it, then waits for cancellation.
    hang: bool,
    /// Shutdown asks the cycle to stop dispatching before it returns.
    stop_after: bool,
}

impl ValidateParameters for Behaviour {
    fn validate(&self, _field: &str, _d: &mut Diagnostics) {}
}

/// Shared world of the test executors.
#[derive(Default)]
struct Lab {
    sizes: Mutex<BTreeMap<String, u64>>,
    journal: Mutex<Vec<String>>,
    running: Mutex<(usize, usize)>,
    calls: Mutex<BTreeMap<String, u32>>,
    control: Mutex<Option<CycleControl>>,
}

impl Lab {
    fn with(sizes: &[(&str, u64)]) -> Arc<Self> {
        let lab = Self::default();
        *lab.sizes.lock().unwrap() = sizes.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        Arc::new(lab)
    }

    fn size(&self, name: &str) -> u64 {
        self.sizes.lock().unwrap()[name]
    }

    fn enter(&self, target: &str) -> u32 {
        self.journal.lock().unwrap().push(format!("start:{target}"));
        let mut running = self.running.lock().unwrap();
        running.0 += 1;
        running.1 = running.1.max(running.0);
        let mut calls = self.calls.lock().unwrap();
        let count = calls.entry(target.to_string()).or_default();
        *count += 1;
        *count
    }

    fn exit(&self, target: &str) {
        self.journal.lock().unwrap().push(format!("end:{target}"));
        self.running.lock().unwrap().0 -= 1;
    }

    fn max_running(&self) -> usize {
        self.running.lock().unwrap().1
    }

    fn calls(&self, target: &str) -> u32 {
        self.calls.lock().unwrap().get(target).copied().unwrap_or(0)
    }

    /// Position of `event` in the journal.
    fn at(&self, event: &str) -> usize {
        let journal = self.journal.lock().unwrap();
        journal
            .iter()
            .position(|e| e == event)
            .unwrap_or_else(|| panic!("{event} not in {journal:?}"))
    }
}

struct LabExecutor(Arc<Lab>);

impl LabExecutor {
    async fn before(&self, ctx: &ExecutionContext, b: &Behaviour) -> Result<(), ExecutorError> {
        let call = self.0.enter(ctx.target());
        tokio::time::sleep(Duration::from_millis(b.delay_ms)).await;
        if b.permanent {
            self.0.exit(ctx.target());
            return Err(ExecutorError::permanent(category::AUTH, "access denied"));
        }
        if call <= b.transient_failures {
            self.0.exit(ctx.target());
            return Err(ExecutorError::transient(category::THROTTLED, "slow down"));
        }
        Ok(())
    }
}

#[async_trait]
impl TypedExecutor for LabExecutor {
    const TYPE: &'static str = "lab";
    type Params = Behaviour;

    async fn shutdown(
        &self,
        ctx: &ExecutionContext,
        b: &Behaviour,
    ) -> Result<ShutdownOutcome, ExecutorError> {
        self.before(ctx, b).await?;
        let mut outcome = ShutdownOutcome::default();
        for (i, name) in b.resources.iter().enumerate() {
            let key = format!("res/{name}");
            let size = self.0.size(name);
            outcome.resources.push(key.clone());
            if size == 0 {
                continue;
            }
            ctx.record_awake_state(key, serde_json::json!(size));
            self.0.sizes.lock().unwrap().insert(name.clone(), 0);
            ctx.progress(50, &format!("{name} asleep"));
            if b.hang && i == 0 {
                ctx.cancellation().cancelled().await;
                self.0.exit(ctx.target());
                return Err(ExecutorError::cancelled());
            }
        }
        if b.stop_after
            && let Some(control) = self.0.control.lock().unwrap().as_ref()
        {
            control.stop_dispatching();
        }
        self.0.exit(ctx.target());
        Ok(outcome)
    }

    async fn wakeup(
        &self,
        ctx: &ExecutionContext,
        b: &Behaviour,
        record: &RestoreRecord,
    ) -> Result<WakeupOutcome, ExecutorError> {
        self.before(ctx, b).await?;
        let mut outcome = WakeupOutcome::default();
        for (key, entry) in &record.entries {
            let name = key.trim_start_matches("res/").to_string();
            let size = entry.state.as_u64().unwrap_or_default();
            self.0.sizes.lock().unwrap().insert(name, size);
            outcome.restored.push(key.clone());
        }
        self.0.exit(ctx.target());
        Ok(outcome)
    }
}

struct LabProvider(Arc<Lab>);

#[async_trait]
impl ExecutorProvider for LabProvider {
    async fn executor_for(&self, target: &Target) -> Result<Arc<dyn Executor>, ExecutorError> {
        match target.kind.as_str() {
            "lab" => Ok(typed(LabExecutor(self.0.clone()))),
            other => Err(ExecutorError::permanent(
                category::INTERNAL,
                format!("no executor for type {other}"),
            )),
        }
    }
}

/// A plan with `execution`/`behavior` YAML and `(name, parameters)` lab targets.
fn plan(execution: &str, mode: &str, targets: &[(&str, serde_json::Value)]) -> HibernatePlan {
    let targets: Vec<serde_json::Value> = targets
        .iter()
        .map(|(name, params)| {
            serde_json::json!({
                "name": name, "type": "lab", "parameters": params,
                "connectorRef": {"kind": "CloudProvider", "name": "aws"},
            })
        })
        .collect();
    let yaml = format!(
        r#"
apiVersion: hibernator.dev/v1alpha1
kind: HibernatePlan
metadata: {{name: dev}}
spec:
  schedule: {{timezone: UTC, offHours: [{{start: "20:00", end: "06:00", daysOfWeek: [MON]}}]}}
  execution: {{strategy: {execution}}}
  behavior: {{mode: {mode}, retries: 3}}
  targets: {}
"#,
        serde_json::to_string(&targets).unwrap()
    );
    PlanDocuments::from_yaml(&yaml).unwrap().plan
}

fn options(plan: &HibernatePlan, cycle: &str) -> CycleOptions {
    let mut options = CycleOptions::for_plan(plan, cycle);
    options.retry.base_delay = Duration::from_millis(10);
    options.retry.max_delay = Duration::from_millis(40);
    options
}

async fn run(
    plan: &HibernatePlan,
    operation: Operation,
    lab: &Arc<Lab>,
    store: Arc<dyn RestoreStore>,
    control: CycleControl,
) -> (CycleSummary, Vec<CycleEvent>) {
    let (tx, mut rx) = unbounded_channel();
    let summary = run_cycle(
        plan,
        operation,
        &LabProvider(lab.clone()),
        store,
        options(plan, "c1"),
        tx,
        control,
    )
    .await
    .unwrap();
    (summary, drain(&mut rx))
}

fn drain(rx: &mut UnboundedReceiver<CycleEvent>) -> Vec<CycleEvent> {
    let mut events = Vec::new();
    while let Ok(event) = rx.try_recv() {
        events.push(event);
    }
    events
}

fn states(summary: &CycleSummary) -> Vec<(&str, ExecutionState)> {
    summary
        .targets
        .iter()
        .map(|t| (t.name.as_str(), t.state))
        .collect()
}

fn target<'a>(summary: &'a CycleSummary, name: &str) -> &'a TargetSummary {
    summary.targets.iter().find(|t| t.name == name).unwrap()
}

fn res(name: &str) -> serde_json::Value {
    serde_json::json!({"resources": [name], "delayMs": 5})
}

#[tokio::test(start_paused = true)]
async fn dag_order_is_respected_in_both_directions() {
    let lab = Lab::with(&[("a", 1), ("b", 2), ("c", 3), ("d", 4)]);
    let plan = plan(
        "{type: DAG, dependencies: [{from: a, to: b}, {from: a, to: c}, {from: b, to: d}, {from: c, to: d}]}",
        "Strict",
        &[
            ("d", res("d")),
            ("c", res("c")),
            ("b", res("b")),
            ("a", res("a")),
        ],
    );
    let store: Arc<dyn RestoreStore> = Arc::new(MemoryRestoreStore::new());
    let (summary, _) = run(
        &plan,
        Operation::Shutdown,
        &lab,
        store.clone(),
        CycleControl::new(),
    )
    .await;
    assert!(summary.success, "{summary:?}");
    for (parent, child) in [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")] {
        assert!(lab.at(&format!("end:{parent}")) < lab.at(&format!("start:{child}")));
    }
    // b and c overlap: readiness is per dependency, not per level.
    assert!(lab.at("start:c") < lab.at("end:b") && lab.at("start:b") < lab.at("end:c"));
    assert_eq!(lab.size("d"), 0);

    lab.journal.lock().unwrap().clear();
    let (wake, _) = run(&plan, Operation::Wakeup, &lab, store, CycleControl::new()).await;
    assert!(wake.success, "{wake:?}");
    for (parent, child) in [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")] {
        assert!(lab.at(&format!("end:{child}")) < lab.at(&format!("start:{parent}")));
    }
    assert_eq!(
        ["a", "b", "c", "d"].map(|n| lab.size(n)),
        [1, 2, 3, 4],
        "every resource restored"
    );
}

#[tokio::test(start_paused = true)]
async fn concurrency_bound_is_respected() {
    let names = ["t1", "t2", "t3", "t4", "t5", "t6"];
    let lab = Lab::with(&names.map(|n| (n, 1)));
    let targets: Vec<_> = names.iter().map(|n| (*n, res(n))).collect();
    let plan = plan("{type: Parallel, maxConcurrency: 2}", "Strict", &targets);
    let (summary, events) = run(
        &plan,
        Operation::Shutdown,
        &lab,
        Arc::new(MemoryRestoreStore::new()),
        CycleControl::new(),
    )
    .await;
    assert!(summary.success);
    assert_eq!(lab.max_running(), 2);
    let started = events
        .iter()
        .filter(|e| matches!(e, CycleEvent::Started { .. }))
        .count();
    assert_eq!(started, 6);
    assert!(summary.targets.iter().all(|t| t.resources.len() == 1));
}

#[tokio::test(start_paused = true)]
async fn strict_stops_dispatching_after_a_failure() {
    let lab = Lab::with(&[("a", 1), ("b", 1), ("c", 1)]);
    let broken = serde_json::json!({"resources": ["b"], "permanent": true});
    let plan = plan(
        "{type: Sequential}",
        "Strict",
        &[("a", res("a")), ("b", broken), ("c", res("c"))],
    );
    let (summary, events) = run(
        &plan,
        Operation::Shutdown,
        &lab,
        Arc::new(MemoryRestoreStore::new()),
        CycleControl::new(),
    )
    .await;
    assert!(!summary.success);
    assert_eq!(
        states(&summary),
        [
            ("a", ExecutionState::Completed),
            ("b", ExecutionState::Failed),
            ("c", ExecutionState::Aborted)
        ]
    );
    assert_eq!(lab.calls("c"), 0);
    assert_eq!(lab.size("c"), 1);
    let reason = target(&summary, "c").message.clone().unwrap();
    assert!(
        reason.contains("\"b\"") && reason.contains("Strict"),
        "{reason}"
    );
    assert!(events.contains(&CycleEvent::Aborted {
        target: "c".into(),
        reason
    }));
}

#[tokio::test(start_paused = true)]
async fn best_effort_aborts_only_dependents() {
    let lab = Lab::with(&[("a", 1), ("b", 1), ("c", 1), ("d", 1)]);
    let broken = serde_json::json!({"resources": ["a"], "permanent": true});
    let plan = plan(
        "{type: DAG, dependencies: [{from: a, to: b}, {from: b, to: c}]}",
        "BestEffort",
        &[
            ("a", broken),
            ("b", res("b")),
            ("c", res("c")),
            ("d", res("d")),
        ],
    );
    let (summary, _) = run(
        &plan,
        Operation::Shutdown,
        &lab,
        Arc::new(MemoryRestoreStore::new()),
        CycleControl::new(),
    )
    .await;
    assert_eq!(
        states(&summary),
        [
            ("a", ExecutionState::Failed),
            ("b", ExecutionState::Aborted),
            ("c", ExecutionState::Aborted),
            ("d", ExecutionState::Completed)
        ]
    );
    assert!(
        target(&summary, "c")
            .message
            .as_deref()
            .unwrap()
            .contains("depends on target \"a\"")
    );
    assert_eq!((lab.calls("b"), lab.calls("c")), (0, 0));
    assert_eq!(lab.size("d"), 0);
}

#[tokio::test(start_paused = true)]
async fn transient_failures_are_retried_until_success() {
    let lab = Lab::with(&[("a", 3)]);
    let flaky = serde_json::json!({"resources": ["a"], "transientFailures": 2});
    let plan = plan("{type: Sequential}", "Strict", &[("a", flaky)]);
    let (summary, events) = run(
        &plan,
        Operation::Shutdown,
        &lab,
        Arc::new(MemoryRestoreStore::new()),
        CycleControl::new(),
    )
    .await;
    assert!(summary.success, "{summary:?}");
    assert_eq!(target(&summary, "a").attempts, 3);
    assert_eq!(lab.calls("a"), 3);
    assert!(events.iter().any(|e| matches!(
        e,
        CycleEvent::Finished { target, state: ExecutionState::Completed, attempts: 3, .. } if target == "a"
    )));
}

#[tokio::test(start_paused = true)]
async fn permanent_failures_are_not_retried() {
    let lab = Lab::with(&[("a", 3)]);
    let broken = serde_json::json!({"resources": ["a"], "permanent": true});
    let plan = plan("{type: Sequential}", "Strict", &[("a", broken)]);
    let (summary, _) = run(
        &plan,
        Operation::Shutdown,
        &lab,
        Arc::new(MemoryRestoreStore::new()),
        CycleControl::new(),
    )
    .await;
    let a = target(&summary, "a");
    assert_eq!((a.state, a.attempts), (ExecutionState::Failed, 1));
    assert!(a.message.as_deref().unwrap().contains("access denied"));
    assert_eq!(lab.calls("a"), 1);
}

#[tokio::test(start_paused = true)]
async fn unknown_executor_fails_the_target_without_calls() {
    let lab = Lab::with(&[]);
    let mut plan = plan("{type: Sequential}", "BestEffort", &[("a", res("a"))]);
    plan.spec.targets[0].kind = "mystery".into();
    let (summary, _) = run(
        &plan,
        Operation::Shutdown,
        &lab,
        Arc::new(MemoryRestoreStore::new()),
        CycleControl::new(),
    )
    .await;
    let a = target(&summary, "a");
    assert_eq!((a.state, a.attempts), (ExecutionState::Failed, 0));
    assert!(a.message.as_deref().unwrap().contains("mystery"));
}

#[tokio::test]
async fn stop_dispatching_keeps_finished_restore_data_for_the_wakeup() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dev.state.json");
    let lab = Lab::with(&[("a", 2), ("b", 5), ("c", 7)]);
    let first = serde_json::json!({"resources": ["a"], "stopAfter": true});
    let plan = plan(
        "{type: Parallel, maxConcurrency: 1}",
        "BestEffort",
        &[("a", first), ("b", res("b")), ("c", res("c"))],
    );
    let control = CycleControl::new();
    *lab.control.lock().unwrap() = Some(control.clone());
    let store = Arc::new(FileRestoreStore::new(&path));
    let (summary, events) = run(&plan, Operation::Shutdown, &lab, store, control).await;
    assert_eq!(
        states(&summary),
        [
            ("a", ExecutionState::Completed),
            ("b", ExecutionState::Aborted),
            ("c", ExecutionState::Aborted)
        ]
    );
    assert!(
        target(&summary, "b")
            .message
            .as_deref()
            .unwrap()
            .starts_with("interrupted")
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, CycleEvent::Stopping { .. }))
    );
    assert_eq!((lab.size("a"), lab.size("b")), (0, 5));

    // A fresh store on the same file (a new process) finds a's restore data.
    let store = Arc::new(FileRestoreStore::new(&path));
    let record = store.load("a").await.unwrap().unwrap().value;
    assert_eq!(record.entries["res/a"].state, serde_json::json!(2));
    assert!(store.load("b").await.unwrap().is_none());
    let (wake, _) = run(&plan, Operation::Wakeup, &lab, store, CycleControl::new()).await;
    assert_eq!(target(&wake, "a").state, ExecutionState::Completed);
    assert_eq!(lab.size("a"), 2);
    // b was never hibernated: its wake-up fails clearly, a's is unaffected.
    let b = target(&wake, "b");
    assert_eq!(b.state, ExecutionState::Failed);
    assert!(
        b.message
            .as_deref()
            .unwrap()
            .starts_with(category::MISSING_RESTORE_DATA)
    );
}

#[tokio::test]
async fn cancel_running_stops_targets_and_keeps_recorded_states() {
    let lab = Lab::with(&[("a1", 4), ("a2", 6), ("b1", 8), ("c", 1)]);
    let hang_a = serde_json::json!({"resources": ["a1", "a2"], "hang": true});
    let hang_b = serde_json::json!({"resources": ["b1"], "hang": true});
    let plan = plan(
        "{type: Parallel}",
        "BestEffort",
        &[("a", hang_a), ("b", hang_b), ("c", res("c"))],
    );
    let store: Arc<dyn RestoreStore> = Arc::new(MemoryRestoreStore::new());
    let control = CycleControl::new();
    let (tx, mut rx) = unbounded_channel();
    let cycle = {
        let (plan, store, control, lab) =
            (plan.clone(), store.clone(), control.clone(), lab.clone());
        tokio::spawn(async move {
            let options = options(&plan, "c1");
            run_cycle(
                &plan,
                Operation::Shutdown,
                &LabProvider(lab),
                store,
                options,
                tx,
                control,
            )
            .await
        })
    };
    // Wait until both hanging targets captured their first resource.
    let mut asleep = 0;
    while asleep < 2 {
        if let Some(CycleEvent::Progress { .. }) = rx.recv().await {
            asleep += 1;
        }
    }
    control.cancel_running();
    let summary = cycle.await.unwrap().unwrap();
    for name in ["a", "b"] {
        let t = target(&summary, name);
        assert_eq!(t.state, ExecutionState::Failed, "{t:?}");
        assert!(
            t.message
                .as_deref()
                .unwrap()
                .starts_with(category::CANCELLED)
        );
    }
    assert_eq!(target(&summary, "c").state, ExecutionState::Completed);
    assert!(control.is_cancelled());
    let a = store.load("a").await.unwrap().unwrap().value;
    assert_eq!(a.entries.keys().collect::<Vec<_>>(), ["res/a1"]);
    assert_eq!(a.entries["res/a1"].state, serde_json::json!(4));
    assert_eq!(lab.size("a2"), 6, "a2 was never touched");
    let b = store.load("b").await.unwrap().unwrap().value;
    assert_eq!(b.entries["res/b1"].state, serde_json::json!(8));

    // The wake-up restores what the cancelled shutdown had put to sleep.
    let (wake, _) = run(&plan, Operation::Wakeup, &lab, store, CycleControl::new()).await;
    assert_eq!(target(&wake, "a").state, ExecutionState::Completed);
    assert_eq!((lab.size("a1"), lab.size("b1")), (4, 8));
}

#[tokio::test(start_paused = true)]
async fn wakeup_without_restore_data_fails_that_target_clearly() {
    let lab = Lab::with(&[("a", 0)]);
    let plan = plan("{type: Sequential}", "Strict", &[("a", res("a"))]);
    let (summary, _) = run(
        &plan,
        Operation::Wakeup,
        &lab,
        Arc::new(MemoryRestoreStore::new()),
        CycleControl::new(),
    )
    .await;
    let a = target(&summary, "a");
    assert_eq!((a.state, a.attempts), (ExecutionState::Failed, 0));
    let message = a.message.as_deref().unwrap();
    assert!(
        message.contains("no restore data for target \"a\""),
        "{message}"
    );
    assert_eq!(lab.calls("a"), 0);
}

#[tokio::test(start_paused = true)]
async fn stop_before_start_aborts_everything_and_summary_serializes() {
    let lab = Lab::with(&[("a", 1)]);
    let plan = plan("{type: Sequential}", "Strict", &[("a", res("a"))]);
    let control = CycleControl::new();
    control.stop_dispatching();
    let (summary, events) = run(
        &plan,
        Operation::Shutdown,
        &lab,
        Arc::new(MemoryRestoreStore::new()),
        control,
    )
    .await;
    assert_eq!(states(&summary), [("a", ExecutionState::Aborted)]);
    assert!(matches!(events.first(), Some(CycleEvent::Stopping { .. })));
    let json = serde_json::to_value(&summary).unwrap();
    assert_eq!(json["operation"], "shutdown");
    assert_eq!(json["cycleId"], "c1");
    assert_eq!(json["success"], false);
    assert_eq!(json["targets"][0]["state"], "Aborted");
    assert_eq!(summary.count(ExecutionState::Aborted), 1);
}
