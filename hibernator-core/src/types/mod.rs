//! Custom resource types of the `hibernator.dev/v1alpha1` API group.
//!
//! These are plain serde/schemars types plus `kube-derive` generated
//! resource wrappers; they depend on `kube-core` and `k8s-openapi` only, never
//! on a Kubernetes client.

mod accounting;
mod calendar;
mod connectors;
mod enforce;
mod exception;
mod notification;
mod plan;

pub use accounting::*;
pub use calendar::*;
pub use connectors::*;
pub use enforce::*;
pub use exception::*;
pub use notification::*;
pub use plan::*;

/// The API group of every Hibernator resource.
pub const API_GROUP: &str = "hibernator.dev";
/// The API version of every Hibernator resource.
pub const API_VERSION: &str = "v1alpha1";

/// A reference to a namespaced object by name, optionally in another namespace.
#[derive(
    Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    /// Name of the referenced object.
    pub name: String,
    /// Namespace of the referenced object; defaults to the referring object's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// A reference to one key of a Secret.
#[derive(
    Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub struct SecretRef {
    /// Name of the Secret.
    pub name: String,
    /// Namespace of the Secret; defaults to the referring object's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}
