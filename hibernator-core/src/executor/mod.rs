//! The [`Executor`] trait and everything needed to run one.
//!
//! An executor hibernates and wakes up the resources of one target type
//! (`ec2`, `rds`, `eks`, … or your own). The two shells (the operator's runner
//! Job and `hibernator run`) never call it directly: they call
//! [`run_shutdown`] / [`run_wakeup`] / [`run_enforce`], which load and persist the restore
//! ledger around it, retry transient errors with [`RetryPolicy`] and enforce
//! the target's deadline.
//!
//! Most executors implement [`TypedExecutor`] (typed, validated parameters)
//! and are wrapped with [`typed`]`(MyExecutor)`. The binaries learn about
//! executors from an executor set (`hibernator_executors::ExecutorSet`),
//! which also yields the parameter catalog validation uses. Executors get
//! the same helpers the built-ins use: bounded waits ([`wait_until`],
//! [`wait_for_all`]) here, label selectors and name checks in
//! [`crate::selector`]. See `docs/writing-executors.md` and, with the
//! `testing` feature, the conformance kit in [`testing`].

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;

use crate::diag::Diagnostics;
use crate::params::{ParameterCheck, TypedParameters, ValidateParameters, parse_parameters};
use crate::restore::RestoreRecord;

mod context;
mod counting;
mod error;
mod retry;
mod run;
#[cfg(feature = "testing")]
pub mod testing;
mod wait;

pub use context::{
    ExecutionContext, ExecutionContextBuilder, LogLevel, LogSink, ProgressSink, TracingLogSink,
    TracingProgressSink,
};
pub use counting::CountingExecutor;
pub use error::{ErrorClass, ExecutorError, category};
pub use retry::{Jitter, RetryPolicy, retry};
pub use run::{CANCEL_GRACE, EnforceReport, TargetReport, run_enforce, run_shutdown, run_wakeup};
pub use wait::{Laggards, describe_laggards, laggards_timeout, wait_for_all, wait_until};

/// What a shutdown did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ShutdownOutcome {
    /// Awake states of the resources this shutdown found awake and
    /// hibernated, keyed by resource key. Resources that were already
    /// hibernated must **not** appear here (their entry, if any, already holds
    /// their awake state).
    pub observations: BTreeMap<String, serde_json::Value>,
    /// Every resource the shutdown touched or checked, for summaries.
    pub resources: Vec<String>,
}

/// What a wake-up did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WakeupOutcome {
    /// Keys of the restore entries whose resources were restored.
    pub restored: Vec<String>,
    /// Keys of resources that failed to wake up, with a message (no secrets).
    /// Non-empty means the target failed; their entries are kept.
    pub failed: BTreeMap<String, String>,
}

/// What an enforcement check (drift re-enforcement while hibernated) did.
///
/// Built by executors: only resources whose keys are in the restore record
/// handed to [`Executor::enforce`] may appear here.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EnforceOutcome {
    /// Keys of the recorded resources that were checked.
    pub checked: Vec<String>,
    /// Keys of the recorded resources found awake and put back to sleep.
    pub rehibernated: Vec<String>,
}

/// The error of an executor that does not support enforcement (permanent,
/// category [`category::UNSUPPORTED`]).
pub fn enforce_unsupported(executor_type: &str) -> ExecutorError {
    ExecutorError::permanent(
        category::UNSUPPORTED,
        format!(
            "executor {executor_type} does not support enforcement (re-hibernating resources that woke up)"
        ),
    )
}

/// Hibernates and wakes up the resources of one target type. Object safe:
/// executor sets hold `Arc<dyn Executor>`.
#[async_trait]
pub trait Executor: Send + Sync {
    /// The target `type` this executor handles (`ec2`, `file-replicas`, …).
    fn executor_type(&self) -> &str;

    /// The check of this executor's parameters (validation and schema).
    fn parameter_check(&self) -> Arc<dyn ParameterCheck>;

    /// Puts the target's resources to sleep and reports the awake state of
    /// each resource it found awake. `ctx.prior_record()` holds the record
    /// from earlier cycles.
    async fn shutdown(
        &self,
        ctx: &ExecutionContext,
        params: &serde_json::Value,
    ) -> Result<ShutdownOutcome, ExecutorError>;

    /// Restores the resources in `record` to exactly their recorded state.
    async fn wakeup(
        &self,
        ctx: &ExecutionContext,
        params: &serde_json::Value,
        record: &RestoreRecord,
    ) -> Result<WakeupOutcome, ExecutorError>;

    /// Whether [`enforce`](Self::enforce) is implemented. The controller
    /// schedules enforcement checks only for targets whose executor says so.
    fn supports_enforce(&self) -> bool {
        false
    }

    /// Drift re-enforcement while the plan is hibernated: checks the
    /// resources **in `record`** and puts every one found awake back to
    /// sleep, the way [`shutdown`](Self::shutdown) does. Must never touch a
    /// resource whose key is not in `record`, and must not record awake
    /// states: the record keeps the last known awake state of each resource
    /// (the caller never writes it). The default fails with
    /// [`enforce_unsupported`].
    async fn enforce(
        &self,
        ctx: &ExecutionContext,
        params: &serde_json::Value,
        record: &RestoreRecord,
    ) -> Result<EnforceOutcome, ExecutorError> {
        let _ = (ctx, params, record);
        Err(enforce_unsupported(self.executor_type()))
    }
}

/// An executor with typed parameters; wrap it with [`typed`] to get an
/// [`Executor`]. Parameters are parsed and validated before every call;
/// invalid parameters fail permanently with a message naming the field.
#[async_trait]
pub trait TypedExecutor: Send + Sync + 'static {
    /// The target `type` this executor handles.
    const TYPE: &'static str;
    /// The parameter type (camelCase serde, JSON schema, semantic checks).
    type Params: DeserializeOwned + JsonSchema + ValidateParameters + Send + Sync + 'static;

    /// See [`Executor::shutdown`].
    async fn shutdown(
        &self,
        ctx: &ExecutionContext,
        params: &Self::Params,
    ) -> Result<ShutdownOutcome, ExecutorError>;

    /// See [`Executor::wakeup`].
    async fn wakeup(
        &self,
        ctx: &ExecutionContext,
        params: &Self::Params,
        record: &RestoreRecord,
    ) -> Result<WakeupOutcome, ExecutorError>;

    /// Whether [`enforce`](Self::enforce) is implemented (see
    /// [`Executor::supports_enforce`]); set it to `true` when you implement
    /// `enforce`. A constant, so executor sets know it without building an
    /// executor.
    const SUPPORTS_ENFORCE: bool = false;

    /// See [`Executor::enforce`]. The default fails with [`enforce_unsupported`].
    async fn enforce(
        &self,
        ctx: &ExecutionContext,
        params: &Self::Params,
        record: &RestoreRecord,
    ) -> Result<EnforceOutcome, ExecutorError> {
        let _ = (ctx, params, record);
        Err(enforce_unsupported(Self::TYPE))
    }
}

/// Field path used in parameter errors raised at run time.
const PARAMS_FIELD: &str = "parameters";

/// Parses and validates typed parameters; the first error becomes a permanent
/// [`ExecutorError`] naming the field (`parameters.directory: …`).
pub fn parse_typed_parameters<P>(params: &serde_json::Value) -> Result<P, ExecutorError>
where
    P: DeserializeOwned + ValidateParameters,
{
    let params = (!params.is_null()).then_some(params);
    let parsed: P = parse_parameters(params, PARAMS_FIELD)
        .map_err(|d| ExecutorError::invalid_parameters(&d))?;
    let mut diagnostics = Diagnostics::new();
    parsed.validate(PARAMS_FIELD, &mut diagnostics);
    match diagnostics.errors.first() {
        Some(d) => Err(ExecutorError::invalid_parameters(d)),
        None => Ok(parsed),
    }
}

/// Adapts a [`TypedExecutor`] to [`Executor`].
#[derive(Debug)]
pub struct Typed<E>(pub E);

/// Wraps a [`TypedExecutor`] as an `Arc<dyn Executor>`.
pub fn typed<E: TypedExecutor>(executor: E) -> Arc<dyn Executor> {
    Arc::new(Typed(executor))
}

#[async_trait]
impl<E: TypedExecutor> Executor for Typed<E> {
    fn executor_type(&self) -> &str {
        E::TYPE
    }

    fn parameter_check(&self) -> Arc<dyn ParameterCheck> {
        Arc::new(TypedParameters::<E::Params>::new(E::TYPE))
    }

    async fn shutdown(
        &self,
        ctx: &ExecutionContext,
        params: &serde_json::Value,
    ) -> Result<ShutdownOutcome, ExecutorError> {
        let params: E::Params = parse_typed_parameters(params)?;
        self.0.shutdown(ctx, &params).await
    }

    async fn wakeup(
        &self,
        ctx: &ExecutionContext,
        params: &serde_json::Value,
        record: &RestoreRecord,
    ) -> Result<WakeupOutcome, ExecutorError> {
        let params: E::Params = parse_typed_parameters(params)?;
        self.0.wakeup(ctx, &params, record).await
    }

    fn supports_enforce(&self) -> bool {
        E::SUPPORTS_ENFORCE
    }

    async fn enforce(
        &self,
        ctx: &ExecutionContext,
        params: &serde_json::Value,
        record: &RestoreRecord,
    ) -> Result<EnforceOutcome, ExecutorError> {
        if !E::SUPPORTS_ENFORCE {
            return Err(enforce_unsupported(E::TYPE));
        }
        let params: E::Params = parse_typed_parameters(params)?;
        self.0.enforce(ctx, &params, record).await
    }
}

#[cfg(test)]
mod tests;
