//! Field selectors, pagination, JSON patch, apply, finalizers, deletecollection.

use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

use hibernator_testkit::kube::TestCluster;

fn pod(name: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "busybox:1.37"}]}
    }))
    .expect("valid Pod")
}

#[tokio::test]
async fn field_selectors_and_pagination() {
    let tc = TestCluster::start("fields").await.unwrap();
    let api: Api<Pod> = Api::default_namespaced(tc.client());
    for i in 0..5 {
        api.create(&PostParams::default(), &pod(&format!("p{i}")))
            .await
            .unwrap();
    }
    if let Some(_server) = tc.api_server() {
        // Nothing runs pods in-process: set phases through the status subresource.
        for (name, phase) in [("p1", "Running"), ("p3", "Running")] {
            api.patch_status(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {"phase": phase}})),
            )
            .await
            .unwrap();
        }
        let running = api
            .list(&ListParams::default().fields("status.phase=Running"))
            .await
            .unwrap();
        let names: Vec<_> = running
            .items
            .iter()
            .map(|p| p.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(names, vec!["p1", "p3"]);
    }
    let one = api
        .list(&ListParams::default().fields("metadata.name=p2"))
        .await
        .unwrap();
    assert_eq!(one.items.len(), 1);
    let not = api
        .list(&ListParams::default().fields("metadata.name!=p2"))
        .await
        .unwrap();
    assert_eq!(not.items.len(), 4);

    let mut names = Vec::new();
    let mut lp = ListParams::default().limit(2);
    let mut pages = 0;
    loop {
        let page = api.list(&lp).await.unwrap();
        pages += 1;
        assert!(page.items.len() <= 2);
        names.extend(page.items.into_iter().map(|p| p.metadata.name.unwrap()));
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => lp = lp.continue_token(&token),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(names, vec!["p0", "p1", "p2", "p3", "p4"]);
    tc.cleanup().await.unwrap();
}

#[tokio::test]
async fn json_patch_and_server_side_apply() {
    let tc = TestCluster::start("jsonpatch").await.unwrap();
    let api: Api<ConfigMap> = Api::default_namespaced(tc.client());
    let applied = api
        .patch(
            "cfg",
            &PatchParams::apply("testkit-test"),
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"a": "1"}})),
        )
        .await
        .unwrap();
    assert_eq!(applied.data.as_ref().unwrap()["a"], "1");
    let applied = api
        .patch(
            "cfg",
            &PatchParams::apply("testkit-test"),
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"a": "1", "b": "2"}})),
        )
        .await
        .unwrap();
    assert_eq!(applied.data.as_ref().unwrap().len(), 2);

    let ops: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/data/a", "value": "1"},
        {"op": "replace", "path": "/data/a", "value": "10"},
        {"op": "remove", "path": "/data/b"}
    ]))
    .unwrap();
    let patched = api
        .patch("cfg", &PatchParams::default(), &Patch::<()>::Json(ops))
        .await
        .unwrap();
    assert_eq!(
        patched.data.unwrap(),
        [("a".to_string(), "10".to_string())].into()
    );
    // A failing test op rejects the whole patch.
    let failing: json_patch::Patch =
        serde_json::from_value(json!([{"op": "test", "path": "/data/a", "value": "1"}, {"op": "remove", "path": "/data/a"}]))
            .unwrap();
    let err = api
        .patch("cfg", &PatchParams::default(), &Patch::<()>::Json(failing))
        .await
        .unwrap_err();
    assert!(matches!(err, kube::Error::Api(s) if s.code == 422));
    assert_eq!(api.get("cfg").await.unwrap().data.unwrap()["a"], "10");
    tc.cleanup().await.unwrap();
}

#[tokio::test]
async fn finalizers_delay_deletion_until_removed() {
    let tc = TestCluster::start("finalizers").await.unwrap();
    let api: Api<ConfigMap> = Api::default_namespaced(tc.client());
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "held", "finalizers": ["hibernator.dev/restore", "hibernator.dev/other"]}
    }))
    .unwrap();
    api.create(&PostParams::default(), &cm).await.unwrap();
    let deleted = api
        .delete("held", &DeleteParams::foreground())
        .await
        .unwrap();
    let marked = deleted
        .left()
        .expect("the object is returned while finalizers remain");
    assert!(marked.metadata.deletion_timestamp.is_some());
    let still = api.get("held").await.unwrap();
    assert!(still.metadata.deletion_timestamp.is_some());

    api.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": ["hibernator.dev/other"]}})),
    )
    .await
    .unwrap();
    assert!(api.get("held").await.is_ok());
    let mut last = api.get("held").await.unwrap();
    last.metadata.finalizers = None;
    api.replace("held", &PostParams::default(), &last)
        .await
        .unwrap();
    let gone = api.get("held").await.unwrap_err();
    assert!(matches!(gone, kube::Error::Api(s) if s.code == 404));
    tc.cleanup().await.unwrap();
}

#[tokio::test]
async fn delete_collection_with_a_selector() {
    let tc = TestCluster::start("delcol").await.unwrap();
    let api: Api<ConfigMap> = Api::default_namespaced(tc.client());
    for (name, env) in [("a", "dev"), ("b", "dev"), ("c", "prod")] {
        let cm: ConfigMap =
            serde_json::from_value(json!({"metadata": {"name": name, "labels": {"env": env}}}))
                .unwrap();
        api.create(&PostParams::default(), &cm).await.unwrap();
    }
    api.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("env=dev"),
    )
    .await
    .unwrap();
    let left: Vec<_> = api
        .list(&ListParams::default().labels("env"))
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|c| c.metadata.name.unwrap())
        .collect();
    assert_eq!(left, vec!["c"]);
    tc.cleanup().await.unwrap();
}
