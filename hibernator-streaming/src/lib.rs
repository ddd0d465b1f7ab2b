//! # hibernator-streaming
//!
//! Streaming of runner logs and progress to the control plane (gRPC with an
//! HTTP webhook fallback). The transport lands with the streaming issue; this
//! crate currently exports nothing.
