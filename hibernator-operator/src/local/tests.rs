//! Tests of `hibernator run`: cycle ids, the AWS provider's errors, the
//! output and exit codes with injected executors, and the CLI's validation.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{TimeZone, Utc};
use hibernator_core::cycle::{CycleControl, CycleOptions, CycleSummary, ExecutorProvider};
use hibernator_core::diag::Diagnostics;
use hibernator_core::executor::{
    ExecutionContext, Executor, ExecutorError, ShutdownOutcome, TypedExecutor, WakeupOutcome,
    category, typed,
};
use hibernator_core::input::PlanDocuments;
use hibernator_core::params::ValidateParameters;
use hibernator_core::restore::{FileRestoreStore, RestoreRecord, update_record};
use hibernator_core::types::{ConnectorKind, ConnectorRef};
use hibernator_core::types::{Operation, Target};
use hibernator_executors::ExecutorSet;
use serde::Deserialize;

use super::cycle_id::{CycleIdError, CycleIdSource, check_cycle_id, choose_cycle_id, new_cycle_id};
use super::display::{DisplayMode, event_line};
use super::provider::FileProvider;
use super::{RunOptions, SummaryFormat, execute, exit_code};

fn demo_text() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/plans/demo.yaml"
    ))
    .unwrap()
}

async fn pending_record(store: &FileRestoreStore, target: &str, cycle: &str) {
    update_record(store, target, "mem", |r| {
        r.merge_shutdown(cycle, [("vm/a".to_string(), serde_json::json!(1))]);
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn cycle_id_rules() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileRestoreStore::new(dir.path().join("dev.state.json"));
    let now = Utc.with_ymd_and_hms(2026, 11, 22, 0, 44, 10).unwrap();
    assert_eq!(new_cycle_id(now), "c20261122t004410z");
    assert!(check_cycle_id(&new_cycle_id(now)).is_ok());

    // No state: a new id from the time.
    let choice = choose_cycle_id(None, &store, now).await.unwrap();
    assert_eq!(
        (choice.id.as_str(), choice.source),
        ("c20261122t004410z", CycleIdSource::New)
    );

    // Pending entries: the same cycle.
    pending_record(&store, "web", "c-earlier").await;
    let choice = choose_cycle_id(None, &store, now).await.unwrap();
    assert_eq!(
        (choice.id.as_str(), choice.source),
        ("c-earlier", CycleIdSource::Resumed)
    );

    // An explicit id wins, and must be label-safe.
    let choice = choose_cycle_id(Some("night-1"), &store, now).await.unwrap();
    assert_eq!(
        (choice.id.as_str(), choice.source),
        ("night-1", CycleIdSource::Given)
    );
    for bad in ["Night", "-x", "a_b", "", &"x".repeat(64)] {
        let err = choose_cycle_id(Some(bad), &store, now).await.unwrap_err();
        assert!(matches!(err, CycleIdError::Invalid(_)), "{bad}: {err}");
    }

    // Once everything was woken up (records empty), a new cycle starts.
    update_record(&store, "web", "mem", |r| {
        r.mark_restored(["vm/a"]);
    })
    .await
    .unwrap();
    let choice = choose_cycle_id(None, &store, now).await.unwrap();
    assert_eq!(choice.source, CycleIdSource::New);
}

#[tokio::test]
async fn cycle_id_of_the_latest_pending_record_wins_and_corrupt_state_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dev.state.json");
    let store = FileRestoreStore::new(&path);
    pending_record(&store, "a", "c-old").await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    pending_record(&store, "b", "c-new").await;
    let choice = choose_cycle_id(None, &store, Utc::now()).await.unwrap();
    assert_eq!(choice.id, "c-new");

    std::fs::write(&path, "{not json").unwrap();
    let err = choose_cycle_id(None, &store, Utc::now()).await.unwrap_err();
    assert!(matches!(err, CycleIdError::Store(_)), "{err}");
}

fn target(docs: &PlanDocuments, name: &str) -> Target {
    docs.plan
        .spec
        .targets
        .iter()
        .find(|t| t.name == name)
        .unwrap()
        .clone()
}

#[tokio::test]
async fn provider_errors_name_the_problem() {
    let text = format!(
        "{}\n---\n{}",
        demo_text(),
        r#"
apiVersion: hibernator.dev/v1alpha1
kind: CloudProvider
metadata: {name: aws-static}
spec:
  type: aws
  aws:
    accountId: "123456789012"
    region: eu-central-1
    auth: {static: {secretRef: {name: aws-keys}}}
"#
    );
    let docs = PlanDocuments::from_yaml(&text).unwrap();
    let provider = FileProvider::from_documents(&docs, Arc::new(ExecutorSet::new()));
    let message = |t: Target| {
        let provider = provider.clone();
        async move { provider.executor_for(&t).await.err().unwrap() }
    };

    let mut missing = target(&docs, "batch-workers");
    missing.connector_ref = Some(ConnectorRef::new(ConnectorKind::CloudProvider, "aws-prod"));
    let err = message(missing).await;
    assert_eq!(err.category, "connector");
    assert!(
        err.message.contains("CloudProvider \"aws-prod\"")
            && err.message.contains("not defined in the plan file"),
        "{err}"
    );

    let mut with_static = target(&docs, "batch-workers");
    with_static.connector_ref = Some(ConnectorRef::new(
        ConnectorKind::CloudProvider,
        "aws-static",
    ));
    let err = message(with_static).await;
    assert!(
        err.message.contains("auth.static") && err.message.contains("default credential chain"),
        "{err}"
    );

    let mut kube = target(&docs, "batch-workers");
    kube.kind = "workloadscaler".into();
    kube.connector_ref = Some(ConnectorRef::new(ConnectorKind::K8sCluster, "dev-cluster"));
    let err = message(kube).await;
    assert!(
        err.message
            .contains("uses K8SCluster \"dev-cluster\": it needs the operator"),
        "{err}"
    );

    let mut no_connector = target(&docs, "batch-workers");
    no_connector.connector_ref = None;
    let err = message(no_connector).await;
    assert!(
        err.message
            .contains("needs a connectorRef to a CloudProvider"),
        "{err}"
    );

    let mut unknown = target(&docs, "batch-workers");
    unknown.kind = "mainframe".into();
    let err = message(unknown).await;
    assert!(
        err.message
            .contains("no executor for type \"mainframe\" in this build (it knows: ec2, eks"),
        "{err}"
    );
    assert!(!err.is_transient());
}

#[tokio::test]
async fn standalone_executors_run_without_a_connector() {
    let memory = Arc::new(Memory::default());
    memory.sizes.lock().unwrap().insert("a".into(), 2);
    let executors = ExecutorSet::empty().standalone(typed(MemoryExecutor(memory.clone())));
    let docs = PlanDocuments::from_yaml(
        r#"
apiVersion: hibernator.dev/v1alpha1
kind: HibernatePlan
metadata: {name: dev}
spec:
  schedule: {timezone: UTC, offHours: [{start: "20:00", end: "06:00", daysOfWeek: [MON, TUE, WED, THU, FRI]}]}
  targets:
    - {name: vms, type: mem, parameters: {vms: [a]}}
"#,
    )
    .unwrap();
    let diagnostics = hibernator_core::validation::validate_documents(&docs, &executors.catalog());
    assert!(diagnostics.is_valid(), "{diagnostics:?}");
    let provider = FileProvider::from_documents(&docs, Arc::new(executors));
    let executor = provider
        .executor_for(&docs.plan.spec.targets[0])
        .await
        .unwrap();
    assert_eq!(executor.executor_type(), "mem");
}

/// An in-memory executor: resources are `vm/<name>` with a size; asleep = 0.
#[derive(Default)]
struct Memory {
    sizes: Mutex<BTreeMap<String, u64>>,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
struct MemoryParams {
    vms: Vec<String>,
    #[serde(default)]
    fail: bool,
}

impl ValidateParameters for MemoryParams {
    fn validate(&self, _field: &str, _d: &mut Diagnostics) {}
}

struct MemoryExecutor(Arc<Memory>);

#[async_trait]
impl TypedExecutor for MemoryExecutor {
    const TYPE: &'static str = "mem";
    type Params = MemoryParams;

    async fn shutdown(
        &self,
        ctx: &ExecutionContext,
        params: &MemoryParams,
    ) -> Result<ShutdownOutcome, ExecutorError> {
        if params.fail {
            return Err(ExecutorError::permanent(category::AUTH, "not allowed"));
        }
        let mut outcome = ShutdownOutcome::default();
        for vm in &params.vms {
            let key = format!("vm/{vm}");
            let mut sizes = self.0.sizes.lock().unwrap();
            let size = sizes.get(vm).copied().unwrap_or(0);
            outcome.resources.push(key.clone());
            if size > 0 {
                ctx.record_awake_state(key, serde_json::json!(size));
                sizes.insert(vm.clone(), 0);
            }
            ctx.progress(50, &format!("{vm} stopped"));
        }
        Ok(outcome)
    }

    async fn wakeup(
        &self,
        _ctx: &ExecutionContext,
        _params: &MemoryParams,
        record: &RestoreRecord,
    ) -> Result<WakeupOutcome, ExecutorError> {
        let mut outcome = WakeupOutcome::default();
        for (key, entry) in &record.entries {
            let vm = key.trim_start_matches("vm/").to_string();
            let size = entry.state.as_u64().unwrap_or_default();
            self.0.sizes.lock().unwrap().insert(vm, size);
            outcome.restored.push(key.clone());
        }
        Ok(outcome)
    }
}

struct MemoryProvider(Arc<Memory>);

#[async_trait]
impl ExecutorProvider for MemoryProvider {
    async fn executor_for(&self, _target: &Target) -> Result<Arc<dyn Executor>, ExecutorError> {
        Ok(typed(MemoryExecutor(self.0.clone())))
    }
}

fn memory_plan(second_fails: bool) -> PlanDocuments {
    PlanDocuments::from_yaml(&format!(
        r#"
apiVersion: hibernator.dev/v1alpha1
kind: HibernatePlan
metadata: {{name: dev}}
spec:
  schedule: {{timezone: UTC, offHours: [{{start: "20:00", end: "06:00", daysOfWeek: [MON]}}]}}
  execution: {{strategy: {{type: DAG, dependencies: [{{from: app, to: db}}]}}}}
  behavior: {{mode: BestEffort, retries: 0}}
  targets:
    - {{name: app, type: mem, connectorRef: {{kind: CloudProvider, name: x}}, parameters: {{vms: [a, b], fail: {second_fails}}}}}
    - {{name: db, type: mem, connectorRef: {{kind: CloudProvider, name: x}}, parameters: {{vms: [c]}}}}
    - {{name: cache, type: mem, connectorRef: {{kind: CloudProvider, name: x}}, parameters: {{vms: [d]}}}}
"#
    ))
    .unwrap()
}

async fn run_memory(
    docs: &PlanDocuments,
    operation: Operation,
    memory: &Arc<Memory>,
    store: &FileRestoreStore,
    format: SummaryFormat,
    display: DisplayMode,
) -> (CycleSummary, String) {
    let mut out = Vec::new();
    let mut cycle = CycleOptions::for_plan(&docs.plan, "ignored");
    cycle.retry = hibernator_core::executor::RetryPolicy::no_retry();
    let options = RunOptions {
        cycle_id: None,
        format,
        display,
        state_path: Some(store.path().to_path_buf()),
        cycle: Some(cycle),
    };
    let summary = execute(
        docs,
        operation,
        &MemoryProvider(memory.clone()),
        Arc::new(store.clone()),
        options,
        CycleControl::new(),
        &mut out,
    )
    .await
    .unwrap();
    (summary, String::from_utf8(out).unwrap())
}

fn memory_with(sizes: &[(&str, u64)]) -> Arc<Memory> {
    let memory = Memory::default();
    *memory.sizes.lock().unwrap() = sizes.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    Arc::new(memory)
}

#[tokio::test]
async fn json_output_shape_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileRestoreStore::new(dir.path().join("dev.state.json"));
    let memory = memory_with(&[("a", 2), ("b", 3), ("c", 1), ("d", 4)]);
    let docs = memory_plan(false);
    let (summary, out) = run_memory(
        &docs,
        Operation::Shutdown,
        &memory,
        &store,
        SummaryFormat::Json,
        DisplayMode::Quiet,
    )
    .await;
    assert_eq!(exit_code(&summary), ExitCode::SUCCESS);
    let json: serde_json::Value = serde_json::from_str(&out).expect("only JSON on the output");
    assert_eq!(json["operation"], "shutdown");
    assert_eq!(json["success"], true);
    let cycle = json["cycleId"].as_str().unwrap();
    assert!(cycle.starts_with("c20") && cycle.ends_with('z'), "{cycle}");
    let targets = json["targets"].as_array().unwrap();
    let names: Vec<_> = targets
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["app", "db", "cache"]);
    assert_eq!(targets[0]["state"], "Completed");
    assert_eq!(targets[0]["resources"], serde_json::json!(["vm/a", "vm/b"]));
    assert!(targets[0]["message"].is_null());

    // Wake-up resumes the same cycle and restores the sizes.
    let (wake, out) = run_memory(
        &docs,
        Operation::Wakeup,
        &memory,
        &store,
        SummaryFormat::Json,
        DisplayMode::Quiet,
    )
    .await;
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["cycleId"], cycle);
    assert_eq!(exit_code(&wake), ExitCode::SUCCESS);
    assert_eq!(memory.sizes.lock().unwrap()["b"], 3);
}

#[tokio::test]
async fn a_failed_target_exits_1_and_the_table_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileRestoreStore::new(dir.path().join("dev.state.json"));
    let memory = memory_with(&[("a", 2), ("b", 3), ("c", 1), ("d", 4)]);
    let (summary, out) = run_memory(
        &memory_plan(true),
        Operation::Shutdown,
        &memory,
        &store,
        SummaryFormat::Table,
        DisplayMode::Lines,
    )
    .await;
    assert_eq!(exit_code(&summary), ExitCode::FAILURE);
    assert!(
        out.starts_with("shutdown of plan dev: 3 target(s), cycle c20"),
        "{out}"
    );
    assert!(out.contains("[app] started"), "{out}");
    assert!(out.contains("[app] failed after"), "{out}");
    assert!(out.contains("auth: not allowed"), "{out}");
    assert!(
        out.contains("[db] aborted: not started: it depends on target \"app\""),
        "{out}"
    );
    assert!(out.contains("[cache] 50% d stopped"), "{out}");
    assert!(out.contains("[cache] completed in "), "{out}");
    assert!(out.contains("(1 resource)"), "{out}");
    assert!(out.contains("vm/d"), "table lists the resources: {out}");
    assert!(
        out.contains("FAILED: 1 completed, 1 failed, 1 aborted"),
        "{out}"
    );
    assert!(out.contains("restore data: "), "{out}");
    assert_eq!(memory.sizes.lock().unwrap()["d"], 0);
    assert_eq!(memory.sizes.lock().unwrap()["c"], 1);
}

#[test]
fn stopping_lines_tell_how_to_cancel() {
    let control = CycleControl::new();
    let event = hibernator_core::cycle::CycleEvent::Stopping {
        reason: "no new targets start".into(),
    };
    control.stop_dispatching();
    let line = event_line(&event, &control).unwrap();
    assert!(line.contains("press Ctrl-C again to cancel them"), "{line}");
    control.cancel_running();
    let line = event_line(&event, &control).unwrap();
    assert!(!line.contains("press Ctrl-C again"), "{line}");
}

fn write_plan(dir: &std::path::Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("estate.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn invalid_plan_exits_1_without_touching_the_state_file() {
    let dir = tempfile::tempdir().unwrap();
    let text = demo_text().replace(
        "{from: batch-workers, to: orders-db}",
        "{from: orders-db, to: app-nodes}",
    );
    let path = write_plan(dir.path(), &text);
    let file = path.to_str().unwrap();
    let (code, out) = crate::cli::run_capture([
        "hibernator",
        "run",
        file,
        "--operation",
        "shutdown",
        "--output",
        "json",
    ])
    .unwrap();
    assert_eq!(code, ExitCode::FAILURE);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["success"], false);
    assert!(json["errors"].to_string().contains("cycle"), "{json}");
    assert!(!dir.path().join("estate.state.json").exists());

    // An existing state file is left byte for byte.
    let state = dir.path().join("custom.json");
    std::fs::write(&state, "{\"version\": 1, \"counter\": 0, \"records\": {}}").unwrap();
    let before = std::fs::read(&state).unwrap();
    let (code, out) = crate::cli::run_capture([
        "hibernator",
        "run",
        file,
        "--operation",
        "wakeup",
        "--state",
        state.to_str().unwrap(),
    ])
    .unwrap();
    assert_eq!(code, ExitCode::FAILURE);
    assert!(out.contains("is invalid: nothing was run"), "{out}");
    assert_eq!(std::fs::read(&state).unwrap(), before);
}

#[test]
fn cli_run_fails_static_credential_targets_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let text = demo_text().replace(
        "serviceAccount: {}",
        "static: {secretRef: {name: aws-keys}}",
    );
    let path = write_plan(dir.path(), &text);
    let (code, out) = crate::cli::run_capture([
        "hibernator",
        "run",
        path.to_str().unwrap(),
        "--operation",
        "shutdown",
        "--output",
        "json",
    ])
    .unwrap();
    assert_eq!(code, ExitCode::FAILURE);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let states: BTreeMap<String, String> = json["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_string(),
                t["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(states["app-nodes"], "Failed");
    assert_eq!(states["batch-workers"], "Failed");
    assert_eq!(states["orders-db"], "Aborted");
    assert_eq!(states["analytics-db"], "Aborted");
    assert!(
        json["targets"][0]["message"]
            .as_str()
            .unwrap()
            .contains("auth.static")
    );
    // Nothing ran, so nothing was recorded; the default state path is next to the file.
    assert!(!dir.path().join("estate.state.json").exists());
    assert_eq!(
        crate::cli::run::default_state_path(&path),
        dir.path().join("estate.state.json")
    );
}

#[test]
fn run_requires_an_operation() {
    let err = crate::cli::run_capture(["hibernator", "run", "plan.yaml"]).unwrap_err();
    assert!(err.to_string().contains("--operation"), "{err}");
}

#[tokio::test]
async fn bars_consume_every_event_and_write_no_lines() {
    let docs = memory_plan(false);
    let control = CycleControl::new();
    let display = super::display::Display::with_target(
        DisplayMode::Bars,
        &docs.plan.spec.targets,
        control.clone(),
        indicatif::ProgressDrawTarget::hidden(),
    );
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let memory = memory_with(&[("a", 1), ("b", 1), ("c", 1), ("d", 1)]);
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FileRestoreStore::new(dir.path().join("s.json")));
    let provider = MemoryProvider(memory);
    let mut out = Vec::new();
    let cycle = hibernator_core::cycle::CycleBuilder::new(
        &docs.plan,
        Operation::Shutdown,
        &provider,
        store,
    )
    .options(CycleOptions::for_plan(&docs.plan, "c1"))
    .events(tx)
    .control(control)
    .run();
    let (summary, shown) = tokio::join!(cycle, display.consume(rx, &mut out));
    assert!(summary.unwrap().success);
    shown.unwrap();
    assert!(out.is_empty());
}
