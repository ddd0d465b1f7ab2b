//! The process tier: the built `hibernator` binary as separate OS processes
//! (controller, runner Jobs, admission webhook) against the testkit API
//! server over HTTPS (or `HIBERNATOR_TEST_KUBECONFIG`) and moto, each with a
//! hard timeout. What we ship is what these run: a bug only a process can
//! show (a lock on stdout, signals, environment parsing, TLS files, in-cluster
//! config) fails here.
//!
//! Needs root (the testkit kubelet runs every container in a private mount
//! namespace so that tokens and files sit at their real paths).

// Helpers outside #[test] functions unwrap like the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admission;
mod burst;
mod cycle;
mod enforce;
mod journey;
mod journey_support;
mod notify;
mod restart;
mod shards;
mod support;
