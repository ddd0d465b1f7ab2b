//! `ConfigMapRestoreStore` on the API server.

use std::collections::BTreeMap;
use std::sync::Arc;

use hibernator_core::restore::{RestoreRecord, RestoreStore, StoreError, update_record};
use hibernator_core::types::HibernatePlan;
use hibernator_kube::restore_store::{CONFIG_MAP_LIMIT_BYTES, ConfigMapRestoreStore};
use hibernator_testkit::kube::TestCluster;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, ObjectMeta, PostParams};
use serde_json::json;

use super::cluster;

/// Creates plan `p1` and returns a reference to it: a real owner (a real
/// cluster's garbage collector deletes objects whose owner does not exist).
async fn owner(cluster: &TestCluster) -> OwnerReference {
    let plan: HibernatePlan = serde_json::from_value(json!({
        "apiVersion": "hibernator.dev/v1alpha1", "kind": "HibernatePlan",
        "metadata": {"name": "p1"},
        "spec": {
            "schedule": {"timezone": "UTC", "offHours": [
                {"start": "20:00", "end": "06:00", "daysOfWeek": ["MON", "TUE", "WED", "THU", "FRI"]},
            ]},
            "execution": {"strategy": {"type": "Parallel"}},
            "targets": [
                {"name": "t", "type": "ec2", "connectorRef": {"kind": "CloudProvider", "name": "aws"},
                 "parameters": {"selector": {"tags": {"app": "t"}}}},
            ],
        },
    }))
    .unwrap();
    let plan = Api::<HibernatePlan>::namespaced(cluster.client(), cluster.namespace())
        .create(&PostParams::default(), &plan)
        .await
        .unwrap();
    OwnerReference {
        api_version: "hibernator.dev/v1alpha1".into(),
        kind: "HibernatePlan".into(),
        name: "p1".into(),
        uid: plan.metadata.uid.unwrap(),
        controller: Some(false),
        block_owner_deletion: Some(false),
    }
}

#[tokio::test]
async fn concurrent_writers_lose_nothing() {
    let cluster = cluster("store-conc").await;
    let owner = owner(&cluster).await;
    let store = Arc::new(
        ConfigMapRestoreStore::new(cluster.client(), cluster.namespace(), "p1")
            .with_owner(owner.clone()),
    );
    let mut tasks = Vec::new();
    // 16 targets written at once, and 12 writers of one target adding one
    // entry each.
    for i in 0..16 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            update_record(store.as_ref(), &format!("t{i}"), "ec2", |r| {
                r.merge_shutdown(
                    "c1",
                    [(format!("instance/i-{i}"), json!({"state": "running"}))],
                );
            })
            .await
            .unwrap();
        }));
    }
    for i in 0..12 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            update_record(store.as_ref(), "shared", "ec2", |r| {
                r.merge_shutdown("c1", [(format!("instance/s-{i}"), json!(i))]);
            })
            .await
            .unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let all = store.load_all().await.unwrap();
    let targets: Vec<&str> = all.iter().map(|v| v.value.target.as_str()).collect();
    assert_eq!(targets.len(), 17, "{targets:?}");
    assert!(
        targets.windows(2).all(|w| w[0] < w[1]),
        "sorted: {targets:?}"
    );
    for i in 0..16 {
        let r = store.load(&format!("t{i}")).await.unwrap().unwrap().value;
        assert!(r.entry(&format!("instance/i-{i}")).is_some());
    }
    let shared = store.load("shared").await.unwrap().unwrap().value;
    assert_eq!(shared.entries.len(), 12, "{:?}", shared.entries.keys());

    let cm = Api::<ConfigMap>::namespaced(cluster.client(), cluster.namespace())
        .get(&hibernator_core::wellknown::restore_config_map_name("p1"))
        .await
        .unwrap();
    let refs = cm.metadata.owner_references.unwrap();
    assert_eq!(refs.len(), 1);
    assert_eq!(refs[0].uid, owner.uid);
    assert_eq!(cm.data.unwrap().len(), 17);
    assert!(store.data_bytes().await.unwrap() > 0);
}

#[tokio::test]
async fn stale_versions_conflict_and_deletes_work() {
    let cluster = cluster("store-ver").await;
    let store = ConfigMapRestoreStore::new(cluster.client(), cluster.namespace(), "p2");
    let mut r = RestoreRecord::new("a", "ec2");
    let v1 = store.save(&r, None).await.unwrap();
    // A second create of the same target conflicts.
    let e = store.save(&r, None).await.unwrap_err();
    assert!(matches!(e, StoreError::Conflict { .. }), "{e}");
    // Another target's write does not invalidate a's version.
    store
        .save(&RestoreRecord::new("b", "ec2"), None)
        .await
        .unwrap();
    r.merge_shutdown("c1", [("x".to_string(), json!(1))]);
    let v2 = store.save(&r, Some(&v1)).await.unwrap();
    // But a's own change does.
    let e = store.save(&r, Some(&v1)).await.unwrap_err();
    assert!(matches!(e, StoreError::Conflict { .. }), "{e}");
    assert_eq!(store.load("a").await.unwrap().unwrap().version, v2);

    assert!(store.delete("a").await.unwrap());
    assert!(!store.delete("a").await.unwrap());
    assert!(store.load("a").await.unwrap().is_none());
    assert!(store.load("b").await.unwrap().is_some());
    assert!(store.delete_all().await.unwrap());
    assert!(!store.delete_all().await.unwrap());
    assert!(store.load_all().await.unwrap().is_empty());
}

#[tokio::test]
async fn too_large_data_is_a_clear_permanent_error() {
    let cluster = cluster("store-size").await;
    let store = ConfigMapRestoreStore::new(cluster.client(), cluster.namespace(), "big");
    let blob = "x".repeat(CONFIG_MAP_LIMIT_BYTES / 2);
    update_record(&store, "first", "ec2", |r| {
        r.merge_shutdown("c1", [("k".to_string(), json!(blob))]);
    })
    .await
    .unwrap();
    let err = update_record(&store, "second", "ec2", |r| {
        r.merge_shutdown("c1", [("k".to_string(), json!(blob))]);
    })
    .await
    .unwrap_err();
    assert!(!err.is_transient(), "{err}");
    assert!(matches!(err, StoreError::Backend { .. }), "{err}");
    let text = format!("{err} {}", std::error::Error::source(&err).unwrap());
    assert!(text.contains("big"), "{text}");
    assert!(text.contains("\"second\""), "{text}");
    assert!(text.contains("1048576"), "{text}");
    // Nothing of the failed write landed.
    assert!(store.load("second").await.unwrap().is_none());
    assert!(store.load("first").await.unwrap().is_some());
}

#[tokio::test]
async fn corrupt_data_is_reported_and_left_untouched() {
    let cluster = cluster("store-corrupt").await;
    let api = Api::<ConfigMap>::namespaced(cluster.client(), cluster.namespace());
    let name = hibernator_core::wellknown::restore_config_map_name("p3");
    let cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(
            "bad".to_string(),
            "{not json".to_string(),
        )])),
        ..Default::default()
    };
    api.create(&PostParams::default(), &cm).await.unwrap();
    let store = ConfigMapRestoreStore::new(cluster.client(), cluster.namespace(), "p3");
    let e = store.load("bad").await.unwrap_err();
    assert!(matches!(e, StoreError::Corrupt { .. }), "{e}");
    assert!(e.to_string().contains(&name), "{e}");
    let e = update_record(&store, "bad", "ec2", |_| {})
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Corrupt { .. }), "{e}");
    let e = store.load_all().await.unwrap_err();
    assert!(matches!(e, StoreError::Corrupt { .. }), "{e}");
    // Other targets can still be written; the corrupt value stays as it was.
    update_record(&store, "good", "ec2", |_| {}).await.unwrap();
    let data = api.get(&name).await.unwrap().data.unwrap();
    assert_eq!(data["bad"], "{not json");
    assert!(data.contains_key("good"));
}
