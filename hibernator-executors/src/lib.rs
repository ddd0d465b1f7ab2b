//! # hibernator-executors
//!
//! The built-in executors of Hibernator and their typed parameters. This
//! module tree currently holds the *shared executor parameters*: one
//! `Parameters` type per executor, with serde shape, JSON schema and semantic
//! checks, used alike by the admission webhook, `hibernator validate` and the
//! executors at run time. Each check names the exact field path it is about.
//!
//! ```
//! use hibernator_executors::catalog;
//! let catalog = catalog();
//! let params = serde_json::json!({"clusterName": "dev", "nodeGroups": ["ng-1"]});
//! let diagnostics = catalog
//!     .get("eks")
//!     .unwrap()
//!     .check(Some(&params), "spec.targets[0].parameters");
//! assert!(diagnostics.errors.is_empty());
//! ```
//!
//! User documentation of every executor and parameter: `docs/executors.md`.

use std::sync::Arc;

use hibernator_core::params::{ParameterCatalog, TypedParameters};

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
pub mod workloadscaler;

pub use common::{AwaitCompletion, DEFAULT_AWAIT_TIMEOUT, ParamsError};
pub use selector::{LabelSelector, Operator, Requirement};

/// The parameter checks of the five built-in executors (`ec2`, `eks`,
/// `karpenter`, `rds`, `workloadscaler`).
pub fn catalog() -> ParameterCatalog {
    ParameterCatalog::new()
        .with(Arc::new(TypedParameters::<ec2::Parameters>::new(ec2::TYPE)))
        .with(Arc::new(TypedParameters::<rds::Parameters>::new(rds::TYPE)))
        .with(Arc::new(TypedParameters::<eks::Parameters>::new(eks::TYPE)))
        .with(Arc::new(TypedParameters::<karpenter::Parameters>::new(
            karpenter::TYPE,
        )))
        .with(Arc::new(
            TypedParameters::<workloadscaler::Parameters>::new(workloadscaler::TYPE),
        ))
}

#[cfg(test)]
mod doc_examples;
