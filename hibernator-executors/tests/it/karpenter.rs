//! The `karpenter` executor against the testkit API server (or a real
//! cluster with `HIBERNATOR_TEST_KUBECONFIG`): limits restored exactly,
//! NodeClaims deleted, idempotency, missing pools, waiting, faults and the
//! core conformance kit.

#![allow(clippy::unwrap_used)] // test helpers fail loudly

use std::time::Duration;

use async_trait::async_trait;
use hibernator_core::executor::testing::{ConformanceFixture, run_conformance};
use hibernator_core::executor::{category, run_shutdown, run_wakeup, typed};
use hibernator_core::restore::MemoryRestoreStore;
use hibernator_core::types::Operation;
use hibernator_executors::kubernetes::KarpenterExecutor;
use hibernator_executors::kubernetes::karpenter::{nodeclaim_resource, nodepool_resource};
use hibernator_testkit::kube::TestCluster;
use hibernator_testkit::kube::crds::{karpenter_nodeclaim, karpenter_nodepool};
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use crate::support::{POLL, ctx, fast_retry, record};

async fn cluster(prefix: &str) -> TestCluster {
    let tc = TestCluster::start(prefix).await.expect("test cluster");
    tc.ensure_crd(&karpenter_nodepool()).await.unwrap();
    tc.ensure_crd(&karpenter_nodeclaim()).await.unwrap();
    tc
}

fn executor(client: Client) -> KarpenterExecutor {
    KarpenterExecutor::new(client).with_poll_interval(POLL)
}

fn pools(client: &Client) -> Api<DynamicObject> {
    Api::all_with(client.clone(), &nodepool_resource())
}

fn claims(client: &Client) -> Api<DynamicObject> {
    Api::all_with(client.clone(), &nodeclaim_resource())
}

/// Creates a NodePool; `limits: None` leaves `spec.limits` out.
async fn pool(tc: &TestCluster, name: &str, labels: Value, limits: Option<Value>) {
    let mut spec = json!({"template": {"spec": {"nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"}, "requirements": []}},
                          "disruption": {"budgets": [{"nodes": "10%"}]}});
    if let Some(limits) = limits {
        spec["limits"] = limits;
    }
    let object: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "karpenter.sh/v1", "kind": "NodePool",
        "metadata": {"name": name, "labels": labels}, "spec": spec
    }))
    .unwrap();
    pools(&tc.client())
        .create(&PostParams::default(), &object)
        .await
        .unwrap();
    tc.track_cluster_scoped(&nodepool_resource(), name);
}

async fn claim(tc: &TestCluster, name: &str, pool: &str, finalizer: bool) {
    let finalizers = if finalizer {
        json!(["karpenter.sh/termination"])
    } else {
        json!([])
    };
    let object: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "karpenter.sh/v1", "kind": "NodeClaim",
        "metadata": {"name": name, "labels": {"karpenter.sh/nodepool": pool}, "finalizers": finalizers},
        "spec": {"nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"}, "requirements": []}
    }))
    .unwrap();
    claims(&tc.client())
        .create(&PostParams::default(), &object)
        .await
        .unwrap();
    tc.track_cluster_scoped(&nodeclaim_resource(), name);
}

async fn spec_of(client: &Client, name: &str) -> Value {
    pools(client).get(name).await.unwrap().data["spec"].clone()
}

async fn claims_of(client: &Client, pool: &str) -> Vec<String> {
    claims(client)
        .list(&ListParams::default().labels(&format!("karpenter.sh/nodepool={pool}")))
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|c| c.name_any())
        .collect()
}

#[tokio::test]
async fn limits_are_restored_exactly_and_claims_deleted() {
    let tc = cluster("kp-exact").await;
    let client = tc.client();
    let sel = tc.unique_name("sel");
    let (a, b, c) = (
        tc.unique_name("a"),
        tc.unique_name("b"),
        tc.unique_name("c"),
    );
    pool(
        &tc,
        &a,
        json!({"sleep": sel}),
        Some(json!({"cpu": "100", "memory": "200Gi"})),
    )
    .await;
    pool(&tc, &b, json!({"sleep": sel}), None).await;
    pool(&tc, &c, json!({"sleep": "no"}), Some(json!({"cpu": "10"}))).await;
    for (i, p) in [&a, &a, &b, &c].into_iter().enumerate() {
        claim(&tc, &format!("{p}-claim-{i}"), p, false).await;
    }
    let before = [
        spec_of(&client, &a).await,
        spec_of(&client, &b).await,
        spec_of(&client, &c).await,
    ];

    let executor = typed(executor(client.clone()));
    let params = json!({"awaitCompletion": {"enabled": false}, "nodeSelector": {"matchLabels": {"sleep": sel}}});
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
    assert_eq!(
        report.recorded,
        [format!("nodepool/{a}"), format!("nodepool/{b}")]
    );
    let rec = record(&store).await;
    assert_eq!(
        rec.entries[&format!("nodepool/{a}")].state,
        json!({"limits": {"cpu": "100", "memory": "200Gi"}})
    );
    assert_eq!(
        rec.entries[&format!("nodepool/{b}")].state,
        json!({"limits": null})
    );
    assert_eq!(
        spec_of(&client, &a).await["limits"],
        json!({"cpu": "0", "memory": "200Gi"})
    );
    assert_eq!(spec_of(&client, &b).await["limits"], json!({"cpu": "0"}));
    assert_eq!(spec_of(&client, &c).await, before[2], "not selected");
    assert!(claims_of(&client, &a).await.is_empty());
    assert!(claims_of(&client, &b).await.is_empty());
    assert_eq!(claims_of(&client, &c).await.len(), 1);

    let again = run_shutdown(
        executor.as_ref(),
        &ctx(Operation::Shutdown, "c1"),
        &params,
        &store,
        &fast_retry(0),
    )
    .await
    .unwrap();
    assert!(again.recorded.is_empty());
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
    assert_eq!(spec_of(&client, &a).await, before[0]);
    assert_eq!(spec_of(&client, &b).await, before[1]);
    assert!(spec_of(&client, &b).await.get("limits").is_none());
    assert_eq!(spec_of(&client, &c).await, before[2]);

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
        assert_eq!(server.request_count("patch", "nodepools"), 0);
    }
    assert_eq!(spec_of(&client, &a).await, before[0]);
    tc.cleanup().await.unwrap();
}

#[tokio::test]
async fn a_missing_pool_fails_before_anything_changes() {
    let tc = cluster("kp-missing").await;
    let client = tc.client();
    let a = tc.unique_name("a");
    pool(&tc, &a, json!({}), Some(json!({"cpu": "8"}))).await;
    let before = spec_of(&client, &a).await;
    let executor = typed(executor(client.clone()));
    let missing = tc.unique_name("nope");
    let params = json!({"awaitCompletion": {"enabled": false}, "nodePools": [a, missing]});
    let err = run_shutdown(
        executor.as_ref(),
        &ctx(Operation::Shutdown, "c1"),
        &params,
        &MemoryRestoreStore::new(),
        &fast_retry(2),
    )
    .await
    .unwrap_err();
    assert_eq!(err.category, category::NOT_FOUND);
    assert!(err.message.contains(&missing), "{err}");
    assert_eq!(spec_of(&client, &a).await, before);
    tc.cleanup().await.unwrap();
}

#[tokio::test]
async fn waits_for_claims_to_go_and_pools_to_be_ready() {
    let tc = cluster("kp-wait").await;
    if tc.is_real() {
        tc.cleanup().await.unwrap();
        return;
    }
    let client = tc.client();
    let a = tc.unique_name("a");
    pool(&tc, &a, json!({}), Some(json!({"cpu": "8"}))).await;
    let claim_name = format!("{a}-claim");
    claim(&tc, &claim_name, &a, true).await;
    // Karpenter's termination controller would remove the finalizer once the
    // node is drained; do it a little later.
    let finisher = client.clone();
    let name = claim_name.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        claims(&finisher)
            .patch(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"finalizers": null}})),
            )
            .await
            .unwrap();
    });
    let executor = typed(executor(client.clone()));
    let params = json!({"nodePools": [a], "awaitCompletion": {"enabled": true, "timeout": "30s"}});
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
    assert!(claims_of(&client, &a).await.is_empty());

    let readier = client.clone();
    let name = a.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        pools(&readier)
            .patch_status(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {"conditions": [{"type": "Ready", "status": "True",
                    "reason": "Ready", "message": "", "lastTransitionTime": "2026-11-22T04:00:00Z"}]}})),
            )
            .await
            .unwrap();
    });
    run_wakeup(
        executor.as_ref(),
        &ctx(Operation::Wakeup, "c1"),
        &params,
        &store,
        &fast_retry(0),
    )
    .await
    .unwrap();
    assert_eq!(spec_of(&client, &a).await["limits"], json!({"cpu": "8"}));
    tc.cleanup().await.unwrap();
}

#[tokio::test]
async fn a_503_on_the_limit_patch_is_retried() {
    let tc = cluster("kp-fault").await;
    let client = tc.client();
    let a = tc.unique_name("a");
    pool(&tc, &a, json!({}), Some(json!({"cpu": "8"}))).await;
    if let Some(server) = tc.api_server() {
        server.fail_next("patch", "nodepools", 1, 503);
    }
    let executor = typed(executor(client.clone()));
    let params = json!({"awaitCompletion": {"enabled": false}, "nodePools": [a]});
    let store = MemoryRestoreStore::new();
    run_shutdown(
        executor.as_ref(),
        &ctx(Operation::Shutdown, "c1"),
        &params,
        &store,
        &fast_retry(3),
    )
    .await
    .unwrap();
    assert_eq!(spec_of(&client, &a).await["limits"], json!({"cpu": "0"}));
    if let Some(server) = tc.api_server() {
        assert_eq!(server.request_count("patch", "nodepools"), 2);
    }
    assert_eq!(
        record(&store).await.entries[&format!("nodepool/{a}")].state,
        json!({"limits": {"cpu": "8"}})
    );
    tc.cleanup().await.unwrap();
}

struct Fixture {
    client: Client,
    pools: Vec<String>,
}

#[async_trait]
impl ConformanceFixture for Fixture {
    async fn setup(&self) -> Result<Value, String> {
        for (name, limits) in self.pools.iter().zip([json!({"cpu": "64"}), Value::Null]) {
            pools(&self.client)
                .patch(
                    name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"spec": {"limits": null}})),
                )
                .await
                .map_err(|e| e.to_string())?;
            if !limits.is_null() {
                pools(&self.client)
                    .patch(
                        name,
                        &PatchParams::default(),
                        &Patch::Merge(json!({"spec": {"limits": limits}})),
                    )
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }
        Ok(json!({"awaitCompletion": {"enabled": false}, "nodePools": self.pools}))
    }

    async fn observe(&self) -> Result<Value, String> {
        let mut state = serde_json::Map::new();
        for name in &self.pools {
            let pool = pools(&self.client)
                .get(name)
                .await
                .map_err(|e| e.to_string())?;
            state.insert(name.clone(), pool.data["spec"]["limits"].clone());
        }
        Ok(Value::Object(state))
    }
}

#[tokio::test]
async fn passes_the_conformance_kit() {
    let tc = cluster("kp-conf").await;
    let names = vec![tc.unique_name("a"), tc.unique_name("b")];
    for name in &names {
        pool(&tc, name, json!({}), None).await;
    }
    let fixture = Fixture {
        client: tc.client(),
        pools: names,
    };
    let report = run_conformance(typed(executor(tc.client())), &fixture).await;
    report.assert_passed();
    tc.cleanup().await.unwrap();
}
