//! Runs the Hibernator conformance kit against `file-replicas`, and proves the
//! kit catches broken executors.

use async_trait::async_trait;
use hibernator_core::executor::testing::run_conformance;
use hibernator_core::executor::{
    ExecutionContext, ExecutorError, RetryPolicy, ShutdownOutcome, TypedExecutor, WakeupOutcome,
    run_shutdown, typed,
};
use hibernator_core::params::ConnectorUse;
use hibernator_core::restore::{MemoryRestoreStore, RestoreRecord, RestoreStore};
use hibernator_core::types::Operation;
use hibernator_example_custom_executor::fixture::TempServices;
use hibernator_example_custom_executor::{
    FileReplicas, FileReplicasParams, read_service, resource_key, select_services, write_replicas,
};
use hibernator_executors::ExecutorSet;
use serde_json::json;

#[tokio::test]
async fn file_replicas_passes_conformance() {
    let fixture = TempServices::new().unwrap();
    let report = run_conformance(typed(FileReplicas), &fixture).await;
    report.assert_passed();
    // 5 ledger checks and 2 enforcement checks (FileReplicas does not
    // support enforcement: its `enforce` must fail cleanly as `unsupported`).
    assert_eq!(report.checks.len(), 7);
}

/// Scales services to 0 but forgets to record their replica counts.
struct Forgetful;

#[async_trait]
impl TypedExecutor for Forgetful {
    const TYPE: &'static str = "file-replicas";
    type Params = FileReplicasParams;

    async fn shutdown(
        &self,
        _ctx: &ExecutionContext,
        params: &FileReplicasParams,
    ) -> Result<ShutdownOutcome, ExecutorError> {
        let mut outcome = ShutdownOutcome::default();
        for service in select_services(params).await? {
            let file = read_service(&params.directory, &service).await?;
            write_replicas(&file, &service, 0).await?;
            outcome.resources.push(resource_key(&service));
        }
        Ok(outcome)
    }

    async fn wakeup(
        &self,
        ctx: &ExecutionContext,
        params: &FileReplicasParams,
        record: &RestoreRecord,
    ) -> Result<WakeupOutcome, ExecutorError> {
        FileReplicas.wakeup(ctx, params, record).await
    }
}

#[tokio::test]
async fn an_executor_that_forgets_to_record_fails_conformance() {
    let fixture = TempServices::new().unwrap();
    let report = run_conformance(typed(Forgetful), &fixture).await;
    assert!(!report.passed(), "{report}");
    let check = report
        .check("shutdown_then_wakeup_restores_exactly")
        .unwrap();
    let why = check.outcome.as_ref().unwrap_err();
    assert!(why.contains("expected restore entries"), "{why}");
}

/// Reports services it finds asleep as observations, overwriting the awake
/// counts recorded in an earlier cycle.
struct Overeager;

#[async_trait]
impl TypedExecutor for Overeager {
    const TYPE: &'static str = "file-replicas";
    type Params = FileReplicasParams;

    async fn shutdown(
        &self,
        _ctx: &ExecutionContext,
        params: &FileReplicasParams,
    ) -> Result<ShutdownOutcome, ExecutorError> {
        let mut outcome = ShutdownOutcome::default();
        for service in select_services(params).await? {
            let file = read_service(&params.directory, &service).await?;
            outcome
                .observations
                .insert(resource_key(&service), json!({"replicas": file.replicas}));
            write_replicas(&file, &service, 0).await?;
        }
        Ok(outcome)
    }

    async fn wakeup(
        &self,
        ctx: &ExecutionContext,
        params: &FileReplicasParams,
        record: &RestoreRecord,
    ) -> Result<WakeupOutcome, ExecutorError> {
        FileReplicas.wakeup(ctx, params, record).await
    }
}

#[tokio::test]
async fn an_executor_that_reobserves_hibernated_services_fails_conformance() {
    let fixture = TempServices::new().unwrap();
    let report = run_conformance(typed(Overeager), &fixture).await;
    let failed: Vec<_> = report.failures().map(|c| c.name).collect();
    assert_eq!(
        failed,
        ["hibernated_resources_are_not_reobserved"],
        "{report}"
    );
    let why = report
        .failures()
        .next()
        .unwrap()
        .outcome
        .as_ref()
        .unwrap_err();
    assert!(why.contains("entry of service/api"), "{why}");
    assert!(why.contains("expected: {\"replicas\":2}"), "{why}");
    assert!(why.contains("seen:     {\"replicas\":0}"), "{why}");
}

#[tokio::test]
async fn the_executor_set_exposes_parameter_checks() {
    let executors = ExecutorSet::empty().standalone(typed(FileReplicas));
    let catalog = executors.catalog();
    assert_eq!(
        catalog.connector("file-replicas"),
        Some(&ConnectorUse::None)
    );
    let check = catalog.get("file-replicas").unwrap();
    let d = check.check(
        Some(&json!({"directory": "/srv", "services": ["../etc"]})),
        "spec.targets[0].parameters",
    );
    assert_eq!(d.errors[0].field, "spec.targets[0].parameters.services[0]");
    let d = check.check(
        Some(&json!({"services": ["web"]})),
        "spec.targets[0].parameters",
    );
    assert!(d.errors[0].message.contains("directory"), "{d:?}");
}

#[tokio::test]
async fn selected_services_only_and_unknown_service_is_not_found() {
    let fixture = TempServices::new().unwrap();
    let params = hibernator_core::executor::testing::ConformanceFixture::setup(&fixture)
        .await
        .unwrap();
    let store = MemoryRestoreStore::new();
    let exec = typed(FileReplicas);
    let ctx = ExecutionContext::builder("dev", "svc", "c1", Operation::Shutdown).build();
    let mut only_web = params.clone();
    only_web["services"] = json!(["web"]);
    run_shutdown(
        exec.as_ref(),
        &ctx,
        &only_web,
        &store,
        &RetryPolicy::no_retry(),
    )
    .await
    .unwrap();
    let record = store.load("svc").await.unwrap().unwrap().value;
    assert_eq!(record.entries.keys().collect::<Vec<_>>(), ["service/web"]);
    assert_eq!(
        read_service(fixture.path(), "api").await.unwrap().replicas,
        2
    );

    let mut missing = params;
    missing["services"] = json!(["nope"]);
    let err = run_shutdown(
        exec.as_ref(),
        &ctx,
        &missing,
        &store,
        &RetryPolicy::no_retry(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.category, "not_found");
    assert_eq!(err.resource.as_deref(), Some("service/nope"));
}
