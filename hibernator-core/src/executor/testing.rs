//! Conformance kit for executor authors (feature `testing`).
//!
//! Implement [`ConformanceFixture`] for resources your executor can manage in
//! a test environment, then call [`run_conformance`]. The kit drives your
//! executor through the same [`run_shutdown`]/[`run_wakeup`] functions the
//! operator uses, with a [`MemoryRestoreStore`], and checks the restore-ledger
//! contract:
//!
//! 1. `shutdown_then_wakeup_restores_exactly`: shutdown changes the observed
//!    state and records restore entries; wake-up brings back exactly the state
//!    observed before shutdown and clears the entries;
//! 2. `repeated_shutdown_keeps_first_observation`: a second shutdown in the
//!    same cycle leaves the record as the first one wrote it;
//! 3. `hibernated_resources_are_not_reobserved`: a shutdown in a later cycle
//!    while the resources are still asleep (a failed wake-up) keeps every
//!    entry, i.e. the executor reports only resources it found awake;
//! 4. `wakeup_without_restore_data_fails`: a wake-up with no restore data
//!    fails with `missing_restore_data` and leaves the resources untouched;
//! 5. `second_wakeup_changes_nothing`: a wake-up after a successful wake-up
//!    succeeds and changes nothing;
//! 6. `enforce_rehibernates_drift_and_keeps_the_record`: for an executor
//!    that [supports enforcement](Executor::supports_enforce), resources
//!    woken up behind its back after a shutdown
//!    ([`ConformanceFixture::wake_behind_back`]) are put back to sleep by
//!    [`run_enforce`], the record is unchanged (it still holds the awake
//!    state), a second enforcement finds nothing, and a wake-up still
//!    restores the original state. For an executor without enforcement: its
//!    `enforce` fails cleanly with category `unsupported` and touches nothing;
//! 7. `enforce_touches_nothing_without_restore_data`: an enforcement with no
//!    restore record checks and changes nothing (an executor without
//!    enforcement: `run_enforce` fails with `unsupported`).
//!
//! ```ignore
//! let report = run_conformance(typed(MyExecutor::new()), &MyFixture::new()).await;
//! report.assert_passed();
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use super::{
    EnforceReport, ExecutionContext, Executor, Jitter, RetryPolicy, TargetReport, category,
    run_enforce, run_shutdown, run_wakeup,
};
use crate::restore::{MemoryRestoreStore, RestoreRecord, RestoreStore};
use crate::types::Operation;

/// Test resources the executor under test can hibernate.
#[async_trait]
pub trait ConformanceFixture: Send + Sync {
    /// Puts the fixture's resources into a known **awake** state and returns
    /// the executor parameters that select them. Called before every check,
    /// so it must also reset resources a failed check left asleep.
    async fn setup(&self) -> Result<Value, String>;

    /// A snapshot of the state the executor is responsible for restoring
    /// (e.g. `{"svc-a": {"replicas": 3}}`). Two snapshots compare equal iff
    /// the resources are in the same state.
    async fn observe(&self) -> Result<Value, String>;

    /// Wakes the fixture's resources up behind the executor's back, the way
    /// RDS starts a stopped database after 7 days or a person starts an
    /// instance by hand, without touching any restore data. Needed by the
    /// enforcement check of executors that support enforcement; the default
    /// reports that the fixture does not implement it (that check then fails).
    async fn wake_behind_back(&self) -> Result<(), String> {
        Err("the fixture does not implement ConformanceFixture::wake_behind_back, which the enforcement check of an executor supporting enforcement needs".to_string())
    }
}

/// The outcome of one check.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckResult {
    /// Check name (see the module docs).
    pub name: &'static str,
    /// `Err` says what was expected and what was seen.
    pub outcome: Result<(), String>,
}

/// The outcome of every check.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConformanceReport {
    /// Executor type under test.
    pub executor: String,
    /// One result per check, in order.
    pub checks: Vec<CheckResult>,
}

impl ConformanceReport {
    /// True when every check passed.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.outcome.is_ok())
    }

    /// The failed checks.
    pub fn failures(&self) -> impl Iterator<Item = &CheckResult> {
        self.checks.iter().filter(|c| c.outcome.is_err())
    }

    /// The result of a check by name.
    pub fn check(&self, name: &str) -> Option<&CheckResult> {
        self.checks.iter().find(|c| c.name == name)
    }

    /// Panics with the full report unless every check passed (for tests).
    #[track_caller]
    pub fn assert_passed(&self) {
        assert!(self.passed(), "{self}");
    }
}

impl fmt::Display for ConformanceReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let failed = self.failures().count();
        writeln!(
            f,
            "conformance of executor {:?}: {} of {} checks passed",
            self.executor,
            self.checks.len() - failed,
            self.checks.len()
        )?;
        for check in &self.checks {
            match &check.outcome {
                Ok(()) => writeln!(f, "  PASS {}", check.name)?,
                Err(why) => writeln!(
                    f,
                    "  FAIL {}: {}",
                    check.name,
                    why.replace('\n', "\n       ")
                )?,
            }
        }
        Ok(())
    }
}

/// Target name the kit uses in contexts and records.
pub const CONFORMANCE_TARGET: &str = "conformance-target";

/// Runs every conformance check against `executor` with `fixture`.
pub async fn run_conformance(
    executor: Arc<dyn Executor>,
    fixture: &dyn ConformanceFixture,
) -> ConformanceReport {
    let kit = Kit {
        executor: executor.as_ref(),
        fixture,
        policy: RetryPolicy {
            max_retries: 2,
            base_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(200),
            jitter: Jitter::Equal,
        },
    };
    let mut checks = Vec::new();
    let results = [
        (
            "shutdown_then_wakeup_restores_exactly",
            kit.restores_exactly().await,
        ),
        (
            "repeated_shutdown_keeps_first_observation",
            kit.repeated_shutdown().await,
        ),
        (
            "hibernated_resources_are_not_reobserved",
            kit.not_reobserved().await,
        ),
        (
            "wakeup_without_restore_data_fails",
            kit.missing_restore_data().await,
        ),
        ("second_wakeup_changes_nothing", kit.second_wakeup().await),
        (
            "enforce_rehibernates_drift_and_keeps_the_record",
            kit.enforce_drift().await,
        ),
        (
            "enforce_touches_nothing_without_restore_data",
            kit.enforce_without_record().await,
        ),
    ];
    for (name, outcome) in results {
        checks.push(CheckResult { name, outcome });
    }
    ConformanceReport {
        executor: executor.executor_type().to_string(),
        checks,
    }
}

struct Kit<'a> {
    executor: &'a dyn Executor,
    fixture: &'a dyn ConformanceFixture,
    policy: RetryPolicy,
}

fn show(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_else(|e| format!("<unprintable: {e}>"))
}

/// `Ok` when both records hold the same entries, else the failure
/// "expected {what}" with both.
fn same_entries(expected: &RestoreRecord, seen: &RestoreRecord, what: &str) -> Result<(), String> {
    if expected.entries == seen.entries {
        return Ok(());
    }
    Err(format!(
        "expected {what}\n  expected: {}\n  seen:     {}",
        show_entries(expected),
        show_entries(seen)
    ))
}

fn show_entries(r: &RestoreRecord) -> String {
    serde_json::to_string(&r.entries).unwrap_or_else(|e| format!("<unprintable: {e}>"))
}

impl Kit<'_> {
    fn ctx(&self, operation: Operation, cycle: &str) -> ExecutionContext {
        ExecutionContext::builder("conformance", CONFORMANCE_TARGET, cycle, operation)
            .timeout(Duration::from_secs(600))
            .build()
    }

    /// Sets the fixture up; returns the parameters and the awake snapshot.
    async fn setup(&self) -> Result<(Value, Value), String> {
        let params = self
            .fixture
            .setup()
            .await
            .map_err(|e| format!("fixture setup failed: {e}"))?;
        let awake = self.observe("after setup").await?;
        Ok((params, awake))
    }

    async fn observe(&self, when: &str) -> Result<Value, String> {
        self.fixture
            .observe()
            .await
            .map_err(|e| format!("fixture observe {when} failed: {e}"))
    }

    async fn shutdown(
        &self,
        store: &dyn RestoreStore,
        params: &Value,
        cycle: &str,
    ) -> Result<TargetReport, String> {
        run_shutdown(
            self.executor,
            &self.ctx(Operation::Shutdown, cycle),
            params,
            store,
            &self.policy,
        )
        .await
        .map_err(|e| format!("expected shutdown in cycle {cycle} to succeed, seen error: {e}"))
    }

    async fn wakeup(
        &self,
        store: &dyn RestoreStore,
        params: &Value,
        cycle: &str,
    ) -> Result<TargetReport, String> {
        run_wakeup(
            self.executor,
            &self.ctx(Operation::Wakeup, cycle),
            params,
            store,
            &self.policy,
        )
        .await
        .map_err(|e| format!("expected wake-up in cycle {cycle} to succeed, seen error: {e}"))
    }

    async fn record(&self, store: &dyn RestoreStore, when: &str) -> Result<RestoreRecord, String> {
        match store.load(CONFORMANCE_TARGET).await {
            Ok(Some(v)) => Ok(v.value),
            Ok(None) => Err(format!("expected a restore record {when}, seen none")),
            Err(e) => Err(format!("loading the restore record {when} failed: {e}")),
        }
    }

    async fn expect_state(&self, expected: &Value, when: &str, what: &str) -> Result<(), String> {
        let seen = self.observe(when).await?;
        if &seen == expected {
            Ok(())
        } else {
            Err(format!(
                "expected {what} {when}\n  expected: {}\n  seen:     {}",
                show(expected),
                show(&seen)
            ))
        }
    }

    async fn restores_exactly(&self) -> Result<(), String> {
        let (params, awake) = self.setup().await?;
        let store = MemoryRestoreStore::new();
        self.shutdown(&store, &params, "cycle-1").await?;
        let asleep = self.observe("after shutdown").await?;
        if asleep == awake {
            return Err(format!(
                "expected shutdown to change the fixture's resources, seen them unchanged: {}",
                show(&asleep)
            ));
        }
        let record = self.record(&store, "after shutdown").await?;
        if record.is_empty() {
            return Err(
                "expected restore entries for the hibernated resources after shutdown, seen an empty record (does shutdown return observations?)"
                    .to_string(),
            );
        }
        self.wakeup(&store, &params, "cycle-1").await?;
        self.expect_state(
            &awake,
            "after wake-up",
            "the state observed before shutdown",
        )
        .await?;
        let record = self.record(&store, "after wake-up").await?;
        if !record.is_empty() {
            return Err(format!(
                "expected every restore entry to be cleared after a successful wake-up, seen {}",
                show_entries(&record)
            ));
        }
        Ok(())
    }

    async fn repeated_shutdown(&self) -> Result<(), String> {
        let (params, awake) = self.setup().await?;
        let store = MemoryRestoreStore::new();
        self.shutdown(&store, &params, "cycle-1").await?;
        let first = self.record(&store, "after the first shutdown").await?;
        self.shutdown(&store, &params, "cycle-1").await?;
        let second = self.record(&store, "after the second shutdown").await?;
        same_entries(
            &first,
            &second,
            "the record after a second shutdown in the same cycle to equal the record after the first",
        )?;
        self.wakeup(&store, &params, "cycle-1").await?;
        self.expect_state(
            &awake,
            "after wake-up",
            "the state observed before shutdown",
        )
        .await
    }

    async fn not_reobserved(&self) -> Result<(), String> {
        let (params, awake) = self.setup().await?;
        let store = MemoryRestoreStore::new();
        self.shutdown(&store, &params, "cycle-1").await?;
        let first = self.record(&store, "after the first shutdown").await?;
        // The wake-up of cycle 1 "failed": resources are still asleep in cycle 2.
        self.shutdown(&store, &params, "cycle-2").await?;
        let second = self
            .record(&store, "after the shutdown of the next cycle")
            .await?;
        for (key, entry) in &first.entries {
            let kept = second.entry(key);
            if kept.map(|e| &e.state) != Some(&entry.state) {
                return Err(format!(
                    "expected the entry of {key}, still hibernated from an earlier cycle, to keep its awake state (report only resources found awake)\n  expected: {}\n  seen:     {}",
                    show(&entry.state),
                    kept.map_or_else(|| "no entry".to_string(), |e| show(&e.state))
                ));
            }
        }
        self.wakeup(&store, &params, "cycle-2").await?;
        self.expect_state(
            &awake,
            "after wake-up",
            "the state observed before the first shutdown",
        )
        .await
    }

    async fn missing_restore_data(&self) -> Result<(), String> {
        let (params, _awake) = self.setup().await?;
        let store = MemoryRestoreStore::new();
        self.shutdown(&store, &params, "cycle-1").await?;
        let asleep = self.observe("after shutdown").await?;
        let empty = MemoryRestoreStore::new();
        let result = run_wakeup(
            self.executor,
            &self.ctx(Operation::Wakeup, "cycle-1"),
            &params,
            &empty,
            &self.policy,
        )
        .await;
        let verdict = match result {
            Ok(_) => Err("expected a wake-up without restore data to fail with missing_restore_data, seen success".to_string()),
            Err(e) if e.category != category::MISSING_RESTORE_DATA => Err(format!(
                "expected a wake-up without restore data to fail with missing_restore_data, seen error: {e}"
            )),
            Err(_) => Ok(()),
        };
        let untouched = self
            .expect_state(
                &asleep,
                "after a wake-up without restore data",
                "resources to stay untouched",
            )
            .await;
        let cleanup = self.wakeup(&store, &params, "cycle-1").await.map(|_| ());
        verdict.and(untouched).and(cleanup)
    }

    async fn second_wakeup(&self) -> Result<(), String> {
        let (params, _awake) = self.setup().await?;
        let store = MemoryRestoreStore::new();
        self.shutdown(&store, &params, "cycle-1").await?;
        self.wakeup(&store, &params, "cycle-1").await?;
        let woken = self.observe("after the first wake-up").await?;
        run_wakeup(
            self.executor,
            &self.ctx(Operation::Wakeup, "cycle-1"),
            &params,
            &store,
            &self.policy,
        )
        .await
        .map_err(|e| format!("expected a second wake-up to succeed as a no-op, seen error: {e}"))?;
        self.expect_state(&woken, "after a second wake-up", "nothing to change")
            .await
    }

    async fn enforce(
        &self,
        store: &dyn RestoreStore,
        params: &Value,
        when: &str,
    ) -> Result<EnforceReport, String> {
        run_enforce(
            self.executor,
            &self.ctx(Operation::Shutdown, "cycle-1"),
            params,
            store,
            &self.policy,
        )
        .await
        .map_err(|e| format!("expected enforcement {when} to succeed, seen error: {e}"))
    }

    /// An executor without enforcement: `enforce` fails with `unsupported`
    /// and leaves the awake resources as they are.
    async fn enforce_unsupported(&self) -> Result<(), String> {
        let (params, awake) = self.setup().await?;
        let ctx = self.ctx(Operation::Shutdown, "cycle-1");
        let record = RestoreRecord::new(CONFORMANCE_TARGET, self.executor.executor_type());
        let verdict = match self.executor.enforce(&ctx, &params, &record).await {
            Ok(_) => Err("the executor does not support enforcement (supports_enforce() is false) but its enforce succeeded: set SUPPORTS_ENFORCE / supports_enforce() to true, or leave enforce unimplemented".to_string()),
            Err(e) if e.category != category::UNSUPPORTED => Err(format!(
                "expected enforce of an executor without enforcement to fail with category unsupported, seen error: {e}"
            )),
            Err(_) => Ok(()),
        };
        let untouched = self
            .expect_state(
                &awake,
                "after an unsupported enforcement",
                "resources to stay untouched",
            )
            .await;
        verdict.and(untouched)
    }

    async fn enforce_drift(&self) -> Result<(), String> {
        if !self.executor.supports_enforce() {
            return self.enforce_unsupported().await;
        }
        let (params, awake) = self.setup().await?;
        let store = MemoryRestoreStore::new();
        self.shutdown(&store, &params, "cycle-1").await?;
        let asleep = self.observe("after shutdown").await?;
        let before = self.record(&store, "after shutdown").await?;
        self.fixture
            .wake_behind_back()
            .await
            .map_err(|e| format!("fixture wake_behind_back failed: {e}"))?;
        let drifted = self
            .observe("after waking resources behind the executor's back")
            .await?;
        if drifted == asleep {
            return Err(format!(
                "expected the fixture's wake_behind_back to change the hibernated resources, seen them unchanged: {}",
                show(&drifted)
            ));
        }
        let report = self.enforce(&store, &params, "after drift").await?;
        if report.rehibernated.is_empty() {
            return Err(
                "expected enforcement to report the resources it put back to sleep, seen none"
                    .to_string(),
            );
        }
        self.expect_state(
            &asleep,
            "after enforcement",
            "the hibernated state observed after shutdown",
        )
        .await?;
        let after = self.record(&store, "after enforcement").await?;
        same_entries(
            &before,
            &after,
            "enforcement to leave the restore record unchanged (entries keep the last known awake state)",
        )?;
        let again = self.enforce(&store, &params, "a second time").await?;
        if !again.rehibernated.is_empty() {
            return Err(format!(
                "expected a second enforcement to find nothing awake, seen it put {:?} back to sleep",
                again.rehibernated
            ));
        }
        self.wakeup(&store, &params, "cycle-1").await?;
        self.expect_state(
            &awake,
            "after wake-up",
            "the state observed before shutdown",
        )
        .await
    }

    async fn enforce_without_record(&self) -> Result<(), String> {
        let (params, awake) = self.setup().await?;
        let empty = MemoryRestoreStore::new();
        let result = run_enforce(
            self.executor,
            &self.ctx(Operation::Shutdown, "cycle-1"),
            &params,
            &empty,
            &self.policy,
        )
        .await;
        let verdict = match (self.executor.supports_enforce(), result) {
            (true, Ok(report)) if report.checked.is_empty() && report.rehibernated.is_empty() => {
                Ok(())
            }
            (true, Ok(report)) => Err(format!(
                "expected an enforcement without restore data to check nothing, seen checked {:?}, re-hibernated {:?}",
                report.checked, report.rehibernated
            )),
            (true, Err(e)) => Err(format!(
                "expected an enforcement without restore data to succeed as a no-op, seen error: {e}"
            )),
            (false, Err(e)) if e.category == category::UNSUPPORTED => Ok(()),
            (false, other) => Err(format!(
                "expected run_enforce of an executor without enforcement to fail with category unsupported, seen {other:?}"
            )),
        };
        let untouched = self
            .expect_state(
                &awake,
                "after an enforcement without restore data",
                "resources to stay untouched",
            )
            .await;
        verdict.and(untouched)
    }
}
