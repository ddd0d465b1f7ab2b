//! Connector resources: `CloudProvider` (AWS account access) and `K8SCluster`
//! (Kubernetes API access).

use kube_derive::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ObjectRef, SecretRef};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

/// Desired state of a `CloudProvider`.
#[derive(CustomResource, Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "hibernator.dev",
    version = "v1alpha1",
    kind = "CloudProvider",
    doc = "Access to a cloud account (AWS) that executors act in.",
    plural = "cloudproviders",
    namespaced,
    status = "ConnectorStatus",
    crates(
        kube_core = "::kube_core",
        k8s_openapi = "::k8s_openapi",
        schemars = "::schemars",
        serde = "::serde",
        serde_json = "::serde_json"
    ),
    printcolumn = r#"{"name":"Type","type":"string","jsonPath":".spec.type"}"#,
    printcolumn = r#"{"name":"Account","type":"string","jsonPath":".spec.aws.accountId"}"#,
    printcolumn = r#"{"name":"Region","type":"string","jsonPath":".spec.aws.region"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct CloudProviderSpec {
    /// Provider type; only `aws` today.
    #[serde(rename = "type")]
    pub kind: CloudProviderType,
    /// AWS settings; required when `type: aws`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<AwsProvider>,
}

/// Cloud provider types.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CloudProviderType {
    /// Amazon Web Services.
    #[default]
    Aws,
}

/// AWS account access.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AwsProvider {
    /// 12-digit AWS account id.
    pub account_id: String,
    /// AWS region, e.g. `eu-central-1`.
    pub region: String,
    /// Role assumed on top of the base credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assume_role_arn: Option<String>,
    /// Where the base credentials come from.
    #[serde(default)]
    pub auth: AwsAuth,
}

/// Source of AWS base credentials: exactly one of `serviceAccount` or `static`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AwsAuth {
    /// Use the runner's default credential chain (IRSA / web identity, env, profile).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<ServiceAccountAuth>,
    /// Static keys from a Secret with `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`.
    #[serde(rename = "static", default, skip_serializing_if = "Option::is_none")]
    pub static_keys: Option<StaticAuth>,
}

/// Default-chain credentials (IRSA). Has no fields today.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ServiceAccountAuth {}

/// Static credentials from a Secret.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StaticAuth {
    /// Secret holding `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`.
    pub secret_ref: SecretRef,
}

/// Desired state of a `K8SCluster`.
#[derive(CustomResource, Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "hibernator.dev",
    version = "v1alpha1",
    kind = "K8SCluster",
    doc = "Access to a Kubernetes cluster (EKS or any kubeconfig) that executors act in.",
    plural = "k8sclusters",
    namespaced,
    status = "ConnectorStatus",
    crates(
        kube_core = "::kube_core",
        k8s_openapi = "::k8s_openapi",
        schemars = "::schemars",
        serde = "::serde",
        serde_json = "::serde_json"
    ),
    printcolumn = r#"{"name":"EKS","type":"string","jsonPath":".spec.eks.name"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct K8SClusterSpec {
    /// `CloudProvider` used for EKS access (required with `eks`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_ref: Option<ProviderRef>,
    /// An EKS cluster, reached with an in-process EKS token. Exclusive with `k8s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eks: Option<EksClusterRef>,
    /// A generic cluster, reached by kubeconfig or in-cluster config. Exclusive with `eks`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k8s: Option<GenericCluster>,
}

/// Kind of the object a `providerRef` names: `CloudProvider`, the only
/// kind (and the default when omitted).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum ProviderKind {
    /// A `CloudProvider` of this API group.
    #[default]
    CloudProvider,
}

/// The `CloudProvider` a `K8SCluster` takes its cloud credentials from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProviderRef {
    /// Kind of the referenced object: `CloudProvider` (the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<ProviderKind>,
    /// Name of the `CloudProvider`.
    pub name: String,
    /// Namespace of the `CloudProvider`; defaults to the `K8SCluster`'s namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

impl From<ObjectRef> for ProviderRef {
    fn from(r: ObjectRef) -> Self {
        Self {
            kind: None,
            name: r.name,
            namespace: r.namespace,
        }
    }
}

/// An EKS cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EksClusterRef {
    /// EKS cluster name.
    pub name: String,
    /// AWS region of the cluster.
    pub region: String,
}

/// Access to a generic Kubernetes cluster: exactly one of `kubeconfigRef` or `inCluster`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GenericCluster {
    /// Secret whose `kubeconfig` key holds a kubeconfig.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubeconfig_ref: Option<SecretRef>,
    /// Use the runner pod's own in-cluster configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_cluster: Option<bool>,
}

/// Observed state of a connector.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectorStatus {
    /// `Ready` condition: whether the connector could be used last time it was checked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Generation of the spec this status reflects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}
