//! `hibernator webhook` as a process: its serving certificate from a
//! Secret volume at the chart's path, real AdmissionReview round trips over
//! TLS, and SIGTERM. And a runner process that SIGTERM stops mid-wait.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Secret, Volume, VolumeMount};
use kube::Api;
use kube::api::{ObjectMeta, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use super::support::{Child, World, free_port};

fn serving_cert() -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn review(plan: Value) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "0d9c7a3e-1111-4e5b-9c55-2b0f5f6c1a01",
            "kind": {"group": "hibernator.dev", "version": "v1alpha1", "kind": "HibernatePlan"},
            "resource": {"group": "hibernator.dev", "version": "v1alpha1", "resource": "hibernateplans"},
            "name": "nightly", "namespace": "team-a", "operation": "CREATE",
            "userInfo": {"username": "admin"},
            "object": plan, "oldObject": null, "dryRun": false,
        }
    })
}

fn plan(timezone: &str) -> Value {
    json!({
        "apiVersion": "hibernator.dev/v1alpha1", "kind": "HibernatePlan",
        "metadata": {"name": "nightly", "namespace": "team-a"},
        "spec": {
            "schedule": {"timezone": timezone, "offHours": [
                {"start": "20:00", "end": "06:00", "daysOfWeek": ["MON", "TUE", "WED", "THU", "FRI"]},
            ]},
            "execution": {"strategy": {"type": "Sequential"}},
            "targets": [{"name": "a", "type": "ec2", "connectorRef": {"kind": "CloudProvider", "name": "aws"},
                "parameters": {"selector": {"tags": {"env": "dev"}}}}],
        },
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_process_answers_admission_reviews_and_stops_on_sigterm() {
    let world = World::start("proc-webhook").await;
    let (cert, key) = serving_cert();
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some("hibernator-webhook-cert".into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([
            ("tls.crt".into(), ByteString(cert.clone().into_bytes())),
            ("tls.key".into(), ByteString(key.into_bytes())),
        ])),
        ..Default::default()
    };
    Api::<Secret>::namespaced(world.cluster.client(), &world.ns())
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let port = free_port();
    let volumes: Vec<Volume> = serde_json::from_value(json!([
        {"name": "admission-certs", "secret": {"secretName": "hibernator-webhook-cert"}},
    ]))
    .unwrap();
    let mounts: Vec<VolumeMount> = serde_json::from_value(json!([
        {"name": "admission-certs", "mountPath": "/tmp/k8s-webhook-server/serving-certs", "readOnly": true},
    ]))
    .unwrap();
    // The chart's `hibernator.webhookArgs`.
    let args = vec![
        "webhook".to_string(),
        "--cert-file=/tmp/k8s-webhook-server/serving-certs/tls.crt".to_string(),
        "--key-file=/tmp/k8s-webhook-server/serving-certs/tls.key".to_string(),
        format!("--port={port}"),
    ];
    let mut webhook: Child = world
        .start_pod(
            "hibernator-webhook",
            "hibernator-controller",
            args,
            volumes,
            mounts,
        )
        .await;
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.as_bytes()).unwrap())
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let url = format!("https://localhost:{port}/validate");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let post = |body: Value| {
        let client = client.clone();
        let url = url.clone();
        async move { client.post(&url).json(&body).send().await }
    };
    let denied = loop {
        match post(review(plan("Mars/Olympus_Mons"))).await {
            Ok(response) => break response,
            Err(e) => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "webhook not serving: {e}; last log lines:\n{}",
                    webhook.tail()
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    assert_eq!(denied.status().as_u16(), 200);
    let denied: Value = denied.json().await.unwrap();
    assert_eq!(
        denied["response"]["uid"],
        "0d9c7a3e-1111-4e5b-9c55-2b0f5f6c1a01"
    );
    assert_eq!(denied["response"]["allowed"], false, "{denied:#}");
    let message = denied["response"]["status"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.contains("spec.schedule.timezone") && message.contains("Mars/Olympus_Mons"),
        "the denial names the field and the value: {message}"
    );

    let allowed: Value = post(review(plan("Europe/Berlin")))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(allowed["response"]["allowed"], true, "{allowed:#}");

    let exit = webhook.terminate().await;
    assert_eq!(exit.code, 0, "{exit:?}");
    world.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_process_stops_on_sigterm_while_it_waits() {
    let world = World::start("proc-runner").await;
    super::cycle::estate(&world).await;
    let ns = world.ns();
    // The Deployment reports ready replicas that no controller will ever
    // take away in-process: the runner's shutdown waits for them.
    Api::<Deployment>::namespaced(world.cluster.client(), &ns)
        .patch_status(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"replicas": 2, "readyReplicas": 2}})),
        )
        .await
        .unwrap();
    let plan: hibernator_core::types::HibernatePlan = serde_json::from_value(json!({
        "apiVersion": "hibernator.dev/v1alpha1", "kind": "HibernatePlan",
        "metadata": {"name": "nightly"},
        "spec": {
            "schedule": {"timezone": "UTC", "offHours": [
                {"start": "20:00", "end": "06:00", "daysOfWeek": ["MON"]}]},
            "execution": {"strategy": {"type": "Sequential"}},
            "targets": [{"name": "workloads", "type": "workloadscaler",
                "connectorRef": {"kind": "K8SCluster", "name": "here"},
                "parameters": {"includedGroups": ["deployments"],
                    "namespace": {"literals": [ns]},
                    "workloadSelector": {"matchLabels": {"tier": "web"}},
                    "awaitCompletion": {"enabled": true, "timeout": "10m"}}}],
        },
    }))
    .unwrap();
    Api::<hibernator_core::types::HibernatePlan>::namespaced(world.cluster.client(), &ns)
        .create(&PostParams::default(), &plan)
        .await
        .unwrap();
    let args = vec![
        "runner".to_string(),
        format!("--namespace={ns}"),
        "--plan=nightly".to_string(),
        "--target=workloads".to_string(),
        "--operation=shutdown".to_string(),
        "--execution-id=exec-sigterm".to_string(),
        "--cycle-id=cycle-sigterm".to_string(),
    ];
    let mut runner = world
        .start_pod("runner", "hibernator-runner", args, Vec::new(), Vec::new())
        .await;
    // Wait until it has scaled the Deployment down (and so is waiting).
    let deployments = Api::<Deployment>::namespaced(world.cluster.client(), &ns);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let web = deployments.get("web").await.unwrap();
        if web.spec.and_then(|s| s.replicas) == Some(0) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline && runner.process.is_running(),
            "the runner did not scale the Deployment down; last log lines:\n{}",
            runner.tail()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        runner.process.is_running(),
        "the runner waits for the pods to go"
    );
    let exit = runner.terminate().await;
    assert_ne!(
        exit.code, 0,
        "an interrupted shutdown is no success: {exit:?}"
    );
    world.cleanup().await;
}
