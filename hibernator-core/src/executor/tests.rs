//! Tests of the typed adapter, the registry and the run functions.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use super::*;
use crate::restore::{MemoryRestoreStore, RestoreStore};
use crate::types::Operation;

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct FleetParams {
    resources: Vec<String>,
}

impl ValidateParameters for FleetParams {
    fn validate(&self, field: &str, d: &mut Diagnostics) {
        if self.resources.is_empty() {
            d.error(format!("{field}.resources"), "list at least one resource");
        }
    }
}

/// Resources with a size; asleep means size 0.
#[derive(Default)]
struct Fleet {
    sizes: Mutex<BTreeMap<String, u64>>,
    fail_wakeup: Mutex<BTreeSet<String>>,
    transient_shutdown_failures: AtomicU32,
    fail_after_first_change: bool,
    hang_until_cancelled: bool,
    shutdown_calls: AtomicU32,
    wakeup_calls: AtomicU32,
}

impl Fleet {
    fn with(sizes: &[(&str, u64)]) -> Self {
        let fleet = Self::default();
        *fleet.sizes.lock().unwrap() = sizes.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        fleet
    }

    fn size(&self, name: &str) -> u64 {
        self.sizes.lock().unwrap()[name]
    }
}

#[async_trait]
impl TypedExecutor for Fleet {
    const TYPE: &'static str = "fleet";
    type Params = FleetParams;

    async fn shutdown(
        &self,
        ctx: &ExecutionContext,
        params: &FleetParams,
    ) -> Result<ShutdownOutcome, ExecutorError> {
        self.shutdown_calls.fetch_add(1, Ordering::SeqCst);
        if self.hang_until_cancelled {
            ctx.cancellation().cancelled().await;
            return Err(ExecutorError::cancelled());
        }
        if self
            .transient_shutdown_failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(ExecutorError::transient(
                category::THROTTLED,
                "rate exceeded",
            ));
        }
        let mut outcome = ShutdownOutcome::default();
        for name in &params.resources {
            ctx.check_cancelled()?;
            let key = format!("res/{name}");
            outcome.resources.push(key.clone());
            let size = self.size(name);
            if size == 0 {
                continue;
            }
            ctx.record_awake_state(&key, json!({"size": size}));
            self.sizes.lock().unwrap().insert(name.clone(), 0);
            if self.fail_after_first_change {
                return Err(ExecutorError::permanent(
                    category::INTERNAL,
                    "crashed half way",
                ));
            }
            outcome.observations.insert(key, json!({"size": size}));
        }
        Ok(outcome)
    }

    async fn wakeup(
        &self,
        _ctx: &ExecutionContext,
        _params: &FleetParams,
        record: &RestoreRecord,
    ) -> Result<WakeupOutcome, ExecutorError> {
        self.wakeup_calls.fetch_add(1, Ordering::SeqCst);
        let mut outcome = WakeupOutcome::default();
        for (key, entry) in &record.entries {
            let name = key.trim_start_matches("res/");
            if self.fail_wakeup.lock().unwrap().contains(name) {
                outcome.failed.insert(key.clone(), "quota exceeded".into());
                continue;
            }
            let size = entry.state["size"].as_u64().unwrap();
            self.sizes.lock().unwrap().insert(name.to_string(), size);
            outcome.restored.push(key.clone());
        }
        Ok(outcome)
    }

    const SUPPORTS_ENFORCE: bool = true;

    async fn enforce(
        &self,
        _ctx: &ExecutionContext,
        _params: &FleetParams,
        record: &RestoreRecord,
    ) -> Result<EnforceOutcome, ExecutorError> {
        let mut outcome = EnforceOutcome::default();
        for key in record.entries.keys() {
            let name = key.trim_start_matches("res/").to_string();
            outcome.checked.push(key.clone());
            let mut sizes = self.sizes.lock().unwrap();
            if sizes.get(&name).copied().unwrap_or(0) > 0 {
                sizes.insert(name, 0);
                outcome.rehibernated.push(key.clone());
            }
        }
        Ok(outcome)
    }
}

/// [`Fleet`] without enforcement (the trait's defaults).
struct Plain(Fleet);

#[async_trait]
impl TypedExecutor for Plain {
    const TYPE: &'static str = "plain";
    type Params = FleetParams;

    async fn shutdown(
        &self,
        ctx: &ExecutionContext,
        params: &FleetParams,
    ) -> Result<ShutdownOutcome, ExecutorError> {
        TypedExecutor::shutdown(&self.0, ctx, params).await
    }

    async fn wakeup(
        &self,
        ctx: &ExecutionContext,
        params: &FleetParams,
        record: &RestoreRecord,
    ) -> Result<WakeupOutcome, ExecutorError> {
        TypedExecutor::wakeup(&self.0, ctx, params, record).await
    }
}

fn ctx(operation: Operation, cycle: &str) -> ExecutionContext {
    ExecutionContext::builder("dev", "web", cycle, operation).build()
}

fn params() -> serde_json::Value {
    json!({"resources": ["a", "b", "c"]})
}

fn quick() -> RetryPolicy {
    RetryPolicy {
        max_retries: 3,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(4),
        jitter: Jitter::Full,
    }
}

#[tokio::test]
async fn typed_adapter_rejects_invalid_parameters_naming_the_field() {
    let exec = typed(Fleet::with(&[("a", 1)]));
    let c = ctx(Operation::Shutdown, "c1");
    let err = exec
        .shutdown(&c, &json!({"resources": "a"}))
        .await
        .unwrap_err();
    assert_eq!(
        (err.class, err.category),
        (ErrorClass::Permanent, category::INVALID_PARAMETERS)
    );
    assert!(err.message.starts_with("parameters.resources"), "{err}");
    let err = exec
        .shutdown(&c, &json!({"resources": []}))
        .await
        .unwrap_err();
    assert!(
        err.message
            .contains("parameters.resources: list at least one"),
        "{err}"
    );
    let err = exec
        .shutdown(&c, &serde_json::Value::Null)
        .await
        .unwrap_err();
    assert!(err.message.contains("resources"), "{err}");
}

#[test]
fn a_typed_executor_checks_its_parameters_for_validation() {
    let executor = typed(Fleet::default());
    assert_eq!(executor.executor_type(), "fleet");
    let check = executor.parameter_check();
    assert_eq!(check.executor_type(), "fleet");
    let d = check.check(
        Some(&json!({"resources": ["a"], "extra": 1})),
        "spec.targets[0].parameters",
    );
    assert!(d.is_valid());
    assert_eq!(d.warnings[0].field, "spec.targets[0].parameters.extra");
}

#[tokio::test]
async fn shutdown_then_wakeup_restores_and_empties_the_record() {
    let fleet = Typed(Fleet::with(&[("a", 3), ("b", 0), ("c", 5)]));
    let store = MemoryRestoreStore::new();
    let report = run_shutdown(
        &fleet,
        &ctx(Operation::Shutdown, "c1"),
        &params(),
        &store,
        &quick(),
    )
    .await
    .unwrap();
    assert_eq!(report.recorded, ["res/a", "res/c"]);
    assert_eq!(report.resources.len(), 3);
    assert_eq!(report.pending_entries, 2);
    assert_eq!(fleet.0.size("a"), 0);
    let record = store.load("web").await.unwrap().unwrap().value;
    assert_eq!(record.executor, "fleet");
    assert_eq!(record.entry("res/a").unwrap().state, json!({"size": 3}));

    let report = run_wakeup(
        &fleet,
        &ctx(Operation::Wakeup, "c2"),
        &params(),
        &store,
        &quick(),
    )
    .await
    .unwrap();
    assert_eq!(report.resources, ["res/a", "res/c"]);
    assert_eq!(report.pending_entries, 0);
    assert_eq!(
        (fleet.0.size("a"), fleet.0.size("b"), fleet.0.size("c")),
        (3, 0, 5)
    );
    assert!(store.load("web").await.unwrap().unwrap().value.is_empty());

    // A second wake-up is a no-op, not an error.
    run_wakeup(
        &fleet,
        &ctx(Operation::Wakeup, "c2"),
        &params(),
        &store,
        &quick(),
    )
    .await
    .unwrap();
    assert_eq!(fleet.0.size("a"), 3);
}

#[tokio::test]
async fn rerun_of_shutdown_in_the_same_cycle_keeps_the_first_observation() {
    let fleet = Typed(Fleet::with(&[("a", 3), ("b", 2), ("c", 1)]));
    let store = MemoryRestoreStore::new();
    let c = ctx(Operation::Shutdown, "c1");
    run_shutdown(&fleet, &c, &params(), &store, &quick())
        .await
        .unwrap();
    let first = store.load("web").await.unwrap().unwrap().value;
    let report = run_shutdown(&fleet, &c, &params(), &store, &quick())
        .await
        .unwrap();
    assert!(report.recorded.is_empty());
    let second = store.load("web").await.unwrap().unwrap().value;
    assert_eq!(first.entries, second.entries);
}

#[tokio::test]
async fn wakeup_without_record_fails_without_calling_the_executor() {
    let fleet = Typed(Fleet::with(&[("a", 0)]));
    let store = MemoryRestoreStore::new();
    let err = run_wakeup(
        &fleet,
        &ctx(Operation::Wakeup, "c1"),
        &params(),
        &store,
        &quick(),
    )
    .await
    .unwrap_err();
    assert_eq!(
        (err.class, err.category),
        (ErrorClass::Permanent, category::MISSING_RESTORE_DATA)
    );
    assert!(err.message.contains("\"web\""), "{err}");
    assert_eq!(fleet.0.wakeup_calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn partial_restore_keeps_failed_entries_for_the_next_cycle() {
    let fleet = Typed(Fleet::with(&[("a", 3), ("b", 2), ("c", 1)]));
    let store = MemoryRestoreStore::new();
    run_shutdown(
        &fleet,
        &ctx(Operation::Shutdown, "c1"),
        &params(),
        &store,
        &quick(),
    )
    .await
    .unwrap();
    fleet.0.fail_wakeup.lock().unwrap().insert("b".into());
    let err = run_wakeup(
        &fleet,
        &ctx(Operation::Wakeup, "c1w"),
        &params(),
        &store,
        &quick(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.category, category::PARTIAL_RESTORE);
    assert_eq!(err.resource.as_deref(), Some("res/b"));
    assert!(err.message.contains("res/b: quota exceeded"), "{err}");
    // Retries got a record holding only `b`.
    assert_eq!(fleet.0.wakeup_calls.load(Ordering::SeqCst), 4);
    let record = store.load("web").await.unwrap().unwrap().value;
    assert_eq!(record.entries.keys().collect::<Vec<_>>(), ["res/b"]);
    assert_eq!(
        (fleet.0.size("a"), fleet.0.size("b"), fleet.0.size("c")),
        (3, 0, 1)
    );

    // Next cycle: `a` and `c` are awake again and re-observed; `b` is still
    // asleep, so its entry from c1 (its awake state) must survive.
    run_shutdown(
        &fleet,
        &ctx(Operation::Shutdown, "c2"),
        &params(),
        &store,
        &quick(),
    )
    .await
    .unwrap();
    let record = store.load("web").await.unwrap().unwrap().value;
    assert_eq!(record.entry("res/b").unwrap().cycle_id, "c1");
    assert_eq!(record.entry("res/b").unwrap().state, json!({"size": 2}));
    assert_eq!(record.entry("res/a").unwrap().cycle_id, "c2");

    fleet.0.fail_wakeup.lock().unwrap().clear();
    run_wakeup(
        &fleet,
        &ctx(Operation::Wakeup, "c2w"),
        &params(),
        &store,
        &quick(),
    )
    .await
    .unwrap();
    assert_eq!(
        (fleet.0.size("a"), fleet.0.size("b"), fleet.0.size("c")),
        (3, 2, 1)
    );
}

#[tokio::test]
async fn transient_shutdown_errors_are_retried() {
    let fleet = Typed(Fleet::with(&[("a", 3), ("b", 2), ("c", 1)]));
    fleet
        .0
        .transient_shutdown_failures
        .store(2, Ordering::SeqCst);
    let store = MemoryRestoreStore::new();
    let report = run_shutdown(
        &fleet,
        &ctx(Operation::Shutdown, "c1"),
        &params(),
        &store,
        &quick(),
    )
    .await
    .unwrap();
    assert_eq!(report.attempts, 3);
    assert_eq!(report.recorded.len(), 3);
}

#[tokio::test]
async fn failed_shutdown_still_saves_recorded_awake_states() {
    let mut fleet = Fleet::with(&[("a", 3), ("b", 2), ("c", 1)]);
    fleet.fail_after_first_change = true;
    let fleet = Typed(fleet);
    let store = MemoryRestoreStore::new();
    let err = run_shutdown(
        &fleet,
        &ctx(Operation::Shutdown, "c1"),
        &params(),
        &store,
        &quick(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.message, "crashed half way");
    let record = store.load("web").await.unwrap().unwrap().value;
    assert_eq!(record.entry("res/a").unwrap().state, json!({"size": 3}));
}

#[tokio::test]
async fn failed_shutdown_without_changes_writes_nothing() {
    let fleet = Typed(Fleet::with(&[("a", 3)]));
    fleet
        .0
        .transient_shutdown_failures
        .store(10, Ordering::SeqCst);
    let store = MemoryRestoreStore::new();
    let err = run_shutdown(
        &fleet,
        &ctx(Operation::Shutdown, "c1"),
        &params(),
        &store,
        &RetryPolicy::no_retry(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.category, category::THROTTLED);
    assert!(store.load("web").await.unwrap().is_none());
}

#[tokio::test(start_paused = true)]
async fn deadline_cancels_the_executor_and_times_out() {
    let mut fleet = Fleet::with(&[("a", 3)]);
    fleet.hang_until_cancelled = true;
    let fleet = Typed(fleet);
    let store = MemoryRestoreStore::new();
    let c = ExecutionContext::builder("dev", "web", "c1", Operation::Shutdown)
        .timeout(Duration::from_secs(600))
        .build();
    let err = run_shutdown(&fleet, &c, &params(), &store, &quick())
        .await
        .unwrap_err();
    assert_eq!(err.category, category::TIMEOUT);
    assert!(err.message.contains("shutdown of target web"), "{err}");
    assert_eq!(fleet.0.shutdown_calls.load(Ordering::SeqCst), 1);
    // The caller's own token is not cancelled by the deadline.
    assert!(!c.is_cancelled());
}

#[tokio::test]
async fn cancelled_context_runs_nothing() {
    let fleet = Typed(Fleet::with(&[("a", 3)]));
    let store = MemoryRestoreStore::new();
    let c = ctx(Operation::Shutdown, "c1");
    c.cancellation().cancel();
    let err = run_shutdown(&fleet, &c, &params(), &store, &quick())
        .await
        .unwrap_err();
    assert_eq!(err.category, category::CANCELLED);
    assert_eq!(fleet.0.shutdown_calls.load(Ordering::SeqCst), 0);
    assert_eq!(fleet.0.size("a"), 3);
}

#[tokio::test]
async fn wrong_operation_is_rejected() {
    let fleet = Typed(Fleet::with(&[("a", 3)]));
    let store = MemoryRestoreStore::new();
    let err = run_wakeup(
        &fleet,
        &ctx(Operation::Shutdown, "c1"),
        &params(),
        &store,
        &quick(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.category, category::INTERNAL);
}

#[tokio::test]
async fn entries_the_executor_ignores_count_as_failed() {
    let fleet = Typed(Fleet::with(&[("a", 3)]));
    let store = MemoryRestoreStore::new();
    let mut record = RestoreRecord::new("web", "fleet");
    record.merge_shutdown(
        "c1",
        [
            ("res/a".to_string(), json!({"size": 3})),
            ("other/x".to_string(), json!({})),
        ],
    );
    store.save(&record, None).await.unwrap();
    // An executor that silently skips keys it does not recognise.
    struct Skipper(Typed<Fleet>);
    #[async_trait]
    impl Executor for Skipper {
        fn executor_type(&self) -> &str {
            "fleet"
        }
        fn parameter_check(&self) -> Arc<dyn ParameterCheck> {
            self.0.parameter_check()
        }
        async fn shutdown(
            &self,
            ctx: &ExecutionContext,
            p: &serde_json::Value,
        ) -> Result<ShutdownOutcome, ExecutorError> {
            self.0.shutdown(ctx, p).await
        }
        async fn wakeup(
            &self,
            _ctx: &ExecutionContext,
            _p: &serde_json::Value,
            record: &RestoreRecord,
        ) -> Result<WakeupOutcome, ExecutorError> {
            Ok(WakeupOutcome {
                restored: record
                    .entries
                    .keys()
                    .filter(|k| k.starts_with("res/"))
                    .cloned()
                    .collect(),
                failed: BTreeMap::new(),
            })
        }
    }
    let err = run_wakeup(
        &Skipper(fleet),
        &ctx(Operation::Wakeup, "c1"),
        &params(),
        &store,
        &RetryPolicy::no_retry(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.category, category::PARTIAL_RESTORE);
    assert!(
        err.message
            .contains("other/x: the executor reported neither"),
        "{err}"
    );
    let left = store.load("web").await.unwrap().unwrap().value;
    assert_eq!(left.entries.keys().collect::<Vec<_>>(), ["other/x"]);
}

#[test]
fn run_futures_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    let fleet = Typed(Fleet::default());
    let store = MemoryRestoreStore::new();
    let c = ctx(Operation::Shutdown, "c1");
    let p = params();
    let policy = RetryPolicy::default();
    let shutdown = run_shutdown(&fleet, &c, &p, &store, &policy);
    assert_send(&shutdown);
    let wakeup = run_wakeup(&fleet, &c, &p, &store, &policy);
    assert_send(&wakeup);
}

#[tokio::test]
async fn enforce_rehibernates_only_recorded_resources_and_never_writes_the_record() {
    let fleet = Arc::new(Fleet::with(&[("a", 3), ("b", 0), ("c", 2), ("x", 0)]));
    let executor = Typed(ArcFleet(fleet.clone()));
    let store = MemoryRestoreStore::new();
    run_shutdown(
        &executor,
        &ctx(Operation::Shutdown, "c1"),
        &params(),
        &store,
        &quick(),
    )
    .await
    .unwrap();
    let before = store.load("web").await.unwrap().unwrap().value;
    assert_eq!(before.entries.len(), 2, "a and c were awake");
    // Drift: a and b (b was asleep before shutdown, so it has no entry) and x
    // (not in the plan at all) are started behind the plan's back.
    for (name, size) in [("a", 5), ("b", 1), ("x", 7)] {
        fleet.sizes.lock().unwrap().insert(name.into(), size);
    }
    let report = run_enforce(
        &executor,
        &ctx(Operation::Shutdown, "c1"),
        &params(),
        &store,
        &quick(),
    )
    .await
    .unwrap();
    assert_eq!(report.rehibernated, vec!["res/a".to_string()]);
    assert_eq!(
        report.checked,
        vec!["res/a".to_string(), "res/c".to_string()]
    );
    assert_eq!(
        (fleet.size("a"), fleet.size("b"), fleet.size("x")),
        (0, 1, 7)
    );
    let after = store.load("web").await.unwrap().unwrap().value;
    assert_eq!(
        after, before,
        "the record keeps the awake state of a (3, not 5)"
    );
    // wake-up restores the last known awake state
    run_wakeup(
        &executor,
        &ctx(Operation::Wakeup, "c1"),
        &params(),
        &store,
        &quick(),
    )
    .await
    .unwrap();
    assert_eq!(fleet.size("a"), 3);
    // with the record empty, enforcement checks nothing and touches nothing
    fleet.sizes.lock().unwrap().insert("c".into(), 9);
    let report = run_enforce(
        &executor,
        &ctx(Operation::Shutdown, "c1"),
        &params(),
        &store,
        &quick(),
    )
    .await
    .unwrap();
    assert!(report.checked.is_empty() && report.rehibernated.is_empty());
    assert_eq!(fleet.size("c"), 9);
}

/// Shares a [`Fleet`] between the executor and the test.
struct ArcFleet(Arc<Fleet>);

#[async_trait]
impl TypedExecutor for ArcFleet {
    const TYPE: &'static str = "fleet";
    type Params = FleetParams;
    const SUPPORTS_ENFORCE: bool = true;

    async fn shutdown(
        &self,
        ctx: &ExecutionContext,
        params: &FleetParams,
    ) -> Result<ShutdownOutcome, ExecutorError> {
        TypedExecutor::shutdown(self.0.as_ref(), ctx, params).await
    }

    async fn wakeup(
        &self,
        ctx: &ExecutionContext,
        params: &FleetParams,
        record: &RestoreRecord,
    ) -> Result<WakeupOutcome, ExecutorError> {
        TypedExecutor::wakeup(self.0.as_ref(), ctx, params, record).await
    }

    async fn enforce(
        &self,
        ctx: &ExecutionContext,
        params: &FleetParams,
        record: &RestoreRecord,
    ) -> Result<EnforceOutcome, ExecutorError> {
        TypedExecutor::enforce(self.0.as_ref(), ctx, params, record).await
    }
}

#[tokio::test]
async fn enforce_of_an_executor_without_support_fails_cleanly_and_a_foreign_key_is_refused() {
    let plain = typed(Plain(Fleet::with(&[("a", 3), ("b", 1), ("c", 1)])));
    assert!(!plain.supports_enforce());
    assert!(typed(Fleet::default()).supports_enforce());
    let store = MemoryRestoreStore::new();
    run_shutdown(
        plain.as_ref(),
        &ctx(Operation::Shutdown, "c1"),
        &params(),
        &store,
        &quick(),
    )
    .await
    .unwrap();
    let error = run_enforce(
        plain.as_ref(),
        &ctx(Operation::Shutdown, "c1"),
        &params(),
        &store,
        &quick(),
    )
    .await
    .unwrap_err();
    assert_eq!(error.category, category::UNSUPPORTED);
    assert!(!error.is_transient());
    assert!(error.message.contains("plain"), "{error}");

    // An executor reporting a resource outside the record violates the contract.
    struct Rogue;
    #[async_trait]
    impl Executor for Rogue {
        fn executor_type(&self) -> &str {
            "rogue"
        }
        fn parameter_check(&self) -> Arc<dyn ParameterCheck> {
            Arc::new(TypedParameters::<FleetParams>::new("rogue"))
        }
        async fn shutdown(
            &self,
            _: &ExecutionContext,
            _: &serde_json::Value,
        ) -> Result<ShutdownOutcome, ExecutorError> {
            Ok(ShutdownOutcome::default())
        }
        async fn wakeup(
            &self,
            _: &ExecutionContext,
            _: &serde_json::Value,
            _: &RestoreRecord,
        ) -> Result<WakeupOutcome, ExecutorError> {
            Ok(WakeupOutcome::default())
        }
        fn supports_enforce(&self) -> bool {
            true
        }
        async fn enforce(
            &self,
            _: &ExecutionContext,
            _: &serde_json::Value,
            _: &RestoreRecord,
        ) -> Result<EnforceOutcome, ExecutorError> {
            Ok(EnforceOutcome {
                checked: vec![],
                rehibernated: vec!["res/not-mine".into()],
            })
        }
    }
    let store = MemoryRestoreStore::new();
    crate::restore::update_record(&store, "web", "rogue", |r| {
        r.merge_shutdown("c1", [("res/a".to_string(), json!({"size": 1}))]);
    })
    .await
    .unwrap();
    let error = run_enforce(
        &Rogue,
        &ctx(Operation::Shutdown, "c1"),
        &params(),
        &store,
        &quick(),
    )
    .await
    .unwrap_err();
    assert_eq!(error.category, category::INTERNAL);
    assert_eq!(error.resource.as_deref(), Some("res/not-mine"));
}

#[cfg(feature = "testing")]
mod kit {
    use super::*;
    use crate::executor::testing::{ConformanceFixture, run_conformance};

    struct FleetFixture(Arc<Fleet>);

    #[async_trait]
    impl ConformanceFixture for FleetFixture {
        async fn setup(&self) -> Result<serde_json::Value, String> {
            *self.0.sizes.lock().unwrap() = [
                ("a".to_string(), 3),
                ("b".to_string(), 1),
                ("c".to_string(), 2),
            ]
            .into();
            Ok(params())
        }
        async fn observe(&self) -> Result<serde_json::Value, String> {
            Ok(json!(*self.0.sizes.lock().unwrap()))
        }
        async fn wake_behind_back(&self) -> Result<(), String> {
            self.0.sizes.lock().unwrap().insert("b".into(), 4);
            Ok(())
        }
    }

    #[tokio::test]
    async fn the_kit_passes_an_enforcing_executor_and_one_without_enforcement() {
        let fleet = Arc::new(Fleet::default());
        let report =
            run_conformance(typed(ArcFleet(fleet.clone())), &FleetFixture(fleet.clone())).await;
        report.assert_passed();
        assert_eq!(report.checks.len(), 7);
        let report = run_conformance(
            typed(Plain(Fleet::with(&[("a", 3), ("b", 1), ("c", 2)]))),
            &FleetFixture(Arc::new(Fleet::default())),
        )
        .await;
        // Plain acts on its own fleet, which the fixture does not see: only
        // the enforcement checks are meaningful here.
        for name in [
            "enforce_rehibernates_drift_and_keeps_the_record",
            "enforce_touches_nothing_without_restore_data",
        ] {
            assert_eq!(
                report.check(name).map(|c| c.outcome.clone()),
                Some(Ok(())),
                "{report}"
            );
        }
    }

    /// An enforcing executor whose enforce does nothing fails the kit.
    struct Lazy(Arc<Fleet>);

    #[async_trait]
    impl TypedExecutor for Lazy {
        const TYPE: &'static str = "lazy";
        type Params = FleetParams;
        const SUPPORTS_ENFORCE: bool = true;

        async fn shutdown(
            &self,
            ctx: &ExecutionContext,
            params: &FleetParams,
        ) -> Result<ShutdownOutcome, ExecutorError> {
            TypedExecutor::shutdown(self.0.as_ref(), ctx, params).await
        }

        async fn wakeup(
            &self,
            ctx: &ExecutionContext,
            params: &FleetParams,
            record: &RestoreRecord,
        ) -> Result<WakeupOutcome, ExecutorError> {
            TypedExecutor::wakeup(self.0.as_ref(), ctx, params, record).await
        }

        async fn enforce(
            &self,
            _: &ExecutionContext,
            _: &FleetParams,
            record: &RestoreRecord,
        ) -> Result<EnforceOutcome, ExecutorError> {
            Ok(EnforceOutcome {
                checked: record.entries.keys().cloned().collect(),
                rehibernated: Vec::new(),
            })
        }
    }

    #[tokio::test]
    async fn the_kit_fails_an_executor_that_does_not_rehibernate() {
        let fleet = Arc::new(Fleet::default());
        let report = run_conformance(typed(Lazy(fleet.clone())), &FleetFixture(fleet)).await;
        let check = report
            .check("enforce_rehibernates_drift_and_keeps_the_record")
            .unwrap();
        assert!(check.outcome.is_err(), "{report}");
    }
}
