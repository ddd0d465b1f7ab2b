//! Full cycles through the controller: hibernate → wake with restarts at
//! random points of a 50-target cycle, failures, deletion, API budget.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use hibernator_core::types::{HibernatePlan, PlanPhase};
use hibernator_core::wellknown::{LABEL_OPERATION, LABEL_PLAN};
use hibernator_testkit::jobsim::JobSimulator;
use k8s_openapi::api::batch::v1::Job;
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams};

use super::support::*;

fn night() -> chrono::DateTime<chrono::Utc> {
    "2026-11-23T21:00:00Z".parse().unwrap()
}

fn morning() -> chrono::DateTime<chrono::Utc> {
    "2026-11-24T07:00:00Z".parse().unwrap()
}

async fn jobs_by_target(
    client: &kube::Client,
    ns: &str,
    plan: &str,
    op: &str,
) -> BTreeMap<String, usize> {
    let jobs: Api<Job> = Api::namespaced(client.clone(), ns);
    let list = jobs
        .list(&ListParams::default().labels(&format!("{LABEL_PLAN}={plan},{LABEL_OPERATION}={op}")))
        .await
        .unwrap();
    let mut out = BTreeMap::new();
    for job in list.items {
        let target = job.metadata.annotations.unwrap()
            [hibernator_core::wellknown::ANNOTATION_TARGET]
            .clone();
        *out.entry(target).or_insert(0) += 1;
    }
    out
}

/// A random number below `n` (std's randomly seeded hasher; no extra crate).
fn random_below(n: u64) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(n);
    hasher.finish() % n
}

/// Reconciles so far (from the controller's metrics).
fn reconciles(harness: &Harness) -> u64 {
    let text = harness.ctx.metrics.encode().unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("hibernator_reconcile_total "))
        .map_or(0, |n| n.trim().parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_targets_hibernate_and_wake_across_controller_crashes() {
    let cluster = cluster("ctl-restart").await;
    let client = cluster.client();
    let ns = cluster.namespace().to_string();
    let log = RunnerLog::default();
    let _sim = JobSimulator::start(
        client.clone(),
        &ns,
        runner(client.clone(), log.clone(), no_failures()),
    );
    let plans: Api<HibernatePlan> = Api::namespaced(client.clone(), &ns);
    plans
        .create(
            &PostParams::default(),
            &plan("big", 50, "{type: Parallel, maxConcurrency: 10}"),
        )
        .await
        .unwrap();
    let mut harness = Harness::new(&cluster, night());
    for phase in [PlanPhase::Hibernated, PlanPhase::Active] {
        if phase == PlanPhase::Active {
            harness.set_time(morning());
        }
        // crash and restart the controller at random points until the cycle settles
        for _ in 0..6 {
            tokio::time::sleep(Duration::from_millis(random_below(230) + 20)).await;
            harness.crash().await;
            harness.start();
        }
        wait_phase(&plans, "big", phase, Duration::from_secs(90)).await;
    }
    let shutdown = jobs_by_target(&client, &ns, "big", "shutdown").await;
    let wakeup = jobs_by_target(&client, &ns, "big", "wakeup").await;
    assert_eq!(shutdown.len(), 50);
    assert_eq!(wakeup.len(), 50);
    assert!(
        shutdown.values().chain(wakeup.values()).all(|n| *n == 1),
        "duplicate Jobs: {shutdown:?} {wakeup:?}"
    );
    let runs = log.runs();
    let mut seen = std::collections::BTreeSet::new();
    for (_, _, job) in &runs {
        assert!(seen.insert(job.clone()), "runner ran {job} twice");
    }
    assert_eq!(runs.len(), 100);
    // every target was restored: no restore entries remain, no record lost in between
    let entries = restore_entries(&client, &ns, "big").await;
    assert_eq!(entries.len(), 50, "{entries:?}");
    assert!(entries.values().all(|n| *n == 0), "{entries:?}");
    let status = plans.get("big").await.unwrap().status.unwrap();
    assert_eq!(status.history.len(), 2);
    assert!(
        status
            .history
            .iter()
            .all(|h| h.success && h.completed == 50)
    );
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_failure_then_retry_now_and_api_budget() {
    let cluster = cluster("ctl-strict").await;
    let client = cluster.client();
    let ns = cluster.namespace().to_string();
    let log = RunnerLog::default();
    let broken = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let flag = broken.clone();
    let fail: FailFn = Arc::new(move |target, _| {
        target == "t01" && flag.load(std::sync::atomic::Ordering::SeqCst)
    });
    let _sim = JobSimulator::start(
        client.clone(),
        &ns,
        runner(client.clone(), log.clone(), fail),
    );
    let plans: Api<HibernatePlan> = Api::namespaced(client.clone(), &ns);
    plans
        .create(
            &PostParams::default(),
            &plan("seq", 3, "{type: Sequential}"),
        )
        .await
        .unwrap();
    let mut harness = Harness::new(&cluster, night());
    let failed = wait_phase(&plans, "seq", PlanPhase::Error, Duration::from_secs(60)).await;
    let status = failed.status.unwrap();
    let states: Vec<_> = status
        .executions
        .iter()
        .map(|e| (e.target.as_str(), e.state))
        .collect();
    use hibernator_core::types::ExecutionState::*;
    assert_eq!(
        states,
        vec![("t00", Completed), ("t01", Failed), ("t02", Aborted)]
    );
    assert!(
        status.executions[1]
            .message
            .as_deref()
            .unwrap()
            .contains("simulated failure")
    );
    let degraded = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Degraded")
        .unwrap();
    assert_eq!(
        (degraded.status.as_str(), degraded.reason.as_str()),
        ("True", "TargetsFailed")
    );

    // API budget: a reconcile reads its Jobs and exceptions from the watches
    // and sends one GET (the restore ConfigMap), whatever the number of targets
    if let Some(server) = cluster.api_server() {
        let before = reconciles(&harness);
        server.reset_request_counts();
        for _ in 0..5 {
            harness.tick();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let done = reconciles(&harness) - before;
        assert!(done >= 1, "the ticks reconciled the plan");
        assert_eq!(server.request_count("list", "jobs"), 0);
        assert_eq!(server.request_count("list", "scheduleexceptions"), 0);
        let gets = server.request_count("get", "configmaps");
        assert!(gets <= done, "{gets} ConfigMap reads for {done} reconciles");
        assert_eq!(server.request_count("create", "jobs"), 0);
    }

    // fix the target and ask for a retry
    broken.store(false, std::sync::atomic::Ordering::SeqCst);
    let mut annotated = plans.get("seq").await.unwrap();
    annotated
        .metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(
            hibernator_core::wellknown::ANNOTATION_RETRY_NOW.into(),
            "1".into(),
        );
    plans
        .replace("seq", &PostParams::default(), &annotated)
        .await
        .unwrap();
    let done = wait_phase(
        &plans,
        "seq",
        PlanPhase::Hibernated,
        Duration::from_secs(60),
    )
    .await;
    let t01 = &done.status.unwrap().executions[1];
    assert_eq!(t01.attempts, 2);
    assert!(t01.execution_id.as_deref().unwrap().ends_with("-a2"));

    // deletion while hibernated wakes everything up, then removes Jobs and the ConfigMap
    plans.delete("seq", &DeleteParams::default()).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while plans.get_opt("seq").await.unwrap().is_some() {
        assert!(tokio::time::Instant::now() < deadline, "plan not deleted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let wakeups = log
        .runs()
        .into_iter()
        .filter(|(_, op, _)| op == "wakeup")
        .count();
    assert_eq!(
        wakeups, 3,
        "every hibernated target woke up before deletion"
    );
    let config_maps: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(client.clone(), &ns);
    assert!(
        config_maps
            .get_opt(&hibernator_core::wellknown::restore_config_map_name("seq"))
            .await
            .unwrap()
            .is_none()
    );
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exceptions_overrides_and_suspend_take_effect_by_watch() {
    let cluster = cluster("ctl-controls").await;
    let client = cluster.client();
    let ns = cluster.namespace().to_string();
    let log = RunnerLog::default();
    let _sim = JobSimulator::start(
        client.clone(),
        &ns,
        runner(client.clone(), log.clone(), no_failures()),
    );
    let plans: Api<HibernatePlan> = Api::namespaced(client.clone(), &ns);
    plans
        .create(&PostParams::default(), &plan("ctl", 2, "{type: Parallel}"))
        .await
        .unwrap();
    let mut harness = Harness::new(&cluster, night());
    wait_phase(
        &plans,
        "ctl",
        PlanPhase::Hibernated,
        Duration::from_secs(60),
    )
    .await;

    // a suspend exception covering now wakes the plan up (reconciled through the exception watch)
    let exception = hibernator_core::input::PlanDocuments::from_yaml(
        "apiVersion: hibernator.dev/v1alpha1\nkind: HibernatePlan\nmetadata: {name: ctl}\nspec:\n  schedule: {timezone: UTC}\n  targets: []\n---\napiVersion: hibernator.dev/v1alpha1\nkind: ScheduleException\nmetadata: {name: release}\nspec:\n  planRef: {name: ctl}\n  validFrom: \"2026-11-23T00:00:00Z\"\n  validUntil: \"2026-11-25T00:00:00Z\"\n  type: suspend\n  windows: [{start: \"20:30\", end: \"23:00\", daysOfWeek: [MON]}]\n",
    )
    .unwrap()
    .exceptions
    .remove(0);
    Api::<hibernator_core::types::ScheduleException>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &exception)
        .await
        .unwrap();
    let awake = wait_phase(&plans, "ctl", PlanPhase::Active, Duration::from_secs(60)).await;
    assert_eq!(
        awake.status.unwrap().next_transition,
        Some("2026-11-23T23:00:00Z".parse().unwrap())
    );

    // an override forces hibernation now and is recorded in status
    let mut p = plans.get("ctl").await.unwrap();
    p.metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(
            hibernator_core::wellknown::ANNOTATION_OVERRIDE.into(),
            "hibernate".into(),
        );
    plans
        .replace("ctl", &PostParams::default(), &p)
        .await
        .unwrap();
    let forced = wait_phase(
        &plans,
        "ctl",
        PlanPhase::Hibernated,
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(
        forced.status.unwrap().override_state.as_deref(),
        Some("hibernate")
    );

    // spec.suspend holds the plan
    let mut p = plans.get("ctl").await.unwrap();
    p.metadata.annotations = None;
    p.spec.suspend = true;
    plans
        .replace("ctl", &PostParams::default(), &p)
        .await
        .unwrap();
    wait_phase(&plans, "ctl", PlanPhase::Suspended, Duration::from_secs(60)).await;
    let shutdowns = log
        .runs()
        .into_iter()
        .filter(|(_, op, _)| op == "shutdown")
        .count();
    assert_eq!(shutdowns, 4, "two hibernations of two targets");
    harness.stop().await;
}

/// Ready-by through the controller and the API server: the wake-up of a
/// plan with `wakeUp.readyBy` starts the lead before the window end (two
/// ec2 targets in sequence without history: 5m + 5m), not at it, and
/// `status.nextTransition` says so beforehand.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ready_by_plan_wakes_up_the_lead_before_the_window_end() {
    let cluster = cluster("ctl-readyby").await;
    let client = cluster.client();
    let ns = cluster.namespace().to_string();
    let log = RunnerLog::default();
    let _sim = JobSimulator::start(
        client.clone(),
        &ns,
        runner(client.clone(), log.clone(), no_failures()),
    );
    let plans: Api<HibernatePlan> = Api::namespaced(client.clone(), &ns);
    let mut p = plan("early", 2, "{type: Sequential}");
    p.spec.wake_up = Some(hibernator_core::types::WakeUp {
        ready_by: true,
        max_lead: None,
    });
    plans.create(&PostParams::default(), &p).await.unwrap();
    let mut harness = Harness::new(&cluster, night());
    harness.start();
    let hibernated = wait_phase(
        &plans,
        "early",
        PlanPhase::Hibernated,
        Duration::from_secs(60),
    )
    .await;
    let status = hibernated.status.unwrap();
    let wake_at: chrono::DateTime<chrono::Utc> = "2026-11-24T05:50:00Z".parse().unwrap();
    assert_eq!(status.next_transition, Some(wake_at));
    assert_eq!(status.wake_up.as_ref().map(|w| w.lead_seconds), Some(600));
    // One second before the moved wake-up nothing starts...
    harness.set_time(wake_at - chrono::Duration::seconds(1));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        jobs_by_target(&client, &ns, "early", "wakeup")
            .await
            .is_empty()
    );
    // ...at it, the wake-up runs to Active, ten minutes before 06:00.
    harness.set_time(wake_at);
    wait_phase(&plans, "early", PlanPhase::Active, Duration::from_secs(60)).await;
    assert_eq!(
        jobs_by_target(&client, &ns, "early", "wakeup").await.len(),
        2
    );
    harness.stop().await;
}
