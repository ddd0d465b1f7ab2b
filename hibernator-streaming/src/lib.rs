//! # hibernator-streaming
//!
//! Streaming of runner logs and progress to the control plane: a gRPC
//! `ExecutionService` with an HTTP webhook fallback, authenticated with
//! projected ServiceAccount tokens (TokenReview) bound to the runner Job of
//! the execution, and sinks that persist or forward runner logs.
//!
//! - [`server::StreamingServer`] runs in the controller: gRPC (with health and
//!   reflection) and webhook listeners feeding one [`ingest::Ingest`].
//! - [`client::StreamClient`] runs in the runner: `auto|grpc|webhook`
//!   transport with real fallback, bounded log queue, heartbeats.
//! - [`auth`] verifies tokens ([`auth::TokenReviewer`]) and binds them to the
//!   execution ([`auth::ExecutionDirectory`]).

pub mod auth;
pub mod client;
pub mod config;
pub mod ingest;
pub mod metrics;
pub mod progress;
pub mod proto;
pub mod server;
pub mod sink;
pub mod status;
