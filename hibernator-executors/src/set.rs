//! [`ExecutorSet`]: the executors a binary knows, and how each is built for
//! a target. The product itself uses it: the admission webhook,
//! `hibernator validate` and the controller validate plans against
//! [`ExecutorSet::catalog`], the runner Job and `hibernator run` build every
//! target's executor through [`ExecutorSet::get`]. An embedder adds its own
//! executors to the built-ins and gets the same binary with one more type:
//!
//! ```
//! use hibernator_executors::ExecutorSet;
//! # #[cfg(all(feature = "aws", feature = "kubernetes"))] {
//! # use hibernator_executors::kubernetes::WorkloadScalerExecutor as MyExecutor;
//! // MyExecutor: a TypedExecutor with `fn new(client: kube::Client) -> Self`,
//! // acting on the cluster of a K8SCluster connector.
//! let set = ExecutorSet::new().without("workloadscaler").kubernetes(MyExecutor::new);
//! let catalog = set.catalog(); // what validation checks plans against
//! assert!(catalog.get("ec2").is_some());
//! # }
//! ```
//!
//! Each executor type is built from exactly one source:
//!
//! | Added with | The target's `connectorRef` | The executor is built from |
//! |------------|-----------------------------|----------------------------|
//! | [`ExecutorSet::aws`] (feature `aws`) | a `CloudProvider` | its AWS SDK configuration (region, credentials, assumed role) |
//! | [`ExecutorSet::kubernetes`] (feature `kubernetes`) | a `K8SCluster` | a `kube::Client` for that cluster |
//! | [`ExecutorSet::connector`] (feature `kubernetes`) | a kind of your own | your [`ConnectorFactory`], which reads that object |
//! | [`ExecutorSet::standalone`] | none | nothing: the executor is ready as added |
//!
//! The catalog records which connector each type works with, so a plan
//! naming the wrong connector kind (or none) is rejected at admission.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use hibernator_core::executor::Executor;
#[cfg(any(feature = "aws", feature = "kubernetes"))]
use hibernator_core::executor::{TypedExecutor, typed};
#[cfg(any(feature = "aws", feature = "kubernetes"))]
use hibernator_core::params::TypedParameters;
use hibernator_core::params::{ConnectorUse, ParameterCatalog, ParameterCheck};
#[cfg(any(feature = "aws", feature = "kubernetes"))]
use hibernator_core::types::ConnectorKind;

#[cfg(feature = "kubernetes")]
pub use self::connector::{ConnectorFactory, ConnectorRequest};

/// Builds the executor of one type from the AWS SDK configuration of a
/// target's `CloudProvider` (feature `aws`).
///
/// Any `Fn(&SdkConfig) -> E` where `E` is a
/// [`TypedExecutor`] is one (`Ec2Executor::new`); implement the trait
/// yourself for an executor with hand-written parameter handling.
#[cfg(feature = "aws")]
pub trait AwsFactory: Send + Sync + 'static {
    /// The target type it builds executors for.
    fn executor_type(&self) -> &str;
    /// The check of that type's parameters.
    fn parameter_check(&self) -> Arc<dyn ParameterCheck>;
    /// The executor for one target, acting with `config`.
    fn build(&self, config: &aws_config::SdkConfig) -> Arc<dyn Executor>;
    /// Whether its executors support enforcement ([`Executor::supports_enforce`]).
    fn supports_enforce(&self) -> bool {
        false
    }
}

#[cfg(feature = "aws")]
impl<F, E> AwsFactory for F
where
    F: Fn(&aws_config::SdkConfig) -> E + Send + Sync + 'static,
    E: TypedExecutor,
{
    fn executor_type(&self) -> &str {
        E::TYPE
    }

    fn parameter_check(&self) -> Arc<dyn ParameterCheck> {
        Arc::new(TypedParameters::<E::Params>::new(E::TYPE))
    }

    fn build(&self, config: &aws_config::SdkConfig) -> Arc<dyn Executor> {
        typed(self(config))
    }

    fn supports_enforce(&self) -> bool {
        E::SUPPORTS_ENFORCE
    }
}

/// Builds the executor of one type from a client of the cluster a target's
/// `K8SCluster` describes (feature `kubernetes`).
///
/// Any `Fn(kube::Client) -> E` where `E` is a [`TypedExecutor`] is one
/// (`WorkloadScalerExecutor::new`).
#[cfg(feature = "kubernetes")]
pub trait KubernetesFactory: Send + Sync + 'static {
    /// The target type it builds executors for.
    fn executor_type(&self) -> &str;
    /// The check of that type's parameters.
    fn parameter_check(&self) -> Arc<dyn ParameterCheck>;
    /// The executor for one target, acting through `client`.
    fn build(&self, client: kube::Client) -> Arc<dyn Executor>;
    /// Whether its executors support enforcement ([`Executor::supports_enforce`]).
    fn supports_enforce(&self) -> bool {
        false
    }
}

#[cfg(feature = "kubernetes")]
impl<F, E> KubernetesFactory for F
where
    F: Fn(kube::Client) -> E + Send + Sync + 'static,
    E: TypedExecutor,
{
    fn executor_type(&self) -> &str {
        E::TYPE
    }

    fn parameter_check(&self) -> Arc<dyn ParameterCheck> {
        Arc::new(TypedParameters::<E::Params>::new(E::TYPE))
    }

    fn build(&self, client: kube::Client) -> Arc<dyn Executor> {
        typed(self(client))
    }

    fn supports_enforce(&self) -> bool {
        E::SUPPORTS_ENFORCE
    }
}

/// Where the executor of one type comes from (see [`ExecutorSet::get`]).
#[derive(Clone, Copy)]
pub enum ExecutorSource<'a> {
    /// Ready as added; the target names no connector.
    Standalone(&'a Arc<dyn Executor>),
    /// Built from the target's `CloudProvider`.
    #[cfg(feature = "aws")]
    Aws(&'a dyn AwsFactory),
    /// Built from a client of the target's `K8SCluster`.
    #[cfg(feature = "kubernetes")]
    Kubernetes(&'a dyn KubernetesFactory),
    /// Built by a factory from a connector of its own kind.
    #[cfg(feature = "kubernetes")]
    Connector(&'a dyn ConnectorFactory),
}

impl ExecutorSource<'_> {
    /// The connector targets of this source name.
    pub fn connector(&self) -> ConnectorUse {
        match self {
            Self::Standalone(_) => ConnectorUse::None,
            #[cfg(feature = "aws")]
            Self::Aws(_) => ConnectorUse::Kind(ConnectorKind::CloudProvider),
            #[cfg(feature = "kubernetes")]
            Self::Kubernetes(_) => ConnectorUse::Kind(ConnectorKind::K8sCluster),
            #[cfg(feature = "kubernetes")]
            Self::Connector(factory) => ConnectorUse::Kind(factory.connector_kind()),
        }
    }
}

impl fmt::Debug for ExecutorSource<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ExecutorSource({})", self.connector())
    }
}

#[derive(Clone)]
enum Source {
    Standalone(Arc<dyn Executor>),
    #[cfg(feature = "aws")]
    Aws(Arc<dyn AwsFactory>),
    #[cfg(feature = "kubernetes")]
    Kubernetes(Arc<dyn KubernetesFactory>),
    #[cfg(feature = "kubernetes")]
    Connector(Arc<dyn ConnectorFactory>),
}

impl Source {
    fn supports_enforce(&self) -> bool {
        match self {
            Self::Standalone(executor) => executor.supports_enforce(),
            #[cfg(feature = "aws")]
            Self::Aws(factory) => factory.supports_enforce(),
            #[cfg(feature = "kubernetes")]
            Self::Kubernetes(factory) => factory.supports_enforce(),
            #[cfg(feature = "kubernetes")]
            Self::Connector(factory) => factory.supports_enforce(),
        }
    }
}

#[derive(Clone)]
struct Entry {
    check: Arc<dyn ParameterCheck>,
    source: Source,
}

/// The executors a binary knows, by target type, with how each is built.
///
/// [`ExecutorSet::new`] holds the built-ins of the enabled features (`ec2`,
/// `eks`, `rds` with `aws`; `karpenter`, `workloadscaler` with
/// `kubernetes`); [`ExecutorSet::empty`] holds nothing. Adding an executor
/// of a type already in the set replaces it. Cheap to clone.
#[derive(Clone, Default)]
pub struct ExecutorSet {
    entries: BTreeMap<String, Entry>,
}

impl ExecutorSet {
    /// The built-in executors of the enabled features.
    pub fn new() -> Self {
        let set = Self::empty();
        #[cfg(feature = "aws")]
        let set = set
            .aws(crate::aws::ec2::Ec2Executor::new)
            .aws(crate::aws::eks::EksExecutor::new)
            .aws(crate::aws::rds::RdsExecutor::new);
        #[cfg(feature = "kubernetes")]
        let set = set
            .kubernetes(crate::kubernetes::KarpenterExecutor::new)
            .kubernetes(crate::kubernetes::WorkloadScalerExecutor::new);
        set
    }

    /// A set without any executor.
    pub fn empty() -> Self {
        Self::default()
    }

    fn insert(mut self, check: Arc<dyn ParameterCheck>, source: Source) -> Self {
        self.entries
            .insert(check.executor_type().to_string(), Entry { check, source });
        self
    }

    /// Adds an executor that needs no connector: targets of its type name
    /// no `connectorRef`, and every target shares this instance.
    #[must_use]
    pub fn standalone(self, executor: Arc<dyn Executor>) -> Self {
        let check = executor.parameter_check();
        self.insert(check, Source::Standalone(executor))
    }

    /// Adds an executor built from the AWS configuration of each target's
    /// `CloudProvider`, e.g. `.aws(MyExecutor::new)` with
    /// `fn new(config: &SdkConfig) -> MyExecutor`.
    #[cfg(feature = "aws")]
    #[must_use]
    pub fn aws(self, factory: impl AwsFactory) -> Self {
        let check = factory.parameter_check();
        self.insert(check, Source::Aws(Arc::new(factory)))
    }

    /// Adds an executor built from a client of each target's `K8SCluster`,
    /// e.g. `.kubernetes(MyExecutor::new)` with
    /// `fn new(client: kube::Client) -> MyExecutor`.
    #[cfg(feature = "kubernetes")]
    #[must_use]
    pub fn kubernetes(self, factory: impl KubernetesFactory) -> Self {
        let check = factory.parameter_check();
        self.insert(check, Source::Kubernetes(Arc::new(factory)))
    }

    /// Adds an executor whose targets name a connector of a kind of its own
    /// (`connectorRef: {kind: <factory.connector_kind()>, name: …}`); the
    /// factory reads that object and builds the executor. No CRD change:
    /// `connectorRef.kind` accepts any kind.
    #[cfg(feature = "kubernetes")]
    #[must_use]
    pub fn connector(self, factory: impl ConnectorFactory) -> Self {
        let check = factory.parameter_check();
        self.insert(check, Source::Connector(Arc::new(factory)))
    }

    /// The set without the executor of `executor_type` (e.g. a built-in
    /// your installation must not offer).
    #[must_use]
    pub fn without(mut self, executor_type: &str) -> Self {
        self.entries.remove(executor_type);
        self
    }

    /// Where the executor of `executor_type` comes from; `None` for a type
    /// this set does not know.
    pub fn get(&self, executor_type: &str) -> Option<ExecutorSource<'_>> {
        self.entries
            .get(executor_type)
            .map(|entry| match &entry.source {
                Source::Standalone(executor) => ExecutorSource::Standalone(executor),
                #[cfg(feature = "aws")]
                Source::Aws(factory) => ExecutorSource::Aws(factory.as_ref()),
                #[cfg(feature = "kubernetes")]
                Source::Kubernetes(factory) => ExecutorSource::Kubernetes(factory.as_ref()),
                #[cfg(feature = "kubernetes")]
                Source::Connector(factory) => ExecutorSource::Connector(factory.as_ref()),
            })
    }

    /// True when the set knows `executor_type`.
    pub fn contains(&self, executor_type: &str) -> bool {
        self.entries.contains_key(executor_type)
    }

    /// The known types, sorted.
    pub fn types(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// Number of executor types.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the set holds no executor.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The parameter checks of every type, the connector each works with
    /// and whether it supports enforcement: what validation (webhook, `hibernator validate`, controller)
    /// checks plans against.
    pub fn catalog(&self) -> ParameterCatalog {
        let mut catalog = ParameterCatalog::new();
        for (name, entry) in &self.entries {
            let connector = self
                .get(name)
                .map_or(ConnectorUse::Any, |source| source.connector());
            catalog.register_with_connector(entry.check.clone(), connector);
            catalog.set_supports_enforce(name, entry.source.supports_enforce());
        }
        catalog
    }
}

impl fmt::Debug for ExecutorSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.types()).finish()
    }
}

#[cfg(feature = "kubernetes")]
mod connector {
    use std::sync::Arc;

    use async_trait::async_trait;
    use hibernator_core::executor::{Executor, ExecutorError};
    use hibernator_core::params::ParameterCheck;
    use hibernator_core::types::{ConnectorKind, ConnectorRef, Target};

    /// What a [`ConnectorFactory`] gets to build the executor of one target.
    #[derive(Clone, Copy)]
    pub struct ConnectorRequest<'a> {
        /// A client of the cluster the runner runs in (where plans and
        /// connectors live): read your connector object and its Secrets with it.
        pub client: &'a kube::Client,
        /// The target's `connectorRef`.
        pub reference: &'a ConnectorRef,
        /// The connector's namespace (`connectorRef.namespace`, else the plan's).
        pub namespace: &'a str,
        /// The plan's name.
        pub plan: &'a str,
        /// The target.
        pub target: &'a Target,
    }

    impl std::fmt::Debug for ConnectorRequest<'_> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("ConnectorRequest")
                .field("reference", self.reference)
                .field("namespace", &self.namespace)
                .field("plan", &self.plan)
                .field("target", &self.target.name)
                .finish_non_exhaustive()
        }
    }

    /// Builds the executor of one type from a connector object of a kind of
    /// its own (feature `kubernetes`): a connector the Hibernator CRDs do not
    /// define (another cloud's account, a Vault role, an Argo CD instance).
    #[async_trait]
    pub trait ConnectorFactory: Send + Sync + 'static {
        /// The target type it builds executors for.
        fn executor_type(&self) -> &str;
        /// The check of that type's parameters.
        fn parameter_check(&self) -> Arc<dyn ParameterCheck>;
        /// The `connectorRef.kind` its targets name.
        fn connector_kind(&self) -> ConnectorKind;
        /// Reads the connector and builds the executor for one target. Errors
        /// fail the target; say which object and field is wrong, never secrets.
        async fn build(
            &self,
            request: ConnectorRequest<'_>,
        ) -> Result<Arc<dyn Executor>, ExecutorError>;
        /// Whether its executors support enforcement ([`Executor::supports_enforce`]).
        fn supports_enforce(&self) -> bool {
            false
        }
    }
}

#[cfg(test)]
mod tests;
