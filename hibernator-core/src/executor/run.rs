//! The shared run functions both shells (operator runner, `hibernator run`) use.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Executor;
use super::context::ExecutionContext;
use super::error::{ExecutorError, category};
use super::retry::{RetryPolicy, retry};
use crate::restore::{RestoreStore, update_record};
use crate::types::Operation;

/// How long an executor may take to stop after its deadline passed and its
/// context was cancelled, before its call is abandoned.
pub const CANCEL_GRACE: Duration = Duration::from_secs(30);

/// Summary of one target's operation.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct TargetReport {
    /// Target name.
    pub target: String,
    /// Executor type.
    pub executor: String,
    /// The operation that ran.
    pub operation: Operation,
    /// Executor calls made (1 + retries).
    pub attempts: u32,
    /// Shutdown: resources touched; wake-up: resources restored.
    pub resources: Vec<String>,
    /// Shutdown: restore entries added or replaced in this run.
    pub recorded: Vec<String>,
    /// Restore entries still waiting for a wake-up after this run.
    pub pending_entries: usize,
}

fn check_operation(ctx: &ExecutionContext, expected: Operation) -> Result<(), ExecutorError> {
    if ctx.operation() == expected {
        return Ok(());
    }
    Err(ExecutorError::permanent(
        category::INTERNAL,
        format!(
            "run_{expected} called with a context for {} of target {}",
            ctx.operation(),
            ctx.target()
        ),
    ))
}

/// Runs `fut` until the context's deadline; then cancels `token` and gives the
/// executor [`CANCEL_GRACE`] to stop. A result that still arrives in the grace
/// period is used when it is a success (its restore data must not be lost).
async fn within_deadline<T>(
    ctx: &ExecutionContext,
    token: &CancellationToken,
    fut: impl Future<Output = Result<T, ExecutorError>>,
) -> Result<T, ExecutorError> {
    let (Some(deadline), Some(timeout)) = (ctx.deadline(), ctx.timeout()) else {
        return fut.await;
    };
    tokio::pin!(fut);
    tokio::select! {
        result = &mut fut => result,
        () = tokio::time::sleep_until(deadline) => {
            token.cancel();
            let what = format!("{} of target {}", ctx.operation(), ctx.target());
            match tokio::time::timeout(CANCEL_GRACE, &mut fut).await {
                Ok(Ok(value)) => Ok(value),
                Ok(Err(_)) | Err(_) => Err(ExecutorError::timeout(&what, timeout)),
            }
        }
    }
}

/// Hibernates one target.
///
/// 1. loads the target's record from `store` and hands it to the executor as
///    [`ExecutionContext::prior_record`];
/// 2. calls [`Executor::shutdown`], retrying transient errors with `policy`,
///    bounded by the context's deadline and cancellation;
/// 3. merges the observed awake states (those returned and those recorded
///    with [`ExecutionContext::record_awake_state`]) into the record with
///    [`RestoreRecord::merge_shutdown`](crate::restore::RestoreRecord::merge_shutdown)
///    through the conflict-safe [`update_record`]. A successful shutdown
///    always leaves a record (possibly empty), and its restore data is
///    persisted before this function returns. When the shutdown fails, the
///    states recorded so far are still saved, then the error is returned.
pub async fn run_shutdown(
    executor: &dyn Executor,
    ctx: &ExecutionContext,
    params: &serde_json::Value,
    store: &dyn RestoreStore,
    policy: &RetryPolicy,
) -> Result<TargetReport, ExecutorError> {
    check_operation(ctx, Operation::Shutdown)?;
    let target = ctx.target();
    let prior = store.load(target).await?.map(|v| v.value);
    let token = ctx.cancellation().child_token();
    let run_ctx = ctx.for_run(prior, token.clone());
    let attempts = AtomicU32::new(0);
    let result = within_deadline(
        &run_ctx,
        &token,
        retry(policy, &token, |_| {
            attempts.fetch_add(1, Ordering::Relaxed);
            executor.shutdown(&run_ctx, params)
        }),
    )
    .await;

    let mut observations = run_ctx.recorded_awake_states();
    if let Ok(outcome) = &result {
        for (key, state) in &outcome.observations {
            observations
                .entry(key.clone())
                .or_insert_with(|| state.clone());
        }
    }
    let result = match result {
        Err(error) if observations.is_empty() => return Err(error),
        result => result,
    };
    let mut recorded = Vec::new();
    let saved = update_record(store, target, executor.executor_type(), |record| {
        recorded = record.merge_shutdown(ctx.cycle_id(), observations.clone());
    })
    .await;
    let (outcome, saved) = match (result, saved) {
        (Ok(outcome), Ok(saved)) => (outcome, saved),
        (Ok(_), Err(store_error)) => return Err(store_error.into()),
        (Err(error), Ok(_)) => return Err(error),
        (Err(error), Err(store_error)) => {
            let mut e = ExecutorError::from(store_error);
            e.message = format!("{}; the shutdown had failed as well: {error}", e.message);
            return Err(e);
        }
    };
    ctx.info(&format!(
        "shutdown done: {} resources, {} restore entries recorded",
        outcome.resources.len(),
        recorded.len()
    ));
    Ok(TargetReport {
        target: target.to_string(),
        executor: executor.executor_type().to_string(),
        operation: Operation::Shutdown,
        attempts: attempts.load(Ordering::Relaxed),
        resources: outcome.resources,
        recorded,
        pending_entries: saved.value.entries.len(),
    })
}

/// Wakes one target up.
///
/// 1. loads the target's record; **no record** fails with
///    [`ExecutorError::missing_restore_data`] (permanent) without calling the
///    executor: waking up with guessed sizes could be worse than sleeping;
/// 2. calls [`Executor::wakeup`] with the record, retrying transient errors
///    with `policy` within the context's deadline and cancellation;
/// 3. clears the entries of restored resources with
///    [`RestoreRecord::mark_restored`](crate::restore::RestoreRecord::mark_restored)
///    and saves the record, also when some resources failed;
/// 4. an entry the executor reported neither restored nor failed counts as
///    failed;
/// 5. when resources failed, their entries stay and the attempt fails with a
///    transient `partial_restore` error listing them; a retry (by `policy` or a
///    later cycle) gets a record holding only the remaining entries.
///
/// When every entry was restored the record is left empty (not deleted), so a
/// repeated wake-up is a no-op instead of a missing-restore-data error.
pub async fn run_wakeup(
    executor: &dyn Executor,
    ctx: &ExecutionContext,
    params: &serde_json::Value,
    store: &dyn RestoreStore,
    policy: &RetryPolicy,
) -> Result<TargetReport, ExecutorError> {
    check_operation(ctx, Operation::Wakeup)?;
    let target = ctx.target();
    let Some(initial) = store.load(target).await? else {
        return Err(ExecutorError::missing_restore_data(target));
    };
    let initial = initial.value;
    let token = ctx.cancellation().child_token();
    let run_ctx = ctx.for_run(None, token.clone());
    let attempts = AtomicU32::new(0);
    let restored = Mutex::new(Vec::<String>::new());
    let pending = AtomicU32::new(u32::try_from(initial.entries.len()).unwrap_or(u32::MAX));

    let result = within_deadline(
        &run_ctx,
        &token,
        retry(policy, &token, |attempt| {
            attempts.fetch_add(1, Ordering::Relaxed);
            let (run_ctx, initial, restored, pending) = (&run_ctx, &initial, &restored, &pending);
            async move {
                let record = if attempt == 0 {
                    initial.clone()
                } else {
                    match store.load(target).await? {
                        Some(v) => v.value,
                        None => return Err(ExecutorError::missing_restore_data(target)),
                    }
                };
                let mut outcome = executor.wakeup(run_ctx, params, &record).await?;
                for key in record.entries.keys() {
                    if !outcome.restored.contains(key) && !outcome.failed.contains_key(key) {
                        outcome.failed.insert(
                            key.clone(),
                            "the executor reported neither success nor failure for it".to_string(),
                        );
                    }
                }
                if !outcome.restored.is_empty() {
                    let saved = update_record(store, target, executor.executor_type(), |r| {
                        r.mark_restored(outcome.restored.iter().map(String::as_str));
                    })
                    .await?;
                    pending.store(
                        u32::try_from(saved.value.entries.len()).unwrap_or(u32::MAX),
                        Ordering::Relaxed,
                    );
                    restored
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .extend(outcome.restored.iter().cloned());
                }
                if outcome.failed.is_empty() {
                    Ok(())
                } else {
                    Err(partial_restore(&outcome.failed, record.entries.len()))
                }
            }
        }),
    )
    .await;
    result?;
    let restored = restored
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner);
    ctx.info(&format!(
        "wake-up done: {} resources restored",
        restored.len()
    ));
    Ok(TargetReport {
        target: target.to_string(),
        executor: executor.executor_type().to_string(),
        operation: Operation::Wakeup,
        attempts: attempts.load(Ordering::Relaxed),
        resources: restored,
        recorded: Vec::new(),
        pending_entries: pending.load(Ordering::Relaxed) as usize,
    })
}

fn partial_restore(failed: &BTreeMap<String, String>, total: usize) -> ExecutorError {
    let list = failed
        .iter()
        .map(|(key, message)| format!("{key}: {message}"))
        .collect::<Vec<_>>()
        .join("; ");
    let mut error = ExecutorError::transient(
        category::PARTIAL_RESTORE,
        format!(
            "{} of {total} resources failed to wake up ({list}); their restore data is kept for the next attempt",
            failed.len()
        ),
    );
    if let (1, Some(key)) = (failed.len(), failed.keys().next()) {
        error.resource = Some(key.clone());
    }
    error
}

/// Summary of one target's enforcement check (see [`run_enforce`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct EnforceReport {
    /// Target name.
    pub target: String,
    /// Executor type.
    pub executor: String,
    /// Executor calls made (1 + retries; 0 when there was nothing to check).
    pub attempts: u32,
    /// Keys of the recorded resources checked.
    pub checked: Vec<String>,
    /// Keys of the recorded resources found awake and put back to sleep.
    pub rehibernated: Vec<String>,
}

/// Drift re-enforcement of one hibernated target.
///
/// 1. fails with a permanent `unsupported` error, without calling it, when
///    the executor does not [support enforcement](Executor::supports_enforce);
/// 2. loads the target's record; no record or an empty one means there is
///    nothing this plan put to sleep: nothing is checked or touched;
/// 3. calls [`Executor::enforce`] with the record, retrying transient errors
///    with `policy` within the context's deadline and cancellation;
/// 4. fails (permanently) when the executor reports a key that is not in the
///    record: enforcement must never act on resources the plan did not
///    hibernate.
///
/// The record is **never written**: its entries keep the last known awake
/// state of every resource, which the next wake-up restores.
pub async fn run_enforce(
    executor: &dyn Executor,
    ctx: &ExecutionContext,
    params: &serde_json::Value,
    store: &dyn RestoreStore,
    policy: &RetryPolicy,
) -> Result<EnforceReport, ExecutorError> {
    let target = ctx.target();
    let mut report = EnforceReport {
        target: target.to_string(),
        executor: executor.executor_type().to_string(),
        ..EnforceReport::default()
    };
    if !executor.supports_enforce() {
        return Err(super::enforce_unsupported(executor.executor_type()));
    }
    let record = match store.load(target).await? {
        Some(versioned) if !versioned.value.is_empty() => versioned.value,
        _ => {
            ctx.info("enforcement: no restore entries, nothing to check");
            return Ok(report);
        }
    };
    let token = ctx.cancellation().child_token();
    let run_ctx = ctx.for_run(None, token.clone());
    let attempts = AtomicU32::new(0);
    let outcome = within_deadline(
        &run_ctx,
        &token,
        retry(policy, &token, |_| {
            attempts.fetch_add(1, Ordering::Relaxed);
            executor.enforce(&run_ctx, params, &record)
        }),
    )
    .await?;
    let foreign: Vec<&String> = outcome
        .checked
        .iter()
        .chain(&outcome.rehibernated)
        .filter(|key| !record.entries.contains_key(key.as_str()))
        .collect();
    if let Some(first) = foreign.first() {
        return Err(ExecutorError::permanent(
            category::INTERNAL,
            format!(
                "executor {} reported {} resources during enforcement that are not in the restore record of target {target} (first: {first}); enforcement must only act on recorded resources",
                executor.executor_type(),
                foreign.len()
            ),
        )
        .with_resource((*first).clone()));
    }
    ctx.info(&format!(
        "enforcement done: {} resources checked, {} found awake and put back to sleep",
        outcome.checked.len(),
        outcome.rehibernated.len()
    ));
    report.attempts = attempts.load(Ordering::Relaxed);
    report.checked = outcome.checked;
    report.rehibernated = outcome.rehibernated;
    Ok(report)
}
