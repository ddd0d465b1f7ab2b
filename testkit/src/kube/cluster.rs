//! [`TestCluster`]: a namespace to test in, on the in-process server or on
//! the real cluster named by `HIBERNATOR_TEST_KUBECONFIG`.

use std::sync::Mutex;
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::ApiResource;

use super::api_server::{ApiServer, install_crypto_provider};
use super::error::ApiServerError;
use super::objects::random_suffix;

/// The environment variable naming a kubeconfig of a real cluster to test against.
pub const KUBECONFIG_ENV: &str = "HIBERNATOR_TEST_KUBECONFIG";

/// How long [`TestCluster::ensure_crd`] waits for a CRD to be Established.
const CRD_WAIT: Duration = Duration::from_secs(60);

/// How long dropping a [`TestCluster`] without `cleanup` waits for the
/// namespace deletion on a real cluster.
const DROP_CLEANUP_WAIT: Duration = Duration::from_secs(30);

/// A test namespace on a cluster (in-process or real).
///
/// [`TestCluster::cleanup`] deletes the namespace and the tracked
/// cluster-scoped objects. On a real cluster a `TestCluster` dropped without
/// it (a failed assertion, a test that returns early) does the same from
/// its `Drop`, on a thread of its own with a fresh client, so failed runs
/// leave nothing behind.
pub struct TestCluster {
    server: Option<ApiServer>,
    client: kube::Client,
    endpoint: crate::kubelet::ClusterEndpoint,
    namespace: String,
    tracked: Mutex<Vec<(ApiResource, String)>>,
    /// The kubeconfig of a real cluster (for the clean-up on drop).
    kubeconfig: Option<String>,
    /// Set once `cleanup` succeeded.
    cleaned: bool,
}

impl std::fmt::Debug for TestCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCluster")
            .field("namespace", &self.namespace)
            .field("real", &self.is_real())
            .finish_non_exhaustive()
    }
}

/// PEM of DER certificates.
fn pem(ders: &[Vec<u8>]) -> String {
    use base64::Engine as _;
    ders.iter()
        .map(|der| {
            let b64 = base64::engine::general_purpose::STANDARD.encode(der);
            let lines: Vec<&str> = b64
                .as_bytes()
                .chunks(64)
                .map(|c| std::str::from_utf8(c).unwrap_or_default())
                .collect();
            format!(
                "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
                lines.join("\n")
            )
        })
        .collect()
}

/// How pods reach the cluster of `config` (in-cluster host, port and CA).
fn endpoint_of(config: &kube::Config) -> crate::kubelet::ClusterEndpoint {
    let uri = &config.cluster_url;
    crate::kubelet::ClusterEndpoint {
        host: uri
            .host()
            .unwrap_or("127.0.0.1")
            .trim_matches(['[', ']'])
            .to_string(),
        port: uri.port_u16().unwrap_or(443),
        ca_pem: pem(config.root_cert.as_deref().unwrap_or_default()),
    }
}

async fn real_client(
    path: &str,
    namespace: Option<&str>,
) -> Result<(kube::Client, crate::kubelet::ClusterEndpoint), ApiServerError> {
    let err = |message: String| ApiServerError::Kubeconfig {
        path: path.to_string(),
        message,
    };
    let kubeconfig = kube::config::Kubeconfig::read_from(path).map_err(|e| err(e.to_string()))?;
    let mut config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .map_err(|e| err(e.to_string()))?;
    if let Some(ns) = namespace {
        config.default_namespace = ns.to_string();
    }
    let endpoint = endpoint_of(&config);
    let client = kube::Client::try_from(config).map_err(|source| ApiServerError::Client {
        target: path.to_string(),
        source,
    })?;
    Ok((client, endpoint))
}

impl TestCluster {
    /// With `HIBERNATOR_TEST_KUBECONFIG` set, uses that cluster; otherwise
    /// starts a fresh in-process [`ApiServer`]. Creates a namespace
    /// `<prefix>-<5 random [a-z0-9]>`.
    pub async fn start(prefix: &str) -> Result<TestCluster, ApiServerError> {
        match std::env::var(KUBECONFIG_ENV) {
            Ok(path) if !path.is_empty() => Self::with_kubeconfig(&path, prefix).await,
            _ => {
                let namespace = format!("{prefix}-{}", random_suffix(5));
                let server = ApiServer::start().await?;
                let client = server.client_in(&namespace)?;
                let endpoint = crate::kubelet::ClusterEndpoint {
                    host: server.https_addr().ip().to_string(),
                    port: server.https_addr().port(),
                    ca_pem: server.ca_pem().to_string(),
                };
                Self::create(Some(server), client, endpoint, namespace).await
            }
        }
    }

    /// Uses the cluster of the kubeconfig at `path` (its current context), as
    /// [`TestCluster::start`] does when `HIBERNATOR_TEST_KUBECONFIG` is set.
    pub async fn with_kubeconfig(path: &str, prefix: &str) -> Result<TestCluster, ApiServerError> {
        install_crypto_provider();
        let namespace = format!("{prefix}-{}", random_suffix(5));
        let (client, endpoint) = real_client(path, Some(&namespace)).await?;
        let mut tc = Self::create(None, client, endpoint, namespace).await?;
        tc.kubeconfig = Some(path.to_string());
        Ok(tc)
    }

    async fn create(
        server: Option<ApiServer>,
        client: kube::Client,
        endpoint: crate::kubelet::ClusterEndpoint,
        namespace: String,
    ) -> Result<TestCluster, ApiServerError> {
        let ns = Namespace {
            metadata: kube::api::ObjectMeta {
                name: Some(namespace.clone()),
                labels: Some([("hibernator.dev/test".to_string(), "true".to_string())].into()),
                ..Default::default()
            },
            ..Namespace::default()
        };
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .map_err(|source| ApiServerError::Request {
                what: format!("create namespace {namespace}"),
                source,
            })?;
        Ok(TestCluster {
            server,
            client,
            endpoint,
            namespace,
            tracked: Mutex::new(Vec::new()),
            kubeconfig: None,
            cleaned: false,
        })
    }

    /// A client whose default namespace is the test namespace.
    pub fn client(&self) -> kube::Client {
        self.client.clone()
    }

    /// How pods reach this cluster's API server (in-cluster host, port, CA):
    /// the in-process server's HTTPS listener, or the kubeconfig's server.
    pub fn endpoint(&self) -> &crate::kubelet::ClusterEndpoint {
        &self.endpoint
    }

    /// The test namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The in-process server; `None` on a real cluster (skip fault and
    /// request-count assertions there).
    pub fn api_server(&self) -> Option<&ApiServer> {
        self.server.as_ref()
    }

    /// Whether this is a real cluster.
    pub fn is_real(&self) -> bool {
        self.server.is_none()
    }

    /// A name for a cluster-scoped object that does not collide with other
    /// test runs: `<prefix>-<the namespace's random suffix><3 more>`.
    pub fn unique_name(&self, prefix: &str) -> String {
        let suffix = self.namespace.rsplit('-').next().unwrap_or_default();
        format!("{prefix}-{suffix}{}", random_suffix(3))
    }

    /// Makes a CRD available: registered in-process; on a real cluster
    /// server-side applied, then waited for until Established.
    pub async fn ensure_crd(&self, crd: &CustomResourceDefinition) -> Result<(), ApiServerError> {
        if let Some(server) = &self.server {
            return server.try_register_crd(crd);
        }
        let name = crd.metadata.name.clone().unwrap_or_default();
        let api = Api::<CustomResourceDefinition>::all(self.client.clone());
        api.patch(
            &name,
            &PatchParams::apply("hibernator-testkit").force(),
            &Patch::Apply(crd),
        )
        .await
        .map_err(|source| ApiServerError::Request {
            what: format!("apply CRD {name}"),
            source,
        })?;
        let established = kube::runtime::wait::await_condition(
            api,
            &name,
            kube::runtime::wait::conditions::is_crd_established(),
        );
        match tokio::time::timeout(CRD_WAIT, established).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(ApiServerError::InvalidCrd {
                name,
                message: e.to_string(),
            }),
            Err(_) => Err(ApiServerError::CrdNotEstablished {
                name,
                waited: CRD_WAIT,
            }),
        }
    }

    /// Remembers a cluster-scoped object to delete in [`TestCluster::cleanup`].
    pub fn track_cluster_scoped(&self, api_resource: &ApiResource, name: &str) {
        self.tracked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((api_resource.clone(), name.to_string()));
    }

    fn take_tracked(&self) -> Vec<(ApiResource, String)> {
        std::mem::take(
            &mut *self
                .tracked
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// Deletes the tracked cluster-scoped objects and the namespace (with
    /// everything in it). Objects already gone are fine. When it fails, the
    /// objects not yet deleted are deleted again on drop (real clusters).
    pub async fn cleanup(mut self) -> Result<(), ApiServerError> {
        let tracked = self.take_tracked();
        let result = delete_all(&self.client, &self.namespace, &tracked).await;
        if result.is_ok() {
            self.cleaned = true;
        } else {
            *self
                .tracked
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = tracked;
        }
        result
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        // In-process, everything goes with the server.
        let Some(path) = self.kubeconfig.clone() else {
            return;
        };
        if self.cleaned {
            return;
        }
        let namespace = self.namespace.clone();
        let tracked = self.take_tracked();
        let (tx, rx) = std::sync::mpsc::channel();
        let what = namespace.clone();
        // The test's runtime may be the one unwinding (or a current-thread
        // runtime blocked here): a runtime and a client of its own.
        let spawned = std::thread::Builder::new()
            .name("testcluster-cleanup".into())
            .spawn(move || {
                let result = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt.block_on(async {
                        let work = async {
                            let (client, _) = real_client(&path, None).await?;
                            delete_all(&client, &namespace, &tracked).await
                        };
                        match tokio::time::timeout(DROP_CLEANUP_WAIT, work).await {
                            Ok(r) => r.map_err(|e| e.to_string()),
                            Err(_) => Err(format!("no answer within {DROP_CLEANUP_WAIT:?}")),
                        }
                    }),
                    Err(e) => Err(format!("cannot start a runtime: {e}")),
                };
                let _ = tx.send(result);
            });
        let outcome = match spawned {
            Ok(_) => rx
                .recv_timeout(DROP_CLEANUP_WAIT + Duration::from_secs(5))
                .unwrap_or_else(|e| Err(e.to_string())),
            Err(e) => Err(format!("cannot start a thread: {e}")),
        };
        if let Err(e) = outcome {
            // Visible in the failed test's output: the namespace is left.
            eprintln!("hibernator-testkit: could not delete test namespace {what}: {e}");
        }
    }
}

/// Deletes `tracked` (newest first) and the namespace; 404s are fine.
async fn delete_all(
    client: &kube::Client,
    namespace: &str,
    tracked: &[(ApiResource, String)],
) -> Result<(), ApiServerError> {
    for (ar, name) in tracked.iter().rev() {
        let api = Api::<DynamicObject>::all_with(client.clone(), ar);
        match api.delete(name, &DeleteParams::background()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(source) => {
                return Err(ApiServerError::Request {
                    what: format!("delete {} {name}", ar.kind),
                    source,
                });
            }
        }
    }
    match Api::<Namespace>::all(client.clone())
        .delete(namespace, &DeleteParams::background())
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(source) => Err(ApiServerError::Request {
            what: format!("delete namespace {namespace}"),
            source,
        }),
    }
}
