//! Streaming benchmarks over loopback with the real server and runner
//! client (in-process TokenReview and Job directory peers):
//!
//! - `ingest/grpc` and `ingest/webhook`: 2,000 log lines queued with
//!   `try_log` and flushed (batches of 500). Targets: gRPC ≥ 200k lines/s,
//!   webhook ≥ 20k lines/s.
//! - `progress/report_to_watch`: one progress report from the runner until a
//!   `WatchProgress` watcher receives it; the p99 of all samples is printed.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures::StreamExt;
use hibernator_streaming::auth::{
    Authenticator, DirectoryError, ExecutionDirectory, ExecutionInfo, ReviewError, ReviewedToken,
    TokenReviewer,
};
use hibernator_streaming::client::{Level, StreamClient};
use hibernator_streaming::config::{ClientConfig, ServerConfig, Transport};
use hibernator_streaming::ingest::Ingest;
use hibernator_streaming::metrics::StreamingMetrics;
use hibernator_streaming::server::{RunningServer, StreamingServer};
use hibernator_streaming::sink::{LogRecord, LogSink, SinkError};
use hibernator_streaming::status::{StatusChange, StatusError, StatusSink};
use hibernator_streaming::wire::proto::GetProgressRequest;
use hibernator_streaming::wire::proto::execution_service_client::ExecutionServiceClient;

/// The allocator of the `hibernator` binary, so the numbers are the binary's.
#[global_allocator]
static ALLOCATOR: hibernator_operator::Allocator = hibernator_operator::Allocator;

const EXEC: &str = "exec-bench";
const LINES: usize = 2_000;

struct Peer;

#[async_trait]
impl TokenReviewer for Peer {
    async fn review(
        &self,
        _token: &str,
        audiences: &[String],
    ) -> Result<ReviewedToken, ReviewError> {
        Ok(ReviewedToken {
            authenticated: true,
            username: "system:serviceaccount:bench:runner".into(),
            audiences: audiences.to_vec(),
            extra: BTreeMap::new(),
            error: None,
        })
    }
}

#[async_trait]
impl ExecutionDirectory for Peer {
    async fn execution(&self, id: &str) -> Result<Option<ExecutionInfo>, DirectoryError> {
        Ok(Some(ExecutionInfo {
            execution_id: id.into(),
            namespace: "bench".into(),
            plan: "plan".into(),
            target: "target".into(),
            job_name: "job".into(),
            job_uid: "uid".into(),
            service_account: "runner".into(),
            started: None,
        }))
    }
    async fn pod_in_job(
        &self,
        _: &ExecutionInfo,
        _: &str,
        _: &str,
    ) -> Result<bool, DirectoryError> {
        Ok(true)
    }
}

#[async_trait]
impl StatusSink for Peer {
    async fn record(&self, _: &ExecutionInfo, _: StatusChange) -> Result<(), StatusError> {
        Ok(())
    }
}

/// Counts records, like a sink that hands batches to a background writer.
struct CountingSink(std::sync::atomic::AtomicU64);

#[async_trait]
impl LogSink for CountingSink {
    fn name(&self) -> &'static str {
        "counting"
    }
    async fn write_batch(&self, records: &[LogRecord]) -> Result<(), SinkError> {
        self.0
            .fetch_add(records.len() as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}

struct Setup {
    server: RunningServer,
    token_dir: tempfile::TempDir,
}

async fn start() -> Setup {
    let mut config = ServerConfig::default();
    config.grpc.host = "127.0.0.1".into();
    config.grpc.port = 0;
    config.webhook.host = "127.0.0.1".into();
    config.webhook.port = 0;
    config.webhook.max_body_bytes = 8 * 1024 * 1024;
    let metrics = StreamingMetrics::default();
    let auth = Arc::new(Authenticator::new(
        Arc::new(Peer),
        Arc::new(Peer),
        metrics.clone(),
    ));
    let sink: Arc<dyn LogSink> = Arc::new(CountingSink(Default::default()));
    let ingest = Arc::new(Ingest::new(Arc::new(Peer), vec![sink], metrics));
    let server = StreamingServer::new(config, auth, ingest)
        .start()
        .await
        .unwrap();
    let token_dir = tempfile::tempdir().unwrap();
    std::fs::write(token_dir.path().join("token"), "bench.token.sig").unwrap();
    Setup { server, token_dir }
}

fn client_config(setup: &Setup, transport: Transport) -> ClientConfig {
    let mut c = ClientConfig::new(EXEC);
    c.transport = transport;
    c.grpc_endpoint = Some(setup.server.grpc_addr().unwrap().to_string());
    c.webhook_endpoint = Some(format!(
        "http://{}/logs",
        setup.server.webhook_addr().unwrap()
    ));
    c.token_path = setup.token_dir.path().join("token");
    c.queue_size = LINES * 2;
    c.batch_size = 500;
    c
}

fn ingest(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let setup = rt.block_on(start());
    let mut group = c.benchmark_group("ingest");
    group.throughput(Throughput::Elements(LINES as u64));
    for (name, transport) in [("grpc", Transport::Grpc), ("webhook", Transport::Webhook)] {
        let client = rt
            .block_on(StreamClient::connect(client_config(&setup, transport)))
            .unwrap();
        let fields = BTreeMap::from([("instance".to_string(), "i-0abc".to_string())]);
        group.bench_function(name, |b| {
            b.iter(|| {
                rt.block_on(async {
                    for i in 0..LINES {
                        client.try_log(
                            Level::Info,
                            format!("Stopping instance {i}"),
                            fields.clone(),
                        );
                    }
                    client.flush().await.unwrap();
                })
            })
        });
        assert_eq!(client.dropped(), 0, "{name}: lines were dropped");
        rt.block_on(client.close()).unwrap();
    }
    group.finish();
}

fn progress(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let setup = rt.block_on(start());
    let client = rt
        .block_on(StreamClient::connect(client_config(
            &setup,
            Transport::Grpc,
        )))
        .unwrap();
    rt.block_on(client.progress("Shutdown", 0, "start"))
        .unwrap();
    let url = format!("http://{}", setup.server.grpc_addr().unwrap());
    let mut watch = rt.block_on(async {
        let mut grpc = ExecutionServiceClient::connect(url).await.unwrap();
        let mut request = tonic::Request::new(GetProgressRequest {
            execution_id: EXEC.into(),
        });
        request
            .metadata_mut()
            .insert("authorization", "Bearer bench.token.sig".parse().unwrap());
        let mut stream = grpc.watch_progress(request).await.unwrap().into_inner();
        stream.next().await.unwrap().unwrap();
        stream
    });
    let mut samples: Vec<Duration> = Vec::new();
    let mut n = 0u8;
    c.bench_function("progress/report_to_watch", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    n = (n + 1) % 100;
                    let start = Instant::now();
                    client
                        .progress("Shutdown", n, "Scaling EC2 instances")
                        .await
                        .unwrap();
                    let update = watch.next().await.unwrap().unwrap();
                    let elapsed = start.elapsed();
                    assert_eq!(update.progress, i32::from(n));
                    samples.push(elapsed);
                    total += elapsed;
                }
                total
            })
        })
    });
    samples.sort();
    if !samples.is_empty() {
        let p = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
        println!(
            "progress report → watch latency over {} samples: p50 {:?}, p99 {:?}",
            samples.len(),
            p(0.50),
            p(0.99)
        );
    }
}

criterion_group!(benches, ingest, progress);
criterion_main!(benches);
