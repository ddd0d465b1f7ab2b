//! Kubernetes connector: a `kube::Client` for the cluster a `K8SCluster`
//! describes, and the AWS configuration of a `CloudProvider`.
//!
//! - `spec.k8s.inCluster: true`: the runner pod's own service account
//!   (`kube::Config::incluster`).
//! - `spec.k8s.kubeconfigRef`: the kubeconfig in key `kubeconfig` of that
//!   Secret (namespace defaults to the K8SCluster's), read with the
//!   management-cluster client. Its current context is used. Kubeconfigs with
//!   `exec` or `auth-provider` users are rejected: the runner never runs
//!   commands named by a Secret (use `spec.eks` for EKS). The kubeconfig's
//!   content never appears in errors or logs.
//! - `spec.eks{name, region}` + `spec.providerRef` (feature `aws`): the
//!   CloudProvider's AWS configuration (see `crate::aws::connector`) in the
//!   cluster's region, EKS `DescribeCluster` for the endpoint and CA, and an
//!   in-process bearer token from `super::eks_token` on every request (no
//!   exec plugin).
//!
//! Exactly one of `spec.eks` and `spec.k8s` must be set.

use std::collections::BTreeMap;
#[cfg(feature = "aws")]
use std::sync::Arc;

use hibernator_core::types::{EksClusterRef, K8SCluster, SecretRef};
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config, ResourceExt};
use thiserror::Error;

#[cfg(feature = "aws")]
use super::eks_token::TokenError;
#[cfg(feature = "aws")]
use crate::aws::connector::ConnectorError as AwsConnectorError;
use crate::session::SessionIdentity;

#[cfg(feature = "aws")]
mod eks;
#[cfg(feature = "aws")]
pub use eks::{
    EksEndpoint, client_with_tokens, describe_eks_endpoint, eks_client, eks_client_from_endpoint,
    resolve_aws_config,
};

/// Secret key holding a kubeconfig.
pub const KUBECONFIG_KEY: &str = "kubeconfig";
/// Secret key holding the AWS access key id of `auth.static`.
pub const ACCESS_KEY_ID_KEY: &str = "AWS_ACCESS_KEY_ID";
/// Secret key holding the AWS secret access key of `auth.static`.
pub const SECRET_ACCESS_KEY_KEY: &str = "AWS_SECRET_ACCESS_KEY";

/// Errors building a client for a cluster. Each names the connector and the
/// field; none contains a kubeconfig, key or token.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ConnectorError {
    /// Both `spec.eks` and `spec.k8s` are set.
    #[error("K8SCluster {name}: spec.eks and spec.k8s are mutually exclusive; set exactly one")]
    BothEksAndK8s {
        /// K8SCluster name.
        name: String,
    },
    /// Neither `spec.eks` nor `spec.k8s` is set.
    #[error("K8SCluster {name}: set spec.eks (with spec.providerRef) or spec.k8s")]
    NoAccess {
        /// K8SCluster name.
        name: String,
    },
    /// `spec.k8s` sets neither or both of `kubeconfigRef` and `inCluster: true`.
    #[error("K8SCluster {name}: spec.k8s needs exactly one of kubeconfigRef or inCluster: true")]
    K8sAccess {
        /// K8SCluster name.
        name: String,
    },
    /// `spec.eks` without `spec.providerRef`.
    #[error("K8SCluster {name}: spec.providerRef is required with spec.eks")]
    MissingProviderRef {
        /// K8SCluster name.
        name: String,
    },
    /// An object could not be read from the management cluster.
    #[error("{connector}: {field}: cannot read {object}: {reason}")]
    Read {
        /// `K8SCluster <name>` or `CloudProvider <name>`.
        connector: String,
        /// The field that names the object.
        field: String,
        /// `Secret ns/name`, `CloudProvider ns/name`.
        object: String,
        /// Why (an API error; no secret data).
        reason: String,
    },
    /// A Secret lacks a key.
    #[error("{connector}: {field}: Secret {secret} has no key {key:?}")]
    MissingSecretKey {
        /// `K8SCluster <name>` or `CloudProvider <name>`.
        connector: String,
        /// The field naming the Secret.
        field: String,
        /// `ns/name` of the Secret.
        secret: String,
        /// The missing key.
        key: String,
    },
    /// The kubeconfig cannot be used.
    #[error("K8SCluster {name}: spec.k8s.kubeconfigRef: {reason}")]
    InvalidKubeconfig {
        /// K8SCluster name.
        name: String,
        /// Why (never the content).
        reason: String,
    },
    /// The in-cluster configuration is not available.
    #[error("K8SCluster {name}: spec.k8s.inCluster: {reason}")]
    InCluster {
        /// K8SCluster name.
        name: String,
        /// Why.
        reason: String,
    },
    /// The AWS configuration of the CloudProvider failed.
    #[cfg(feature = "aws")]
    #[error("{connector}: {source}")]
    Aws {
        /// `K8SCluster <name>` or `CloudProvider <name>`.
        connector: String,
        /// The AWS connector error.
        #[source]
        source: AwsConnectorError,
    },
    /// EKS `DescribeCluster` failed or returned no endpoint.
    #[cfg(feature = "aws")]
    #[error("K8SCluster {name}: spec.eks.name: eks:DescribeCluster of {cluster}: {reason}")]
    EksDescribe {
        /// K8SCluster name.
        name: String,
        /// EKS cluster name.
        cluster: String,
        /// Why.
        reason: String,
    },
    /// The EKS cluster's `certificateAuthority.data` is not a PEM certificate.
    #[cfg(feature = "aws")]
    #[error(
        "K8SCluster {name}: EKS cluster {cluster}: certificateAuthority.data is not a base64 PEM certificate: {reason}"
    )]
    EksCertificate {
        /// K8SCluster name.
        name: String,
        /// EKS cluster name.
        cluster: String,
        /// Why.
        reason: String,
    },
    /// No EKS token could be made.
    #[cfg(feature = "aws")]
    #[error("K8SCluster {name}: {source}")]
    Token {
        /// K8SCluster name.
        name: String,
        /// The token error.
        #[source]
        source: TokenError,
    },
    /// `spec.eks` needs AWS support, which this build does not have
    /// (hibernator-executors without feature `aws`).
    #[cfg(not(feature = "aws"))]
    #[error(
        "K8SCluster {name}: spec.eks needs AWS support, which this build lacks (hibernator-executors feature `aws`); use spec.k8s"
    )]
    EksNeedsAws {
        /// K8SCluster name.
        name: String,
    },
    /// The kube client could not be built.
    #[error("K8SCluster {name}: cannot build a Kubernetes client: {reason}")]
    Client {
        /// K8SCluster name.
        name: String,
        /// Why.
        reason: String,
    },
}

/// How a `K8SCluster` is reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClusterAccess<'a> {
    /// The runner's own in-cluster configuration.
    InCluster,
    /// A kubeconfig in a Secret.
    Kubeconfig(&'a SecretRef),
    /// An EKS cluster through a CloudProvider.
    Eks {
        /// The cluster.
        eks: &'a EksClusterRef,
        /// CloudProvider name.
        provider: &'a str,
        /// CloudProvider namespace, when not the K8SCluster's.
        provider_namespace: Option<&'a str>,
    },
}

/// Which access a K8SCluster uses; rejects `eks` and `k8s` together, neither,
/// and ambiguous `k8s` settings, naming the field.
pub fn cluster_access(cluster: &K8SCluster) -> Result<ClusterAccess<'_>, ConnectorError> {
    let name = cluster.name_any();
    let spec = &cluster.spec;
    match (&spec.eks, &spec.k8s) {
        (Some(_), Some(_)) => Err(ConnectorError::BothEksAndK8s { name }),
        (None, None) => Err(ConnectorError::NoAccess { name }),
        (Some(eks), None) => {
            let provider = spec
                .provider_ref
                .as_ref()
                .ok_or(ConnectorError::MissingProviderRef { name })?;
            Ok(ClusterAccess::Eks {
                eks,
                provider: &provider.name,
                provider_namespace: provider.namespace.as_deref(),
            })
        }
        (None, Some(k8s)) => match (&k8s.kubeconfig_ref, k8s.in_cluster.unwrap_or(false)) {
            (Some(secret), false) => Ok(ClusterAccess::Kubeconfig(secret)),
            (None, true) => Ok(ClusterAccess::InCluster),
            _ => Err(ConnectorError::K8sAccess { name }),
        },
    }
}

#[cfg(feature = "aws")]
type LoaderFn = dyn Fn() -> aws_config::ConfigLoader + Send + Sync;

/// Builds clients for target clusters, reading Secrets and CloudProviders
/// with a management-cluster client.
#[derive(Clone)]
pub struct ClusterConnector {
    management: Client,
    #[cfg(feature = "aws")]
    aws_loader: Arc<LoaderFn>,
}

impl std::fmt::Debug for ClusterConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterConnector").finish_non_exhaustive()
    }
}

impl ClusterConnector {
    /// A connector reading from the management cluster with `management`,
    /// using the default AWS configuration chain (for EKS clusters, feature
    /// `aws`).
    pub fn new(management: Client) -> Self {
        Self {
            management,
            #[cfg(feature = "aws")]
            aws_loader: Arc::new(|| aws_config::defaults(aws_config::BehaviorVersion::latest())),
        }
    }

    /// A client for the cluster `cluster` describes.
    pub async fn client_for(
        &self,
        cluster: &K8SCluster,
        identity: &SessionIdentity,
    ) -> Result<Client, ConnectorError> {
        let name = cluster.name_any();
        let namespace = cluster.namespace().unwrap_or_default();
        match cluster_access(cluster)? {
            ClusterAccess::InCluster => {
                let config = Config::incluster().map_err(|e| ConnectorError::InCluster {
                    name: name.clone(),
                    reason: e.to_string(),
                })?;
                build_client(&name, config)
            }
            ClusterAccess::Kubeconfig(secret) => {
                let connector = format!("K8SCluster {name}");
                let data = self
                    .secret_data(&connector, "spec.k8s.kubeconfigRef", secret, &namespace)
                    .await?;
                let yaml = secret_key(
                    &connector,
                    "spec.k8s.kubeconfigRef",
                    secret,
                    &namespace,
                    &data,
                    KUBECONFIG_KEY,
                )?;
                client_from_kubeconfig(&name, &yaml).await
            }
            #[cfg(feature = "aws")]
            ClusterAccess::Eks {
                eks,
                provider,
                provider_namespace,
            } => {
                self.eks_cluster_client(
                    &name,
                    &namespace,
                    eks,
                    provider,
                    provider_namespace,
                    identity,
                )
                .await
            }
            #[cfg(not(feature = "aws"))]
            ClusterAccess::Eks { .. } => {
                let _ = identity; // names STS sessions, which only EKS access uses
                Err(ConnectorError::EksNeedsAws { name })
            }
        }
    }

    async fn secret_data(
        &self,
        connector: &str,
        field: &str,
        secret: &SecretRef,
        default_namespace: &str,
    ) -> Result<BTreeMap<String, Vec<u8>>, ConnectorError> {
        let namespace = secret.namespace.as_deref().unwrap_or(default_namespace);
        let object = Api::<Secret>::namespaced(self.management.clone(), namespace)
            .get(&secret.name)
            .await
            .map_err(|e| ConnectorError::Read {
                connector: connector.to_string(),
                field: field.to_string(),
                object: format!("Secret {namespace}/{}", secret.name),
                reason: e.to_string(),
            })?;
        Ok(object
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.0))
            .collect())
    }
}

fn secret_key(
    connector: &str,
    field: &str,
    secret: &SecretRef,
    default_namespace: &str,
    data: &BTreeMap<String, Vec<u8>>,
    key: &str,
) -> Result<String, ConnectorError> {
    let namespace = secret.namespace.as_deref().unwrap_or(default_namespace);
    let missing = || ConnectorError::MissingSecretKey {
        connector: connector.to_string(),
        field: field.to_string(),
        secret: format!("{namespace}/{}", secret.name),
        key: key.to_string(),
    };
    let bytes = data
        .get(key)
        .filter(|b| !b.is_empty())
        .ok_or_else(missing)?;
    String::from_utf8(bytes.clone()).map_err(|_| missing())
}

/// A client for the kubeconfig `yaml` (its current context) of K8SCluster
/// `name`. Users with `exec` or `auth-provider` are rejected.
pub async fn client_from_kubeconfig(name: &str, yaml: &str) -> Result<Client, ConnectorError> {
    let invalid = |reason: String| ConnectorError::InvalidKubeconfig {
        name: name.to_string(),
        reason,
    };
    // The parser's message may quote the input: report only that it failed.
    let kubeconfig = Kubeconfig::from_yaml(yaml)
        .map_err(|_| invalid("the Secret's kubeconfig key is not a valid kubeconfig".into()))?;
    if let Some(user) = kubeconfig.auth_infos.iter().find(|u| {
        u.auth_info
            .as_ref()
            .is_some_and(|a| a.exec.is_some() || a.auth_provider.is_some())
    }) {
        return Err(invalid(format!(
            "user {:?} uses an exec or auth-provider plugin, which the runner does not run; \
             use a token or client certificate (or spec.eks for EKS clusters)",
            user.name
        )));
    }
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|e| invalid(e.to_string()))?;
    build_client(name, config)
}

fn build_client(name: &str, config: Config) -> Result<Client, ConnectorError> {
    Client::try_from(config).map_err(|e| ConnectorError::Client {
        name: name.to_string(),
        reason: e.to_string(),
    })
}

// The tests build EKS clients as well (feature `aws`).
#[cfg(test)]
#[cfg(feature = "aws")]
mod tests;
