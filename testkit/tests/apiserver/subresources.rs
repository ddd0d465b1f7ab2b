//! Status and scale subresources.

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v1::Scale;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

use hibernator_testkit::kube::TestCluster;

use crate::common::deployment;

#[tokio::test]
async fn status_writes_change_only_status() {
    let tc = TestCluster::start("status").await.unwrap();
    let api: Api<Deployment> = Api::default_namespaced(tc.client());
    let mut d = deployment("web", 2);
    d.status = Some(serde_json::from_value(json!({"replicas": 99})).unwrap());
    let created = api.create(&PostParams::default(), &d).await.unwrap();
    // Status in a create body is dropped.
    assert!(created.status.as_ref().and_then(|s| s.replicas).is_none());
    let patched = api
        .patch_status(
            "web",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"spec": {"replicas": 7}, "status": {"replicas": 2, "readyReplicas": 2}}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(patched.spec.as_ref().unwrap().replicas, Some(2));
    assert_eq!(patched.status.as_ref().unwrap().ready_replicas, Some(2));
    // Status in a main-resource patch is ignored.
    let main = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"readyReplicas": 0}})),
        )
        .await
        .unwrap();
    assert_eq!(main.status.unwrap().ready_replicas, Some(2));
    tc.cleanup().await.unwrap();
}

#[tokio::test]
async fn scale_touches_only_replicas() {
    let tc = TestCluster::start("scale").await.unwrap();
    let api: Api<Deployment> = Api::default_namespaced(tc.client());
    api.create(&PostParams::default(), &deployment("web", 3))
        .await
        .unwrap();
    api.patch_status(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"replicas": 3}})),
    )
    .await
    .unwrap();
    let before = api.get("web").await.unwrap();
    let scale = api.get_scale("web").await.unwrap();
    // On a real cluster the Deployment controller owns status (it counts
    // the pods it made): status values are asserted in-process only.
    let in_process = tc.api_server().is_some();
    assert_eq!(scale.spec.as_ref().unwrap().replicas, Some(3));
    if in_process {
        assert_eq!(scale.status.as_ref().unwrap().replicas, 3);
    }
    assert_eq!(
        scale.status.as_ref().unwrap().selector.as_deref(),
        Some("app=web")
    );

    let patched: Scale = api
        .patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 0}})),
        )
        .await
        .unwrap();
    // Scale.spec.replicas is `omitempty`: a real server leaves out the 0.
    assert_eq!(patched.spec.unwrap().replicas, None);
    let after = api.get("web").await.unwrap();
    assert_eq!(after.spec.as_ref().unwrap().replicas, Some(0));
    let mut expected = before.clone();
    expected.spec.as_mut().unwrap().replicas = Some(0);
    expected.metadata.resource_version = after.metadata.resource_version.clone();
    expected.metadata.generation = after.metadata.generation;
    expected.metadata.managed_fields = after.metadata.managed_fields.clone();
    assert_eq!(after.spec, expected.spec);
    assert_eq!(after.metadata.labels, before.metadata.labels);
    assert_eq!(after.metadata.annotations, before.metadata.annotations);
    if in_process {
        // The scale write left the status alone.
        assert_eq!(after.status.as_ref().unwrap().replicas, Some(3));
    }

    // Replace the Scale with a stale resourceVersion: Conflict.
    let mut stale = scale.clone();
    stale.spec.as_mut().unwrap().replicas = Some(4);
    let err = api
        .replace_scale("web", &PostParams::default(), &stale)
        .await
        .unwrap_err();
    assert!(matches!(err, kube::Error::Api(s) if s.code == 409));
    tc.cleanup().await.unwrap();
}

#[tokio::test]
async fn statefulset_scale_defaults_and_missing_objects() {
    let tc = TestCluster::start("sts").await.unwrap();
    let api: Api<StatefulSet> = Api::default_namespaced(tc.client());
    let sts: StatefulSet = serde_json::from_value(json!({
        "metadata": {"name": "db"},
        "spec": {
            "serviceName": "db",
            "selector": {"matchLabels": {"app": "db"}},
            "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "db", "image": "postgres:17"}]}}
        }
    }))
    .unwrap();
    api.create(&PostParams::default(), &sts).await.unwrap();
    assert_eq!(
        api.get_scale("db").await.unwrap().spec.unwrap().replicas,
        Some(1)
    );
    let err = api.get_scale("absent").await.unwrap_err();
    assert!(matches!(err, kube::Error::Api(s) if s.code == 404));
    tc.cleanup().await.unwrap();
}

#[tokio::test]
async fn crd_scale_subresource_through_dynamic_objects() {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::api::{DynamicObject, GroupVersionKind};
    use kube::core::ApiResource;

    let tc = TestCluster::start("crdscale").await.unwrap();
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "workers.example.hibernator.dev"},
        "spec": {
            "group": "example.hibernator.dev", "scope": "Namespaced",
            "names": {"kind": "Worker", "plural": "workers", "singular": "worker", "listKind": "WorkerList"},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
                "subresources": {
                    "status": {},
                    "scale": {"specReplicasPath": ".spec.size", "statusReplicasPath": ".status.size", "labelSelectorPath": ".status.selector"}
                }
            }]
        }
    }))
    .unwrap();
    tc.ensure_crd(&crd).await.unwrap();
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("example.hibernator.dev", "v1", "Worker"),
        "workers",
    );
    let api: Api<DynamicObject> = Api::namespaced_with(tc.client(), tc.namespace(), &ar);
    let obj: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "example.hibernator.dev/v1", "kind": "Worker",
        "metadata": {"name": "w", "annotations": {"keep": "me"}},
        "spec": {"size": 4, "image": "worker:1"}
    }))
    .unwrap();
    api.create(&PostParams::default(), &obj).await.unwrap();
    api.patch_status(
        "w",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"size": 4, "selector": "app=w"}})),
    )
    .await
    .unwrap();
    let scale = api.get_scale("w").await.unwrap();
    assert_eq!(scale.spec.unwrap().replicas, Some(4));
    assert_eq!(
        scale.status.as_ref().unwrap().selector.as_deref(),
        Some("app=w")
    );
    api.patch_scale(
        "w",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 0}})),
    )
    .await
    .unwrap();
    let after = api.get("w").await.unwrap();
    assert_eq!(after.data["spec"], json!({"size": 0, "image": "worker:1"}));
    assert_eq!(after.data["status"]["size"], 4);
    assert_eq!(after.metadata.annotations.unwrap()["keep"], "me");
    tc.cleanup().await.unwrap();
}
