//! Integration tests of hibernator-streaming (one binary, one module per area).
#![allow(clippy::unwrap_used)]

mod support;

mod auth;
mod codegen;
mod e2e;
mod fallback;
mod kube;
mod local_access;
mod logs;
mod payload;
mod replicas;
mod sinks;
mod tls;
