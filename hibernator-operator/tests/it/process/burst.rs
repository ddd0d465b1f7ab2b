//! Issue 17 on the process tier: several plans due at once when the
//! controller process starts, while the API server fails Job creates with
//! 504, 500 and 429 (and a status write and Job lists): every plan gets all
//! its Jobs and reaches `Hibernated`, none waits for the next boundary, also
//! with a tight `--kube-qps`.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_ec2::types::InstanceStateName;
use hibernator_core::types::{HibernatePlan, PlanPhase};
use k8s_openapi::api::batch::v1::Job;
use kube::Api;
use kube::api::{ListParams, PostParams};
use serde_json::json;

use super::cycle::{Aws, estate};
use super::support::{Ports, World, get, metric, wait_ok, wait_phase};

const PLANS: usize = 4;

/// A plan whose schedule is off all day, every day: due the moment the
/// controller starts (no minute boundary to wait for).
fn always_off(name: &str, role: &str) -> HibernatePlan {
    serde_json::from_value(json!({
        "apiVersion": "hibernator.dev/v1alpha1", "kind": "HibernatePlan",
        "metadata": {"name": name},
        "spec": {
            "schedule": {"timezone": "UTC", "offHours": [
                {"start": "00:00", "end": "24:00",
                 "daysOfWeek": ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"]},
            ]},
            "execution": {"strategy": {"type": "Parallel"}},
            "behavior": {"retries": 0},
            "targets": [
                {"name": "a", "type": "ec2",
                 "connectorRef": {"kind": "CloudProvider", "name": "aws-dev"},
                 "parameters": {"selector": {"tags": {"role": format!("{role}-a")}}}},
                {"name": "b", "type": "ec2",
                 "connectorRef": {"kind": "CloudProvider", "name": "aws-dev"},
                 "parameters": {"selector": {"tags": {"role": format!("{role}-b")}}}},
            ],
        },
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plans_due_at_start_up_get_every_job_despite_api_faults() {
    let world = World::start("proc-burst").await;
    let Some(server) = world.cluster.api_server() else {
        // fault hooks need the testkit API server
        return;
    };
    let aws = Aws::new(world.moto.endpoint());
    estate(&world).await;
    let plans: Api<HibernatePlan> = Api::namespaced(world.cluster.client(), &world.ns());
    let mut instances = Vec::new();
    for i in 0..PLANS {
        let role = format!("burst{i}");
        instances.extend(aws.launch(1, &format!("{role}-a")).await);
        instances.extend(aws.launch(1, &format!("{role}-b")).await);
        plans
            .create(&PostParams::default(), &always_off(&format!("p{i}"), &role))
            .await
            .unwrap();
    }
    // The burst meets a failing API server: Job creates after the status
    // writes fail (504 and 429 are retried by the client, 500 is not), one
    // status write times out, Job lists fail.
    server.fail_next("create", "jobs", 2, 504);
    server.fail_next("create", "jobs", 3, 500);
    server.fail_next("create", "jobs", 2, 429);
    server.fail_next("update", "hibernateplans/status", 1, 504);
    server.fail_next("list", "jobs", 2, 500);

    let ports = Ports::free();
    // a tight client-side rate limit: the burst queues, the Lease (its own
    // client) keeps being renewed, and every plan still gets its Jobs
    let controller = world
        .start_controller_with(&ports, "grpc", &["--kube-qps=10", "--kube-burst=5"])
        .await;
    wait_ok(
        &format!("http://127.0.0.1:{}/readyz", ports.health),
        &controller,
        Duration::from_secs(60),
    )
    .await;
    for i in 0..PLANS {
        wait_phase(
            &plans,
            &format!("p{i}"),
            PlanPhase::Hibernated,
            Duration::from_secs(150),
            &controller,
        )
        .await;
    }
    let jobs = Api::<Job>::namespaced(world.cluster.client(), &world.ns())
        .list(&ListParams::default().labels(hibernator_core::wellknown::LABEL_EXECUTION_ID))
        .await
        .unwrap();
    let mut per_plan: BTreeMap<String, usize> = BTreeMap::new();
    for job in &jobs.items {
        let plan = job.metadata.annotations.as_ref().unwrap()
            [hibernator_core::wellknown::ANNOTATION_PLAN]
            .clone();
        *per_plan.entry(plan).or_default() += 1;
    }
    assert_eq!(per_plan.len(), PLANS, "{per_plan:?}");
    assert!(per_plan.values().all(|n| *n == 2), "{per_plan:?}");
    world.assert_no_job_ran_twice();
    assert!(
        aws.states(&instances)
            .await
            .iter()
            .all(|s| *s == InstanceStateName::Stopped)
    );
    let (_, metrics) = get(&format!("http://127.0.0.1:{}/metrics", ports.metrics))
        .await
        .unwrap();
    assert!(
        metric(&metrics, "hibernator_reconcile_errors_total") >= 1.0,
        "the failed creates are reconcile errors:\n{metrics}"
    );
    assert!(
        metric(&metrics, "hibernator_runner_jobs_recreated_total") >= 1.0,
        "the Jobs recorded in status and missing were created again:\n{metrics}"
    );
    let mut controller = controller;
    let exit = controller.terminate().await;
    assert_eq!(exit.code, 0, "controller exit after SIGTERM: {exit:?}");
    world.cleanup().await;
}
