//! Test support shared by the Hibernator crates. Not a product crate.
//!
//! - [`moto`]: starts a [moto](https://github.com/getmoto/moto) server (a real
//!   AWS API emulator) on a free loopback port, resets it and tears it down,
//!   or uses `HIBERNATOR_TEST_AWS_ENDPOINT` when set.
//! - [`fault_proxy`]: an HTTP proxy in front of an AWS endpoint that injects
//!   throttling and 5xx errors at a given rate and counts requests per
//!   service and action, so tests can assert call budgets and retries.
//! - [`kube`]: an in-process Kubernetes API server for a real `kube::Client`,
//!   and [`kube::TestCluster`], which runs the same tests on a real cluster
//!   when `HIBERNATOR_TEST_KUBECONFIG` is set.
//! - [`jobsim`]: a Job simulator that runs runner Jobs in-process (Pod,
//!   projected token via TokenRequest, Job and Pod status as on a cluster).
//! - [`kubelet`]: runs a Pod's container as a child process in a private
//!   mount namespace (projected tokens, ServiceAccount volume, termination
//!   log at their real paths; in-cluster environment), for the process-level
//!   tests of the shipped binary; plugs into the Job simulator.
//! - [`process`]: the process tier's world for any crate that builds a
//!   `hibernator` binary (the operator's, or an embedder's): cluster, CRDs,
//!   ServiceAccounts, kubelet and Job simulator, the controller as a Pod.

pub mod fault_proxy;
pub mod jobsim;
pub mod kube;
pub mod kubelet;
pub mod moto;
pub mod process;
