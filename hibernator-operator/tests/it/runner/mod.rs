//! Runner, restore ConfigMap store and Job simulator tests on the testkit API
//! server (or the cluster of `HIBERNATOR_TEST_KUBECONFIG`).

// Helpers outside #[test] functions unwrap like the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod custom;
mod e2e;
mod jobsim;
mod store;

use hibernator_testkit::kube::TestCluster;

/// A test namespace with the Hibernator CRDs installed.
pub async fn cluster(prefix: &str) -> TestCluster {
    let cluster = TestCluster::start(prefix).await.expect("test cluster");
    for crd in hibernator_core::crd::all() {
        cluster.ensure_crd(&crd).await.expect("CRD");
    }
    cluster
}
