//! Shared helpers of the integration tests: a moto server per test and SDK
//! configurations pointing at it (or at a fault proxy in front of it).

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use hibernator_testkit::fault_proxy::{FaultConfig, FaultProxy};
use hibernator_testkit::moto::MotoServer;

/// Starts a fresh moto server (each test gets its own).
pub async fn moto() -> MotoServer {
    MotoServer::start()
        .await
        .expect("moto server (set HIBERNATOR_MOTO_SERVER)")
}

/// A fault proxy in front of `upstream` injecting faults at `rate`.
pub async fn proxy(upstream: &str, rate: f64) -> FaultProxy {
    FaultProxy::start(upstream, FaultConfig { rate, seed: 42 })
        .await
        .expect("fault proxy")
}

/// An SDK configuration for `endpoint` with static test credentials, region
/// `eu-central-1` and fast SDK retries (no process environment involved).
pub async fn sdk_config(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("eu-central-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .retry_config(
            RetryConfig::standard()
                .with_initial_backoff(Duration::from_millis(10))
                .with_max_backoff(Duration::from_millis(100)),
        )
        .load()
        .await
}
