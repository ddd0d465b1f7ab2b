//! `scale admission`: round-trip latency of AdmissionReviews through the
//! `hibernator webhook` process, with the chart's arguments and its serving
//! certificate from a Secret volume at the chart's path.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hibernator_testkit::process::{ProcessWorld, free_port};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Secret, Volume, VolumeMount};
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use serde_json::{Value, json};

use super::percentile;

fn review(uid: usize, timezone: &str) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": format!("00000000-0000-4000-8000-{uid:012}"),
            "kind": {"group": "hibernator.dev", "version": "v1alpha1", "kind": "HibernatePlan"},
            "resource": {"group": "hibernator.dev", "version": "v1alpha1", "resource": "hibernateplans"},
            "name": "nightly", "namespace": "team-a", "operation": "CREATE",
            "userInfo": {"username": "admin"},
            "object": {
                "apiVersion": "hibernator.dev/v1alpha1", "kind": "HibernatePlan",
                "metadata": {"name": "nightly", "namespace": "team-a"},
                "spec": {
                    "schedule": {"timezone": timezone, "offHours": [
                        {"start": "20:00", "end": "06:00",
                         "daysOfWeek": ["MON", "TUE", "WED", "THU", "FRI"]},
                        {"start": "00:00", "end": "24:00", "daysOfWeek": ["SAT", "SUN"]},
                    ]},
                    "execution": {"strategy": {"type": "DAG", "dependencies": [
                        {"from": "web", "to": "db"}]}},
                    "targets": [
                        {"name": "web", "type": "workloadscaler",
                         "connectorRef": {"kind": "K8SCluster", "name": "here"},
                         "parameters": {"includedGroups": ["deployments"],
                            "namespace": {"literals": ["team-a"]}}},
                        {"name": "db", "type": "rds",
                         "connectorRef": {"kind": "CloudProvider", "name": "aws"},
                         "parameters": {"selector": {"instanceIds": ["orders"]}}},
                    ],
                },
            },
            "oldObject": null, "dryRun": false,
        }
    })
}

/// Starts the webhook, sends `requests` reviews one after the other, and
/// prints the round-trip percentiles.
pub async fn run(world: &ProcessWorld, requests: usize) -> anyhow::Result<()> {
    let key = rcgen::KeyPair::generate()?;
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])?.self_signed(&key)?;
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some("hibernator-webhook-cert".into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([
            ("tls.crt".into(), ByteString(cert.pem().into_bytes())),
            (
                "tls.key".into(),
                ByteString(key.serialize_pem().into_bytes()),
            ),
        ])),
        ..Default::default()
    };
    Api::<Secret>::namespaced(world.cluster.client(), &world.ns())
        .create(&PostParams::default(), &secret)
        .await?;
    let port = free_port();
    let volumes: Vec<Volume> = serde_json::from_value(json!([
        {"name": "admission-certs", "secret": {"secretName": "hibernator-webhook-cert"}},
    ]))?;
    let mounts: Vec<VolumeMount> = serde_json::from_value(json!([
        {"name": "admission-certs", "mountPath": "/tmp/k8s-webhook-server/serving-certs", "readOnly": true},
    ]))?;
    // the chart's `hibernator.webhookArgs`
    let args = vec![
        "webhook".to_string(),
        "--cert-file=/tmp/k8s-webhook-server/serving-certs/tls.crt".to_string(),
        "--key-file=/tmp/k8s-webhook-server/serving-certs/tls.key".to_string(),
        format!("--port={port}"),
        "--log-format=json".to_string(),
    ];
    let mut webhook = world
        .start_pod(
            "hibernator-webhook",
            "hibernator-controller",
            args,
            volumes,
            mounts,
        )
        .await?;
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.pem().as_bytes())?)
        .timeout(Duration::from_secs(5))
        .build()?;
    let url = format!("https://localhost:{port}/validate");
    let deadline = Instant::now() + Duration::from_secs(60);
    while client
        .post(&url)
        .json(&review(0, "UTC"))
        .send()
        .await
        .is_err()
    {
        if Instant::now() > deadline {
            bail!("webhook not serving; last log lines:\n{}", webhook.tail());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut samples = Vec::with_capacity(requests);
    let mut denied = 0;
    for i in 0..requests {
        let timezone = if i % 2 == 0 {
            "Europe/Berlin"
        } else {
            "Mars/Olympus_Mons"
        };
        let body = review(i + 1, timezone);
        let started = Instant::now();
        let answer: Value = client
            .post(&url)
            .json(&body)
            .send()
            .await
            .context("admission request")?
            .json()
            .await?;
        samples.push(started.elapsed().as_secs_f64() * 1000.0);
        if answer["response"]["allowed"] == false {
            denied += 1;
        }
    }
    samples.sort_by(f64::total_cmp);
    println!(
        "admission round trip ({requests} reviews, {denied} denied): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(&samples, 50.0),
        percentile(&samples, 99.0),
        samples.last().copied().unwrap_or(f64::NAN)
    );
    let exit = webhook.terminate().await;
    println!("webhook exit after SIGTERM: {}", exit.code);
    if denied != requests / 2 {
        bail!("expected {} denials, got {denied}", requests / 2);
    }
    Ok(())
}
