//! Every refusal reason is enforced and counted, on gRPC and the webhook;
//! reviews are cached.

use std::sync::atomic::Ordering;

use hibernator_streaming::metrics::AuthFailureReason;
use hibernator_streaming::wire::proto::HeartbeatRequest;
use hibernator_streaming::wire::proto::execution_service_client::ExecutionServiceClient;

use crate::support::{EXEC, Harness, JOB, NS, SA, jwt};

const AUD: &str = "hibernator-control-plane";

/// Sets up one token per refusal reason; returns (reason, header, execution).
fn cases(h: &Harness) -> Vec<(AuthFailureReason, Option<String>, &'static str)> {
    let r = &h.reviewer;
    // valid token of another namespace's runner
    let other_ns = jwt("other-ns", AUD, 600);
    r.add(&other_ns, "team-b", SA, None, AUD);
    // valid token of another ServiceAccount in the runner's namespace
    let other_sa = jwt("other-sa", AUD, 600);
    r.add(&other_sa, NS, "default", None, AUD);
    // a token of the right SA but bound to a Pod of another Job
    let other_pod = jwt("other-pod", AUD, 600);
    r.add(&other_pod, NS, SA, Some(("intruder", "uid-x")), AUD);
    h.directory.add_pod(NS, "intruder", "uid-x", "another-job");
    // another execution's runner (other namespace) presenting its token for EXEC
    h.directory
        .add_execution("exec-456", "team-b", SA, JOB, "cache");
    // a token for another audience (claim says so)
    let wrong_aud = jwt("aud", "kubernetes", 600);
    r.add(&wrong_aud, NS, SA, None, "kubernetes");
    let expired = jwt("expired", AUD, -10);
    r.add(&expired, NS, SA, None, AUD);
    let unknown_token = jwt("forged", AUD, 600);
    let bearer = |t: &str| Some(format!("Bearer {t}"));
    vec![
        (AuthFailureReason::missing, None, EXEC),
        (AuthFailureReason::malformed, Some("Token abc".into()), EXEC),
        (AuthFailureReason::malformed, bearer(&h.token), "bad id!"),
        (AuthFailureReason::invalid, bearer(&unknown_token), EXEC),
        (AuthFailureReason::audience, bearer(&wrong_aud), EXEC),
        (AuthFailureReason::expired, bearer(&expired), EXEC),
        (
            AuthFailureReason::unknown_execution,
            bearer(&h.token),
            "exec-nope",
        ),
        (AuthFailureReason::wrong_identity, bearer(&other_ns), EXEC),
        (AuthFailureReason::wrong_identity, bearer(&other_sa), EXEC),
        (
            AuthFailureReason::wrong_identity,
            bearer(&h.token),
            "exec-456",
        ),
        (AuthFailureReason::wrong_pod, bearer(&other_pod), EXEC),
    ]
}

fn counts(h: &Harness) -> Vec<u64> {
    AuthFailureReason::ALL
        .iter()
        .map(|r| h.metrics.auth_failure_count(*r))
        .collect()
}

fn expect_one_more(h: &Harness, before: &[u64], reason: AuthFailureReason, what: &str) {
    let after = counts(h);
    for (i, r) in AuthFailureReason::ALL.iter().enumerate() {
        let expected = before[i] + u64::from(*r == reason);
        assert_eq!(after[i], expected, "{what}: counter {}", r.as_str());
    }
}

#[tokio::test]
async fn grpc_refuses_and_counts_every_reason() {
    let h = Harness::start().await;
    let mut grpc = ExecutionServiceClient::connect(format!("http://{}", h.grpc_endpoint()))
        .await
        .unwrap();
    for (reason, header, exec) in cases(&h) {
        let before = counts(&h);
        let mut request = tonic::Request::new(HeartbeatRequest {
            execution_id: exec.into(),
            timestamp: None,
        });
        if let Some(header) = &header {
            request
                .metadata_mut()
                .insert("authorization", header.parse().unwrap());
        }
        let status = grpc.heartbeat(request).await.unwrap_err();
        let expected_code = match reason {
            AuthFailureReason::unknown_execution
            | AuthFailureReason::wrong_identity
            | AuthFailureReason::wrong_pod => tonic::Code::PermissionDenied,
            _ => tonic::Code::Unauthenticated,
        };
        assert_eq!(
            status.code(),
            expected_code,
            "{}: {status:?}",
            reason.as_str()
        );
        expect_one_more(&h, &before, reason, reason.as_str());
        if let Some(token) = header.as_deref().and_then(|h| h.strip_prefix("Bearer ")) {
            assert!(
                !status.message().contains(token),
                "the token never appears in errors"
            );
        }
    }
    let text = h.metrics_text();
    assert!(
        text.contains("hibernator_streaming_auth_failures_total{reason=\"wrong_pod\"} 1"),
        "{text}"
    );
    h.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn webhook_refuses_with_json_errors_and_counts_every_reason() {
    let h = Harness::start().await;
    let http = reqwest::Client::new();
    let url = h.webhook_endpoint();
    for (reason, header, exec) in cases(&h) {
        let before = counts(&h);
        let mut request = http.post(&url).body(
            serde_json::json!({"executionId": exec, "message": "hello", "level": "INFO"})
                .to_string(),
        );
        if let Some(header) = &header {
            request = request.header("Authorization", header);
        }
        let response = request.send().await.unwrap();
        let expected = match reason {
            AuthFailureReason::unknown_execution
            | AuthFailureReason::wrong_identity
            | AuthFailureReason::wrong_pod => 403,
            _ => 401,
        };
        assert_eq!(response.status().as_u16(), expected, "{}", reason.as_str());
        let body: serde_json::Value = response.json().await.unwrap();
        assert!(
            body["error"].as_str().unwrap().contains(reason.as_str()),
            "{body}"
        );
        expect_one_more(&h, &before, reason, reason.as_str());
    }
    assert!(
        h.sink.records.lock().unwrap().is_empty(),
        "no refused line was accepted"
    );
    h.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn reviews_are_cached_per_token() {
    let h = Harness::start().await;
    let client = h
        .client(hibernator_streaming::config::Transport::Grpc)
        .await;
    for _ in 0..20 {
        client.heartbeat().await.unwrap();
    }
    assert_eq!(h.reviewer.calls.load(Ordering::SeqCst), 1);
    // a rotated token is a new review
    let rotated = jwt("rotated", AUD, 600);
    h.reviewer.add(&rotated, NS, SA, None, AUD);
    std::fs::write(h.token_path(), &rotated).unwrap();
    client.heartbeat().await.unwrap();
    client.heartbeat().await.unwrap();
    assert_eq!(h.reviewer.calls.load(Ordering::SeqCst), 2);
    client.close().await.unwrap();
    h.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn bad_webhook_payloads_get_400_json() {
    let h = Harness::start().await;
    let http = reqwest::Client::new();
    let base = h.webhook_endpoint().trim_end_matches("/logs").to_string();
    for (path, body) in [
        ("logs", "not json".to_string()),
        ("logs", "[]".to_string()),
        (
            "progress",
            r#"{"executionId":"exec-123","progress":250}"#.to_string(),
        ),
        ("completion", r#"{"executionId":"exec-123"}"#.to_string()),
    ] {
        let response = http
            .post(format!("{base}/{path}"))
            .bearer_auth(&h.token)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 400, "{path} {body}");
        let json: serde_json::Value = response.json().await.unwrap();
        assert!(json["error"].is_string());
    }
    let too_big = "x".repeat(2 * 1024 * 1024);
    let response = http
        .post(format!("{base}/logs"))
        .bearer_auth(&h.token)
        .body(too_big)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 413);
    let json: serde_json::Value = response.json().await.unwrap();
    assert!(json["error"].is_string());
    let response = http.get(format!("{base}/nope")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 404);
    h.server.shutdown().await.unwrap();
}
