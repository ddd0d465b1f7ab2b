//! `scale runner-startup`: the release `hibernator runner` as a process,
//! from its spawn to its first Kubernetes API connection and to its first
//! cloud API connection, through two TCP relays that note when the first
//! bytes arrive (the TLS ClientHello or the HTTP request) and forward them
//! to the testkit API server and to moto.
//!
//! Each run is a whole shutdown of one EC2 target whose selector matches no
//! instance: the runner reads its plan and connector (and the connector's
//! Secret), calls `DescribeInstances` and writes its termination message.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hibernator_core::types::{CloudProvider, HibernatePlan};
use hibernator_testkit::kube::TestCluster;
use hibernator_testkit::moto::MotoServer;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};

use crate::percentile;

/// A TCP relay to `upstream` that records when the first bytes of the
/// first connection after [`Relay::arm`] arrive.
struct Relay {
    port: u16,
    first: Arc<Mutex<Option<Instant>>>,
}

impl Relay {
    async fn start(upstream: String) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let first = Arc::new(Mutex::new(None));
        let seen = first.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let seen = seen.clone();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let mut head = [0u8; 1];
                    let Ok(n) = inbound.peek(&mut head).await else {
                        return;
                    };
                    if n > 0 {
                        let mut first = seen.lock().unwrap_or_else(|e| e.into_inner());
                        first.get_or_insert_with(Instant::now);
                    }
                    let Ok(mut outbound) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                });
            }
        });
        Ok(Self { port, first })
    }

    fn arm(&self) {
        *self.first.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    fn first(&self) -> Option<Instant> {
        *self.first.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `host:port` of an `http(s)://host:port[/...]` URL.
fn authority(url: &str) -> anyhow::Result<(String, String)> {
    let (scheme, rest) = url.split_once("://").context("URL without a scheme")?;
    let authority = rest.split('/').next().unwrap_or(rest);
    Ok((scheme.to_string(), authority.to_string()))
}

async fn fixture(cluster: &TestCluster) -> anyhow::Result<()> {
    let client = cluster.client();
    let ns = cluster.namespace();
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some("aws-keys".into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([
            ("AWS_ACCESS_KEY_ID".into(), ByteString(b"testing".to_vec())),
            (
                "AWS_SECRET_ACCESS_KEY".into(),
                ByteString(b"testing".to_vec()),
            ),
        ])),
        ..Default::default()
    };
    Api::<Secret>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &secret)
        .await?;
    let provider: CloudProvider = serde_json::from_value(json!({
        "apiVersion": "hibernator.dev/v1alpha1", "kind": "CloudProvider",
        "metadata": {"name": "aws-dev"},
        "spec": {"type": "aws", "aws": {
            "accountId": "123456789012", "region": "eu-central-1",
            "auth": {"static": {"secretRef": {"name": "aws-keys"}}},
        }},
    }))?;
    Api::<CloudProvider>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &provider)
        .await?;
    let plan: HibernatePlan = serde_json::from_value(json!({
        "apiVersion": "hibernator.dev/v1alpha1", "kind": "HibernatePlan",
        "metadata": {"name": "startup"},
        "spec": {
            "schedule": {"timezone": "UTC", "offHours": [
                {"start": "20:00", "end": "06:00", "daysOfWeek": ["MON", "TUE", "WED", "THU", "FRI"]}]},
            "behavior": {"retries": 0},
            "targets": [{"name": "batch", "type": "ec2",
                "connectorRef": {"kind": "CloudProvider", "name": "aws-dev"},
                "parameters": {"selector": {"tags": {"role": "none"}}}}],
        },
    }))?;
    Api::<HibernatePlan>::namespaced(client, ns)
        .create(&PostParams::default(), &plan)
        .await?;
    Ok(())
}

/// Runs the runner `runs` times and prints the percentiles.
pub(crate) async fn run(binary: &Path, runs: usize) -> anyhow::Result<()> {
    let cluster = TestCluster::start("startup").await?;
    let Some(server) = cluster.api_server() else {
        bail!("runner-startup needs the testkit API server (unset HIBERNATOR_TEST_KUBECONFIG)");
    };
    for crd in hibernator_core::crd::all() {
        cluster.ensure_crd(&crd).await?;
    }
    fixture(&cluster).await?;
    let moto = MotoServer::start().await?;
    let kubeconfig_text = server.kubeconfig_yaml();
    let server_url = kubeconfig_text
        .lines()
        .find_map(|l| l.trim().strip_prefix("server: "))
        .context("kubeconfig without a server")?
        .to_string();
    let (scheme, api_authority) = authority(&server_url)?;
    let (moto_scheme, moto_authority) = authority(moto.endpoint())?;
    let api_relay = Relay::start(api_authority).await?;
    let cloud_relay = Relay::start(moto_authority).await?;
    let dir = tempfile::tempdir()?;
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        kubeconfig_text.replace(
            &server_url,
            &format!("{scheme}://127.0.0.1:{}", api_relay.port),
        ),
    )?;
    println!(
        "# {} runner runs of {} (one EC2 target, nothing to stop) against the testkit API server and moto",
        runs,
        binary.display()
    );
    let (mut api, mut cloud, mut total) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..runs {
        api_relay.arm();
        cloud_relay.arm();
        let log = dir.path().join(format!("termination-{i}"));
        let mut command = tokio::process::Command::new(binary);
        command
            .arg("runner")
            .env_clear()
            .env("KUBECONFIG", &kubeconfig)
            .env("HIBERNATOR_PLAN", "startup")
            .env("HIBERNATOR_PLAN_NAMESPACE", cluster.namespace())
            .env("HIBERNATOR_TARGET", "batch")
            .env("HIBERNATOR_OPERATION", "shutdown")
            .env("HIBERNATOR_CYCLE_ID", format!("c{i}"))
            .env("HIBERNATOR_TERMINATION_LOG", &log)
            .env(
                "AWS_ENDPOINT_URL",
                format!("{moto_scheme}://127.0.0.1:{}", cloud_relay.port),
            )
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        let spawned = Instant::now();
        let child = command.spawn().context("spawn the runner")?;
        let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .context("the runner did not finish in 60 s")??;
        let finished = spawned.elapsed();
        if !output.status.success() {
            bail!(
                "runner run {i} failed ({}): {}\n{}",
                output.status,
                std::fs::read_to_string(&log).unwrap_or_default(),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let since = |at: Option<Instant>| at.map(|t| t.duration_since(spawned).as_secs_f64() * 1e3);
        let (Some(a), Some(c)) = (since(api_relay.first()), since(cloud_relay.first())) else {
            bail!("run {i}: the runner made no Kubernetes or no cloud connection");
        };
        api.push(a);
        cloud.push(c);
        total.push(finished.as_secs_f64() * 1e3);
    }
    for (what, values) in [
        ("spawn -> first Kubernetes API bytes", &mut api),
        ("spawn -> first cloud API bytes", &mut cloud),
        ("spawn -> exit (whole shutdown)", &mut total),
    ] {
        values.sort_by(f64::total_cmp);
        println!(
            "{what}: p50 {:.1} ms, p99 {:.1} ms, min {:.1} ms, max {:.1} ms",
            percentile(values, 50.0),
            percentile(values, 99.0),
            values.first().copied().unwrap_or(f64::NAN),
            values.last().copied().unwrap_or(f64::NAN)
        );
    }
    drop(moto);
    cluster.cleanup().await?;
    Ok(())
}
