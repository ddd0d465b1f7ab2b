//! The streaming server run by the controller: gRPC (`ExecutionService`,
//! `grpc.health.v1.Health`, server reflection) and the HTTP webhook, both
//! feeding one [`Ingest`], with graceful shutdown.

mod grpc;
pub mod listener;
pub mod progress;
mod webhook;

use std::net::SocketAddr;
use std::sync::Arc;

use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use grpc::{GrpcService, lines_of_batch, status_of};
pub use webhook::router as webhook_router;

use crate::auth::{Authenticator, KubeExecutionDirectory, KubeTokenReviewer};
use crate::config::{ServerConfig, ServerTls};
use crate::ingest::Ingest;
use crate::metrics::StreamingMetrics;
use crate::sink::LogSink;
use crate::status::KubeStatusSink;
use crate::wire::proto::execution_service_server::ExecutionServiceServer;

/// The server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// A listener could not bind.
    #[error("binding the {listener} listener on {address}: {source}")]
    Bind {
        /// `grpc` or `webhook`.
        listener: &'static str,
        /// Address.
        address: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The TLS certificate, key or client CA is unusable.
    #[error("gRPC TLS: {message}")]
    Tls {
        /// What is wrong (names the field).
        message: String,
    },
    /// A TLS file could not be read.
    #[error("reading TLS {field} from {path}: {source}")]
    TlsFile {
        /// `certPath`, `keyPath` or `clientCaPath`.
        field: &'static str,
        /// File.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The gRPC server failed.
    #[error("gRPC server: {0}")]
    Grpc(#[from] tonic::transport::Error),
    /// Reflection could not load the descriptor set.
    #[error("gRPC reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The webhook server failed.
    #[error("webhook server: {0}")]
    Webhook(std::io::Error),
    /// A server task panicked or was cancelled.
    #[error("{listener} server task: {message}")]
    Task {
        /// `grpc` or `webhook`.
        listener: &'static str,
        /// Join error.
        message: String,
    },
}

/// Builder of the streaming server.
pub struct StreamingServer {
    config: ServerConfig,
    auth: Arc<Authenticator>,
    ingest: Arc<Ingest>,
}

impl StreamingServer {
    /// A server with explicit collaborators.
    pub fn new(config: ServerConfig, auth: Arc<Authenticator>, ingest: Arc<Ingest>) -> Self {
        Self {
            config,
            auth,
            ingest,
        }
    }

    /// The production wiring: TokenReview, Job lookup, plan status and Events
    /// through `client`; metrics registered in `registry`; logs forwarded
    /// to `sinks`. `reporter` names the controller in Events.
    pub fn kube(
        config: ServerConfig,
        client: kube::Client,
        reporter: kube::runtime::events::Reporter,
        sinks: Vec<Arc<dyn LogSink>>,
        registry: &mut Registry,
    ) -> Self {
        let metrics = StreamingMetrics::register(registry);
        let auth = Arc::new(Authenticator::new(
            Arc::new(KubeTokenReviewer::new(client.clone())),
            Arc::new(KubeExecutionDirectory::new(client.clone())),
            metrics.clone(),
        ));
        let status = KubeStatusSink::spawn(client, reporter);
        let ingest = Arc::new(Ingest::new(status, sinks, metrics));
        Self::new(config, auth, ingest)
    }

    /// The ingest path (progress store, metrics).
    pub fn ingest(&self) -> &Arc<Ingest> {
        &self.ingest
    }

    /// Binds the enabled listeners and starts serving.
    pub async fn start(self) -> Result<RunningServer, ServerError> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut tasks = Vec::new();
        let mut grpc_addr = None;
        let mut webhook_addr = None;

        if self.config.grpc.enabled {
            let address = format!("{}:{}", self.config.grpc.host, self.config.grpc.port);
            let listener = bind("grpc", &address).await?;
            grpc_addr = listener.local_addr().ok();
            let tls = load_tls(&self.config.grpc.tls).await?;
            let local_access = self.config.grpc.local_access;
            let (reporter, health) = tonic_health::server::health_reporter();
            let service = ExecutionServiceServer::new(
                GrpcService::new(self.auth.clone(), self.ingest.clone())
                    .with_local_access(local_access),
            );
            reporter
                .set_serving::<ExecutionServiceServer<GrpcService>>()
                .await;
            let reflection_v1 = tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(crate::wire::proto::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
                .build_v1()?;
            let reflection_v1alpha = tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(crate::wire::proto::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
                .build_v1alpha()?;
            let router = tonic::transport::Server::builder()
                .add_service(health)
                .add_service(reflection_v1)
                .add_service(reflection_v1alpha)
                .add_service(service);
            let mut stop = stop_rx.clone();
            tracing::info!(
                address = ?grpc_addr,
                tls = self.config.grpc.tls.enabled,
                local_access,
                "streaming gRPC server listening"
            );
            // Plaintext from loopback, unless client certificates are
            // required (then every connection is mutual TLS).
            let local_plaintext = local_access && self.config.grpc.tls.client_ca_path.is_none();
            let incoming = listener::incoming(listener, tls, local_plaintext);
            tasks.push((
                "grpc",
                tokio::spawn(async move {
                    router
                        .serve_with_incoming_shutdown(incoming, async move {
                            let _ = stop.wait_for(|s| *s).await;
                        })
                        .await
                        .map_err(ServerError::Grpc)
                }),
            ));
        }

        if self.config.webhook.enabled {
            let address = format!("{}:{}", self.config.webhook.host, self.config.webhook.port);
            let listener = bind("webhook", &address).await?;
            webhook_addr = listener.local_addr().ok();
            let app = webhook::router(
                self.auth.clone(),
                self.ingest.clone(),
                self.config.webhook.max_body_bytes,
            );
            let mut stop = stop_rx.clone();
            tracing::info!(address = ?webhook_addr, "streaming webhook server listening");
            tasks.push((
                "webhook",
                tokio::spawn(async move {
                    axum::serve(listener, app)
                        .with_graceful_shutdown(async move {
                            let _ = stop.wait_for(|s| *s).await;
                        })
                        .await
                        .map_err(ServerError::Webhook)
                }),
            ));
        }

        Ok(RunningServer {
            grpc_addr,
            webhook_addr,
            stop: stop_tx,
            tasks,
            ingest: self.ingest,
        })
    }
}

async fn bind(listener: &'static str, address: &str) -> Result<TcpListener, ServerError> {
    TcpListener::bind(address)
        .await
        .map_err(|source| ServerError::Bind {
            listener,
            address: address.to_string(),
            source,
        })
}

async fn read(field: &'static str, path: &std::path::Path) -> Result<Vec<u8>, ServerError> {
    tokio::fs::read(path)
        .await
        .map_err(|source| ServerError::TlsFile {
            field,
            path: path.display().to_string(),
            source,
        })
}

async fn load_tls(tls: &ServerTls) -> Result<Option<listener::ListenerTls>, ServerError> {
    if !tls.enabled {
        return Ok(None);
    }
    let cert = read("certPath", &tls.cert_path).await?;
    let key = read("keyPath", &tls.key_path).await?;
    let client_ca = match &tls.client_ca_path {
        Some(ca) => Some(read("clientCaPath", ca).await?),
        None => None,
    };
    listener::ListenerTls::from_pem(&cert, &key, client_ca.as_deref()).map(Some)
}

/// A started server.
pub struct RunningServer {
    grpc_addr: Option<SocketAddr>,
    webhook_addr: Option<SocketAddr>,
    stop: watch::Sender<bool>,
    tasks: Vec<(&'static str, JoinHandle<Result<(), ServerError>>)>,
    ingest: Arc<Ingest>,
}

impl RunningServer {
    /// Address of the gRPC listener.
    pub fn grpc_addr(&self) -> Option<SocketAddr> {
        self.grpc_addr
    }

    /// Address of the webhook listener.
    pub fn webhook_addr(&self) -> Option<SocketAddr> {
        self.webhook_addr
    }

    /// The ingest path (progress store, metrics).
    pub fn ingest(&self) -> &Arc<Ingest> {
        &self.ingest
    }

    /// Stops accepting, lets in-flight requests finish, then flushes the
    /// sinks and pending status writes.
    pub async fn shutdown(self) -> Result<(), ServerError> {
        let _ = self.stop.send(true);
        let mut first_error = None;
        for (listener, task) in self.tasks {
            let result = match task.await {
                Ok(r) => r,
                Err(e) => Err(ServerError::Task {
                    listener,
                    message: e.to_string(),
                }),
            };
            if let Err(e) = result {
                first_error.get_or_insert(e);
            }
        }
        self.ingest.flush().await;
        first_error.map_or(Ok(()), Err)
    }

    /// Serves until `signal` completes, then shuts down gracefully.
    pub async fn run_until(
        self,
        signal: impl std::future::Future<Output = ()>,
    ) -> Result<(), ServerError> {
        signal.await;
        self.shutdown().await
    }
}
