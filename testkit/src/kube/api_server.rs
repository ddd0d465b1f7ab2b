//! [`ApiServer`]: the in-process Kubernetes API server and its test hooks.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::Value;
use tokio::task::JoinHandle;

use super::error::{ApiError, ApiServerError};
use super::server::{Shared, lock, router};

/// Installs the aws-lc-rs rustls provider as the process default (once; an
/// already-installed provider is kept). kube's TLS stack needs one.
pub fn install_crypto_provider() {
    // Err means a provider is already installed, which is what we want.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// An in-process Kubernetes API server on `127.0.0.1:<random port>`.
///
/// Built-in resources and the `hibernator.dev` CRDs are registered at start.
/// The server stops when this value is dropped.
pub struct ApiServer {
    shared: Arc<Shared>,
    url: String,
    https: std::net::SocketAddr,
    ca_pem: String,
    client: kube::Client,
    task: JoinHandle<()>,
    tls_task: JoinHandle<()>,
}

impl std::fmt::Debug for ApiServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiServer")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// Builds a kube client for a server URL with a default namespace.
pub(crate) fn client_for(url: &str, namespace: &str) -> Result<kube::Client, ApiServerError> {
    install_crypto_provider();
    let uri = url.parse().map_err(
        |e: axum::http::uri::InvalidUri| ApiServerError::Kubeconfig {
            path: url.to_string(),
            message: e.to_string(),
        },
    )?;
    let mut config = kube::Config::new(uri);
    config.default_namespace = namespace.to_string();
    kube::Client::try_from(config).map_err(|source| ApiServerError::Client {
        target: url.to_string(),
        source,
    })
}

impl ApiServer {
    /// Starts a server with the built-in resources and the hibernator CRDs.
    pub async fn start() -> Result<ApiServer, ApiServerError> {
        install_crypto_provider();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(ApiServerError::Bind)?;
        let addr = listener.local_addr().map_err(ApiServerError::Bind)?;
        let shared = Arc::new(Shared::new());
        *lock(&shared.address) = addr.to_string();
        let app = router(Arc::clone(&shared));
        let tls_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(ApiServerError::Bind)?;
        let https = tls_listener.local_addr().map_err(ApiServerError::Bind)?;
        let cert = super::tls::serving_cert()?;
        let tls_task = tokio::spawn(super::tls::serve(tls_listener, cert.config, app.clone()));
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "testkit API server stopped");
            }
        });
        let url = format!("http://{addr}");
        let client = client_for(&url, "default")?;
        let server = ApiServer {
            shared,
            url,
            https,
            ca_pem: cert.ca_pem,
            client,
            task,
            tls_task,
        };
        // Every namespace's `kube-root-ca.crt` holds the CA pods trust.
        server.set_root_ca_pem(&server.ca_pem.clone());
        for crd in hibernator_core::crd::all() {
            server.try_register_crd(&crd)?;
        }
        Ok(server)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// The HTTPS listener (`127.0.0.1:PORT`): what `KUBERNETES_SERVICE_HOST`
    /// and `KUBERNETES_SERVICE_PORT` name for in-cluster config.
    pub fn https_addr(&self) -> std::net::SocketAddr {
        self.https
    }

    /// The CA (PEM) that signed the HTTPS listener's certificate: a pod's
    /// `ca.crt`.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// A client for this server; its default namespace is `default`.
    pub fn client(&self) -> kube::Client {
        self.client.clone()
    }

    /// A client whose default namespace is `namespace`.
    pub fn client_in(&self, namespace: &str) -> Result<kube::Client, ApiServerError> {
        client_for(&self.url, namespace)
    }

    /// A kubeconfig (YAML) whose current context points at this server.
    pub fn kubeconfig_yaml(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: testkit\n  cluster:\n    server: {url}\nusers:\n- name: testkit\n  user: {{}}\ncontexts:\n- name: testkit\n  context:\n    cluster: testkit\n    user: testkit\n    namespace: default\ncurrent-context: testkit\npreferences: {{}}\n",
            url = self.url
        )
    }

    /// Registers (or updates) a CRD as if it had been created through the
    /// API; errors are logged. See [`ApiServer::try_register_crd`].
    pub fn register_crd(&self, crd: &CustomResourceDefinition) {
        if let Err(e) = self.try_register_crd(crd) {
            tracing::error!(error = %e, "cannot register CRD");
        }
    }

    /// Registers (or updates) a CRD, reporting an invalid one.
    pub fn try_register_crd(&self, crd: &CustomResourceDefinition) -> Result<(), ApiServerError> {
        let name = crd.metadata.name.clone().unwrap_or_default();
        let invalid = |e: ApiError| ApiServerError::InvalidCrd {
            name: name.clone(),
            message: e.message,
        };
        let body = serde_json::to_value(crd).map_err(|e| ApiServerError::InvalidCrd {
            name: name.clone(),
            message: e.to_string(),
        })?;
        let mut state = lock(&self.shared.state);
        let def = state
            .def("apiextensions.k8s.io", "customresourcedefinitions")
            .ok_or_else(|| ApiServerError::InvalidCrd {
                name: name.clone(),
                message: "CRD resource missing".into(),
            })?;
        match state.store.get(&def, "", &name).cloned() {
            Some(existing) => {
                let mut body = body;
                if let (Some(m), Some(rv)) = (
                    body.get_mut("metadata").and_then(Value::as_object_mut),
                    existing.pointer("/metadata/resourceVersion"),
                ) {
                    m.insert("resourceVersion".into(), rv.clone());
                }
                state
                    .update(&def, "", &name, super::objects::Part::Main, body)
                    .map_err(invalid)?;
            }
            None => {
                state.create(&def, "v1", "", body).map_err(invalid)?;
            }
        }
        Ok(())
    }

    /// Fails the next `count` requests for `verb` (`get`, `list`, `watch`,
    /// `create`, `update`, `patch`, `delete`, `deletecollection`) on
    /// `resource` (a plural such as `deployments`, or `plural/subresource`
    /// such as `deployments/scale`) with a `Status` of code `status`.
    pub fn fail_next(&self, verb: &str, resource: &str, count: u32, status: u16) {
        lock(&self.shared.faults).fail_next(verb, resource, count, status);
    }

    /// Adds `latency` before every request is handled.
    pub fn set_latency(&self, latency: Duration) {
        lock(&self.shared.faults).set_latency(latency);
    }

    /// Requests seen for `verb` on `resource` (same names as [`ApiServer::fail_next`]).
    pub fn request_count(&self, verb: &str, resource: &str) -> u64 {
        lock(&self.shared.faults).count(verb, resource)
    }

    /// Every request counter: `(verb, resource)` → requests since the last
    /// reset (same names as [`ApiServer::fail_next`]).
    pub fn request_counts(&self) -> std::collections::BTreeMap<(String, String), u64> {
        lock(&self.shared.faults).counts()
    }

    /// Zeroes the request counters.
    pub fn reset_request_counts(&self) {
        lock(&self.shared.faults).reset_counts();
    }

    /// A token as `TokenRequest` issues it (without its checks: any
    /// expiration is accepted, so tests can mint already-short tokens).
    /// `pod` is `(name, uid)` of the pod the token is bound to.
    pub fn mint_token(
        &self,
        namespace: &str,
        service_account: &str,
        audiences: &[&str],
        expiration: Duration,
        pod: Option<(&str, &str)>,
    ) -> String {
        let state = lock(&self.shared.state);
        let secs = i64::try_from(expiration.as_secs()).unwrap_or(i64::MAX / 2);
        let claims = state.claims(
            namespace,
            service_account,
            audiences.iter().map(|a| (*a).to_string()).collect(),
            secs,
            pod.map(|(n, u)| (n.to_string(), u.to_string())),
        );
        self.shared.auth.mint(&claims)
    }

    /// Sets the text `pods/{pod}/log` returns.
    pub fn set_pod_log(&self, namespace: &str, pod: &str, log: &str) {
        lock(&self.shared.state)
            .pod_logs
            .insert((namespace.to_string(), pod.to_string()), log.to_string());
    }

    /// Sets the CA bundle (PEM) of every namespace's `kube-root-ca.crt`
    /// ConfigMap; until then it is a placeholder CA that signs nothing.
    pub fn set_root_ca_pem(&self, pem: &str) {
        self.shared.set_root_ca_pem(pem);
    }

    /// How often watches with `allowWatchBookmarks` get a BOOKMARK (default 5 s).
    pub fn set_bookmark_interval(&self, interval: Duration) {
        self.shared.set_bookmark_interval(interval);
    }

    /// How many change events are kept for watches (default 10 000); a watch
    /// from an older resourceVersion gets `410 Expired`.
    pub fn set_watch_history_limit(&self, events: usize) {
        lock(&self.shared.state).store.set_history_limit(events);
    }

    /// Forgets every retained event, as an etcd compaction does: watches
    /// from any resourceVersion before now get `410 Expired`.
    pub fn compact_watch_history(&self) {
        lock(&self.shared.state).store.compact();
    }

    /// Ends every open watch, as an API server restart does; clients
    /// re-watch from their last resourceVersion.
    pub fn close_watches(&self) {
        self.shared.close_watches();
    }

    /// The latest resourceVersion.
    pub fn resource_version(&self) -> u64 {
        lock(&self.shared.state).store.current_rv()
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.shared.close_watches();
        self.task.abort();
        self.tls_task.abort();
    }
}
