//! The `eks` executor against moto: node group scaling configurations in the
//! emulator and the restore data after shutdown and wake-up.

// Fixture helpers run only in tests: a failing emulator call must fail the test.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_eks::Client;
use aws_sdk_eks::types::{NodegroupScalingConfig, VpcConfigRequest};
use hibernator_core::executor::testing::{ConformanceFixture, run_conformance};
use hibernator_core::executor::{
    ExecutionContext, Executor, ExecutorError, Jitter, RetryPolicy, TargetReport, category,
    run_enforce, run_shutdown, run_wakeup, typed,
};
use hibernator_core::restore::{MemoryRestoreStore, RestoreRecord, RestoreStore};
use hibernator_core::types::Operation;
use hibernator_executors::aws::eks::EksExecutor;
use hibernator_testkit::fault_proxy::{FaultConfig, FaultProxy};
use hibernator_testkit::moto::MotoServer;
use serde_json::{Value, json};

use crate::support::{sdk_config, start_moto};

const CLUSTER: &str = "dev-cluster";
const TARGET: &str = "nodes";

type Size = (i32, i32, i32);

/// The two node groups of the brief: (min, desired, max).
const GENERAL: Size = (1, 2, 5);
const BATCH: Size = (0, 3, 3);

struct Env {
    _moto: MotoServer,
    client: Client,
    config: aws_config::SdkConfig,
}

async fn env() -> Env {
    let (moto, config) = start_moto().await;
    let client = Client::new(&config);
    client
        .create_cluster()
        .name(CLUSTER)
        .role_arn("arn:aws:iam::123456789012:role/eks")
        .resources_vpc_config(VpcConfigRequest::builder().subnet_ids("subnet-1").build())
        .send()
        .await
        .unwrap();
    Env {
        _moto: moto,
        client,
        config,
    }
}

fn scaling((min, desired, max): Size) -> NodegroupScalingConfig {
    NodegroupScalingConfig::builder()
        .min_size(min)
        .desired_size(desired)
        .max_size(max)
        .build()
}

impl Env {
    async fn node_group(&self, name: &str, size: Size) {
        self.client
            .create_nodegroup()
            .cluster_name(CLUSTER)
            .nodegroup_name(name)
            .subnets("subnet-1")
            .node_role("arn:aws:iam::123456789012:role/node")
            .scaling_config(scaling(size))
            .send()
            .await
            .unwrap();
    }

    async fn two_node_groups(&self) {
        self.node_group("general", GENERAL).await;
        self.node_group("batch", BATCH).await;
    }

    async fn resize(&self, name: &str, size: Size) {
        self.client
            .update_nodegroup_config()
            .cluster_name(CLUSTER)
            .nodegroup_name(name)
            .scaling_config(scaling(size))
            .send()
            .await
            .unwrap();
    }

    async fn size(&self, name: &str) -> Size {
        let out = self
            .client
            .describe_nodegroup()
            .cluster_name(CLUSTER)
            .nodegroup_name(name)
            .send()
            .await
            .unwrap();
        let s = out.nodegroup().unwrap().scaling_config().unwrap();
        (
            s.min_size().unwrap(),
            s.desired_size().unwrap(),
            s.max_size().unwrap(),
        )
    }

    fn executor(&self) -> EksExecutor {
        EksExecutor::new(&self.config).with_poll_interval(Duration::from_millis(10))
    }
}

fn state((min, desired, max): Size) -> Value {
    json!({"minSize": min, "desiredSize": desired, "maxSize": max})
}

fn ctx(operation: Operation, cycle: &str) -> ExecutionContext {
    ExecutionContext::builder("plan", TARGET, cycle, operation)
        .timeout(Duration::from_secs(120))
        .build()
}

fn policy(max_retries: u32) -> RetryPolicy {
    RetryPolicy {
        max_retries,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(50),
        jitter: Jitter::None,
    }
}

fn params(node_groups: &[&str]) -> Value {
    json!({"clusterName": CLUSTER, "nodeGroups": node_groups,
           "awaitCompletion": {"enabled": true, "timeout": "1m"}})
}

async fn shutdown(
    ex: &dyn Executor,
    store: &dyn RestoreStore,
    params: &Value,
    cycle: &str,
) -> Result<TargetReport, ExecutorError> {
    run_shutdown(
        ex,
        &ctx(Operation::Shutdown, cycle),
        params,
        store,
        &policy(3),
    )
    .await
}

async fn wakeup(
    ex: &dyn Executor,
    store: &dyn RestoreStore,
    params: &Value,
    retries: u32,
) -> Result<TargetReport, ExecutorError> {
    run_wakeup(
        ex,
        &ctx(Operation::Wakeup, "cycle-1"),
        params,
        store,
        &policy(retries),
    )
    .await
}

async fn record(store: &dyn RestoreStore) -> RestoreRecord {
    store.load(TARGET).await.unwrap().expect("a record").value
}

fn states(record: &RestoreRecord) -> BTreeMap<String, Value> {
    record
        .entries
        .iter()
        .map(|(k, e)| (k.clone(), e.state.clone()))
        .collect()
}

#[tokio::test]
async fn shutdown_keeps_max_and_wakeup_restores_exact_sizes() {
    let env = env().await;
    env.two_node_groups().await;
    let ex = typed(env.executor());
    let store = MemoryRestoreStore::new();

    let report = shutdown(ex.as_ref(), &store, &params(&[]), "cycle-1")
        .await
        .unwrap();
    assert_eq!(report.resources.len(), 2);
    assert_eq!(env.size("general").await, (0, 0, 5));
    assert_eq!(env.size("batch").await, (0, 0, 3));
    assert_eq!(
        states(&record(&store).await),
        BTreeMap::from([
            ("nodegroup/batch".to_string(), state(BATCH)),
            ("nodegroup/general".to_string(), state(GENERAL)),
        ])
    );

    let report = wakeup(ex.as_ref(), &store, &params(&[]), 0).await.unwrap();
    assert_eq!(report.resources.len(), 2);
    assert_eq!(env.size("general").await, GENERAL);
    assert_eq!(env.size("batch").await, BATCH);
    assert!(record(&store).await.is_empty());
}

#[tokio::test]
async fn explicit_node_groups_limit_the_target() {
    let env = env().await;
    env.two_node_groups().await;
    env.node_group("spot", (2, 2, 4)).await;
    let ex = typed(env.executor());
    let store = MemoryRestoreStore::new();
    let subset = params(&["batch", "spot"]);

    shutdown(ex.as_ref(), &store, &subset, "cycle-1")
        .await
        .unwrap();
    assert_eq!(env.size("general").await, GENERAL, "not selected");
    assert_eq!(env.size("batch").await, (0, 0, 3));
    assert_eq!(env.size("spot").await, (0, 0, 4));
    let keys: Vec<_> = record(&store).await.entries.into_keys().collect();
    assert_eq!(keys, ["nodegroup/batch", "nodegroup/spot"]);

    wakeup(ex.as_ref(), &store, &subset, 0).await.unwrap();
    assert_eq!(env.size("batch").await, BATCH);
    assert_eq!(env.size("spot").await, (2, 2, 4));
}

#[tokio::test]
async fn missing_node_group_is_not_found_and_changes_nothing() {
    let env = env().await;
    env.two_node_groups().await;
    let ex = typed(env.executor());
    let store = MemoryRestoreStore::new();

    let err = shutdown(
        ex.as_ref(),
        &store,
        &params(&["general", "ghost"]),
        "cycle-1",
    )
    .await
    .unwrap_err();
    assert_eq!(err.category, category::NOT_FOUND, "{err}");
    assert!(!err.is_transient());
    assert!(err.message.contains("\"ghost\""), "{err}");
    assert!(err.message.contains(CLUSTER), "{err}");
    assert_eq!(err.resource.as_deref(), Some("nodegroup/ghost"));
    // Described before anything changed: the existing node group is untouched.
    assert_eq!(env.size("general").await, GENERAL);
    assert!(store.load(TARGET).await.unwrap().is_none());
}

#[tokio::test]
async fn repeated_and_later_cycle_shutdowns_keep_the_awake_state() {
    let env = env().await;
    env.two_node_groups().await;
    let ex = typed(env.executor());
    let store = MemoryRestoreStore::new();
    let all = params(&[]);

    shutdown(ex.as_ref(), &store, &all, "cycle-1")
        .await
        .unwrap();
    let first = record(&store).await;
    let again = shutdown(ex.as_ref(), &store, &all, "cycle-1")
        .await
        .unwrap();
    assert!(again.recorded.is_empty(), "{again:?}");
    assert_eq!(record(&store).await.entries, first.entries);

    // The wake-up of cycle 1 "failed": still asleep when cycle 2 shuts down.
    let later = shutdown(ex.as_ref(), &store, &all, "cycle-2")
        .await
        .unwrap();
    assert!(later.recorded.is_empty(), "{later:?}");
    assert_eq!(record(&store).await.entries, first.entries);

    wakeup(ex.as_ref(), &store, &all, 0).await.unwrap();
    assert_eq!(env.size("general").await, GENERAL);
    assert_eq!(env.size("batch").await, BATCH);
}

#[tokio::test]
async fn node_group_scaled_down_by_its_owner_is_left_alone() {
    let env = env().await;
    env.two_node_groups().await;
    env.node_group("idle", (0, 0, 2)).await;
    let ex = typed(env.executor());
    let store = MemoryRestoreStore::new();

    let report = shutdown(ex.as_ref(), &store, &params(&[]), "cycle-1")
        .await
        .unwrap();
    assert!(report.resources.contains(&"nodegroup/idle".to_string()));
    let keys: Vec<_> = record(&store).await.entries.into_keys().collect();
    assert_eq!(keys, ["nodegroup/batch", "nodegroup/general"]);
    // Someone starts it during the night; wake-up only touches recorded ones.
    env.resize("idle", (0, 1, 2)).await;
    wakeup(ex.as_ref(), &store, &params(&[]), 0).await.unwrap();
    assert_eq!(env.size("idle").await, (0, 1, 2));
    assert_eq!(env.size("general").await, GENERAL);
}

#[tokio::test]
async fn wakeup_of_a_deleted_node_group_fails_that_key_only() {
    let env = env().await;
    env.two_node_groups().await;
    let ex = typed(env.executor());
    let store = MemoryRestoreStore::new();
    shutdown(ex.as_ref(), &store, &params(&[]), "cycle-1")
        .await
        .unwrap();
    env.client
        .delete_nodegroup()
        .cluster_name(CLUSTER)
        .nodegroup_name("batch")
        .send()
        .await
        .unwrap();

    let err = wakeup(ex.as_ref(), &store, &params(&[]), 0)
        .await
        .unwrap_err();
    assert_eq!(err.category, category::PARTIAL_RESTORE, "{err}");
    assert!(err.message.contains("nodegroup/batch"), "{err}");
    assert!(err.message.contains("no longer exists"), "{err}");
    assert_eq!(env.size("general").await, GENERAL);
    let left = record(&store).await;
    assert_eq!(
        states(&left),
        BTreeMap::from([("nodegroup/batch".to_string(), state(BATCH))])
    );
}

#[tokio::test]
async fn list_nodegroups_is_paginated_and_calls_stay_per_node_group() {
    let env = env().await;
    let names = ["ng-1", "ng-2", "ng-3", "ng-4", "ng-5"];
    for name in names {
        env.node_group(name, (1, 1, 3)).await;
    }
    let proxy = FaultProxy::start(env._moto.endpoint(), FaultConfig::default())
        .await
        .unwrap();
    let proxied = sdk_config(proxy.endpoint()).await;
    let ex = typed(EksExecutor::new(&proxied).with_list_page_size(2));
    let store = MemoryRestoreStore::new();
    let no_wait = json!({"clusterName": CLUSTER, "awaitCompletion": {"enabled": false}});

    shutdown(ex.as_ref(), &store, &no_wait, "cycle-1")
        .await
        .unwrap();
    for name in names {
        assert_eq!(env.size(name).await, (0, 0, 3), "{name}");
    }
    assert_eq!(record(&store).await.entries.len(), 5);
    // 5 node groups, 2 per page: 3 pages.
    assert_eq!(proxy.count("eks", "ListNodegroups").total(), 3);
    assert_eq!(proxy.count("eks", "DescribeNodegroup").total(), 5);
    assert_eq!(proxy.count("eks", "UpdateNodegroupConfig").total(), 5);
    assert_eq!(proxy.service_total("eks"), 13);
}

#[tokio::test]
async fn completes_under_injected_faults() {
    let env = env().await;
    env.two_node_groups().await;
    env.node_group("spot", (2, 2, 4)).await;
    let proxy = FaultProxy::start(
        env._moto.endpoint(),
        FaultConfig {
            rate: 0.2,
            seed: 42,
        },
    )
    .await
    .unwrap();
    let proxied = sdk_config(proxy.endpoint()).await;
    let ex = typed(
        EksExecutor::new(&proxied)
            .with_poll_interval(Duration::from_millis(10))
            .with_list_page_size(1),
    );
    let store = MemoryRestoreStore::new();
    let all = params(&[]);

    run_shutdown(
        ex.as_ref(),
        &ctx(Operation::Shutdown, "cycle-1"),
        &all,
        &store,
        &policy(10),
    )
    .await
    .unwrap();
    assert_eq!(env.size("general").await, (0, 0, 5));
    assert_eq!(env.size("batch").await, (0, 0, 3));
    assert_eq!(env.size("spot").await, (0, 0, 4));
    assert_eq!(
        states(&record(&store).await),
        BTreeMap::from([
            ("nodegroup/batch".to_string(), state(BATCH)),
            ("nodegroup/general".to_string(), state(GENERAL)),
            ("nodegroup/spot".to_string(), state((2, 2, 4))),
        ])
    );

    run_wakeup(
        ex.as_ref(),
        &ctx(Operation::Wakeup, "cycle-1"),
        &all,
        &store,
        &policy(10),
    )
    .await
    .unwrap();
    assert_eq!(env.size("general").await, GENERAL);
    assert_eq!(env.size("batch").await, BATCH);
    assert_eq!(env.size("spot").await, (2, 2, 4));
    assert!(record(&store).await.is_empty());
    assert!(proxy.injected_total() > 0, "{:?}", proxy.counts());
}

/// Two node groups in moto, reset to their awake sizes before every check.
struct MotoNodeGroups {
    env: Env,
}

#[async_trait]
impl ConformanceFixture for MotoNodeGroups {
    async fn setup(&self) -> Result<Value, String> {
        self.env.resize("general", GENERAL).await;
        self.env.resize("batch", BATCH).await;
        Ok(params(&[]))
    }

    async fn observe(&self) -> Result<Value, String> {
        let mut seen = serde_json::Map::new();
        for name in ["general", "batch"] {
            seen.insert(name.to_string(), state(self.env.size(name).await));
        }
        Ok(Value::Object(seen))
    }

    async fn wake_behind_back(&self) -> Result<(), String> {
        self.env.resize("general", (1, 3, 5)).await;
        Ok(())
    }
}

#[tokio::test]
async fn conformance_kit_passes() {
    let env = env().await;
    env.two_node_groups().await;
    let executor = typed(env.executor());
    let fixture = MotoNodeGroups { env };
    run_conformance(executor, &fixture).await.assert_passed();
}

#[tokio::test]
async fn enforce_scales_recorded_node_groups_scaled_up_by_hand_back_to_zero() {
    let env = env().await;
    env.two_node_groups().await;
    env.node_group("idle", (0, 0, 2)).await;
    let ex = typed(env.executor());
    let store = MemoryRestoreStore::new();
    shutdown(ex.as_ref(), &store, &params(&[]), "cycle-1")
        .await
        .unwrap();
    let before = record(&store).await;

    // Scaled up by hand while hibernated: a recorded node group (with a
    // different size than its recorded one) and an unrecorded one.
    env.resize("general", (2, 4, 6)).await;
    env.resize("idle", (0, 1, 2)).await;
    let report = run_enforce(
        ex.as_ref(),
        &ctx(Operation::Shutdown, "cycle-1"),
        &params(&[]),
        &store,
        &policy(0),
    )
    .await
    .unwrap();
    assert_eq!(report.rehibernated, ["nodegroup/general"]);
    assert_eq!(report.checked, ["nodegroup/batch", "nodegroup/general"]);
    assert_eq!(
        env.size("general").await,
        (0, 0, 6),
        "max kept, as shutdown does"
    );
    assert_eq!(env.size("batch").await, (0, 0, 3));
    assert_eq!(
        env.size("idle").await,
        (0, 1, 2),
        "a node group outside the restore record is never touched"
    );
    assert_eq!(
        record(&store).await,
        before,
        "the record keeps the last known awake size"
    );
    wakeup(ex.as_ref(), &store, &params(&[]), 0).await.unwrap();
    assert_eq!(env.size("general").await, GENERAL);
}
