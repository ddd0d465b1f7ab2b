//! Shared fixtures.

use k8s_openapi::api::apps::v1::Deployment;
use serde_json::json;

/// A Deployment with `replicas` and an `app=<name>` selector.
pub fn deployment(name: &str, replicas: i32) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name, "tier": "web"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "main", "image": "nginx:1.27"}]}
            }
        }
    }))
    .expect("valid Deployment")
}

/// Generous bound for what a real control plane does in the background
/// (garbage collection, namespace publishers); never asserted as a time.
pub const BACKGROUND: std::time::Duration = std::time::Duration::from_secs(60);

/// Polls `check` until it returns `Some`, failing after [`BACKGROUND`].
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + BACKGROUND;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {BACKGROUND:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
