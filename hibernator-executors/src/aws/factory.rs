//! The factory of the AWS executors: one executor per target, built from the
//! SDK configuration of the target's CloudProvider.

use std::sync::Arc;

use aws_config::SdkConfig;
use hibernator_core::executor::{Executor, typed};

use super::ec2::Ec2Executor;
use super::eks::EksExecutor;
use super::rds::RdsExecutor;

/// The target types this factory builds.
pub const AWS_TYPES: [&str; 3] = [crate::ec2::TYPE, crate::eks::TYPE, crate::rds::TYPE];

/// The AWS executor for target type `kind` (`ec2`, `rds`, `eks`), built with
/// `config`; `None` when this build has no AWS executor of that type.
pub fn executor_for(kind: &str, config: &SdkConfig) -> Option<Arc<dyn Executor>> {
    match kind {
        crate::ec2::TYPE => Some(typed(Ec2Executor::new(config))),
        crate::eks::TYPE => Some(typed(EksExecutor::new(config))),
        crate::rds::TYPE => Some(typed(RdsExecutor::new(config))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_every_aws_type_and_nothing_else() {
        let config = SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        for kind in AWS_TYPES {
            let executor = executor_for(kind, &config).expect(kind);
            assert_eq!(executor.executor_type(), kind);
        }
        assert!(executor_for("karpenter", &config).is_none());
        assert!(executor_for("gke", &config).is_none());
    }
}
