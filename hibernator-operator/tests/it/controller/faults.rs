//! Liveness under API faults (issue 17): many plans due at once while the
//! API server fails Job creates (504/500/429), status writes and Job lists.
//! Every plan must still get all its Jobs, without waiting for the next
//! schedule boundary.

use std::collections::BTreeMap;
use std::time::Duration;

use hibernator_core::types::{HibernatePlan, PlanPhase};
use hibernator_core::wellknown::LABEL_PLAN;
use hibernator_testkit::jobsim::JobSimulator;
use k8s_openapi::api::batch::v1::Job;
use kube::Api;
use kube::api::{ListParams, PostParams};

use super::support::*;

fn night() -> chrono::DateTime<chrono::Utc> {
    "2026-11-23T21:00:00Z".parse().unwrap()
}

/// A counter's value in the controller's metrics: summed over label sets,
/// or of one label set when `name` includes it (`name{label="v"}`).
fn counter(harness: &Harness, name: &str) -> f64 {
    let text = harness.ctx.metrics.encode().unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name).is_some_and(|rest| {
                rest.starts_with(' ') || (rest.starts_with('{') && !name.contains('{'))
            })
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_plan_gets_its_jobs_when_job_creates_fail_after_the_status_write() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let cluster = cluster("ctl-faults").await;
    let Some(server) = cluster.api_server() else {
        // fault hooks need the in-process API server
        return;
    };
    let client = cluster.client();
    let ns = cluster.namespace().to_string();
    let log = RunnerLog::default();
    // hold the runners: a finished Job would hide one that was never created
    let sim = JobSimulator::start(
        client.clone(),
        &ns,
        runner(client.clone(), log.clone(), no_failures()),
    );
    sim.pause();
    let plans: Api<HibernatePlan> = Api::namespaced(client.clone(), &ns);
    let names: Vec<String> = (0..12).map(|i| format!("burst-{i:02}")).collect();
    for name in &names {
        plans
            .create(&PostParams::default(), &plan(name, 2, "{type: Parallel}"))
            .await
            .unwrap();
    }
    // The burst's Job creates (each after its plan's status write) fail:
    // 504 and 429 are retried inside the client, 500 fails the reconcile.
    // A status write times out, Job lists fail.
    server.fail_next("create", "jobs", 4, 504);
    server.fail_next("create", "jobs", 6, 500);
    server.fail_next("create", "jobs", 4, 429);
    server.fail_next("update", "hibernateplans/status", 2, 504);
    server.fail_next("list", "jobs", 2, 500);
    let mut harness = Harness::new(&cluster, night());

    // all 24 Jobs appear without any tick or boundary
    let jobs: Api<Job> = Api::namespaced(client.clone(), &ns);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        // the test's own reads may meet an injected fault too
        let Ok(list) = jobs.list(&ListParams::default().labels(LABEL_PLAN)).await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let mut per_plan: BTreeMap<String, usize> = BTreeMap::new();
        for job in &list.items {
            let plan = job.metadata.annotations.as_ref().unwrap()
                [hibernator_core::wellknown::ANNOTATION_PLAN]
                .clone();
            *per_plan.entry(plan).or_default() += 1;
        }
        if per_plan.len() == names.len() && per_plan.values().all(|n| *n == 2) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "Jobs per plan after the burst: {per_plan:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        counter(
            &harness,
            "hibernator_reconcile_errors_total{category=\"create_jobs\"}"
        ) >= 3.0,
        "the failed creates count as reconcile errors:\n{}",
        harness.ctx.metrics.encode().unwrap()
    );
    assert!(
        counter(&harness, "hibernator_runner_jobs_recreated_total") >= 1.0,
        "Jobs recorded in status and missing are counted:\n{}",
        harness.ctx.metrics.encode().unwrap()
    );
    sim.resume();
    for name in &names {
        wait_phase(&plans, name, PlanPhase::Hibernated, Duration::from_secs(60)).await;
    }
    let runs = log.runs();
    let mut seen = std::collections::BTreeSet::new();
    for (_, _, job) in &runs {
        assert!(seen.insert(job.clone()), "runner ran {job} twice");
    }
    assert_eq!(runs.len(), 24);
    harness.stop().await;
}
