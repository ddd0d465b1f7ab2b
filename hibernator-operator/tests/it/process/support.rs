//! The process tier's fixtures: the testkit's process world
//! ([`hibernator_testkit::process`]: a cluster over HTTPS or
//! `HIBERNATOR_TEST_KUBECONFIG`, the testkit kubelet running every Pod of the
//! built `hibernator` binary as a child process with in-cluster config, the
//! Job simulator for runner Jobs) plus moto, and the controller as the chart
//! runs it.

use std::ops::Deref;
use std::time::Duration;

use hibernator_testkit::moto::MotoServer;
use hibernator_testkit::process::{ProcessConfig, ProcessWorld};
use k8s_openapi::api::core::v1::{Volume, VolumeMount};
use kube::Api;
use kube::api::PostParams;
use serde_json::json;

pub use hibernator_testkit::process::{Child, free_port, next_window, wait_phase};

/// The image name runner Jobs and pods use; the kubelet maps it to the
/// built binary (its ENTRYPOINT).
pub const IMAGE: &str = "hibernator-under-test:dev";
/// The region of the moto estate.
pub const REGION: &str = "eu-central-1";

/// The `hibernator` binary cargo built for these tests.
pub fn binary() -> String {
    env!("CARGO_BIN_EXE_hibernator").to_string()
}

/// The process tier's world: the testkit's, with moto as the AWS every
/// container reaches.
pub struct World {
    pub process: ProcessWorld,
    pub moto: MotoServer,
}

impl Deref for World {
    type Target = ProcessWorld;

    fn deref(&self) -> &ProcessWorld {
        &self.process
    }
}

impl World {
    /// A namespace with the CRDs, the controller's and runners'
    /// ServiceAccounts, moto, and the Job simulator running runner Jobs as
    /// processes.
    pub async fn start(prefix: &str) -> World {
        let moto = MotoServer::start().await.expect("moto server");
        // The AWS API the runners reach is the emulator (in a real
        // installation: AWS itself).
        let config = ProcessConfig::new(IMAGE, binary())
            .env("AWS_ENDPOINT_URL", moto.endpoint())
            .env("AWS_EC2_METADATA_DISABLED", "true");
        let process = ProcessWorld::start(prefix, config)
            .await
            .expect("process world");
        World { process, moto }
    }

    /// Deletes the test namespace.
    pub async fn cleanup(self) {
        self.process.cleanup().await.unwrap();
    }

    /// Names of the runner Jobs in the namespace, sorted.
    pub async fn job_names(&self) -> Vec<String> {
        let mut names: Vec<String> =
            Api::<k8s_openapi::api::batch::v1::Job>::namespaced(self.cluster.client(), &self.ns())
                .list(
                    &kube::api::ListParams::default()
                        .labels(hibernator_core::wellknown::LABEL_EXECUTION_ID),
                )
                .await
                .unwrap()
                .items
                .into_iter()
                .filter_map(|j| j.metadata.name)
                .collect();
        names.sort();
        names
    }

    /// `spec.replicas` of the Deployment `web` (`cycle::estate`).
    pub async fn web_replicas(&self) -> Option<i32> {
        Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(self.cluster.client(), &self.ns())
            .get("web")
            .await
            .unwrap()
            .spec
            .and_then(|s| s.replicas)
    }

    /// Creates a Pod (as a Deployment would) running `args` of the image
    /// as `service_account`, and starts it as a process.
    pub async fn start_pod(
        &self,
        prefix: &str,
        service_account: &str,
        args: Vec<String>,
        volumes: Vec<Volume>,
        mounts: Vec<VolumeMount>,
    ) -> Child {
        self.process
            .start_pod(prefix, service_account, args, volumes, mounts)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts `hibernator controller` as the chart runs it (flags of
    /// `hibernator.controllerArgs`, the config ConfigMap at
    /// `/etc/hibernator/config`, an emptyDir at `/tmp`), watching the test
    /// namespace, with the streaming server on loopback.
    pub async fn start_controller(&self, ports: &Ports, transport: &str) -> Child {
        self.start_controller_with(ports, transport, &[]).await
    }

    /// [`World::start_controller`] with more flags.
    pub async fn start_controller_with(
        &self,
        ports: &Ports,
        transport: &str,
        extra_args: &[&str],
    ) -> Child {
        let ns = self.ns();
        let streaming = format!(
            "enabled: true\ntransport: {transport}\ngrpc:\n  enabled: true\n  host: 127.0.0.1\n  port: {g}\n  endpoint: 127.0.0.1:{g}\nwebhook:\n  enabled: true\n  host: 127.0.0.1\n  port: {w}\n  endpoint: http://127.0.0.1:{w}/logs\n",
            g = ports.grpc,
            w = ports.webhook,
        );
        let config_map: k8s_openapi::api::core::v1::ConfigMap = serde_json::from_value(json!({
            "metadata": {"name": "hibernator-controller-config"},
            "data": {"streaming.yaml": streaming},
        }))
        .unwrap();
        let cms =
            Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(self.cluster.client(), &ns);
        let _ = cms.create(&PostParams::default(), &config_map).await;
        let mut args = self.controller_args(ports.health, ports.metrics);
        args.extend([
            format!("--stream-transport={transport}"),
            "--streaming-config=/etc/hibernator/config/streaming.yaml".to_string(),
        ]);
        args.extend(extra_args.iter().map(|a| (*a).to_string()));
        let volumes: Vec<Volume> = serde_json::from_value(json!([
            {"name": "config", "configMap": {"name": "hibernator-controller-config"}},
        ]))
        .unwrap();
        let mounts: Vec<VolumeMount> = serde_json::from_value(json!([
            {"name": "config", "mountPath": "/etc/hibernator/config", "readOnly": true},
        ]))
        .unwrap();
        self.process
            .start_controller_with(args, volumes, mounts)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }
}

/// The controller's ports on loopback.
#[derive(Clone, Copy, Debug)]
pub struct Ports {
    pub health: u16,
    pub metrics: u16,
    pub grpc: u16,
    pub webhook: u16,
}

impl Ports {
    pub fn free() -> Ports {
        Ports {
            health: free_port(),
            metrics: free_port(),
            grpc: free_port(),
            webhook: free_port(),
        }
    }
}

/// GET `url`: status and body, or the error text.
pub async fn get(url: &str) -> Result<(u16, String), String> {
    let response = reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(3))
        .send()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    let status = response.status().as_u16();
    let body = response
        .text()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    Ok((status, body))
}

/// Waits until GET `url` answers 200 (the process is serving).
pub async fn wait_ok(url: &str, child: &Child, timeout: Duration) {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Ok((200, _)) = get(url).await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{url} did not answer 200 within {timeout:?}; last log lines of {}:\n{}",
            child.name,
            child.tail()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A metric's value in a Prometheus text exposition (sum over label sets).
pub fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
