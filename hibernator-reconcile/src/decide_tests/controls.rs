//! Controls, exceptions, deletion and target changes.

use std::collections::BTreeSet;

use hibernator_core::input::PlanDocuments;
use hibernator_core::types::{Operation, PlanPhase};

use super::*;

#[test]
fn suspend_holds_new_work_and_override_forces_a_state() {
    let mut plan = plan_yaml("{type: Sequential}", &["a", "b"], "");
    plan.spec.suspend = true;
    let mut sim = Sim::new(plan, night());
    let d = sim.step();
    assert!(d.create.is_empty());
    assert_eq!(sim.phase(), PlanPhase::Suspended);
    // unsuspend mid-night: hibernation starts; suspend again mid-cycle: running Job finishes, nothing new starts
    sim.plan.spec.suspend = false;
    assert_eq!(sim.step().create.len(), 1);
    sim.plan.metadata.annotations = Some(
        [(
            hibernator_core::wellknown::ANNOTATION_SUSPEND_UNTIL.to_string(),
            "2026-11-23T22:00:00Z".to_string(),
        )]
        .into(),
    );
    sim.finish(ok);
    let d = sim.step();
    assert!(d.create.is_empty());
    assert_eq!(sim.phase(), PlanPhase::Suspended);
    assert_eq!(d.requeue_at, Some(at("2026-11-23T22:00:00Z")));
    sim.now = at("2026-11-23T22:00:00Z");
    assert_eq!(sim.step().create.len(), 1);
    sim.run_to_end(ok);
    assert_eq!(sim.phase(), PlanPhase::Hibernated);
    // override wakeup during off-hours, until 23:00
    sim.plan.metadata.annotations = Some(
        [
            (
                hibernator_core::wellknown::ANNOTATION_OVERRIDE.to_string(),
                "wakeup".to_string(),
            ),
            (
                hibernator_core::wellknown::ANNOTATION_OVERRIDE_UNTIL.to_string(),
                "2026-11-23T23:00:00Z".to_string(),
            ),
        ]
        .into(),
    );
    let d = sim.step();
    assert!(d.events.iter().any(|e| e.reason == "OverrideActive"));
    assert_eq!(d.status.override_state.as_deref(), Some("wakeup"));
    sim.run_to_end(ok);
    assert_eq!(sim.phase(), PlanPhase::Active);
    assert_eq!(sim.decide().requeue_at, Some(at("2026-11-23T23:00:00Z")));
    sim.now = at("2026-11-23T23:00:00Z");
    sim.run_to_end(ok);
    assert_eq!(sim.phase(), PlanPhase::Hibernated);
    assert_eq!(sim.plan.status.as_ref().unwrap().override_state, None);
}

#[test]
fn suspend_exception_mid_night_wakes_up() {
    let mut sim = Sim::new(plan_yaml("{type: Parallel}", &["a"], ""), night());
    sim.run_to_end(ok);
    assert_eq!(sim.phase(), PlanPhase::Hibernated);
    let exception = PlanDocuments::from_yaml(
        "apiVersion: hibernator.dev/v1alpha1\nkind: HibernatePlan\nmetadata: {name: dev}\nspec:\n  schedule: {timezone: UTC}\n  targets: []\n---\napiVersion: hibernator.dev/v1alpha1\nkind: ScheduleException\nmetadata: {name: release, namespace: ns}\nspec:\n  planRef: {name: dev}\n  validFrom: \"2026-11-23T00:00:00Z\"\n  validUntil: \"2026-11-25T00:00:00Z\"\n  type: suspend\n  windows: [{start: \"21:30\", end: \"23:00\", daysOfWeek: [MON]}]\n",
    )
    .unwrap()
    .exceptions;
    sim.exceptions = exception;
    sim.now = at("2026-11-23T21:30:00Z");
    sim.run_to_end(ok);
    assert_eq!(sim.phase(), PlanPhase::Active);
    assert_eq!(sim.decide().requeue_at, Some(at("2026-11-23T23:00:00Z")));
}

#[test]
fn deletion_wakes_hibernated_targets_then_cleans_up() {
    let mut sim = Sim::new(plan_yaml("{type: Parallel}", &["a", "b"], ""), night());
    sim.run_to_end(ok);
    sim.plan.metadata.deletion_timestamp = Some(crate::time::to_k8s(sim.now));
    let d = sim.step();
    assert!(!d.cleanup);
    assert_eq!(d.create.len(), 2);
    assert!(d.create.iter().all(|r| r.operation == Operation::Wakeup));
    sim.finish(ok);
    let d = sim.step();
    assert!(d.cleanup);
    assert!(sim.restore.targets.is_empty());
    // Abandon leaves targets and cleans up at once
    let mut sim = Sim::new(plan_yaml("{type: Parallel}", &["a"], ""), night());
    sim.run_to_end(ok);
    sim.plan.spec.on_delete = hibernator_core::types::OnDelete::Abandon;
    sim.plan.metadata.deletion_timestamp = Some(crate::time::to_k8s(sim.now));
    let d = sim.step();
    assert!(d.cleanup && d.create.is_empty());
}

#[test]
fn deletion_mid_shutdown_stops_dispatch_then_wakes_up() {
    let mut sim = Sim::new(
        plan_yaml("{type: Sequential}", &["a", "b", "c"], ""),
        night(),
    );
    sim.step();
    sim.plan.metadata.deletion_timestamp = Some(crate::time::to_k8s(sim.now));
    sim.finish(ok);
    let d = sim.step();
    assert!(
        d.create.iter().all(|r| r.operation == Operation::Wakeup),
        "{:?}",
        d.create
    );
    assert_eq!(d.create.len(), 1, "only the hibernated target wakes up");
    sim.finish(ok);
    assert!(sim.step().cleanup);
}

#[test]
fn changed_targets_while_hibernated_keep_restore_data_of_the_rest() {
    let mut sim = Sim::new(plan_yaml("{type: Parallel}", &["a", "b", "c"], ""), night());
    sim.run_to_end(ok);
    sim.plan.spec.targets.retain(|t| t.name != "b");
    let mut added = sim.plan.spec.targets[0].clone();
    added.name = "d".into();
    sim.plan.spec.targets.push(added);
    sim.now = morning();
    let waves = sim.run_to_end(ok);
    assert_eq!(waves, vec![vec!["a".to_string(), "c".to_string()]]);
    assert_eq!(sim.phase(), PlanPhase::Active);
    assert_eq!(
        sim.restore.targets,
        BTreeSet::from(["b".to_string()]),
        "b's data is kept"
    );
}

#[test]
fn cycles_started_in_the_same_second_get_distinct_ids() {
    let mut sim = Sim::new(plan_yaml("{type: Parallel}", &["a"], ""), night());
    sim.run_to_end(ok);
    let first = sim
        .plan
        .status
        .as_ref()
        .unwrap()
        .current_cycle_id
        .clone()
        .unwrap();
    // override wake-up and back to hibernate without the clock moving
    let set = |sim: &mut Sim, v: &str| {
        sim.plan.metadata.annotations = Some(
            [(
                hibernator_core::wellknown::ANNOTATION_OVERRIDE.to_string(),
                v.to_string(),
            )]
            .into(),
        );
    };
    set(&mut sim, "wakeup");
    sim.run_to_end(ok);
    set(&mut sim, "hibernate");
    let waves = sim.run_to_end(ok);
    assert_eq!(
        waves,
        vec![vec!["a".to_string()]],
        "the second shutdown runs a new Job"
    );
    let ids: Vec<String> = sim
        .plan
        .status
        .as_ref()
        .unwrap()
        .history
        .iter()
        .map(|h| h.cycle_id.clone())
        .collect();
    assert_eq!(ids.len(), 3);
    assert!(ids.iter().collect::<BTreeSet<_>>().len() == 3, "{ids:?}");
    assert!(ids.contains(&first));
}
