//! Argo CD Applications in a test cluster: the CRD (schema-less, as the
//! testkit's other third-party CRDs) and Applications in known states.

use hibernator_example_custom_operator::applications;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, PostParams};
use serde_json::{Value, json};

/// `applications.argoproj.io` with a status subresource.
pub fn application_crd() -> CustomResourceDefinition {
    serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "applications.argoproj.io"},
        "spec": {"group": "argoproj.io", "scope": "Namespaced",
            "names": {"kind": "Application", "plural": "applications", "singular": "application",
                "listKind": "ApplicationList", "shortNames": ["app", "apps"]},
            "versions": [{"name": "v1alpha1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object",
                    "x-kubernetes-preserve-unknown-fields": true}}}]},
    }))
    .unwrap()
}

/// An Application `name` with labels and a `syncPolicy` (`Value::Null`:
/// none).
pub fn application(name: &str, labels: Value, sync_policy: Value) -> DynamicObject {
    let mut spec = json!({
        "project": "default",
        "source": {"repoURL": "https://git.example.com/shop.git", "path": name, "targetRevision": "main"},
        "destination": {"server": "https://kubernetes.default.svc", "namespace": "shop"},
    });
    if !sync_policy.is_null() {
        spec["syncPolicy"] = sync_policy;
    }
    serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": name, "labels": labels},
        "spec": spec,
    }))
    .unwrap()
}

/// The Applications API of `namespace`.
pub fn api(client: &kube::Client, namespace: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), namespace, &applications())
}

/// Creates `app`, replacing an Application of the same name.
pub async fn put(api: &Api<DynamicObject>, app: &DynamicObject) {
    let name = app.metadata.name.clone().unwrap();
    let _ = api.delete(&name, &DeleteParams::default()).await;
    api.create(&PostParams::default(), app).await.unwrap();
}

/// `spec.syncPolicy` of every Application, by name (`null`: none).
pub async fn sync_policies(api: &Api<DynamicObject>) -> Value {
    let mut map = serde_json::Map::new();
    for app in api.list(&Default::default()).await.unwrap().items {
        let name = app.metadata.name.clone().unwrap_or_default();
        map.insert(name, app.data["spec"]["syncPolicy"].clone());
    }
    Value::Object(map)
}
