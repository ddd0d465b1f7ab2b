//! Shared helpers of the AWS integration tests: a moto server per test, SDK
//! configurations pointing at it (or at a fault proxy in front of it),
//! contexts and fast retry policies.

#![allow(dead_code)]

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use hibernator_core::executor::{ExecutionContext, Jitter, RetryPolicy};
use hibernator_core::restore::{MemoryRestoreStore, RestoreRecord, RestoreStore};
use hibernator_core::types::Operation;
use hibernator_testkit::fault_proxy::{FaultConfig, FaultProxy};
use hibernator_testkit::moto::MotoServer;

/// Region every test uses.
pub const REGION: &str = "eu-central-1";
/// Target name used in contexts and restore records.
pub const TARGET: &str = "it-target";
/// Poll interval executors use in tests.
pub const POLL: Duration = Duration::from_millis(10);

/// Starts a fresh moto server (set `HIBERNATOR_MOTO_SERVER` to its binary).
pub async fn moto() -> MotoServer {
    MotoServer::start()
        .await
        .expect("moto server (set HIBERNATOR_MOTO_SERVER)")
}

/// Starts a moto server and an SDK configuration for it.
pub async fn start_moto() -> (MotoServer, SdkConfig) {
    let server = moto().await;
    let config = sdk_config(server.endpoint()).await;
    (server, config)
}

/// A fault proxy in front of `upstream` injecting faults at `rate`.
pub async fn proxy(upstream: &str, rate: f64) -> FaultProxy {
    FaultProxy::start(upstream, FaultConfig { rate, seed: 42 })
        .await
        .expect("fault proxy")
}

/// An SDK configuration for `endpoint` with static test credentials, region
/// [`REGION`] and fast SDK retries (no process environment involved).
pub async fn sdk_config(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .retry_config(
            RetryConfig::standard()
                .with_initial_backoff(Duration::from_millis(10))
                .with_max_backoff(Duration::from_millis(100)),
        )
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
