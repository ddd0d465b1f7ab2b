//! # hibernator-streaming
//!
//! Streaming of runner logs and progress to the control plane: a gRPC
//! `ExecutionService` with an HTTP webhook fallback, authenticated with
//! projected ServiceAccount tokens (TokenReview) bound to the runner Job of
//! the execution, and sinks that persist or forward runner logs.
//!
//! - [`wire`] (always): the protocol types and webhook bodies both sides
//!   share; [`config`] (always): server and client settings.
//! - `client` (feature `client`): `client::StreamClient` runs in the
//!   runner: `auto|grpc|webhook` transport with real fallback, bounded log
//!   queue, heartbeats. Links tonic's client and reqwest, not axum,
//!   object_store or OpenTelemetry.
//! - `server` (feature `server`): `server::StreamingServer` runs in the
//!   controller: gRPC (with health and reflection) and webhook listeners
//!   feeding one `ingest::Ingest`; `auth` verifies tokens
//!   (`auth::TokenReviewer`) and binds them to the execution
//!   (`auth::ExecutionDirectory`); `sink` persists (S3, filesystem) and
//!   forwards (Splunk, Datadog; OTLP with feature `otlp`) runner logs.
//!
//! Default features: `client` and `server`. A runner-only embedder takes
//! `default-features = false, features = ["client"]`.

#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod config;
pub mod wire;

#[cfg(feature = "server")]
pub mod auth;
#[cfg(feature = "client")]
pub mod client;
#[cfg(feature = "server")]
pub mod ingest;
#[cfg(feature = "server")]
pub mod metrics;
#[cfg(feature = "server")]
pub mod progress;
#[cfg(feature = "server")]
pub mod server;
#[cfg(feature = "server")]
pub mod sink;
#[cfg(feature = "server")]
pub mod status;
