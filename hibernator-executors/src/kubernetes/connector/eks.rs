//! EKS clusters (`K8SCluster.spec.eks`) and the AWS configuration of
//! CloudProviders, for the cluster connector (features `kubernetes` + `aws`).

use std::sync::Arc;

use aws_config::{ConfigLoader, Region, SdkConfig};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hibernator_core::types::{CloudProvider, EksClusterRef};
use kube::api::Api;
use kube::client::ClientBuilder;
use kube::{Client, Config, ResourceExt};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use super::super::auth::BearerAuthLayer;
use super::super::eks_token::TokenSource;
use super::{
    ACCESS_KEY_ID_KEY, ClusterConnector, ConnectorError, SECRET_ACCESS_KEY_KEY, secret_key,
};
use crate::aws::connector::{StaticKeys, sdk_config_from};
use crate::session::SessionIdentity;

impl ClusterConnector {
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

    /// A client for the EKS cluster `eks` of K8SCluster `name` (in
    /// `namespace`), with the AWS configuration of its CloudProvider.
    pub(super) async fn eks_cluster_client(
        &self,
        name: &str,
        namespace: &str,
        eks: &EksClusterRef,
        provider: &str,
        provider_namespace: Option<&str>,
        identity: &SessionIdentity,
    ) -> Result<Client, ConnectorError> {
        let provider_ns = provider_namespace.unwrap_or(namespace);
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
        eks_client(name, eks, &sdk).await
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
