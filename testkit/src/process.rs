//! The process tier's world, for any crate that builds a `hibernator`
//! binary (the operator's own, or an embedder's with more executors): a
//! cluster (testkit API server over HTTPS, or `HIBERNATOR_TEST_KUBECONFIG`)
//! with the Hibernator CRDs, the controller's and runners' ServiceAccounts,
//! the [`Kubelet`] running every Pod of the binary's image as a child
//! process with in-cluster config, and the [`JobSimulator`] playing the Job
//! controller for runner Jobs.
//!
//! ```no_run
//! # async fn demo() -> Result<(), hibernator_testkit::process::ProcessError> {
//! use hibernator_testkit::process::{ProcessConfig, ProcessWorld};
//! // In an integration test: env!("CARGO_BIN_EXE_hibernator").
//! let binary = "target/debug/hibernator";
//! let world = ProcessWorld::start("my-e2e", ProcessConfig::new("hibernator:dev", binary)).await?;
//! let controller = world.start_controller(Vec::new(), Vec::new(), Vec::new()).await?;
//! # drop(controller);
//! # Ok(()) }
//! ```
//!
//! Needs root (the kubelet runs every container in a private mount namespace).

use std::collections::BTreeMap;
use std::time::Duration;

use hibernator_core::types::{HibernatePlan, PlanPhase};
use k8s_openapi::api::core::v1::{
    Container, Pod, PodSecurityContext, PodSpec, SecurityContext, ServiceAccount, Volume,
    VolumeMount,
};
use kube::Api;
use kube::api::{ObjectMeta, PostParams};

use crate::jobsim::JobSimulator;
use crate::kube::{ApiServerError, TestCluster};
use crate::kubelet::{Exit, Image, Kubelet, KubeletConfig, KubeletError, PodProcess, PodRef};

/// On a real cluster with kubelets: the image runner Jobs run (then the
/// cluster's Job controller runs them, not the testkit), unless
/// [`ProcessConfig::real_image_env`] names another variable.
pub const IMAGE_ENV: &str = "HIBERNATOR_TEST_IMAGE";
/// Where the image holds the binary under test (its ENTRYPOINT), as the
/// `hibernator` image holds `/hibernator`.
pub const IMAGE_BINARY: &str = "/hibernator";
/// How long any one child process may take to exit after SIGTERM.
pub const SIGTERM_GRACE: Duration = Duration::from_secs(10);
/// The ServiceAccount of the controller Pod.
pub const CONTROLLER_SERVICE_ACCOUNT: &str = "hibernator-controller";
/// The ServiceAccount of runner Jobs.
pub const RUNNER_SERVICE_ACCOUNT: &str = "hibernator-runner";

/// Errors setting up the process world.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The cluster could not be started or prepared.
    #[error("test cluster: {0}")]
    Cluster(#[from] ApiServerError),
    /// An API call failed.
    #[error("{what}: {source}")]
    Api {
        /// What was being done.
        what: String,
        /// The client error.
        #[source]
        source: Box<kube::Error>,
    },
    /// A Pod could not be started as a process.
    #[error("start pod {pod}: {source}")]
    Kubelet {
        /// The Pod.
        pod: String,
        /// The kubelet's error.
        #[source]
        source: KubeletError,
    },
    /// Local I/O failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

fn api(what: impl Into<String>) -> impl FnOnce(kube::Error) -> ProcessError {
    let what = what.into();
    move |source| ProcessError::Api {
        what,
        source: Box::new(source),
    }
}

/// Which binary the world runs, and how.
#[derive(Clone, Debug)]
pub struct ProcessConfig {
    /// The image name Pods and runner Jobs use; the kubelet runs
    /// [`binary`](Self::binary) for it, at [`IMAGE_BINARY`] (its ENTRYPOINT).
    pub image: String,
    /// Path of the binary under test (`env!("CARGO_BIN_EXE_<name>")`).
    pub binary: String,
    /// Variables added to every container (an AWS emulator's
    /// `AWS_ENDPOINT_URL`, `RUST_LOG`).
    pub extra_env: BTreeMap<String, String>,
    /// On a real cluster: the variable naming the image runner Jobs get
    /// there (default [`IMAGE_ENV`]).
    pub real_image_env: String,
    /// Hard limit on one runner Job.
    pub run_timeout: Duration,
}

impl ProcessConfig {
    /// Runs `binary` as image `image`, with `RUST_LOG=info`.
    pub fn new(image: impl Into<String>, binary: impl Into<String>) -> Self {
        Self {
            image: image.into(),
            binary: binary.into(),
            extra_env: BTreeMap::from([("RUST_LOG".to_string(), "info".to_string())]),
            real_image_env: IMAGE_ENV.to_string(),
            run_timeout: Duration::from_secs(120),
        }
    }

    /// Adds a variable every container gets.
    #[must_use]
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.extra_env.insert(name.into(), value.into());
        self
    }
}

/// A child process that prints its last log lines when the test fails,
/// and is killed when dropped.
pub struct Child {
    /// The Pod's name.
    pub name: String,
    /// The process.
    pub process: PodProcess,
}

impl std::fmt::Debug for Child {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Child").field("name", &self.name).finish()
    }
}

impl Child {
    /// The last log lines.
    pub fn tail(&self) -> String {
        self.process.log_tail(60)
    }

    /// SIGTERM, then the exit within [`SIGTERM_GRACE`]; panics with the log
    /// tail when it does not come (an assertion of the process tier).
    pub async fn terminate(&mut self) -> Exit {
        if let Err(e) = self.process.signal(15) {
            panic!("SIGTERM to {}: {e}", self.name);
        }
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

/// The process tier's world (see the module docs).
pub struct ProcessWorld {
    /// The cluster, with the Hibernator CRDs.
    pub cluster: TestCluster,
    /// Runs Pods as processes.
    pub kubelet: Kubelet,
    /// The Job controller for runner Jobs; `None` on a real cluster given
    /// [`ProcessConfig::real_image_env`], whose own Job controller and
    /// kubelets run them.
    pub jobs: Option<JobSimulator>,
    /// The image runner Jobs get.
    pub runner_image: String,
    /// The image of Pods started with [`start_pod`](Self::start_pod).
    pub image: String,
    /// Holds the container logs until the world is dropped.
    pub dir: tempfile::TempDir,
}

impl std::fmt::Debug for ProcessWorld {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessWorld")
            .field("namespace", &self.cluster.namespace())
            .field("image", &self.image)
            .finish_non_exhaustive()
    }
}

impl ProcessWorld {
    /// A namespace (named after `prefix`) with the CRDs, the controller's
    /// and runners' ServiceAccounts, and the Job simulator running runner
    /// Jobs as processes of `config.binary`.
    pub async fn start(prefix: &str, config: ProcessConfig) -> Result<ProcessWorld, ProcessError> {
        let cluster = TestCluster::start(prefix).await?;
        for crd in hibernator_core::crd::all() {
            cluster.ensure_crd(&crd).await?;
        }
        let dir = tempfile::tempdir()?;
        let kubelet = Kubelet::new(
            cluster.client(),
            KubeletConfig {
                endpoint: cluster.endpoint().clone(),
                // The image's layout: the binary at /hibernator, its
                // ENTRYPOINT (not at its build path, which an emptyDir over
                // /tmp could hide when the checkout is under /tmp).
                images: BTreeMap::from([(
                    config.image.clone(),
                    Image::single_binary(&config.binary, IMAGE_BINARY),
                )]),
                extra_env: config.extra_env.clone(),
                log_dir: dir.path().to_path_buf(),
                root_dir: crate::kubelet::DEFAULT_ROOT_DIR.into(),
                run_timeout: config.run_timeout,
                token_refresh: None,
            },
        );
        for sa in [RUNNER_SERVICE_ACCOUNT, CONTROLLER_SERVICE_ACCOUNT] {
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
                .map_err(api(format!("create ServiceAccount {sa}")))?;
        }
        let (runner_image, simulate) = match std::env::var(&config.real_image_env) {
            Ok(image) if cluster.is_real() && !image.is_empty() => (image, false),
            _ => (config.image.clone(), true),
        };
        let jobs = simulate.then(|| {
            JobSimulator::start(cluster.client(), cluster.namespace(), kubelet.job_runner())
        });
        Ok(ProcessWorld {
            cluster,
            kubelet,
            jobs,
            runner_image,
            image: config.image,
            dir,
        })
    }

    /// Deletes the test namespace (on a real cluster) and stops the server.
    pub async fn cleanup(self) -> Result<(), ApiServerError> {
        self.cluster.cleanup().await
    }

    /// The test namespace.
    pub fn ns(&self) -> String {
        self.cluster.namespace().to_string()
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

    /// Creates a Pod (as a Deployment would) running `args` of the image
    /// as `service_account`, and starts it as a process.
    pub async fn start_pod(
        &self,
        prefix: &str,
        service_account: &str,
        args: Vec<String>,
        volumes: Vec<Volume>,
        mounts: Vec<VolumeMount>,
    ) -> Result<Child, ProcessError> {
        let ns = self.ns();
        let spec = PodSpec {
            service_account_name: Some(service_account.into()),
            security_context: Some(PodSecurityContext {
                run_as_non_root: Some(true),
                ..Default::default()
            }),
            containers: vec![Container {
                name: "main".into(),
                image: Some(self.image.clone()),
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
            .map_err(api(format!("create Pod {prefix}-*")))?;
        let name = pod.metadata.name.clone().unwrap_or_default();
        let env = BTreeMap::from([
            ("POD_NAME".to_string(), name.clone()),
            ("POD_NAMESPACE".to_string(), ns.clone()),
        ]);
        let process = self
            .kubelet
            .start(&PodRef {
                namespace: ns,
                name: name.clone(),
                uid: pod.metadata.uid.clone().unwrap_or_default(),
                spec,
                env,
            })
            .await
            .map_err(|source| ProcessError::Kubelet {
                pod: name.clone(),
                source,
            })?;
        Ok(Child { name, process })
    }

    /// The flags the chart gives `hibernator controller`, watching the test
    /// namespace with leader election, runner Jobs of
    /// [`runner_image`](Self::runner_image), and probes and metrics on the
    /// loopback ports `health` and `metrics`.
    pub fn controller_args(&self, health: u16, metrics: u16) -> Vec<String> {
        vec![
            "controller".to_string(),
            format!("--metrics-addr=127.0.0.1:{metrics}"),
            format!("--health-addr=127.0.0.1:{health}"),
            "--leader-elect=true".to_string(),
            "--lease-name=hibernator-controller".to_string(),
            format!("--runner-service-account={RUNNER_SERVICE_ACCOUNT}"),
            format!("--runner-image={}", self.runner_image),
            format!("--namespace={}", self.ns()),
        ]
    }

    /// Starts `hibernator controller` with [`controller_args`](Self::controller_args)
    /// on free ports plus `extra_args`, an emptyDir at `/tmp` plus `volumes`
    /// and `mounts`, as the `hibernator-controller` ServiceAccount.
    pub async fn start_controller(
        &self,
        extra_args: Vec<String>,
        volumes: Vec<Volume>,
        mounts: Vec<VolumeMount>,
    ) -> Result<Child, ProcessError> {
        let mut args = self.controller_args(free_port(), free_port());
        args.extend(extra_args);
        self.start_controller_with(args, volumes, mounts).await
    }

    /// Starts `hibernator controller` with exactly `args` (see
    /// [`controller_args`](Self::controller_args)), an emptyDir at `/tmp`
    /// plus `volumes` and `mounts`.
    pub async fn start_controller_with(
        &self,
        args: Vec<String>,
        mut volumes: Vec<Volume>,
        mut mounts: Vec<VolumeMount>,
    ) -> Result<Child, ProcessError> {
        volumes.push(Volume {
            name: "tmp".into(),
            empty_dir: Some(Default::default()),
            ..Default::default()
        });
        mounts.push(VolumeMount {
            name: "tmp".into(),
            mount_path: "/tmp".into(),
            ..Default::default()
        });
        self.start_pod(
            "hibernator-controller",
            CONTROLLER_SERVICE_ACCOUNT,
            args,
            volumes,
            mounts,
        )
        .await
    }
}

/// A free loopback port (bound, then released for the child to bind).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free loopback port: {e}"))
}

/// Waits for the plan's phase (the processes must reach it by themselves);
/// panics with the plan's status and the controller's last log lines when
/// `timeout` passes.
pub async fn wait_phase(
    api: &Api<HibernatePlan>,
    name: &str,
    phase: PlanPhase,
    timeout: Duration,
    controller: &Child,
) -> HibernatePlan {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let plan = api
            .get(name)
            .await
            .unwrap_or_else(|e| panic!("get plan {name}: {e}"));
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
    let margin = D::from_std(margin).unwrap_or(D::zero());
    let now = chrono::Utc::now() + margin;
    let minute = now + D::minutes(1);
    let start = minute
        .with_second(0)
        .and_then(|t| t.with_nanosecond(0))
        .unwrap_or(minute);
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
