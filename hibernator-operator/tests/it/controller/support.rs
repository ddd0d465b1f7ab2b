//! Shared fixtures: a cluster with the CRDs, a controller with a manual
//! clock that can be stopped and restarted, and an in-test runner that keeps
//! restore data in the plan's ConfigMap.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use hibernator_core::restore::{RestoreRecord, RestoreStore, update_record};
use hibernator_core::types::{HibernatePlan, PlanPhase};
use hibernator_kube::ConfigMapRestoreStore;
use hibernator_operator::controller::metrics::Metrics;
use hibernator_operator::controller::{Context, ControllerConfig, run_controller};
use hibernator_reconcile::termination::TerminationMessage;
use hibernator_reconcile::time::Clock;
use hibernator_testkit::jobsim::{JobOutcome, JobRun};
use hibernator_testkit::kube::TestCluster;
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::Api;
use kube::api::PostParams;

/// Decides whether the in-test runner fails a (target, operation).
pub type FailFn = Arc<dyn Fn(&str, &str) -> bool + Send + Sync>;

/// A runner decision that fails nothing.
pub fn no_failures() -> FailFn {
    Arc::new(|_, _| false)
}

/// A cluster with the CRDs and the runner ServiceAccount.
pub async fn cluster(prefix: &str) -> TestCluster {
    let cluster = TestCluster::start(prefix).await.unwrap();
    for crd in hibernator_core::crd::all() {
        cluster.ensure_crd(&crd).await.unwrap();
    }
    let sa = ServiceAccount {
        metadata: kube::api::ObjectMeta {
            name: Some("hibernator-runner".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<ServiceAccount>::namespaced(cluster.client(), cluster.namespace())
        .create(&PostParams::default(), &sa)
        .await
        .unwrap();
    cluster
}

/// A running controller that can be stopped (as a crash would) and restarted.
pub struct Harness {
    pub ctx: Arc<Context>,
    pub clock: Clock,
    trigger: Option<futures::channel::mpsc::UnboundedSender<()>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Harness {
    pub fn new(cluster: &TestCluster, now: DateTime<Utc>) -> Self {
        Self::with(cluster, now, |_| {})
    }

    /// [`Harness::new`] with `customize` applied to its configuration.
    pub fn with(
        cluster: &TestCluster,
        now: DateTime<Utc>,
        customize: impl FnOnce(&mut ControllerConfig),
    ) -> Self {
        Self::with_client(cluster, cluster.client(), now, customize)
    }

    /// [`Harness::with`] talking to the API through `client` (a client
    /// with a test layer in front of the cluster's).
    pub fn with_client(
        cluster: &TestCluster,
        client: kube::Client,
        now: DateTime<Utc>,
        customize: impl FnOnce(&mut ControllerConfig),
    ) -> Self {
        let clock = Clock::manual(now);
        let mut config = ControllerConfig {
            namespace: Some(cluster.namespace().to_string()),
            clock: clock.clone(),
            error_backoff: Duration::from_millis(100),
            backoff: hibernator_core::executor::RetryPolicy {
                max_retries: 0,
                base_delay: Duration::from_millis(10),
                max_delay: Duration::from_millis(50),
                jitter: hibernator_core::executor::Jitter::None,
            },
            ..ControllerConfig::default()
        };
        customize(&mut config);
        let ctx = Arc::new(Context::new(client, config, Arc::new(Metrics::new())));
        let mut harness = Self {
            ctx,
            clock,
            trigger: None,
            stop: None,
            task: None,
        };
        harness.start();
        harness
    }

    pub fn start(&mut self) {
        let (trigger_tx, trigger) = futures::channel::mpsc::unbounded();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let ctx = self.ctx.clone();
        self.task = Some(tokio::spawn(async move {
            run_controller(ctx, trigger, async move {
                let _ = stop_rx.await;
            })
            .await;
        }));
        self.trigger = Some(trigger_tx);
        self.stop = Some(stop_tx);
    }

    /// Kills the controller at once (in-flight reconciles are dropped, as in a crash).
    pub async fn crash(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    /// Graceful stop.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
    }

    /// Moves the clock and makes every plan reconcile.
    pub fn set_time(&self, at: DateTime<Utc>) {
        self.clock.set(at);
        self.tick();
    }

    pub fn tick(&self) {
        if let Some(trigger) = &self.trigger {
            let _ = trigger.unbounded_send(());
        }
    }
}

/// Waits until the plan reaches `phase`; calls `between` on each poll.
pub async fn wait_phase(
    api: &Api<HibernatePlan>,
    name: &str,
    phase: PlanPhase,
    timeout: Duration,
) -> HibernatePlan {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let plan = api.get(name).await.unwrap();
        if plan.status.as_ref().map(|s| s.phase) == Some(phase) {
            return plan;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "plan {name} did not reach {phase:?}: {:#?}",
            plan.status
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What the in-test runner saw.
#[derive(Clone, Default)]
pub struct RunnerLog(pub Arc<Mutex<Vec<(String, String, String)>>>);

impl RunnerLog {
    pub fn runs(&self) -> Vec<(String, String, String)> {
        self.0.lock().unwrap().clone()
    }
}

/// An in-test runner: shutdown records `{"replicas": 3}` for the target in
/// the restore ConfigMap; wake-up requires it and clears it. `fail` makes a
/// target fail with a reported (final) error.
pub fn runner(
    client: kube::Client,
    log: RunnerLog,
    fail: FailFn,
) -> impl Fn(JobRun) -> BoxFuture<'static, JobOutcome> + Send + Sync + 'static {
    move |run: JobRun| {
        let client = client.clone();
        let log = log.clone();
        let fail = fail.clone();
        Box::pin(async move {
            let env = &run.env;
            let get = |k: &str| env.get(k).cloned().unwrap_or_default();
            let (plan, target, op, cycle) = (
                get("HIBERNATOR_PLAN"),
                get("HIBERNATOR_TARGET"),
                get("HIBERNATOR_OPERATION"),
                get("HIBERNATOR_CYCLE_ID"),
            );
            log.0
                .lock()
                .unwrap()
                .push((target.clone(), op.clone(), run.job_name.clone()));
            let outcome = |success: bool, message: String| JobOutcome {
                exit_code: i32::from(!success),
                message: TerminationMessage {
                    success,
                    message,
                    resources: 1,
                    attempts: 1,
                    rehibernated: None,
                }
                .to_json(),
            };
            if fail(&target, &op) {
                return outcome(false, format!("{target}: simulated failure"));
            }
            let store = ConfigMapRestoreStore::new(client, &run.namespace, &plan);
            let result = if op == "shutdown" {
                update_record(&store, &target, "ec2", |record: &mut RestoreRecord| {
                    record.merge_shutdown(
                        &cycle,
                        [(
                            format!("instance/{target}"),
                            serde_json::json!({"replicas": 3}),
                        )],
                    );
                })
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
            } else {
                match store.load(&target).await {
                    Ok(Some(v)) if !v.value.is_empty() => {
                        update_record(&store, &target, "ec2", |record: &mut RestoreRecord| {
                            let keys: Vec<String> = record.entries.keys().cloned().collect();
                            record.mark_restored(keys.iter().map(String::as_str));
                        })
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                    }
                    Ok(_) => Err(format!("no restore data for {target}")),
                    Err(e) => Err(e.to_string()),
                }
            };
            match result {
                Ok(()) => outcome(true, format!("{op} {target} done")),
                Err(e) => outcome(false, e),
            }
        })
    }
}

/// Restore entries per target in the plan's ConfigMap.
pub async fn restore_entries(
    client: &kube::Client,
    namespace: &str,
    plan: &str,
) -> BTreeMap<String, usize> {
    let store = ConfigMapRestoreStore::new(client.clone(), namespace, plan);
    store
        .load_all()
        .await
        .unwrap()
        .into_iter()
        .map(|v| (v.value.target.clone(), v.value.entries.len()))
        .collect()
}

/// A plan with `n` ec2 targets.
pub fn plan(name: &str, n: usize, strategy: &str) -> HibernatePlan {
    let targets: String = (0..n)
        .map(|i| format!("    - {{name: t{i:02}, type: ec2, connectorRef: {{kind: CloudProvider, name: aws}}, parameters: {{selector: {{tags: {{app: t{i:02}}}}}}}}}\n"))
        .collect();
    let yaml = format!(
        "apiVersion: hibernator.dev/v1alpha1\nkind: HibernatePlan\nmetadata: {{name: {name}}}\nspec:\n  schedule: {{timezone: UTC, offHours: [{{start: \"20:00\", end: \"06:00\", daysOfWeek: [MON, TUE, WED, THU, FRI]}}]}}\n  execution:\n    strategy: {strategy}\n  targets:\n{targets}"
    );
    hibernator_core::input::PlanDocuments::from_yaml(&yaml)
        .unwrap()
        .plan
}
