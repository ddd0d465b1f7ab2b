//! Runner client → server → status sink, log sinks and progress queries,
//! over both transports.

use std::collections::BTreeMap;

use futures::StreamExt;
use hibernator_streaming::client::{ActiveTransport, Level};
use hibernator_streaming::config::Transport;
use hibernator_streaming::status::StatusChange;
use hibernator_streaming::wire::proto::GetProgressRequest;
use hibernator_streaming::wire::proto::execution_service_client::ExecutionServiceClient;

use crate::support::{EXEC, Harness, NS};

async fn runner_round_trip(transport: Transport, expected: ActiveTransport) {
    let h = Harness::start().await;
    let client = h.client(transport).await;
    assert_eq!(client.transport(), expected);
    for i in 0..250 {
        let fields = BTreeMap::from([("i".to_string(), i.to_string())]);
        assert!(client.try_log(Level::Info, format!("line {i}"), fields));
    }
    client
        .progress("Shutdown", 60, "Scaling EC2 instances")
        .await
        .unwrap();
    client.heartbeat().await.unwrap();
    client.complete(true, None).await.unwrap();

    let records = h.sink.records.lock().unwrap().clone();
    assert_eq!(records.len(), 250);
    assert!(
        records
            .iter()
            .all(|r| r.plan == "prod-offhours" && r.target == "database" && r.namespace == NS)
    );
    assert_eq!(records[249].message, "line 249");
    assert_eq!(records[7].fields["i"], "7");
    assert!(h.sink.flushes.load(std::sync::atomic::Ordering::SeqCst) >= 1);

    let changes = h.status.changes.lock().unwrap().clone();
    assert_eq!(changes.len(), 2, "{changes:?}");
    match &changes[0].1 {
        StatusChange::Progress(p) => {
            assert_eq!((p.phase.as_str(), p.progress), ("Shutdown", 60));
            assert_eq!(p.message, "Scaling EC2 instances");
        }
        other => panic!("expected progress, got {other:?}"),
    }
    match &changes[1].1 {
        StatusChange::Completed(c) => {
            assert!(c.success);
            assert_eq!(c.dropped_logs, 0);
            assert!(c.duration.is_some());
        }
        other => panic!("expected completion, got {other:?}"),
    }
    assert_eq!(changes[1].0.target, "database");
    assert!(
        h.metrics_text()
            .contains("hibernator_streaming_logs_total 250"),
        "{}",
        h.metrics_text()
    );
    assert_eq!(
        h.reviewer.calls.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "reviews are cached"
    );
    h.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn grpc_runner_reports_reach_status_and_sinks() {
    runner_round_trip(Transport::Grpc, ActiveTransport::Grpc).await;
}

#[tokio::test]
async fn webhook_runner_reports_reach_status_and_sinks() {
    runner_round_trip(Transport::Webhook, ActiveTransport::Webhook).await;
}

#[tokio::test]
async fn auto_prefers_grpc() {
    runner_round_trip(Transport::Auto, ActiveTransport::Grpc).await;
}

#[tokio::test]
async fn get_and_watch_progress_over_grpc() {
    let h = Harness::start().await;
    let mut grpc = ExecutionServiceClient::connect(format!("http://{}", h.grpc_endpoint()))
        .await
        .unwrap();
    let request = |id: &str| {
        let mut r = tonic::Request::new(GetProgressRequest {
            execution_id: id.into(),
        });
        r.metadata_mut().insert(
            "authorization",
            format!("Bearer {}", h.token).parse().unwrap(),
        );
        r
    };
    let missing = grpc.get_progress(request(EXEC)).await.unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
    // From loopback (kubectl port-forward) no token is needed: the same answer.
    let anonymous = grpc
        .get_progress(GetProgressRequest {
            execution_id: EXEC.into(),
        })
        .await
        .unwrap_err();
    assert_eq!(anonymous.code(), tonic::Code::NotFound);

    let client = h.client(Transport::Grpc).await;
    client
        .progress("Shutdown", 10, "Querying EC2 instances")
        .await
        .unwrap();
    let mut watch = grpc
        .watch_progress(request(EXEC))
        .await
        .unwrap()
        .into_inner();
    let first = watch.next().await.unwrap().unwrap();
    assert_eq!(
        (first.progress, first.message.as_str()),
        (10, "Querying EC2 instances")
    );
    client
        .progress("Shutdown", 60, "Scaling EC2 instances")
        .await
        .unwrap();
    let second = watch.next().await.unwrap().unwrap();
    assert_eq!(
        (
            second.execution_id.as_str(),
            second.phase.as_str(),
            second.progress
        ),
        (EXEC, "Shutdown", 60)
    );
    let latest = grpc.get_progress(request(EXEC)).await.unwrap().into_inner();
    assert_eq!(latest.progress, 60);
    assert!(latest.timestamp.is_some());
    client.complete(true, None).await.unwrap();
    let last = watch.next().await.unwrap().unwrap();
    assert_eq!(
        (last.phase.as_str(), last.progress, last.message.as_str()),
        ("Shutdown", 100, "completed successfully"),
        "the final progress, as the plan status records it"
    );
    assert!(
        watch.next().await.is_none(),
        "the watch ends with the execution"
    );
    let done = grpc.get_progress(request(EXEC)).await.unwrap().into_inner();
    assert_eq!(done, last);
    h.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn health_and_reflection_are_served() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let h = Harness::start().await;
    let url = format!("http://{}", h.grpc_endpoint());
    let channel = tonic::transport::Endpoint::from_shared(url)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(channel.clone());
    let overall = health
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(overall.status(), ServingStatus::Serving);
    let svc = health
        .check(HealthCheckRequest {
            service: "hibernator.api.v1.ExecutionService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(svc.status(), ServingStatus::Serving);

    let mut reflection = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = reflection
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    let answer = answers.next().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("unexpected reflection answer {answer:?}");
    };
    let names: Vec<_> = list.service.iter().map(|s| s.name.as_str()).collect();
    assert!(
        names.contains(&"hibernator.api.v1.ExecutionService"),
        "{names:?}"
    );
    assert!(names.contains(&"grpc.health.v1.Health"), "{names:?}");
    h.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn heartbeats_are_sent_periodically() {
    let h = Harness::start().await;
    let mut config = h.client_config(Transport::Grpc);
    config.heartbeat_interval = std::time::Duration::from_millis(20);
    let client = hibernator_streaming::client::StreamClient::connect(config)
        .await
        .unwrap();
    assert!(h.server.ingest().last_heartbeat(EXEC).is_none());
    h.eventually("a periodic heartbeat", || {
        h.server.ingest().last_heartbeat(EXEC).is_some()
    })
    .await;
    client.complete(true, None).await.unwrap();
    assert!(
        h.server.ingest().last_heartbeat(EXEC).is_none(),
        "forgotten on completion"
    );
    h.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_progress_query_without_a_token_says_how_to_get_one() {
    // Without port-forward access every peer needs a token (the loopback
    // peer here stands for any other address).
    let mut config = crate::support::loopback();
    config.grpc.local_access = false;
    let h = Harness::start_with(config).await;
    let mut grpc = ExecutionServiceClient::connect(format!("http://{}", h.grpc_endpoint()))
        .await
        .unwrap();
    let status = grpc
        .get_progress(GetProgressRequest {
            execution_id: EXEC.into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
    assert!(
        status.message().contains("kubectl create token")
            && status.message().contains("hibernator-control-plane"),
        "{status:?}"
    );
    h.server.shutdown().await.unwrap();
}
