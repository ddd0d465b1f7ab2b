//! [`CountingExecutor`]: an executor wrapper that counts calls, so a target
//! that fails still reports how many attempts it made.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use async_trait::async_trait;

use super::{
    EnforceOutcome, ExecutionContext, Executor, ExecutorError, ShutdownOutcome, WakeupOutcome,
};
use crate::params::ParameterCheck;
use crate::restore::RestoreRecord;

/// Wraps an executor and counts its `shutdown`/`wakeup` calls (one per
/// attempt of [`run_shutdown`](super::run_shutdown) /
/// [`run_wakeup`](super::run_wakeup)), failed ones included.
pub struct CountingExecutor {
    inner: Arc<dyn Executor>,
    calls: Arc<AtomicU32>,
}

impl CountingExecutor {
    /// Counts calls of `inner` from zero.
    pub fn new(inner: Arc<dyn Executor>) -> Self {
        Self::with_counter(inner, Arc::new(AtomicU32::new(0)))
    }

    /// Counts calls of `inner` into `counter` (shared with the caller, who
    /// can read it even when the operation's future was dropped).
    pub fn with_counter(inner: Arc<dyn Executor>, counter: Arc<AtomicU32>) -> Self {
        Self {
            inner,
            calls: counter,
        }
    }

    /// Calls made so far.
    pub fn attempts(&self) -> u32 {
        self.calls.load(Ordering::Relaxed)
    }
}

#[async_trait]
impl Executor for CountingExecutor {
    fn executor_type(&self) -> &str {
        self.inner.executor_type()
    }

    fn parameter_check(&self) -> Arc<dyn ParameterCheck> {
        self.inner.parameter_check()
    }

    async fn shutdown(
        &self,
        ctx: &ExecutionContext,
        params: &serde_json::Value,
    ) -> Result<ShutdownOutcome, ExecutorError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.inner.shutdown(ctx, params).await
    }

    async fn wakeup(
        &self,
        ctx: &ExecutionContext,
        params: &serde_json::Value,
        record: &RestoreRecord,
    ) -> Result<WakeupOutcome, ExecutorError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.inner.wakeup(ctx, params, record).await
    }

    fn supports_enforce(&self) -> bool {
        self.inner.supports_enforce()
    }

    async fn enforce(
        &self,
        ctx: &ExecutionContext,
        params: &serde_json::Value,
        record: &RestoreRecord,
    ) -> Result<EnforceOutcome, ExecutorError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.inner.enforce(ctx, params, record).await
    }
}
