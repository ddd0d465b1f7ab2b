//! Operator metrics (prometheus-client), served on `/metrics`.
//!
//! Labels are bounded: operation, executor type, error category, phase, the
//! plan only as `namespace/name`, and target names only on
//! `hibernator_hibernated_seconds_total` (one series per target of a plan).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use hibernator_core::types::{Operation, PlanAccounting, PlanPhase};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use hibernator_reconcile::FinishedAttempt;
use hibernator_reconcile::accounting::{accrued_between, coverage};
use hibernator_reconcile::enforce::EnforceFinished;
use hibernator_reconcile::status::{ALL_PHASES, phase_name};

/// Labels of execution metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ExecutionLabels {
    /// `namespace/name` of the plan.
    pub plan: String,
    /// `shutdown` or `wakeup`.
    pub operation: String,
    /// Executor type.
    pub executor: String,
}

/// Labels of the enforcement metrics (drift re-enforcement while hibernated).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EnforceLabels {
    /// `namespace/name` of the plan.
    pub plan: String,
    /// Executor type.
    pub executor: String,
}

/// Labels of the enforcement check counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EnforceCheckLabels {
    /// `namespace/name` of the plan.
    pub plan: String,
    /// Executor type.
    pub executor: String,
    /// `NoDrift`, `ReHibernated` or `Failed`.
    pub result: String,
}

/// Labels of reconcile error metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// Bounded error category.
    pub category: String,
}

/// Labels of the plans-by-phase gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    /// Phase name.
    pub phase: String,
}

/// Labels of per-plan gauges.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PlanLabels {
    /// `namespace/name` of the plan.
    pub plan: String,
}

/// Labels of per-target accounting metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TargetLabels {
    /// `namespace/name` of the plan.
    pub plan: String,
    /// Target name.
    pub target: String,
}

/// Labels of the notification delivery counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NotificationLabels {
    /// Sink type: `Slack`, `Teams` or `Webhook`.
    pub sink: String,
    /// `delivered`, `retried` (an attempt failed, another follows) or
    /// `failed` (attempts used up, or a permanent error).
    pub result: String,
}

fn execution_histogram() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 2.0, 14))
}

fn reconcile_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// Every metric the controller exports.
pub struct Metrics {
    registry: Registry,
    execution_duration: Family<ExecutionLabels, Histogram, fn() -> Histogram>,
    execution_success: Family<ExecutionLabels, Counter>,
    execution_failure: Family<ExecutionLabels, Counter>,
    reconciles: Counter,
    reconcile_duration: Histogram,
    reconcile_errors: Family<ErrorLabels, Counter>,
    jobs_recreated: Counter,
    events_dropped: Counter,
    plans: Family<PhaseLabels, Gauge>,
    restore_bytes: Family<PlanLabels, Gauge>,
    next_transition: Family<PlanLabels, Gauge>,
    hibernated_seconds: Family<TargetLabels, Counter>,
    coverage: Family<PlanLabels, Gauge<f64, AtomicU64>>,
    accounted_targets: Mutex<BTreeMap<String, BTreeSet<String>>>,
    reenforcements: Family<EnforceLabels, Counter>,
    enforce_checks: Family<EnforceCheckLabels, Counter>,
    phases: Mutex<BTreeMap<String, PlanPhase>>,
    notifications: Family<NotificationLabels, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with every metric registered under the `hibernator` prefix.
    pub fn new() -> Self {
        Self::new_with(|_| {})
    }

    /// Like [`new`](Self::new), and lets `extra` register more metrics
    /// (e.g. the streaming server's `hibernator_streaming_*`) in the root
    /// registry that `/metrics` serves.
    pub fn new_with(extra: impl FnOnce(&mut Registry)) -> Self {
        let mut root = Registry::default();
        extra(&mut root);
        let registry = root.sub_registry_with_prefix("hibernator");
        let execution_duration =
            Family::<ExecutionLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                execution_histogram as fn() -> Histogram,
            );
        let execution_success = Family::<ExecutionLabels, Counter>::default();
        let execution_failure = Family::<ExecutionLabels, Counter>::default();
        let reconciles = Counter::default();
        let reconcile_duration = reconcile_histogram();
        let reconcile_errors = Family::<ErrorLabels, Counter>::default();
        let jobs_recreated = Counter::default();
        let events_dropped = Counter::default();
        let plans = Family::<PhaseLabels, Gauge>::default();
        let restore_bytes = Family::<PlanLabels, Gauge>::default();
        let next_transition = Family::<PlanLabels, Gauge>::default();
        let hibernated_seconds = Family::<TargetLabels, Counter>::default();
        let coverage = Family::<PlanLabels, Gauge<f64, AtomicU64>>::default();
        let reenforcements = Family::<EnforceLabels, Counter>::default();
        let enforce_checks = Family::<EnforceCheckLabels, Counter>::default();
        let notifications = Family::<NotificationLabels, Counter>::default();
        registry.register(
            "notifications",
            "Notification deliveries (HibernateNotification sinks) by sink type and result",
            notifications.clone(),
        );
        registry.register(
            "reenforcements",
            "Resources found awake while their plan was hibernated and put back to sleep",
            reenforcements.clone(),
        );
        registry.register(
            "enforce_checks",
            "Enforcement checks of hibernated targets (one per target and check) by result",
            enforce_checks.clone(),
        );
        registry.register(
            "execution_duration_seconds",
            "Duration of runner Jobs (one per attempt)",
            execution_duration.clone(),
        );
        registry.register(
            "execution_success",
            "Runner attempts that succeeded",
            execution_success.clone(),
        );
        registry.register(
            "execution_failure",
            "Runner attempts that failed",
            execution_failure.clone(),
        );
        registry.register(
            "reconcile",
            "Reconciles of HibernatePlans",
            reconciles.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Duration of one HibernatePlan reconcile",
            reconcile_duration.clone(),
        );
        registry.register(
            "reconcile_errors",
            "Failed reconciles by error category",
            reconcile_errors.clone(),
        );
        registry.register(
            "runner_jobs_recreated",
            "Runner Jobs recorded in a plan's status that were missing and were created again",
            jobs_recreated.clone(),
        );
        registry.register(
            "events_dropped",
            "Kubernetes Events not published because the Event queue was full (Events are best-effort)",
            events_dropped.clone(),
        );
        registry.register("plans", "HibernatePlans by phase", plans.clone());
        registry.register(
            "restore_data_bytes",
            "Size of a plan's restore ConfigMap data",
            restore_bytes.clone(),
        );
        registry.register(
            "next_transition_timestamp_seconds",
            "Unix time of a plan's next schedule transition",
            next_transition.clone(),
        );
        registry.register(
            "hibernated_seconds",
            "Seconds a plan's target was hibernated (shutdown finished to wake-up started), accrued at status writes",
            hibernated_seconds.clone(),
        );
        registry.register(
            "offhours_coverage_ratio",
            "Share of the current month's scheduled off-hours during which every target of the plan was hibernated, as of the last accrual",
            coverage.clone(),
        );
        Self {
            registry: root,
            execution_duration,
            execution_success,
            execution_failure,
            reconciles,
            reconcile_duration,
            reconcile_errors,
            jobs_recreated,
            events_dropped,
            plans,
            restore_bytes,
            next_transition,
            hibernated_seconds,
            coverage,
            accounted_targets: Mutex::new(BTreeMap::new()),
            reenforcements,
            enforce_checks,
            phases: Mutex::new(BTreeMap::new()),
            notifications,
        }
    }

    /// Records attempts that finished.
    pub fn record_finished(&self, plan: &str, attempts: &[FinishedAttempt]) {
        for attempt in attempts {
            let labels = ExecutionLabels {
                plan: plan.to_string(),
                operation: attempt.operation.as_str().to_string(),
                executor: attempt.executor.clone(),
            };
            if attempt.success {
                self.execution_success.get_or_create(&labels).inc();
            } else {
                self.execution_failure.get_or_create(&labels).inc();
            }
            if let Some(duration) = attempt.duration {
                self.execution_duration
                    .get_or_create(&labels)
                    .observe(duration.as_secs_f64());
            }
        }
    }

    /// Records enforcement checks that finished.
    pub fn record_enforced(&self, plan: &str, finished: &[EnforceFinished]) {
        for check in finished {
            self.enforce_checks
                .get_or_create(&EnforceCheckLabels {
                    plan: plan.to_string(),
                    executor: check.executor.clone(),
                    result: check.result.as_str().to_string(),
                })
                .inc();
            if check.rehibernated > 0 {
                self.reenforcements
                    .get_or_create(&EnforceLabels {
                        plan: plan.to_string(),
                        executor: check.executor.clone(),
                    })
                    .inc_by(u64::from(check.rehibernated));
            }
        }
    }

    /// Records one reconcile and its duration.
    pub fn record_reconcile(&self, duration: Duration) {
        self.reconciles.inc();
        self.reconcile_duration.observe(duration.as_secs_f64());
    }

    /// Records a failed reconcile.
    pub fn record_error(&self, category: &str) {
        self.reconcile_errors
            .get_or_create(&ErrorLabels {
                category: category.to_string(),
            })
            .inc();
    }

    /// Records a runner Job that the status recorded, that was missing, and
    /// that was created again.
    pub fn record_job_recreated(&self) {
        self.jobs_recreated.inc();
    }

    /// Records an Event dropped because the Event queue was full.
    pub fn record_event_dropped(&self) {
        self.events_dropped.inc();
    }

    /// Records one notification delivery attempt's outcome (`delivered`,
    /// `retried` or `failed`) for a sink type.
    pub fn record_notification(&self, sink: &str, result: &str) {
        self.notifications
            .get_or_create(&NotificationLabels {
                sink: sink.to_string(),
                result: result.to_string(),
            })
            .inc();
    }

    /// Records a plan's phase, restore size and next transition.
    pub fn record_plan(
        &self,
        plan: &str,
        phase: PlanPhase,
        restore_bytes: usize,
        next_transition: Option<i64>,
    ) {
        let labels = PlanLabels {
            plan: plan.to_string(),
        };
        self.restore_bytes
            .get_or_create(&labels)
            .set(i64::try_from(restore_bytes).unwrap_or(i64::MAX));
        match next_transition {
            Some(at) => {
                self.next_transition.get_or_create(&labels).set(at);
            }
            None => {
                self.next_transition.remove(&labels);
            }
        }
        self.set_phase(plan, Some(phase));
    }

    /// Records a plan's accounting after a status write: adds what was
    /// accrued from `old` to `new` to `hibernator_hibernated_seconds_total`
    /// and sets the coverage of the newest month.
    pub fn record_accounting(
        &self,
        plan: &str,
        old: Option<&PlanAccounting>,
        new: Option<&PlanAccounting>,
    ) {
        let Some(new) = new else {
            return;
        };
        let accrued = accrued_between(old, new);
        let mut known = lock(&self.accounted_targets);
        let targets = known.entry(plan.to_string()).or_default();
        for (target, seconds) in accrued {
            self.hibernated_seconds
                .get_or_create(&TargetLabels {
                    plan: plan.to_string(),
                    target: target.clone(),
                })
                .inc_by(seconds);
            targets.insert(target);
        }
        let labels = PlanLabels {
            plan: plan.to_string(),
        };
        match new.months.first().and_then(coverage) {
            Some(ratio) => {
                self.coverage.get_or_create(&labels).set(ratio);
            }
            None => {
                self.coverage.remove(&labels);
            }
        }
    }

    /// Forgets a deleted plan.
    pub fn forget_plan(&self, plan: &str) {
        let labels = PlanLabels {
            plan: plan.to_string(),
        };
        self.restore_bytes.remove(&labels);
        self.next_transition.remove(&labels);
        self.coverage.remove(&labels);
        if let Some(targets) = lock(&self.accounted_targets).remove(plan) {
            for target in targets {
                self.hibernated_seconds.remove(&TargetLabels {
                    plan: plan.to_string(),
                    target,
                });
            }
        }
        self.set_phase(plan, None);
    }

    fn set_phase(&self, plan: &str, phase: Option<PlanPhase>) {
        let mut phases = match self.phases.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        match phase {
            Some(phase) => {
                phases.insert(plan.to_string(), phase);
            }
            None => {
                phases.remove(plan);
            }
        }
        for phase in ALL_PHASES {
            let count = phases.values().filter(|p| **p == phase).count();
            self.plans
                .get_or_create(&PhaseLabels {
                    phase: phase_name(phase).to_string(),
                })
                .set(i64::try_from(count).unwrap_or(i64::MAX));
        }
    }

    /// The OpenMetrics text of every metric.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// `namespace/name` label value of a plan.
pub fn plan_key(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

/// Operation label value.
pub fn operation_label(operation: Operation) -> &'static str {
    operation.as_str()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exports_every_metric_of_the_issue() {
        let metrics = Metrics::new();
        metrics.record_finished(
            "ns/p",
            &[
                FinishedAttempt {
                    target: "a".into(),
                    executor: "ec2".into(),
                    operation: Operation::Shutdown,
                    success: true,
                    duration: Some(Duration::from_secs(3)),
                },
                FinishedAttempt {
                    target: "b".into(),
                    executor: "rds".into(),
                    operation: Operation::Wakeup,
                    success: false,
                    duration: None,
                },
            ],
        );
        metrics.record_reconcile(Duration::from_millis(4));
        metrics.record_error("kube");
        metrics.record_job_recreated();
        metrics.record_plan("ns/p", PlanPhase::Hibernated, 120, Some(1_800_000_000));
        metrics.record_plan("ns/q", PlanPhase::Hibernated, 0, None);
        let text = metrics.encode().unwrap();
        for needle in [
            "hibernator_execution_duration_seconds_count{plan=\"ns/p\",operation=\"shutdown\",executor=\"ec2\"} 1",
            "hibernator_execution_success_total{plan=\"ns/p\",operation=\"shutdown\",executor=\"ec2\"} 1",
            "hibernator_execution_failure_total{plan=\"ns/p\",operation=\"wakeup\",executor=\"rds\"} 1",
            "hibernator_reconcile_total 1",
            "hibernator_reconcile_duration_seconds_count 1",
            "hibernator_reconcile_errors_total{category=\"kube\"} 1",
            "hibernator_runner_jobs_recreated_total 1",
            "hibernator_plans{phase=\"Hibernated\"} 2",
            "hibernator_plans{phase=\"Active\"} 0",
            "hibernator_restore_data_bytes{plan=\"ns/p\"} 120",
            "hibernator_next_transition_timestamp_seconds{plan=\"ns/p\"} 1800000000",
        ] {
            assert!(text.contains(needle), "missing {needle} in\n{text}");
        }
        metrics.forget_plan("ns/q");
        let text = metrics.encode().unwrap();
        assert!(
            text.contains("hibernator_plans{phase=\"Hibernated\"} 1"),
            "{text}"
        );
    }

    #[test]
    fn accounting_metrics_count_what_was_accrued() {
        use hibernator_core::types::{MonthAccounting, TargetMonth};
        let month = |hibernated: u64, covered: u64| MonthAccounting {
            month: "2026-11".into(),
            scheduled_seconds: 7200,
            covered_seconds: covered,
            targets: vec![TargetMonth {
                target: "web".into(),
                type_: "ec2".into(),
                hibernated_seconds: hibernated,
                ..TargetMonth::default()
            }],
            ..MonthAccounting::default()
        };
        let old = PlanAccounting {
            months: vec![month(600, 600)],
            ..PlanAccounting::default()
        };
        let new = PlanAccounting {
            months: vec![month(3600, 5400)],
            ..PlanAccounting::default()
        };
        let metrics = Metrics::new();
        metrics.record_accounting("ns/p", None, Some(&old));
        metrics.record_accounting("ns/p", Some(&old), Some(&new));
        // a reconcile that wrote nothing accrues nothing
        metrics.record_accounting("ns/p", Some(&new), Some(&new));
        let text = metrics.encode().unwrap();
        for needle in [
            "hibernator_hibernated_seconds_total{plan=\"ns/p\",target=\"web\"} 3600",
            "hibernator_offhours_coverage_ratio{plan=\"ns/p\"} 0.75",
        ] {
            assert!(text.contains(needle), "missing {needle} in\n{text}");
        }
        metrics.forget_plan("ns/p");
        let text = metrics.encode().unwrap();
        assert!(!text.contains("hibernated_seconds_total{"), "{text}");
        assert!(!text.contains("coverage_ratio{"), "{text}");
    }

    #[test]
    fn enforcement_checks_and_reenforced_resources_are_counted() {
        use hibernator_core::types::EnforceResult;
        let metrics = Metrics::new();
        let check = |target: &str, result, rehibernated| EnforceFinished {
            target: target.into(),
            executor: "rds".into(),
            result,
            rehibernated,
        };
        metrics.record_enforced(
            "ns/p",
            &[
                check("db", EnforceResult::ReHibernated, 2),
                check("db2", EnforceResult::ReHibernated, 1),
                check("db3", EnforceResult::NoDrift, 0),
            ],
        );
        metrics.record_enforced("ns/p", &[check("db", EnforceResult::Failed, 0)]);
        let text = metrics.encode().unwrap();
        for needle in [
            "hibernator_reenforcements_total{plan=\"ns/p\",executor=\"rds\"} 3",
            "hibernator_enforce_checks_total{plan=\"ns/p\",executor=\"rds\",result=\"ReHibernated\"} 2",
            "hibernator_enforce_checks_total{plan=\"ns/p\",executor=\"rds\",result=\"NoDrift\"} 1",
            "hibernator_enforce_checks_total{plan=\"ns/p\",executor=\"rds\",result=\"Failed\"} 1",
        ] {
            assert!(text.contains(needle), "missing {needle} in\n{text}");
        }
    }
}
