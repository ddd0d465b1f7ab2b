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
//! - `spec.eks{name, region}` + `spec.providerRef`: the CloudProvider's AWS
//!   configuration (see [`crate::aws::connector`]) in the cluster's region,
//!   EKS `DescribeCluster` for the endpoint and CA, and an in-process bearer
//!   token from [`super::eks_token`] on every request (no exec plugin).
//!
//! Exactly one of `spec.eks` and `spec.k8s` must be set.

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_config::{BehaviorVersion, ConfigLoader, Region, SdkConfig};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hibernator_core::types::{CloudProvider, EksClusterRef, K8SCluster, SecretRef};
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::client::ClientBuilder;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config, ResourceExt};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use thiserror::Error;

use super::auth::BearerAuthLayer;
use super::eks_token::{TokenError, TokenSource};
use crate::aws::connector::{
    ConnectorError as AwsConnectorError, SessionIdentity, StaticKeys, sdk_config_from,
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
    #[error("{connector}: {source}")]
    Aws {
        /// `K8SCluster <name>` or `CloudProvider <name>`.
        connector: String,
        /// The AWS connector error.
        #[source]
        source: AwsConnectorError,
    },
    /// EKS `DescribeCluster` failed or returned no endpoint.
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
    #[error("K8SCluster {name}: {source}")]
    Token {
        /// K8SCluster name.
        name: String,
        /// The token error.
        #[source]
        source: TokenError,
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

type LoaderFn = dyn Fn() -> ConfigLoader + Send + Sync;

/// Builds clients for target clusters, reading Secrets and CloudProviders
/// with a management-cluster client.
#[derive(Clone)]
pub struct ClusterConnector {
    management: Client,
    aws_loader: Arc<LoaderFn>,
}

impl std::fmt::Debug for ClusterConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterConnector").finish_non_exhaustive()
    }
}

impl ClusterConnector {
    /// A connector reading from the management cluster with `management`,
    /// using the default AWS configuration chain.
    pub fn new(management: Client) -> Self {
        Self {
            management,
            aws_loader: Arc::new(|| aws_config::defaults(BehaviorVersion::latest())),
        }
    }

    /// Starts every AWS configuration from `loader()` (tests set an endpoint
    /// there; region, keys and role of the CloudProvider apply on top).
    #[must_use]
    pub fn with_aws_loader(
        mut self,
        loader: impl Fn() -> ConfigLoader + Send + Sync + 'static,
    ) -> Self {
        self.aws_loader = Arc::new(loader);
        self
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
            ClusterAccess::Eks {
                eks,
                provider,
                provider_namespace,
            } => {
                let provider_ns = provider_namespace.unwrap_or(&namespace);
                let object = format!("CloudProvider {provider_ns}/{provider}");
                let cloud = Api::<CloudProvider>::namespaced(self.management.clone(), provider_ns)
                    .get(provider)
                    .await
                    .map_err(|e| ConnectorError::Read {
                        connector: format!("K8SCluster {name}"),
                        field: "spec.providerRef".into(),
                        object,
                        reason: e.to_string(),
                    })?;
                let sdk = self.aws_config(&cloud, provider_ns, identity).await?;
                eks_client(&name, eks, &sdk).await
            }
        }
    }

    /// The AWS configuration of `provider` (in `namespace`), reading the
    /// `auth.static` Secret (keys `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`)
    /// when it is used.
    pub async fn aws_config(
        &self,
        provider: &CloudProvider,
        namespace: &str,
        identity: &SessionIdentity,
    ) -> Result<SdkConfig, ConnectorError> {
        let name = provider.name_any();
        let connector = format!("CloudProvider {name}");
        let aws = provider.spec.aws.as_ref();
        let static_keys = match aws.and_then(|a| a.auth.static_keys.as_ref()) {
            None => None,
            Some(auth) => {
                let field = "spec.aws.auth.static.secretRef";
                let secret = &auth.secret_ref;
                let data = self
                    .secret_data(&connector, field, secret, namespace)
                    .await?;
                let key = |k| secret_key(&connector, field, secret, namespace, &data, k);
                Some(StaticKeys {
                    access_key_id: key(ACCESS_KEY_ID_KEY)?.trim().to_string(),
                    secret_access_key: key(SECRET_ACCESS_KEY_KEY)?.trim().to_string(),
                })
            }
        };
        sdk_config_from((self.aws_loader)(), &name, aws, static_keys, identity)
            .await
            .map_err(|source| ConnectorError::Aws { connector, source })
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

/// The AWS configuration of `provider` in `namespace` (see
/// [`ClusterConnector::aws_config`]), for the runner.
pub async fn resolve_aws_config(
    management: &Client,
    provider: &CloudProvider,
    namespace: &str,
    identity: &SessionIdentity,
) -> Result<SdkConfig, ConnectorError> {
    ClusterConnector::new(management.clone())
        .aws_config(provider, namespace, identity)
        .await
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

/// Where an EKS cluster's API server is and which CA signs its certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EksEndpoint {
    /// API server URL.
    pub endpoint: String,
    /// `certificateAuthority.data`: base64 of the PEM CA bundle.
    pub certificate_authority: String,
}

/// Reads the endpoint and CA of `eks` with `DescribeCluster` (K8SCluster `name`).
pub async fn describe_eks_endpoint(
    name: &str,
    eks: &EksClusterRef,
    sdk: &SdkConfig,
) -> Result<EksEndpoint, ConnectorError> {
    let describe_error = |reason: String| ConnectorError::EksDescribe {
        name: name.to_string(),
        cluster: eks.name.clone(),
        reason,
    };
    let client = aws_sdk_eks::Client::new(sdk);
    let response = client
        .describe_cluster()
        .name(&eks.name)
        .send()
        .await
        .map_err(|e| {
            describe_error(crate::aws::error::classify(&e, "eks:DescribeCluster").message)
        })?;
    let cluster = response
        .cluster
        .ok_or_else(|| describe_error("the response has no cluster".into()))?;
    let endpoint = cluster
        .endpoint
        .filter(|e| !e.is_empty())
        .ok_or_else(|| describe_error("the cluster has no endpoint yet (is it ACTIVE?)".into()))?;
    let certificate_authority = cluster
        .certificate_authority
        .and_then(|ca| ca.data)
        .filter(|d| !d.is_empty())
        .ok_or_else(|| describe_error("the cluster has no certificateAuthority.data".into()))?;
    Ok(EksEndpoint {
        endpoint,
        certificate_authority,
    })
}

/// A client for EKS cluster `eks` with the CloudProvider configuration `sdk`
/// (its region is replaced by `eks.region`).
pub async fn eks_client(
    name: &str,
    eks: &EksClusterRef,
    sdk: &SdkConfig,
) -> Result<Client, ConnectorError> {
    let sdk = sdk
        .to_builder()
        .region(Region::new(eks.region.clone()))
        .build();
    let endpoint = describe_eks_endpoint(name, eks, &sdk).await?;
    let tokens = TokenSource::from_sdk_config(&eks.name, &eks.region, &sdk).map_err(|source| {
        ConnectorError::Token {
            name: name.to_string(),
            source,
        }
    })?;
    eks_client_from_endpoint(name, &eks.name, &endpoint, Arc::new(tokens))
}

/// A client for an EKS API server at `endpoint`, trusting only its CA and
/// authenticating every request with a token from `tokens`.
pub fn eks_client_from_endpoint(
    name: &str,
    cluster: &str,
    endpoint: &EksEndpoint,
    tokens: Arc<TokenSource>,
) -> Result<Client, ConnectorError> {
    let ca_error = |reason: &str| ConnectorError::EksCertificate {
        name: name.to_string(),
        cluster: cluster.to_string(),
        reason: reason.to_string(),
    };
    let pem = STANDARD
        .decode(endpoint.certificate_authority.trim())
        .map_err(|_| ca_error("not base64"))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .map(|c| c.map(|c| c.as_ref().to_vec()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| ca_error("not PEM"))?;
    if certs.is_empty() {
        return Err(ca_error("no CERTIFICATE block"));
    }
    let url = endpoint
        .endpoint
        .parse()
        .map_err(|_| ConnectorError::EksDescribe {
            name: name.to_string(),
            cluster: cluster.to_string(),
            reason: format!("endpoint {:?} is not a URL", endpoint.endpoint),
        })?;
    let mut config = Config::new(url);
    config.root_cert = Some(certs);
    client_with_tokens(name, config, tokens)
}

/// A client for `config` that authenticates every request with a bearer
/// token from `tokens` (any auth in `config` is replaced).
pub fn client_with_tokens(
    name: &str,
    mut config: Config,
    tokens: Arc<TokenSource>,
) -> Result<Client, ConnectorError> {
    config.auth_info = kube::config::AuthInfo::default();
    let builder = ClientBuilder::try_from(config).map_err(|e| ConnectorError::Client {
        name: name.to_string(),
        reason: e.to_string(),
    })?;
    Ok(builder.with_layer(&BearerAuthLayer::new(tokens)).build())
}

fn build_client(name: &str, config: Config) -> Result<Client, ConnectorError> {
    Client::try_from(config).map_err(|e| ConnectorError::Client {
        name: name.to_string(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests;
