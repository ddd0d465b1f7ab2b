//! Kubernetes executors (`workloadscaler`, `karpenter`) and the cluster
//! connectors they run with: kubeconfig Secrets, in-cluster configuration
//! (feature `kubernetes`) and EKS clusters with an in-process bearer token
//! (features `kubernetes` and `aws`).

#[cfg(feature = "aws")]
pub mod auth;
pub mod common;
pub mod connector;
#[cfg(feature = "aws")]
pub mod eks_token;
pub mod error;
pub mod karpenter;
pub mod workloadscaler;

pub use karpenter::KarpenterExecutor;
pub use workloadscaler::WorkloadScalerExecutor;
