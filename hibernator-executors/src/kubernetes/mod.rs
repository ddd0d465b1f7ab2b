//! Kubernetes executors (`workloadscaler`, `karpenter`) and the cluster
//! connectors they run with: kubeconfig Secrets, in-cluster configuration and
//! EKS clusters with an in-process bearer token (feature `kubernetes`).

pub mod auth;
pub mod common;
pub mod connector;
pub mod eks_token;
pub mod error;
pub mod factory;
pub mod karpenter;
pub mod workloadscaler;

pub use factory::executor_for;
pub use karpenter::KarpenterExecutor;
pub use workloadscaler::WorkloadScalerExecutor;
