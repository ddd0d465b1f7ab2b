//! Two controller releases split one estate by plan label
//! (`--plan-selector`), each with its own Lease, as two Helm releases with
//! `controller.shard.planSelector` run them: both lead at once, every plan
//! is hibernated by exactly one of them, and a plan that matches neither is
//! never touched.

use std::time::Duration;

use hibernator_core::types::{HibernatePlan, PlanPhase};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::events::v1::Event;
use kube::Api;
use kube::api::{ListParams, PostParams};
use serde_json::json;

use super::cycle::estate;
use super::support::{Child, World, free_port, next_window, wait_phase};

/// A Deployment `web-<shard>` with two replicas.
fn deployment(shard: &str) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": format!("web-{shard}"), "labels": {"shard": shard}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": format!("web-{shard}")}},
            "template": {"metadata": {"labels": {"app": format!("web-{shard}")}},
                "spec": {"containers": [{"name": "web", "image": "nginx"}]}}},
    }))
    .unwrap()
}

/// A plan labelled `hibernator.dev/shard: <shard>` that scales `web-<shard>`
/// to zero in a window starting at `start`.
fn plan(ns: &str, name: &str, shard: &str, start: &str, end: &str) -> HibernatePlan {
    serde_json::from_value(json!({
        "apiVersion": "hibernator.dev/v1alpha1", "kind": "HibernatePlan",
        "metadata": {"name": name, "labels": {"hibernator.dev/shard": shard}},
        "spec": {
            "schedule": {"timezone": "UTC", "offHours": [
                {"start": start, "end": end,
                 "daysOfWeek": ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"]},
            ]},
            "execution": {"strategy": {"type": "Sequential"}},
            "behavior": {"retries": 0},
            "targets": [
                {"name": "web", "type": "workloadscaler",
                 "connectorRef": {"kind": "K8SCluster", "name": "here"},
                 "parameters": {"includedGroups": ["deployments"],
                    "namespace": {"literals": [ns]},
                    "workloadSelector": {"matchLabels": {"shard": shard}},
                    "awaitCompletion": {"enabled": false}}},
            ],
        },
    }))
    .unwrap()
}

/// Starts a controller release: its own Lease, identity and plan selector,
/// no streaming server (runners log to stdout).
async fn release(world: &World, name: &str, selector: &str) -> Child {
    let args: Vec<String> = world
        .controller_args(free_port(), free_port())
        .into_iter()
        .map(|arg| {
            if arg.starts_with("--lease-name=") {
                format!("--lease-name={name}")
            } else {
                arg
            }
        })
        .chain([
            "--stream-transport=none".to_string(),
            format!("--identity={name}"),
            format!("--plan-selector={selector}"),
        ])
        .collect();
    world
        .process
        .start_controller_with(args, Vec::new(), Vec::new())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

async fn replicas(world: &World, name: &str) -> Option<i32> {
    Api::<Deployment>::namespaced(world.cluster.client(), &world.ns())
        .get(name)
        .await
        .unwrap()
        .spec
        .and_then(|s| s.replicas)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_releases_split_the_plans_by_label() {
    let world = World::start("proc-shards").await;
    estate(&world).await;
    let ns = world.ns();
    let client = world.cluster.client();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    for shard in ["a", "b", "c"] {
        deployments
            .create(&PostParams::default(), &deployment(shard))
            .await
            .unwrap();
    }
    let (start, end, _) = next_window(Duration::from_secs(10));
    let plans: Api<HibernatePlan> = Api::namespaced(client.clone(), &ns);
    for (name, shard) in [("alpha", "a"), ("beta", "b"), ("gamma", "c")] {
        plans
            .create(
                &PostParams::default(),
                &plan(&ns, name, shard, &start, &end),
            )
            .await
            .unwrap();
    }

    let mut first = release(&world, "release-a", "hibernator.dev/shard=a").await;
    let mut second = release(&world, "release-b", "hibernator.dev/shard in (b)").await;
    wait_phase(
        &plans,
        "alpha",
        PlanPhase::Hibernated,
        Duration::from_secs(120),
        &first,
    )
    .await;
    wait_phase(
        &plans,
        "beta",
        PlanPhase::Hibernated,
        Duration::from_secs(60),
        &second,
    )
    .await;
    assert_eq!(replicas(&world, "web-a").await, Some(0));
    assert_eq!(replicas(&world, "web-b").await, Some(0));

    // The plan no release selects: no finalizer, no status, its workload up.
    let gamma = plans.get("gamma").await.unwrap();
    assert!(gamma.status.is_none(), "{:#?}", gamma.status);
    assert!(
        gamma.metadata.finalizers.unwrap_or_default().is_empty(),
        "no release took gamma"
    );
    assert_eq!(replicas(&world, "web-c").await, Some(2));

    // Each plan's Events come from its own release only.
    let events = Api::<Event>::namespaced(client.clone(), &ns)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    for (plan, instance) in [("alpha", "release-a"), ("beta", "release-b")] {
        let reporters: Vec<_> = events
            .iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(plan))
            .filter(|e| e.reporting_controller.as_deref() == Some("hibernator-controller"))
            .map(|e| e.reporting_instance.clone().unwrap_or_default())
            .collect();
        assert!(!reporters.is_empty(), "{plan} has Events");
        assert!(
            reporters.iter().all(|r| r == instance),
            "{plan} is reconciled by {instance} only: {reporters:?}"
        );
    }
    assert!(
        !events
            .iter()
            .any(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("gamma")),
        "gamma has no Events"
    );

    for child in [&mut first, &mut second] {
        let exit = child.terminate().await;
        assert_eq!(exit.code, 0, "{exit:?}");
    }
    world.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_selector_stops_the_controller_at_start_up_naming_the_flag() {
    let world = World::start("proc-shard-bad").await;
    let mut child = release(&world, "release-x", "tier in (dev").await;
    let exit = child
        .process
        .wait_timeout(Duration::from_secs(30))
        .await
        .unwrap_or_else(|| panic!("still running; last log lines:\n{}", child.tail()));
    assert_ne!(exit.code, 0, "{exit:?}");
    let tail = child.tail();
    assert!(
        tail.contains("--plan-selector \"tier in (dev\" is not a label selector"),
        "{tail}"
    );
    world.cleanup().await;
}
