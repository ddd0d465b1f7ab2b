//! Log streaming over gRPC: batched `StreamLogBatches` (what the runner
//! uses), line-by-line `StreamLogs` (the protocol's original call), and the
//! runner's switch to `StreamLogs` when a server lacks batches.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::Stream;
use hibernator_streaming::client::{ActiveTransport, Level, StreamClient};
use hibernator_streaming::config::Transport;
use hibernator_streaming::metrics::StreamingMetrics;
use hibernator_streaming::server::GrpcService;
use hibernator_streaming::wire::proto::execution_service_client::ExecutionServiceClient;
use hibernator_streaming::wire::proto::execution_service_server::{
    ExecutionService, ExecutionServiceServer,
};
use hibernator_streaming::wire::proto::{
    Ack, CompletionReport, GetProgressRequest, HeartbeatRequest, LogBatch, LogEntry,
    ProgressUpdate, StreamLogsResponse,
};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status, Streaming};

use crate::support::{EXEC, Harness, NS, Peers};

fn entry(execution_id: &str, message: &str) -> LogEntry {
    LogEntry {
        execution_id: execution_id.into(),
        timestamp: None,
        level: "INFO".into(),
        message: message.into(),
        fields: BTreeMap::from([("k".to_string(), message.to_string())]),
    }
}

fn authorized<T>(h: &Harness, message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {}", h.token).parse().unwrap(),
    );
    request
}

async fn grpc(h: &Harness) -> ExecutionServiceClient<tonic::transport::Channel> {
    ExecutionServiceClient::connect(format!("http://{}", h.grpc_endpoint()))
        .await
        .unwrap()
}

#[tokio::test]
async fn batches_are_ingested_in_order_with_their_fields() {
    let h = Harness::start().await;
    let mut grpc = grpc(&h).await;
    let batches = vec![
        LogBatch {
            execution_id: EXEC.into(),
            entries: vec![entry("", "a"), entry(EXEC, "b")],
        },
        LogBatch {
            execution_id: EXEC.into(),
            entries: vec![entry("", "c")],
        },
    ];
    let answer = grpc
        .stream_log_batches(authorized(&h, tokio_stream::iter(batches)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.accepted, 3);
    h.eventually("3 records in the sink", || {
        h.sink.records.lock().unwrap().len() == 3
    })
    .await;
    let records = h.sink.records.lock().unwrap().clone();
    let messages: Vec<&str> = records.iter().map(|r| r.message.as_str()).collect();
    assert_eq!(messages, ["a", "b", "c"]);
    assert!(records.iter().all(|r| r.execution_id == EXEC
        && r.target == "database"
        && r.namespace == NS
        && r.fields["k"] == r.message));
    assert!(
        h.metrics_text()
            .contains("hibernator_streaming_logs_total 3")
    );
}

#[tokio::test]
async fn a_batch_entry_of_another_execution_is_refused_by_field() {
    let h = Harness::start().await;
    let mut grpc = grpc(&h).await;
    let batch = LogBatch {
        execution_id: EXEC.into(),
        entries: vec![entry("", "mine"), entry("exec-other", "not mine")],
    };
    let status = grpc
        .stream_log_batches(authorized(&h, tokio_stream::once(batch)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().contains("entries[1].execution_id"),
        "{status:?}"
    );

    let nameless = LogBatch {
        execution_id: String::new(),
        entries: vec![entry("", "x")],
    };
    let status = grpc
        .stream_log_batches(authorized(&h, tokio_stream::once(nameless)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("execution_id"), "{status:?}");
    h.server.shutdown().await.unwrap();
    assert!(
        h.sink.records.lock().unwrap().is_empty(),
        "nothing of a refused batch is ingested"
    );
}

#[tokio::test]
async fn a_batch_of_an_execution_the_token_is_not_bound_to_is_denied() {
    let h = Harness::start().await;
    h.directory
        .add_execution("exec-foreign", "team-b", "other-runner", "job-b", "cache");
    let mut grpc = grpc(&h).await;
    let batch = LogBatch {
        execution_id: "exec-foreign".into(),
        entries: vec![entry("", "sneaky")],
    };
    let status = grpc
        .stream_log_batches(authorized(&h, tokio_stream::once(batch)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
    h.server.shutdown().await.unwrap();
    assert!(h.sink.records.lock().unwrap().is_empty());
}

#[tokio::test]
async fn line_by_line_stream_logs_still_works() {
    let h = Harness::start().await;
    let mut grpc = grpc(&h).await;
    let entries: Vec<LogEntry> = (0..300)
        .map(|i| entry(EXEC, &format!("line {i}")))
        .collect();
    let answer = grpc
        .stream_logs(authorized(&h, tokio_stream::iter(entries)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.accepted, 300);
    h.eventually("300 records in the sink", || {
        h.sink.records.lock().unwrap().len() == 300
    })
    .await;
    let records = h.sink.records.lock().unwrap().clone();
    assert!(
        records
            .iter()
            .enumerate()
            .all(|(i, r)| r.message == format!("line {i}") && r.execution_id == EXEC)
    );
}

/// A server from before `StreamLogBatches`: everything is the real service
/// except that call, which is unimplemented.
struct OldServer {
    inner: GrpcService,
    batch_calls: Arc<AtomicUsize>,
}

#[tonic::async_trait]
impl ExecutionService for OldServer {
    async fn stream_logs(
        &self,
        request: Request<Streaming<LogEntry>>,
    ) -> Result<Response<StreamLogsResponse>, Status> {
        self.inner.stream_logs(request).await
    }
    async fn stream_log_batches(
        &self,
        _: Request<Streaming<LogBatch>>,
    ) -> Result<Response<StreamLogsResponse>, Status> {
        self.batch_calls.fetch_add(1, Ordering::SeqCst);
        Err(Status::unimplemented("unknown method StreamLogBatches"))
    }
    async fn report_progress(
        &self,
        request: Request<ProgressUpdate>,
    ) -> Result<Response<Ack>, Status> {
        self.inner.report_progress(request).await
    }
    async fn report_completion(
        &self,
        request: Request<CompletionReport>,
    ) -> Result<Response<Ack>, Status> {
        self.inner.report_completion(request).await
    }
    async fn heartbeat(&self, request: Request<HeartbeatRequest>) -> Result<Response<Ack>, Status> {
        self.inner.heartbeat(request).await
    }
    async fn get_progress(
        &self,
        request: Request<GetProgressRequest>,
    ) -> Result<Response<ProgressUpdate>, Status> {
        self.inner.get_progress(request).await
    }
    type WatchProgressStream = Pin<Box<dyn Stream<Item = Result<ProgressUpdate, Status>> + Send>>;
    async fn watch_progress(
        &self,
        request: Request<GetProgressRequest>,
    ) -> Result<Response<Self::WatchProgressStream>, Status> {
        self.inner.watch_progress(request).await
    }
}

#[tokio::test]
async fn the_runner_switches_to_stream_logs_when_the_server_lacks_batches() {
    let Peers {
        token,
        sink,
        auth,
        ingest,
        ..
    } = Peers::new(StreamingMetrics::default());
    let batch_calls = Arc::new(AtomicUsize::new(0));
    let old = OldServer {
        inner: GrpcService::new(auth, ingest.clone()),
        batch_calls: batch_calls.clone(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(ExecutionServiceServer::new(old))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );

    let token_dir = tempfile::tempdir().unwrap();
    std::fs::write(token_dir.path().join("token"), &token).unwrap();
    let mut config = hibernator_streaming::config::ClientConfig::new(EXEC);
    config.transport = Transport::Grpc;
    config.grpc_endpoint = Some(address.to_string());
    config.token_path = token_dir.path().join("token");
    config.max_retries = 1;
    let client = StreamClient::connect(config).await.unwrap();
    for round in 0..2 {
        for i in 0..10 {
            assert!(client.try_log(Level::Info, format!("r{round} l{i}"), BTreeMap::new()));
        }
        client.flush().await.unwrap();
    }
    assert_eq!(client.transport(), ActiveTransport::Grpc);
    assert_eq!(client.sent(), 20);
    assert_eq!(client.dropped(), 0);
    assert_eq!(
        batch_calls.load(Ordering::SeqCst),
        1,
        "after one UNIMPLEMENTED the runner stops trying batches"
    );
    ingest.flush_sinks().await;
    let records = sink.records.lock().unwrap().clone();
    assert_eq!(records.len(), 20);
    assert_eq!(records[0].message, "r0 l0");
    assert_eq!(records[19].message, "r1 l9");
    client.close().await.unwrap();
    server.abort();
}

/// Long lines: a batch bigger than the webhook's body limit (1 MiB by
/// default) or a comfortable gRPC message goes out as several requests, and
/// nothing is dropped.
async fn long_lines_are_delivered(transport: Transport) {
    let h = Harness::start().await;
    let client = h.client(transport).await;
    let long = "x".repeat(100 * 1024);
    for i in 0..50 {
        assert!(client.try_log(Level::Info, format!("{i} {long}"), BTreeMap::new()));
    }
    client.flush().await.unwrap();
    assert_eq!((client.sent(), client.dropped()), (50, 0));
    h.eventually("50 long records in the sink", || {
        h.sink.records.lock().unwrap().len() == 50
    })
    .await;
    let records = h.sink.records.lock().unwrap().clone();
    assert!(
        records
            .iter()
            .enumerate()
            .all(|(i, r)| r.message.starts_with(&format!("{i} ")) && r.message.len() > long.len())
    );
    client.close().await.unwrap();
}

#[tokio::test]
async fn long_lines_are_delivered_over_the_webhook() {
    long_lines_are_delivered(Transport::Webhook).await;
}

#[tokio::test]
async fn long_lines_are_delivered_over_grpc() {
    long_lines_are_delivered(Transport::Grpc).await;
}
