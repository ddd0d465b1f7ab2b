//! TokenRequest and TokenReview.

use std::time::Duration;

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenReview};
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;

use hibernator_testkit::kube::TestCluster;

async fn review(
    client: &kube::Client,
    token: &str,
    audiences: &[&str],
) -> k8s_openapi::api::authentication::v1::TokenReviewStatus {
    let tr: TokenReview =
        serde_json::from_value(json!({"spec": {"token": token, "audiences": audiences}}))
            .expect("valid TokenReview");
    Api::<TokenReview>::all(client.clone())
        .create(&PostParams::default(), &tr)
        .await
        .expect("token review")
        .status
        .expect("status")
}

#[tokio::test]
async fn token_request_and_review_with_pod_binding() {
    let tc = TestCluster::start("tokens").await.unwrap();
    let client = tc.client();
    let ns = tc.namespace().to_string();
    let sas: Api<ServiceAccount> = Api::default_namespaced(client.clone());
    let sa: ServiceAccount =
        serde_json::from_value(json!({"metadata": {"name": "runner"}})).unwrap();
    sas.create(&PostParams::default(), &sa).await.unwrap();
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "runner-pod"},
        "spec": {"serviceAccountName": "runner", "containers": [{"name": "r", "image": "busybox:1.37"}]}
    }))
    .unwrap();
    let pod = pods.create(&PostParams::default(), &pod).await.unwrap();
    let pod_uid = pod.metadata.uid.clone().unwrap();

    let request: TokenRequest = serde_json::from_value(json!({
        "spec": {
            "audiences": ["hibernator-stream"], "expirationSeconds": 600,
            "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "runner-pod", "uid": pod_uid}
        }
    }))
    .unwrap();
    let issued: TokenRequest = sas
        .create_subresource("token", "runner", &PostParams::default(), &request)
        .await
        .unwrap();
    let token = issued.status.unwrap().token;

    let ok = review(&client, &token, &["hibernator-stream"]).await;
    assert_eq!(ok.authenticated, Some(true), "{:?}", ok.error);
    let user = ok.user.unwrap();
    assert_eq!(
        user.username.unwrap(),
        format!("system:serviceaccount:{ns}:runner")
    );
    assert!(
        user.groups
            .unwrap()
            .contains(&format!("system:serviceaccounts:{ns}"))
    );
    let extra = user.extra.unwrap();
    assert_eq!(
        extra["authentication.kubernetes.io/pod-name"],
        vec!["runner-pod".to_string()]
    );
    assert_eq!(
        extra["authentication.kubernetes.io/pod-uid"],
        vec![pod_uid.clone()]
    );

    let wrong_audience = review(&client, &token, &["someone-else"]).await;
    assert_ne!(wrong_audience.authenticated, Some(true));
    let garbage = review(&client, "not-a-token", &["hibernator-stream"]).await;
    assert_ne!(garbage.authenticated, Some(true));

    if let Some(server) = tc.api_server() {
        let expired =
            server.mint_token(&ns, "runner", &["hibernator-stream"], Duration::ZERO, None);
        assert_ne!(
            review(&client, &expired, &["hibernator-stream"])
                .await
                .authenticated,
            Some(true)
        );
        let minted = server.mint_token(
            &ns,
            "runner",
            &["hibernator-stream"],
            Duration::from_secs(600),
            Some(("runner-pod", &pod_uid)),
        );
        assert_eq!(
            review(&client, &minted, &["hibernator-stream"])
                .await
                .authenticated,
            Some(true)
        );
    }

    // A token bound to a deleted pod is no longer valid.
    pods.delete("runner-pod", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    let mut rejected = false;
    for _ in 0..100 {
        if review(&client, &token, &["hibernator-stream"])
            .await
            .authenticated
            != Some(true)
        {
            rejected = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(rejected, "the token outlived its pod");

    // Too short an expiry is rejected, like a real API server does.
    let short: TokenRequest =
        serde_json::from_value(json!({"spec": {"audiences": ["x"], "expirationSeconds": 60}}))
            .unwrap();
    let err = sas
        .create_subresource::<_, TokenRequest>("token", "runner", &PostParams::default(), &short)
        .await
        .unwrap_err();
    assert!(matches!(err, kube::Error::Api(s) if s.code == 422));
    tc.cleanup().await.unwrap();
}
