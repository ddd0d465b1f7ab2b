//! Garbage collection by owner references, as a real cluster's collector
//! does it (polled for: it runs in the background there too).

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;

use hibernator_testkit::kube::TestCluster;

use crate::common::eventually;

fn reference(cm: &ConfigMap) -> OwnerReference {
    OwnerReference {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        name: cm.metadata.name.clone().expect("named"),
        uid: cm.metadata.uid.clone().expect("has a uid"),
        ..OwnerReference::default()
    }
}

/// A reference to a ConfigMap that never existed.
fn ghost() -> OwnerReference {
    OwnerReference {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        name: "ghost".into(),
        uid: "00000000-0000-4000-8000-00000000dead".into(),
        ..OwnerReference::default()
    }
}

async fn create(api: &Api<ConfigMap>, name: &str, owners: Vec<OwnerReference>) -> ConfigMap {
    let mut cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": name}, "data": {"k": "v"}}))
            .expect("valid ConfigMap");
    if !owners.is_empty() {
        cm.metadata.owner_references = Some(owners);
    }
    api.create(&PostParams::default(), &cm)
        .await
        .expect("create ConfigMap")
}

async fn gone(api: &Api<ConfigMap>, name: &str) {
    eventually(&format!("{name} collected"), || {
        let api = api.clone();
        let name = name.to_string();
        async move {
            api.get_opt(&name)
                .await
                .expect("get")
                .is_none()
                .then_some(())
        }
    })
    .await;
}

/// Waits until `name`'s owner references are `want` (by name).
async fn owners_become(api: &Api<ConfigMap>, name: &str, want: &[&str]) {
    let want: Vec<String> = want.iter().map(|s| (*s).to_string()).collect();
    eventually(&format!("owners of {name} = {want:?}"), || {
        let (api, name, want) = (api.clone(), name.to_string(), want.clone());
        async move {
            let cm = api.get(&name).await.expect("get");
            let got: Vec<String> = cm
                .metadata
                .owner_references
                .unwrap_or_default()
                .into_iter()
                .map(|r| r.name)
                .collect();
            (got == want).then_some(())
        }
    })
    .await;
}

async fn exists(api: &Api<ConfigMap>, name: &str) -> bool {
    api.get_opt(name).await.expect("get").is_some()
}

#[tokio::test]
async fn objects_whose_owners_are_gone_are_collected() {
    let tc = TestCluster::start("gc").await.unwrap();
    let api: Api<ConfigMap> = Api::default_namespaced(tc.client());
    let owner = create(&api, "owner", vec![]).await;
    create(&api, "owned", vec![reference(&owner)]).await;
    create(&api, "orphan", vec![ghost()]).await;
    create(&api, "half", vec![reference(&owner), ghost()]).await;
    create(&api, "unowned", vec![]).await;
    // An owner of the same name but another uid is not the owner.
    let before = create(&api, "again", vec![]).await;
    api.delete("again", &DeleteParams::default()).await.unwrap();
    create(&api, "again", vec![]).await;
    create(&api, "stale", vec![reference(&before)]).await;

    gone(&api, "orphan").await;
    gone(&api, "stale").await;
    // An object with an owner left only loses the reference to the other.
    owners_become(&api, "half", &["owner"]).await;
    assert!(exists(&api, "owned").await && exists(&api, "unowned").await);

    // Deleting the owner (background) takes its dependents.
    api.delete("owner", &DeleteParams::background())
        .await
        .unwrap();
    gone(&api, "owned").await;
    gone(&api, "half").await;
    assert!(exists(&api, "unowned").await && exists(&api, "again").await);
    tc.cleanup().await.unwrap();
}

#[tokio::test]
async fn orphan_and_foreground_propagation() {
    let tc = TestCluster::start("gcprop").await.unwrap();
    let api: Api<ConfigMap> = Api::default_namespaced(tc.client());

    let parent = create(&api, "parent", vec![]).await;
    create(&api, "child", vec![reference(&parent)]).await;
    api.delete("parent", &DeleteParams::orphan()).await.unwrap();
    gone(&api, "parent").await;
    owners_become(&api, "child", &[]).await;
    assert!(exists(&api, "child").await);

    // Foreground: the owner waits for its dependents, then goes too.
    let root = create(&api, "root", vec![]).await;
    let mid = create(&api, "mid", vec![reference(&root)]).await;
    create(&api, "leaf", vec![reference(&mid)]).await;
    api.delete("root", &DeleteParams::foreground())
        .await
        .unwrap();
    gone(&api, "leaf").await;
    gone(&api, "mid").await;
    gone(&api, "root").await;
    assert!(exists(&api, "child").await);
    tc.cleanup().await.unwrap();
}
