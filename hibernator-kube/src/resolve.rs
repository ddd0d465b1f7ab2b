//! Reading what one runner execution needs from the cluster: the plan, its
//! target, the target's connector and the Secrets the connector names, and
//! building the executor from them with the binary's [`ExecutorSet`].

use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;
use hibernator_core::duration::parse_duration;
use hibernator_core::executor::{Executor, ExecutorError};
use hibernator_core::types::{
    CloudProvider, ConnectorKind, ConnectorRef, DEFAULT_TARGET_TIMEOUT, HibernatePlan, K8SCluster,
    SecretRef, Target,
};
use hibernator_executors::aws::connector::{
    ConnectorError as AwsConnectorError, SessionIdentity, StaticKeys, sdk_config_from,
};
use hibernator_executors::kubernetes::connector::{ClusterConnector, ConnectorError};
use hibernator_executors::{ConnectorRequest, ExecutorSet, ExecutorSource};
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;

/// Keys of the static AWS credentials in a CloudProvider's Secret.
const ACCESS_KEY_ID: &str = "AWS_ACCESS_KEY_ID";
const SECRET_ACCESS_KEY: &str = "AWS_SECRET_ACCESS_KEY";

/// Why the runner could not prepare its execution.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// Reading an object failed (or it does not exist).
    #[error("cannot read {kind} {namespace}/{name}: {source}")]
    Read {
        /// Object kind.
        kind: &'static str,
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// The client error.
        #[source]
        source: Box<kube::Error>,
    },
    /// The plan has no target of that name.
    #[error("HibernatePlan {namespace}/{plan} has no target {target:?} (spec.targets[].name)")]
    NoSuchTarget {
        /// Plan namespace.
        namespace: String,
        /// Plan name.
        plan: String,
        /// Target requested.
        target: String,
    },
    /// The target's `timeout` cannot be parsed.
    #[error("target {target:?}: spec.targets[].timeout: {message}")]
    Timeout {
        /// Target name.
        target: String,
        /// What is wrong.
        message: String,
    },
    /// A Secret lacks a key the connector needs (values are never shown).
    #[error("Secret {namespace}/{name} has no key {key:?} (needed by {connector})")]
    MissingSecretKey {
        /// Secret namespace.
        namespace: String,
        /// Secret name.
        name: String,
        /// Missing key.
        key: &'static str,
        /// Who needs it (`CloudProvider x`).
        connector: String,
    },
    /// This binary has no executor for the target's type.
    #[error(
        "target {target:?}: this binary has no executor of type {kind:?} (it knows: {known}); is the runner image the controller's image?"
    )]
    UnknownType {
        /// Target name.
        target: String,
        /// Target type.
        kind: String,
        /// The types this binary knows.
        known: String,
    },
    /// The target's connector is not the kind its executor type works with.
    #[error("target {target:?} (type {kind:?}) needs a connectorRef of kind {needed}, but {found}")]
    WrongConnector {
        /// Target name.
        target: String,
        /// Target type.
        kind: String,
        /// The kind the type works with.
        needed: ConnectorKind,
        /// What the target names instead (`names none`, `names K8SCluster x`).
        found: String,
    },
    /// A custom executor's connector factory could not build the executor.
    #[error("target {target:?}: {source}")]
    Factory {
        /// Target name.
        target: String,
        /// The factory's error.
        #[source]
        source: ExecutorError,
    },
    /// No client could be built for the target's cluster.
    #[error("target {target:?}: {source}")]
    Cluster {
        /// Target name.
        target: String,
        /// What failed (names the connector and field; never secrets).
        #[source]
        source: Box<ConnectorError>,
    },
    /// The AWS configuration of the CloudProvider could not be built.
    #[error("target {target:?}: {source}")]
    Provider {
        /// Target name.
        target: String,
        /// What failed (names the CloudProvider and field; never secrets).
        #[source]
        source: AwsConnectorError,
    },
}

impl ResolveError {
    /// True when retrying the runner later may succeed (API errors of a
    /// transient kind).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Read { source, .. } => {
                crate::restore_store::is_transient(source)
                    && crate::restore_store::status_code(source) != Some(409)
            }
            Self::Factory { source, .. } => source.is_transient(),
            _ => false,
        }
    }
}

/// Everything the runner needs for one execution.
pub struct Resolved {
    /// The plan as read.
    pub plan: HibernatePlan,
    /// The target (from `spec.targets`).
    pub target: Target,
    /// Its operation timeout.
    pub timeout: Duration,
    /// The executor.
    pub executor: Arc<dyn Executor>,
}

impl std::fmt::Debug for Resolved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolved")
            .field("plan", &self.plan.metadata.name)
            .field("target", &self.target.name)
            .field("timeout", &self.timeout)
            .field("executor", &self.executor.executor_type())
            .finish()
    }
}

fn read_error(
    kind: &'static str,
    namespace: &str,
    name: &str,
) -> impl FnOnce(kube::Error) -> ResolveError {
    let (namespace, name) = (namespace.to_string(), name.to_string());
    move |source| ResolveError::Read {
        kind,
        namespace,
        name,
        source: Box::new(source),
    }
}

/// Reads the plan `namespace/plan`, finds `target`, reads its connector (and
/// Secrets) and builds the executor of the target's type from `executors`
/// (AWS calls go to `aws_endpoint_url` when given).
pub async fn resolve(
    client: &kube::Client,
    executors: &ExecutorSet,
    namespace: &str,
    plan_name: &str,
    target_name: &str,
    aws_endpoint_url: Option<&str>,
) -> Result<Resolved, ResolveError> {
    let plan = Api::<HibernatePlan>::namespaced(client.clone(), namespace)
        .get(plan_name)
        .await
        .map_err(read_error("HibernatePlan", namespace, plan_name))?;
    let target = plan
        .spec
        .targets
        .iter()
        .find(|t| t.name == target_name)
        .cloned()
        .ok_or_else(|| ResolveError::NoSuchTarget {
            namespace: namespace.to_string(),
            plan: plan_name.to_string(),
            target: target_name.to_string(),
        })?;
    let timeout = match target.timeout.as_deref() {
        None => DEFAULT_TARGET_TIMEOUT,
        Some(text) => parse_duration(text).map_err(|message| ResolveError::Timeout {
            target: target.name.clone(),
            message,
        })?,
    };
    let source = executors
        .get(&target.kind)
        .ok_or_else(|| ResolveError::UnknownType {
            target: target.name.clone(),
            kind: target.kind.clone(),
            known: executors.types().collect::<Vec<_>>().join(", "),
        })?;
    let builder = Builder {
        client,
        namespace,
        plan: plan_name,
        target: &target,
        aws_endpoint_url,
    };
    let executor = match source {
        ExecutorSource::Standalone(executor) => executor.clone(),
        ExecutorSource::Aws(factory) => factory.build(&builder.aws_config().await?),
        ExecutorSource::Kubernetes(factory) => factory.build(builder.cluster_client().await?),
        ExecutorSource::Connector(factory) => {
            let reference = builder.connector(&factory.connector_kind())?;
            let request = ConnectorRequest {
                client,
                reference,
                namespace: reference.namespace.as_deref().unwrap_or(namespace),
                plan: plan_name,
                target: &target,
            };
            factory
                .build(request)
                .await
                .map_err(|source| ResolveError::Factory {
                    target: target.name.clone(),
                    source,
                })?
        }
    };
    Ok(Resolved {
        plan,
        target,
        timeout,
        executor,
    })
}

/// Reads a target's connector and what it names.
struct Builder<'a> {
    client: &'a kube::Client,
    namespace: &'a str,
    plan: &'a str,
    target: &'a Target,
    aws_endpoint_url: Option<&'a str>,
}

impl Builder<'_> {
    /// The target's `connectorRef`, which must be of kind `needed`.
    fn connector(&self, needed: &ConnectorKind) -> Result<&ConnectorRef, ResolveError> {
        let wrong = |found: String| ResolveError::WrongConnector {
            target: self.target.name.clone(),
            kind: self.target.kind.clone(),
            needed: needed.clone(),
            found,
        };
        match &self.target.connector_ref {
            None => Err(wrong("names none".to_string())),
            Some(r) if r.kind != *needed => Err(wrong(format!("names {} {:?}", r.kind, r.name))),
            Some(r) => Ok(r),
        }
    }

    /// The AWS configuration of the target's CloudProvider (static keys read
    /// from its Secret).
    async fn aws_config(&self) -> Result<aws_config::SdkConfig, ResolveError> {
        let reference = self.connector(&ConnectorKind::CloudProvider)?;
        let connector_ns = reference.namespace.as_deref().unwrap_or(self.namespace);
        let provider = Api::<CloudProvider>::namespaced(self.client.clone(), connector_ns)
            .get(&reference.name)
            .await
            .map_err(read_error("CloudProvider", connector_ns, &reference.name))?;
        let keys = match provider
            .spec
            .aws
            .as_ref()
            .and_then(|aws| aws.auth.static_keys.as_ref())
        {
            Some(auth) => Some(
                static_keys(
                    self.client,
                    &auth.secret_ref,
                    connector_ns,
                    &format!("CloudProvider {}", reference.name),
                )
                .await?,
            ),
            None => None,
        };
        aws_sdk_config(
            self.plan,
            self.target,
            &provider,
            keys,
            self.aws_endpoint_url,
        )
        .await
        .map_err(|source| ResolveError::Provider {
            target: self.target.name.clone(),
            source,
        })
    }

    /// A client of the target's K8SCluster.
    async fn cluster_client(&self) -> Result<kube::Client, ResolveError> {
        let reference = self.connector(&ConnectorKind::K8sCluster)?;
        let connector_ns = reference.namespace.as_deref().unwrap_or(self.namespace);
        let cluster = Api::<K8SCluster>::namespaced(self.client.clone(), connector_ns)
            .get(&reference.name)
            .await
            .map_err(read_error("K8SCluster", connector_ns, &reference.name))?;
        let mut connector = ClusterConnector::new(self.client.clone());
        if let Some(url) = self.aws_endpoint_url {
            let url = url.to_string();
            connector = connector.with_aws_loader(move || {
                aws_config::defaults(aws_config::BehaviorVersion::latest()).endpoint_url(&url)
            });
        }
        let identity = SessionIdentity {
            plan: self.plan.to_string(),
            target: self.target.name.clone(),
        };
        connector
            .client_for(&cluster, &identity)
            .await
            .map_err(|source| ResolveError::Cluster {
                target: self.target.name.clone(),
                source: Box::new(source),
            })
    }
}

/// Reads `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` from the Secret.
async fn static_keys(
    client: &kube::Client,
    secret: &SecretRef,
    default_ns: &str,
    connector: &str,
) -> Result<StaticKeys, ResolveError> {
    let ns = secret.namespace.as_deref().unwrap_or(default_ns);
    let object = Api::<Secret>::namespaced(client.clone(), ns)
        .get(&secret.name)
        .await
        .map_err(read_error("Secret", ns, &secret.name))?;
    let value = |key: &'static str| -> Result<String, ResolveError> {
        let from_data = object
            .data
            .as_ref()
            .and_then(|d| d.get(key))
            .and_then(|v| String::from_utf8(v.0.clone()).ok());
        let from_string = || {
            object
                .string_data
                .as_ref()
                .and_then(|d| d.get(key))
                .cloned()
        };
        from_data
            .or_else(from_string)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| ResolveError::MissingSecretKey {
                namespace: ns.to_string(),
                name: secret.name.clone(),
                key,
                connector: connector.to_string(),
            })
    };
    Ok(StaticKeys {
        access_key_id: value(ACCESS_KEY_ID)?,
        secret_access_key: value(SECRET_ACCESS_KEY)?,
    })
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
) -> Result<SdkConfig, AwsConnectorError> {
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
}
