//! get, list, create, replace, patch, delete semantics.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::core::Status;
use serde_json::json;

use hibernator_testkit::kube::TestCluster;

use crate::common::deployment;

fn api_err(e: kube::Error) -> Status {
    match e {
        kube::Error::Api(s) => *s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn create_get_conflicts_and_already_exists() {
    let tc = TestCluster::start("crud").await.unwrap();
    let api: Api<Deployment> = Api::default_namespaced(tc.client());
    let created = api
        .create(&PostParams::default(), &deployment("web", 3))
        .await
        .unwrap();
    let meta = &created.metadata;
    assert_eq!(meta.namespace.as_deref(), Some(tc.namespace()));
    assert!(meta.uid.is_some() && meta.creation_timestamp.is_some());
    assert_eq!(meta.generation, Some(1));
    let rv1 = meta.resource_version.clone().unwrap();

    let again = api
        .create(&PostParams::default(), &deployment("web", 3))
        .await
        .unwrap_err();
    let e = api_err(again);
    assert_eq!((e.code, e.reason.as_str()), (409, "AlreadyExists"));

    let mut fetched = api.get("web").await.unwrap();
    assert_eq!(fetched.spec.as_ref().unwrap().replicas, Some(3));
    fetched.spec.as_mut().unwrap().replicas = Some(5);
    let replaced = api
        .replace("web", &PostParams::default(), &fetched)
        .await
        .unwrap();
    assert_ne!(
        replaced.metadata.resource_version.as_deref(),
        Some(rv1.as_str())
    );
    assert_eq!(replaced.metadata.generation, Some(2));

    // The stale copy (rv1) is rejected with a Conflict Status.
    let stale = api
        .replace("web", &PostParams::default(), &fetched)
        .await
        .unwrap_err();
    let e = api_err(stale);
    assert_eq!((e.code, e.reason.as_str()), (409, "Conflict"));

    let missing = api_err(api.get("nope").await.unwrap_err());
    assert_eq!((missing.code, missing.reason.as_str()), (404, "NotFound"));
    tc.cleanup().await.unwrap();
}

#[tokio::test]
async fn generation_tracks_spec_only() {
    let tc = TestCluster::start("gen").await.unwrap();
    let api: Api<Deployment> = Api::default_namespaced(tc.client());
    api.create(&PostParams::default(), &deployment("web", 1))
        .await
        .unwrap();
    let labelled = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})),
        )
        .await
        .unwrap();
    assert_eq!(labelled.metadata.generation, Some(1));
    let status = api
        .patch_status(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"replicas": 1}})),
        )
        .await
        .unwrap();
    assert_eq!(status.metadata.generation, Some(1));
    let spec = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"paused": true}})),
        )
        .await
        .unwrap();
    assert_eq!(spec.metadata.generation, Some(2));
    assert_eq!(
        spec.metadata.labels.unwrap().get("x").map(String::as_str),
        Some("y")
    );
    tc.cleanup().await.unwrap();
}

#[tokio::test]
async fn generate_name_and_label_selectors() {
    let tc = TestCluster::start("list").await.unwrap();
    let api: Api<ConfigMap> = Api::default_namespaced(tc.client());
    // A namespace is never empty (`kube-root-ca.crt`): every selector also
    // names the label all of this test's objects carry.
    for (i, env) in ["dev", "dev", "prod", "test"].iter().enumerate() {
        let cm: ConfigMap = serde_json::from_value(json!({
            "metadata": {"generateName": "cm-", "labels": {"suite": "list", "env": env, "idx": i.to_string()}},
            "data": {"k": "v"}
        }))
        .unwrap();
        let created = api.create(&PostParams::default(), &cm).await.unwrap();
        let name = created.metadata.name.unwrap();
        assert!(name.starts_with("cm-") && name.len() == 8, "{name}");
    }
    let count = |selector: &str| {
        let api = api.clone();
        let lp = ListParams::default().labels(&format!("suite=list,{selector}"));
        async move { api.list(&lp).await.unwrap().items.len() }
    };
    assert_eq!(count("env=dev").await, 2);
    assert_eq!(count("env!=dev").await, 2);
    assert_eq!(count("env in (prod,test)").await, 2);
    assert_eq!(count("env notin (prod),idx").await, 3);
    assert_eq!(count("!idx").await, 0);
    // Without the suite label the namespace's own objects match as well.
    let unlabelled = api
        .list(&ListParams::default().labels("!suite"))
        .await
        .unwrap();
    assert!(
        unlabelled.items.iter().all(|cm| !cm
            .metadata
            .name
            .as_deref()
            .unwrap_or("")
            .starts_with("cm-")),
        "{:?}",
        unlabelled.items
    );
    tc.cleanup().await.unwrap();
}

#[tokio::test]
async fn merge_patch_preconditions() {
    let tc = TestCluster::start("patch").await.unwrap();
    let api: Api<ConfigMap> = Api::default_namespaced(tc.client());
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}}))
            .unwrap();
    let created = api.create(&PostParams::default(), &cm).await.unwrap();
    let rv = created.metadata.resource_version.unwrap();
    let patched = api
        .patch(
            "c",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"resourceVersion": rv}, "data": {"a": null, "c": "3"}}),
            ),
        )
        .await
        .unwrap();
    let data = patched.data.unwrap();
    assert_eq!(data.get("a"), None);
    assert_eq!(data.get("c").map(String::as_str), Some("3"));
    // The same precondition is now stale.
    let stale = api
        .patch(
            "c",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"resourceVersion": rv}, "data": {"d": "4"}})),
        )
        .await
        .unwrap_err();
    assert_eq!(api_err(stale).code, 409);
    tc.cleanup().await.unwrap();
}

#[tokio::test]
async fn namespace_deletion_removes_its_objects() {
    let tc = TestCluster::start("nsdel").await.unwrap();
    let Some(server) = tc.api_server() else {
        // A real cluster deletes namespaces asynchronously; nothing to assert synchronously.
        return tc.cleanup().await.unwrap();
    };
    let client = tc.client();
    let api: Api<Deployment> = Api::default_namespaced(client.clone());
    api.create(&PostParams::default(), &deployment("web", 1))
        .await
        .unwrap();
    Api::<Namespace>::all(client.clone())
        .delete(tc.namespace(), &DeleteParams::default())
        .await
        .unwrap();
    assert_eq!(api_err(api.get("web").await.unwrap_err()).code, 404);
    // Creating in a missing namespace is NotFound.
    let e = api_err(
        api.create(&PostParams::default(), &deployment("web", 1))
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 404);
    assert!(server.request_count("delete", "namespaces") >= 1);
}

#[tokio::test]
async fn malformed_and_invalid_bodies_are_rejected_with_status() {
    let tc = TestCluster::start("invalid").await.unwrap();
    let client = tc.client();
    let api: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let nameless: ConfigMap = serde_json::from_value(json!({"data": {"a": "1"}})).unwrap();
    let e = api_err(
        api.create(&PostParams::default(), &nameless)
            .await
            .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));

    let path = format!("/api/v1/namespaces/{}/configmaps", tc.namespace());
    let req = axum::http::Request::post(path)
        .header("content-type", "application/json")
        .body(b"{not json".to_vec())
        .unwrap();
    let e = api_err(client.request::<ConfigMap>(req).await.unwrap_err());
    assert_eq!((e.code, e.reason.as_str()), (400, "BadRequest"));

    let e = api_err(
        Api::<ConfigMap>::namespaced(client.clone(), "no-such-ns")
            .get("x")
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 404);
    tc.cleanup().await.unwrap();
}
