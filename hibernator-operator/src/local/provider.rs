//! [`FileProvider`]: the executors of a plan file's targets, from the
//! binary's [`ExecutorSet`], with connectors from the file's CloudProvider
//! documents.

use std::sync::Arc;

use async_trait::async_trait;
use aws_config::SdkConfig;
use hibernator_core::cycle::ExecutorProvider;
use hibernator_core::executor::{Executor, ExecutorError};
use hibernator_core::input::PlanDocuments;
use hibernator_core::types::{CloudProvider, ConnectorKind, Target};
use hibernator_executors::aws::connector::ConnectorError;
use hibernator_executors::{ExecutorSet, ExecutorSource};

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
    /// Targets whose connector lives in a cluster (a K8SCluster or a custom
    /// executor's connector) need the operator.
    #[error(
        "target {target:?} (type {kind:?}) uses {connector_kind} {connector:?}: it needs the operator; `hibernator run` runs targets with a CloudProvider connector or none"
    )]
    NeedsOperator {
        /// Target name.
        target: String,
        /// Target type.
        kind: String,
        /// The connector's kind.
        connector_kind: String,
        /// The connector's name.
        connector: String,
    },
    /// The target names no CloudProvider, but its type needs one.
    #[error(
        "target {target:?} (type {kind:?}) needs a connectorRef to a CloudProvider of the plan file"
    )]
    NoConnector {
        /// Target name.
        target: String,
        /// Target type.
        kind: String,
    },
    /// No executor for this type in this build.
    #[error("target {target:?}: no executor for type {kind:?} in this build (it knows: {known})")]
    UnknownType {
        /// Target name.
        target: String,
        /// Target type.
        kind: String,
        /// The types this build knows.
        known: String,
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

/// Builds the executors of one plan file's targets from an
/// [`ExecutorSet`]: executors that need no connector as they are, AWS
/// executors with the file's CloudProvider named by the target's
/// `connectorRef`, credentials from the default chain (environment,
/// profile, SSO, IRSA), and `AWS_ENDPOINT_URL` honoured (emulators).
/// Targets whose connector lives in a cluster fail with
/// [`ProviderError::NeedsOperator`].
#[derive(Clone, Debug)]
pub struct FileProvider {
    plan: String,
    providers: Vec<CloudProvider>,
    executors: Arc<ExecutorSet>,
}

impl FileProvider {
    /// A provider for the plan and CloudProviders of `docs`, building
    /// executors from `executors`.
    pub fn from_documents(docs: &PlanDocuments, executors: Arc<ExecutorSet>) -> Self {
        Self {
            plan: docs.plan.metadata.name.clone().unwrap_or_default(),
            providers: docs.cloud_providers.clone(),
            executors,
        }
    }

    /// The CloudProvider of `target`, or why it cannot be used here.
    pub fn connector_for(&self, target: &Target) -> Result<&CloudProvider, ProviderError> {
        let reference =
            target
                .connector_ref
                .as_ref()
                .ok_or_else(|| ProviderError::NoConnector {
                    target: target.name.clone(),
                    kind: target.kind.clone(),
                })?;
        if reference.kind != ConnectorKind::CloudProvider {
            return Err(ProviderError::NeedsOperator {
                target: target.name.clone(),
                kind: target.kind.clone(),
                connector_kind: reference.kind.to_string(),
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
        hibernator_kube::resolve::aws_sdk_config(&self.plan, target, provider, None, None)
            .await
            .map_err(|source| ProviderError::Connector {
                target: target.name.clone(),
                source,
            })
    }

    async fn build(&self, target: &Target) -> Result<Arc<dyn Executor>, ProviderError> {
        let source =
            self.executors
                .get(&target.kind)
                .ok_or_else(|| ProviderError::UnknownType {
                    target: target.name.clone(),
                    kind: target.kind.clone(),
                    known: self.executors.types().collect::<Vec<_>>().join(", "),
                })?;
        match source {
            ExecutorSource::Standalone(executor) => Ok(executor.clone()),
            ExecutorSource::Aws(factory) => Ok(factory.build(&self.sdk_config_for(target).await?)),
            ExecutorSource::Kubernetes(_) | ExecutorSource::Connector(_) => {
                let (connector_kind, connector) = match &target.connector_ref {
                    Some(r) => (r.kind.to_string(), r.name.clone()),
                    None => (source.connector().to_string(), String::new()),
                };
                Err(ProviderError::NeedsOperator {
                    target: target.name.clone(),
                    kind: target.kind.clone(),
                    connector_kind,
                    connector,
                })
            }
        }
    }
}

#[async_trait]
impl ExecutorProvider for FileProvider {
    async fn executor_for(&self, target: &Target) -> Result<Arc<dyn Executor>, ExecutorError> {
        Ok(self.build(target).await?)
    }
}
