//! The gRPC `hibernator.api.v1.ExecutionService`.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, Stream, StreamExt};
use prost::Message;
use tonic::{Request, Response, Status};

use super::progress::ProgressQueries;
use crate::auth::{AuthError, Authenticator, Authorized, ExecutionInfo};
use crate::ingest::Ingest;
use crate::metrics::AuthFailureReason;
use crate::progress::STATUS_POLL_INTERVAL;
use crate::wire::proto::{
    Ack, CompletionReport, GetProgressRequest, HeartbeatRequest, LogBatch, LogEntry,
    ProgressUpdate, StreamLogsResponse, execution_service_server::ExecutionService,
};
use crate::wire::{Completion, LogLine, line_of, progress_of, update_of};

/// Largest number of already-received log entries ingested as one batch.
const STREAM_BATCH: usize = 1024;

/// Implementation of the gRPC service over [`Ingest`] and [`Authenticator`].
#[derive(Clone)]
pub struct GrpcService {
    auth: Arc<Authenticator>,
    ingest: Arc<Ingest>,
    progress: Arc<ProgressQueries>,
    local_access: bool,
}

impl GrpcService {
    /// A service authorizing with `auth` and feeding `ingest`; progress
    /// queries fall back to the plan status (polled every
    /// [`STATUS_POLL_INTERVAL`] while watched).
    pub fn new(auth: Arc<Authenticator>, ingest: Arc<Ingest>) -> Self {
        Self::with_poll_interval(auth, ingest, STATUS_POLL_INTERVAL)
    }

    /// [`GrpcService::new`] with another plan-status poll interval.
    pub fn with_poll_interval(
        auth: Arc<Authenticator>,
        ingest: Arc<Ingest>,
        poll_interval: Duration,
    ) -> Self {
        let progress = Arc::new(ProgressQueries::new(
            auth.clone(),
            ingest.clone(),
            poll_interval,
        ));
        Self {
            auth,
            ingest,
            progress,
            local_access: false,
        }
    }

    /// With `true`, progress queries (`GetProgress`, `WatchProgress`) from
    /// the pod's loopback (`kubectl port-forward`) need no token (see
    /// [`GrpcServerConfig::local_access`](crate::config::GrpcServerConfig::local_access)).
    /// Off unless set; [`StreamingServer`](super::StreamingServer) sets it
    /// from the configuration.
    pub fn with_local_access(mut self, local_access: bool) -> Self {
        self.local_access = local_access;
        self
    }

    /// Counts an answer in `hibernator_streaming_bytes_sent_total`.
    fn sent<M: Message>(&self, message: M) -> M {
        self.ingest
            .metrics()
            .bytes_sent
            .inc_by(message.encoded_len() as u64);
        message
    }

    /// Number of running plan-status pollers of `WatchProgress` streams.
    pub fn active_pollers(&self) -> usize {
        self.progress.active_pollers()
    }

    async fn authorize<T>(
        &self,
        request: &Request<T>,
        execution_id: &str,
    ) -> Result<Authorized, Status> {
        let header = authorization(request)?;
        self.auth
            .authorize(header.as_deref(), execution_id)
            .await
            .map_err(status_of)
    }
}

fn authorization<T>(request: &Request<T>) -> Result<Option<String>, Status> {
    match request.metadata().get("authorization") {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(|s| Some(s.to_string()))
            .map_err(|_| Status::unauthenticated("authorization metadata is not valid ASCII")),
    }
}

/// Maps an auth error to a gRPC status.
pub fn status_of(e: AuthError) -> Status {
    match &e {
        AuthError::Denied { reason, .. } => match reason {
            AuthFailureReason::unknown_execution
            | AuthFailureReason::wrong_identity
            | AuthFailureReason::wrong_pod => Status::permission_denied(e.to_string()),
            _ => Status::unauthenticated(e.to_string()),
        },
        AuthError::Unavailable { .. } => Status::unavailable(e.to_string()),
    }
}

/// Converts the entries of a [`LogBatch`]; an entry naming another execution
/// than the batch is refused (`INVALID_ARGUMENT`, naming the entry).
pub fn lines_of_batch(execution_id: &str, entries: Vec<LogEntry>) -> Result<Vec<LogLine>, Status> {
    if execution_id.is_empty() {
        return Err(Status::invalid_argument("execution_id: required"));
    }
    entries
        .into_iter()
        .enumerate()
        .map(|(i, entry)| {
            if entry.execution_id.is_empty() || entry.execution_id == execution_id {
                Ok(line_of(entry))
            } else {
                Err(Status::invalid_argument(format!(
                    "entries[{i}].execution_id: {:?} differs from the batch's execution_id {execution_id:?}",
                    entry.execution_id
                )))
            }
        })
        .collect()
}

/// State of one log stream: the executions its token was bound to and the
/// lines accepted so far.
struct LogStream<'a> {
    service: &'a GrpcService,
    header: Option<String>,
    bound: HashMap<String, ExecutionInfo>,
    accepted: u64,
    _connection: crate::metrics::ConnectionGuard,
}

impl GrpcService {
    /// Authenticates a progress query: any token for the audience, or none
    /// from the pod's loopback when local access is on (`kubectl
    /// port-forward`); a refusal says how to get a token.
    async fn authenticate_viewer<T>(&self, request: &Request<T>) -> Result<(), Status> {
        let header = authorization(request)?;
        if header.is_none()
            && self.local_access
            && request
                .remote_addr()
                .is_some_and(|peer| super::listener::is_loopback_peer(&peer))
        {
            return Ok(());
        }
        self.auth
            .authenticate(header.as_deref())
            .await
            .map(|_| ())
            .map_err(|e| {
                let status = status_of(e);
                if status.code() == tonic::Code::Unauthenticated {
                    let port_forward = if self.local_access {
                        " (or query through `kubectl port-forward`: connections from the \
                         controller pod's loopback need no token)"
                    } else {
                        ""
                    };
                    Status::unauthenticated(format!(
                        "{}; progress queries need `authorization: Bearer <token>` metadata \
                         with a ServiceAccount token for the audience {}, e.g. \
                         `kubectl create token <serviceaccount> -n <namespace> --audience {}`{port_forward}",
                        status.message(),
                        crate::config::AUDIENCE,
                        crate::config::AUDIENCE
                    ))
                } else {
                    status
                }
            })
    }

    fn log_stream<T>(&self, request: &Request<T>) -> Result<LogStream<'_>, Status> {
        Ok(LogStream {
            service: self,
            header: authorization(request)?,
            bound: HashMap::new(),
            accepted: 0,
            _connection: self.ingest.metrics().connection(),
        })
    }
}

impl LogStream<'_> {
    fn received(&self, bytes: usize) {
        self.service
            .ingest
            .metrics()
            .bytes_received
            .inc_by(bytes as u64);
    }

    /// Authorizes the stream's token for `execution_id` (once per stream and
    /// execution) and ingests `lines`.
    async fn accept(&mut self, execution_id: String, lines: Vec<LogLine>) -> Result<(), Status> {
        let execution = match self.bound.entry(execution_id) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                let ok = self
                    .service
                    .auth
                    .authorize(self.header.as_deref(), e.key())
                    .await
                    .map_err(status_of)?;
                e.insert(ok.execution)
            }
        };
        self.accepted += lines.len() as u64;
        self.service.ingest.logs(execution, lines).await;
        Ok(())
    }

    fn response(&self) -> StreamLogsResponse {
        StreamLogsResponse {
            accepted: self.accepted,
        }
    }
}

#[tonic::async_trait]
impl ExecutionService for GrpcService {
    async fn stream_logs(
        &self,
        request: Request<tonic::Streaming<LogEntry>>,
    ) -> Result<Response<StreamLogsResponse>, Status> {
        let mut accepting = self.log_stream(&request)?;
        let mut stream = request.into_inner();
        while let Some(first) = stream.message().await? {
            // Entries that already arrived are taken together; consecutive
            // entries of one execution become one ingest call.
            let mut batch = vec![first];
            while batch.len() < STREAM_BATCH {
                match stream.next().now_or_never() {
                    Some(Some(entry)) => batch.push(entry?),
                    _ => break,
                }
            }
            let mut run: Option<(String, Vec<LogLine>)> = None;
            for mut entry in batch {
                accepting.received(entry.encoded_len());
                let id = std::mem::take(&mut entry.execution_id);
                match &mut run {
                    Some((current, lines)) if *current == id => lines.push(line_of(entry)),
                    _ => {
                        if let Some((current, lines)) = run.take() {
                            accepting.accept(current, lines).await?;
                        }
                        run = Some((id, vec![line_of(entry)]));
                    }
                }
            }
            if let Some((current, lines)) = run {
                accepting.accept(current, lines).await?;
            }
        }
        Ok(Response::new(self.sent(accepting.response())))
    }

    async fn stream_log_batches(
        &self,
        request: Request<tonic::Streaming<LogBatch>>,
    ) -> Result<Response<StreamLogsResponse>, Status> {
        let mut accepting = self.log_stream(&request)?;
        let mut stream = request.into_inner();
        while let Some(batch) = stream.message().await? {
            accepting.received(batch.encoded_len());
            let lines = lines_of_batch(&batch.execution_id, batch.entries)?;
            accepting.accept(batch.execution_id, lines).await?;
        }
        Ok(Response::new(self.sent(accepting.response())))
    }

    async fn report_progress(
        &self,
        request: Request<ProgressUpdate>,
    ) -> Result<Response<Ack>, Status> {
        let ok = self
            .authorize(&request, &request.get_ref().execution_id)
            .await?;
        let update = request.into_inner();
        self.ingest
            .metrics()
            .bytes_received
            .inc_by(update.encoded_len() as u64);
        self.ingest
            .progress(&ok.execution, progress_of(update))
            .await;
        Ok(Response::new(self.sent(Ack { accepted: true })))
    }

    async fn report_completion(
        &self,
        request: Request<CompletionReport>,
    ) -> Result<Response<Ack>, Status> {
        let ok = self
            .authorize(&request, &request.get_ref().execution_id)
            .await?;
        let report = request.into_inner();
        self.ingest
            .metrics()
            .bytes_received
            .inc_by(report.encoded_len() as u64);
        let completion = Completion {
            duration: report.duration.and_then(|d| Duration::try_from(d).ok()),
            execution_id: report.execution_id,
            success: report.success,
            error: (!report.error.is_empty()).then_some(report.error),
            dropped_logs: report.dropped_logs,
        };
        self.ingest.completion(&ok.execution, completion).await;
        Ok(Response::new(self.sent(Ack { accepted: true })))
    }

    async fn heartbeat(&self, request: Request<HeartbeatRequest>) -> Result<Response<Ack>, Status> {
        let ok = self
            .authorize(&request, &request.get_ref().execution_id)
            .await?;
        self.ingest.heartbeat(&ok.execution);
        Ok(Response::new(self.sent(Ack { accepted: true })))
    }

    async fn get_progress(
        &self,
        request: Request<GetProgressRequest>,
    ) -> Result<Response<ProgressUpdate>, Status> {
        self.authenticate_viewer(&request).await?;
        let progress = self.progress.get(&request.get_ref().execution_id).await?;
        Ok(Response::new(self.sent(update_of(&progress))))
    }

    type WatchProgressStream = Pin<Box<dyn Stream<Item = Result<ProgressUpdate, Status>> + Send>>;

    async fn watch_progress(
        &self,
        request: Request<GetProgressRequest>,
    ) -> Result<Response<Self::WatchProgressStream>, Status> {
        self.authenticate_viewer(&request).await?;
        let id = request.into_inner().execution_id;
        let connection = self.ingest.metrics().connection();
        let updates = self.progress.watch(id, connection).await?;
        let metrics = self.ingest.metrics().clone();
        Ok(Response::new(Box::pin(updates.map(move |p| {
            p.map(|p| {
                let update = update_of(&p);
                metrics.bytes_sent.inc_by(update.encoded_len() as u64);
                update
            })
        }))))
    }
}
