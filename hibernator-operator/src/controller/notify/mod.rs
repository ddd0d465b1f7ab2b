//! Notifications: deliver what happens to plans to the sinks of the
//! `HibernateNotification`s that select them.
//!
//! - After a reconcile wrote a plan's status, [`Notifier::observe`] derives
//!   the events that status shows ([`hibernator_reconcile::notify::derive`],
//!   pure and cheap) and adds them to an inbox keyed by plan and event key
//!   (bounded by what plans' statuses show; nothing is dropped, not even an
//!   event a later status no longer shows, such as a failed attempt whose
//!   retry already started), then wakes the worker. It never waits, so a
//!   slow sink never delays a reconcile.
//! - The worker ([`Notifier::run`], next to the Controller) takes the
//!   inbox, filters the events per notification, skips those already
//!   recorded in the notification's `status.deliveries` (or in flight), and
//!   delivers each to each sink on its own task (bounded concurrency),
//!   retrying with backoff ([`deliver`]).
//! - The outcome is recorded in the notification's status ([`record`]):
//!   the delivery key, counters, `lastDeliveryTime` and the
//!   `DeliveryFailing` condition. The key is written **after** the sink
//!   answered 2xx: at-least-once per key; a duplicate needs a crash between
//!   the answer and the status write.
//! - A watch on `HibernateNotification`s keeps a store the worker reads,
//!   and sets `Ready` and the horizon when a notification's generation
//!   changes (nothing is read or written when nothing changed).

pub mod deliver;
pub mod record;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use hibernator_core::types::{
    HibernateNotification, HibernatePlan, HibernatePlanStatus, NotificationSink,
};
use hibernator_reconcile::notify::filter::{Filter, Verdict};
use hibernator_reconcile::notify::records::{after_horizon, is_recorded};
use hibernator_reconcile::notify::{Notice, PlanView, derive};
use hibernator_reconcile::time::Clock;
use k8s_openapi::api::core::v1::Secret;
use kube::runtime::reflector::{Store, reflector, store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;

use super::metrics::Metrics;
use deliver::{Outcome, SinkSecrets};

/// Delivery settings (defaults: 5 attempts, 1s doubling to 30s, 10s per request).
#[derive(Clone, Debug)]
pub struct NotifyConfig {
    /// Attempts per delivery (1 + retries).
    pub max_attempts: u32,
    /// Wait after the first failed attempt; doubles after each.
    pub backoff_base: Duration,
    /// Longest wait between attempts.
    pub backoff_max: Duration,
    /// Per-request timeout when a sink sets none.
    pub request_timeout: Duration,
    /// Delivery records kept per notification (oldest pruned first).
    pub max_records: usize,
    /// Deliveries in flight at once (all notifications).
    pub concurrency: usize,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
            request_timeout: Duration::from_secs(10),
            max_records: 200,
            concurrency: 8,
        }
    }
}

/// The events of one plan waiting for the worker.
#[derive(Clone, Debug, Default)]
struct Pending {
    namespace: String,
    name: String,
    labels: BTreeMap<String, String>,
    /// By [`Notice::key`].
    notices: BTreeMap<String, Notice>,
}

/// The notification side of the controller: an inbox reconciles write to
/// and the worker that delivers.
#[derive(Debug, Default)]
pub struct Notifier {
    config: NotifyConfig,
    pending: Mutex<BTreeMap<String, Pending>>,
    wake: Notify,
}

impl Notifier {
    /// A notifier with `config`.
    pub fn new(config: NotifyConfig) -> Self {
        Self {
            config,
            ..Self::default()
        }
    }

    /// Adds the events the plan's just-written `status` shows (as of `now`)
    /// to the inbox and wakes the worker. Never blocks on delivery.
    pub fn observe(
        &self,
        plan: &HibernatePlan,
        status: &HibernatePlanStatus,
        now: chrono::DateTime<chrono::Utc>,
    ) {
        let namespace = plan.metadata.namespace.clone().unwrap_or_default();
        let name = plan.metadata.name.clone().unwrap_or_default();
        let notices = derive(
            PlanView {
                namespace: &namespace,
                name: &name,
                spec: &plan.spec,
                status,
            },
            now,
        );
        if notices.is_empty() {
            return;
        }
        if let Ok(mut pending) = self.pending.lock() {
            let entry = pending.entry(format!("{namespace}/{name}")).or_default();
            entry.labels = plan.metadata.labels.clone().unwrap_or_default();
            for notice in notices {
                entry.notices.entry(notice.key()).or_insert(notice);
            }
            entry.namespace = namespace;
            entry.name = name;
        }
        self.wake.notify_one();
    }

    fn take(&self) -> Vec<Pending> {
        self.pending
            .lock()
            .map(|mut p| std::mem::take(&mut *p).into_values().collect())
            .unwrap_or_default()
    }

    /// Watches `HibernateNotification`s (in `namespace`, or all) and
    /// delivers until dropped; deliveries in flight are dropped with it
    /// (their keys were not recorded, so the next controller sends them).
    pub async fn run(
        self: Arc<Self>,
        client: Client,
        namespace: Option<String>,
        metrics: Arc<Metrics>,
        clock: Clock,
    ) {
        let api: Api<HibernateNotification> = match &namespace {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        };
        let (notifications, writer) = store::<HibernateNotification>();
        // no redirects: a signed body is never re-sent to another host
        let http = match reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("hibernator/", env!("CARGO_PKG_VERSION")))
            .build()
        {
            Ok(http) => http,
            Err(error) => {
                tracing::error!(%error, "no HTTP client: notifications are not delivered");
                return;
            }
        };
        let worker = Arc::new(Worker {
            client: client.clone(),
            config: self.config.clone(),
            metrics,
            clock,
            notifications: notifications.clone(),
            http,
            in_flight: Mutex::new(HashMap::new()),
            locks: Mutex::new(HashMap::new()),
            slots: Arc::new(Semaphore::new(self.config.concurrency.max(1))),
        });
        let watch = {
            let worker = worker.clone();
            async move {
                let mut events = std::pin::pin!(
                    reflector(
                        writer,
                        watcher(api, watcher::Config::default()).default_backoff()
                    )
                    .applied_objects()
                );
                while let Some(event) = events.next().await {
                    match event {
                        Ok(notification) => record::refresh(&worker, &notification).await,
                        // e.g. the CRD missing after a `helm upgrade` (Helm
                        // does not upgrade CRDs): retried with backoff
                        Err(error) => {
                            tracing::warn!(%error, "HibernateNotification watch failed; retrying")
                        }
                    }
                }
            }
        };
        let deliver = async move {
            if notifications.wait_until_ready().await.is_err() {
                return;
            }
            let mut tasks = JoinSet::new();
            loop {
                tokio::select! {
                    () = self.wake.notified() => {
                        for plan in self.take() {
                            worker.route(&plan, &mut tasks);
                        }
                    }
                    Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                }
            }
        };
        tokio::join!(watch, deliver);
    }
}

/// State of one run of the worker.
pub(crate) struct Worker {
    pub(crate) client: Client,
    pub(crate) config: NotifyConfig,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) clock: Clock,
    notifications: Store<HibernateNotification>,
    http: reqwest::Client,
    /// `<ns>/<notification>/<delivery key>` in flight or recorded by this
    /// run, until the store shows the record (bounded by age).
    in_flight: Mutex<HashMap<String, Instant>>,
    /// One status writer per notification at a time.
    pub(crate) locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    slots: Arc<Semaphore>,
}

/// How long a key stays in the in-flight set after it was taken (longer
/// than any delivery with its retries and the store catching up).
const IN_FLIGHT_TTL: Duration = Duration::from_secs(3600);

impl Worker {
    /// Starts the deliveries the events of `plan` call for.
    fn route(self: &Arc<Self>, plan: &Pending, tasks: &mut JoinSet<()>) {
        for notification in self.notifications.state() {
            if notification.metadata.namespace.as_deref() != Some(plan.namespace.as_str())
                || !notification.spec.selector.selects(&plan.name, &plan.labels)
            {
                continue;
            }
            let status = notification.status.clone().unwrap_or_default();
            // not initialised yet: the horizon is set with `Ready`
            if status.horizon.is_none() {
                continue;
            }
            let Ok(filter) = Filter::new(
                &notification.spec.filter,
                notification.spec.quiet_hours.as_ref(),
            ) else {
                continue;
            };
            let name = notification.metadata.name.clone().unwrap_or_default();
            for notice in plan.notices.values() {
                if !after_horizon(&status, notice.at) {
                    continue;
                }
                let verdict = filter.verdict(notice);
                if verdict != Verdict::Send {
                    tracing::trace!(key = %notice.key(), ?verdict, "notification not sent");
                    continue;
                }
                for (index, sink) in notification.spec.sinks.iter().enumerate() {
                    let key = format!("{}/{}", sink.name, notice.key());
                    if is_recorded(&status, &key) {
                        continue;
                    }
                    if !self.take_key(&format!("{}/{name}/{key}", plan.namespace)) {
                        continue;
                    }
                    let worker = self.clone();
                    let sink = sink.clone();
                    let notice = notice.clone();
                    let namespace = plan.namespace.clone();
                    let name = name.clone();
                    tasks.spawn(async move {
                        let field = format!("spec.sinks[{index}]");
                        worker
                            .deliver(&namespace, &name, &field, &sink, key, &notice)
                            .await;
                    });
                }
            }
        }
    }

    /// Marks `key` as taken by this run; false when it already was.
    fn take_key(&self, key: &str) -> bool {
        let Ok(mut in_flight) = self.in_flight.lock() else {
            return false;
        };
        let now = Instant::now();
        in_flight.retain(|_, at| now.duration_since(*at) < IN_FLIGHT_TTL);
        if in_flight.contains_key(key) {
            return false;
        }
        in_flight.insert(key.to_string(), now);
        true
    }

    async fn deliver(
        &self,
        namespace: &str,
        name: &str,
        field: &str,
        sink: &NotificationSink,
        key: String,
        notice: &Notice,
    ) {
        let Ok(_slot) = self.slots.clone().acquire_owned().await else {
            return;
        };
        let outcome = match read_secrets(&self.client, namespace, field, sink).await {
            Ok(secrets) => {
                deliver::deliver(
                    &self.http,
                    &self.config,
                    &self.metrics,
                    field,
                    sink,
                    &secrets,
                    notice,
                )
                .await
            }
            Err(reason) => {
                self.metrics
                    .record_notification(sink.kind.as_str(), "failed");
                tracing::warn!(notification = %format!("{namespace}/{name}"), sink = %sink.name, %reason, "notification not delivered");
                Outcome::Failed {
                    attempts: 0,
                    reason,
                }
            }
        };
        if let Outcome::Delivered { attempts } = &outcome {
            tracing::info!(notification = %format!("{namespace}/{name}"), sink = %sink.name, key = %key, attempts, "notification delivered");
        }
        record::record(self, namespace, name, sink, key, notice.at, &outcome).await;
    }
}

/// Reads a sink's URL (and signing key) from its Secrets; `field` is the
/// sink's path (`spec.sinks[1]`). The error names the field and the
/// Secret, never a value.
pub(crate) async fn read_secrets(
    client: &Client,
    namespace: &str,
    field: &str,
    sink: &NotificationSink,
) -> Result<SinkSecrets, String> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let read = |key: &'static str, reference: &hibernator_core::types::SecretKeyRef| {
        let secrets = secrets.clone();
        let reference = reference.clone();
        async move {
            let where_ = format!("{field}.{key}");
            let secret = match secrets.get_opt(&reference.name).await {
                Ok(Some(secret)) => secret,
                Ok(None) => {
                    return Err(format!(
                        "{where_}: Secret {:?} not found in namespace {namespace}",
                        reference.name
                    ));
                }
                Err(kube::Error::Api(status)) if status.code == 403 => {
                    return Err(format!(
                        "{where_}: the controller may not read Secret {:?} in namespace {namespace} (chart value notifications.namespaces)",
                        reference.name
                    ));
                }
                Err(e) => {
                    return Err(format!(
                        "{where_}: reading Secret {:?} failed: {e}",
                        reference.name
                    ));
                }
            };
            secret
                .data
                .and_then(|d| d.get(&reference.key).map(|v| v.0.clone()))
                .ok_or_else(|| {
                    format!(
                        "{where_}: Secret {:?} has no key {:?}",
                        reference.name, reference.key
                    )
                })
        }
    };
    let url = read("urlSecretRef", &sink.url_secret_ref).await?;
    let url = String::from_utf8(url)
        .map_err(|_| format!("{field}.urlSecretRef: the URL is not UTF-8"))?
        .trim()
        .to_string();
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(format!(
            "{field}.urlSecretRef: the Secret's value is not an http(s) URL"
        ));
    }
    let signing_key = match &sink.signing_secret_ref {
        Some(reference) => Some(read("signingSecretRef", reference).await?),
        None => None,
    };
    Ok(SinkSecrets { url, signing_key })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hibernator_core::types::PlanPhase;

    fn plan(name: &str) -> HibernatePlan {
        let yaml = format!(
            "apiVersion: hibernator.dev/v1alpha1\nkind: HibernatePlan\nmetadata: {{name: {name}, namespace: dev}}\nspec:\n  schedule: {{timezone: UTC, offHours: []}}\n  execution: {{strategy: {{type: Sequential}}}}\n  targets: []\n"
        );
        hibernator_core::input::PlanDocuments::from_yaml(&yaml)
            .unwrap()
            .plan
    }

    #[test]
    fn the_inbox_keeps_every_event_per_plan_and_never_blocks() {
        use hibernator_core::types::{ExecutionState, ExecutionStatus, Operation};
        let notifier = Notifier::new(NotifyConfig::default());
        let now: chrono::DateTime<chrono::Utc> = "2026-11-23T20:00:00Z".parse().unwrap();
        let running = |attempts, retry: bool| HibernatePlanStatus {
            phase: PlanPhase::Hibernating,
            current_cycle_id: Some("c1".into()),
            current_operation: Some(Operation::Shutdown),
            cycle_started_at: Some(now),
            executions: vec![ExecutionStatus {
                target: "db".into(),
                state: ExecutionState::Running,
                attempts,
                next_retry_at: retry.then_some(now),
                ..ExecutionStatus::default()
            }],
            ..HibernatePlanStatus::default()
        };
        // far more observations than any channel bound: none waits
        for _ in 0..10_000 {
            notifier.observe(&plan("a"), &running(1, false), now);
        }
        // attempt 1 failed (retry scheduled), then the retry started: the
        // later status no longer shows the failure, the inbox still does
        notifier.observe(&plan("a"), &running(1, true), now);
        notifier.observe(&plan("a"), &running(2, false), now);
        notifier.observe(&plan("b"), &HibernatePlanStatus::default(), now);
        let taken = notifier.take();
        assert_eq!(taken.len(), 1, "plan b shows no event");
        let keys: Vec<&String> = taken[0].notices.keys().collect();
        assert_eq!(keys, ["a/c1/CycleStarted", "a/c1/TargetFailed/db/1"]);
        assert!(notifier.take().is_empty());
    }
}
