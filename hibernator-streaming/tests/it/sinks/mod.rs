//! The log sinks: object storage (local filesystem and
//! S3 on moto), Splunk HEC and Datadog against local receivers, the batcher
//! and the configuration.

mod batcher;
mod common;
mod config;
mod datadog;
mod object_fs;
mod object_s3;
#[cfg(feature = "otlp")]
mod otlp;
mod splunk;
