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
