//! The watches behind the controller, and the caches reconciles read from.
//!
//! Six watches: HibernatePlans (the objects reconciled), the runner Jobs
//! and restore ConfigMaps the plans own (label `hibernator.dev/plan`),
//! ScheduleExceptions (mapped to the plan they name), and HolidayCalendars
//! with the ConfigMaps of their iCalendar documents (label
//! `hibernator.dev/calendar`), mapped to the plans that list them. The notification worker
//! ([`super::notify`]) adds a seventh, on HibernateNotifications. The Job and exception
//! watches keep reflector stores ([`Caches`]), so a reconcile reads its Jobs
//! and exceptions from memory instead of listing them: the only read a
//! reconcile sends is the GET of its restore ConfigMap (kept live: a stale
//! view of restore data could skip a wake-up).
//!
//! Stale caches are safe: the status write is guarded by the plan's
//! resourceVersion, a Job not seen yet is requested again (`AlreadyExists`
//! is success), and a Job's change is in its store before the reconcile it
//! triggers starts.

use std::sync::Arc;

use tokio::sync::watch;

use futures::{Stream, StreamExt, TryStreamExt, stream};
use hibernator_core::types::{HibernatePlan, HolidayCalendar, ScheduleException};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::runtime::controller::{
    self, ReconcileReason, ReconcileRequest, trigger_owners, trigger_self, trigger_with,
};
use kube::runtime::reflector::{ObjectRef, Store, reflector, store};
use kube::runtime::utils::CancelableJoinHandle;
use kube::runtime::{WatchStreamExt, applier, watcher};
use kube::{Api, Client};

use super::{Context, Error, api, error_policy, reconcile_with};

/// Reflector stores of the controller's watches.
#[derive(Clone)]
pub struct Caches {
    /// Runner Jobs (label `hibernator.dev/plan`), without their pod
    /// template and managed fields (reconciles read labels, annotations
    /// and status only).
    pub jobs: Store<Job>,
    /// ScheduleExceptions.
    pub exceptions: Store<ScheduleException>,
    /// Namespaces matching `--namespace-selector` (`None`: no selector,
    /// every namespace's plans are this controller's).
    pub namespaces: Option<Store<Namespace>>,
    /// HolidayCalendars and the ConfigMaps labelled `hibernator.dev/calendar`
    /// (their iCalendar documents).
    pub calendars: Option<(Store<HolidayCalendar>, Store<ConfigMap>)>,
    /// `Some(true)` once all stores hold their initial lists, `Some(false)`
    /// when a watch ended first.
    ready: watch::Receiver<Option<bool>>,
}

impl std::fmt::Debug for Caches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caches")
            .field("jobs", &self.jobs.len())
            .field("exceptions", &self.exceptions.len())
            .finish_non_exhaustive()
    }
}

impl Caches {
    /// Caches over two stores; ready once both are.
    pub fn new(jobs: Store<Job>, exceptions: Store<ScheduleException>) -> Self {
        Self::with_namespaces(jobs, exceptions, None)
    }

    /// Caches over the Job and exception stores and, with
    /// `--namespace-selector`, the selected namespaces; ready once all are.
    ///
    /// Readiness is awaited by one task and shared through a watch channel:
    /// kube-runtime 5.0's `Store::wait_until_ready` wakes only the last of
    /// several concurrent waiters (its `DelayedInit` polls a oneshot that
    /// keeps one waker), which left all but one reconcile waiting forever.
    pub fn with_namespaces(
        jobs: Store<Job>,
        exceptions: Store<ScheduleException>,
        namespaces: Option<Store<Namespace>>,
    ) -> Self {
        Self::with_stores(jobs, exceptions, namespaces, None)
    }

    /// [`with_namespaces`](Self::with_namespaces) plus the calendar stores
    /// (HolidayCalendars and their labelled ConfigMaps); ready once all are.
    pub fn with_stores(
        jobs: Store<Job>,
        exceptions: Store<ScheduleException>,
        namespaces: Option<Store<Namespace>>,
        calendars: Option<(Store<HolidayCalendar>, Store<ConfigMap>)>,
    ) -> Self {
        let (tx, ready) = watch::channel(None);
        let (j, e, n, c) = (
            jobs.clone(),
            exceptions.clone(),
            namespaces.clone(),
            calendars.clone(),
        );
        tokio::spawn(async move {
            let mut synced =
                j.wait_until_ready().await.is_ok() && e.wait_until_ready().await.is_ok();
            if let Some(n) = n {
                synced = synced && n.wait_until_ready().await.is_ok();
            }
            if let Some((calendars, documents)) = c {
                synced = synced
                    && calendars.wait_until_ready().await.is_ok()
                    && documents.wait_until_ready().await.is_ok();
            }
            let _ = tx.send(Some(synced));
        });
        Self {
            jobs,
            exceptions,
            namespaces,
            calendars,
            ready,
        }
    }

    /// The calendar stores, when this controller watches calendars.
    pub fn calendar_stores(&self) -> Option<(&Store<HolidayCalendar>, &Store<ConfigMap>)> {
        self.calendars.as_ref().map(|(c, d)| (c, d))
    }

    /// Whether `plan` is this controller's: always without
    /// `--namespace-selector`, else when its namespace matches (read from
    /// the namespace watch once it holds its initial list). A plan is never
    /// admitted on a guess: while the namespace watch is down, nothing is.
    pub async fn admits(&self, plan: &HibernatePlan) -> bool {
        let Some(namespaces) = &self.namespaces else {
            return true;
        };
        if !self.ready().await {
            return false;
        }
        let namespace = plan.metadata.namespace.as_deref().unwrap_or_default();
        namespaces.get(&ObjectRef::new(namespace)).is_some()
    }

    /// Waits until both stores hold their initial lists; `false` when a
    /// watch is gone (shutting down): then the caller reads from the API.
    pub async fn ready(&self) -> bool {
        let mut ready = self.ready.clone();
        match ready.wait_for(Option::is_some).await {
            Ok(value) => *value == Some(true),
            Err(_) => false,
        }
    }
}

/// Maps a ScheduleException to the plan it refers to.
pub fn exception_to_plan(exception: ScheduleException) -> Option<ObjectRef<HibernatePlan>> {
    let namespace = exception
        .spec
        .plan_ref
        .namespace
        .clone()
        .or(exception.metadata.namespace.clone())?;
    Some(ObjectRef::new(&exception.spec.plan_ref.name).within(&namespace))
}

/// The plans of `namespace` in `plans`.
fn plans_in(plans: &Store<HibernatePlan>, namespace: &Namespace) -> Vec<ObjectRef<HibernatePlan>> {
    let name = namespace.metadata.name.as_deref();
    plans
        .state()
        .iter()
        .filter(|plan| plan.metadata.namespace.as_deref() == name)
        .map(|plan| ObjectRef::from_obj(&**plan))
        .collect()
}

/// Reconcile requests for the plans in `plans` that list calendar `namespace/name`.
fn plans_listing(
    plans: &Store<HibernatePlan>,
    namespace: &str,
    name: &str,
) -> Vec<Result<ReconcileRequest<HibernatePlan>, watcher::Error>> {
    plans
        .state()
        .iter()
        .filter(|plan| super::calendars::lists_calendar(plan, namespace, name))
        .map(|plan| {
            Ok(ReconcileRequest {
                obj_ref: ObjectRef::from_obj(&**plan),
                reason: ReconcileReason::Unknown,
            })
        })
        .collect()
}

/// What a reconcile needs of a runner Job (the rest is dropped before it is stored).
fn slim_job(job: &mut Job) {
    job.metadata.managed_fields = None;
    job.spec = None;
}

/// `kubectl apply`'s copy of the whole object, which no reconcile reads.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// A plan as the store keeps it: without managed fields and `kubectl
/// apply`'s copy of the plan (together often larger than the plan itself).
/// Neither is read by a reconcile, and status writes send neither.
fn slim_plan(plan: &mut HibernatePlan) {
    plan.metadata.managed_fields = None;
    if let Some(annotations) = plan.metadata.annotations.as_mut() {
        annotations.remove(LAST_APPLIED);
    }
}

type Queue = std::pin::Pin<
    Box<dyn Stream<Item = Result<ReconcileRequest<HibernatePlan>, watcher::Error>> + Send>,
>;

/// Runs the Controller until `shutdown` completes. `trigger` makes every plan
/// reconcile now (tests use it after moving a manual clock).
pub async fn run_controller(
    ctx: Arc<Context>,
    trigger: impl Stream<Item = ()> + Send + Sync + 'static,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    // the watches list every object anew: each of those events reconciles,
    // whatever an earlier run of this context wrote (`echo`)
    ctx.own_writes.clear();
    ctx.own_creates.clear();
    let client: Client = ctx.client.clone();
    let ns = ctx.config.namespace.as_deref();
    let labelled = || watcher::Config::default().labels(hibernator_core::wellknown::LABEL_PLAN);

    let shard = &ctx.config.shard;

    let (plans, plans_writer) = store::<HibernatePlan>();
    let (job_store, jobs_writer) = store::<Job>();
    let (exception_store, exceptions_writer) = store::<ScheduleException>();
    let (namespace_store, namespace_events) = match &shard.namespace_selector {
        Some(selector) => {
            let (store, writer) = store::<Namespace>();
            let events = reflector(
                writer,
                watcher(
                    Api::<Namespace>::all(client.clone()),
                    watcher::Config::default().labels(selector),
                )
                .default_backoff(),
            )
            .touched_objects();
            (Some(store), Some(events))
        }
        None => (None, None),
    };
    let (calendar_store, calendars_writer) = store::<HolidayCalendar>();
    let (document_store, documents_writer) = store::<ConfigMap>();
    let caches = Caches::with_stores(
        job_store,
        exception_store,
        namespace_store,
        Some((calendar_store.clone(), document_store)),
    );

    // `--plan-selector`: the API server sends only this controller's plans;
    // a plan whose labels stop matching leaves the store (and the queue).
    let plan_watch = match &shard.plan_selector {
        Some(selector) => watcher::Config::default().labels(selector),
        None => watcher::Config::default(),
    };
    // The echo of the controller's own status write updates the store but
    // reconciles nothing (`super::echo`).
    let echoes = ctx.clone();
    let plan_events = reflector(
        plans_writer,
        watcher(api::<HibernatePlan>(&client, ns), plan_watch)
            .modify(slim_plan)
            .default_backoff(),
    )
    .applied_objects()
    .try_filter(move |plan| std::future::ready(!echoes.own_writes.is_echo(plan)));
    // likewise the `ADDED` echo of a Job this controller created
    let created = ctx.clone();
    let job_events = reflector(
        jobs_writer,
        watcher(api::<Job>(&client, ns), labelled())
            .modify(slim_job)
            .default_backoff(),
    )
    .touched_objects()
    .try_filter(move |job| std::future::ready(!created.own_creates.is_echo(job)));
    let config_map_events = watcher(api::<ConfigMap>(&client, ns), labelled())
        .default_backoff()
        .touched_objects();
    let exception_events = reflector(
        exceptions_writer,
        watcher(
            api::<ScheduleException>(&client, ns),
            watcher::Config::default(),
        )
        .default_backoff(),
    )
    .touched_objects();
    // A calendar (or one of its iCalendar ConfigMaps) that changes: the plans
    // that list it reconcile now.
    let calendar_events = reflector(
        calendars_writer,
        watcher(
            api::<HolidayCalendar>(&client, ns),
            watcher::Config::default(),
        )
        .default_backoff(),
    )
    .touched_objects();
    let document_events = reflector(
        documents_writer,
        watcher(
            api::<ConfigMap>(&client, ns),
            watcher::Config::default().labels(hibernator_core::wellknown::LABEL_CALENDAR),
        )
        .default_backoff(),
    )
    .touched_objects();
    let calendar_plans = plans.clone();
    let calendar_queue = calendar_events.flat_map(move |event| {
        stream::iter(match event {
            Ok(calendar) => {
                let namespace = calendar.metadata.namespace.clone().unwrap_or_default();
                let name = calendar.metadata.name.clone().unwrap_or_default();
                plans_listing(&calendar_plans, &namespace, &name)
            }
            Err(error) => vec![Err(error)],
        })
    });
    let (document_plans, document_calendars) = (plans.clone(), calendar_store);
    let document_queue = document_events.flat_map(move |event| {
        stream::iter(match event {
            Ok(config_map) => {
                let namespace = config_map.metadata.namespace.clone().unwrap_or_default();
                let name = config_map.metadata.name.clone().unwrap_or_default();
                document_calendars
                    .state()
                    .iter()
                    .filter(|c| super::calendars::reads_config_map(c, &namespace, &name))
                    .flat_map(|c| {
                        plans_listing(
                            &document_plans,
                            &namespace,
                            c.metadata.name.as_deref().unwrap_or_default(),
                        )
                    })
                    .collect()
            }
            Err(error) => vec![Err(error)],
        })
    });
    let all_plans = plans.clone();
    let bulk = trigger.flat_map(move |()| {
        stream::iter(all_plans.state().into_iter().map(|plan| {
            Ok(ReconcileRequest {
                obj_ref: ObjectRef::from_obj(&*plan),
                reason: ReconcileReason::BulkReconcile,
            })
        }))
    });
    let mut queues: Vec<Queue> = vec![
        trigger_self(plan_events, ()).boxed(),
        trigger_owners(job_events, (), ()).boxed(),
        trigger_owners(config_map_events, (), ()).boxed(),
        trigger_with(exception_events, exception_to_plan).boxed(),
        calendar_queue.boxed(),
        document_queue.boxed(),
        bulk.boxed(),
        ctx.job_checks.requests().boxed(),
    ];
    if let Some(namespace_events) = namespace_events {
        // a namespace that joins (or leaves) the selection: its plans
        // reconcile now (and are admitted, or left alone)
        let in_store = plans.clone();
        queues.push(
            namespace_events
                .flat_map(move |event| {
                    let requests = match event {
                        Ok(namespace) => plans_in(&in_store, &namespace)
                            .into_iter()
                            .map(|obj_ref| {
                                Ok(ReconcileRequest {
                                    obj_ref,
                                    reason: ReconcileReason::Unknown,
                                })
                            })
                            .collect(),
                        Err(error) => vec![Err(error)],
                    };
                    stream::iter(requests)
                })
                .boxed(),
        );
    }
    let queue = stream::select_all(queues).take_until(shutdown);

    let notifications = ctx.notifier.clone().run(
        client.clone(),
        ctx.config.namespace.clone(),
        ctx.metrics.clone(),
        ctx.config.clock.clone(),
    );
    let concurrency = ctx.config.max_concurrent_reconciles;
    let controller = applier(
        move |plan, ctx| {
            let caches = caches.clone();
            CancelableJoinHandle::spawn(
                async move { reconcile_with(plan, ctx, Some(&caches)).await },
                &tokio::runtime::Handle::current(),
            )
        },
        |plan, error: &Error, ctx| error_policy(plan, error, ctx),
        ctx,
        plans,
        queue,
        controller::Config::default().concurrency(concurrency),
    )
    .for_each(|result| async move {
        match result {
            Ok((object, _)) => tracing::trace!(plan = %object, "reconciled"),
            Err(error) => tracing::debug!(%error, "controller"),
        }
    });
    // the notification worker lives as long as the Controller (it never
    // ends by itself; deliveries in flight are dropped with it)
    tokio::select! {
        () = controller => {}
        () = notifications => {}
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use kube::runtime::reflector::store::Writer;

    use super::*;

    fn sync<K>(writer: &mut Writer<K>)
    where
        K: kube::runtime::reflector::Lookup + Clone + 'static,
        K::DynamicType: Eq + std::hash::Hash + Clone,
    {
        writer.apply_watcher_event(&watcher::Event::Init);
        writer.apply_watcher_event(&watcher::Event::InitDone);
    }

    #[test]
    fn stored_plans_drop_managed_fields_and_the_last_applied_copy() {
        let mut plan: HibernatePlan = serde_json::from_value(serde_json::json!({
            "apiVersion": "hibernator.dev/v1alpha1", "kind": "HibernatePlan",
            "metadata": {"name": "p", "namespace": "ns",
                "annotations": {LAST_APPLIED: "{...}", "hibernator.dev/override": "keep"},
                "managedFields": [{"manager": "kubectl", "operation": "Apply"}]},
            "spec": {"schedule": {"timezone": "UTC", "offHours": []}, "targets": []},
        }))
        .unwrap();
        slim_plan(&mut plan);
        assert!(plan.metadata.managed_fields.is_none());
        let annotations = plan.metadata.annotations.unwrap();
        assert_eq!(
            annotations.keys().collect::<Vec<_>>(),
            vec!["hibernator.dev/override"]
        );
    }

    #[tokio::test]
    async fn every_waiting_reconcile_sees_the_caches_ready() {
        let (jobs, mut jobs_writer) = store::<Job>();
        let (exceptions, mut exceptions_writer) = store::<ScheduleException>();
        let caches = Caches::new(jobs, exceptions);
        let waiters: Vec<_> = (0..8)
            .map(|_| {
                let caches = caches.clone();
                tokio::spawn(async move { caches.ready().await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(20)).await;
        sync(&mut jobs_writer);
        sync(&mut exceptions_writer);
        for waiter in waiters {
            let ready = tokio::time::timeout(Duration::from_secs(5), waiter)
                .await
                .expect("a waiter was never woken")
                .unwrap();
            assert!(ready);
        }
    }

    #[tokio::test]
    async fn gone_watches_make_readers_fall_back() {
        let (jobs, jobs_writer) = store::<Job>();
        let (exceptions, exceptions_writer) = store::<ScheduleException>();
        let caches = Caches::new(jobs, exceptions);
        drop((jobs_writer, exceptions_writer));
        let ready = tokio::time::timeout(Duration::from_secs(5), caches.ready())
            .await
            .unwrap();
        assert!(!ready);
    }
}
