//! Against the in-process Kubernetes API server (or the real cluster named
//! by `HIBERNATOR_TEST_KUBECONFIG`): TokenReview auth bound to the runner
//! Job, and runner client → server → plan status and Events for both
//! transports.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use hibernator_core::types::HibernatePlan;
use hibernator_streaming::auth::{Authenticator, KubeExecutionDirectory, KubeTokenReviewer};
use hibernator_streaming::client::{ActiveTransport, Level, StreamClient};
use hibernator_streaming::config::{ClientConfig, Transport};
use hibernator_streaming::metrics::{AuthFailureReason, StreamingMetrics};
use hibernator_streaming::server::StreamingServer;
use hibernator_testkit::kube::TestCluster;
use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use k8s_openapi::api::events::v1::Event;
use kube::Api;
use kube::api::{ListParams, PostParams};
use prometheus_client::registry::Registry;

use crate::support::loopback;

pub(crate) const AUD: &str = "hibernator-control-plane";
pub(crate) const SA: &str = "hibernator-runner";

pub(crate) struct Runner {
    pub(crate) execution_id: String,
    pub(crate) job: String,
    pub(crate) pod: String,
    pub(crate) pod_uid: String,
}

pub(crate) async fn create_service_account(tc: &TestCluster, name: &str) {
    let api: Api<ServiceAccount> = Api::namespaced(tc.client(), tc.namespace());
    let sa: ServiceAccount =
        serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).unwrap();
    api.create(&PostParams::default(), &sa).await.unwrap();
}

/// A runner Job of `plan`/`target` and a Pod of it.
pub(crate) async fn create_runner(tc: &TestCluster, plan: &str, target: &str) -> Runner {
    let execution_id = tc.unique_name("exec");
    let job_name = tc.unique_name("runner");
    let jobs: Api<Job> = Api::namespaced(tc.client(), tc.namespace());
    let job: Job = serde_json::from_value(serde_json::json!({
        "metadata": {"name": job_name, "labels": {
            "hibernator.dev/execution-id": execution_id,
            "hibernator.dev/plan": plan,
            "hibernator.dev/target": target}},
        "spec": {"suspend": true, "template": {"spec": {
            "serviceAccountName": SA, "restartPolicy": "Never",
            "containers": [{"name": "runner", "image": "busybox"}]}}}
    }))
    .unwrap();
    let job = jobs.create(&PostParams::default(), &job).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(tc.client(), tc.namespace());
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": format!("{job_name}-pod"),
            "labels": {"batch.kubernetes.io/job-name": job_name},
            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": job_name,
                                 "uid": job.metadata.uid.clone().unwrap()}]},
        "spec": {"serviceAccountName": SA, "restartPolicy": "Never", "nodeName": "nowhere",
                 "containers": [{"name": "runner", "image": "busybox"}]}
    }))
    .unwrap();
    let pod = pods.create(&PostParams::default(), &pod).await.unwrap();
    Runner {
        execution_id,
        job: job_name,
        pod: pod.metadata.name.unwrap(),
        pod_uid: pod.metadata.uid.unwrap(),
    }
}

/// A projected-style token: minted in-process, or by TokenRequest on a real cluster.
pub(crate) async fn token(
    tc: &TestCluster,
    sa: &str,
    aud: &str,
    secs: u64,
    pod: Option<(&str, &str)>,
) -> String {
    if let Some(server) = tc.api_server() {
        return server.mint_token(tc.namespace(), sa, &[aud], Duration::from_secs(secs), pod);
    }
    let api: Api<ServiceAccount> = Api::namespaced(tc.client(), tc.namespace());
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: vec![aud.to_string()],
            expiration_seconds: Some(i64::try_from(secs.max(600)).unwrap()),
            bound_object_ref: pod.map(|(name, uid)| BoundObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: Some(name.into()),
                uid: Some(uid.into()),
            }),
        },
        ..TokenRequest::default()
    };
    api.create_token_request(sa, &PostParams::default(), &request)
        .await
        .unwrap()
        .status
        .unwrap()
        .token
}

fn authenticator(tc: &TestCluster, metrics: &StreamingMetrics) -> Authenticator {
    Authenticator::new(
        Arc::new(KubeTokenReviewer::new(tc.client())),
        Arc::new(KubeExecutionDirectory::new(tc.client())),
        metrics.clone(),
    )
}

#[tokio::test]
async fn tokens_are_reviewed_once_and_bound_to_the_runner_job() {
    let tc = TestCluster::start("stream-auth").await.unwrap();
    create_service_account(&tc, SA).await;
    create_service_account(&tc, "other").await;
    let runner = create_runner(&tc, "prod-offhours", "database").await;
    let other_runner = create_runner(&tc, "prod-offhours", "cache").await;
    let metrics = StreamingMetrics::default();
    let auth = authenticator(&tc, &metrics);
    let good = token(&tc, SA, AUD, 600, Some((&runner.pod, &runner.pod_uid))).await;
    let header = format!("Bearer {good}");

    if let Some(server) = tc.api_server() {
        server.reset_request_counts();
    }
    for _ in 0..10 {
        let ok = auth
            .authorize(Some(&header), &runner.execution_id)
            .await
            .unwrap();
        assert_eq!(ok.execution.job_name, runner.job);
        assert_eq!(
            (ok.execution.plan.as_str(), ok.execution.target.as_str()),
            ("prod-offhours", "database")
        );
        assert_eq!(ok.execution.namespace, tc.namespace());
    }
    if let Some(server) = tc.api_server() {
        assert_eq!(
            server.request_count("create", "tokenreviews"),
            1,
            "reviews are cached"
        );
    }

    let cases: Vec<(AuthFailureReason, String, &str)> = vec![
        (
            AuthFailureReason::wrong_identity,
            token(&tc, "other", AUD, 600, None).await,
            runner.execution_id.as_str(),
        ),
        (
            AuthFailureReason::wrong_pod,
            token(
                &tc,
                SA,
                AUD,
                600,
                Some((&other_runner.pod, &other_runner.pod_uid)),
            )
            .await,
            runner.execution_id.as_str(),
        ),
        (
            AuthFailureReason::audience,
            token(&tc, SA, "kubernetes", 600, None).await,
            runner.execution_id.as_str(),
        ),
        (
            AuthFailureReason::unknown_execution,
            good.clone(),
            "exec-does-not-exist",
        ),
        (
            AuthFailureReason::invalid,
            format!("{good}x"),
            runner.execution_id.as_str(),
        ),
    ];
    for (reason, token, execution) in cases {
        let before = metrics.auth_failure_count(reason);
        let err = auth
            .authorize(Some(&format!("Bearer {token}")), execution)
            .await
            .unwrap_err();
        assert_eq!(err.reason(), Some(reason), "{err}");
        assert_eq!(metrics.auth_failure_count(reason), before + 1);
    }
    if tc.api_server().is_some() {
        let expired = token(&tc, SA, AUD, 0, None).await;
        let err = auth
            .authorize(Some(&format!("Bearer {expired}")), &runner.execution_id)
            .await
            .unwrap_err();
        assert_eq!(err.reason(), Some(AuthFailureReason::expired));
    }
    tc.cleanup().await.unwrap();
}

pub(crate) async fn create_plan(tc: &TestCluster, name: &str) {
    tc.ensure_crd(&<HibernatePlan as kube::CustomResourceExt>::crd())
        .await
        .unwrap();
    let api: Api<HibernatePlan> = Api::namespaced(tc.client(), tc.namespace());
    let plan: HibernatePlan = serde_json::from_value(serde_json::json!({
        "apiVersion": "hibernator.dev/v1alpha1", "kind": "HibernatePlan",
        "metadata": {"name": name},
        "spec": {
            "schedule": {"timezone": "UTC", "offHours": [{"start": "20:00", "end": "06:00", "daysOfWeek": ["MON"]}]},
            "execution": {"strategy": {"type": "Sequential"}},
            "targets": [{"name": "database", "type": "rds", "connectorRef": {"kind": "CloudProvider", "name": "aws"},
                         "parameters": {}}]
        }
    }))
    .unwrap();
    api.create(&PostParams::default(), &plan).await.unwrap();
}

async fn runner_reaches_plan_status(transport: Transport) {
    let tc = TestCluster::start("stream-e2e").await.unwrap();
    create_service_account(&tc, SA).await;
    let plan = tc.unique_name("plan");
    create_plan(&tc, &plan).await;
    let runner = create_runner(&tc, &plan, "database").await;
    if let Some(server) = tc.api_server() {
        // One conflict on the status write: the sink re-reads and retries.
        server.fail_next("update", "hibernateplans/status", 1, 409);
    }
    let mut registry = Registry::default();
    let reporter = kube::runtime::events::Reporter {
        controller: "hibernator-controller".into(),
        instance: None,
    };
    let server =
        StreamingServer::kube(loopback(), tc.client(), reporter, Vec::new(), &mut registry)
            .start()
            .await
            .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let token = token(&tc, SA, AUD, 600, Some((&runner.pod, &runner.pod_uid))).await;
    std::fs::write(dir.path().join("token"), token).unwrap();
    let mut config = ClientConfig::new(&runner.execution_id);
    config.transport = transport;
    config.grpc_endpoint = server.grpc_addr().map(|a| a.to_string());
    config.webhook_endpoint = server.webhook_addr().map(|a| format!("http://{a}/logs"));
    config.token_path = dir.path().join("token");
    let client = StreamClient::connect(config).await.unwrap();
    assert_eq!(
        client.transport(),
        if transport == Transport::Webhook {
            ActiveTransport::Webhook
        } else {
            ActiveTransport::Grpc
        }
    );
    client.try_log(Level::Info, "Stopping instances...", BTreeMap::new());
    client
        .progress("Shutdown", 60, "Scaling EC2 instances")
        .await
        .unwrap();

    let plans: Api<HibernatePlan> = Api::namespaced(tc.client(), tc.namespace());
    let mut seen = None;
    for _ in 0..300 {
        let current = plans.get(&plan).await.unwrap();
        let entry = current.status.as_ref().and_then(|s| {
            s.executions
                .iter()
                .find(|e| e.target == "database")
                .cloned()
        });
        if entry.as_ref().and_then(|e| e.progress) == Some(60) {
            seen = entry;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let entry = seen.expect("progress reached status.executions[]");
    assert_eq!(entry.message.as_deref(), Some("Scaling EC2 instances"));

    client
        .complete(false, Some("RDS refused to stop".into()))
        .await
        .unwrap();
    server.shutdown().await.unwrap();
    let current = plans.get(&plan).await.unwrap();
    let entry = current
        .status
        .unwrap()
        .executions
        .into_iter()
        .find(|e| e.target == "database")
        .unwrap();
    assert_eq!(entry.message.as_deref(), Some("RDS refused to stop"));

    let events: Api<Event> = Api::namespaced(tc.client(), tc.namespace());
    let reasons: Vec<String> = events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(plan.as_str()))
        .filter_map(|e| e.reason)
        .collect();
    assert!(reasons.iter().any(|r| r == "RunnerProgress"), "{reasons:?}");
    assert!(reasons.iter().any(|r| r == "RunnerFailed"), "{reasons:?}");
    tc.cleanup().await.unwrap();
}

#[tokio::test]
async fn grpc_runner_updates_plan_status_and_events() {
    runner_reaches_plan_status(Transport::Grpc).await;
}

#[tokio::test]
async fn webhook_runner_updates_plan_status_and_events() {
    runner_reaches_plan_status(Transport::Webhook).await;
}
