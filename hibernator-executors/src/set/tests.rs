use std::sync::Arc;

use async_trait::async_trait;
use hibernator_core::executor::{
    ExecutionContext, ExecutorError, ShutdownOutcome, TypedExecutor, WakeupOutcome, typed,
};
use hibernator_core::params::{ConnectorUse, ParameterCheck, TypedParameters};
use hibernator_core::restore::RestoreRecord;
use hibernator_core::types::ConnectorKind;

use super::*;

/// Parameters of the test executors: none.
#[derive(serde::Deserialize, schemars::JsonSchema)]
struct NoParams {}

impl hibernator_core::params::ValidateParameters for NoParams {}

/// A do-nothing executor of type `noop`.
struct Noop;

#[async_trait]
impl TypedExecutor for Noop {
    const TYPE: &'static str = "noop";
    type Params = NoParams;

    async fn shutdown(
        &self,
        _: &ExecutionContext,
        _: &NoParams,
    ) -> Result<ShutdownOutcome, ExecutorError> {
        Ok(ShutdownOutcome::default())
    }

    async fn wakeup(
        &self,
        _: &ExecutionContext,
        _: &NoParams,
        _: &RestoreRecord,
    ) -> Result<WakeupOutcome, ExecutorError> {
        Ok(WakeupOutcome::default())
    }
}

struct NoopFactory;

#[async_trait]
impl ConnectorFactory for NoopFactory {
    fn executor_type(&self) -> &str {
        "noop-remote"
    }

    fn parameter_check(&self) -> Arc<dyn ParameterCheck> {
        Arc::new(TypedParameters::<NoParams>::new("noop-remote"))
    }

    fn connector_kind(&self) -> ConnectorKind {
        ConnectorKind::Other("NoopAccount".into())
    }

    async fn build(&self, _: ConnectorRequest<'_>) -> Result<Arc<dyn Executor>, ExecutorError> {
        Ok(typed(Noop))
    }
}

fn connectors(set: &ExecutorSet) -> Vec<(String, ConnectorUse)> {
    set.types()
        .map(|t| (t.to_string(), set.get(t).unwrap().connector()))
        .collect()
}

#[test]
fn the_built_ins_come_from_their_connectors() {
    let set = ExecutorSet::new();
    let cloud = ConnectorUse::Kind(ConnectorKind::CloudProvider);
    let cluster = ConnectorUse::Kind(ConnectorKind::K8sCluster);
    assert_eq!(
        connectors(&set),
        [
            ("ec2".to_string(), cloud.clone()),
            ("eks".to_string(), cloud.clone()),
            ("karpenter".to_string(), cluster.clone()),
            ("rds".to_string(), cloud),
            ("workloadscaler".to_string(), cluster),
        ]
    );
    assert_eq!(
        format!("{set:?}"),
        r#"["ec2", "eks", "karpenter", "rds", "workloadscaler"]"#
    );
}

#[test]
fn the_catalog_knows_every_type_and_its_connector() {
    let set = ExecutorSet::new()
        .standalone(typed(Noop))
        .connector(NoopFactory);
    let catalog = set.catalog();
    assert_eq!(catalog.len(), 7);
    assert_eq!(catalog.connector("noop"), Some(&ConnectorUse::None));
    assert_eq!(
        catalog.connector("noop-remote"),
        Some(&ConnectorUse::Kind(ConnectorKind::Other(
            "NoopAccount".into()
        )))
    );
    assert_eq!(
        catalog.connector("rds"),
        Some(&ConnectorUse::Kind(ConnectorKind::CloudProvider))
    );
    for (kind, enforces) in [
        ("ec2", true),
        ("rds", true),
        ("eks", true),
        ("karpenter", false),
        ("workloadscaler", false),
        ("noop", false),
        ("noop-remote", false),
    ] {
        assert_eq!(catalog.supports_enforce(kind), enforces, "{kind}");
    }
    let check = catalog.get("workloadscaler").unwrap();
    let d = check.check(
        Some(&serde_json::json!({"includedGroups": ["deployments"]})),
        "p",
    );
    assert!(!d.is_valid(), "workloadscaler needs a namespace: {d:?}");
}

#[test]
fn adding_a_type_again_replaces_it_and_without_removes_it() {
    let set = ExecutorSet::empty().standalone(typed(Noop));
    assert!(matches!(
        set.get("noop"),
        Some(ExecutorSource::Standalone(_))
    ));
    assert!(set.get("ec2").is_none());
    let set = ExecutorSet::new().without("ec2").without("karpenter");
    assert_eq!(
        set.types().collect::<Vec<_>>(),
        ["eks", "rds", "workloadscaler"]
    );
    assert!(ExecutorSet::empty().is_empty());
    assert_eq!(ExecutorSet::new().len(), 5);
    assert!(ExecutorSet::new().contains("rds"));
}

#[test]
fn aws_factories_build_executors_of_their_type() {
    let config = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .build();
    let set = ExecutorSet::new();
    for kind in ["ec2", "eks", "rds"] {
        let Some(ExecutorSource::Aws(factory)) = set.get(kind) else {
            panic!("{kind} is not built from a CloudProvider");
        };
        assert_eq!(factory.executor_type(), kind);
        assert_eq!(factory.build(&config).executor_type(), kind);
    }
}

#[tokio::test]
async fn kubernetes_factories_build_executors_of_their_type() {
    let config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
    let client = kube::Client::try_from(config).unwrap();
    let set = ExecutorSet::new();
    for kind in ["karpenter", "workloadscaler"] {
        let Some(ExecutorSource::Kubernetes(factory)) = set.get(kind) else {
            panic!("{kind} is not built from a K8SCluster");
        };
        assert_eq!(factory.build(client.clone()).executor_type(), kind);
    }
}
