//! Fault hooks: injected failures, latency, request counters.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

use hibernator_testkit::kube::ApiServer;

use crate::common::deployment;

#[tokio::test]
async fn injected_failures_counters_and_latency() {
    let server = ApiServer::start().await.unwrap();
    let api: Api<Deployment> = Api::default_namespaced(server.client());
    api.create(&PostParams::default(), &deployment("web", 2))
        .await
        .unwrap();
    server.reset_request_counts();

    // kube's client retries 429/503/504 by itself: the caller sees success,
    // the counters see every attempt.
    server.fail_next("get", "deployments", 2, 503);
    assert!(api.get("web").await.is_ok());
    assert_eq!(server.request_count("get", "deployments"), 3);

    server.fail_next("get", "deployments", 1, 500);
    let err = api.get("web").await.unwrap_err();
    assert!(matches!(err, kube::Error::Api(s) if s.code == 500 && s.reason == "InternalError"));
    assert!(api.get("web").await.is_ok());
    server.reset_request_counts();

    server.fail_next("patch", "deployments/scale", 1, 409);
    let scale_patch = Patch::Merge(json!({"spec": {"replicas": 0}}));
    let err = api
        .patch_scale("web", &PatchParams::default(), &scale_patch)
        .await
        .unwrap_err();
    assert!(matches!(err, kube::Error::Api(s) if s.code == 409 && s.reason == "Conflict"));
    // The failed call changed nothing; the retry does.
    assert_eq!(
        api.get("web").await.unwrap().spec.unwrap().replicas,
        Some(2)
    );
    api.patch_scale("web", &PatchParams::default(), &scale_patch)
        .await
        .unwrap();
    assert_eq!(server.request_count("patch", "deployments/scale"), 2);
    assert_eq!(server.request_count("patch", "deployments"), 0);
    assert_eq!(server.request_count("list", "deployments"), 0);

    server.set_latency(Duration::from_millis(5));
    assert_eq!(
        api.get("web").await.unwrap().spec.unwrap().replicas,
        Some(0)
    );
    server.set_latency(Duration::ZERO);
    server.reset_request_counts();
    assert_eq!(server.request_count("get", "deployments"), 0);
}
