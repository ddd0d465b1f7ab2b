//! Bounded waits for executors: poll until the cloud or cluster reports the
//! target state, fail with a timeout that names what is still behind.
//!
//! [`wait_until`] polls one condition. [`wait_for_all`] polls a round that
//! reports the resources still not there (the *laggards*) and returns the
//! laggards of the last round when time runs out, so an executor can fail
//! exactly those (a wake-up's `WakeupOutcome::failed`) or name them in one
//! error ([`describe_laggards`]). Both stop at once when the context is
//! cancelled, and neither ever turns a timeout into a silent success.
//!
//! ```
//! use std::collections::BTreeMap;
//! use std::time::Duration;
//! use hibernator_core::executor::{ExecutionContext, wait_for_all};
//! use hibernator_core::types::Operation;
//!
//! # tokio_test_block_on(async {
//! let ctx = ExecutionContext::builder("plan", "target", "cycle-1", Operation::Wakeup).build();
//! let mut polls = 0;
//! let laggards = wait_for_all(&ctx, "waiting for web to be ready", Duration::from_secs(60),
//!     Duration::from_millis(1), || {
//!         polls += 1;
//!         let behind = if polls < 3 {
//!             BTreeMap::from([("apps/Deployment/dev/web".to_string(), "1 of 2 ready".to_string())])
//!         } else {
//!             BTreeMap::new()
//!         };
//!         async move { Ok(behind) }
//!     }).await.unwrap();
//! assert!(laggards.is_empty());
//! # });
//! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
//! # }
//! ```

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use super::context::ExecutionContext;
use super::error::{ExecutorError, category};

/// Resources still not in their target state: resource (key or name) → what
/// was last seen of it (`"1 of 3 ready"`, `"stopping"`).
pub type Laggards = BTreeMap<String, String>;

/// Polls `check` until it returns `true`, at most for `timeout`, sleeping
/// `interval` between polls.
///
/// A wait that runs out of time is a failure ([`ExecutorError::timeout`],
/// naming `what`), never a silent success. Cancellation of the context stops
/// the wait at once ([`ExecutorError::cancelled`]). An error of `check` ends
/// the wait with that error.
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

/// Polls `round` until it reports no laggards, at most for `timeout`.
///
/// Each call of `round` checks every resource still of interest and returns
/// those not yet in their target state with what was seen of them. Returns
/// an empty map once a round reports none, and the laggards of the last
/// round when `timeout` runs out: the caller decides whether that fails the
/// whole operation (shutdown: [`laggards_timeout`]) or only those resources
/// (wake-up: one `WakeupOutcome::failed` entry each). Cancellation and errors
/// of `round` end the wait with that error.
pub async fn wait_for_all<F, Fut>(
    ctx: &ExecutionContext,
    what: &str,
    timeout: Duration,
    interval: Duration,
    mut round: F,
) -> Result<Laggards, ExecutorError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Laggards, ExecutorError>>,
{
    // A Mutex, not a RefCell: executors' futures must stay `Send`.
    let last = Mutex::new(Laggards::new());
    let result = wait_until(ctx, what, timeout, interval, || {
        let next = round();
        let last = &last;
        async move {
            let behind = next.await?;
            let done = behind.is_empty();
            *last.lock().unwrap_or_else(PoisonError::into_inner) = behind;
            Ok(done)
        }
    })
    .await;
    let last = last.into_inner().unwrap_or_else(PoisonError::into_inner);
    match result {
        Ok(()) => Ok(Laggards::new()),
        Err(e) if e.category == category::TIMEOUT && !last.is_empty() => Ok(last),
        Err(e) => Err(e),
    }
}

/// `a (seen), b (seen)`: the laggards for a message.
pub fn describe_laggards(laggards: &Laggards) -> String {
    laggards
        .iter()
        .map(|(name, seen)| format!("{name} ({seen})"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The timeout error of a wait that left `laggards` behind: names every
/// laggard with what was seen, and carries the resource when there is just
/// one (`resource_key` maps a laggard's name to its restore-entry key).
pub fn laggards_timeout(
    what: &str,
    laggards: &Laggards,
    after: Duration,
    resource_key: impl Fn(&str) -> String,
) -> ExecutorError {
    let error = ExecutorError::timeout(
        &format!("{what} (still not there: {})", describe_laggards(laggards)),
        after,
    );
    match laggards.keys().collect::<Vec<_>>().as_slice() {
        [only] => error.with_resource(resource_key(only)),
        _ => error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::executor::ErrorClass;
    use crate::types::Operation;

    fn ctx() -> ExecutionContext {
        ExecutionContext::builder("p", "t", "c", Operation::Shutdown).build()
    }

    fn behind(names: &[&str]) -> Laggards {
        names
            .iter()
            .map(|n| (n.to_string(), "not yet".to_string()))
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn wait_until_succeeds_once_the_check_holds() {
        let mut polls = 0;
        let result = wait_until(
            &ctx(),
            "x",
            Duration::from_secs(60),
            Duration::from_secs(5),
            || {
                polls += 1;
                let done = polls == 3;
                async move { Ok(done) }
            },
        )
        .await;
        assert!(result.is_ok());
        assert_eq!(polls, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn wait_until_times_out_naming_the_wait() {
        let error = wait_until(
            &ctx(),
            "waiting for db-1",
            Duration::from_secs(30),
            Duration::from_secs(10),
            || async { Ok(false) },
        )
        .await
        .unwrap_err();
        assert_eq!(error.category, category::TIMEOUT);
        assert!(error.message.contains("waiting for db-1"), "{error}");
    }

    #[tokio::test(start_paused = true)]
    async fn cancellation_stops_a_wait_at_once() {
        let ctx = ctx();
        let token = ctx.cancellation().clone();
        let started = tokio::time::Instant::now();
        let waiting = wait_until(
            &ctx,
            "x",
            Duration::from_secs(3600),
            Duration::from_secs(600),
            || async { Ok(false) },
        );
        let cancel = async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            token.cancel();
        };
        let (result, ()) = tokio::join!(waiting, cancel);
        assert_eq!(result.unwrap_err().category, category::CANCELLED);
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn wait_for_all_returns_nothing_when_everyone_arrives() {
        let mut rounds = vec![behind(&["a", "b"]), behind(&["b"]), behind(&[])].into_iter();
        let laggards = wait_for_all(
            &ctx(),
            "x",
            Duration::from_secs(60),
            Duration::from_secs(1),
            || {
                let next = rounds.next().unwrap_or_default();
                async move { Ok(next) }
            },
        )
        .await
        .unwrap();
        assert!(laggards.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn wait_for_all_reports_the_last_rounds_laggards_on_timeout() {
        let mut round = 0;
        let laggards = wait_for_all(
            &ctx(),
            "x",
            Duration::from_secs(10),
            Duration::from_secs(3),
            || {
                round += 1;
                let next = if round == 1 {
                    behind(&["a", "b"])
                } else {
                    behind(&["b"])
                };
                async move { Ok(next) }
            },
        )
        .await
        .unwrap();
        assert_eq!(laggards, behind(&["b"]));
    }

    #[tokio::test(start_paused = true)]
    async fn wait_for_all_passes_errors_on() {
        let error = wait_for_all(
            &ctx(),
            "x",
            Duration::from_secs(10),
            Duration::from_secs(1),
            || async {
                Err::<Laggards, _>(ExecutorError::transient(category::THROTTLED, "slow down"))
            },
        )
        .await
        .unwrap_err();
        assert_eq!(error.class, ErrorClass::Transient);
    }

    #[test]
    fn laggard_errors_name_everyone_and_carry_a_single_resource() {
        let mut laggards = behind(&["web"]);
        let error = laggards_timeout("waiting", &laggards, Duration::from_secs(60), |n| {
            format!("deployment/{n}")
        });
        assert_eq!(error.category, category::TIMEOUT);
        assert!(error.message.contains("web (not yet)"), "{error}");
        assert_eq!(error.resource.as_deref(), Some("deployment/web"));
        laggards.insert("api".into(), "0 of 1 ready".into());
        let error = laggards_timeout("waiting", &laggards, Duration::from_secs(60), |n| {
            n.to_string()
        });
        assert!(
            error.message.contains("api (0 of 1 ready), web (not yet)"),
            "{error}"
        );
        assert_eq!(error.resource, None);
    }
}
