//! The controller's Kubernetes API clients: a client-side token bucket
//! (`--kube-qps`, `--kube-burst`) in front of every request of the
//! reconciler, the watches and the streaming server; a second one
//! (`--kube-event-qps`, `--kube-event-burst`) for Events, which are
//! published in the background and must not take the reconciles' budget;
//! and an unlimited client for leader election so a queue of requests never
//! delays a Lease renewal.
//!
//! Server pushback is handled one layer further in: kube's default client
//! retries `429`, `503` and `504` with exponential backoff and honours a
//! `Retry-After` header (`kube::client::retry::RetryPolicy::server_retry`),
//! so a retried request does not take another token.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

/// Default sustained request rate (requests per second).
pub const DEFAULT_QPS: f64 = 50.0;
/// Default burst (requests allowed at once above the sustained rate).
pub const DEFAULT_BURST: u32 = 100;

/// Default sustained rate of Event writes (requests per second).
pub const DEFAULT_EVENT_QPS: f64 = 20.0;
/// Default burst of Event writes.
pub const DEFAULT_EVENT_BURST: u32 = 50;

/// Client-side rate limit of the controller's API requests.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KubeRateLimit {
    /// Sustained requests per second; `0` disables the limit.
    pub qps: f64,
    /// Requests that may go out at once after an idle period (bucket size).
    pub burst: u32,
}

impl Default for KubeRateLimit {
    fn default() -> Self {
        Self {
            qps: DEFAULT_QPS,
            burst: DEFAULT_BURST,
        }
    }
}

impl KubeRateLimit {
    /// The default budget of the Event client ([`DEFAULT_EVENT_QPS`],
    /// [`DEFAULT_EVENT_BURST`]).
    pub fn events() -> Self {
        Self {
            qps: DEFAULT_EVENT_QPS,
            burst: DEFAULT_EVENT_BURST,
        }
    }

    /// Whether requests are limited at all.
    pub fn enabled(&self) -> bool {
        self.qps > 0.0
    }
}

/// The clients `hibernator controller` uses.
#[derive(Clone)]
pub struct ControllerClients {
    /// Reconciler, watches, streaming server: rate limited.
    pub api: kube::Client,
    /// Events: rate limited by a bucket of their own.
    pub events: kube::Client,
    /// Leader election only: not limited (a few requests per renew period).
    pub lease: kube::Client,
}

impl std::fmt::Debug for ControllerClients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControllerClients").finish_non_exhaustive()
    }
}

impl ControllerClients {
    /// The three clients from one configuration: `limit` for the API
    /// client, `events` for the Event client.
    pub fn new(
        config: kube::Config,
        limit: KubeRateLimit,
        events: KubeRateLimit,
    ) -> Result<Self, kube::Error> {
        let lease = kube::Client::try_from(config.clone())?;
        Ok(Self {
            api: limited(config.clone(), limit)?,
            events: limited(config, events)?,
            lease,
        })
    }

    /// One client for all (tests, embedders with their own client).
    pub fn single(client: kube::Client) -> Self {
        Self {
            api: client.clone(),
            events: client.clone(),
            lease: client,
        }
    }
}

/// A client whose requests take tokens of a bucket of its own.
fn limited(config: kube::Config, limit: KubeRateLimit) -> Result<kube::Client, kube::Error> {
    let builder = kube::client::ClientBuilder::try_from(config)?;
    Ok(if limit.enabled() {
        builder.with_layer(&RateLimitLayer::new(limit)).build()
    } else {
        builder.build()
    })
}

/// A token bucket: `burst` tokens, refilled at `qps` per second.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    capacity: f64,
    qps: f64,
    refilled: Instant,
}

impl Bucket {
    fn new(limit: KubeRateLimit) -> Self {
        let capacity = f64::from(limit.burst.max(1));
        Self {
            tokens: capacity,
            capacity,
            qps: limit.qps,
            refilled: Instant::now(),
        }
    }

    /// Takes a token, or says how long until one is there.
    fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.qps).min(self.capacity);
        self.refilled = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / self.qps))
        }
    }
}

/// A tower layer that makes every request wait for a token of a shared
/// [`KubeRateLimit`] bucket (in `poll_ready`, so callers queue in order).
#[derive(Clone, Debug)]
pub struct RateLimitLayer {
    bucket: Arc<Mutex<Bucket>>,
}

impl RateLimitLayer {
    /// A layer with a full bucket.
    pub fn new(limit: KubeRateLimit) -> Self {
        Self {
            bucket: Arc::new(Mutex::new(Bucket::new(limit))),
        }
    }
}

impl<S> tower::Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimit {
            inner,
            bucket: self.bucket.clone(),
            wait: None,
            permit: false,
        }
    }
}

/// The service of [`RateLimitLayer`].
#[derive(Debug)]
pub struct RateLimit<S> {
    inner: S,
    bucket: Arc<Mutex<Bucket>>,
    wait: Option<Pin<Box<Sleep>>>,
    permit: bool,
}

impl<S: Clone> Clone for RateLimit<S> {
    fn clone(&self) -> Self {
        // a clone shares the bucket, not this instance's token
        Self {
            inner: self.inner.clone(),
            bucket: self.bucket.clone(),
            wait: None,
            permit: false,
        }
    }
}

impl<S, R> tower::Service<R> for RateLimit<S>
where
    S: tower::Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        while !self.permit {
            if let Some(wait) = self.wait.as_mut() {
                if wait.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                self.wait = None;
            }
            let taken = self
                .bucket
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take(Instant::now());
            match taken {
                Ok(()) => self.permit = true,
                Err(delay) => self.wait = Some(Box::pin(tokio::time::sleep(delay))),
            }
        }
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        self.permit = false;
        self.inner.call(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::{Layer, Service, ServiceExt};

    type Echo = fn(u32) -> std::future::Ready<Result<u32, std::convert::Infallible>>;

    fn echo() -> tower::util::ServiceFn<Echo> {
        tower::service_fn((|n| std::future::ready(Ok(n))) as Echo)
    }

    /// Sends one request; returns when it went out.
    async fn send<S>(service: &mut S) -> Instant
    where
        S: Service<u32, Response = u32, Error = std::convert::Infallible>,
    {
        let ready = service.ready().await.unwrap();
        ready.call(1).await.unwrap();
        Instant::now()
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_goes_at_once_then_the_rate_holds() {
        let layer = RateLimitLayer::new(KubeRateLimit {
            qps: 10.0,
            burst: 3,
        });
        let mut service = layer.layer(echo());
        let start = Instant::now();
        let mut sent = Vec::new();
        for _ in 0..7 {
            sent.push(send(&mut service).await - start);
        }
        let ms: Vec<u128> = sent.iter().map(Duration::as_millis).collect();
        // three from the bucket, then one every 100 ms
        assert_eq!(ms, vec![0, 0, 0, 100, 200, 300, 400]);
        // idle: the bucket fills up again, to at most `burst`
        tokio::time::sleep(Duration::from_secs(5)).await;
        let again = Instant::now();
        let mut after = Vec::new();
        for _ in 0..4 {
            after.push((send(&mut service).await - again).as_millis());
        }
        assert_eq!(after, vec![0, 0, 0, 100]);
    }

    #[tokio::test(start_paused = true)]
    async fn clones_share_one_bucket() {
        let layer = RateLimitLayer::new(KubeRateLimit { qps: 1.0, burst: 1 });
        let mut a = layer.layer(echo());
        let mut b = a.clone();
        let start = Instant::now();
        send(&mut a).await;
        let second = send(&mut b).await - start;
        assert_eq!(second.as_millis(), 1000);
    }

    #[test]
    fn zero_qps_disables_the_limit() {
        assert!(
            !KubeRateLimit {
                qps: 0.0,
                burst: 10
            }
            .enabled()
        );
        assert!(KubeRateLimit::default().enabled());
    }
}
