//! The process kubelet keeps a Pod's ServiceAccount tokens fresh while the
//! process runs (a controller lives longer than its first token). Needs root
//! (private mount namespaces); also runs against a real cluster.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::authentication::v1::TokenReview;
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use kube::api::{Api, PostParams};
use serde_json::json;

use hibernator_testkit::kube::TestCluster;
use hibernator_testkit::kubelet::{
    DEFAULT_ROOT_DIR, Kubelet, KubeletConfig, PodRef, SERVICE_ACCOUNT_DIR,
};

/// Where the test Pod mounts its projected token volume.
const PROJECTED_DIR: &str = "/var/run/hibernator-testkit-test/stream";

async fn authenticated(client: &kube::Client, token: &str, audience: &str) -> bool {
    let review: TokenReview =
        serde_json::from_value(json!({"spec": {"token": token, "audiences": [audience]}}))
            .expect("valid TokenReview");
    Api::<TokenReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await
        .expect("token review")
        .status
        .and_then(|s| s.authenticated)
        .unwrap_or(false)
}

#[tokio::test]
async fn tokens_are_replaced_while_the_process_runs() {
    let tc = TestCluster::start("kubelet-tokens").await.unwrap();
    let client = tc.client();
    let ns = tc.namespace().to_string();
    let sa: ServiceAccount =
        serde_json::from_value(json!({"metadata": {"name": "rotated"}})).unwrap();
    Api::<ServiceAccount>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &sa)
        .await
        .unwrap();
    // Reads both token files, waits past the refresh, reads them again.
    let script = format!(
        "for i in 1 2; do cat {SERVICE_ACCOUNT_DIR}/token; echo; cat {PROJECTED_DIR}/token; echo; sleep 4; done"
    );
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "rotated"},
        "spec": {
            "serviceAccountName": "rotated",
            "containers": [{
                "name": "main", "image": "busybox:1.37",
                "command": ["/bin/sh", "-c", script],
                "volumeMounts": [{"name": "stream", "mountPath": PROJECTED_DIR}]
            }],
            "volumes": [{"name": "stream", "projected": {"sources": [
                {"serviceAccountToken": {"audience": "hibernator-stream", "expirationSeconds": 600, "path": "token"}}
            ]}}]
        }
    }))
    .unwrap();
    let pod = Api::<Pod>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &pod)
        .await
        .unwrap();
    let logs = tempfile::tempdir().unwrap();
    let kubelet = Kubelet::new(
        client.clone(),
        KubeletConfig {
            endpoint: tc.endpoint().clone(),
            images: BTreeMap::new(),
            extra_env: BTreeMap::new(),
            log_dir: logs.path().to_path_buf(),
            root_dir: DEFAULT_ROOT_DIR.into(),
            run_timeout: Duration::from_secs(60),
            token_refresh: Some(Duration::from_secs(1)),
        },
    );
    let mut process = kubelet
        .start(&PodRef {
            namespace: ns.clone(),
            name: "rotated".into(),
            uid: pod.metadata.uid.clone().unwrap(),
            spec: pod.spec.clone().unwrap(),
            env: BTreeMap::new(),
        })
        .await
        .unwrap();
    let exit = process
        .wait_timeout(Duration::from_secs(60))
        .await
        .expect("the pod ends");
    let log = std::fs::read_to_string(process.log_path()).unwrap();
    assert_eq!(exit.code, 0, "{log}");
    let tokens: Vec<&str> = log.lines().filter(|l| !l.is_empty()).collect();
    let [api_first, stream_first, api_then, stream_then] = tokens[..] else {
        panic!("four tokens expected, got: {log}");
    };
    assert_ne!(
        api_first, api_then,
        "the ServiceAccount volume's token was not replaced"
    );
    assert_ne!(
        stream_first, stream_then,
        "the projected token was not replaced"
    );
    // The new tokens are as good as the old: same audience, same binding.
    let api_audience = "https://kubernetes.default.svc";
    for (token, audience) in [
        (api_first, api_audience),
        (api_then, api_audience),
        (stream_first, "hibernator-stream"),
        (stream_then, "hibernator-stream"),
    ] {
        assert!(
            authenticated(&client, token, audience).await,
            "a token for {audience} does not authenticate"
        );
    }
    drop(process);
    tc.cleanup().await.unwrap();
}
