//! Workloads and snapshots for the `workloadscaler` tests: valid objects
//! (they also apply on a real cluster) and state snapshots to compare.

#![allow(clippy::unwrap_used)] // test helpers fail loudly

use std::collections::BTreeMap;

use hibernator_executors::kubernetes::WorkloadScalerExecutor;
use hibernator_testkit::kube::TestCluster;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use crate::support::POLL;

pub async fn cluster(prefix: &str) -> TestCluster {
    TestCluster::start(prefix).await.expect("test cluster")
}

pub fn executor(client: Client) -> WorkloadScalerExecutor {
    WorkloadScalerExecutor::new(client).with_poll_interval(POLL)
}

pub fn pod_template(app: &str) -> Value {
    json!({
        "metadata": {"labels": {"app": app}},
        "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.9"}]}
    })
}

pub async fn deployment(
    client: &Client,
    ns: &str,
    name: &str,
    replicas: i32,
    labels: Value,
    annotations: Value,
) {
    let object: Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": labels, "annotations": annotations},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": pod_template(name)}
    }))
    .unwrap();
    Api::<Deployment>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &object)
        .await
        .unwrap();
}

pub async fn statefulset(client: &Client, ns: &str, name: &str, replicas: i32) {
    let object: StatefulSet = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": name, "labels": {"tier": "web"}},
        "spec": {"replicas": replicas, "serviceName": name,
                 "selector": {"matchLabels": {"app": name}}, "template": pod_template(name)}
    }))
    .unwrap();
    Api::<StatefulSet>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &object)
        .await
        .unwrap();
}

pub async fn cronjob(client: &Client, ns: &str, name: &str, suspend: Option<bool>) {
    let mut spec = json!({
        "schedule": "*/5 * * * *",
        "jobTemplate": {"spec": {"template": {"spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.9"}]}}}}
    });
    if let Some(s) = suspend {
        spec["suspend"] = json!(s);
    }
    let object: CronJob = serde_json::from_value(json!({
        "apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": name, "labels": {"tier": "web"}}, "spec": spec
    }))
    .unwrap();
    Api::<CronJob>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &object)
        .await
        .unwrap();
}

/// `spec` and annotations of every object of `resource` in `ns`, by name.
/// Annotations a real cluster's controllers write at their own pace
/// (`deployment.kubernetes.io/revision`) are left out.
pub async fn snapshot(
    client: &Client,
    ns: &str,
    resource: &ApiResource,
) -> BTreeMap<String, Value> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, resource);
    api.list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|o| {
            let mut annotations = o.annotations().clone();
            annotations.retain(|k, _| !k.starts_with("deployment.kubernetes.io/"));
            (
                o.name_any(),
                json!({"spec": o.data["spec"], "annotations": annotations}),
            )
        })
        .collect()
}

pub fn ar(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

pub fn deployments() -> ApiResource {
    ar("apps", "v1", "Deployment", "deployments")
}

pub async fn replicas(client: &Client, ns: &str, name: &str) -> i32 {
    Api::<Deployment>::namespaced(client.clone(), ns)
        .get(name)
        .await
        .unwrap()
        .spec
        .unwrap()
        .replicas
        .unwrap_or(1)
}

pub fn widget_crd(group: &str, with_scale: bool) -> CustomResourceDefinition {
    let scale = if with_scale {
        json!({"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"})
    } else {
        Value::Null
    };
    serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("widgets.{group}")},
        "spec": {"group": group, "scope": "Namespaced",
            "names": {"kind": "Widget", "plural": "widgets", "singular": "widget", "listKind": "WidgetList"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
                "subresources": {"status": {}, "scale": scale}}]}
    }))
    .unwrap()
}

pub async fn widget(client: &Client, ns: &str, group: &str, name: &str, replicas: i64) {
    let resource = ar(group, "v1", "Widget", "widgets");
    let object: DynamicObject = serde_json::from_value(json!({
        "apiVersion": format!("{group}/v1"), "kind": "Widget",
        "metadata": {"name": name}, "spec": {"replicas": replicas, "color": "blue"}
    }))
    .unwrap();
    Api::<DynamicObject>::namespaced_with(client.clone(), ns, &resource)
        .create(&PostParams::default(), &object)
        .await
        .unwrap();
}
