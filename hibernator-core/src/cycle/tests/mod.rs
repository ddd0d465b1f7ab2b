//! Tests of [`CycleBuilder`] with small in-test executors: a shared "lab" of
//! sized resources, executors whose behaviour comes from target parameters.

mod control;
mod dispatch;

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
    let provider = LabProvider(lab.clone());
    let summary = CycleBuilder::new(plan, operation, &provider, store)
        .options(options(plan, "c1"))
        .events(tx)
        .control(control)
        .run()
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
