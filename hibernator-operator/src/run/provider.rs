//! [`AwsFileProvider`]: executors for the AWS targets of a plan file, with
//! connectors from the file's CloudProvider documents.

use std::sync::Arc;

use async_trait::async_trait;
use aws_config::SdkConfig;
use hibernator_core::cycle::ExecutorProvider;
use hibernator_core::executor::{Executor, ExecutorError};
use hibernator_core::input::PlanDocuments;
use hibernator_core::types::{CloudProvider, ConnectorKind, Target};
use hibernator_executors::aws::connector::{
    ConnectorError, SessionIdentity, StaticKeys, sdk_config_from,
};

/// Error category of connector problems (bounded, for metric labels).
pub const CONNECTOR_CATEGORY: &str = "connector";

/// Why a target has no executor in `hibernator run`.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The target's `connectorRef` names a CloudProvider the file does not define.
    #[error(
        "target {target:?}: connectorRef names CloudProvider {connector:?}, which is not defined in the plan file (add a CloudProvider document named {connector:?})"
    )]
    MissingConnector {
        /// Target name.
        target: String,
        /// The connector's name.
        connector: String,
    },
    /// The CloudProvider uses `auth.static`, whose Secret needs Kubernetes.
    #[error(
        "target {target:?}: CloudProvider {connector:?} uses auth.static (a Kubernetes Secret), which `hibernator run` cannot read; use the default credential chain instead (remove auth.static, then set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run with IRSA/SSO)"
    )]
    StaticCredentials {
        /// Target name.
        target: String,
        /// The connector's name.
        connector: String,
    },
    /// Kubernetes targets need a cluster connection that only the operator has.
    #[error(
        "target {target:?} (type {kind:?}) uses K8SCluster {connector:?}: Kubernetes targets need the operator; `hibernator run` runs AWS targets only"
    )]
    NeedsOperator {
        /// Target name.
        target: String,
        /// Target type.
        kind: String,
        /// The connector's name.
        connector: String,
    },
    /// No AWS executor for this type in this build.
    #[error("target {target:?}: no AWS executor for type {kind:?} in this build of hibernator run")]
    UnknownType {
        /// Target name.
        target: String,
        /// Target type.
        kind: String,
    },
    /// The SDK configuration could not be built.
    #[error("target {target:?}: {source}")]
    Connector {
        /// Target name.
        target: String,
        /// What failed.
        #[source]
        source: ConnectorError,
    },
}

impl From<ProviderError> for ExecutorError {
    fn from(error: ProviderError) -> Self {
        ExecutorError::permanent(CONNECTOR_CATEGORY, error.to_string())
    }
}

/// Builds AWS executors for the targets of one plan file: the connector is
/// the file's CloudProvider named by the target's `connectorRef`, the
/// credentials come from the default chain (environment, profile, SSO,
/// IRSA), and `AWS_ENDPOINT_URL` is honoured (emulators).
#[derive(Clone, Debug)]
pub struct AwsFileProvider {
    plan: String,
    providers: Vec<CloudProvider>,
}

impl AwsFileProvider {
    /// A provider for the plan and CloudProviders of `docs`.
    pub fn from_documents(docs: &PlanDocuments) -> Self {
        Self {
            plan: docs.plan.metadata.name.clone().unwrap_or_default(),
            providers: docs.cloud_providers.clone(),
        }
    }

    /// The CloudProvider of `target`, or why it cannot be used here.
    pub fn connector_for(&self, target: &Target) -> Result<&CloudProvider, ProviderError> {
        let reference = &target.connector_ref;
        if reference.kind != ConnectorKind::CloudProvider {
            return Err(ProviderError::NeedsOperator {
                target: target.name.clone(),
                kind: target.kind.clone(),
                connector: reference.name.clone(),
            });
        }
        let provider = self
            .providers
            .iter()
            .find(|p| {
                p.metadata.name.as_deref() == Some(reference.name.as_str())
                    && (reference.namespace.is_none()
                        || p.metadata.namespace.is_none()
                        || p.metadata.namespace == reference.namespace)
            })
            .ok_or_else(|| ProviderError::MissingConnector {
                target: target.name.clone(),
                connector: reference.name.clone(),
            })?;
        let uses_static = provider
            .spec
            .aws
            .as_ref()
            .is_some_and(|aws| aws.auth.static_keys.is_some());
        if uses_static {
            return Err(ProviderError::StaticCredentials {
                target: target.name.clone(),
                connector: reference.name.clone(),
            });
        }
        Ok(provider)
    }

    /// The AWS SDK configuration of `target`'s CloudProvider (region,
    /// default-chain credentials, assumed role with a session name naming the
    /// plan and target).
    pub async fn sdk_config_for(&self, target: &Target) -> Result<SdkConfig, ProviderError> {
        let provider = self.connector_for(target)?;
        aws_sdk_config(&self.plan, target, provider, None, None).await
    }

    async fn build(&self, target: &Target) -> Result<Arc<dyn Executor>, ProviderError> {
        let provider = self.connector_for(target)?;
        aws_executor(&self.plan, target, provider, None, None).await
    }
}

/// The AWS SDK configuration of `target` with its CloudProvider `provider`:
/// region, static keys (when the provider uses `auth.static`, read by the
/// caller from the Secret) or the default chain, assumed role with a session
/// name naming `plan` and the target. `AWS_ENDPOINT_URL` is honoured;
/// `endpoint_url` overrides it (emulators).
pub async fn aws_sdk_config(
    plan: &str,
    target: &Target,
    provider: &CloudProvider,
    static_keys: Option<StaticKeys>,
    endpoint_url: Option<&str>,
) -> Result<SdkConfig, ProviderError> {
    let name = provider.metadata.name.clone().unwrap_or_default();
    let identity = SessionIdentity {
        plan: plan.to_string(),
        target: target.name.clone(),
    };
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(url) = endpoint_url {
        loader = loader.endpoint_url(url);
    }
    sdk_config_from(
        loader,
        &name,
        provider.spec.aws.as_ref(),
        static_keys,
        &identity,
    )
    .await
    .map_err(|source| ProviderError::Connector {
        target: target.name.clone(),
        source,
    })
}

/// The AWS executor of `target` (its `type`) configured by [`aws_sdk_config`].
pub async fn aws_executor(
    plan: &str,
    target: &Target,
    provider: &CloudProvider,
    static_keys: Option<StaticKeys>,
    endpoint_url: Option<&str>,
) -> Result<Arc<dyn Executor>, ProviderError> {
    let config = aws_sdk_config(plan, target, provider, static_keys, endpoint_url).await?;
    hibernator_executors::aws::executor_for(&target.kind, &config).ok_or_else(|| {
        ProviderError::UnknownType {
            target: target.name.clone(),
            kind: target.kind.clone(),
        }
    })
}

#[async_trait]
impl ExecutorProvider for AwsFileProvider {
    async fn executor_for(&self, target: &Target) -> Result<Arc<dyn Executor>, ExecutorError> {
        Ok(self.build(target).await?)
    }
}
