//! The HibernatePlan controller against the testkit API server (or a real
//! cluster with `HIBERNATOR_TEST_KUBECONFIG`), runner Jobs played by the
//! testkit JobSimulator with an in-test runner.

// fixtures and tests: a failed unwrap is a failed test
#![allow(clippy::unwrap_used)]

mod budget;
mod calendars;
mod cycle;
pub(crate) mod enforce;
mod faults;
mod shards;
pub(crate) mod support;
