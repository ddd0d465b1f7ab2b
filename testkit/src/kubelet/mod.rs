//! A process kubelet: runs a Pod's first container as a child OS process,
//! the way a kubelet and container runtime would, so that the shipped
//! `hibernator` binary is tested as the process it is in a cluster.
//!
//! For a Pod (its spec, name and uid, already created in the API) it
//!
//! 1. materialises the container's volume mounts in a private directory:
//!    projected `serviceAccountToken` sources minted through the TokenRequest
//!    API (audience, expiry, bound to the Pod), `configMap`/`secret` volumes
//!    and projections read from the API, `emptyDir`;
//! 2. adds the ServiceAccount volume (`token` with the API audience, `ca.crt`,
//!    `namespace`) at `/var/run/secrets/kubernetes.io/serviceaccount` unless
//!    `automountServiceAccountToken` is false, and the termination log at the
//!    container's `terminationMessagePath`;
//! 3. runs the container's `command` (or the image's ENTRYPOINT from
//!    [`KubeletConfig::images`]) with its `args`, in a private mount namespace
//!    (`unshare --mount`) where every mount sits at its real path, as uid
//!    65532 when the container must not run as root, with only the
//!    container's environment plus `KUBERNETES_SERVICE_HOST`/`PORT`;
//! 4. keeps every ServiceAccount token fresh while the process is held: it
//!    mints it again at 80% of its lifetime ([`KubeletConfig::token_refresh`])
//!    and renames the new file over the old one, so a client that re-reads
//!    its token file (as kube's in-cluster config does) stays authenticated
//!    past the first token's expiry;
//! 5. keeps the container's stdout and stderr in a log file and, when it
//!    ends, reads the termination message (falling back to the log's tail on
//!    error with `FallbackToLogsOnError`).
//!
//! [`Kubelet::job_runner`] plugs this into the
//! [`JobSimulator`](crate::jobsim::JobSimulator), which plays the Job
//! controller. Tests start long-running Pods (the controller, the webhook)
//! with [`Kubelet::start`] and signal or wait for them.
//!
//! Needs root (for the mount namespace), as a kubelet does.

mod volumes;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Container, PodSpec};

use crate::jobsim::{JobOutcome, JobRun};

/// Where the ServiceAccount volume is mounted in every container.
pub const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// The default `terminationMessagePath`.
pub const DEFAULT_TERMINATION_PATH: &str = "/dev/termination-log";
/// The default [`KubeletConfig::root_dir`].
pub const DEFAULT_ROOT_DIR: &str = "/var/lib/hibernator-testkit/kubelet/pods";
/// The uid images of this project run as (distroless `nonroot`).
pub const NONROOT_UID: u32 = 65532;
/// Largest termination message kept (as the kubelet does).
const TERMINATION_LIMIT: usize = 4096;

/// Errors of the process kubelet.
#[derive(Debug, thiserror::Error)]
pub enum KubeletError {
    /// A volume could not be materialised.
    #[error("volume {volume}: {message}")]
    Volume {
        /// Volume name.
        volume: String,
        /// What went wrong.
        message: String,
    },
    /// The container's image has no known ENTRYPOINT and the container no command.
    #[error(
        "image {0:?} is not known to the testkit kubelet (no command in the container and no entry in KubeletConfig::images)"
    )]
    UnknownImage(String),
    /// The Pod has no container.
    #[error("the pod has no container")]
    NoContainer,
    /// Local I/O or process start failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> KubeletError {
    let what = what.into();
    move |source| KubeletError::Io { what, source }
}

/// The API server as pods see it.
#[derive(Clone, Debug)]
pub struct ClusterEndpoint {
    /// `KUBERNETES_SERVICE_HOST`.
    pub host: String,
    /// `KUBERNETES_SERVICE_PORT`.
    pub port: u16,
    /// The cluster CA, PEM (the ServiceAccount volume's `ca.crt`).
    pub ca_pem: String,
}

/// An image as the kubelet knows it: files of the host placed at their
/// paths in the container (bound before the volumes, so a volume over a
/// parent directory hides them as it would in a real container), and the
/// ENTRYPOINT.
#[derive(Clone, Debug, Default)]
pub struct Image {
    /// ENTRYPOINT (used when the container sets no `command`).
    pub entrypoint: Vec<String>,
    /// `(host path, path in the container)`.
    pub files: Vec<(PathBuf, PathBuf)>,
}

impl Image {
    /// An image holding one executable at `path` in the container, which is
    /// its ENTRYPOINT (as the `hibernator` image holds `/hibernator`).
    pub fn single_binary(host: impl Into<PathBuf>, path: &str) -> Image {
        Image {
            entrypoint: vec![path.to_string()],
            files: vec![(host.into(), PathBuf::from(path))],
        }
    }
}

/// How the kubelet runs containers.
#[derive(Clone, Debug)]
pub struct KubeletConfig {
    /// The API server for pods (in-cluster config).
    pub endpoint: ClusterEndpoint,
    /// What each image holds (e.g. the `hibernator` image → the built
    /// binary at `/hibernator`, its ENTRYPOINT).
    pub images: BTreeMap<String, Image>,
    /// Variables added to every container after its own (e.g. an AWS
    /// emulator's `AWS_ENDPOINT_URL`, as a cluster's admission policy might).
    pub extra_env: BTreeMap<String, String>,
    /// Where container logs are kept (one file per Pod); kept after the run.
    pub log_dir: PathBuf,
    /// Where Pod directories (materialised volumes) are made, as a
    /// kubelet's `/var/lib/kubelet/pods`: outside every path a container
    /// mounts over (`/tmp` is a common emptyDir). [`DEFAULT_ROOT_DIR`].
    pub root_dir: PathBuf,
    /// Hard limit on one Job's run: the process is killed after it.
    pub run_timeout: Duration,
    /// Replace each ServiceAccount token this long after minting it; `None`
    /// (the default) replaces it at 80% of its lifetime, as the kubelet
    /// does. Tests set a short one to see a rotation.
    pub token_refresh: Option<Duration>,
}

/// Runs containers as processes (see the module docs).
#[derive(Clone)]
pub struct Kubelet {
    client: kube::Client,
    config: Arc<KubeletConfig>,
}

impl std::fmt::Debug for Kubelet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kubelet")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// What to run: a Pod already created in the API.
#[derive(Clone, Debug)]
pub struct PodRef {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// uid (tokens are bound to it).
    pub uid: String,
    /// The Pod's spec.
    pub spec: PodSpec,
    /// The first container's resolved environment (values and field refs).
    pub env: BTreeMap<String, String>,
}

/// A running container process.
#[derive(Debug)]
pub struct PodProcess {
    child: tokio::process::Child,
    log: PathBuf,
    termination: PathBuf,
    fallback_to_logs: bool,
    // Keeps the Pod's tokens fresh while the process is held.
    _tokens: AbortOnDrop,
    // Holds the materialised volumes until the process is gone.
    _dir: tempfile::TempDir,
}

/// A task that ends when this is dropped.
#[derive(Debug)]
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// How a container process ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exit {
    /// Exit code (128 + signal when killed by one).
    pub code: i32,
    /// The termination message (or the log's tail, see the module docs).
    pub message: String,
}

impl Kubelet {
    /// A kubelet talking to the API through `client` (TokenRequest, Secrets,
    /// ConfigMaps).
    pub fn new(client: kube::Client, config: KubeletConfig) -> Kubelet {
        Kubelet {
            client,
            config: Arc::new(config),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &KubeletConfig {
        &self.config
    }

    /// Starts the Pod's first container as a process.
    pub async fn start(&self, pod: &PodRef) -> Result<PodProcess, KubeletError> {
        let container = pod
            .spec
            .containers
            .first()
            .cloned()
            .ok_or(KubeletError::NoContainer)?;
        std::fs::create_dir_all(&self.config.root_dir)
            .map_err(io(format!("create {}", self.config.root_dir.display())))?;
        let dir = tempfile::Builder::new()
            .prefix(&format!("{}-", pod.name))
            .tempdir_in(&self.config.root_dir)
            .map_err(io("create the pod directory"))?;
        let image = self
            .config
            .images
            .get(container.image.as_deref().unwrap_or_default())
            .cloned()
            .unwrap_or_default();
        let mut mounts = image.files.clone();
        let volumes = volumes::materialise(&self.client, pod, &container, dir.path()).await?;
        mounts.extend(volumes.mounts);
        let mut tokens = volumes.tokens;
        if pod.spec.automount_service_account_token != Some(false) {
            let (sa, token) = volumes::service_account_volume(
                &self.client,
                pod,
                &self.config.endpoint.ca_pem,
                dir.path(),
            )
            .await?;
            mounts.push((sa, PathBuf::from(SERVICE_ACCOUNT_DIR)));
            tokens.push(token);
        }
        let termination_target = PathBuf::from(
            container
                .termination_message_path
                .clone()
                .unwrap_or_else(|| DEFAULT_TERMINATION_PATH.to_string()),
        );
        let termination = dir.path().join("termination-log");
        volumes::write_file(&termination, b"", 0o666)?;
        mounts.push((termination.clone(), termination_target));

        let argv = self.argv(&container, &image)?;
        let as_nonroot = runs_as_nonroot(&pod.spec, &container);
        let log = self.config.log_dir.join(format!("{}.log", pod.name));
        let log_file =
            std::fs::File::create(&log).map_err(io(format!("create {}", log.display())))?;
        let stderr = log_file.try_clone().map_err(io("clone the log file"))?;

        let mut command = tokio::process::Command::new("unshare");
        command
            .args(["--mount", "--propagation", "private", "--", "/bin/sh", "-c"])
            .arg(mount_script(&mounts, as_nonroot))
            .arg("kubelet")
            .args(&argv)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOSTNAME", &pod.name)
            .env("KUBERNETES_SERVICE_HOST", &self.config.endpoint.host)
            .env(
                "KUBERNETES_SERVICE_PORT",
                self.config.endpoint.port.to_string(),
            )
            .envs(&pod.env)
            .envs(&self.config.extra_env)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log_file))
            .stderr(Stdio::from(stderr))
            .kill_on_drop(true);
        for (mount_source, target) in &mounts {
            volumes::ensure_mount_point(mount_source, target)?;
        }
        let child = command.spawn().map_err(io(format!(
            "start {argv:?} under unshare (needs root and util-linux)"
        )))?;
        let rotation = tokio::spawn(volumes::keep_tokens_fresh(
            self.client.clone(),
            pod.clone(),
            tokens,
            self.config.token_refresh,
        ));
        Ok(PodProcess {
            child,
            _tokens: AbortOnDrop(rotation),
            log,
            termination,
            fallback_to_logs: container.termination_message_policy.as_deref()
                == Some("FallbackToLogsOnError"),
            _dir: dir,
        })
    }

    fn argv(&self, container: &Container, image: &Image) -> Result<Vec<String>, KubeletError> {
        let mut argv = match container.command.clone().filter(|c| !c.is_empty()) {
            Some(command) => command,
            None if !image.entrypoint.is_empty() => image.entrypoint.clone(),
            None => {
                return Err(KubeletError::UnknownImage(
                    container.image.clone().unwrap_or_default(),
                ));
            }
        };
        argv.extend(container.args.clone().unwrap_or_default());
        Ok(argv)
    }

    /// A runner for the [`JobSimulator`](crate::jobsim::JobSimulator): each
    /// Job's Pod runs as a process; a run past
    /// [`KubeletConfig::run_timeout`] is killed (exit 137) and its log's
    /// tail is the message.
    pub fn job_runner(
        &self,
    ) -> impl Fn(JobRun) -> BoxFuture<'static, JobOutcome> + Send + Sync + 'static {
        let kubelet = self.clone();
        move |run: JobRun| {
            let kubelet = kubelet.clone();
            Box::pin(async move {
                let pod = PodRef {
                    namespace: run.namespace.clone(),
                    name: run.pod_name.clone(),
                    uid: run.pod_uid.clone(),
                    spec: run.spec.clone(),
                    env: run.env.clone(),
                };
                let mut process = match kubelet.start(&pod).await {
                    Ok(process) => process,
                    Err(e) => {
                        return JobOutcome {
                            exit_code: 128,
                            message: format!("testkit kubelet: {e}"),
                        };
                    }
                };
                let exit = match process.wait_timeout(kubelet.config.run_timeout).await {
                    Some(exit) => exit,
                    None => {
                        tracing::warn!(pod = %run.pod_name, tail = %process.log_tail(20), "testkit kubelet: run timed out, killing it");
                        process.kill().await;
                        Exit {
                            code: 137,
                            message: process.log_tail(20),
                        }
                    }
                };
                JobOutcome {
                    exit_code: exit.code,
                    message: exit.message,
                }
            })
        }
    }
}

fn runs_as_nonroot(spec: &PodSpec, container: &Container) -> bool {
    let container_says = container
        .security_context
        .as_ref()
        .and_then(|s| s.run_as_non_root);
    let pod_says = spec
        .security_context
        .as_ref()
        .and_then(|s| s.run_as_non_root);
    container_says.or(pod_says).unwrap_or(false)
}

/// Quotes a string for `sh`.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The script run inside the mount namespace: bind every mount at its
/// target, then `exec` the container's argv (`"$@"`), dropping to
/// [`NONROOT_UID`] when asked.
fn mount_script(mounts: &[(PathBuf, PathBuf)], as_nonroot: bool) -> String {
    let mut script = String::from("set -e\n");
    for (source, target) in mounts {
        script.push_str(&format!(
            "mount --bind {} {}\n",
            quote(&source.display().to_string()),
            quote(&target.display().to_string())
        ));
    }
    if as_nonroot {
        script.push_str(&format!(
            "exec setpriv --reuid={NONROOT_UID} --regid={NONROOT_UID} --clear-groups -- \"$@\"\n"
        ));
    } else {
        script.push_str("exec \"$@\"\n");
    }
    script
}

impl PodProcess {
    /// The process id.
    pub fn id(&self) -> Option<u32> {
        self.child.id()
    }

    /// The container's log file (stdout and stderr).
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The last `lines` lines of the container's log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Sends `signal` (e.g. `SIGTERM` = 15, `SIGKILL` = 9) to the process.
    pub fn signal(&self, signal: i32) -> Result<(), KubeletError> {
        let Some(pid) = self.child.id() else {
            return Ok(());
        };
        let status = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .map_err(io("run kill"))?;
        if status.success() {
            Ok(())
        } else {
            Err(KubeletError::Io {
                what: format!("kill -{signal} {pid}"),
                source: std::io::Error::other(format!("kill exited with {status}")),
            })
        }
    }

    /// Kills the process and reaps it.
    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }

    /// Whether the process still runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits at most `timeout` for the process to end; `None` when it still runs.
    pub async fn wait_timeout(&mut self, timeout: Duration) -> Option<Exit> {
        let status = match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(Ok(status)) => status,
            Ok(Err(e)) => {
                return Some(Exit {
                    code: 128,
                    message: format!("testkit kubelet: wait failed: {e}"),
                });
            }
            Err(_) => return None,
        };
        let code = status.code().unwrap_or_else(|| {
            use std::os::unix::process::ExitStatusExt;
            128 + status.signal().unwrap_or(0)
        });
        let mut message = std::fs::read_to_string(&self.termination).unwrap_or_default();
        if message.is_empty() && code != 0 && self.fallback_to_logs {
            message = self.log_tail(80);
        }
        if message.len() > TERMINATION_LIMIT {
            let mut cut = message.len() - TERMINATION_LIMIT;
            while !message.is_char_boundary(cut) {
                cut += 1;
            }
            message = message[cut..].to_string();
        }
        Some(Exit { code, message })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mount_script_binds_then_execs_with_quoting() {
        let script = mount_script(
            &[(PathBuf::from("/tmp/a b"), PathBuf::from("/var/run/it's"))],
            true,
        );
        assert!(script.contains("mount --bind '/tmp/a b' '/var/run/it'\\''s'\n"));
        assert!(
            script.ends_with("exec setpriv --reuid=65532 --regid=65532 --clear-groups -- \"$@\"\n")
        );
        assert_eq!(mount_script(&[], false), "set -e\nexec \"$@\"\n");
    }
}
