//! # hibernator-executors
//!
//! The built-in executors of Hibernator (EC2, RDS, EKS node groups with
//! feature `aws`; Karpenter NodePools and Kubernetes workloads with feature
//! `kubernetes`), their typed parameters and the connectors they need, and
//! [`ExecutorSet`]: the one place a binary learns which executors exist and
//! how to build each for a target. The operator uses it for everything
//! (validation, the runner, `hibernator run`); embedders extend it.
//!
//! Every executor's `Parameters` type (serde shape, JSON schema, semantic
//! checks) is shared by the admission webhook, `hibernator validate` and
//! the executors at run time; each check names the exact field it is about.
//!
//! ```
//! # #[cfg(all(feature = "aws", feature = "kubernetes"))] {
//! use hibernator_executors::ExecutorSet;
//! let catalog = ExecutorSet::new().catalog();
//! let params = serde_json::json!({"clusterName": "dev", "nodeGroups": ["ng-1"]});
//! let diagnostics = catalog
//!     .get("eks")
//!     .unwrap()
//!     .check(Some(&params), "spec.targets[0].parameters");
//! assert!(diagnostics.errors.is_empty());
//! # }
//! ```
//!
//! User documentation of every executor and parameter: `docs/executors.md`;
//! writing your own: `docs/writing-executors.md`.

#[cfg(feature = "aws")]
pub mod aws;
pub mod common;
pub mod ec2;
pub mod eks;
pub mod karpenter;
#[cfg(feature = "kubernetes")]
pub mod kubernetes;
pub mod rds;
pub mod selector;
pub mod session;
pub mod set;
pub mod workloadscaler;

pub use common::{AwaitCompletion, DEFAULT_AWAIT_TIMEOUT, ParamsError};
pub use selector::{LabelSelector, Operator, Requirement};
#[cfg(feature = "aws")]
pub use set::AwsFactory;
#[cfg(feature = "kubernetes")]
pub use set::{ConnectorFactory, ConnectorRequest, KubernetesFactory};
pub use set::{ExecutorSet, ExecutorSource};

#[cfg(test)]
mod doc_examples;
