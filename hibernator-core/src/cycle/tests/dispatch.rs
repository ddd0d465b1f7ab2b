//! Dispatch order, concurrency, failure modes and retries.

use std::sync::Arc;

use super::*;

#[tokio::test(start_paused = true)]
async fn dag_order_is_respected_in_both_directions() {
    let lab = Lab::with(&[("a", 1), ("b", 2), ("c", 3), ("d", 4)]);
    let plan = plan(
        "{type: DAG, dependencies: [{from: a, to: b}, {from: a, to: c}, {from: b, to: d}, {from: c, to: d}]}",
        "Strict",
        &[
            ("d", res("d")),
            ("c", res("c")),
            ("b", res("b")),
            ("a", res("a")),
        ],
    );
    let store: Arc<dyn RestoreStore> = Arc::new(MemoryRestoreStore::new());
    let (summary, _) = run(
        &plan,
        Operation::Shutdown,
        &lab,
        store.clone(),
        CycleControl::new(),
    )
    .await;
    assert!(summary.success, "{summary:?}");
    for (parent, child) in [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")] {
        assert!(lab.at(&format!("end:{parent}")) < lab.at(&format!("start:{child}")));
    }
    // b and c overlap: readiness is per dependency, not per level.
    assert!(lab.at("start:c") < lab.at("end:b") && lab.at("start:b") < lab.at("end:c"));
    assert_eq!(lab.size("d"), 0);

    lab.journal.lock().unwrap().clear();
    let (wake, _) = run(&plan, Operation::Wakeup, &lab, store, CycleControl::new()).await;
    assert!(wake.success, "{wake:?}");
    for (parent, child) in [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")] {
        assert!(lab.at(&format!("end:{child}")) < lab.at(&format!("start:{parent}")));
    }
    assert_eq!(
        ["a", "b", "c", "d"].map(|n| lab.size(n)),
        [1, 2, 3, 4],
        "every resource restored"
    );
}

#[tokio::test(start_paused = true)]
async fn concurrency_bound_is_respected() {
    let names = ["t1", "t2", "t3", "t4", "t5", "t6"];
    let lab = Lab::with(&names.map(|n| (n, 1)));
    let targets: Vec<_> = names.iter().map(|n| (*n, res(n))).collect();
    let plan = plan("{type: Parallel, maxConcurrency: 2}", "Strict", &targets);
    let (summary, events) = run(
        &plan,
        Operation::Shutdown,
        &lab,
        Arc::new(MemoryRestoreStore::new()),
        CycleControl::new(),
    )
    .await;
    assert!(summary.success);
    assert_eq!(lab.max_running(), 2);
    let started = events
        .iter()
        .filter(|e| matches!(e, CycleEvent::Started { .. }))
        .count();
    assert_eq!(started, 6);
    assert!(summary.targets.iter().all(|t| t.resources.len() == 1));
}

#[tokio::test(start_paused = true)]
async fn strict_stops_dispatching_after_a_failure() {
    let lab = Lab::with(&[("a", 1), ("b", 1), ("c", 1)]);
    let broken = serde_json::json!({"resources": ["b"], "permanent": true});
    let plan = plan(
        "{type: Sequential}",
        "Strict",
        &[("a", res("a")), ("b", broken), ("c", res("c"))],
    );
    let (summary, events) = run(
        &plan,
        Operation::Shutdown,
        &lab,
        Arc::new(MemoryRestoreStore::new()),
        CycleControl::new(),
    )
    .await;
    assert!(!summary.success);
    assert_eq!(
        states(&summary),
        [
            ("a", ExecutionState::Completed),
            ("b", ExecutionState::Failed),
            ("c", ExecutionState::Aborted)
        ]
    );
    assert_eq!(lab.calls("c"), 0);
    assert_eq!(lab.size("c"), 1);
    let reason = target(&summary, "c").message.clone().unwrap();
    assert!(
        reason.contains("\"b\"") && reason.contains("Strict"),
        "{reason}"
    );
    assert!(events.contains(&CycleEvent::Aborted {
        target: "c".into(),
        reason
    }));
}

#[tokio::test(start_paused = true)]
async fn best_effort_aborts_only_dependents() {
    let lab = Lab::with(&[("a", 1), ("b", 1), ("c", 1), ("d", 1)]);
    let broken = serde_json::json!({"resources": ["a"], "permanent": true});
    let plan = plan(
        "{type: DAG, dependencies: [{from: a, to: b}, {from: b, to: c}]}",
        "BestEffort",
        &[
            ("a", broken),
            ("b", res("b")),
            ("c", res("c")),
            ("d", res("d")),
        ],
    );
    let (summary, _) = run(
        &plan,
        Operation::Shutdown,
        &lab,
        Arc::new(MemoryRestoreStore::new()),
        CycleControl::new(),
    )
    .await;
    assert_eq!(
        states(&summary),
        [
            ("a", ExecutionState::Failed),
            ("b", ExecutionState::Aborted),
            ("c", ExecutionState::Aborted),
            ("d", ExecutionState::Completed)
        ]
    );
    assert!(
        target(&summary, "c")
            .message
            .as_deref()
            .unwrap()
            .contains("depends on target \"a\"")
    );
    assert_eq!((lab.calls("b"), lab.calls("c")), (0, 0));
    assert_eq!(lab.size("d"), 0);
}

#[tokio::test(start_paused = true)]
async fn transient_failures_are_retried_until_success() {
    let lab = Lab::with(&[("a", 3)]);
    let flaky = serde_json::json!({"resources": ["a"], "transientFailures": 2});
    let plan = plan("{type: Sequential}", "Strict", &[("a", flaky)]);
    let (summary, events) = run(
        &plan,
        Operation::Shutdown,
        &lab,
        Arc::new(MemoryRestoreStore::new()),
        CycleControl::new(),
    )
    .await;
    assert!(summary.success, "{summary:?}");
    assert_eq!(target(&summary, "a").attempts, 3);
    assert_eq!(lab.calls("a"), 3);
    assert!(events.iter().any(|e| matches!(
        e,
        CycleEvent::Finished { target, state: ExecutionState::Completed, attempts: 3, .. } if target == "a"
    )));
}

#[tokio::test(start_paused = true)]
async fn permanent_failures_are_not_retried() {
    let lab = Lab::with(&[("a", 3)]);
    let broken = serde_json::json!({"resources": ["a"], "permanent": true});
    let plan = plan("{type: Sequential}", "Strict", &[("a", broken)]);
    let (summary, _) = run(
        &plan,
        Operation::Shutdown,
        &lab,
        Arc::new(MemoryRestoreStore::new()),
        CycleControl::new(),
    )
    .await;
    let a = target(&summary, "a");
    assert_eq!((a.state, a.attempts), (ExecutionState::Failed, 1));
    assert!(a.message.as_deref().unwrap().contains("access denied"));
    assert_eq!(lab.calls("a"), 1);
}

#[tokio::test(start_paused = true)]
async fn unknown_executor_fails_the_target_without_calls() {
    let lab = Lab::with(&[]);
    let mut plan = plan("{type: Sequential}", "BestEffort", &[("a", res("a"))]);
    plan.spec.targets[0].kind = "mystery".into();
    let (summary, _) = run(
        &plan,
        Operation::Shutdown,
        &lab,
        Arc::new(MemoryRestoreStore::new()),
        CycleControl::new(),
    )
    .await;
    let a = target(&summary, "a");
    assert_eq!((a.state, a.attempts), (ExecutionState::Failed, 0));
    assert!(a.message.as_deref().unwrap().contains("mystery"));
}

#[tokio::test(start_paused = true)]
async fn the_builder_defaults_to_a_timestamped_cycle_id_and_no_listener() {
    let lab = Lab::with(&[("a", 1)]);
    let plan = plan("{type: Sequential}", "Strict", &[("a", res("a"))]);
    let store: Arc<dyn RestoreStore> = Arc::new(MemoryRestoreStore::new());
    let provider = LabProvider(lab.clone());
    let summary = CycleBuilder::new(&plan, Operation::Shutdown, &provider, store.clone())
        .run()
        .await
        .unwrap();
    assert!(summary.success, "{summary:?}");
    assert!(
        summary.cycle_id.starts_with('c') && summary.cycle_id.ends_with('z'),
        "{}",
        summary.cycle_id
    );
    // An explicit id wins over the options' one.
    let store: Arc<dyn RestoreStore> = Arc::new(MemoryRestoreStore::new());
    let summary = CycleBuilder::new(&plan, Operation::Shutdown, &provider, store)
        .options(options(&plan, "from-options"))
        .cycle_id("c2")
        .run()
        .await
        .unwrap();
    assert_eq!(summary.cycle_id, "c2");
    assert!(summary.success, "{summary:?}");
}
