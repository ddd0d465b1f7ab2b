//! Connecting to the cluster and reading a plan.

use hibernator_core::types::HibernatePlan;
use kube::Api;
use kube::config::{KubeConfigOptions, Kubeconfig};

use super::{GlobalArgs, PluginError};

/// A client and the namespace the command works in.
#[derive(Clone)]
pub struct Connection {
    /// The kube client.
    pub client: kube::Client,
    /// `-n`, else the context's namespace, else `default`.
    pub namespace: String,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

/// Builds a client from `--kubeconfig` (else `KUBECONFIG`, else
/// `~/.kube/config`) and `--context`.
pub async fn connect(global: &GlobalArgs) -> Result<Connection, PluginError> {
    let options = KubeConfigOptions {
        context: global.context.clone(),
        ..KubeConfigOptions::default()
    };
    let config_error = |message: String| PluginError::Config {
        context: global.context.clone(),
        message,
    };
    let config = match &global.kubeconfig {
        Some(path) => {
            let kubeconfig = Kubeconfig::read_from(path)
                .map_err(|e| config_error(format!("{}: {e}", path.display())))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .map_err(|e| config_error(format!("{}: {e}", path.display())))?
        }
        None => kube::Config::from_kubeconfig(&options)
            .await
            .map_err(|e| config_error(e.to_string()))?,
    };
    let namespace = global
        .namespace
        .clone()
        .unwrap_or_else(|| config.default_namespace.clone());
    let client = kube::Client::try_from(config).map_err(|e| config_error(e.to_string()))?;
    Ok(Connection { client, namespace })
}

impl Connection {
    /// A namespaced API in the command's namespace.
    pub(crate) fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = kube::core::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// `namespace/name` of an object in the command's namespace.
    pub(crate) fn qualified(&self, name: &str) -> String {
        format!("{}/{name}", self.namespace)
    }

    /// Reads a plan, mapping 404 to [`PluginError::NotFound`].
    pub(crate) async fn plan(&self, name: &str) -> Result<HibernatePlan, PluginError> {
        match self.api::<HibernatePlan>().get_opt(name).await {
            Ok(Some(plan)) => Ok(plan),
            Ok(None) => Err(PluginError::NotFound {
                kind: "HibernatePlan".to_string(),
                name: name.to_string(),
                namespace: self.namespace.clone(),
            }),
            Err(source) => Err(PluginError::api(
                format!("get HibernatePlan {}", self.qualified(name)),
                source,
            )),
        }
    }
}
