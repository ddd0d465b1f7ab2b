use std::sync::Arc;

use super::*;
use crate::diag::Diagnostic;
use crate::params::{TypedParameters, ValidateParameters};

#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
struct ClusterParams {
    cluster_name: String,
}

impl ValidateParameters for ClusterParams {
    fn validate(&self, field: &str, d: &mut Diagnostics) {
        if self.cluster_name.is_empty() {
            d.error(format!("{field}.clusterName"), "must not be empty");
        }
    }
}

fn catalog() -> ParameterCatalog {
    ParameterCatalog::new()
        .with(Arc::new(TypedParameters::<ClusterParams>::new("eks")))
        .with(Arc::new(TypedParameters::<serde_json::Value>::new("any")))
}

impl ValidateParameters for serde_json::Value {}

const BASE: &str = r#"
apiVersion: hibernator.dev/v1alpha1
kind: HibernatePlan
metadata: {name: dev}
spec:
  schedule:
    timezone: Europe/Berlin
    offHours: [{start: "20:00", end: "06:00", daysOfWeek: [MON, TUE, WED, THU, FRI]}]
  execution:
    strategy: {type: DAG, dependencies: [{from: a, to: b}]}
  targets:
    - {name: a, type: eks, connectorRef: {kind: CloudProvider, name: aws}, parameters: {clusterName: dev}}
    - {name: b, type: any, connectorRef: {kind: CloudProvider, name: aws}}
"#;

fn validate(text: &str) -> Diagnostics {
    let docs = PlanDocuments::from_yaml(text).expect("test YAML parses");
    validate_documents(&docs, &catalog())
}

fn has(list: &[Diagnostic], field: &str, needle: &str) -> bool {
    list.iter()
        .any(|d| d.field == field && d.message.contains(needle))
}

#[test]
fn a_good_plan_is_valid_without_warnings() {
    let d = validate(BASE);
    assert!(d.is_valid(), "{d:?}");
    assert!(d.warnings.is_empty(), "{d:?}");
}

#[test]
fn duplicate_and_malformed_target_names_are_named() {
    let d = validate(&BASE.replace("{name: b,", "{name: a,"));
    assert!(
        has(
            &d.errors,
            "spec.targets[1].name",
            "duplicate target name \"a\""
        ),
        "{d:?}"
    );
    let d = validate(&BASE.replace("{name: b,", "{name: B_x,"));
    assert!(has(&d.errors, "spec.targets[1].name", "DNS label"), "{d:?}");
}

#[test]
fn unknown_executor_types_list_the_known_ones() {
    let d = validate(&BASE.replace("type: any", "type: gke"));
    assert!(
        has(
            &d.errors,
            "spec.targets[1].type",
            "unknown executor type \"gke\""
        ),
        "{d:?}"
    );
    assert!(has(&d.errors, "spec.targets[1].type", "any, eks"), "{d:?}");
}

#[test]
fn executor_parameters_are_checked_by_the_executor_schema() {
    let d = validate(&BASE.replace("clusterName: dev", "clusterName: ''"));
    assert!(
        has(
            &d.errors,
            "spec.targets[0].parameters.clusterName",
            "must not be empty"
        ),
        "{d:?}"
    );
    let d = validate(&BASE.replace("{clusterName: dev}", "{clusterName: dev, nodegroups: [x]}"));
    assert!(d.is_valid(), "{d:?}");
    assert!(
        has(
            &d.warnings,
            "spec.targets[0].parameters.nodegroups",
            "unknown field"
        ),
        "{d:?}"
    );
}

#[test]
fn dependency_problems_name_the_edge_and_the_cycle() {
    let d = validate(&BASE.replace("[{from: a, to: b}]", "[{from: a, to: b}, {from: b, to: a}]"));
    assert!(
        d.errors
            .iter()
            .any(|e| e.message.contains("a -> b -> a") || e.message.contains("b -> a -> b")),
        "{d:?}"
    );
    let d = validate(&BASE.replace("{from: a, to: b}", "{from: a, to: zz}"));
    assert!(
        d.errors.iter().any(|e| e
            .field
            .starts_with("spec.execution.strategy.dependencies[0]")
            && e.message.contains("zz")),
        "{d:?}"
    );
    let d = validate(&BASE.replace("{from: a, to: b}", "{from: a, to: a}"));
    assert!(
        d.errors.iter().any(|e| e
            .field
            .starts_with("spec.execution.strategy.dependencies[0]")),
        "{d:?}"
    );
    let d = validate(&BASE.replace("type: DAG", "type: Parallel"));
    assert!(
        d.errors
            .iter()
            .any(|e| e.field.starts_with("spec.execution.strategy.dependencies")),
        "{d:?}"
    );
}

#[test]
fn stage_problems_are_named() {
    let staged = BASE.replace(
        "{type: DAG, dependencies: [{from: a, to: b}]}",
        "{type: Staged, stages: [{name: one, targets: [a]}, {name: two, targets: [a]}]}",
    );
    let d = validate(&staged);
    assert!(
        d.errors
            .iter()
            .any(|e| e.field.starts_with("spec.execution.strategy.stages[1]")),
        "{d:?}"
    );
    assert!(
        d.errors.iter().any(|e| e.message.contains("\"b\"")),
        "missing target b: {d:?}"
    );
}

#[test]
fn schedule_problems_name_the_field() {
    let d = validate(&BASE.replace("Europe/Berlin", "Mars/Olympus"));
    assert!(
        d.errors.iter().any(|e| e.field == "spec.schedule.timezone"),
        "{d:?}"
    );
    let d = validate(&BASE.replace("end: \"06:00\"", "end: \"20:00\""));
    assert!(
        d.errors
            .iter()
            .any(|e| e.field.starts_with("spec.schedule.offHours[0]")),
        "{d:?}"
    );
    let d = validate(&BASE.replace("start: \"20:00\"", "start: \"24:00\""));
    assert!(
        d.errors
            .iter()
            .any(|e| e.field == "spec.schedule.offHours[0].start"),
        "{d:?}"
    );
    let d = validate(&BASE.replace("THU, FRI", "THU, FRX"));
    assert!(
        d.errors
            .iter()
            .any(|e| e.field.starts_with("spec.schedule.offHours[0].daysOfWeek")),
        "{d:?}"
    );
    let d = validate(&BASE.replace("end: \"06:00\"", "end: \"23:59\""));
    assert!(d.is_valid(), "{d:?}");
    assert!(
        d.warnings
            .iter()
            .any(|w| w.field == "spec.schedule.offHours[0].end"),
        "{d:?}"
    );
}

#[test]
fn behavior_and_timeouts_are_bounded() {
    let d = validate(&BASE.replace("  targets:", "  behavior: {retries: 99}\n  targets:"));
    assert!(has(&d.errors, "spec.behavior.retries", "maximum"), "{d:?}");
    let d = validate(&BASE.replace(
        "parameters: {clusterName: dev}}",
        "parameters: {clusterName: dev}, timeout: '30'}",
    ));
    assert!(
        has(&d.errors, "spec.targets[0].timeout", "no unit"),
        "{d:?}"
    );
}

#[test]
fn the_enforce_interval_is_bounded_and_named() {
    let with = |enforce: &str| {
        validate(&BASE.replace(
            "  targets:",
            &format!("  behavior: {{enforce: {enforce}}}\n  targets:"),
        ))
    };
    assert!(with("{enabled: true, interval: 30m}").is_valid());
    assert!(with("{enabled: false}").is_valid());
    assert!(with("{interval: 24h}").is_valid());
    assert!(with("{interval: 5m}").is_valid());
    for (interval, needle) in [
        ("4m", "minimum of 5m"),
        ("25h", "maximum of 24h"),
        ("soon", ""),
    ] {
        let d = with(&format!("{{interval: {interval}}}"));
        assert!(
            has(&d.errors, "spec.behavior.enforce.interval", needle),
            "{interval}: {d:?}"
        );
    }
}

#[test]
fn exceptions_and_connectors_in_the_file_are_validated() {
    let text = format!(
        "{BASE}---
apiVersion: hibernator.dev/v1alpha1
kind: ScheduleException
metadata: {{name: holiday}}
spec: {{planRef: {{name: dev}}, validFrom: '2026-12-24T00:00:00Z', validUntil: '2026-12-20T00:00:00Z', type: extend, windows: [{{start: '00:00', end: '24:00', daysOfWeek: [MON]}}]}}
---
apiVersion: hibernator.dev/v1alpha1
kind: K8SCluster
metadata: {{name: both}}
spec: {{eks: {{name: dev, region: eu-west-1}}, k8s: {{inCluster: true}}, providerRef: {{name: aws}}}}
---
apiVersion: hibernator.dev/v1alpha1
kind: CloudProvider
metadata: {{name: aws}}
spec: {{type: aws, aws: {{accountId: '12345', region: eu-west-1, auth: {{serviceAccount: {{}}}}}}}}
"
    );
    let d = validate(&text);
    assert!(
        d.errors
            .iter()
            .any(|e| e.field.starts_with("ScheduleException/holiday: spec.valid")),
        "{d:?}"
    );
    assert!(
        has(&d.errors, "K8SCluster/both: spec", "mutually exclusive"),
        "{d:?}"
    );
    assert!(
        has(
            &d.errors,
            "CloudProvider/aws: spec.aws.accountId",
            "12-digit"
        ),
        "{d:?}"
    );
}

#[test]
fn cluster_and_provider_forms() {
    let cluster: K8SCluster = serde_json::from_value(serde_json::json!({
        "apiVersion": "hibernator.dev/v1alpha1", "kind": "K8SCluster",
        "metadata": {"name": "c"},
        "spec": {"eks": {"name": "dev", "region": "eu-west-1"}}
    }))
    .unwrap();
    assert!(has(
        &validate_cluster(&cluster).errors,
        "spec.providerRef",
        "CloudProvider"
    ));
    let provider: CloudProvider = serde_json::from_value(serde_json::json!({
        "apiVersion": "hibernator.dev/v1alpha1", "kind": "CloudProvider",
        "metadata": {"name": "p"},
        "spec": {"type": "aws", "aws": {"accountId": "123456789012", "region": "eu-west-1",
                 "assumeRoleArn": "arn:aws:iam::123456789012:role/hibernator",
                 "auth": {"static": {"secretRef": {"name": "aws-keys"}}}}}
    }))
    .unwrap();
    assert!(validate_cloud_provider(&provider).is_valid());
}

#[test]
fn the_rfcs_provider_ref_with_kind_is_accepted_and_other_kinds_are_not() {
    // RFC-0001's K8SCluster, as written.
    let cluster: K8SCluster = serde_json::from_value(serde_json::json!({
        "apiVersion": "hibernator.dev/v1alpha1", "kind": "K8SCluster",
        "metadata": {"name": "c"},
        "spec": {"providerRef": {"kind": "CloudProvider", "name": "aws-prod"},
                 "eks": {"name": "my-cluster", "region": "us-east-1"}}
    }))
    .unwrap();
    assert!(validate_cluster(&cluster).is_valid());
    let provider = cluster.spec.provider_ref.as_ref().unwrap();
    assert_eq!(
        provider.kind,
        Some(crate::types::ProviderKind::CloudProvider)
    );
    assert_eq!(provider.name, "aws-prod");
    // Written back with its kind (no silent drop).
    let written = serde_json::to_value(&cluster.spec).unwrap();
    assert_eq!(written["providerRef"]["kind"], "CloudProvider");
    let error = serde_json::from_value::<K8SCluster>(serde_json::json!({
        "apiVersion": "hibernator.dev/v1alpha1", "kind": "K8SCluster",
        "metadata": {"name": "c"},
        "spec": {"providerRef": {"kind": "Secret", "name": "aws-prod"},
                 "eks": {"name": "my-cluster", "region": "us-east-1"}}
    }))
    .unwrap_err()
    .to_string();
    assert!(error.contains("CloudProvider"), "{error}");
    // The CRD schema refuses other kinds too (the API server's check).
    let crd = serde_json::to_value(<K8SCluster as kube_core::CustomResourceExt>::crd()).unwrap();
    let kind = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
        ["providerRef"]["properties"]["kind"];
    assert_eq!(kind["enum"], serde_json::json!(["CloudProvider"]), "{kind}");
}

#[test]
fn dns_labels() {
    assert!(check_dns_label("db-1", 63).is_ok());
    assert!(check_dns_label("-db", 63).is_err());
    assert!(check_dns_label("Db", 63).is_err());
    assert!(check_dns_label(&"a".repeat(64), 63).is_err());
}

fn connector_catalog() -> ParameterCatalog {
    use crate::params::ConnectorUse;
    use crate::types::ConnectorKind;
    ParameterCatalog::new()
        .with_connector(
            Arc::new(TypedParameters::<serde_json::Value>::new("db")),
            ConnectorUse::Kind(ConnectorKind::CloudProvider),
        )
        .with_connector(
            Arc::new(TypedParameters::<serde_json::Value>::new("apps")),
            ConnectorUse::Kind(ConnectorKind::Other("ArgoInstance".into())),
        )
        .with_connector(
            Arc::new(TypedParameters::<serde_json::Value>::new("notify")),
            ConnectorUse::None,
        )
}

fn validate_targets(targets: &str) -> Diagnostics {
    let text = format!(
        "apiVersion: hibernator.dev/v1alpha1\nkind: HibernatePlan\nmetadata: {{name: dev}}\nspec:\n  schedule:\n    timezone: UTC\n    offHours: [{{start: '20:00', end: '06:00', daysOfWeek: [MON, TUE, WED, THU, FRI, SAT, SUN]}}]\n  targets:\n{targets}"
    );
    let docs = PlanDocuments::from_yaml(&text).expect("test YAML parses");
    validate_documents(&docs, &connector_catalog())
}

#[test]
fn connectors_match_what_the_executor_type_works_with() {
    let d = validate_targets(
        "    - {name: a, type: db, connectorRef: {kind: CloudProvider, name: aws}}\n    - {name: b, type: apps, connectorRef: {kind: ArgoInstance, name: main}}\n    - {name: c, type: notify}\n",
    );
    assert!(d.is_valid(), "{d:?}");
    assert!(d.warnings.is_empty(), "{d:?}");
}

#[test]
fn a_missing_or_wrong_connector_is_named() {
    let d = validate_targets(
        "    - {name: a, type: db}\n    - {name: b, type: db, connectorRef: {kind: K8SCluster, name: here}}\n    - {name: c, type: apps, connectorRef: {kind: CloudProvider, name: aws}}\n",
    );
    assert!(
        has(
            &d.errors,
            "spec.targets[0].connectorRef",
            "is required: executor type \"db\" needs a connector of kind CloudProvider"
        ),
        "{d:?}"
    );
    assert!(
        has(
            &d.errors,
            "spec.targets[1].connectorRef.kind",
            "needs a connector of kind CloudProvider, not K8SCluster"
        ),
        "{d:?}"
    );
    assert!(
        has(
            &d.errors,
            "spec.targets[2].connectorRef.kind",
            "needs a connector of kind ArgoInstance, not CloudProvider"
        ),
        "{d:?}"
    );
}

#[test]
fn a_connector_for_a_type_without_one_is_a_warning() {
    let d = validate_targets(
        "    - {name: c, type: notify, connectorRef: {kind: CloudProvider, name: aws}}\n",
    );
    assert!(d.is_valid(), "{d:?}");
    assert!(
        has(
            &d.warnings,
            "spec.targets[0].connectorRef",
            "needs no connector"
        ),
        "{d:?}"
    );
    let d = validate_targets(
        "    - {name: c, type: notify, connectorRef: {kind: CloudProvider, name: ''}}\n",
    );
    assert!(
        has(
            &d.errors,
            "spec.targets[0].connectorRef.name",
            "is required"
        ),
        "{d:?}"
    );
}
