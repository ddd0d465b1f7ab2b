//! Generated protocol types of `hibernator.api.v1` (from
//! `proto/hibernator/streaming/v1alpha1/execution.proto`).
//!
//! The code and the descriptor set are committed; an integration test
//! regenerates them with `tonic-prost-build` + `protox` and fails on drift.

#[allow(missing_docs, clippy::all, clippy::pedantic)]
mod generated {
    include!("../gen/hibernator.api.v1.rs");
}

pub use generated::*;

/// Encoded `FileDescriptorSet` of the protocol (with its imports), served by
/// gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!("../gen/descriptor.bin");

/// Fully qualified gRPC service name.
pub const SERVICE_NAME: &str = "hibernator.api.v1.ExecutionService";

/// Converts a chrono time into a protobuf timestamp.
pub fn timestamp(t: chrono::DateTime<chrono::Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// Converts a protobuf timestamp into chrono time; `None` when absent or out
/// of range.
pub fn from_timestamp(t: Option<&prost_types::Timestamp>) -> Option<chrono::DateTime<chrono::Utc>> {
    let t = t?;
    let nanos = u32::try_from(t.nanos).ok()?;
    chrono::DateTime::from_timestamp(t.seconds, nanos)
}
