//! Integration tests of the executors against moto through the real AWS SDK.

mod support;

mod connector;
mod ec2;
mod eks;
mod karpenter;
mod kube_connector;
mod rds;
mod workloadscaler;
