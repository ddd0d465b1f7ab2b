//! The `hibernator controller`: a kube-runtime Controller for HibernatePlans.
//!
//! Each reconcile is a pipeline:
//!
//! 1. **read** ([`read`]): the plan's runner Jobs and ScheduleExceptions
//!    (from the watch caches, [`watches`]), the termination messages of Jobs
//!    that just finished (at most one Pod list) and its restore ConfigMap
//!    (one GET);
//! 2. **validate + decide** ([`decide`], pure): the schedule engine and the
//!    controls give the desired state, the dispatcher the targets that start;
//! 3. **apply** ([`apply`]): status first (guarded by resourceVersion), then
//!    the runner Jobs, Events, pruning and metrics;
//! 4. requeue exactly at the next schedule transition, control expiry or
//!    retry (Job changes arrive by watch; nothing polls).
//!
//! The Controller owns Jobs and the restore ConfigMap and watches
//! ScheduleExceptions (mapped to their plan). Next to it runs the
//! notification worker ([`notify`]), fed by each reconcile's status.

pub(crate) mod apply;
pub mod args;
pub(crate) mod calendars;
pub mod client;
pub mod echo;
pub mod error;
pub mod events;
pub(crate) mod finalizer;
pub(crate) mod health;
pub mod jobcheck;
pub mod leader;
pub(crate) mod logs_ref;
pub mod metrics;
pub mod notify;
pub(crate) mod read;
pub mod shard;
pub mod streaming;
pub(crate) mod watches;

#[cfg(test)]
#[path = "runner_contract_tests.rs"]
mod runner_contract_tests;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hibernator_core::executor::RetryPolicy;
use hibernator_core::params::ParameterCatalog;
use hibernator_core::types::HibernatePlan;
use k8s_openapi::api::coordination::v1::Lease;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Client};

pub use error::Error;
use events::EventPublisher;
use hibernator_kube::RunnerSettings;
use hibernator_reconcile::time::Clock;
use leader::LeaseConfig;
use metrics::Metrics;
pub use watches::{Caches, exception_to_plan, run_controller};

/// Settings of the controller (from the `controller` subcommand's flags).
#[derive(Clone, Debug)]
pub struct ControllerConfig {
    /// Runner Job settings.
    pub runner: RunnerSettings,
    /// Namespace to watch (`None`: all namespaces).
    pub namespace: Option<String>,
    /// This controller's share of the plans ([`shard`]; default: all).
    pub shard: shard::Shard,
    /// Backoff between retry attempts (`max_retries` comes from each plan).
    pub backoff: RetryPolicy,
    /// Where "now" comes from.
    pub clock: Clock,
    /// Backoff after a transient reconcile error.
    pub error_backoff: Duration,
    /// After a reconcile that created runner Jobs, a Job the Job watch has
    /// not shown this much later makes its plan reconcile again (and the
    /// Job be created again when it is missing; [`jobcheck`]).
    pub job_check: Duration,
    /// Probe endpoint address (`/healthz`, `/readyz`), `None` to disable.
    pub health_addr: Option<SocketAddr>,
    /// Metrics endpoint address (`/metrics`), `None` to disable.
    pub metrics_addr: Option<SocketAddr>,
    /// Leader election (`None`: run without a Lease).
    pub lease: Option<LeaseConfig>,
    /// Name of this replica (Events' reporting instance).
    pub instance: Option<String>,
    /// Runner streaming server to run next to the reconciler (`None`: none).
    pub streaming: Option<streaming::StreamingSetup>,
    /// Client-side rate limit of the API client ([`client::ControllerClients`]).
    pub kube_api: client::KubeRateLimit,
    /// Client-side rate limit of the Event client, a budget of its own.
    pub kube_events: client::KubeRateLimit,
    /// Plans reconciled at once (`--max-concurrent-reconciles`; 0: no limit).
    pub max_concurrent_reconciles: u16,
    /// The executor types plans are validated against: the catalog of the
    /// binary's executor set (default: the built-ins).
    pub catalog: ParameterCatalog,
    /// Notification delivery settings (attempts, backoff, timeouts).
    pub notify: notify::NotifyConfig,
}

impl ControllerConfig {
    /// The execution-log persistence of the streaming server, when it runs
    /// and persistence is on (then `logsRef` names the stored object).
    pub fn persistence(&self) -> Option<&hibernator_streaming::sink::PersistenceConfig> {
        self.streaming
            .as_ref()
            .filter(|s| s.server.enabled)
            .and_then(|s| s.sinks.persistence.as_ref())
            .filter(|p| p.enabled)
    }
}

impl Default for ControllerConfig {
    fn default() -> Self {
        Self {
            runner: RunnerSettings::default(),
            namespace: None,
            shard: shard::Shard::default(),
            backoff: RetryPolicy::default(),
            clock: Clock::System,
            error_backoff: Duration::from_secs(5),
            job_check: Duration::from_secs(15),
            health_addr: None,
            metrics_addr: None,
            lease: None,
            instance: None,
            streaming: None,
            kube_api: client::KubeRateLimit::default(),
            kube_events: client::KubeRateLimit::events(),
            max_concurrent_reconciles: DEFAULT_MAX_CONCURRENT_RECONCILES,
            catalog: hibernator_executors::ExecutorSet::new().catalog(),
            notify: notify::NotifyConfig::default(),
        }
    }
}

/// Shared state of all reconciles.
pub struct Context {
    /// API client.
    pub client: Client,
    /// Settings.
    pub config: ControllerConfig,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Event publisher.
    pub events: EventPublisher,
    /// Executor parameter catalog (validation).
    pub catalog: ParameterCatalog,
    /// Resolved holiday calendars, by the versions they were resolved from.
    pub(crate) calendar_cache: calendars::CalendarCache,
    /// Notification inbox and worker ([`notify`]).
    pub notifier: Arc<notify::Notifier>,
    /// The controller's own status writes, whose echoes reconcile nothing.
    pub own_writes: echo::OwnWrites,
    /// The runner Jobs the controller created, whose `ADDED` echoes
    /// reconcile nothing.
    pub own_creates: echo::OwnCreates,
    /// Checks that the Jobs a reconcile created were seen by the watch.
    pub job_checks: jobcheck::JobChecks,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Context {
    /// A context validating plans against `config.catalog`, publishing
    /// Events through `client` too.
    pub fn new(client: Client, config: ControllerConfig, metrics: Arc<Metrics>) -> Self {
        Self::with_event_client(client.clone(), client, config, metrics)
    }

    /// [`Context::new`], publishing Events through `events` (the
    /// controller's Event client, with a request budget of its own).
    pub fn with_event_client(
        client: Client,
        events: Client,
        config: ControllerConfig,
        metrics: Arc<Metrics>,
    ) -> Self {
        let events = EventPublisher::new(events, config.instance.clone(), metrics.clone());
        Self {
            client,
            notifier: Arc::new(notify::Notifier::new(config.notify.clone())),
            catalog: config.catalog.clone(),
            config,
            metrics,
            events,
            calendar_cache: calendars::CalendarCache::default(),
            own_writes: echo::OwnWrites::default(),
            own_creates: echo::OwnCreates::default(),
            job_checks: jobcheck::JobChecks::default(),
        }
    }
}

fn plan_key(plan: &HibernatePlan) -> String {
    metrics::plan_key(
        plan.metadata.namespace.as_deref().unwrap_or_default(),
        plan.metadata.name.as_deref().unwrap_or_default(),
    )
}

/// Reconciles one plan: read → validate/decide → apply → requeue, reading
/// its Jobs and exceptions from the API server.
pub async fn reconcile(plan: Arc<HibernatePlan>, ctx: Arc<Context>) -> Result<Action, Error> {
    reconcile_with(plan, ctx, None).await
}

/// [`reconcile`], reading Jobs and exceptions from `caches` when given
/// (what [`run_controller`] does).
pub async fn reconcile_with(
    plan: Arc<HibernatePlan>,
    ctx: Arc<Context>,
    caches: Option<&Caches>,
) -> Result<Action, Error> {
    let started = Instant::now();
    let result = reconcile_inner(&plan, &ctx, caches).await;
    ctx.metrics.record_reconcile(started.elapsed());
    result
}

async fn reconcile_inner(
    plan: &HibernatePlan,
    ctx: &Arc<Context>,
    caches: Option<&Caches>,
) -> Result<Action, Error> {
    let key = plan_key(plan);
    if let Some(caches) = caches
        && !caches.admits(plan).await
    {
        // another release's plan (`--namespace-selector`): never touched
        tracing::trace!(plan = %key, "outside this controller's namespaces");
        return Ok(Action::await_change());
    }
    let namespace = plan.metadata.namespace.clone().unwrap_or_default();
    let plans: Api<HibernatePlan> = Api::namespaced(ctx.client.clone(), &namespace);
    let deleting = plan.metadata.deletion_timestamp.is_some();
    if deleting && !finalizer::has_finalizer(plan) {
        return Ok(Action::await_change());
    }
    if !deleting && !finalizer::has_finalizer(plan) {
        // the finalizer first; the patch triggers the next reconcile
        finalizer::set_finalizer(&plans, plan, true).await?;
        return Ok(Action::await_change());
    }
    let observed = read::read(&ctx.client, plan, caches).await?;
    let now = ctx.config.clock.now();
    let calendars = calendars::read_calendars(
        &ctx.client,
        plan,
        caches.and_then(Caches::calendar_stores),
        &ctx.calendar_cache,
        now.date_naive(),
    )
    .await?;
    let mut decision = hibernator_reconcile::decide(&hibernator_reconcile::DecideInput {
        plan,
        exceptions: &observed.exceptions,
        calendars: &calendars,
        jobs: &observed.jobs,
        restore: &observed.restore,
        now,
        catalog: &ctx.catalog,
        backoff: &ctx.config.backoff,
        enforce_jobs: &observed.enforce_jobs,
    });
    if let Some(persistence) = ctx.config.persistence() {
        let name = plan.metadata.name.as_deref().unwrap_or_default();
        logs_ref::fill(&mut decision.status, name, &observed.jobs, persistence);
    }
    apply::apply(ctx, plan, &decision, observed.restore.bytes).await?;
    // the status is written: notifications see what it shows (never waits)
    ctx.notifier.observe(plan, &decision.status, now);
    if let Some(message) = &decision.invalid {
        tracing::warn!(plan = %key, %message, "invalid plan; waiting for a change");
        return Ok(Action::await_change());
    }
    if decision.cleanup {
        return Ok(Action::await_change());
    }
    // the wait counts from now, not from the reconcile's start: the reads,
    // the writes and the rate limiter took time, and the transition is at
    // `requeue_at` whatever they took (a start-up reconcile that waited
    // 300 ms for the client's tokens would otherwise wake its plan 300 ms
    // after the boundary)
    let next = decision.requeue_at.map(|at| {
        (at - ctx.config.clock.now())
            .to_std()
            .unwrap_or(Duration::ZERO)
    });
    // the Jobs it created: each must be seen by the watch within
    // `job_check`, or the plan reconciles again (`jobcheck`)
    let name = plan.metadata.name.as_deref().unwrap_or_default();
    let created: Vec<String> = decision
        .create
        .iter()
        .map(|r| r.name(name))
        .chain(decision.enforce_create.iter().map(|r| r.name(name)))
        .collect();
    if !created.is_empty() {
        ctx.job_checks
            .schedule(ctx, ObjectRef::from_obj(plan), created);
    }
    Ok(requeue_after(next, &key))
}

/// The requeue of a successful reconcile: at the next transition, control
/// expiry or retry (`next`); nothing polls otherwise.
fn requeue_after(next: Option<Duration>, key: &str) -> Action {
    match next {
        Some(wait) => {
            tracing::debug!(plan = %key, wait = ?wait, "requeue");
            Action::requeue(wait)
        }
        None => Action::await_change(),
    }
}

/// `error_policy`: invalid specs wait for a change; conflicts retry at once;
/// other (transient) errors back off.
pub fn error_policy(plan: Arc<HibernatePlan>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.record_error(error.category());
    match error {
        Error::Invalid { .. } => Action::await_change(),
        Error::Conflict { .. } => {
            tracing::debug!(plan = %plan_key(&plan), %error, "stale read; retrying");
            Action::requeue(Duration::from_millis(200))
        }
        _ => {
            tracing::warn!(plan = %plan_key(&plan), %error, "reconcile failed; backing off");
            Action::requeue(ctx.config.error_backoff)
        }
    }
}

fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Default of `--max-concurrent-reconciles`. Reconciles wait on the API
/// server (and the client's rate limit), not on CPU; a bound keeps the
/// memory of a burst (every plan of a large estate at start-up or at a
/// shared boundary) to that of this many reconciles, and lets plans
/// finish one after another instead of all at the end of the burst.
pub const DEFAULT_MAX_CONCURRENT_RECONCILES: u16 = 16;

/// How long in-flight reconciles may take after SIGTERM. After a large
/// burst (a shared boundary of many plans) hundreds of reconciles can be
/// waiting for the client's rate limit; they are abandoned after this
/// grace, well inside the chart's 30 s `terminationGracePeriodSeconds`.
/// That is safe: a reconcile writes status before Jobs, Job names are
/// deterministic, and the next leader reconciles every plan at start.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Completes [`SHUTDOWN_GRACE`] after `stopped`.
async fn drained(stopped: impl std::future::Future<Output = ()>) {
    stopped.await;
    tokio::time::sleep(SHUTDOWN_GRACE).await;
    tracing::warn!(
        grace = ?SHUTDOWN_GRACE,
        "reconciles still in flight after SIGTERM; exiting without them (the next leader reconciles every plan)"
    );
}

/// The whole `hibernator controller`: probes and metrics servers, leader
/// election, then the Controller; returns after `shutdown` (SIGTERM) with
/// in-flight reconciles finished (or abandoned after [`SHUTDOWN_GRACE`]),
/// or with an error when leadership is lost.
/// `clients.api` serves the reconciler, the watches and the streaming
/// server; `clients.events` the Events; `clients.lease` only leader
/// election (see [`client`]).
pub async fn run(
    clients: client::ControllerClients,
    config: ControllerConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let client = clients.api;
    let (metrics, streaming_server) =
        streaming::prepare(config.streaming.as_ref(), &client, config.instance.clone()).map_err(
            |e| Error::Streaming {
                message: e.to_string(),
            },
        )?;
    let metrics = Arc::new(metrics);
    let streaming_server = match streaming_server {
        Some(server) => Some(server.start().await.map_err(|e| Error::Streaming {
            message: e.to_string(),
        })?),
        None => None,
    };
    let ready = health::Readiness::default();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };
    let mut servers = Vec::new();
    if let Some(addr) = config.health_addr {
        servers.push(tokio::spawn(health::serve(
            "health",
            addr,
            health::health_router(ready.clone()),
            stopped(),
        )));
    }
    if let Some(addr) = config.metrics_addr {
        servers.push(tokio::spawn(health::serve(
            "metrics",
            addr,
            health::metrics_router(metrics.clone()),
            stopped(),
        )));
    }
    let stop_tx = Arc::new(stop_tx);
    let stop_on_signal = stop_tx.clone();
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_on_signal.send(true);
    });
    let lease = config.lease.clone();
    let ctx = Arc::new(Context::with_event_client(
        client,
        clients.events,
        config,
        metrics,
    ));
    ready.set(true);
    let result = match lease {
        None => {
            tokio::select! {
                () = run_controller(ctx, futures::stream::pending(), stopped()) => {}
                () = drained(stopped()) => {}
            }
            Ok(())
        }
        Some(lease) => {
            let leases: Api<Lease> = Api::namespaced(clients.lease, &lease.namespace);
            let acquired = tokio::select! {
                () = leader::acquire(&leases, &lease) => true,
                () = stopped() => false,
            };
            if acquired {
                tokio::select! {
                    () = run_controller(ctx, futures::stream::pending(), stopped()) => Ok(()),
                    () = drained(stopped()) => Ok(()),
                    lost = leader::keep(&leases, &lease) => Err(lost),
                }
            } else {
                Ok(())
            }
        }
    };
    // whatever ended the controller (SIGTERM, a lost Lease) stops the probe
    // and metrics servers too: a replica that lost its Lease must exit (and
    // be restarted as a candidate), not live on with its probes answering
    ready.set(false);
    let _ = stop_tx.send(true);
    streaming::stop(streaming_server).await;
    for server in servers {
        if let Ok(Err(error)) = server.await {
            tracing::warn!(%error, "server");
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reconcile_requeues_at_its_next_transition_only() {
        let days = Duration::from_secs(3 * 24 * 3600);
        assert_eq!(requeue_after(Some(days), "ns/p"), Action::requeue(days));
        assert_eq!(requeue_after(None, "ns/p"), Action::await_change());
    }
}
