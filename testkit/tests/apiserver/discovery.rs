//! Discovery documents and CRDs.

use hibernator_core::types::HibernatePlan;
use hibernator_testkit::kube::{TestCluster, crds};
use kube::api::{Api, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};
use kube::discovery::{self, Discovery, Scope};
use serde_json::json;

#[tokio::test]
async fn discovery_lists_builtins_and_crds() {
    let tc = TestCluster::start("discovery").await.unwrap();
    tc.ensure_crd(&crds::keda_scaledobject()).await.unwrap();
    for crd in hibernator_core::crd::all() {
        tc.ensure_crd(&crd).await.unwrap();
    }
    let client = tc.client();
    let discovery = Discovery::new(client.clone()).run().await.unwrap();
    let groups: Vec<String> = discovery.groups().map(|g| g.name().to_string()).collect();
    for g in [
        "",
        "apps",
        "batch",
        "hibernator.dev",
        "keda.sh",
        "coordination.k8s.io",
    ] {
        assert!(
            groups.iter().any(|x| x == g),
            "group {g:?} missing from {groups:?}"
        );
    }
    let (ar, caps) =
        discovery::pinned_kind(&client, &GroupVersionKind::gvk("apps", "v1", "Deployment"))
            .await
            .unwrap();
    assert_eq!(ar.plural, "deployments");
    assert_eq!(caps.scope, Scope::Namespaced);
    assert!(
        caps.subresources
            .iter()
            .any(|(sub, _)| sub.plural == "deployments/scale" || sub.plural == "scale")
    );
    let (plan, _) = discovery::pinned_kind(
        &client,
        &GroupVersionKind::gvk("hibernator.dev", "v1alpha1", "HibernatePlan"),
    )
    .await
    .unwrap();
    assert_eq!(plan.plural, "hibernateplans");
    let (node, caps) = discovery::pinned_kind(&client, &GroupVersionKind::gvk("", "v1", "Node"))
        .await
        .unwrap();
    assert_eq!(
        (node.plural.as_str(), caps.scope),
        ("nodes", Scope::Cluster)
    );
    tc.cleanup().await.unwrap();
}

fn plan(name: &str) -> HibernatePlan {
    serde_json::from_value(json!({
        "apiVersion": "hibernator.dev/v1alpha1",
        "kind": "HibernatePlan",
        "metadata": {"name": name},
        "spec": {
            "schedule": {"timezone": "Europe/Berlin", "offHours": [{"start": "20:00", "end": "06:00", "daysOfWeek": ["MON"]}]},
            "targets": [{"name": "db", "type": "rds", "connectorRef": {"kind": "CloudProvider", "name": "aws"}, "parameters": {"instanceIds": ["db-1"]}}]
        }
    }))
    .expect("valid HibernatePlan")
}

#[tokio::test]
async fn hibernator_crds_are_served_with_status() {
    let tc = TestCluster::start("plans").await.unwrap();
    for crd in hibernator_core::crd::all() {
        tc.ensure_crd(&crd).await.unwrap();
    }
    let api: Api<HibernatePlan> = Api::default_namespaced(tc.client());
    let created = api
        .create(&PostParams::default(), &plan("p"))
        .await
        .unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    let updated = api
        .patch_status(
            "p",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Active", "observedGeneration": 1}})),
        )
        .await
        .unwrap();
    assert_eq!(updated.status.unwrap().observed_generation, Some(1));
    // A write of the main resource keeps the stored status.
    let mut fetched = api.get("p").await.unwrap();
    fetched.status = None;
    fetched.spec.suspend = true;
    // Custom resources reject unconditional updates.
    let mut unconditional = fetched.clone();
    unconditional.metadata.resource_version = None;
    let err = api
        .replace("p", &PostParams::default(), &unconditional)
        .await
        .unwrap_err();
    assert!(matches!(err, kube::Error::Api(s) if s.code == 422));
    let replaced = api
        .replace("p", &PostParams::default(), &fetched)
        .await
        .unwrap();
    assert_eq!(replaced.metadata.generation, Some(2));
    assert_eq!(replaced.status.unwrap().observed_generation, Some(1));
    tc.cleanup().await.unwrap();
}

#[tokio::test]
async fn crds_created_through_the_api_are_registered() {
    let tc = TestCluster::start("crdapi").await.unwrap();
    let crd = crds::karpenter_nodepool();
    if tc.is_real() {
        tc.ensure_crd(&crd).await.unwrap();
    } else {
        Api::all(tc.client())
            .create(&PostParams::default(), &crd)
            .await
            .unwrap();
    }
    let ar = kube::core::ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("karpenter.sh", "v1", "NodePool"),
        "nodepools",
    );
    let api: Api<DynamicObject> = Api::all_with(tc.client(), &ar);
    let name = tc.unique_name("pool");
    tc.track_cluster_scoped(&ar, &name);
    let obj: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "karpenter.sh/v1", "kind": "NodePool",
        "metadata": {"name": name},
        "spec": {"limits": {"cpu": "100"}, "template": {"spec": {"nodeClassRef": {"name": "x"}}}}
    }))
    .unwrap();
    api.create(&PostParams::default(), &obj).await.unwrap();
    let got = api.get(&name).await.unwrap();
    assert_eq!(got.data["spec"]["limits"]["cpu"], "100");
    tc.cleanup().await.unwrap();
}
