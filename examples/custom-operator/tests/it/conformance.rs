//! `argocd-autosync` against Applications in the testkit API server (or the
//! cluster of `HIBERNATOR_TEST_KUBECONFIG`): the conformance kit, a shutdown
//! held by a running sync, and a wake-up of an Application deleted since.

use std::time::Duration;

use async_trait::async_trait;
use hibernator_core::executor::testing::{ConformanceFixture, run_conformance};
use hibernator_core::executor::{
    ExecutionContext, RetryPolicy, category, run_shutdown, run_wakeup, typed,
};
use hibernator_core::restore::{MemoryRestoreStore, RestoreStore};
use hibernator_core::types::Operation;
use hibernator_example_custom_operator::{ArgoAutoSync, resource_key};
use hibernator_testkit::kube::TestCluster;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};

use super::support::{api, application, application_crd, put, sync_policies};

/// Four Applications: three labelled `env: dev` (two with automated sync of
/// different shapes, one synced by hand) and one `env: prod` that is not
/// selected.
struct Applications {
    cluster: TestCluster,
    api: Api<DynamicObject>,
}

impl Applications {
    async fn new(prefix: &str) -> Applications {
        let cluster = TestCluster::start(prefix).await.unwrap();
        cluster.ensure_crd(&application_crd()).await.unwrap();
        let api = api(&cluster.client(), cluster.namespace());
        Applications { cluster, api }
    }

    fn executor(&self) -> ArgoAutoSync {
        ArgoAutoSync::new(self.cluster.client()).with_poll_interval(Duration::from_millis(20))
    }

    fn params(&self, timeout: &str) -> Value {
        json!({
            "namespace": self.cluster.namespace(),
            "selector": {"matchLabels": {"env": "dev"}},
            "awaitCompletion": {"timeout": timeout},
        })
    }
}

#[async_trait]
impl ConformanceFixture for Applications {
    async fn setup(&self) -> Result<Value, String> {
        let dev = json!({"env": "dev"});
        for app in [
            application(
                "web",
                dev.clone(),
                json!({"automated": {"prune": true, "selfHeal": true},
                       "syncOptions": ["CreateNamespace=true"]}),
            ),
            application("api", dev.clone(), json!({"automated": {}})),
            application(
                "docs",
                dev,
                json!({"syncOptions": ["ServerSideApply=true"]}),
            ),
            application(
                "billing",
                json!({"env": "prod"}),
                json!({"automated": {"selfHeal": true}}),
            ),
        ] {
            put(&self.api, &app).await;
        }
        Ok(self.params("30s"))
    }

    async fn observe(&self) -> Result<Value, String> {
        Ok(sync_policies(&self.api).await)
    }
}

#[tokio::test]
async fn argocd_autosync_passes_the_conformance_kit() {
    let fixture = Applications::new("argocd-conformance").await;
    let report = run_conformance(typed(fixture.executor()), &fixture).await;
    report.assert_passed();
    // Only automated sync changed, and the prod Application never did.
    let policies = sync_policies(&fixture.api).await;
    assert_eq!(
        policies["billing"],
        json!({"automated": {"selfHeal": true}})
    );
    fixture.cluster.cleanup().await.unwrap();
}

fn quick() -> RetryPolicy {
    RetryPolicy {
        max_retries: 0,
        ..RetryPolicy::default()
    }
}

fn ctx(operation: Operation) -> ExecutionContext {
    ExecutionContext::builder("plan", "gitops", "cycle-1", operation).build()
}

async fn set_phase(api: &Api<DynamicObject>, name: &str, phase: &str) {
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"operationState": {"phase": phase}}})),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn a_running_sync_holds_the_shutdown_until_it_ends() {
    let f = Applications::new("argocd-running-sync").await;
    let params = f.setup().await.unwrap();
    let executor = typed(f.executor());
    set_phase(&f.api, "web", "Running").await;

    // It never ends: the shutdown fails naming the Application, after
    // recording it (its automated sync is already paused).
    let store = MemoryRestoreStore::new();
    let short = f.params("1s");
    let error = run_shutdown(
        executor.as_ref(),
        &ctx(Operation::Shutdown),
        &short,
        &store,
        &quick(),
    )
    .await
    .unwrap_err();
    assert_eq!(error.category, category::TIMEOUT);
    assert!(error.message.contains("web (sync Running)"), "{error}");
    let ns = f.cluster.namespace().to_string();
    assert_eq!(error.resource, Some(resource_key(&ns, "web")));
    let record = store.load("gitops").await.unwrap().unwrap().value;
    assert!(record.entry(&resource_key(&ns, "web")).is_some());

    // It ends while the shutdown waits: the shutdown succeeds.
    let api = f.api.clone();
    let finish = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        set_phase(&api, "web", "Succeeded").await;
    });
    run_shutdown(
        executor.as_ref(),
        &ctx(Operation::Shutdown),
        &params,
        &store,
        &quick(),
    )
    .await
    .unwrap();
    finish.await.unwrap();
    f.cluster.cleanup().await.unwrap();
}

#[tokio::test]
async fn an_application_deleted_while_hibernated_fails_only_its_entry() {
    let f = Applications::new("argocd-deleted").await;
    let params = f.setup().await.unwrap();
    let executor = typed(f.executor());
    let store = MemoryRestoreStore::new();
    run_shutdown(
        executor.as_ref(),
        &ctx(Operation::Shutdown),
        &params,
        &store,
        &quick(),
    )
    .await
    .unwrap();
    f.api.delete("api", &DeleteParams::default()).await.unwrap();

    let error = run_wakeup(
        executor.as_ref(),
        &ctx(Operation::Wakeup),
        &params,
        &store,
        &quick(),
    )
    .await
    .unwrap_err();
    assert_eq!(error.category, category::PARTIAL_RESTORE, "{error}");
    assert!(error.message.contains("no longer exists"), "{error}");
    let ns = f.cluster.namespace().to_string();
    let record = store.load("gitops").await.unwrap().unwrap().value;
    assert_eq!(
        record.entries.keys().cloned().collect::<Vec<_>>(),
        [resource_key(&ns, "api")],
        "only the failed entry is kept"
    );
    let policies = sync_policies(&f.api).await;
    assert_eq!(
        policies["web"]["automated"],
        json!({"prune": true, "selfHeal": true})
    );
    f.cluster.cleanup().await.unwrap();
}
