//! Ready-by wake-up in the controller's decisions: the wake-up starts the
//! lead before the window end, durations are learned, readiness recorded.

use hibernator_core::types::{PlanPhase, WakeUpStatus};

use super::{Sim, at, night, ok, plan_yaml};
use crate::model::PlanEvent;

fn wake_up(sim: &Sim) -> WakeUpStatus {
    sim.plan
        .status
        .as_ref()
        .and_then(|s| s.wake_up.clone())
        .unwrap_or_default()
}

/// Hibernates at Monday night, then plays the wake-up out with each target
/// taking `minutes` (Sequential wake-up order: b, then a).
fn night_and_wake_up(extra: &str, wake_at: &str, minutes: [i64; 2]) -> Sim {
    let mut sim = Sim::new(plan_yaml("{type: Sequential}", &["a", "b"], extra), night());
    sim.run_to_end(ok);
    assert_eq!(sim.phase(), PlanPhase::Hibernated);
    sim.now = at(wake_at);
    for took in minutes {
        sim.step();
        assert_eq!(sim.running().len(), 1, "one target at a time");
        sim.now += chrono::Duration::minutes(took);
        sim.finish(ok);
    }
    sim.step();
    assert_eq!(sim.phase(), PlanPhase::Active);
    sim
}

#[test]
fn the_wake_up_starts_the_lead_before_the_window_end_and_learns() {
    let extra = "  wakeUp: {readyBy: true}\n";
    let mut sim = Sim::new(plan_yaml("{type: Sequential}", &["a", "b"], extra), night());
    let d = sim.step();
    // Two ec2 targets without history, one after the other: 5m + 5m.
    let w = wake_up(&sim);
    assert_eq!(w.lead_seconds, 600);
    assert_eq!(w.lead_source.as_deref(), Some("defaults"));
    assert_eq!(w.window_end, Some(at("2026-11-24T06:00:00Z")));
    assert_eq!(w.next_wake_up_start, Some(at("2026-11-24T05:50:00Z")));
    assert_eq!(d.status.next_transition, Some(at("2026-11-24T05:50:00Z")));
    sim.run_to_end(ok);
    // Just before the moved wake-up: still hibernated, requeued exactly at it.
    sim.now = at("2026-11-24T05:49:59Z");
    let d = sim.step();
    assert!(d.create.is_empty());
    assert_eq!(d.requeue_at, Some(at("2026-11-24T05:50:00Z")));
    let sim = night_and_wake_up(extra, "2026-11-24T05:50:00Z", [3, 5]);
    let w = wake_up(&sim);
    assert_eq!(w.readiness.len(), 1);
    let r = &w.readiness[0];
    assert_eq!(r.window_end, at("2026-11-24T06:00:00Z"));
    assert_eq!(r.ready_at, Some(at("2026-11-24T05:58:00Z")));
    assert_eq!(r.early_seconds, Some(120));
    assert!(w.cycle_window_end.is_none());
    let learned = |t: &str| {
        w.durations
            .iter()
            .find(|d| d.target == t)
            .map(|d| d.seconds.clone())
    };
    assert_eq!(learned("b"), Some(vec![180]));
    assert_eq!(learned("a"), Some(vec![300]));
    // The next lead comes from history: 3m + 5m.
    assert_eq!(w.lead_seconds, 480);
    assert_eq!(w.lead_source.as_deref(), Some("history"));
    assert_eq!(w.next_wake_up_start, Some(at("2026-11-25T05:52:00Z")));
    assert!(!sim.events.iter().any(|e| e.reason == "NotReadyByWindowEnd"));
}

#[test]
fn a_late_wake_up_is_recorded_and_warned_about() {
    // maxLead 5m caps the 10m default lead: 05:55 start, ready 06:03.
    let extra = "  wakeUp: {readyBy: true, maxLead: 5m}\n";
    let sim = night_and_wake_up(extra, "2026-11-24T05:55:00Z", [4, 4]);
    let w = wake_up(&sim);
    assert_eq!(w.readiness[0].early_seconds, Some(-180));
    let late: Vec<&PlanEvent> = sim
        .events
        .iter()
        .filter(|e| e.reason == "NotReadyByWindowEnd")
        .collect();
    assert_eq!(late.len(), 1, "{:?}", sim.events);
    assert!(late[0].warning);
    assert!(
        late[0].note.contains("3m after the window end"),
        "{}",
        late[0].note
    );
    assert_eq!(w.lead_source.as_deref(), Some("maxLead"));
}

#[test]
fn without_ready_by_the_wake_up_starts_at_the_window_end_and_lateness_is_recorded() {
    let sim = night_and_wake_up("", "2026-11-24T06:00:00Z", [2, 2]);
    let w = wake_up(&sim);
    assert_eq!(w.lead_seconds, 0);
    assert_eq!(w.lead_source.as_deref(), Some("off"));
    assert_eq!(w.readiness[0].early_seconds, Some(-240));
    // Learned anyway, so turning ready-by on starts from history.
    assert_eq!(w.durations.len(), 2);
    // No warning without ready-by: starting at the window end is what was asked.
    assert!(!sim.events.iter().any(|e| e.reason == "NotReadyByWindowEnd"));
}

#[test]
fn before_the_lead_the_wake_up_does_not_start() {
    let extra = "  wakeUp: {readyBy: true}\n";
    let mut sim = Sim::new(plan_yaml("{type: Sequential}", &["a", "b"], extra), night());
    sim.run_to_end(ok);
    sim.now = at("2026-11-24T05:40:00Z");
    let d = sim.step();
    assert!(d.create.is_empty());
    assert_eq!(sim.phase(), PlanPhase::Hibernated);
}

#[test]
fn an_override_wake_up_is_not_measured_against_a_window_end() {
    let mut sim = Sim::new(plan_yaml("{type: Sequential}", &["a", "b"], ""), night());
    sim.run_to_end(ok);
    sim.now = at("2026-11-23T23:00:00Z");
    sim.plan
        .metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert("hibernator.dev/override".into(), "wakeup".into());
    sim.run_to_end(ok);
    assert_eq!(sim.phase(), PlanPhase::Active);
    let w = wake_up(&sim);
    assert!(w.readiness.is_empty(), "{:?}", w.readiness);
    assert!(w.cycle_window_end.is_none());
}

#[test]
fn a_shorter_lead_after_a_fast_wake_up_does_not_hibernate_again() {
    // Default lead 10m: the wake-up starts 05:50 and takes 1m + 1m; the
    // learned lead is then 2m (06:00 − 2m = 05:58), but the plan already
    // woke up for this window and stays awake.
    let extra = "  wakeUp: {readyBy: true}\n";
    let mut sim = night_and_wake_up(extra, "2026-11-24T05:50:00Z", [1, 1]);
    assert_eq!(wake_up(&sim).lead_seconds, 120);
    sim.now = at("2026-11-24T05:53:00Z");
    let d = sim.step();
    assert!(d.create.is_empty(), "{:?}", d.create);
    assert_eq!(sim.phase(), PlanPhase::Active);
    assert_eq!(
        wake_up(&sim).next_wake_up_start,
        Some(at("2026-11-25T05:58:00Z"))
    );
    assert_eq!(d.status.next_transition, Some(at("2026-11-24T20:00:00Z")));
}

#[test]
fn a_wake_up_that_closes_while_skipping_a_target_is_still_measured() {
    // Target a has no restore data left: after b wakes up, the dispatcher
    // skips a and the cycle closes inside the same reconcile's dispatch.
    let extra = "  wakeUp: {readyBy: true}\n";
    let mut sim = Sim::new(plan_yaml("{type: Sequential}", &["a", "b"], extra), night());
    sim.run_to_end(ok);
    sim.restore.targets.remove("a");
    sim.now = at("2026-11-24T05:50:00Z");
    sim.step();
    assert_eq!(sim.running(), ["b"]);
    sim.now = at("2026-11-24T05:54:00Z");
    sim.finish(ok);
    sim.step();
    assert_eq!(sim.phase(), PlanPhase::Active);
    let w = wake_up(&sim);
    assert_eq!(w.readiness.len(), 1, "{w:?}");
    assert_eq!(w.readiness[0].early_seconds, Some(360));
    assert!(w.cycle_window_end.is_none());
    assert!(
        w.durations
            .iter()
            .any(|d| d.target == "b" && d.seconds == [240])
    );
}
