//! API requests per reconcile (issue 17): the Job and ScheduleException
//! reads come from the controller's watches, so a reconcile reads only the
//! restore ConfigMap from the API server.

use std::sync::Arc;
use std::time::Duration;

use hibernator_core::types::{HibernatePlan, PlanPhase};
use hibernator_testkit::jobsim::JobSimulator;
use hibernator_testkit::kube::ApiServer;
use kube::Api;
use kube::api::PostParams;

use super::support::*;

/// Requests the API server saw, by (verb, resource), of those a reconcile makes.
const COUNTED: [(&str, &str); 10] = [
    ("list", "jobs"),
    ("list", "scheduleexceptions"),
    ("get", "configmaps"),
    ("list", "pods"),
    ("update", "hibernateplans/status"),
    ("create", "jobs"),
    ("create", "events"),
    ("patch", "events"),
    ("get", "hibernateplans"),
    ("delete", "jobs"),
];

/// The [`COUNTED`] requests as `verb resource: count` lines.
fn report(server: &ApiServer) -> Vec<String> {
    COUNTED
        .iter()
        .map(|(v, r)| format!("{v} {r}: {}", server.request_count(v, r)))
        .collect()
}

/// Creates a plan of two targets (released in parallel) per name.
async fn create_plans(plans: &Api<HibernatePlan>, names: &[String]) {
    for name in names {
        plans
            .create(&PostParams::default(), &plan(name, 2, "{type: Parallel}"))
            .await
            .unwrap();
    }
}

/// Waits until the API server has seen `n` Job creates.
async fn wait_job_creates(server: &ApiServer, n: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while server.request_count("create", "jobs") < n {
        assert!(tokio::time::Instant::now() < deadline, "Jobs not created");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn reconciles(harness: &Harness) -> u64 {
    let text = harness.ctx.metrics.encode().unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("hibernator_reconcile_total "))
        .map_or(0, |n| n.trim().parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconcile_reads_only_the_restore_config_map() {
    let cluster = cluster("ctl-budget").await;
    let Some(server) = cluster.api_server() else {
        return;
    };
    let client = cluster.client();
    let ns = cluster.namespace().to_string();
    let log = RunnerLog::default();
    // runners held: what is counted is the controller's start-up burst alone
    let sim = JobSimulator::start(
        client.clone(),
        &ns,
        runner(client.clone(), log.clone(), no_failures()),
    );
    sim.pause();
    let plans: Api<HibernatePlan> = Api::namespaced(client.clone(), &ns);
    let names: Vec<String> = (0..10).map(|i| format!("budget-{i}")).collect();
    create_plans(&plans, &names).await;
    server.reset_request_counts();
    let mut harness = Harness::new(&cluster, "2026-11-23T21:00:00Z".parse().unwrap());
    wait_job_creates(server, 20).await;
    // the trailing reconciles (status and Job events) settle
    tokio::time::sleep(Duration::from_millis(500)).await;
    let done = reconciles(&harness);
    let count = |verb: &str, resource: &str| server.request_count(verb, resource);
    let report = report(server);
    eprintln!(
        "{} plans hibernated, {done} reconciles; requests:\n  {}",
        names.len(),
        report.join("\n  ")
    );
    // the finalizer reconciles read nothing; every other one the ConfigMap, once
    assert!(count("get", "configmaps") <= done, "{report:?}");
    // Jobs and exceptions come from the watches: their initial lists only
    assert!(count("list", "jobs") <= 2, "{report:?}");
    assert!(count("list", "scheduleexceptions") <= 2, "{report:?}");
    // One create per Job. A reconcile whose Job store has not yet seen the
    // Jobs it just created (a loaded machine) tries them again and gets
    // AlreadyExists: extra requests, but no Job is made twice and none
    // counts as re-created.
    assert!(count("create", "jobs") >= 20, "{report:?}");
    let jobs = Api::<k8s_openapi::api::batch::v1::Job>::namespaced(client.clone(), &ns)
        .list(
            &kube::api::ListParams::default()
                .labels(hibernator_core::wellknown::LABEL_EXECUTION_ID),
        )
        .await
        .unwrap()
        .items;
    assert_eq!(jobs.len(), 20, "{report:?}");
    let metrics = harness.ctx.metrics.encode().unwrap();
    let recreated = metrics
        .lines()
        .find_map(|l| l.strip_prefix("hibernator_runner_jobs_recreated_total "))
        .map_or(0.0, |n| n.trim().parse::<f64>().unwrap());
    assert_eq!(recreated, 0.0, "no recorded Job was missing: {metrics}");
    sim.resume();
    for name in &names {
        wait_phase(&plans, name, PlanPhase::Hibernated, Duration::from_secs(60)).await;
    }
    harness.stop().await;
}

/// Start-up with nothing due: each plan costs its finalizer patch, one
/// restore ConfigMap GET and one status write. The watch echo of the status
/// write reconciles nothing (it would read the ConfigMap a second time and
/// decide the same).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_echo_of_a_status_write_reconciles_nothing() {
    let cluster = cluster("ctl-echo").await;
    let Some(server) = cluster.api_server() else {
        return;
    };
    let client = cluster.client();
    let ns = cluster.namespace().to_string();
    let plans: Api<HibernatePlan> = Api::namespaced(client.clone(), &ns);
    let names: Vec<String> = (0..10).map(|i| format!("echo-{i}")).collect();
    create_plans(&plans, &names).await;
    server.reset_request_counts();
    // Monday noon: awake, next transition at 20:00
    let mut harness = Harness::new(&cluster, "2026-11-23T12:00:00Z".parse().unwrap());
    for name in &names {
        wait_phase(&plans, name, PlanPhase::Active, Duration::from_secs(60)).await;
    }
    // the echoes arrive (and would be reconciled) within this settle time
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let count = |verb: &str, resource: &str| server.request_count(verb, resource);
    let report = report(server);
    let done = reconciles(&harness);
    eprintln!("{done} reconciles; requests:\n  {}", report.join("\n  "));
    assert_eq!(count("update", "hibernateplans/status"), 10, "{report:?}");
    // also an echo that overtook its write's response reconciles nothing
    // (`echo` module)
    assert_eq!(count("get", "configmaps"), 10, "{report:?}");
    // per plan: the finalizer reconcile and the one that wrote the status
    assert_eq!(done, 20, "{report:?}");
    assert_eq!(harness.ctx.own_writes.pending(), 0, "every echo was seen");
    // A change made by someone else still reconciles: a label on one plan.
    let mut labelled = plans.get(&names[0]).await.unwrap();
    labelled
        .metadata
        .labels
        .get_or_insert_with(Default::default)
        .insert("team".into(), "a".into());
    plans
        .replace(&names[0], &PostParams::default(), &labelled)
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while reconciles(&harness) < 21 {
        assert!(tokio::time::Instant::now() < deadline, "no reconcile");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    harness.stop().await;
}

/// Every status write's response is held back 1 s, so its echo arrives
/// first: the echo reconciles nothing, and a change someone else
/// makes to a plan while its write is in flight still reconciles it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_during_a_status_write_reconciles_and_the_echo_does_not() {
    let cluster = cluster("ctl-write-race").await;
    let Some(server) = cluster.api_server() else {
        return;
    };
    let ns = cluster.namespace().to_string();
    let plans: Api<HibernatePlan> = Api::namespaced(cluster.client(), &ns);
    let names: Vec<String> = (0..5).map(|i| format!("race-{i}")).collect();
    create_plans(&plans, &names).await;
    let (inner, other) = (cluster.client(), plans.clone());
    let changed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let once = changed.clone();
    let slow_writes = tower::service_fn(move |request: http::Request<kube::client::Body>| {
        let (inner, other, once) = (inner.clone(), other.clone(), once.clone());
        async move {
            let path = request.uri().path().to_string();
            let write = request.method() == http::Method::PUT && path.ends_with("/status");
            let response = inner.send(request).await;
            if write {
                if path.ends_with("/race-0/status")
                    && !once.swap(true, std::sync::atomic::Ordering::SeqCst)
                {
                    // someone else labels the plan right after the write
                    let patch = serde_json::json!({"metadata": {"labels": {"team": "a"}}});
                    other
                        .patch(
                            "race-0",
                            &kube::api::PatchParams::default(),
                            &kube::api::Patch::Merge(&patch),
                        )
                        .await
                        .unwrap();
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            response
        }
    });
    server.reset_request_counts();
    // Monday noon: awake, next transition at 20:00
    let mut harness = Harness::with_client(
        &cluster,
        kube::Client::new(slow_writes, ns.clone()),
        "2026-11-23T12:00:00Z".parse().unwrap(),
        |_| {},
    );
    for name in &names {
        wait_phase(&plans, name, PlanPhase::Active, Duration::from_secs(60)).await;
    }
    // per plan the finalizer reconcile and the status write's; race-0 once
    // more for its label
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while reconciles(&harness) < 11 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the label did not reconcile"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let count = |verb: &str, resource: &str| server.request_count(verb, resource);
    let report = report(server);
    assert!(changed.load(std::sync::atomic::Ordering::SeqCst));
    assert_eq!(reconciles(&harness), 11, "{report:?}");
    assert_eq!(count("update", "hibernateplans/status"), 5, "{report:?}");
    assert_eq!(count("get", "configmaps"), 6, "{report:?}");
    assert_eq!(harness.ctx.own_writes.raced(), 5, "every echo came first");
    assert_eq!(
        harness.ctx.own_writes.held_back(),
        1,
        "the label was held back during race-0's write"
    );
    assert_eq!(harness.ctx.own_writes.pending(), 0, "{report:?}");
    harness.stop().await;
}

/// The watch's `ADDED` event of a Job the controller created reconciles
/// nothing, also when it arrives before the create's response (here every
/// Job create's response is held back 300 ms, so the watch always wins).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_echo_of_a_job_create_reconciles_nothing_even_before_its_response() {
    let cluster = cluster("ctl-create-echo").await;
    let Some(server) = cluster.api_server() else {
        return;
    };
    let client = cluster.client();
    let ns = cluster.namespace().to_string();
    let sim = JobSimulator::start(
        client.clone(),
        &ns,
        runner(client.clone(), RunnerLog::default(), no_failures()),
    );
    sim.pause();
    let plans: Api<HibernatePlan> = Api::namespaced(client.clone(), &ns);
    let names: Vec<String> = (0..5).map(|i| format!("create-echo-{i}")).collect();
    create_plans(&plans, &names).await;
    let inner = cluster.client();
    let slow_creates = tower::service_fn(move |request: http::Request<kube::client::Body>| {
        let inner = inner.clone();
        async move {
            let create =
                request.method() == http::Method::POST && request.uri().path().ends_with("/jobs");
            let response = inner.send(request).await;
            if create {
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            response
        }
    });
    server.reset_request_counts();
    // Monday 21:00: due, each plan creates its two Jobs at once
    let mut harness = Harness::with_client(
        &cluster,
        kube::Client::new(slow_creates, ns.clone()),
        "2026-11-23T21:00:00Z".parse().unwrap(),
        |_| {},
    );
    wait_job_creates(server, 10).await;
    // the last responses arrive, then any reconcile they would trigger
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let count = |verb: &str, resource: &str| server.request_count(verb, resource);
    let report = report(server);
    let done = reconciles(&harness);
    eprintln!("{done} reconciles; requests:\n  {}", report.join("\n  "));
    assert_eq!(count("create", "jobs"), 10, "{report:?}");
    assert_eq!(
        harness.ctx.own_creates.pending(),
        0,
        "every create was seen"
    );
    // per plan: the finalizer reconcile and the one that created the Jobs
    assert_eq!(done, 10, "{report:?}");
    sim.resume();
    harness.stop().await;
}

/// A create that finds its Job there already (the Job store behind the API
/// server) answers `AlreadyExists`, which counts as done. Events of the Job
/// the watch showed meanwhile were held back; they must still reconcile the
/// plan. Here the create's response waits until the Job has run, then says
/// `AlreadyExists`: the Job's completion arrived only during the create.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_s_change_during_a_create_that_found_it_reconciles() {
    let cluster = cluster("ctl-create-exists").await;
    if cluster.api_server().is_none() {
        return;
    }
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
            &plan("exists", 1, "{type: Parallel}"),
        )
        .await
        .unwrap();
    let (inner, jobs) = (
        cluster.client(),
        Api::<k8s_openapi::api::batch::v1::Job>::namespaced(client.clone(), &ns),
    );
    let found = tower::service_fn(move |request: http::Request<kube::client::Body>| {
        let (inner, jobs) = (inner.clone(), jobs.clone());
        async move {
            let create =
                request.method() == http::Method::POST && request.uri().path().ends_with("/jobs");
            let response = inner.send(request).await?;
            if !create || response.status() != http::StatusCode::CREATED {
                return Ok::<_, kube::Error>(response);
            }
            let body = http_body_util::BodyExt::collect(response.into_body())
                .await
                .unwrap()
                .to_bytes();
            let job: k8s_openapi::api::batch::v1::Job = serde_json::from_slice(&body).unwrap();
            let name = job.metadata.name.unwrap();
            // the Job runs to its end while the create is in flight, and the
            // watch shows that before the response (asserted below)
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            while tokio::time::Instant::now() < deadline {
                let job = jobs.get(&name).await?;
                if job.status.and_then(|s| s.succeeded).unwrap_or(0) > 0 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            let conflict = serde_json::json!({
                "kind": "Status", "apiVersion": "v1", "status": "Failure",
                "message": format!("jobs.batch \"{name}\" already exists"),
                "reason": "AlreadyExists", "code": 409,
                "details": {"name": name, "group": "batch", "kind": "jobs"}
            });
            Ok(http::Response::builder()
                .status(http::StatusCode::CONFLICT)
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(kube::client::Body::from(
                    serde_json::to_vec(&conflict).unwrap(),
                ))
                .unwrap())
        }
    });
    // Monday 21:00: due, the plan creates its Job at once
    let mut harness = Harness::with_client(
        &cluster,
        kube::Client::new(found, ns.clone()),
        "2026-11-23T21:00:00Z".parse().unwrap(),
        |_| {},
    );
    // the Job's completion reconciles: the plan hibernates (the Job check,
    // 15 s later, would not: the Job was seen)
    wait_phase(
        &plans,
        "exists",
        PlanPhase::Hibernated,
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(harness.ctx.own_creates.pending(), 0);
    assert_eq!(
        harness.ctx.own_creates.held_back(),
        1,
        "the Job's completion was held back during the create"
    );
    harness.stop().await;
}

/// The requeue at the next transition counts from the end of the reconcile,
/// not its start: a reconcile whose writes took time (the rate limiter at
/// start-up, a slow API server) still wakes its plan at the boundary. Here
/// the clock moves 10 s while the status write is on its way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_requeue_counts_from_the_end_of_the_reconcile() {
    use hibernator_operator::controller::{Context, ControllerConfig, metrics::Metrics, reconcile};
    use hibernator_reconcile::time::Clock;

    let cluster = cluster("ctl-requeue").await;
    let ns = cluster.namespace().to_string();
    // Monday 19:59: the off-hours start at 20:00, 60 s away
    let start: chrono::DateTime<chrono::Utc> = "2026-11-23T19:59:00Z".parse().unwrap();
    let clock = Clock::manual(start);
    let inner = cluster.client();
    let moving = clock.clone();
    let service = tower::service_fn(move |request: http::Request<kube::client::Body>| {
        let (inner, clock) = (inner.clone(), moving.clone());
        async move {
            if request.method() == http::Method::PUT && request.uri().path().ends_with("/status") {
                clock.set(clock.now() + chrono::Duration::seconds(10));
            }
            inner.send(request).await
        }
    });
    let client = kube::Client::new(service, ns.clone());
    let config = ControllerConfig {
        namespace: Some(ns.clone()),
        clock: clock.clone(),
        ..ControllerConfig::default()
    };
    let ctx = Arc::new(Context::new(client, config, Arc::new(Metrics::new())));
    let plans: Api<HibernatePlan> = Api::namespaced(cluster.client(), &ns);
    plans
        .create(
            &PostParams::default(),
            &plan("boundary", 1, "{type: Parallel}"),
        )
        .await
        .unwrap();
    // the first reconcile sets the finalizer; the second writes the status
    let fresh = plans.get("boundary").await.unwrap();
    reconcile(Arc::new(fresh), ctx.clone()).await.unwrap();
    let fresh = plans.get("boundary").await.unwrap();
    let action = reconcile(Arc::new(fresh), ctx.clone()).await.unwrap();
    let written = plans.get("boundary").await.unwrap();
    assert_eq!(
        written.status.map(|s| s.phase),
        Some(PlanPhase::Active),
        "the status was written"
    );
    assert_eq!(clock.now(), start + chrono::Duration::seconds(10));
    assert_eq!(
        action,
        kube::runtime::controller::Action::requeue(Duration::from_secs(50)),
        "requeued at 20:00 by the clock after the write"
    );
}
