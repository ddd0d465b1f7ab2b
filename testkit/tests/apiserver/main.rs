//! Integration tests of the in-process Kubernetes API server, through a real
//! `kube::Client`. Every test that does not need a server hook also runs
//! against a real cluster when `HIBERNATOR_TEST_KUBECONFIG` is set.

mod common;
mod controller;
mod crud;
mod discovery;
mod faults;
mod fidelity;
mod gc;
mod harness;
mod kinds;
mod kubelet;
mod queries;
mod subresources;
mod tokens;
mod watch;
