//! This crate's `custom-hibernator` binary as the processes of an
//! installation: `validate` on the command line, the controller as a Pod,
//! one runner process per Job. A DAG plan pauses Argo CD auto-sync before
//! the workloadscaler scales the shop down, across both boundaries of a
//! window on the real wall clock, and everything comes back exactly.

use std::time::Duration;

use hibernator_core::types::{HibernatePlan, PlanPhase};
use hibernator_testkit::process::{Child, ProcessConfig, ProcessWorld, next_window, wait_phase};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, DynamicObject, PostParams};
use kube::core::ApiResource;
use serde_json::{Value, json};

use super::support::{api, application, application_crd, put, sync_policies};

/// The image name Pods and runner Jobs use; the kubelet maps it to this
/// crate's binary.
const IMAGE: &str = "custom-hibernator-under-test:dev";
/// On a real cluster: the image of this binary runner Jobs run there.
const IMAGE_ENV: &str = "HIBERNATOR_TEST_CUSTOM_IMAGE";

fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_custom-hibernator")
}

/// The shop: a K8SCluster reaching this cluster with the runner's in-cluster
/// config, two Applications with automated sync (one selected), and the
/// Deployment they deploy.
async fn estate(world: &ProcessWorld) {
    let client = world.cluster.client();
    let ns = world.ns();
    world.cluster.ensure_crd(&application_crd()).await.unwrap();
    let clusters = ApiResource {
        group: "hibernator.dev".into(),
        version: "v1alpha1".into(),
        api_version: "hibernator.dev/v1alpha1".into(),
        kind: "K8SCluster".into(),
        plural: "k8sclusters".into(),
    };
    let here: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "hibernator.dev/v1alpha1", "kind": "K8SCluster",
        "metadata": {"name": "here"}, "spec": {"k8s": {"inCluster": true}},
    }))
    .unwrap();
    Api::<DynamicObject>::namespaced_with(client.clone(), &ns, &clusters)
        .create(&PostParams::default(), &here)
        .await
        .unwrap();
    let apps = api(&client, &ns);
    put(
        &apps,
        &application(
            "shop",
            json!({"env": "dev"}),
            json!({"automated": {"prune": true, "selfHeal": true}, "syncOptions": ["CreateNamespace=true"]}),
        ),
    )
    .await;
    put(
        &apps,
        &application(
            "payments",
            json!({"env": "prod"}),
            json!({"automated": {"selfHeal": true}}),
        ),
    )
    .await;
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "shop", "labels": {"app": "shop"}},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "shop"}},
            "template": {"metadata": {"labels": {"app": "shop"}},
                "spec": {"containers": [{"name": "shop", "image": "nginx"}]}}},
    }))
    .unwrap();
    Api::<Deployment>::namespaced(client, &ns)
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();
}

/// Auto-sync paused first, then the workloads; its window starts at the next
/// minute.
fn plan(ns: &str, name: &str, gitops_params: Value) -> (Value, chrono::DateTime<chrono::Utc>) {
    let (start, end, at) = next_window(Duration::from_secs(8));
    let plan = json!({
        "apiVersion": "hibernator.dev/v1alpha1", "kind": "HibernatePlan",
        "metadata": {"name": name},
        "spec": {
            "schedule": {"timezone": "UTC", "offHours": [
                {"start": start, "end": end,
                 "daysOfWeek": ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"]},
            ]},
            "execution": {"strategy": {"type": "DAG", "dependencies": [
                {"from": "gitops", "to": "workloads"},
            ]}},
            "behavior": {"mode": "Strict", "retries": 0},
            "targets": [
                {"name": "gitops", "type": "argocd-autosync",
                 "connectorRef": {"kind": "K8SCluster", "name": "here"},
                 "parameters": gitops_params},
                {"name": "workloads", "type": "workloadscaler",
                 "connectorRef": {"kind": "K8SCluster", "name": "here"},
                 "parameters": {"includedGroups": ["deployments"],
                    "namespace": {"literals": [ns]},
                    "workloadSelector": {"matchLabels": {"app": "shop"}},
                    "awaitCompletion": {"enabled": false}}},
            ],
        },
    });
    (plan, at)
}

async fn replicas(world: &ProcessWorld) -> Option<i32> {
    Api::<Deployment>::namespaced(world.cluster.client(), &world.ns())
        .get("shop")
        .await
        .unwrap()
        .spec
        .and_then(|s| s.replicas)
}

/// `custom-hibernator validate` knows the custom type: good parameters
/// pass, bad ones are named.
fn validate_on_the_command_line(ns: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plan.yaml");
    let run = |gitops: Value| {
        let (plan, _) = plan(ns, "check", gitops);
        std::fs::write(&file, serde_json::to_string(&plan).unwrap()).unwrap();
        let out = std::process::Command::new(binary())
            .args(["validate", "--output", "json"])
            .arg(&file)
            .output()
            .unwrap();
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        (out.status.code(), report)
    };
    let (code, report) = run(json!({"namespace": ns, "applications": ["shop"]}));
    assert_eq!(
        (code, &report["valid"]),
        (Some(0), &json!(true)),
        "{report}"
    );
    let (code, report) = run(json!({"namespace": ns, "applications": ["Shop"], "selector": {}}));
    assert_eq!(code, Some(1), "{report}");
    let fields: Vec<&str> = report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert!(
        fields.contains(&"spec.targets[0].parameters")
            && fields.contains(&"spec.targets[0].parameters.applications[0]"),
        "{report}"
    );
}

/// The controller marks a plan with bad `argocd-autosync` parameters
/// invalid, naming the field.
async fn invalid_plans_are_marked(world: &ProcessWorld, controller: &Child) {
    let plans: Api<HibernatePlan> = Api::namespaced(world.cluster.client(), &world.ns());
    let (bad, _) = plan(&world.ns(), "broken", json!({"namespace": world.ns()}));
    let bad: HibernatePlan = serde_json::from_value(bad).unwrap();
    plans.create(&PostParams::default(), &bad).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let plan = plans.get("broken").await.unwrap();
        let invalid = plan.status.as_ref().and_then(|s| {
            s.conditions
                .iter()
                .find(|c| c.reason == "InvalidSpec")
                .map(|c| c.message.clone())
        });
        if let Some(message) = invalid {
            assert!(
                message.contains("spec.targets[0].parameters")
                    && message.contains("applications or selector"),
                "{message}"
            );
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "plan broken was not marked invalid: {:#?}\n{}",
            plan.status,
            controller.tail()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_custom_binary_hibernates_and_wakes_argocd_applications_as_processes() {
    let config = ProcessConfig::new(IMAGE, binary());
    let config = ProcessConfig {
        real_image_env: IMAGE_ENV.to_string(),
        ..config
    };
    let world = ProcessWorld::start("custom-operator", config)
        .await
        .unwrap();
    let ns = world.ns();
    validate_on_the_command_line(&ns);
    estate(&world).await;
    let apps = api(&world.cluster.client(), &ns);
    let before = sync_policies(&apps).await;
    let plans: Api<HibernatePlan> = Api::namespaced(world.cluster.client(), &ns);
    let (nightly, start) = plan(
        &ns,
        "nightly",
        json!({"namespace": ns, "selector": {"matchLabels": {"env": "dev"}}}),
    );
    let nightly: HibernatePlan = serde_json::from_value(nightly).unwrap();
    plans
        .create(&PostParams::default(), &nightly)
        .await
        .unwrap();

    let mut controller = world
        .start_controller(Vec::new(), Vec::new(), Vec::new())
        .await
        .unwrap();
    wait_phase(
        &plans,
        "nightly",
        PlanPhase::Active,
        Duration::from_secs(60),
        &controller,
    )
    .await;
    invalid_plans_are_marked(&world, &controller).await;

    // The window's start: auto-sync paused, then the shop scaled down, each
    // by a runner process of this binary.
    let until_start = (start - chrono::Utc::now()).to_std().unwrap_or_default();
    let hibernated = wait_phase(
        &plans,
        "nightly",
        PlanPhase::Hibernated,
        until_start + Duration::from_secs(90),
        &controller,
    )
    .await;
    let paused = sync_policies(&apps).await;
    assert_eq!(
        paused["shop"],
        json!({"syncOptions": ["CreateNamespace=true"]}),
        "{:#?}",
        hibernated.status
    );
    assert_eq!(
        paused["payments"], before["payments"],
        "not selected, untouched"
    );
    assert_eq!(replicas(&world).await, Some(0));
    let executors: Vec<&str> = hibernated
        .status
        .as_ref()
        .unwrap()
        .executions
        .iter()
        .map(|e| e.executor.as_str())
        .collect();
    assert!(executors.contains(&"argocd-autosync"), "{executors:?}");

    // The window's end: the shop first, then auto-sync, exactly as before.
    wait_phase(
        &plans,
        "nightly",
        PlanPhase::Active,
        Duration::from_secs(150),
        &controller,
    )
    .await;
    assert_eq!(sync_policies(&apps).await, before);
    assert_eq!(replicas(&world).await, Some(3));
    world.assert_no_job_ran_twice();

    let exit = controller.terminate().await;
    assert_eq!(exit.code, 0, "controller exit after SIGTERM: {exit:?}");
    world.cleanup().await.unwrap();
}
