//! The `ec2` executor against moto.

// Test helpers outside #[test] functions unwrap like the tests themselves.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::{
    Filter, HibernationOptionsRequest, InstanceStateName, ResourceType, Tag, TagSpecification,
};
use hibernator_core::executor::testing::{ConformanceFixture, run_conformance};
use hibernator_core::executor::{category, run_enforce, run_shutdown, run_wakeup, typed};
use hibernator_core::restore::{MemoryRestoreStore, RestoreStore};
use hibernator_core::types::Operation;
use hibernator_executors::aws::ec2::describe::{ID_FILTER_BATCH, MUTATE_BATCH};
use hibernator_executors::aws::ec2::{Ec2Executor, resource_key};
use hibernator_executors::ec2::{ASG_TAG, KARPENTER_TAG};
use hibernator_testkit::fault_proxy::{FaultConfig, FaultProxy};
use serde_json::{Value, json};

mod pagination;

use crate::support::{POLL, TARGET, ctx, fast_retry, moto, record, sdk_config};

const AMI: &str = "ami-12c6146b";

async fn client(endpoint: &str) -> Client {
    Client::new(&sdk_config(endpoint).await)
}

fn executor(client: &Client) -> Ec2Executor {
    Ec2Executor::from_client(client.clone()).with_poll_interval(POLL)
}

/// Launches `count` instances with `tags`; returns their ids.
async fn launch(
    client: &Client,
    count: i32,
    tags: &[(&str, &str)],
    hibernation: bool,
) -> Vec<String> {
    let mut call = client
        .run_instances()
        .image_id(AMI)
        .instance_type("t3.micro".into())
        .min_count(count)
        .max_count(count);
    if !tags.is_empty() {
        call = call.tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Instance)
                .set_tags(Some(
                    tags.iter()
                        .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
                        .collect(),
                ))
                .build(),
        );
    }
    if hibernation {
        call = call.hibernation_options(
            HibernationOptionsRequest::builder()
                .configured(true)
                .build(),
        );
    }
    let out = call.send().await.expect("run_instances");
    out.instances()
        .iter()
        .map(|i| i.instance_id().unwrap().to_string())
        .collect()
}

async fn launch_one(client: &Client, tags: &[(&str, &str)]) -> String {
    launch(client, 1, tags, false).await.remove(0)
}

/// Current state of every instance moto knows, by id.
async fn all_states(client: &Client) -> BTreeMap<String, String> {
    let out = client.describe_instances().send().await.expect("describe");
    out.reservations()
        .iter()
        .flat_map(|r| r.instances())
        .map(|i| {
            (
                i.instance_id().unwrap().to_string(),
                i.state().unwrap().name().unwrap().as_str().to_string(),
            )
        })
        .collect()
}

async fn state_of(client: &Client, id: &str) -> String {
    all_states(client)
        .await
        .remove(id)
        .expect("instance exists")
}

async fn stop_directly(client: &Client, ids: &[String]) {
    client
        .stop_instances()
        .set_instance_ids(Some(ids.to_vec()))
        .send()
        .await
        .expect("stop");
}

fn keys(ids: &[&String]) -> BTreeSet<String> {
    ids.iter().map(|id| resource_key(id)).collect()
}

async fn shutdown(exec: &Ec2Executor, params: &Value, store: &MemoryRestoreStore, cycle: &str) {
    run_shutdown(
        typed(exec.clone()).as_ref(),
        &ctx(Operation::Shutdown, cycle),
        params,
        store,
        &fast_retry(0),
    )
    .await
    .expect("shutdown");
}

async fn wakeup(exec: &Ec2Executor, params: &Value, store: &MemoryRestoreStore, cycle: &str) {
    run_wakeup(
        typed(exec.clone()).as_ref(),
        &ctx(Operation::Wakeup, cycle),
        params,
        store,
        &fast_retry(0),
    )
    .await
    .expect("wakeup");
}

async fn record_keys(store: &MemoryRestoreStore) -> BTreeSet<String> {
    record(store).await.entries.keys().cloned().collect()
}

#[tokio::test]
async fn shutdown_stops_running_instances_and_wakeup_starts_exactly_those() {
    let moto = moto().await;
    let client = client(moto.endpoint()).await;
    let dev = launch(&client, 3, &[("env", "dev")], false).await;
    let parked = launch_one(&client, &[("env", "dev")]).await;
    stop_directly(&client, std::slice::from_ref(&parked)).await;
    let prod = launch_one(&client, &[("env", "prod")]).await;
    let exec = executor(&client);
    let params = json!({"selector": {"tags": {"env": "dev"}}});
    let store = MemoryRestoreStore::new();

    shutdown(&exec, &params, &store, "c1").await;
    let states = all_states(&client).await;
    for id in dev.iter().chain([&parked]) {
        assert_eq!(states[id], "stopped", "{id}");
    }
    assert_eq!(states[&prod], "running");
    let rec = record(&store).await;
    assert_eq!(
        rec.entries.keys().cloned().collect::<BTreeSet<_>>(),
        keys(&dev.iter().collect::<Vec<_>>())
    );
    assert_eq!(
        rec.entries[&resource_key(&dev[0])].state,
        json!({"state": "running", "instanceType": "t3.micro", "hibernated": false})
    );

    wakeup(&exec, &params, &store, "c1").await;
    let states = all_states(&client).await;
    for id in &dev {
        assert_eq!(states[id], "running", "{id}");
    }
    assert_eq!(
        states[&parked], "stopped",
        "an instance stopped by its owner stays stopped"
    );
    assert_eq!(states[&prod], "running");
    assert!(record(&store).await.is_empty());
}

#[tokio::test]
async fn selection_by_instance_ids_skips_managed_instances() {
    let moto = moto().await;
    let client = client(moto.endpoint()).await;
    let a = launch_one(&client, &[]).await;
    let b = launch_one(&client, &[]).await;
    let asg = launch_one(&client, &[(ASG_TAG, "web-asg")]).await;
    let karpenter = launch_one(&client, &[(KARPENTER_TAG, "default")]).await;
    let exec = executor(&client);
    let params = json!({"selector": {"instanceIds": [a, asg, karpenter, "i-0123456789abcdef0"]}});
    let store = MemoryRestoreStore::new();
    shutdown(&exec, &params, &store, "c1").await;
    let states = all_states(&client).await;
    assert_eq!(states[&a], "stopped");
    for id in [&b, &asg, &karpenter] {
        assert_eq!(states[id], "running", "{id}");
    }
    assert_eq!(record_keys(&store).await, keys(&[&a]));
    wakeup(&exec, &params, &store, "c1").await;
    assert_eq!(state_of(&client, &a).await, "running");
}

#[tokio::test]
async fn selection_by_tag_selector_applies_notin_and_doesnotexist() {
    let moto = moto().await;
    let client = client(moto.endpoint()).await;
    let web = launch_one(&client, &[("env", "dev"), ("team", "web")]).await;
    let no_team = launch_one(&client, &[("env", "dev")]).await;
    let core = launch_one(&client, &[("env", "dev"), ("team", "core")]).await;
    let keep = launch_one(&client, &[("env", "dev"), ("keep-awake", "yes")]).await;
    let prod = launch_one(&client, &[("env", "prod"), ("team", "web")]).await;
    let asg = launch_one(&client, &[("env", "dev"), (ASG_TAG, "g")]).await;
    let exec = executor(&client);
    let params = json!({"selector": {"tagSelector": {
    "matchTags": {"env": "dev"},
    "matchExpressions": [
        {"key": "team", "operator": "NotIn", "values": ["core"]},
        {"key": "keep-awake", "operator": "DoesNotExist"}
    ]}}});
    let store = MemoryRestoreStore::new();
    shutdown(&exec, &params, &store, "c1").await;
    let states = all_states(&client).await;
    for id in [&web, &no_team] {
        assert_eq!(states[id], "stopped", "{id}");
    }
    for id in [&core, &keep, &prod, &asg] {
        assert_eq!(states[id], "running", "{id}");
    }
    assert_eq!(record_keys(&store).await, keys(&[&web, &no_team]));

    // In + Exists go to the server as filters and still select correctly.
    let params = json!({"selector": {"tagSelector": {"matchExpressions": [
        {"key": "team", "operator": "In", "values": ["core", "web"]},
        {"key": "env", "operator": "Exists"}]}}});
    let store = MemoryRestoreStore::new();
    shutdown(&exec, &params, &store, "c2").await;
    assert_eq!(record_keys(&store).await, keys(&[&core, &prod]));
    assert_eq!(state_of(&client, &keep).await, "running");
}

#[tokio::test]
async fn repeated_shutdown_in_a_cycle_keeps_the_first_observation() {
    let moto = moto().await;
    let client = client(moto.endpoint()).await;
    let ids = launch(&client, 2, &[("env", "dev")], false).await;
    let exec = executor(&client);
    let params = json!({"selector": {"tags": {"env": "dev"}}});
    let store = MemoryRestoreStore::new();
    shutdown(&exec, &params, &store, "c1").await;
    let first = record(&store).await;
    let report = run_shutdown(
        typed(exec.clone()).as_ref(),
        &ctx(Operation::Shutdown, "c1"),
        &params,
        &store,
        &fast_retry(0),
    )
    .await
    .unwrap();
    assert!(report.recorded.is_empty(), "{:?}", report.recorded);
    assert_eq!(record(&store).await.entries, first.entries);
    assert_eq!(first.entries.len(), 2);
    // A later cycle while still asleep keeps the entries too.
    shutdown(&exec, &params, &store, "c2").await;
    assert_eq!(record(&store).await.entries, first.entries);
    wakeup(&exec, &params, &store, "c2").await;
    for id in &ids {
        assert_eq!(state_of(&client, id).await, "running");
    }
}

struct Fixture {
    client: Client,
    ids: Mutex<Vec<String>>,
    parked: Mutex<Option<String>>,
}

#[async_trait]
impl ConformanceFixture for Fixture {
    async fn setup(&self) -> Result<Value, String> {
        let existing = self.ids.lock().unwrap().clone();
        let ids = if existing.is_empty() {
            let ids = launch(&self.client, 3, &[("suite", "conformance")], false).await;
            let parked = launch_one(&self.client, &[("suite", "conformance")]).await;
            *self.parked.lock().unwrap() = Some(parked);
            *self.ids.lock().unwrap() = ids.clone();
            ids
        } else {
            existing
        };
        let states = all_states(&self.client).await;
        let stopped: Vec<String> = ids
            .iter()
            .filter(|id| states[*id] != "running")
            .cloned()
            .collect();
        if !stopped.is_empty() {
            self.client
                .start_instances()
                .set_instance_ids(Some(stopped))
                .send()
                .await
                .map_err(|e| e.to_string())?;
        }
        let parked = self.parked.lock().unwrap().clone().unwrap();
        if states[&parked] != "stopped" {
            stop_directly(&self.client, &[parked]).await;
        }
        Ok(json!({"selector": {"tags": {"suite": "conformance"}},
                  "awaitCompletion": {"enabled": true, "timeout": "1m"}}))
    }

    async fn observe(&self) -> Result<Value, String> {
        let states = all_states(&self.client).await;
        Ok(serde_json::to_value(states).map_err(|e| e.to_string())?)
    }

    async fn wake_behind_back(&self) -> Result<(), String> {
        let ids = self.ids.lock().unwrap().clone();
        self.client
            .start_instances()
            .set_instance_ids(Some(ids))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

#[tokio::test]
async fn passes_the_conformance_kit() {
    let moto = moto().await;
    let client = client(moto.endpoint()).await;
    let fixture = Fixture {
        client: client.clone(),
        ids: Mutex::default(),
        parked: Mutex::default(),
    };
    let report = run_conformance(typed(executor(&client)), &fixture).await;
    println!("{report}");
    report.assert_passed();
}

#[tokio::test]
async fn hibernate_uses_hibernation_only_where_configured() {
    let moto = moto().await;
    let client = client(moto.endpoint()).await;
    let capable = launch(&client, 1, &[("env", "dev")], true).await.remove(0);
    let plain = launch_one(&client, &[("env", "dev")]).await;
    let described = client
        .describe_instances()
        .instance_ids(&capable)
        .send()
        .await
        .unwrap();
    let configured = described.reservations()[0].instances()[0]
        .hibernation_options()
        .and_then(|h| h.configured());
    println!("moto reports HibernationOptions.Configured = {configured:?}");
    let exec = executor(&client);
    let params = json!({"selector": {"tags": {"env": "dev"}}, "hibernate": true});
    let store = MemoryRestoreStore::new();
    shutdown(&exec, &params, &store, "c1").await;
    let rec = record(&store).await;
    assert_eq!(state_of(&client, &capable).await, "stopped");
    assert_eq!(state_of(&client, &plain).await, "stopped");
    assert_eq!(
        rec.entries[&resource_key(&plain)].state["hibernated"],
        json!(false)
    );
    // What the executor decides follows what EC2 reports about the instance.
    assert_eq!(
        rec.entries[&resource_key(&capable)].state["hibernated"],
        json!(configured == Some(true))
    );
    wakeup(&exec, &params, &store, "c1").await;
    assert_eq!(state_of(&client, &capable).await, "running");
    assert_eq!(state_of(&client, &plain).await, "running");
}

#[tokio::test]
async fn survives_injected_faults() {
    let moto = moto().await;
    let direct = client(moto.endpoint()).await;
    let ids = launch(&direct, 20, &[("env", "faulty")], false).await;
    let proxy = FaultProxy::start(
        moto.endpoint(),
        FaultConfig {
            rate: 0.2,
            seed: 42,
        },
    )
    .await
    .unwrap();
    let exec = executor(&client(proxy.endpoint()).await);
    let params = json!({"selector": {"tags": {"env": "faulty"}}});
    let store = MemoryRestoreStore::new();
    let policy = fast_retry(10);
    run_shutdown(
        typed(exec.clone()).as_ref(),
        &ctx(Operation::Shutdown, "c1"),
        &params,
        &store,
        &policy,
    )
    .await
    .expect("shutdown despite faults");
    let states = all_states(&direct).await;
    assert!(ids.iter().all(|id| states[id] == "stopped"), "{states:?}");
    assert_eq!(record(&store).await.entries.len(), 20);
    run_wakeup(
        typed(exec.clone()).as_ref(),
        &ctx(Operation::Wakeup, "c1"),
        &params,
        &store,
        &policy,
    )
    .await
    .expect("wake-up despite faults");
    let states = all_states(&direct).await;
    assert!(ids.iter().all(|id| states[id] == "running"), "{states:?}");
    assert!(record(&store).await.is_empty());
    println!("faults injected: {}", proxy.injected_total());
    assert!(proxy.injected_total() > 0);
}

#[tokio::test]
async fn call_budget_for_500_instances() {
    let moto = moto().await;
    let direct = client(moto.endpoint()).await;
    let mut ids = Vec::new();
    for page in 0..5 {
        let batch = format!("b{page}");
        ids.extend(
            launch(
                &direct,
                100,
                &[("env", "load"), ("batch", batch.as_str())],
                false,
            )
            .await,
        );
    }
    launch(&direct, 10, &[("env", "other")], false).await;
    let proxy = FaultProxy::start(moto.endpoint(), FaultConfig { rate: 0.0, seed: 1 })
        .await
        .unwrap();
    let exec = executor(&client(proxy.endpoint()).await);
    let params = json!({"selector": {"tagSelector": {
        "matchTags": {"env": "load"},
        "matchExpressions": [{"key": "batch", "operator": "In", "values": ["b0", "b1", "b2", "b3", "b4"]}]}}});
    let store = MemoryRestoreStore::new();
    shutdown(&exec, &params, &store, "c1").await;
    let id_batches = 500_u64.div_ceil(ID_FILTER_BATCH as u64);
    let mutate_batches = 500_u64.div_ceil(MUTATE_BATCH as u64);
    let describe = proxy.count("ec2", "DescribeInstances").total();
    let stop = proxy.count("ec2", "StopInstances").total();
    println!(
        "shutdown of 500 instances: DescribeInstances={describe} StopInstances={stop} ec2 total={}",
        proxy.service_total("ec2")
    );
    // One tag query, then one poll of the wait (moto stops at once) in id batches.
    assert_eq!(describe, 1 + id_batches);
    assert_eq!(stop, mutate_batches);
    assert_eq!(proxy.service_total("ec2"), describe + stop);
    assert_eq!(record(&store).await.entries.len(), 500);

    proxy.reset_counts();
    wakeup(&exec, &params, &store, "c1").await;
    let describe = proxy.count("ec2", "DescribeInstances").total();
    let start = proxy.count("ec2", "StartInstances").total();
    println!(
        "wake-up of 500 instances: DescribeInstances={describe} StartInstances={start} ec2 total={}",
        proxy.service_total("ec2")
    );
    // States of the recorded ids, then one poll of the wait.
    assert_eq!(describe, 2 * id_batches);
    assert_eq!(start, mutate_batches);
    assert_eq!(proxy.service_total("ec2"), describe + start);
    let states = all_states(&direct).await;
    assert!(ids.iter().all(|id| states[id] == "running"));
}

#[tokio::test]
async fn a_wait_that_cannot_finish_times_out_naming_the_instance() {
    let moto = moto().await;
    let client = client(moto.endpoint()).await;
    let ids = launch(&client, 2, &[("env", "dev")], false).await;
    let exec = executor(&client);
    let params = json!({"selector": {"tags": {"env": "dev"}}});
    let store = MemoryRestoreStore::new();
    shutdown(&exec, &params, &store, "c1").await;
    // One instance is terminated between shutdown and wake-up.
    client
        .terminate_instances()
        .instance_ids(&ids[0])
        .send()
        .await
        .unwrap();

    let err = exec
        .wait_for_state(
            &ctx(Operation::Wakeup, "c1"),
            &ids[..1],
            InstanceStateName::Running,
            Duration::from_millis(50),
        )
        .await
        .unwrap_err();
    assert_eq!(err.category, category::TIMEOUT);
    assert!(err.message.contains(&ids[0]), "{err}");
    assert!(err.message.contains("terminated"), "{err}");

    // The wake-up fails that key with a clear message and restores the other.
    let err = run_wakeup(
        typed(exec.clone()).as_ref(),
        &ctx(Operation::Wakeup, "c1"),
        &params,
        &store,
        &fast_retry(0),
    )
    .await
    .unwrap_err();
    assert_eq!(err.category, category::PARTIAL_RESTORE);
    assert!(err.message.contains(&resource_key(&ids[0])), "{err}");
    assert_eq!(state_of(&client, &ids[1]).await, "running");
    let rec = store.load(TARGET).await.unwrap().unwrap().value;
    assert_eq!(
        rec.entries.keys().cloned().collect::<Vec<_>>(),
        [resource_key(&ids[0])]
    );

    // Filters by id ignore unknown ids instead of failing the call.
    let none = client
        .describe_instances()
        .filters(
            Filter::builder()
                .name("instance-id")
                .values("i-0123456789abcdef0")
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert!(none.reservations().is_empty());
}

#[tokio::test]
async fn enforce_stops_recorded_instances_started_behind_the_plans_back_and_nothing_else() {
    let moto = moto().await;
    let client = client(moto.endpoint()).await;
    let dev = launch(&client, 2, &[("env", "dev")], false).await;
    let parked = launch_one(&client, &[("env", "dev")]).await;
    stop_directly(&client, std::slice::from_ref(&parked)).await;
    let exec = executor(&client);
    let params = json!({"selector": {"tags": {"env": "dev"}}});
    let store = MemoryRestoreStore::new();
    shutdown(&exec, &params, &store, "c1").await;
    let before = record(&store).await;
    assert_eq!(before.entries.len(), 2);

    // Started by hand while the plan is hibernated: both recorded instances
    // and the parked one (same tags, but not in the restore record).
    let all: Vec<String> = dev.iter().chain([&parked]).cloned().collect();
    client
        .start_instances()
        .set_instance_ids(Some(all))
        .send()
        .await
        .unwrap();
    let report = run_enforce(
        typed(exec.clone()).as_ref(),
        &ctx(Operation::Shutdown, "c1"),
        &params,
        &store,
        &fast_retry(0),
    )
    .await
    .unwrap();
    assert_eq!(
        report.rehibernated.iter().cloned().collect::<BTreeSet<_>>(),
        keys(&dev.iter().collect::<Vec<_>>())
    );
    assert_eq!(report.checked.len(), 2);
    let states = all_states(&client).await;
    for id in &dev {
        assert_eq!(states[id], "stopped", "{id} is put back to sleep");
    }
    assert_eq!(
        states[&parked], "running",
        "an instance outside the restore record is never touched"
    );
    assert_eq!(
        record(&store).await,
        before,
        "the record still holds the last known awake state"
    );

    // Nothing drifted: a second check changes nothing.
    let again = run_enforce(
        typed(exec.clone()).as_ref(),
        &ctx(Operation::Shutdown, "c1"),
        &params,
        &store,
        &fast_retry(0),
    )
    .await
    .unwrap();
    assert!(again.rehibernated.is_empty());
    wakeup(&exec, &params, &store, "c1").await;
    for id in &dev {
        assert_eq!(state_of(&client, id).await, "running", "{id}");
    }
}
