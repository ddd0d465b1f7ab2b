//! Tests of the custom operator: the `argocd-autosync` executor through the
//! conformance kit against the testkit API server (`conformance`), and the
//! crate's own binary as controller and runner processes hibernating and
//! waking a plan with an `argocd-autosync` target (`process`, needs root).

// Helpers outside #[test] functions unwrap like the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod conformance;
mod process;
mod support;
