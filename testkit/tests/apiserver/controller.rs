//! A tiny kube-runtime Controller against the server: a HibernatePlan that
//! owns a ConfigMap and reports its observed generation.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use hibernator_core::types::HibernatePlan;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use serde_json::json;

use hibernator_testkit::kube::TestCluster;

#[derive(Debug, thiserror::Error)]
#[error("reconcile failed: {0}")]
struct ReconcileError(#[from] kube::Error);

async fn reconcile(
    plan: Arc<HibernatePlan>,
    client: Arc<kube::Client>,
) -> Result<Action, ReconcileError> {
    let ns = plan.namespace().unwrap_or_default();
    let name = plan.name_any();
    let owner = plan
        .controller_owner_ref(&())
        .into_iter()
        .collect::<Vec<_>>();
    let cm = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": format!("hibernator-restore-{name}"), "ownerReferences": owner},
        "data": {"generation": plan.metadata.generation.unwrap_or_default().to_string()}
    });
    let cms: Api<ConfigMap> = Api::namespaced((*client).clone(), &ns);
    cms.patch(
        &format!("hibernator-restore-{name}"),
        &PatchParams::apply("test-controller").force(),
        &Patch::Apply(cm),
    )
    .await?;
    let plans: Api<HibernatePlan> = Api::namespaced((*client).clone(), &ns);
    plans
        .patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"observedGeneration": plan.metadata.generation}})),
        )
        .await?;
    Ok(Action::await_change())
}

fn error_policy(_: Arc<HibernatePlan>, _: &ReconcileError, _: Arc<kube::Client>) -> Action {
    Action::requeue(Duration::from_millis(100))
}

async fn observed(api: &Api<HibernatePlan>, name: &str, generation: i64) {
    for _ in 0..400 {
        let plan = api.get(name).await.expect("get plan");
        if plan.status.and_then(|s| s.observed_generation) == Some(generation) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the controller never observed generation {generation}");
}

#[tokio::test]
async fn controller_reconciles_plans_and_owned_configmaps() {
    let tc = TestCluster::start("ctrl").await.unwrap();
    for crd in hibernator_core::crd::all() {
        tc.ensure_crd(&crd).await.unwrap();
    }
    let client = tc.client();
    let plans: Api<HibernatePlan> = Api::default_namespaced(client.clone());
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let controller = Controller::new(plans.clone(), watcher::Config::default())
        .owns(cms.clone(), watcher::Config::default())
        .run(reconcile, error_policy, Arc::new(client.clone()))
        .for_each(|_| async {});
    let handle = tokio::spawn(controller);

    let plan: HibernatePlan = serde_json::from_value(json!({
        "apiVersion": "hibernator.dev/v1alpha1", "kind": "HibernatePlan",
        "metadata": {"name": "nightly"},
        "spec": {
            "schedule": {"timezone": "UTC", "offHours": [{"start": "20:00", "end": "06:00", "daysOfWeek": ["MON"]}]},
            "targets": [{"name": "db", "type": "rds", "connectorRef": {"kind": "CloudProvider", "name": "aws"}, "parameters": {"instanceIds": ["db-1"]}}]
        }
    }))
    .unwrap();
    plans.create(&PostParams::default(), &plan).await.unwrap();
    observed(&plans, "nightly", 1).await;
    let cm = cms.get("hibernator-restore-nightly").await.unwrap();
    assert_eq!(cm.owner_references()[0].name, "nightly");
    assert_eq!(cm.data.unwrap()["generation"], "1");

    plans
        .patch(
            "nightly",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"suspend": true}})),
        )
        .await
        .unwrap();
    observed(&plans, "nightly", 2).await;
    handle.abort();
    tc.cleanup().await.unwrap();
}

const FINALIZER: &str = "hibernator.dev/restore";

async fn reconcile_with_finalizer(
    plan: Arc<HibernatePlan>,
    client: Arc<kube::Client>,
) -> Result<Action, kube::runtime::finalizer::Error<ReconcileError>> {
    use kube::runtime::finalizer::{Event, finalizer};
    let ns = plan.namespace().unwrap_or_default();
    let plans: Api<HibernatePlan> = Api::namespaced((*client).clone(), &ns);
    finalizer(&plans, FINALIZER, plan, |event| async {
        match event {
            Event::Apply(_) => Ok(Action::await_change()),
            Event::Cleanup(p) => {
                let cms: Api<ConfigMap> = Api::namespaced((*client).clone(), &ns);
                let cm: ConfigMap = serde_json::from_value(json!({
                    "metadata": {"name": format!("cleaned-{}", p.name_any())}
                }))
                .expect("valid ConfigMap");
                cms.create(&PostParams::default(), &cm)
                    .await
                    .map_err(ReconcileError)?;
                Ok(Action::await_change())
            }
        }
    })
    .await
}

fn finalizer_error_policy(
    _: Arc<HibernatePlan>,
    _: &kube::runtime::finalizer::Error<ReconcileError>,
    _: Arc<kube::Client>,
) -> Action {
    Action::requeue(Duration::from_millis(100))
}

#[tokio::test]
async fn kube_finalizer_helper_adds_and_removes_its_finalizer() {
    let tc = TestCluster::start("finalize").await.unwrap();
    for crd in hibernator_core::crd::all() {
        tc.ensure_crd(&crd).await.unwrap();
    }
    let client = tc.client();
    let plans: Api<HibernatePlan> = Api::default_namespaced(client.clone());
    let controller = Controller::new(plans.clone(), watcher::Config::default())
        .run(
            reconcile_with_finalizer,
            finalizer_error_policy,
            Arc::new(client.clone()),
        )
        .for_each(|_| async {});
    let handle = tokio::spawn(controller);
    let plan: HibernatePlan = serde_json::from_value(json!({
        "apiVersion": "hibernator.dev/v1alpha1", "kind": "HibernatePlan",
        "metadata": {"name": "guarded"},
        "spec": {
            "schedule": {"timezone": "UTC", "offHours": [{"start": "20:00", "end": "06:00", "daysOfWeek": ["MON"]}]},
            "targets": [{"name": "db", "type": "rds", "connectorRef": {"kind": "CloudProvider", "name": "aws"}, "parameters": {"instanceIds": ["db-1"]}}]
        }
    }))
    .unwrap();
    plans.create(&PostParams::default(), &plan).await.unwrap();
    let mut added = false;
    for _ in 0..400 {
        if plans.get("guarded").await.unwrap().finalizers() == [FINALIZER.to_string()] {
            added = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(added, "the finalizer was never added");
    plans.delete("guarded", &Default::default()).await.unwrap();
    let mut gone = false;
    for _ in 0..400 {
        if plans.get_opt("guarded").await.unwrap().is_none() {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(gone, "the plan was never released by its finalizer");
    let cms: Api<ConfigMap> = Api::default_namespaced(client);
    assert!(cms.get_opt("cleaned-guarded").await.unwrap().is_some());
    handle.abort();
    tc.cleanup().await.unwrap();
}
