//! The `rds` executor against moto through the real AWS SDK.
//!
//! moto makes transitions instantly and lets cluster members be stopped
//! (real AWS rejects that), so member skipping is asserted through the fault
//! proxy's call counts and the members' statuses. The wake-up connectivity
//! check has its own module ([`connectivity`]).

mod connectivity;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_rds::Client;
use aws_sdk_rds::types::Tag;
use hibernator_core::executor::testing::{ConformanceFixture, run_conformance};
use hibernator_core::executor::{
    ExecutionContext, Executor, Jitter, RetryPolicy, TargetReport, category, run_enforce,
    run_shutdown, run_wakeup, typed,
};
use hibernator_core::restore::{MemoryRestoreStore, RestoreRecord, RestoreStore};
use hibernator_core::types::Operation;
use hibernator_executors::aws::rds::{EndpointResolver, RdsExecutor};
use hibernator_executors::rds::snapshot_identifier;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::support::{moto, proxy, sdk_config};

const TARGET: &str = "databases";

fn policy(max_retries: u32) -> RetryPolicy {
    RetryPolicy {
        max_retries,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(100),
        jitter: Jitter::Equal,
    }
}

fn ctx(operation: Operation, cycle: &str) -> ExecutionContext {
    ExecutionContext::builder("dev", TARGET, cycle, operation).build()
}

/// Maps every endpoint to `addr` (moto's endpoints do not resolve here).
fn resolve_to(addr: SocketAddr) -> EndpointResolver {
    Arc::new(move |_, _| Some(addr))
}

fn executor(client: &Client) -> RdsExecutor {
    RdsExecutor::from_client(client.clone()).with_poll_interval(Duration::from_millis(20))
}

async fn shutdown(
    ex: &Arc<dyn Executor>,
    store: &MemoryRestoreStore,
    params: &Value,
    cycle: &str,
) -> TargetReport {
    run_shutdown(
        ex.as_ref(),
        &ctx(Operation::Shutdown, cycle),
        params,
        store,
        &policy(2),
    )
    .await
    .expect("shutdown")
}

async fn wakeup(
    ex: &Arc<dyn Executor>,
    store: &MemoryRestoreStore,
    params: &Value,
    cycle: &str,
) -> TargetReport {
    run_wakeup(
        ex.as_ref(),
        &ctx(Operation::Wakeup, cycle),
        params,
        store,
        &policy(2),
    )
    .await
    .expect("wakeup")
}

async fn record(store: &MemoryRestoreStore) -> RestoreRecord {
    store
        .load(TARGET)
        .await
        .expect("load")
        .expect("a record")
        .value
}

fn keys(record: &RestoreRecord) -> Vec<&str> {
    record.entries.keys().map(String::as_str).collect()
}

async fn create_instance(client: &Client, id: &str, tags: &[(&str, &str)]) {
    let tags = tags
        .iter()
        .map(|(k, v)| Tag::builder().key(*k).value(*v).build());
    client
        .create_db_instance()
        .db_instance_identifier(id)
        .engine("postgres")
        .db_instance_class("db.t3.micro")
        .allocated_storage(20)
        .master_username("admin")
        .master_user_password("password123")
        .set_tags(Some(tags.collect()))
        .send()
        .await
        .expect("create_db_instance");
}

async fn create_cluster(client: &Client, id: &str, members: &[&str], tags: &[(&str, &str)]) {
    let tags = tags
        .iter()
        .map(|(k, v)| Tag::builder().key(*k).value(*v).build());
    client
        .create_db_cluster()
        .db_cluster_identifier(id)
        .engine("aurora-postgresql")
        .master_username("admin")
        .master_user_password("password123")
        .set_tags(Some(tags.collect()))
        .send()
        .await
        .expect("create_db_cluster");
    for member in members {
        client
            .create_db_instance()
            .db_instance_identifier(*member)
            .db_cluster_identifier(id)
            .engine("aurora-postgresql")
            .db_instance_class("db.r6g.large")
            .send()
            .await
            .expect("create member instance");
    }
}

async fn instance_status(client: &Client, id: &str) -> String {
    let out = client
        .describe_db_instances()
        .db_instance_identifier(id)
        .send()
        .await
        .expect("describe_db_instances");
    out.db_instances()[0]
        .db_instance_status()
        .unwrap_or_default()
        .to_string()
}

async fn cluster_status(client: &Client, id: &str) -> String {
    let out = client
        .describe_db_clusters()
        .db_cluster_identifier(id)
        .send()
        .await
        .expect("describe_db_clusters");
    out.db_clusters()[0]
        .status()
        .unwrap_or_default()
        .to_string()
}

fn no_await() -> Value {
    json!({"enabled": false})
}

#[tokio::test]
async fn instance_round_trip_records_only_awake_instances() {
    let server = moto().await;
    let client = Client::new(&sdk_config(server.endpoint()).await);
    create_instance(&client, "orders-db", &[]).await;
    create_instance(&client, "idle-db", &[]).await;
    client
        .stop_db_instance()
        .db_instance_identifier("idle-db")
        .send()
        .await
        .unwrap();
    let ex = typed(executor(&client));
    let store = MemoryRestoreStore::new();
    let params = json!({
        "selector": {"instanceIds": ["orders-db", "idle-db"]},
        "awaitCompletion": no_await(),
    });

    let report = shutdown(&ex, &store, &params, "c1").await;
    assert_eq!(report.recorded, ["instance/orders-db"]);
    assert_eq!(instance_status(&client, "orders-db").await, "stopped");
    let rec = record(&store).await;
    assert_eq!(keys(&rec), ["instance/orders-db"]);
    let state = &rec.entries["instance/orders-db"].state;
    assert_eq!(state["status"], "available");
    assert_eq!(state["engine"], "postgres");
    // The price class the savings report reads.
    assert!(
        state["dbInstanceClass"]
            .as_str()
            .is_some_and(|c| c.starts_with("db.")),
        "{state}"
    );
    assert_eq!(state["snapshotIdentifier"], Value::Null);

    let report = wakeup(&ex, &store, &params, "c1").await;
    assert_eq!(report.resources, ["instance/orders-db"]);
    assert_eq!(instance_status(&client, "orders-db").await, "available");
    assert_eq!(instance_status(&client, "idle-db").await, "stopped");
    assert!(record(&store).await.is_empty());
}

#[tokio::test]
async fn aurora_cluster_is_stopped_as_a_cluster_not_per_member() {
    let server = moto().await;
    let proxy = proxy(server.endpoint(), 0.0).await;
    let client = Client::new(&sdk_config(proxy.endpoint()).await);
    create_cluster(&client, "catalog", &["catalog-1", "catalog-2"], &[]).await;
    let ex = typed(executor(&client));
    let store = MemoryRestoreStore::new();
    // Naming a member explicitly must not stop it either.
    let params = json!({
        "selector": {"clusterIds": ["catalog"], "instanceIds": ["catalog-1"]},
        "awaitCompletion": {"timeout": "1m"},
        "connectivityCheck": {"enabled": true, "timeout": "1m"},
    });

    proxy.reset_counts();
    shutdown(&ex, &store, &params, "c1").await;
    assert_eq!(cluster_status(&client, "catalog").await, "stopped");
    assert_eq!(keys(&record(&store).await), ["cluster/catalog"]);
    assert_eq!(proxy.count("rds", "StopDBCluster").total(), 1);
    assert_eq!(proxy.count("rds", "StopDBInstance").total(), 0);

    // With connectivityCheck, wake-up checks the cluster endpoint: point it
    // at a local listener.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ex =
        typed(executor(&client).with_endpoint_resolver(resolve_to(listener.local_addr().unwrap())));
    wakeup(&ex, &store, &params, "c1").await;
    assert_eq!(cluster_status(&client, "catalog").await, "available");
    assert_eq!(proxy.count("rds", "StartDBCluster").total(), 1);
    assert_eq!(proxy.count("rds", "StartDBInstance").total(), 0);
    for member in ["catalog-1", "catalog-2"] {
        assert_eq!(instance_status(&client, member).await, "available");
    }
}

#[tokio::test]
async fn read_replicas_are_skipped() {
    let server = moto().await;
    let proxy = proxy(server.endpoint(), 0.0).await;
    let client = Client::new(&sdk_config(proxy.endpoint()).await);
    create_instance(&client, "primary", &[]).await;
    client
        .create_db_instance_read_replica()
        .db_instance_identifier("replica")
        .source_db_instance_identifier("primary")
        .send()
        .await
        .expect("create read replica");
    let ex = typed(executor(&client));
    let store = MemoryRestoreStore::new();
    let params = json!({"selector": {"includeAll": true}, "awaitCompletion": no_await()});

    proxy.reset_counts();
    let report = shutdown(&ex, &store, &params, "c1").await;
    assert_eq!(report.resources, ["instance/primary"]);
    assert_eq!(keys(&record(&store).await), ["instance/primary"]);
    assert_eq!(instance_status(&client, "primary").await, "stopped");
    assert_eq!(instance_status(&client, "replica").await, "available");
    assert_eq!(proxy.count("rds", "StopDBInstance").total(), 1);
}

#[tokio::test]
async fn selection_by_tags_exclude_tags_and_include_all() {
    let server = moto().await;
    let proxy = proxy(server.endpoint(), 0.0).await;
    let client = Client::new(&sdk_config(proxy.endpoint()).await);
    create_instance(&client, "dev-a", &[("env", "dev")]).await;
    create_instance(
        &client,
        "dev-keep",
        &[("env", "dev"), ("keep-awake", "true")],
    )
    .await;
    create_instance(&client, "prod-a", &[("env", "prod")]).await;
    create_cluster(&client, "dev-aurora", &["dev-aurora-1"], &[("env", "dev")]).await;
    let ex = typed(executor(&client));
    let store = MemoryRestoreStore::new();
    let by_tags = json!({
        "selector": {"tags": {"env": "dev"}, "excludeTags": {"keep-awake": "true"}},
        "awaitCompletion": no_await(),
    });

    proxy.reset_counts();
    shutdown(&ex, &store, &by_tags, "c1").await;
    // Tags come from Describe: one page per kind, no per-resource tag calls.
    assert_eq!(proxy.count("rds", "DescribeDBInstances").total(), 1);
    assert_eq!(proxy.count("rds", "DescribeDBClusters").total(), 1);
    assert_eq!(proxy.count("rds", "ListTagsForResource").total(), 0);
    assert_eq!(
        keys(&record(&store).await),
        ["cluster/dev-aurora", "instance/dev-a"]
    );
    assert_eq!(instance_status(&client, "dev-a").await, "stopped");
    assert_eq!(instance_status(&client, "dev-keep").await, "available");
    assert_eq!(instance_status(&client, "prod-a").await, "available");
    assert_eq!(cluster_status(&client, "dev-aurora").await, "stopped");

    let all = json!({
        "selector": {"includeAll": true, "excludeTags": {"keep-awake": "true"}},
        "awaitCompletion": no_await(),
    });
    let other = MemoryRestoreStore::new();
    shutdown(&ex, &other, &all, "c1").await;
    // dev-a and the cluster were already stopped: not recorded again.
    assert_eq!(keys(&record(&other).await), ["instance/prod-a"]);
    assert_eq!(instance_status(&client, "prod-a").await, "stopped");
    assert_eq!(instance_status(&client, "dev-keep").await, "available");
}

#[tokio::test]
async fn snapshot_before_stop_is_deterministic_and_rerun_safe() {
    let server = moto().await;
    let client = Client::new(&sdk_config(server.endpoint()).await);
    create_instance(&client, "orders-db", &[]).await;
    create_cluster(&client, "catalog", &["catalog-1"], &[]).await;
    let ex = typed(executor(&client));
    let store = MemoryRestoreStore::new();
    let params = json!({
        "selector": {"instanceIds": ["orders-db"], "clusterIds": ["catalog"]},
        "snapshotBeforeStop": true,
        "awaitCompletion": {"timeout": "1m"},
    });
    let cycle = "2026-11-22T18:00Z";
    let instance_snapshot = snapshot_identifier("orders-db", cycle);
    let cluster_snapshot = snapshot_identifier("catalog", cycle);

    shutdown(&ex, &store, &params, cycle).await;
    let snapshots = client
        .describe_db_snapshots()
        .db_snapshot_identifier(&instance_snapshot)
        .send()
        .await
        .unwrap();
    assert_eq!(snapshots.db_snapshots().len(), 1);
    assert_eq!(
        snapshots.db_snapshots()[0].db_instance_identifier(),
        Some("orders-db")
    );
    let cluster_snapshots = client
        .describe_db_cluster_snapshots()
        .db_cluster_snapshot_identifier(&cluster_snapshot)
        .send()
        .await
        .unwrap();
    assert_eq!(cluster_snapshots.db_cluster_snapshots().len(), 1);
    assert_eq!(
        cluster_snapshots.db_cluster_snapshots()[0].db_cluster_identifier(),
        Some("catalog")
    );
    let rec = record(&store).await;
    assert_eq!(
        rec.entries["instance/orders-db"].state["snapshotIdentifier"],
        instance_snapshot.as_str()
    );
    assert_eq!(
        rec.entries["cluster/catalog"].state["snapshotIdentifier"],
        cluster_snapshot.as_str()
    );

    // Someone starts both again within the same cycle; a re-run finds the
    // snapshots of this cycle and still stops both.
    client
        .start_db_instance()
        .db_instance_identifier("orders-db")
        .send()
        .await
        .unwrap();
    client
        .start_db_cluster()
        .db_cluster_identifier("catalog")
        .send()
        .await
        .unwrap();
    shutdown(&ex, &store, &params, cycle).await;
    assert_eq!(instance_status(&client, "orders-db").await, "stopped");
    assert_eq!(cluster_status(&client, "catalog").await, "stopped");
    let manual = client
        .describe_db_snapshots()
        .db_instance_identifier("orders-db")
        .snapshot_type("manual")
        .send()
        .await
        .unwrap();
    assert_eq!(manual.db_snapshots().len(), 1);
}

#[tokio::test]
async fn repeated_shutdown_keeps_the_first_observation() {
    let server = moto().await;
    let client = Client::new(&sdk_config(server.endpoint()).await);
    create_instance(&client, "orders-db", &[]).await;
    create_cluster(&client, "catalog", &["catalog-1"], &[]).await;
    let ex = typed(executor(&client));
    let store = MemoryRestoreStore::new();
    let params = json!({
        "selector": {"instanceIds": ["orders-db"], "clusterIds": ["catalog"]},
        "awaitCompletion": no_await(),
    });

    let first_report = shutdown(&ex, &store, &params, "c1").await;
    assert_eq!(first_report.recorded.len(), 2);
    let first = record(&store).await;
    let second_report = shutdown(&ex, &store, &params, "c1").await;
    assert!(second_report.recorded.is_empty());
    assert_eq!(record(&store).await.entries, first.entries);
    // A later cycle while still asleep (its wake-up failed) keeps them too.
    shutdown(&ex, &store, &params, "c2").await;
    assert_eq!(record(&store).await.entries, first.entries);
}

struct MotoInstanceFixture {
    client: Client,
    id: &'static str,
}

#[async_trait]
impl ConformanceFixture for MotoInstanceFixture {
    async fn setup(&self) -> Result<Value, String> {
        let status = self
            .client
            .describe_db_instances()
            .db_instance_identifier(self.id)
            .send()
            .await
            .map_err(|e| e.to_string())?
            .db_instances()[0]
            .db_instance_status()
            .unwrap_or_default()
            .to_string();
        if status == "stopped" {
            self.client
                .start_db_instance()
                .db_instance_identifier(self.id)
                .send()
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(json!({"selector": {"instanceIds": [self.id]}, "awaitCompletion": {"timeout": "1m"}}))
    }

    async fn observe(&self) -> Result<Value, String> {
        let out = self
            .client
            .describe_db_instances()
            .db_instance_identifier(self.id)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = out.db_instances()[0]
            .db_instance_status()
            .unwrap_or_default();
        Ok(json!({ self.id: status }))
    }

    async fn wake_behind_back(&self) -> Result<(), String> {
        self.client
            .start_db_instance()
            .db_instance_identifier(self.id)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

#[tokio::test]
async fn conformance_kit_passes() {
    let server = moto().await;
    let client = Client::new(&sdk_config(server.endpoint()).await);
    create_instance(&client, "conformance-db", &[]).await;
    let ex = executor(&client);
    let fixture = MotoInstanceFixture {
        client: client.clone(),
        id: "conformance-db",
    };
    run_conformance(typed(ex), &fixture).await.assert_passed();
}

#[tokio::test]
async fn describe_is_paginated() {
    let server = moto().await;
    let proxy = proxy(server.endpoint(), 0.0).await;
    let client = Client::new(&sdk_config(proxy.endpoint()).await);
    let ids: Vec<String> = (0..25).map(|i| format!("db-{i:02}")).collect();
    for id in &ids {
        create_instance(&client, id, &[("env", "dev")]).await;
    }
    let ex = typed(executor(&client).with_page_size(20));
    let store = MemoryRestoreStore::new();
    let params = json!({"selector": {"tags": {"env": "dev"}}, "awaitCompletion": no_await()});
    proxy.reset_counts();
    shutdown(&ex, &store, &params, "c1").await;
    assert_eq!(record(&store).await.entries.len(), 25);
    assert_eq!(proxy.count("rds", "DescribeDBInstances").total(), 2);
    assert_eq!(proxy.count("rds", "StopDBInstance").total(), 25);
    for id in &ids {
        assert_eq!(instance_status(&client, id).await, "stopped");
    }
}

#[tokio::test]
async fn completes_under_twenty_percent_injected_faults() {
    let server = moto().await;
    let proxy = proxy(server.endpoint(), 0.0).await;
    let client = Client::new(&sdk_config(proxy.endpoint()).await);
    let ids: Vec<String> = (0..6).map(|i| format!("db-{i}")).collect();
    for id in &ids {
        create_instance(&client, id, &[("env", "dev")]).await;
    }
    create_cluster(&client, "catalog", &["catalog-1"], &[("env", "dev")]).await;
    let ex = typed(executor(&client));
    let store = MemoryRestoreStore::new();
    let params = json!({
        "selector": {"tags": {"env": "dev"}},
        "snapshotBeforeStop": true,
        "awaitCompletion": {"timeout": "2m"},
    });

    proxy.set_rate(0.2);
    run_shutdown(
        ex.as_ref(),
        &ctx(Operation::Shutdown, "c1"),
        &params,
        &store,
        &policy(10),
    )
    .await
    .expect("shutdown under faults");
    proxy.set_rate(0.0);
    for id in &ids {
        assert_eq!(instance_status(&client, id).await, "stopped");
    }
    assert_eq!(cluster_status(&client, "catalog").await, "stopped");
    assert_eq!(record(&store).await.entries.len(), 7);

    proxy.set_rate(0.2);
    run_wakeup(
        ex.as_ref(),
        &ctx(Operation::Wakeup, "c1"),
        &params,
        &store,
        &policy(10),
    )
    .await
    .expect("wakeup under faults");
    proxy.set_rate(0.0);
    for id in &ids {
        assert_eq!(instance_status(&client, id).await, "available");
    }
    assert_eq!(cluster_status(&client, "catalog").await, "available");
    assert!(record(&store).await.is_empty());
    assert!(proxy.injected_total() > 0);
}

/// RDS starts stopped databases by itself after 7 days: enforcement stops
/// the recorded instance and cluster again, never an unrecorded database.
#[tokio::test]
async fn enforce_stops_recorded_databases_started_behind_the_plans_back() {
    let server = moto().await;
    let proxy = proxy(server.endpoint(), 0.0).await;
    let client = Client::new(&sdk_config(proxy.endpoint()).await);
    create_instance(&client, "orders-db", &[("env", "dev")]).await;
    create_instance(&client, "idle-db", &[("env", "dev")]).await;
    create_cluster(&client, "catalog", &["catalog-1"], &[("env", "dev")]).await;
    client
        .stop_db_instance()
        .db_instance_identifier("idle-db")
        .send()
        .await
        .unwrap();
    let ex = typed(executor(&client));
    assert!(ex.supports_enforce());
    let store = MemoryRestoreStore::new();
    let params = json!({
        "selector": {"tags": {"env": "dev"}},
        "awaitCompletion": {"timeout": "1m"},
    });
    shutdown(&ex, &store, &params, "c1").await;
    let before = record(&store).await;
    assert_eq!(keys(&before), ["cluster/catalog", "instance/orders-db"]);

    // The automatic restart after 7 days (and a hand-started idle-db, which
    // the plan never stopped).
    for id in ["orders-db", "idle-db"] {
        client
            .start_db_instance()
            .db_instance_identifier(id)
            .send()
            .await
            .unwrap();
    }
    client
        .start_db_cluster()
        .db_cluster_identifier("catalog")
        .send()
        .await
        .unwrap();
    assert_eq!(cluster_status(&client, "catalog").await, "available");
    proxy.reset_counts();
    let report = run_enforce(
        ex.as_ref(),
        &ctx(Operation::Shutdown, "c1"),
        &params,
        &store,
        &policy(2),
    )
    .await
    .expect("enforce");
    assert_eq!(
        report.rehibernated,
        ["cluster/catalog", "instance/orders-db"]
    );
    assert_eq!(instance_status(&client, "orders-db").await, "stopped");
    assert_eq!(cluster_status(&client, "catalog").await, "stopped");
    assert_eq!(
        instance_status(&client, "idle-db").await,
        "available",
        "a database outside the restore record is never touched"
    );
    assert_eq!(proxy.count("rds", "StopDBInstance").total(), 1);
    assert_eq!(proxy.count("rds", "StopDBCluster").total(), 1);
    assert_eq!(
        record(&store).await,
        before,
        "the record keeps the last known awake state"
    );

    let again = run_enforce(
        ex.as_ref(),
        &ctx(Operation::Shutdown, "c1"),
        &params,
        &store,
        &policy(2),
    )
    .await
    .expect("enforce");
    assert!(again.rehibernated.is_empty());
    assert_eq!(again.checked.len(), 2);
    wakeup(&ex, &store, &params, "c1").await;
    assert_eq!(instance_status(&client, "orders-db").await, "available");
    assert_eq!(cluster_status(&client, "catalog").await, "available");
}
