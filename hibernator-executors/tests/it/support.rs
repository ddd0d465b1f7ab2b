//! Shared support of the integration tests: moto server and SDK configs.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use hibernator_testkit::moto::MotoServer;

/// Region every test uses.
pub const REGION: &str = "eu-central-1";

/// An SDK configuration pointing at `endpoint` (moto or a fault proxy in
/// front of it) with static test credentials. The SDK's own retries back off
/// briefly so fault-injection tests stay fast.
pub async fn sdk_config(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(Duration::from_millis(5))
                .with_max_backoff(Duration::from_millis(50)),
        )
        .load()
        .await
}

/// Starts a fresh moto server and returns it with an SDK configuration
/// pointing at it. The server stops when dropped.
pub async fn start_moto() -> (MotoServer, SdkConfig) {
    let moto = MotoServer::start().await.expect("moto server starts");
    let config = sdk_config(moto.endpoint()).await;
    (moto, config)
}
