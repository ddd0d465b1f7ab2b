//! Log and progress sinks of the runner: always the process output
//! (tracing), plus the control plane's streaming endpoint when configured.

use std::collections::BTreeMap;
use std::sync::Arc;

use hibernator_core::executor::{
    ExecutionContext, LogLevel, LogSink, ProgressSink, TracingLogSink, TracingProgressSink,
};
use hibernator_core::types::Operation;
use hibernator_streaming::client::{Level, StreamClient};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Sinks writing to stdout (tracing) and, when connected, to the stream.
pub struct Sinks {
    client: Option<Arc<StreamClient>>,
    progress_tx: Option<mpsc::UnboundedSender<(u8, String)>>,
    forwarder: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Sinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sinks")
            .field("streaming", &self.client.is_some())
            .finish()
    }
}

impl Sinks {
    /// Sinks for `client` (`None`: stdout only); progress is reported with
    /// the phase of `operation` (`Shutdown` or `WakeUp`, as the plan status
    /// read-back on other controller replicas names it).
    pub fn new(client: Option<StreamClient>, operation: Operation) -> Self {
        let Some(client) = client.map(Arc::new) else {
            return Self {
                client: None,
                progress_tx: None,
                forwarder: None,
            };
        };
        let (tx, mut rx) = mpsc::unbounded_channel::<(u8, String)>();
        let forward_to = client.clone();
        let phase = hibernator_streaming::status::phase_of(operation);
        let forwarder = tokio::spawn(async move {
            while let Some((percent, message)) = rx.recv().await {
                if let Err(e) = forward_to.progress(phase, percent, &message).await {
                    tracing::warn!(error = %e, "cannot stream progress");
                }
            }
        });
        Self {
            client: Some(client),
            progress_tx: Some(tx),
            forwarder: Some(forwarder),
        }
    }

    /// The log sink for the execution context.
    pub fn log_sink(&self) -> Arc<dyn LogSink> {
        Arc::new(StreamLogSink {
            client: self.client.clone(),
        })
    }

    /// The progress sink for the execution context.
    pub fn progress_sink(&self) -> Arc<dyn ProgressSink> {
        Arc::new(StreamProgressSink {
            tx: self.progress_tx.clone(),
        })
    }

    /// Whether the stream is connected.
    pub fn is_streaming(&self) -> bool {
        self.client.is_some()
    }

    /// Sends the final line and the completion report, then closes the
    /// stream. Call after every context holding these sinks was dropped.
    pub async fn finish(mut self, success: bool, error: Option<String>) {
        self.progress_tx = None;
        if let Some(forwarder) = self.forwarder.take() {
            // The forwarder ends when every progress sender is gone.
            if let Err(e) = forwarder.await {
                tracing::warn!(error = %e, "progress forwarder failed");
            }
        }
        let Some(client) = self.client.take() else {
            return;
        };
        match Arc::try_unwrap(client) {
            Ok(client) => {
                if let Err(e) = client.complete(success, error).await {
                    tracing::warn!(error = %e, "cannot stream the completion report");
                }
            }
            Err(client) => {
                if let Err(e) = client.flush().await {
                    tracing::warn!(error = %e, "cannot flush streamed logs");
                }
            }
        }
    }
}

struct StreamLogSink {
    client: Option<Arc<StreamClient>>,
}

impl LogSink for StreamLogSink {
    fn log(&self, ctx: &ExecutionContext, level: LogLevel, message: &str, fields: &[(&str, &str)]) {
        TracingLogSink.log(ctx, level, message, fields);
        if let Some(client) = &self.client {
            let level = match level {
                LogLevel::Error => Level::Error,
                LogLevel::Warn => Level::Warn,
                LogLevel::Info => Level::Info,
                LogLevel::Debug | LogLevel::Trace => Level::Debug,
            };
            let fields: BTreeMap<String, String> = fields
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .collect();
            client.try_log(level, message, fields);
        }
    }
}

struct StreamProgressSink {
    tx: Option<mpsc::UnboundedSender<(u8, String)>>,
}

impl ProgressSink for StreamProgressSink {
    fn report(&self, ctx: &ExecutionContext, percent: u8, message: &str) {
        TracingProgressSink.report(ctx, percent, message);
        if let Some(tx) = &self.tx {
            // A closed channel means the run is finishing; nothing to report to.
            let _ = tx.send((percent.min(100), message.to_string()));
        }
    }
}
