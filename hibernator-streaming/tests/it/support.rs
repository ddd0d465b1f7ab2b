//! In-test peers: a fake TokenReview/Job directory, recording status and log
//! sinks, and a server harness on 127.0.0.1:0.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use hibernator_streaming::auth::{
    Authenticator, DirectoryError, EXTRA_POD_NAME, EXTRA_POD_UID, ExecutionDirectory,
    ExecutionInfo, ReviewError, ReviewedToken, TokenReviewer,
};
use hibernator_streaming::client::StreamClient;
use hibernator_streaming::config::{ClientConfig, ServerConfig, Transport};
use hibernator_streaming::ingest::Ingest;
use hibernator_streaming::metrics::StreamingMetrics;
use hibernator_streaming::server::{RunningServer, StreamingServer};
use hibernator_streaming::sink::{LogRecord, LogSink, SinkError};
use hibernator_streaming::status::{StatusChange, StatusError, StatusSink};
use prometheus_client::registry::Registry;

pub const EXEC: &str = "exec-123";
pub const NS: &str = "team-a";
pub const SA: &str = "hibernator-runner";
pub const JOB: &str = "hibernator-runner-xyz";
pub const POD: &str = "hibernator-runner-xyz-abcde";
pub const POD_UID: &str = "pod-uid-1";

/// A JWT-shaped token with the given audience and expiry (unsigned: the
/// fake reviewer decides validity, as the API server would).
pub fn jwt(name: &str, aud: &str, exp_in_secs: i64) -> String {
    let enc = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let payload = serde_json::json!({
        "aud": [aud],
        "exp": chrono::Utc::now().timestamp() + exp_in_secs,
        "sub": name,
    });
    format!(
        "{}.{}.{}",
        enc.encode(br#"{"alg":"RS256","typ":"JWT"}"#),
        enc.encode(payload.to_string()),
        enc.encode(name)
    )
}

/// TokenReview peer: knows a set of tokens and counts reviews.
#[derive(Default)]
pub struct FakeReviewer {
    pub tokens: Mutex<HashMap<String, ReviewedToken>>,
    pub calls: AtomicUsize,
}

impl FakeReviewer {
    /// Registers `token` as a ServiceAccount token (optionally Pod-bound).
    pub fn add(&self, token: &str, ns: &str, sa: &str, pod: Option<(&str, &str)>, aud: &str) {
        let mut extra = BTreeMap::new();
        if let Some((name, uid)) = pod {
            extra.insert(EXTRA_POD_NAME.to_string(), vec![name.to_string()]);
            extra.insert(EXTRA_POD_UID.to_string(), vec![uid.to_string()]);
        }
        self.tokens.lock().unwrap().insert(
            token.to_string(),
            ReviewedToken {
                authenticated: true,
                username: format!("system:serviceaccount:{ns}:{sa}"),
                audiences: vec![aud.to_string()],
                extra,
                error: None,
            },
        );
    }
}

#[async_trait]
impl TokenReviewer for FakeReviewer {
    async fn review(
        &self,
        token: &str,
        audiences: &[String],
    ) -> Result<ReviewedToken, ReviewError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let known = self.tokens.lock().unwrap().get(token).cloned();
        Ok(match known {
            // Like the API server: a token for another audience is not authenticated.
            Some(r) if r.audiences.iter().any(|a| audiences.contains(a)) => r,
            _ => ReviewedToken::default(),
        })
    }
}

/// Job directory peer.
#[derive(Default)]
pub struct FakeDirectory {
    pub executions: Mutex<HashMap<String, ExecutionInfo>>,
    /// (namespace, pod, uid, job)
    pub pods: Mutex<HashSet<(String, String, String, String)>>,
}

impl FakeDirectory {
    pub fn add_execution(&self, id: &str, ns: &str, sa: &str, job: &str, target: &str) {
        self.executions.lock().unwrap().insert(
            id.to_string(),
            ExecutionInfo {
                execution_id: id.into(),
                namespace: ns.into(),
                plan: "prod-offhours".into(),
                target: target.into(),
                job_name: job.into(),
                job_uid: format!("{job}-uid"),
                service_account: sa.into(),
                started: None,
            },
        );
    }

    pub fn add_pod(&self, ns: &str, pod: &str, uid: &str, job: &str) {
        self.pods
            .lock()
            .unwrap()
            .insert((ns.into(), pod.into(), uid.into(), job.into()));
    }
}

#[async_trait]
impl ExecutionDirectory for FakeDirectory {
    async fn execution(&self, id: &str) -> Result<Option<ExecutionInfo>, DirectoryError> {
        Ok(self.executions.lock().unwrap().get(id).cloned())
    }

    async fn pod_in_job(
        &self,
        e: &ExecutionInfo,
        pod: &str,
        uid: &str,
    ) -> Result<bool, DirectoryError> {
        Ok(self.pods.lock().unwrap().contains(&(
            e.namespace.clone(),
            pod.to_string(),
            uid.to_string(),
            e.job_name.clone(),
        )))
    }
}

/// Status peer recording every change.
#[derive(Default)]
pub struct RecordingStatus {
    pub changes: Mutex<Vec<(ExecutionInfo, StatusChange)>>,
}

#[async_trait]
impl StatusSink for RecordingStatus {
    async fn record(&self, e: &ExecutionInfo, change: StatusChange) -> Result<(), StatusError> {
        self.changes.lock().unwrap().push((e.clone(), change));
        Ok(())
    }
}

/// Log sink peer recording every record.
#[derive(Default)]
pub struct RecordingSink {
    pub records: Mutex<Vec<LogRecord>>,
    pub flushes: AtomicUsize,
}

#[async_trait]
impl LogSink for RecordingSink {
    fn name(&self) -> &'static str {
        "recording"
    }
    async fn write_batch(&self, records: &[LogRecord]) -> Result<(), SinkError> {
        self.records.lock().unwrap().extend_from_slice(records);
        Ok(())
    }
    async fn flush(&self) -> Result<(), SinkError> {
        self.flushes.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// The fake peers of a server (the runner of [`EXEC`] known to both, with
/// its valid `token`) and the auth and ingest paths over them.
pub struct Peers {
    pub reviewer: Arc<FakeReviewer>,
    pub directory: Arc<FakeDirectory>,
    pub status: Arc<RecordingStatus>,
    pub sink: Arc<RecordingSink>,
    pub token: String,
    pub auth: Arc<Authenticator>,
    pub ingest: Arc<Ingest>,
}

impl Peers {
    pub fn new(metrics: StreamingMetrics) -> Self {
        let reviewer = Arc::new(FakeReviewer::default());
        let directory = Arc::new(FakeDirectory::default());
        let status = Arc::new(RecordingStatus::default());
        let sink = Arc::new(RecordingSink::default());
        let token = jwt("runner", "hibernator-control-plane", 600);
        reviewer.add(
            &token,
            NS,
            SA,
            Some((POD, POD_UID)),
            "hibernator-control-plane",
        );
        directory.add_execution(EXEC, NS, SA, JOB, "database");
        directory.add_pod(NS, POD, POD_UID, JOB);
        let auth = Arc::new(Authenticator::new(
            reviewer.clone(),
            directory.clone(),
            metrics.clone(),
        ));
        let ingest = Arc::new(Ingest::new(
            status.clone(),
            vec![sink.clone() as Arc<dyn LogSink>],
            metrics,
        ));
        Self {
            reviewer,
            directory,
            status,
            sink,
            token,
            auth,
            ingest,
        }
    }
}

/// A running server with its fake peers.
pub struct Harness {
    pub server: RunningServer,
    pub reviewer: Arc<FakeReviewer>,
    pub directory: Arc<FakeDirectory>,
    pub status: Arc<RecordingStatus>,
    pub sink: Arc<RecordingSink>,
    pub metrics: StreamingMetrics,
    pub registry: Registry,
    /// The runner's valid token.
    pub token: String,
    pub token_dir: tempfile::TempDir,
}

pub fn loopback() -> ServerConfig {
    let mut config = ServerConfig::default();
    config.grpc.host = "127.0.0.1".into();
    config.grpc.port = 0;
    config.webhook.host = "127.0.0.1".into();
    config.webhook.port = 0;
    config
}

impl Harness {
    pub async fn start() -> Self {
        Self::start_with(loopback()).await
    }

    pub async fn start_with(config: ServerConfig) -> Self {
        let mut registry = Registry::default();
        let metrics = StreamingMetrics::register(&mut registry);
        let Peers {
            reviewer,
            directory,
            status,
            sink,
            token,
            auth,
            ingest,
        } = Peers::new(metrics.clone());
        let server = StreamingServer::new(config, auth, ingest)
            .start()
            .await
            .unwrap();
        let token_dir = tempfile::tempdir().unwrap();
        std::fs::write(token_dir.path().join("token"), &token).unwrap();
        Self {
            server,
            reviewer,
            directory,
            status,
            sink,
            metrics,
            registry,
            token,
            token_dir,
        }
    }

    pub fn token_path(&self) -> PathBuf {
        self.token_dir.path().join("token")
    }

    pub fn grpc_endpoint(&self) -> String {
        self.server.grpc_addr().unwrap().to_string()
    }

    pub fn webhook_endpoint(&self) -> String {
        format!("http://{}/logs", self.server.webhook_addr().unwrap())
    }

    pub fn client_config(&self, transport: Transport) -> ClientConfig {
        let mut c = ClientConfig::new(EXEC);
        c.transport = transport;
        c.grpc_endpoint = self.server.grpc_addr().map(|_| self.grpc_endpoint());
        c.webhook_endpoint = self.server.webhook_addr().map(|_| self.webhook_endpoint());
        c.token_path = self.token_path();
        c.timeout = Duration::from_secs(5);
        c.max_retries = 2;
        c
    }

    pub async fn client(&self, transport: Transport) -> StreamClient {
        StreamClient::connect(self.client_config(transport))
            .await
            .unwrap()
    }

    /// Waits (bounded) until `cond` holds; tests never assert on timing.
    pub async fn eventually(&self, what: &str, mut cond: impl FnMut() -> bool) {
        for _ in 0..500 {
            if cond() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("timed out waiting for {what}");
    }

    pub fn metrics_text(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).unwrap();
        out
    }
}
