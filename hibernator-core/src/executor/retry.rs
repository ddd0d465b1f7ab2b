//! Bounded exponential backoff with jitter for transient executor errors.

use std::future::Future;
use std::time::Duration;

use rand::Rng;
use tokio_util::sync::CancellationToken;

use super::error::ExecutorError;

/// How a backoff delay is randomized.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Jitter {
    /// Exactly the exponential delay (deterministic; for tests and tools).
    None,
    /// Uniform in `[0, delay]`: spreads retries of many clients the most.
    Full,
    /// Uniform in `[delay/2, delay]`: never retries too early.
    #[default]
    Equal,
}

/// Retry policy: up to `max_retries` retries of transient errors, waiting
/// `base_delay * 2^attempt` (at most `max_delay`) randomized by `jitter`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0: try once).
    pub max_retries: u32,
    /// Delay before the first retry (before jitter).
    pub base_delay: Duration,
    /// Upper bound of any delay.
    pub max_delay: Duration,
    /// Randomization of delays.
    pub jitter: Jitter,
}

impl Default for RetryPolicy {
    /// [`crate::types::DEFAULT_RETRIES`] retries, 2 s base, 60 s cap, equal jitter.
    fn default() -> Self {
        Self {
            max_retries: crate::types::DEFAULT_RETRIES,
            base_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(60),
            jitter: Jitter::Equal,
        }
    }
}

impl RetryPolicy {
    /// The default policy with `max_retries` retries (e.g. a plan's `behavior.retries`).
    pub fn with_max_retries(max_retries: u32) -> Self {
        Self {
            max_retries,
            ..Self::default()
        }
    }

    /// Try once, never retry.
    pub fn no_retry() -> Self {
        Self::with_max_retries(0)
    }

    /// The delay before the retry that follows failed attempt `attempt`
    /// (0-based) without jitter: `base_delay * 2^attempt`, at most `max_delay`.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt).unwrap_or(u32::MAX);
        self.base_delay
            .checked_mul(factor)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }

    /// The jittered delay before the retry that follows failed attempt
    /// `attempt` (0-based); always at most [`ceiling`](Self::ceiling).
    pub fn delay_for(&self, attempt: u32) -> Duration {
        let ceiling = self.ceiling(attempt);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        let mut rng = rand::rng();
        match self.jitter {
            Jitter::None => ceiling,
            Jitter::Full => Duration::from_nanos(rng.random_range(0..=nanos)),
            Jitter::Equal => {
                let half = nanos / 2;
                Duration::from_nanos(half + rng.random_range(0..=nanos - half))
            }
        }
    }

    /// Whether to retry after failed attempt `attempt` (0-based): only
    /// transient errors, and only `max_retries` times.
    pub fn should_retry(&self, error: &ExecutorError, attempt: u32) -> bool {
        error.is_transient() && attempt < self.max_retries
    }
}

/// Runs `op` (given the 0-based attempt number) until it succeeds, fails
/// permanently, or the policy's retries are used up; returns the last error.
/// Sleeps between attempts with `tokio::time` and stops with
/// [`ExecutorError::cancelled`] as soon as `cancel` fires (before an attempt
/// or while waiting). A running attempt is never dropped: executors observe
/// cancellation cooperatively through their context.
pub async fn retry<F, Fut, T>(
    policy: &RetryPolicy,
    cancel: &CancellationToken,
    mut op: F,
) -> Result<T, ExecutorError>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, ExecutorError>>,
{
    let mut attempt = 0;
    loop {
        if cancel.is_cancelled() {
            return Err(ExecutorError::cancelled());
        }
        let error = match op(attempt).await {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        if !policy.should_retry(&error, attempt) {
            return Err(error);
        }
        let delay = policy.delay_for(attempt);
        tracing::debug!(attempt, ?delay, error = %error, "transient error, retrying");
        tokio::select! {
            () = cancel.cancelled() => {
                let mut cancelled = ExecutorError::cancelled();
                cancelled.message = format!("operation cancelled while waiting to retry after: {error}");
                return Err(cancelled);
            }
            () = tokio::time::sleep(delay) => {}
        }
        attempt += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::executor::error::category;
    use std::sync::Mutex;
    use tokio::time::Instant;

    fn policy(jitter: Jitter) -> RetryPolicy {
        RetryPolicy {
            max_retries: 4,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(5),
            jitter,
        }
    }

    #[test]
    fn ceilings_grow_and_are_capped() {
        let p = policy(Jitter::None);
        let c: Vec<_> = (0..5).map(|a| p.ceiling(a).as_secs()).collect();
        assert_eq!(c, [1, 2, 4, 5, 5]);
        assert_eq!(p.ceiling(200), Duration::from_secs(5));
        assert_eq!(p.delay_for(2), Duration::from_secs(4));
    }

    #[test]
    fn jittered_delays_stay_in_bounds() {
        for attempt in 0..8 {
            let full = policy(Jitter::Full);
            let equal = policy(Jitter::Equal);
            for _ in 0..200 {
                assert!(full.delay_for(attempt) <= full.ceiling(attempt));
                let d = equal.delay_for(attempt);
                assert!(d <= equal.ceiling(attempt), "{d:?}");
                assert!(d >= equal.ceiling(attempt) / 2, "{d:?}");
            }
        }
    }

    #[test]
    fn only_transient_errors_are_retried_and_only_so_often() {
        let p = policy(Jitter::Equal);
        let t = ExecutorError::transient(category::THROTTLED, "slow down");
        let perm = ExecutorError::permanent(category::AUTH, "denied");
        assert!(p.should_retry(&t, 0));
        assert!(p.should_retry(&t, 3));
        assert!(!p.should_retry(&t, 4));
        assert!(!p.should_retry(&perm, 0));
        assert!(!RetryPolicy::no_retry().should_retry(&t, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn retries_with_growing_delays_then_succeeds() {
        let p = policy(Jitter::Equal);
        let starts = Mutex::new(Vec::new());
        let result = retry(&p, &CancellationToken::new(), |attempt| {
            starts.lock().unwrap().push(Instant::now());
            async move {
                if attempt < 3 {
                    Err(ExecutorError::transient(category::THROTTLED, "slow down"))
                } else {
                    Ok(attempt)
                }
            }
        })
        .await;
        assert_eq!(result.unwrap(), 3);
        let starts = starts.into_inner().unwrap();
        assert_eq!(starts.len(), 4);
        for (i, pair) in starts.windows(2).enumerate() {
            let gap = pair[1] - pair[0];
            let ceiling = p.ceiling(u32::try_from(i).unwrap());
            assert!(
                gap >= ceiling / 2 && gap <= ceiling,
                "gap {i}: {gap:?} vs {ceiling:?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn unjittered_delays_double() {
        let p = policy(Jitter::None);
        let starts = Mutex::new(Vec::new());
        let _ = retry(&p, &CancellationToken::new(), |_| {
            starts.lock().unwrap().push(Instant::now());
            async { Err::<(), _>(ExecutorError::transient(category::UNAVAILABLE, "503")) }
        })
        .await;
        let starts = starts.into_inner().unwrap();
        let gaps: Vec<_> = starts.windows(2).map(|w| (w[1] - w[0]).as_secs()).collect();
        assert_eq!(gaps, [1, 2, 4, 5]);
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_after_max_retries_with_last_error() {
        let calls = Mutex::new(0);
        let err = retry(&policy(Jitter::Full), &CancellationToken::new(), |a| {
            *calls.lock().unwrap() += 1;
            async move {
                Err::<(), _>(ExecutorError::transient(
                    category::UNAVAILABLE,
                    format!("try {a}"),
                ))
            }
        })
        .await
        .unwrap_err();
        assert_eq!(*calls.lock().unwrap(), 5);
        assert_eq!(err.message, "try 4");
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_errors_are_not_retried() {
        let calls = Mutex::new(0);
        let err = retry(&policy(Jitter::Full), &CancellationToken::new(), |_| {
            *calls.lock().unwrap() += 1;
            async { Err::<(), _>(ExecutorError::permanent(category::AUTH, "denied")) }
        })
        .await
        .unwrap_err();
        assert_eq!(*calls.lock().unwrap(), 1);
        assert_eq!(err.category, category::AUTH);
    }

    #[tokio::test(start_paused = true)]
    async fn cancellation_stops_waiting() {
        let token = CancellationToken::new();
        let canceller = token.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            canceller.cancel();
        });
        let calls = Mutex::new(0);
        let p = RetryPolicy {
            base_delay: Duration::from_secs(3600),
            max_delay: Duration::from_secs(3600),
            ..policy(Jitter::None)
        };
        let started = Instant::now();
        let err = retry(&p, &token, |_| {
            *calls.lock().unwrap() += 1;
            async { Err::<(), _>(ExecutorError::transient(category::UNAVAILABLE, "503")) }
        })
        .await
        .unwrap_err();
        assert_eq!(err.category, category::CANCELLED);
        assert!(err.message.contains("503"), "{err}");
        assert_eq!(*calls.lock().unwrap(), 1);
        assert!(Instant::now() - started < Duration::from_secs(3600));
        // Already cancelled: no attempt at all.
        let again = retry(&p, &token, |_| async { Ok::<_, ExecutorError>(()) }).await;
        assert_eq!(again.unwrap_err().category, category::CANCELLED);
    }
}
