//! [`ExecutionContext`]: what an executor knows about the operation it runs.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::error::ExecutorError;
use crate::restore::RestoreRecord;
use crate::types::Operation;

/// Severity of a log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    /// Something failed.
    Error,
    /// Something looks wrong but the operation continues.
    Warn,
    /// Progress a user cares about.
    Info,
    /// Details for troubleshooting.
    Debug,
    /// Very verbose details.
    Trace,
}

impl LogLevel {
    /// Lowercase name (`error`, `warn`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warn => "warn",
            Self::Info => "info",
            Self::Debug => "debug",
            Self::Trace => "trace",
        }
    }
}

/// Receives executor log lines (e.g. forwards them to `tracing` or streams
/// them to the control plane). Messages and fields must not contain secrets.
pub trait LogSink: Send + Sync {
    /// Handles one log line of the operation described by `ctx`.
    fn log(&self, ctx: &ExecutionContext, level: LogLevel, message: &str, fields: &[(&str, &str)]);
}

/// Receives progress reports of executors.
pub trait ProgressSink: Send + Sync {
    /// Handles one progress report (`percent` is 0–100).
    fn report(&self, ctx: &ExecutionContext, percent: u8, message: &str);
}

/// The default [`LogSink`]: forwards to `tracing` with plan, target, cycle and
/// operation as fields.
#[derive(Clone, Copy, Debug, Default)]
pub struct TracingLogSink;

impl LogSink for TracingLogSink {
    fn log(&self, ctx: &ExecutionContext, level: LogLevel, message: &str, fields: &[(&str, &str)]) {
        let fields = FieldList(fields);
        macro_rules! emit {
            ($lvl:expr) => {
                tracing::event!(
                    $lvl,
                    plan = ctx.plan(),
                    namespace = ctx.namespace(),
                    target = ctx.target(),
                    cycle_id = ctx.cycle_id(),
                    operation = ctx.operation().as_str(),
                    fields = %fields,
                    "{message}"
                )
            };
        }
        match level {
            LogLevel::Error => emit!(tracing::Level::ERROR),
            LogLevel::Warn => emit!(tracing::Level::WARN),
            LogLevel::Info => emit!(tracing::Level::INFO),
            LogLevel::Debug => emit!(tracing::Level::DEBUG),
            LogLevel::Trace => emit!(tracing::Level::TRACE),
        }
    }
}

/// The default [`ProgressSink`]: a `tracing` debug event.
#[derive(Clone, Copy, Debug, Default)]
pub struct TracingProgressSink;

impl ProgressSink for TracingProgressSink {
    fn report(&self, ctx: &ExecutionContext, percent: u8, message: &str) {
        tracing::debug!(
            plan = ctx.plan(),
            target = ctx.target(),
            cycle_id = ctx.cycle_id(),
            percent,
            "progress: {message}"
        );
    }
}

struct FieldList<'a>(&'a [(&'a str, &'a str)]);

impl fmt::Display for FieldList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{k}={v:?}")?;
        }
        Ok(())
    }
}

#[derive(Debug)]
struct Names {
    plan: String,
    namespace: String,
    target: String,
    cycle_id: String,
}

/// Everything an executor gets besides its parameters: which plan, target,
/// cycle and operation it runs, the prior restore record (shutdown), a
/// cancellation token, a deadline, a logger and a progress reporter.
///
/// Cheap to clone (reference-counted); clones share the cancellation token,
/// sinks and the buffer of [recorded awake states](Self::record_awake_state).
#[derive(Clone)]
pub struct ExecutionContext {
    names: Arc<Names>,
    operation: Operation,
    prior_record: Option<Arc<RestoreRecord>>,
    cancellation: CancellationToken,
    timeout: Option<Duration>,
    deadline: Option<Instant>,
    log: Arc<dyn LogSink>,
    progress: Arc<dyn ProgressSink>,
    recorded: Arc<Mutex<BTreeMap<String, serde_json::Value>>>,
}

impl fmt::Debug for ExecutionContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExecutionContext")
            .field("plan", &self.names.plan)
            .field("namespace", &self.names.namespace)
            .field("target", &self.names.target)
            .field("cycle_id", &self.names.cycle_id)
            .field("operation", &self.operation)
            .field("has_prior_record", &self.prior_record.is_some())
            .field("cancelled", &self.cancellation.is_cancelled())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl ExecutionContext {
    /// Starts building a context for `operation` on `target` of `plan` in `cycle_id`.
    pub fn builder(
        plan: impl Into<String>,
        target: impl Into<String>,
        cycle_id: impl Into<String>,
        operation: Operation,
    ) -> ExecutionContextBuilder {
        ExecutionContextBuilder {
            plan: plan.into(),
            namespace: String::new(),
            target: target.into(),
            cycle_id: cycle_id.into(),
            operation,
            prior_record: None,
            cancellation: None,
            timeout: None,
            log: None,
            progress: None,
        }
    }

    /// Plan name.
    pub fn plan(&self) -> &str {
        &self.names.plan
    }

    /// Plan namespace (empty outside Kubernetes).
    pub fn namespace(&self) -> &str {
        &self.names.namespace
    }

    /// Target name.
    pub fn target(&self) -> &str {
        &self.names.target
    }

    /// Cycle id; restore entries are tagged with it.
    pub fn cycle_id(&self) -> &str {
        &self.names.cycle_id
    }

    /// The operation being run.
    pub fn operation(&self) -> Operation {
        self.operation
    }

    /// The target's restore record before this shutdown started, if any.
    ///
    /// A resource that is hibernated now and has an entry here is still asleep
    /// from an earlier cycle (e.g. its wake-up failed): do not report it as an
    /// observation.
    pub fn prior_record(&self) -> Option<&RestoreRecord> {
        self.prior_record.as_deref()
    }

    /// The token that is cancelled when the operation must stop (user
    /// request, shutdown of the runner, or the deadline passed).
    pub fn cancellation(&self) -> &CancellationToken {
        &self.cancellation
    }

    /// True once cancellation was requested.
    pub fn is_cancelled(&self) -> bool {
        self.cancellation.is_cancelled()
    }

    /// The per-target timeout, if any.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// When the operation must be done, if it has a timeout.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Time left until the deadline (`None`: no deadline).
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// Fails with [`ExecutorError::cancelled`] once cancelled and with
    /// [`ExecutorError::timeout`] once the deadline passed. Call it between
    /// steps of a long operation and before waiting on anything.
    pub fn check_cancelled(&self) -> Result<(), ExecutorError> {
        if self.is_cancelled() {
            return Err(ExecutorError::cancelled());
        }
        if let (Some(deadline), Some(timeout)) = (self.deadline, self.timeout)
            && Instant::now() >= deadline
        {
            let what = format!("{} of target {}", self.operation, self.target());
            return Err(ExecutorError::timeout(&what, timeout));
        }
        Ok(())
    }

    /// Records the awake state of a resource **before** changing it during
    /// shutdown. The shared run function merges recorded states into the
    /// restore ledger even when the shutdown fails later, so a resource that
    /// was changed is never left without an entry. The first state recorded
    /// for a key wins.
    pub fn record_awake_state(&self, key: impl Into<String>, state: serde_json::Value) {
        self.recorded
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key.into())
            .or_insert(state);
    }

    /// Awake states recorded so far with [`record_awake_state`](Self::record_awake_state).
    pub fn recorded_awake_states(&self) -> BTreeMap<String, serde_json::Value> {
        self.recorded
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Logs a line through the context's [`LogSink`].
    pub fn log(&self, level: LogLevel, message: &str, fields: &[(&str, &str)]) {
        self.log.log(self, level, message, fields);
    }

    /// Logs at info level.
    pub fn info(&self, message: &str) {
        self.log(LogLevel::Info, message, &[]);
    }

    /// Logs at warn level.
    pub fn warn(&self, message: &str) {
        self.log(LogLevel::Warn, message, &[]);
    }

    /// Logs at debug level.
    pub fn debug(&self, message: &str) {
        self.log(LogLevel::Debug, message, &[]);
    }

    /// Reports progress (clamped to 0–100) through the context's [`ProgressSink`].
    pub fn progress(&self, percent: u8, message: &str) {
        self.progress.report(self, percent.min(100), message);
    }

    /// A copy with another prior record and an empty recorded-state buffer.
    pub(crate) fn for_run(&self, prior: Option<RestoreRecord>, token: CancellationToken) -> Self {
        Self {
            prior_record: prior.map(Arc::new),
            cancellation: token,
            recorded: Arc::default(),
            ..self.clone()
        }
    }
}

/// Builder of [`ExecutionContext`].
pub struct ExecutionContextBuilder {
    plan: String,
    namespace: String,
    target: String,
    cycle_id: String,
    operation: Operation,
    prior_record: Option<RestoreRecord>,
    cancellation: Option<CancellationToken>,
    timeout: Option<Duration>,
    log: Option<Arc<dyn LogSink>>,
    progress: Option<Arc<dyn ProgressSink>>,
}

impl ExecutionContextBuilder {
    /// The plan's namespace.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// The prior restore record (the run functions set it from the store).
    pub fn prior_record(mut self, record: Option<RestoreRecord>) -> Self {
        self.prior_record = record;
        self
    }

    /// The cancellation token (default: a fresh one nobody cancels).
    pub fn cancellation(mut self, token: CancellationToken) -> Self {
        self.cancellation = Some(token);
        self
    }

    /// The per-target timeout; the deadline is `build()` time plus `timeout`.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The log sink (default: [`TracingLogSink`]).
    pub fn log_sink(mut self, sink: Arc<dyn LogSink>) -> Self {
        self.log = Some(sink);
        self
    }

    /// The progress sink (default: [`TracingProgressSink`]).
    pub fn progress_sink(mut self, sink: Arc<dyn ProgressSink>) -> Self {
        self.progress = Some(sink);
        self
    }

    /// Builds the context, starting the deadline clock.
    pub fn build(self) -> ExecutionContext {
        ExecutionContext {
            names: Arc::new(Names {
                plan: self.plan,
                namespace: self.namespace,
                target: self.target,
                cycle_id: self.cycle_id,
            }),
            operation: self.operation,
            prior_record: self.prior_record.map(Arc::new),
            cancellation: self.cancellation.unwrap_or_default(),
            timeout: self.timeout,
            deadline: self.timeout.map(|t| Instant::now() + t),
            log: self.log.unwrap_or_else(|| Arc::new(TracingLogSink)),
            progress: self
                .progress
                .unwrap_or_else(|| Arc::new(TracingProgressSink)),
            recorded: Arc::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Capture(Mutex<Vec<String>>);

    impl LogSink for Capture {
        fn log(
            &self,
            ctx: &ExecutionContext,
            level: LogLevel,
            message: &str,
            fields: &[(&str, &str)],
        ) {
            let line = format!(
                "{} {} {message} {}",
                ctx.target(),
                level.as_str(),
                FieldList(fields)
            );
            self.0.lock().unwrap().push(line);
        }
    }

    impl ProgressSink for Capture {
        fn report(&self, ctx: &ExecutionContext, percent: u8, message: &str) {
            self.0
                .lock()
                .unwrap()
                .push(format!("{} {percent}% {message}", ctx.cycle_id()));
        }
    }

    #[test]
    fn builder_defaults_and_accessors() {
        let ctx = ExecutionContext::builder("dev", "web", "c1", Operation::Shutdown)
            .namespace("ns")
            .build();
        assert_eq!(
            (ctx.plan(), ctx.namespace(), ctx.target(), ctx.cycle_id()),
            ("dev", "ns", "web", "c1")
        );
        assert_eq!(ctx.operation(), Operation::Shutdown);
        assert!(ctx.prior_record().is_none());
        assert!(ctx.deadline().is_none());
        assert!(ctx.check_cancelled().is_ok());
        // The default sinks forward to tracing without panicking.
        ctx.info("hello");
        ctx.progress(50, "half");
    }

    #[test]
    fn sinks_receive_logs_and_clamped_progress() {
        let sink = Arc::new(Capture::default());
        let ctx = ExecutionContext::builder("dev", "web", "c1", Operation::Wakeup)
            .log_sink(sink.clone())
            .progress_sink(sink.clone())
            .build();
        ctx.log(LogLevel::Warn, "slow", &[("resource", "ng-1")]);
        ctx.progress(250, "done");
        let lines = sink.0.lock().unwrap().clone();
        assert_eq!(lines, ["web warn slow resource=\"ng-1\"", "c1 100% done"]);
    }

    #[test]
    fn cancellation_is_shared_by_clones() {
        let ctx = ExecutionContext::builder("dev", "web", "c1", Operation::Shutdown).build();
        let clone = ctx.clone();
        ctx.cancellation().cancel();
        assert!(clone.is_cancelled());
        assert_eq!(clone.check_cancelled().unwrap_err().category, "cancelled");
    }

    #[tokio::test(start_paused = true)]
    async fn deadline_expires() {
        let ctx = ExecutionContext::builder("dev", "web", "c1", Operation::Shutdown)
            .timeout(Duration::from_secs(60))
            .build();
        assert!(ctx.check_cancelled().is_ok());
        tokio::time::advance(Duration::from_secs(61)).await;
        let err = ctx.check_cancelled().unwrap_err();
        assert_eq!(err.category, "timeout");
        assert_eq!(ctx.remaining(), Some(Duration::ZERO));
    }

    #[test]
    fn first_recorded_awake_state_wins() {
        let ctx = ExecutionContext::builder("dev", "web", "c1", Operation::Shutdown).build();
        ctx.record_awake_state("a", serde_json::json!(3));
        ctx.clone().record_awake_state("a", serde_json::json!(0));
        assert_eq!(ctx.recorded_awake_states()["a"], serde_json::json!(3));
        let fresh = ctx.for_run(None, CancellationToken::new());
        assert!(fresh.recorded_awake_states().is_empty());
    }
}
