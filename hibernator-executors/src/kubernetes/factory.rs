//! The factory of the Kubernetes executors: one executor per target, built
//! from the client of the target's cluster.

use std::sync::Arc;

use hibernator_core::executor::{Executor, typed};

use super::karpenter::KarpenterExecutor;
use super::workloadscaler::WorkloadScalerExecutor;

/// The target types this factory builds.
pub const KUBERNETES_TYPES: [&str; 2] = [crate::karpenter::TYPE, crate::workloadscaler::TYPE];

/// The Kubernetes executor for target type `kind` (`workloadscaler`,
/// `karpenter`) acting through `client`; `None` for any other type.
pub fn executor_for(kind: &str, client: kube::Client) -> Option<Arc<dyn Executor>> {
    match kind {
        crate::workloadscaler::TYPE => Some(typed(WorkloadScalerExecutor::new(client))),
        crate::karpenter::TYPE => Some(typed(KarpenterExecutor::new(client))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn builds_every_kubernetes_type_and_nothing_else() {
        let config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
        let client = kube::Client::try_from(config).unwrap();
        for kind in KUBERNETES_TYPES {
            let executor = executor_for(kind, client.clone()).expect(kind);
            assert_eq!(executor.executor_type(), kind);
        }
        assert!(executor_for("ec2", client.clone()).is_none());
        assert!(executor_for("gke", client).is_none());
    }
}
