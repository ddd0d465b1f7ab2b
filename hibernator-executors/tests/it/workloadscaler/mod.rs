//! The `workloadscaler` executor against the testkit API server (or a real
//! cluster with `HIBERNATOR_TEST_KUBECONFIG`): exact restore, idempotency,
//! exclusions, CronJobs, KEDA, custom scale resources, faults, readiness and
//! the core conformance kit.

#![allow(clippy::unwrap_used)] // test helpers fail loudly

use std::time::Duration;

use async_trait::async_trait;
use hibernator_core::executor::testing::{ConformanceFixture, run_conformance};
use hibernator_core::executor::{ExecutorError, category, run_shutdown, run_wakeup, typed};
use hibernator_core::restore::{MemoryRestoreStore, RestoreStore};
use hibernator_core::types::Operation;
use hibernator_testkit::kube::crds::keda_scaledobject;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use crate::support::{TARGET, ctx, fast_retry, record};

mod fixtures;

use fixtures::*;

#[tokio::test]
async fn shutdown_then_wakeup_restores_exactly_and_is_idempotent() {
    let tc = cluster("ws-exact").await;
    let (client, ns) = (tc.client(), tc.namespace().to_string());
    deployment(&client, &ns, "web", 3, json!({"tier": "web"}), json!({})).await;
    deployment(
        &client,
        &ns,
        "api",
        2,
        json!({"tier": "web"}),
        json!({"team": "a"}),
    )
    .await;
    deployment(&client, &ns, "idle", 0, json!({"tier": "web"}), json!({})).await;
    deployment(
        &client,
        &ns,
        "pinned",
        2,
        json!({"tier": "web"}),
        json!({"hibernator.dev/exclude": "true"}),
    )
    .await;
    deployment(&client, &ns, "db", 4, json!({"tier": "db"}), json!({})).await;
    statefulset(&client, &ns, "cache", 1).await;
    cronjob(&client, &ns, "report", None).await;
    cronjob(&client, &ns, "cleanup", Some(false)).await;
    cronjob(&client, &ns, "paused", Some(true)).await;
    let kinds = [
        deployments(),
        ar("apps", "v1", "StatefulSet", "statefulsets"),
        ar("batch", "v1", "CronJob", "cronjobs"),
    ];
    let mut before = Vec::new();
    for kind in &kinds {
        before.push(snapshot(&client, &ns, kind).await);
    }

    let executor = typed(executor(client.clone()));
    let params = json!({"awaitCompletion": {"enabled": false}, "includedGroups": ["deployments", "statefulsets", "cronjobs"],
        "namespace": {"literals": [ns, "does-not-exist-hib"]},
        "workloadSelector": {"matchLabels": {"tier": "web"}}
    });
    let store = MemoryRestoreStore::new();
    let report = run_shutdown(
        executor.as_ref(),
        &ctx(Operation::Shutdown, "c1"),
        &params,
        &store,
        &fast_retry(0),
    )
    .await
    .unwrap();
    let keys =
        |names: &[&str]| -> Vec<String> { names.iter().map(|n| n.replace("NS", &ns)).collect() };
    assert_eq!(
        report.recorded,
        keys(&[
            "apps/Deployment/NS/api",
            "apps/Deployment/NS/web",
            "apps/StatefulSet/NS/cache",
            "batch/CronJob/NS/cleanup",
            "batch/CronJob/NS/report",
        ])
    );
    let rec = record(&store).await;
    assert_eq!(
        rec.entries[&format!("apps/Deployment/{ns}/web")].state["awake"],
        json!({"mode": "scale", "replicas": 3})
    );
    // `report` was created without `spec.suspend`; a real server defaults
    // it to false. What is recorded is what the server had.
    let report_suspend = before[2]["report"]["spec"]["suspend"].clone();
    assert!(
        matches!(report_suspend, Value::Null | Value::Bool(false)),
        "{report_suspend}"
    );
    assert_eq!(
        rec.entries[&format!("batch/CronJob/{ns}/report")].state["awake"],
        json!({"mode": "suspend", "suspend": report_suspend})
    );
    assert_eq!(
        rec.entries[&format!("batch/CronJob/{ns}/cleanup")].state["awake"],
        json!({"mode": "suspend", "suspend": false})
    );
    assert_eq!(replicas(&client, &ns, "web").await, 0);
    assert_eq!(replicas(&client, &ns, "api").await, 0);
    assert_eq!(replicas(&client, &ns, "pinned").await, 2, "excluded");
    assert_eq!(replicas(&client, &ns, "db").await, 4, "not selected");
    let cron = snapshot(&client, &ns, &kinds[2]).await;
    assert_eq!(cron["report"]["spec"]["suspend"], json!(true));
    assert_eq!(cron["cleanup"]["spec"]["suspend"], json!(true));

    // A second shutdown in the same cycle records nothing new.
    let again = run_shutdown(
        executor.as_ref(),
        &ctx(Operation::Shutdown, "c1"),
        &params,
        &store,
        &fast_retry(0),
    )
    .await
    .unwrap();
    assert!(again.recorded.is_empty(), "{:?}", again.recorded);
    assert_eq!(record(&store).await.entries, rec.entries);

    run_wakeup(
        executor.as_ref(),
        &ctx(Operation::Wakeup, "c1"),
        &params,
        &store,
        &fast_retry(0),
    )
    .await
    .unwrap();
    for (kind, original) in kinds.iter().zip(&before) {
        assert_eq!(
            &snapshot(&client, &ns, kind).await,
            original,
            "{}",
            kind.plural
        );
    }
    assert!(record(&store).await.entries.is_empty());

    // A second wake-up changes nothing and patches nothing.
    if let Some(server) = tc.api_server() {
        server.reset_request_counts();
    }
    run_wakeup(
        executor.as_ref(),
        &ctx(Operation::Wakeup, "c1"),
        &params,
        &store,
        &fast_retry(0),
    )
    .await
    .unwrap();
    if let Some(server) = tc.api_server() {
        assert_eq!(server.request_count("patch", "deployments/scale"), 0);
        assert_eq!(server.request_count("patch", "cronjobs"), 0);
    }
    for (kind, original) in kinds.iter().zip(&before) {
        assert_eq!(&snapshot(&client, &ns, kind).await, original);
    }
    tc.cleanup().await.unwrap();
}

#[tokio::test]
async fn keda_scaled_objects_are_paused_by_annotation() {
    let tc = cluster("ws-keda").await;
    tc.ensure_crd(&keda_scaledobject()).await.unwrap();
    let (client, ns) = (tc.client(), tc.namespace().to_string());
    let so = ar("keda.sh", "v1alpha1", "ScaledObject", "scaledobjects");
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &so);
    for (name, annotations) in [
        ("plain", json!({})),
        (
            "pinned-two",
            json!({"autoscaling.keda.sh/paused-replicas": "2"}),
        ),
        (
            "asleep",
            json!({"autoscaling.keda.sh/paused-replicas": "0"}),
        ),
    ] {
        let object: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
            "metadata": {"name": name, "annotations": annotations},
            "spec": {"scaleTargetRef": {"name": "web"}, "minReplicaCount": 1}
        }))
        .unwrap();
        api.create(&PostParams::default(), &object).await.unwrap();
    }
    let before = snapshot(&client, &ns, &so).await;
    let executor = typed(executor(client.clone()));
    let params = json!({"awaitCompletion": {"enabled": false}, "includedGroups": ["scaledobjects"], "namespace": {"literals": [ns]}});
    let store = MemoryRestoreStore::new();
    let report = run_shutdown(
        executor.as_ref(),
        &ctx(Operation::Shutdown, "c1"),
        &params,
        &store,
        &fast_retry(0),
    )
    .await
    .unwrap();
    assert_eq!(report.recorded.len(), 2, "{:?}", report.recorded);
    let during = snapshot(&client, &ns, &so).await;
    for name in ["plain", "pinned-two", "asleep"] {
        assert_eq!(
            during[name]["annotations"]["autoscaling.keda.sh/paused-replicas"],
            json!("0"),
            "{name}"
        );
        assert_eq!(
            during[name]["spec"], before[name]["spec"],
            "target untouched"
        );
    }
    run_wakeup(
        executor.as_ref(),
        &ctx(Operation::Wakeup, "c1"),
        &params,
        &store,
        &fast_retry(0),
    )
    .await
    .unwrap();
    assert_eq!(snapshot(&client, &ns, &so).await, before);
    tc.cleanup().await.unwrap();
}

#[tokio::test]
async fn custom_resources_with_a_scale_subresource_are_scaled() {
    let tc = cluster("ws-custom").await;
    let group = "scaling.hibernator.dev";
    tc.ensure_crd(&widget_crd(group, true)).await.unwrap();
    let (client, ns) = (tc.client(), tc.namespace().to_string());
    widget(&client, &ns, group, "w1", 5).await;
    let resource = ar(group, "v1", "Widget", "widgets");
    let before = snapshot(&client, &ns, &resource).await;
    let executor = typed(executor(client.clone()));
    let params = json!({"awaitCompletion": {"enabled": false}, "includedGroups": [format!("{group}/v1/widgets")], "namespace": {"literals": [ns]}});
    let store = MemoryRestoreStore::new();
    run_shutdown(
        executor.as_ref(),
        &ctx(Operation::Shutdown, "c1"),
        &params,
        &store,
        &fast_retry(0),
    )
    .await
    .unwrap();
    let during = snapshot(&client, &ns, &resource).await;
    assert_eq!(
        during["w1"]["spec"],
        json!({"replicas": 0, "color": "blue"})
    );
    let rec = record(&store).await;
    assert!(
        rec.entries.contains_key(&format!("{group}/Widget/{ns}/w1")),
        "{:?}",
        rec.entries.keys()
    );
    run_wakeup(
        executor.as_ref(),
        &ctx(Operation::Wakeup, "c1"),
        &params,
        &store,
        &fast_retry(0),
    )
    .await
    .unwrap();
    assert_eq!(snapshot(&client, &ns, &resource).await, before);
    tc.cleanup().await.unwrap();
}

#[tokio::test]
async fn unknown_or_unscalable_resources_are_clear_errors() {
    let tc = cluster("ws-missing").await;
    let group = "noscale.hibernator.dev";
    tc.ensure_crd(&widget_crd(group, false)).await.unwrap();
    let (client, ns) = (tc.client(), tc.namespace().to_string());
    let executor = typed(executor(client.clone()));
    let store = MemoryRestoreStore::new();
    for (entry, expected) in [
        (
            "nothere.hibernator.dev/v1/things".to_string(),
            "does not serve",
        ),
        (format!("{group}/v1/widgets"), "no scale subresource"),
        (format!("{group}/v1/gadgets"), "no resource \"gadgets\""),
    ] {
        let params = json!({"awaitCompletion": {"enabled": false}, "includedGroups": [entry], "namespace": {"literals": [ns]}});
        let err: ExecutorError = run_shutdown(
            executor.as_ref(),
            &ctx(Operation::Shutdown, "c1"),
            &params,
            &store,
            &fast_retry(2),
        )
        .await
        .unwrap_err();
        assert_eq!(err.category, category::INVALID_PARAMETERS, "{err}");
        assert!(err.message.contains(expected), "{err}");
        assert!(err.message.contains("parameters.includedGroups"), "{err}");
    }
    tc.cleanup().await.unwrap();
}

#[tokio::test]
async fn a_deleted_workload_fails_its_entry_and_keeps_it() {
    let tc = cluster("ws-gone").await;
    let (client, ns) = (tc.client(), tc.namespace().to_string());
    deployment(&client, &ns, "web", 2, json!({}), json!({})).await;
    deployment(&client, &ns, "api", 1, json!({}), json!({})).await;
    let executor = typed(executor(client.clone()));
    let params = json!({"awaitCompletion": {"enabled": false}, "namespace": {"literals": [ns]}});
    let store = MemoryRestoreStore::new();
    run_shutdown(
        executor.as_ref(),
        &ctx(Operation::Shutdown, "c1"),
        &params,
        &store,
        &fast_retry(0),
    )
    .await
    .unwrap();
    Api::<Deployment>::namespaced(client.clone(), &ns)
        .delete("web", &Default::default())
        .await
        .unwrap();
    let err = run_wakeup(
        executor.as_ref(),
        &ctx(Operation::Wakeup, "c1"),
        &params,
        &store,
        &fast_retry(0),
    )
    .await
    .unwrap_err();
    assert_eq!(err.category, category::PARTIAL_RESTORE, "{err}");
    assert!(err.message.contains("no longer exists"), "{err}");
    assert_eq!(replicas(&client, &ns, "api").await, 1);
    let left: Vec<String> = record(&store).await.entries.into_keys().collect();
    assert_eq!(left, [format!("apps/Deployment/{ns}/web")]);
    tc.cleanup().await.unwrap();
}

#[tokio::test]
async fn a_503_on_the_scale_patch_is_retried() {
    let tc = cluster("ws-fault").await;
    let (client, ns) = (tc.client(), tc.namespace().to_string());
    deployment(&client, &ns, "web", 3, json!({}), json!({})).await;
    let executor = typed(executor(client.clone()));
    let params = json!({"awaitCompletion": {"enabled": false}, "namespace": {"literals": [ns]}});
    let store = MemoryRestoreStore::new();
    if let Some(server) = tc.api_server() {
        server.fail_next("patch", "deployments/scale", 1, 503);
    }
    run_shutdown(
        executor.as_ref(),
        &ctx(Operation::Shutdown, "c1"),
        &params,
        &store,
        &fast_retry(3),
    )
    .await
    .unwrap();
    assert_eq!(replicas(&client, &ns, "web").await, 0);
    if let Some(server) = tc.api_server() {
        assert_eq!(server.request_count("patch", "deployments/scale"), 2);
    }
    let rec = record(&store).await;
    assert_eq!(
        rec.entries[&format!("apps/Deployment/{ns}/web")].state["awake"]["replicas"],
        json!(3)
    );
    tc.cleanup().await.unwrap();
}

/// Sets `status.readyReplicas` of a Deployment to `ready` after `delay`.
fn report_ready_later(client: Client, ns: String, name: &'static str, ready: i32, delay: Duration) {
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        Api::<Deployment>::namespaced(client, &ns)
            .patch_status(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {"replicas": ready, "readyReplicas": ready}})),
            )
            .await
            .unwrap();
    });
}

#[tokio::test]
async fn wakeup_waits_for_ready_replicas() {
    let tc = cluster("ws-ready").await;
    if tc.is_real() {
        // A real controller reports readiness itself; nothing to simulate.
        tc.cleanup().await.unwrap();
        return;
    }
    let (client, ns) = (tc.client(), tc.namespace().to_string());
    deployment(&client, &ns, "web", 2, json!({}), json!({})).await;
    let executor = typed(executor(client.clone()));
    let params = json!({"namespace": {"literals": [ns]},
                        "awaitCompletion": {"enabled": true, "timeout": "30s"}});
    let store = MemoryRestoreStore::new();
    run_shutdown(
        executor.as_ref(),
        &ctx(Operation::Shutdown, "c1"),
        &params,
        &store,
        &fast_retry(0),
    )
    .await
    .unwrap();
    report_ready_later(
        client.clone(),
        ns.clone(),
        "web",
        2,
        Duration::from_millis(200),
    );
    run_wakeup(
        executor.as_ref(),
        &ctx(Operation::Wakeup, "c1"),
        &params,
        &store,
        &fast_retry(0),
    )
    .await
    .unwrap();
    assert!(record(&store).await.entries.is_empty());

    // Never ready: the entry fails and is kept for the next attempt.
    Api::<Deployment>::namespaced(client.clone(), &ns)
        .patch_status(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"replicas": 0, "readyReplicas": 0}})),
        )
        .await
        .unwrap();
    let short = json!({"namespace": {"literals": [ns]},
                       "awaitCompletion": {"enabled": true, "timeout": "1s"}});
    run_shutdown(
        executor.as_ref(),
        &ctx(Operation::Shutdown, "c2"),
        &short,
        &store,
        &fast_retry(0),
    )
    .await
    .unwrap();
    let err = run_wakeup(
        executor.as_ref(),
        &ctx(Operation::Wakeup, "c2"),
        &short,
        &store,
        &fast_retry(0),
    )
    .await
    .unwrap_err();
    assert!(err.message.contains("not ready"), "{err}");
    assert_eq!(record(&store).await.entries.len(), 1);
    assert_eq!(
        replicas(&client, &ns, "web").await,
        2,
        "restored, just not ready"
    );
    let _ = store.load(TARGET).await.unwrap();
    tc.cleanup().await.unwrap();
}

struct Fixture {
    client: Client,
    ns: String,
}

#[async_trait]
impl ConformanceFixture for Fixture {
    async fn setup(&self) -> Result<Value, String> {
        let api = Api::<Deployment>::namespaced(self.client.clone(), &self.ns);
        for (name, replicas) in [("a", 3), ("b", 1)] {
            match api.get_opt(name).await.map_err(|e| e.to_string())? {
                None => {
                    deployment(&self.client, &self.ns, name, replicas, json!({}), json!({})).await
                }
                Some(_) => {
                    api.patch_scale(
                        name,
                        &PatchParams::default(),
                        &Patch::Merge(json!({"spec": {"replicas": replicas}})),
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                }
            }
        }
        Ok(json!({"awaitCompletion": {"enabled": false}, "namespace": {"literals": [self.ns]}}))
    }

    async fn observe(&self) -> Result<Value, String> {
        let api = Api::<Deployment>::namespaced(self.client.clone(), &self.ns);
        let mut state = serde_json::Map::new();
        for d in api
            .list(&Default::default())
            .await
            .map_err(|e| e.to_string())?
        {
            state.insert(d.name_any(), json!(d.spec.and_then(|s| s.replicas)));
        }
        Ok(Value::Object(state))
    }
}

#[tokio::test]
async fn passes_the_conformance_kit() {
    let tc = cluster("ws-conf").await;
    let fixture = Fixture {
        client: tc.client(),
        ns: tc.namespace().to_string(),
    };
    let report = run_conformance(typed(executor(tc.client())), &fixture).await;
    report.assert_passed();
    tc.cleanup().await.unwrap();
}
