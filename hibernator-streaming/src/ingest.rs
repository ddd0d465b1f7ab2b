//! Transport-neutral handling of accepted runner reports: logs go to the
//! controller's structured log and (batched) to the log sinks, progress to
//! the [`ProgressHub`] and the [`StatusSink`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot};

use crate::auth::ExecutionInfo;
use crate::metrics::StreamingMetrics;
use crate::progress::ProgressHub;
use crate::sink::{LogRecord, LogSink};
use crate::status::{StatusChange, StatusSink};
use crate::wire::{Completion, LogLine, Progress};

/// Largest batch handed to a sink.
pub const SINK_BATCH: usize = 1000;
/// Longest time a line waits in the sink batcher.
pub const SINK_LINGER: Duration = Duration::from_millis(200);

enum BatcherMsg {
    Records(Vec<LogRecord>),
    Flush(oneshot::Sender<()>),
}

/// Shared state of the streaming server behind both transports.
pub struct Ingest {
    hub: Arc<ProgressHub>,
    status: Arc<dyn StatusSink>,
    metrics: StreamingMetrics,
    batcher: Option<mpsc::Sender<BatcherMsg>>,
    heartbeats: std::sync::Mutex<HashMap<String, Liveness>>,
}

/// What this replica knows of an execution's liveness.
#[derive(Clone, Copy, Debug)]
enum Liveness {
    /// Last heartbeat.
    Alive(DateTime<Utc>),
    /// Completed at; heartbeats still in flight are ignored.
    Completed(DateTime<Utc>),
}

impl Liveness {
    fn at(self) -> DateTime<Utc> {
        match self {
            Self::Alive(t) | Self::Completed(t) => t,
        }
    }
}

/// Executions whose last heartbeat is remembered.
const HEARTBEAT_CAPACITY: usize = 10_000;

impl Ingest {
    /// Creates the ingest path; with sinks, starts their batcher task.
    pub fn new(
        status: Arc<dyn StatusSink>,
        sinks: Vec<Arc<dyn LogSink>>,
        metrics: StreamingMetrics,
    ) -> Self {
        let batcher = (!sinks.is_empty()).then(|| {
            let (tx, rx) = mpsc::channel(64);
            tokio::spawn(run_batcher(rx, sinks));
            tx
        });
        Self {
            hub: Arc::new(ProgressHub::new(10_000)),
            status,
            metrics,
            batcher,
            heartbeats: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The progress store.
    pub fn hub(&self) -> &Arc<ProgressHub> {
        &self.hub
    }

    /// Where progress and completion are recorded (and read back).
    pub fn status(&self) -> &Arc<dyn StatusSink> {
        &self.status
    }

    /// The server metrics.
    pub fn metrics(&self) -> &StreamingMetrics {
        &self.metrics
    }

    /// Accepts log lines of one execution.
    pub async fn logs(&self, execution: &ExecutionInfo, lines: Vec<LogLine>) {
        if lines.is_empty() {
            return;
        }
        self.metrics.logs.inc_by(lines.len() as u64);
        for line in &lines {
            tracing::info!(
                target: "hibernator::runner",
                execution_id = %execution.execution_id,
                namespace = %execution.namespace,
                plan = %execution.plan,
                target_name = %execution.target,
                level = %line.level,
                runner_time = %line.timestamp.to_rfc3339(),
                "{}",
                line.message
            );
        }
        if let Some(batcher) = &self.batcher {
            let records = lines
                .into_iter()
                .map(|l| LogRecord {
                    execution_id: execution.execution_id.clone(),
                    namespace: execution.namespace.clone(),
                    plan: execution.plan.clone(),
                    target: execution.target.clone(),
                    timestamp: l.timestamp,
                    level: l.level,
                    message: l.message,
                    fields: l.fields,
                    started: execution.started,
                })
                .collect();
            if batcher.send(BatcherMsg::Records(records)).await.is_err() {
                tracing::warn!("log sink batcher stopped; runner log lines not forwarded");
            }
        }
    }

    /// Accepts a progress report.
    pub async fn progress(&self, execution: &ExecutionInfo, progress: Progress) {
        tracing::info!(
            target: "hibernator::runner",
            execution_id = %execution.execution_id,
            namespace = %execution.namespace,
            plan = %execution.plan,
            target_name = %execution.target,
            phase = %progress.phase,
            progress = progress.progress,
            "{}",
            progress.message
        );
        self.hub.update(progress.clone());
        if let Err(e) = self
            .status
            .record(execution, StatusChange::Progress(progress))
            .await
        {
            tracing::warn!(error = %e, "recording runner progress failed");
        }
    }

    /// Accepts a completion report (and flushes the sinks).
    pub async fn completion(&self, execution: &ExecutionInfo, completion: Completion) {
        tracing::info!(
            target: "hibernator::runner",
            execution_id = %execution.execution_id,
            namespace = %execution.namespace,
            plan = %execution.plan,
            target_name = %execution.target,
            success = completion.success,
            error = completion.error.as_deref().unwrap_or(""),
            dropped_logs = completion.dropped_logs,
            "runner execution completed"
        );
        // The final progress, as the plan status records it, so this
        // replica answers what every other one reads from the status.
        let last = self.hub.get(&completion.execution_id).map(|(p, _)| p);
        self.hub.update(Progress {
            execution_id: completion.execution_id.clone(),
            phase: last.as_ref().map(|p| p.phase.clone()).unwrap_or_default(),
            progress: if completion.success {
                100
            } else {
                last.as_ref().map_or(0, |p| p.progress)
            },
            message: crate::status::completion_message(&completion),
            timestamp: Utc::now(),
        });
        self.hub.complete(&completion.execution_id);
        self.note_liveness(&completion.execution_id, Liveness::Completed(Utc::now()));
        if let Err(e) = self
            .status
            .record(execution, StatusChange::Completed(completion))
            .await
        {
            tracing::warn!(error = %e, "recording runner completion failed");
        }
        self.flush_sinks().await;
    }

    /// When the runner of `execution_id` last sent a heartbeat (to this
    /// replica).
    pub fn last_heartbeat(&self, execution_id: &str) -> Option<DateTime<Utc>> {
        self.heartbeats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(execution_id)
            .and_then(|l| match l {
                Liveness::Alive(t) => Some(*t),
                Liveness::Completed(_) => None,
            })
    }

    /// Records `liveness`; a completed execution stays completed (a
    /// heartbeat that was in flight when the completion arrived is ignored).
    fn note_liveness(&self, execution_id: &str, liveness: Liveness) {
        let mut beats = self.heartbeats.lock().unwrap_or_else(|e| e.into_inner());
        match beats.get(execution_id) {
            Some(Liveness::Completed(_)) if matches!(liveness, Liveness::Alive(_)) => return,
            Some(_) => {}
            None if beats.len() >= HEARTBEAT_CAPACITY => {
                let oldest = beats
                    .iter()
                    .min_by_key(|(_, l)| l.at())
                    .map(|(k, _)| k.clone());
                if let Some(oldest) = oldest {
                    beats.remove(&oldest);
                }
            }
            None => {}
        }
        beats.insert(execution_id.to_string(), liveness);
    }

    /// Notes a heartbeat.
    pub fn heartbeat(&self, execution: &ExecutionInfo) {
        self.note_liveness(&execution.execution_id, Liveness::Alive(Utc::now()));
        tracing::debug!(
            target: "hibernator::runner",
            execution_id = %execution.execution_id,
            plan = %execution.plan,
            target_name = %execution.target,
            "runner heartbeat"
        );
    }

    /// Hands every buffered line to the sinks and flushes them.
    pub async fn flush_sinks(&self) {
        if let Some(batcher) = &self.batcher {
            let (tx, rx) = oneshot::channel();
            if batcher.send(BatcherMsg::Flush(tx)).await.is_ok() {
                let _ = rx.await;
            }
        }
    }

    /// Flushes sinks and pending status writes (on shutdown).
    pub async fn flush(&self) {
        self.flush_sinks().await;
        if let Err(e) = self.status.flush().await {
            tracing::warn!(error = %e, "flushing runner status failed");
        }
    }
}

async fn run_batcher(mut rx: mpsc::Receiver<BatcherMsg>, sinks: Vec<Arc<dyn LogSink>>) {
    let mut buffer: Vec<LogRecord> = Vec::with_capacity(SINK_BATCH);
    loop {
        let msg = if buffer.is_empty() {
            rx.recv().await
        } else {
            match tokio::time::timeout(SINK_LINGER, rx.recv()).await {
                Ok(msg) => msg,
                Err(_) => {
                    write_all(&sinks, &mut buffer).await;
                    continue;
                }
            }
        };
        match msg {
            Some(BatcherMsg::Records(records)) => {
                buffer.extend(records);
                if buffer.len() >= SINK_BATCH {
                    write_all(&sinks, &mut buffer).await;
                }
            }
            Some(BatcherMsg::Flush(done)) => {
                write_all(&sinks, &mut buffer).await;
                for sink in &sinks {
                    if let Err(e) = sink.flush().await {
                        tracing::warn!(sink = sink.name(), error = %e, "log sink flush failed");
                    }
                }
                let _ = done.send(());
            }
            None => {
                write_all(&sinks, &mut buffer).await;
                return;
            }
        }
    }
}

async fn write_all(sinks: &[Arc<dyn LogSink>], buffer: &mut Vec<LogRecord>) {
    if buffer.is_empty() {
        return;
    }
    for chunk in buffer.chunks(SINK_BATCH) {
        for sink in sinks {
            if let Err(e) = sink.write_batch(chunk).await {
                tracing::warn!(sink = sink.name(), error = %e, lines = chunk.len(), "log sink write failed");
            }
        }
    }
    buffer.clear();
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;

    struct NoStatus;

    #[async_trait]
    impl StatusSink for NoStatus {
        async fn record(
            &self,
            _: &ExecutionInfo,
            _: StatusChange,
        ) -> Result<(), crate::status::StatusError> {
            Ok(())
        }
    }

    fn execution(id: &str) -> ExecutionInfo {
        ExecutionInfo {
            execution_id: id.into(),
            namespace: "ns".into(),
            plan: "plan".into(),
            target: "target".into(),
            job_name: "job".into(),
            job_uid: "uid".into(),
            service_account: "runner".into(),
            started: None,
        }
    }

    #[tokio::test]
    async fn a_heartbeat_arriving_after_the_completion_is_ignored() {
        let ingest = Ingest::new(Arc::new(NoStatus), Vec::new(), StreamingMetrics::default());
        let e = execution("exec-1");
        ingest.heartbeat(&e);
        assert!(ingest.last_heartbeat("exec-1").is_some());
        ingest
            .completion(
                &e,
                Completion {
                    execution_id: "exec-1".into(),
                    success: true,
                    error: None,
                    duration: None,
                    dropped_logs: 0,
                },
            )
            .await;
        assert!(ingest.last_heartbeat("exec-1").is_none());
        ingest.heartbeat(&e);
        assert!(
            ingest.last_heartbeat("exec-1").is_none(),
            "a late heartbeat does not revive a completed execution"
        );
        let other = execution("exec-2");
        ingest.heartbeat(&other);
        assert!(ingest.last_heartbeat("exec-2").is_some());
    }
}
