//! Shared helpers of the AWS integration tests: a moto server per test, SDK
//! configurations pointing at it (or at a fault proxy in front of it),
//! contexts and fast retry policies.

#![allow(dead_code)]

use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use hibernator_core::executor::{ExecutionContext, Jitter, RetryPolicy};
use hibernator_core::restore::{MemoryRestoreStore, RestoreRecord, RestoreStore};
use hibernator_core::types::Operation;
use hibernator_testkit::moto::MotoServer;

/// Region every test uses.
pub const REGION: &str = "eu-central-1";
/// Target name used in contexts and restore records.
pub const TARGET: &str = "it-target";
/// Poll interval executors use in tests.
pub const POLL: Duration = Duration::from_millis(10);

/// Starts a fresh moto server (set `HIBERNATOR_MOTO_SERVER` to its binary).
pub async fn moto() -> MotoServer {
    MotoServer::start().await.expect("start moto_server")
}

/// An SDK configuration for `endpoint` with static test credentials.
pub async fn sdk_config(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .load()
        .await
}

/// A context for `operation` of [`TARGET`] in `cycle`.
pub fn ctx(operation: Operation, cycle: &str) -> ExecutionContext {
    ExecutionContext::builder("it-plan", TARGET, cycle, operation)
        .timeout(Duration::from_secs(300))
        .build()
}

/// A retry policy with short delays.
pub fn fast_retry(max_retries: u32) -> RetryPolicy {
    RetryPolicy {
        max_retries,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(100),
        jitter: Jitter::Equal,
    }
}

/// The record of [`TARGET`] in `store` (panics when there is none).
pub async fn record(store: &MemoryRestoreStore) -> RestoreRecord {
    store
        .load(TARGET)
        .await
        .expect("load record")
        .expect("a record exists")
        .value
}
