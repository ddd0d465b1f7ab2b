//! Stopping, cancelling and restore data across cycles.

use std::sync::Arc;

use tokio::sync::mpsc::unbounded_channel;

use super::*;

#[tokio::test]
async fn stop_dispatching_keeps_finished_restore_data_for_the_wakeup() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dev.state.json");
    let lab = Lab::with(&[("a", 2), ("b", 5), ("c", 7)]);
    let first = serde_json::json!({"resources": ["a"], "stopAfter": true});
    let plan = plan(
        "{type: Parallel, maxConcurrency: 1}",
        "BestEffort",
        &[("a", first), ("b", res("b")), ("c", res("c"))],
    );
    let control = CycleControl::new();
    *lab.control.lock().unwrap() = Some(control.clone());
    let store = Arc::new(FileRestoreStore::new(&path));
    let (summary, events) = run(&plan, Operation::Shutdown, &lab, store, control).await;
    assert_eq!(
        states(&summary),
        [
            ("a", ExecutionState::Completed),
            ("b", ExecutionState::Aborted),
            ("c", ExecutionState::Aborted)
        ]
    );
    assert!(
        target(&summary, "b")
            .message
            .as_deref()
            .unwrap()
            .starts_with("interrupted")
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, CycleEvent::Stopping { .. }))
    );
    assert_eq!((lab.size("a"), lab.size("b")), (0, 5));

    // A fresh store on the same file (a new process) finds a's restore data.
    let store = Arc::new(FileRestoreStore::new(&path));
    let record = store.load("a").await.unwrap().unwrap().value;
    assert_eq!(record.entries["res/a"].state, serde_json::json!(2));
    assert!(store.load("b").await.unwrap().is_none());
    let (wake, _) = run(&plan, Operation::Wakeup, &lab, store, CycleControl::new()).await;
    assert_eq!(target(&wake, "a").state, ExecutionState::Completed);
    assert_eq!(lab.size("a"), 2);
    // b was never hibernated: its wake-up fails clearly, a's is unaffected.
    let b = target(&wake, "b");
    assert_eq!(b.state, ExecutionState::Failed);
    assert!(
        b.message
            .as_deref()
            .unwrap()
            .starts_with(category::MISSING_RESTORE_DATA)
    );
}

#[tokio::test]
async fn cancel_running_stops_targets_and_keeps_recorded_states() {
    let lab = Lab::with(&[("a1", 4), ("a2", 6), ("b1", 8), ("c", 1)]);
    let hang_a = serde_json::json!({"resources": ["a1", "a2"], "hang": true});
    let hang_b = serde_json::json!({"resources": ["b1"], "hang": true});
    let plan = plan(
        "{type: Parallel}",
        "BestEffort",
        &[("a", hang_a), ("b", hang_b), ("c", res("c"))],
    );
    let store: Arc<dyn RestoreStore> = Arc::new(MemoryRestoreStore::new());
    let control = CycleControl::new();
    let (tx, mut rx) = unbounded_channel();
    let cycle = {
        let (plan, store, control, lab) =
            (plan.clone(), store.clone(), control.clone(), lab.clone());
        tokio::spawn(async move {
            let options = options(&plan, "c1");
            let provider = LabProvider(lab);
            CycleBuilder::new(&plan, Operation::Shutdown, &provider, store)
                .options(options)
                .events(tx)
                .control(control)
                .run()
                .await
        })
    };
    // Wait until both hanging targets captured their first resource.
    let mut asleep = 0;
    while asleep < 2 {
        if let Some(CycleEvent::Progress { .. }) = rx.recv().await {
            asleep += 1;
        }
    }
    control.cancel_running();
    let summary = cycle.await.unwrap().unwrap();
    for name in ["a", "b"] {
        let t = target(&summary, name);
        assert_eq!(t.state, ExecutionState::Failed, "{t:?}");
        assert!(
            t.message
                .as_deref()
                .unwrap()
                .starts_with(category::CANCELLED)
        );
    }
    assert_eq!(target(&summary, "c").state, ExecutionState::Completed);
    assert!(control.is_cancelled());
    let a = store.load("a").await.unwrap().unwrap().value;
    assert_eq!(a.entries.keys().collect::<Vec<_>>(), ["res/a1"]);
    assert_eq!(a.entries["res/a1"].state, serde_json::json!(4));
    assert_eq!(lab.size("a2"), 6, "a2 was never touched");
    let b = store.load("b").await.unwrap().unwrap().value;
    assert_eq!(b.entries["res/b1"].state, serde_json::json!(8));

    // The wake-up restores what the cancelled shutdown had put to sleep.
    let (wake, _) = run(&plan, Operation::Wakeup, &lab, store, CycleControl::new()).await;
    assert_eq!(target(&wake, "a").state, ExecutionState::Completed);
    assert_eq!((lab.size("a1"), lab.size("b1")), (4, 8));
}

#[tokio::test(start_paused = true)]
async fn wakeup_without_restore_data_fails_that_target_clearly() {
    let lab = Lab::with(&[("a", 0)]);
    let plan = plan("{type: Sequential}", "Strict", &[("a", res("a"))]);
    let (summary, _) = run(
        &plan,
        Operation::Wakeup,
        &lab,
        Arc::new(MemoryRestoreStore::new()),
        CycleControl::new(),
    )
    .await;
    let a = target(&summary, "a");
    assert_eq!((a.state, a.attempts), (ExecutionState::Failed, 0));
    let message = a.message.as_deref().unwrap();
    assert!(
        message.contains("no restore data for target \"a\""),
        "{message}"
    );
    assert_eq!(lab.calls("a"), 0);
}

#[tokio::test(start_paused = true)]
async fn stop_before_start_aborts_everything_and_summary_serializes() {
    let lab = Lab::with(&[("a", 1)]);
    let plan = plan("{type: Sequential}", "Strict", &[("a", res("a"))]);
    let control = CycleControl::new();
    control.stop_dispatching();
    let (summary, events) = run(
        &plan,
        Operation::Shutdown,
        &lab,
        Arc::new(MemoryRestoreStore::new()),
        control,
    )
    .await;
    assert_eq!(states(&summary), [("a", ExecutionState::Aborted)]);
    assert!(matches!(events.first(), Some(CycleEvent::Stopping { .. })));
    let json = serde_json::to_value(&summary).unwrap();
    assert_eq!(json["operation"], "shutdown");
    assert_eq!(json["cycleId"], "c1");
    assert_eq!(json["success"], false);
    assert_eq!(json["targets"][0]["state"], "Aborted");
    assert_eq!(summary.count(ExecutionState::Aborted), 1);
}
