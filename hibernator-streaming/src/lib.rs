//! # hibernator-streaming
//!
//! Streaming of runner logs and progress to the control plane: a gRPC
//! `ExecutionService` with an HTTP webhook fallback, authenticated with
//! projected ServiceAccount tokens (TokenReview), and sinks that persist or
//! forward runner logs.

pub mod sink;
