//! Bounded polling for long-running AWS operations.

use std::future::Future;
use std::time::Duration;

use hibernator_core::executor::{ExecutionContext, ExecutorError};

/// How often to poll while waiting for AWS to finish an operation.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(10);

/// Polls `check` until it returns `true`, at most for `timeout`.
///
/// A wait that runs out of time is a failure ([`ExecutorError::timeout`],
/// naming `what`), never a silent success. Cancellation of the context stops
/// the wait at once. `check` errors end the wait with that error.
pub async fn wait_until<F, Fut>(
    ctx: &ExecutionContext,
    what: &str,
    timeout: Duration,
    interval: Duration,
    mut check: F,
) -> Result<(), ExecutorError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool, ExecutorError>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        ctx.check_cancelled()?;
        if check().await? {
            return Ok(());
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Err(ExecutorError::timeout(what, timeout));
        }
        let nap = interval.min(deadline - now);
        tokio::select! {
            () = tokio::time::sleep(nap) => {}
            () = ctx.cancellation().cancelled() => return Err(ExecutorError::cancelled()),
        }
    }
}
