//! The process tier's fixtures: a cluster (testkit API server over HTTPS, or
//! `HIBERNATOR_TEST_KUBECONFIG`), moto, the testkit kubelet running every
//! Pod of the built `hibernator` binary as a child process with in-cluster
//! config, and the Job simulator playing the Job controller for runner Jobs.

use std::collections::BTreeMap;
use std::time::Duration;

use hibernator_core::{HibernatePlan, PlanPhase};
use hibernator_testkit::jobsim::JobSimulator;
use hibernator_testkit::kube::TestCluster;
use hibernator_testkit::kubelet::{Exit, Image, Kubelet, KubeletConfig, PodProcess, PodRef};
use hibernator_testkit::moto::MotoServer;
use k8s_openapi::api::core::v1::{
    Container, Pod, PodSecurityContext, PodSpec, SecurityContext, ServiceAccount, Volume,
    VolumeMount,
};
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use serde_json::json;

/// The image name runner Jobs and pods use; the kubelet maps it to the
/// built binary (its ENTRYPOINT).
pub const IMAGE: &str = "hibernator-under-test:dev";
/// On a real cluster with kubelets: the image runner Jobs run (then the
/// cluster's Job controller runs them, not the testkit).
pub const IMAGE_ENV: &str = "HIBERNATOR_TEST_IMAGE";

/// The runner image, and whether the testkit runs the Jobs.
fn runner_image(real_cluster: bool) -> (String, bool) {
    match std::env::var(IMAGE_ENV) {
        Ok(image) if real_cluster && !image.is_empty() => (image, false),
        _ => (IMAGE.to_string(), true),
    }
}
/// The region of the moto estate.
pub const REGION: &str = "eu-central-1";
/// How long any one child process may take to exit after SIGTERM.
pub const SIGTERM_GRACE: Duration = Duration::from_secs(10);

/// The `hibernator` binary cargo built for these tests.
pub fn binary() -> String {
    env!("CARGO_BIN_EXE_hibernator").to_string()
}

/// A free loopback port (bound, then released for the child to bind).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A child process that prints its last log lines when the test fails,
/// and is killed when dropped.
pub struct Child {
    pub name: String,
    pub process: PodProcess,
}

impl Child {
    /// The last log lines.
    pub fn tail(&self) -> String {
        self.process.log_tail(60)
    }

    /// SIGTERM, then the exit within [`SIGTERM_GRACE`] (panics with the log
    /// tail when it does not come).
    pub async fn terminate(&mut self) -> Exit {
        self.process.signal(15).expect("SIGTERM");
        match self.process.wait_timeout(SIGTERM_GRACE).await {
            Some(exit) => exit,
            None => panic!(
                "{} did not exit within {SIGTERM_GRACE:?} of SIGTERM; last log lines:\n{}",
                self.name,
                self.tail()
            ),
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- last log lines of {} ----\n{}\n----",
                self.name,
                self.tail()
            );
        }
    }
}

/// The process tier's world.
pub struct World {
    pub cluster: TestCluster,
    pub moto: MotoServer,
    pub kubelet: Kubelet,
    /// The Job controller for runner Jobs; `None` on a real cluster given
    /// [`IMAGE_ENV`], whose own Job controller and kubelets run them.
    pub jobs: Option<JobSimulator>,
    /// The image runner Jobs get.
    pub runner_image: String,
    #[allow(dead_code)] // holds the container logs until the test ends
    pub dir: tempfile::TempDir,
}

impl World {
    /// A namespace with the CRDs, the controller's and runners'
    /// ServiceAccounts, moto, and the Job simulator running runner Jobs as
    /// processes.
    pub async fn start(prefix: &str) -> World {
        let cluster = super::super::runner::cluster(prefix).await;
        let moto = MotoServer::start().await.expect("moto server");
        let dir = tempfile::tempdir().unwrap();
        let kubelet = Kubelet::new(
            cluster.client(),
            KubeletConfig {
                endpoint: cluster.endpoint().clone(),
                // The image's layout: the binary at /hibernator, its
                // ENTRYPOINT (not at its build path, which an emptyDir over
                // /tmp could hide when the checkout is under /tmp).
                images: BTreeMap::from([(
                    IMAGE.to_string(),
                    Image::single_binary(binary(), "/hibernator"),
                )]),
                // The AWS API the runners reach is the emulator (in a real
                // installation: AWS itself).
                extra_env: BTreeMap::from([
                    ("AWS_ENDPOINT_URL".to_string(), moto.endpoint().to_string()),
                    ("AWS_EC2_METADATA_DISABLED".to_string(), "true".to_string()),
                    ("RUST_LOG".to_string(), "info".to_string()),
                ]),
                log_dir: dir.path().to_path_buf(),
                root_dir: hibernator_testkit::kubelet::DEFAULT_ROOT_DIR.into(),
                run_timeout: Duration::from_secs(120),
            },
        );
        for sa in ["hibernator-runner", "hibernator-controller"] {
            let account = ServiceAccount {
                metadata: ObjectMeta {
                    name: Some(sa.into()),
                    ..Default::default()
                },
                ..Default::default()
            };
            Api::<ServiceAccount>::namespaced(cluster.client(), cluster.namespace())
                .create(&PostParams::default(), &account)
                .await
                .unwrap();
        }
        let (runner_image, simulate) = runner_image(cluster.is_real());
        let jobs = simulate.then(|| {
            JobSimulator::start(cluster.client(), cluster.namespace(), kubelet.job_runner())
        });
        World {
            cluster,
            moto,
            kubelet,
            jobs,
            runner_image,
            dir,
        }
    }

    /// Names of the runner Jobs in the namespace, sorted.
    pub async fn job_names(&self) -> Vec<String> {
        let mut names: Vec<String> =
            Api::<k8s_openapi::api::batch::v1::Job>::namespaced(self.cluster.client(), &self.ns())
                .list(&kube::api::ListParams::default().labels("hibernator.dev/execution-id"))
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

    /// Holds new runner Jobs (a slow kubelet); no-op when the cluster runs them.
    pub fn pause_jobs(&self) {
        if let Some(jobs) = &self.jobs {
            jobs.pause();
        }
    }

    /// Lets held runner Jobs run.
    pub fn resume_jobs(&self) {
        if let Some(jobs) = &self.jobs {
            jobs.resume();
        }
    }

    /// Asserts that no Job's runner was started twice (when the testkit
    /// runs them: the cluster's Job controller is trusted with that).
    pub fn assert_no_job_ran_twice(&self) {
        if let Some(jobs) = &self.jobs {
            let started = jobs.started();
            let mut unique = started.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(unique.len(), started.len(), "no Job ran twice: {started:?}");
        }
    }

    /// The test namespace.
    pub fn ns(&self) -> String {
        self.cluster.namespace().to_string()
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
        let ns = self.ns();
        let spec = PodSpec {
            service_account_name: Some(service_account.into()),
            security_context: Some(PodSecurityContext {
                run_as_non_root: Some(true),
                ..Default::default()
            }),
            containers: vec![Container {
                name: "main".into(),
                image: Some(IMAGE.into()),
                args: Some(args),
                termination_message_policy: Some("FallbackToLogsOnError".into()),
                volume_mounts: Some(mounts),
                security_context: Some(SecurityContext {
                    run_as_non_root: Some(true),
                    allow_privilege_escalation: Some(false),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            volumes: Some(volumes),
            ..Default::default()
        };
        let pod = Pod {
            metadata: ObjectMeta {
                generate_name: Some(format!("{prefix}-")),
                labels: Some(BTreeMap::from([(
                    "app.kubernetes.io/name".to_string(),
                    prefix.to_string(),
                )])),
                ..Default::default()
            },
            spec: Some(spec.clone()),
            status: None,
        };
        let pod = Api::<Pod>::namespaced(self.cluster.client(), &ns)
            .create(&PostParams::default(), &pod)
            .await
            .unwrap();
        let name = pod.metadata.name.clone().unwrap();
        let env = BTreeMap::from([
            ("POD_NAME".to_string(), name.clone()),
            ("POD_NAMESPACE".to_string(), ns.clone()),
        ]);
        let process = self
            .kubelet
            .start(&PodRef {
                namespace: ns,
                name: name.clone(),
                uid: pod.metadata.uid.clone().unwrap(),
                spec,
                env,
            })
            .await
            .unwrap_or_else(|e| panic!("start pod {name}: {e}"));
        Child { name, process }
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
        let args = [
            "controller".to_string(),
            format!("--metrics-addr=127.0.0.1:{}", ports.metrics),
            format!("--health-addr=127.0.0.1:{}", ports.health),
            "--leader-elect=true".to_string(),
            "--lease-name=hibernator-controller".to_string(),
            "--runner-service-account=hibernator-runner".to_string(),
            format!("--runner-image={}", self.runner_image),
            format!("--stream-transport={transport}"),
            "--streaming-config=/etc/hibernator/config/streaming.yaml".to_string(),
            format!("--namespace={ns}"),
        ]
        .into_iter()
        .chain(extra_args.iter().map(|a| (*a).to_string()))
        .collect::<Vec<_>>();
        let volumes: Vec<Volume> = serde_json::from_value(json!([
            {"name": "tmp", "emptyDir": {}},
            {"name": "config", "configMap": {"name": "hibernator-controller-config"}},
        ]))
        .unwrap();
        let mounts: Vec<VolumeMount> = serde_json::from_value(json!([
            {"name": "tmp", "mountPath": "/tmp"},
            {"name": "config", "mountPath": "/etc/hibernator/config", "readOnly": true},
        ]))
        .unwrap();
        self.start_pod(
            "hibernator-controller",
            "hibernator-controller",
            args,
            volumes,
            mounts,
        )
        .await
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

/// Waits for the plan's phase (the process must reach it by itself).
pub async fn wait_phase(
    api: &Api<HibernatePlan>,
    name: &str,
    phase: PlanPhase,
    timeout: Duration,
    controller: &Child,
) -> HibernatePlan {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let plan = api.get(name).await.unwrap();
        if plan.status.as_ref().map(|s| s.phase) == Some(phase) {
            return plan;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "plan {name} did not reach {phase:?} within {timeout:?}: {:#?}\nlast controller log lines:\n{}",
            plan.status,
            controller.tail()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A UTC off-hours window that starts at the next minute boundary at
/// least `margin` away and lasts one minute, every day: `(start, end,
/// the instant of the start)`.
pub fn next_window(margin: Duration) -> (String, String, chrono::DateTime<chrono::Utc>) {
    use chrono::{Duration as D, Timelike};
    let now = chrono::Utc::now() + D::from_std(margin).unwrap();
    let start = (now + D::minutes(1))
        .with_second(0)
        .and_then(|t| t.with_nanosecond(0))
        .unwrap();
    let end = start + D::minutes(1);
    let hhmm = |t: chrono::DateTime<chrono::Utc>| {
        if t.hour() == 0 && t.minute() == 0 {
            "24:00".to_string()
        } else {
            t.format("%H:%M").to_string()
        }
    };
    (start.format("%H:%M").to_string(), hhmm(end), start)
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
