//! The controller process SIGKILLed mid-cycle, right after its first runner
//! Job, and started again: no Job is created twice, nothing is lost, and the
//! cycle and the next one complete. Runners stream over the webhook.

use std::time::Duration;

use aws_sdk_ec2::types::InstanceStateName;
use hibernator_core::types::{HibernatePlan, PlanPhase};
use kube::Api;
use kube::api::PostParams;
use serde_json::json;

use super::cycle::{Aws, estate};
use super::support::{Ports, World, get, metric, next_window, wait_ok, wait_phase};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_killed_after_its_first_job_restarts_without_duplicates() {
    let world = World::start("proc-kill").await;
    let aws = Aws::new(world.moto.endpoint());
    let batch = aws.launch(2, "batch").await;
    estate(&world).await;
    let ns = world.ns();
    let (start, end, at) = next_window(Duration::from_secs(8));
    let plan: HibernatePlan = serde_json::from_value(json!({
        "apiVersion": "hibernator.dev/v1alpha1", "kind": "HibernatePlan",
        "metadata": {"name": "nightly"},
        "spec": {
            "schedule": {"timezone": "UTC", "offHours": [
                {"start": start, "end": end,
                 "daysOfWeek": ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"]},
            ]},
            "execution": {"strategy": {"type": "Parallel", "maxConcurrency": 1}},
            "behavior": {"retries": 0},
            "targets": [
                {"name": "workloads", "type": "workloadscaler",
                 "connectorRef": {"kind": "K8SCluster", "name": "here"},
                 "parameters": {"includedGroups": ["deployments"],
                    "namespace": {"literals": [ns]},
                    "workloadSelector": {"matchLabels": {"tier": "web"}},
                    "awaitCompletion": {"enabled": false}}},
                {"name": "batch", "type": "ec2",
                 "connectorRef": {"kind": "CloudProvider", "name": "aws-dev"},
                 "parameters": {"selector": {"tags": {"role": "batch"}}}},
            ],
        },
    }))
    .unwrap();
    let plans: Api<HibernatePlan> = Api::namespaced(world.cluster.client(), &ns);
    plans.create(&PostParams::default(), &plan).await.unwrap();

    // Same ports for both processes, as behind one Service.
    let ports = Ports::free();
    let mut first = world.start_controller(&ports, "webhook").await;
    wait_phase(
        &plans,
        "nightly",
        PlanPhase::Active,
        Duration::from_secs(60),
        &first,
    )
    .await;

    // Hold the Jobs (as a slow kubelet would) so the kill lands mid-cycle.
    world.pause_jobs();
    let deadline = at + chrono::Duration::seconds(60);
    while world.job_names().await.is_empty() {
        assert!(
            chrono::Utc::now() < deadline,
            "no runner Job after the window's start; last log lines:\n{}",
            first.tail()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    first.process.signal(9).unwrap();
    let killed = first.process.wait_timeout(Duration::from_secs(10)).await;
    assert_eq!(
        killed.map(|e| e.code),
        Some(137),
        "SIGKILL ends the process"
    );
    let before_restart = world.job_names().await;

    let second = world.start_controller(&ports, "webhook").await;
    wait_ok(
        &format!("http://127.0.0.1:{}/healthz", ports.health),
        &second,
        Duration::from_secs(60),
    )
    .await;
    world.resume_jobs();
    // The Lease of the killed process must expire before the new one leads.
    let hibernated = wait_phase(
        &plans,
        "nightly",
        PlanPhase::Hibernated,
        Duration::from_secs(120),
        &second,
    )
    .await;
    let after = world.job_names().await;
    assert_eq!(after.len(), 2, "one Job per target: {after:?}");
    assert!(
        before_restart.iter().all(|j| after.contains(j)),
        "the Jobs the killed process created are the cycle's: {before_restart:?} vs {after:?}"
    );
    assert!(
        aws.states(&batch)
            .await
            .iter()
            .all(|s| *s == InstanceStateName::Stopped),
        "{:#?}",
        hibernated.status
    );
    assert_eq!(world.web_replicas().await, Some(0));

    // The runners' webhook posts reached the new process.
    let (_, metrics) = get(&format!("http://127.0.0.1:{}/metrics", ports.metrics))
        .await
        .unwrap();
    assert!(
        metric(&metrics, "hibernator_streaming_logs_total") > 0.0,
        "{metrics}"
    );
    assert_eq!(
        metric(&metrics, "hibernator_streaming_auth_failures_total"),
        0.0,
        "{metrics}"
    );

    // The next boundary: the new process wakes everything up.
    wait_phase(
        &plans,
        "nightly",
        PlanPhase::Active,
        Duration::from_secs(150),
        &second,
    )
    .await;
    assert!(
        aws.states(&batch)
            .await
            .iter()
            .all(|s| *s == InstanceStateName::Running)
    );
    assert_eq!(world.web_replicas().await, Some(2));
    let all = world.job_names().await;
    assert_eq!(all.len(), 4, "one Job per target and operation: {all:?}");
    world.assert_no_job_ran_twice();
    let mut second = second;
    let exit = second.terminate().await;
    assert_eq!(exit.code, 0, "{exit:?}");
    world.cleanup().await;
}

/// SIGTERM while a reconcile waits on an API server that stopped answering
/// (every request delayed two minutes from the window's start): the
/// controller abandons it after its shutdown grace and exits 0, inside the
/// chart's 30 s termination grace period (`Child::terminate` allows 10 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_exits_in_time_while_a_reconcile_waits_on_a_stuck_api_server() {
    let world = World::start("proc-term").await;
    let Some(server) = world.cluster.api_server() else {
        return; // latency injection needs the testkit API server
    };
    estate(&world).await;
    let ns = world.ns();
    let (start, end, at) = next_window(Duration::from_secs(8));
    let plan: HibernatePlan = serde_json::from_value(json!({
        "apiVersion": "hibernator.dev/v1alpha1", "kind": "HibernatePlan",
        "metadata": {"name": "stuck"},
        "spec": {
            "schedule": {"timezone": "UTC", "offHours": [
                {"start": start, "end": end,
                 "daysOfWeek": ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"]},
            ]},
            "targets": [
                {"name": "batch", "type": "ec2",
                 "connectorRef": {"kind": "CloudProvider", "name": "aws-dev"},
                 "parameters": {"selector": {"tags": {"role": "batch"}}}},
            ],
        },
    }))
    .unwrap();
    let plans: Api<HibernatePlan> = Api::namespaced(world.cluster.client(), &ns);
    plans.create(&PostParams::default(), &plan).await.unwrap();
    let ports = Ports::free();
    let mut controller = world.start_controller(&ports, "webhook").await;
    wait_phase(
        &plans,
        "stuck",
        PlanPhase::Active,
        Duration::from_secs(60),
        &controller,
    )
    .await;
    // From just before the window's start every request waits two minutes:
    // the reconcile at the start hangs in its first request.
    let until =
        |t: chrono::DateTime<chrono::Utc>| (t - chrono::Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(until(at - chrono::Duration::seconds(2))).await;
    server.set_latency(Duration::from_secs(120));
    tokio::time::sleep(until(at + chrono::Duration::seconds(3))).await;
    let exit = controller.terminate().await;
    server.set_latency(Duration::ZERO);
    assert_eq!(exit.code, 0, "{}", controller.tail());
    assert!(
        controller
            .tail()
            .contains("reconciles still in flight after SIGTERM"),
        "{}",
        controller.tail()
    );
}

/// A replica that cannot renew its Lease for longer than the lease duration
/// (here the API server refuses every Lease read) gives up leadership and
/// exits non-zero, so that Kubernetes restarts it as a candidate. Before,
/// the controller stopped but the process lived on, its probe and metrics
/// servers still answering: a replica that would never lead again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_cannot_renew_its_lease_exits() {
    use k8s_openapi::api::coordination::v1::Lease;

    let world = World::start("proc-lease").await;
    let Some(server) = world.cluster.api_server() else {
        return; // fault injection needs the testkit API server
    };
    let ports = Ports::free();
    let mut controller = world.start_controller(&ports, "webhook").await;
    let leases: Api<Lease> = Api::all(world.cluster.client());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let held = leases
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .iter()
            .any(|l| l.spec.as_ref().is_some_and(|s| s.holder_identity.is_some()));
        if held {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no Lease was acquired:\n{}",
            controller.tail()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    server.fail_next("get", "leases", 1000, 500);
    // renewals every 5 s, lease duration 15 s: out after about 20 s
    let exit = controller
        .process
        .wait_timeout(Duration::from_secs(60))
        .await
        .unwrap_or_else(|| panic!("still running a minute later:\n{}", controller.tail()));
    assert_ne!(exit.code, 0, "{}", controller.tail());
    assert!(
        controller.tail().contains("lost leadership"),
        "{}",
        controller.tail()
    );
}
