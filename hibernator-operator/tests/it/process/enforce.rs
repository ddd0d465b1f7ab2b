//! Drift re-enforcement as processes: `hibernator runner` runs a shutdown,
//! an instance is started behind the plan's back, and a second runner
//! process with `--operation=enforce` puts it back to sleep — the same
//! binary, arguments and in-cluster config a controller's enforce Job uses.

use std::time::Duration;

use aws_sdk_ec2::types::InstanceStateName;
use hibernator_core::wellknown::restore_config_map_name;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;

use super::cycle::{Aws, estate};
use super::support::World;

/// Runs one runner process to its end and returns its exit code and
/// termination message.
async fn run_runner(world: &World, operation: &str, execution: &str) -> (i32, String) {
    let ns = world.ns();
    let args = vec![
        "runner".to_string(),
        format!("--namespace={ns}"),
        "--plan=sleepy".to_string(),
        "--target=app".to_string(),
        format!("--operation={operation}"),
        format!("--execution-id={execution}"),
        "--cycle-id=c20261123t200000z".to_string(),
    ];
    let mut runner = world
        .start_pod(operation, "hibernator-runner", args, Vec::new(), Vec::new())
        .await;
    match runner.process.wait_timeout(Duration::from_secs(120)).await {
        Some(exit) => (exit.code, exit.message),
        None => panic!(
            "the {operation} runner did not finish; last log lines:\n{}",
            runner.tail()
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enforce_runner_process_puts_back_to_sleep_what_woke_up_and_nothing_else() {
    let world = World::start("proc-enforce").await;
    estate(&world).await;
    let ns = world.ns();
    let aws = Aws::new(world.moto.endpoint());
    let recorded = aws.launch(1, "sleepy-app").await;
    let plan: hibernator_core::types::HibernatePlan = serde_json::from_value(json!({
        "apiVersion": "hibernator.dev/v1alpha1", "kind": "HibernatePlan",
        "metadata": {"name": "sleepy"},
        "spec": {
            "schedule": {"timezone": "UTC", "offHours": [
                {"start": "20:00", "end": "06:00", "daysOfWeek": ["MON"]}]},
            "behavior": {"enforce": {"enabled": true, "interval": "5m"}},
            "targets": [{"name": "app", "type": "ec2",
                "connectorRef": {"kind": "CloudProvider", "name": "aws-dev"},
                "parameters": {"selector": {"tags": {"role": "sleepy-app"}}}}],
        },
    }))
    .unwrap();
    let plans =
        Api::<hibernator_core::types::HibernatePlan>::namespaced(world.cluster.client(), &ns);
    plans.create(&PostParams::default(), &plan).await.unwrap();

    let (code, message) = run_runner(&world, "shutdown", "exec-shutdown").await;
    assert_eq!(code, 0, "{message}");
    assert_eq!(aws.states(&recorded).await, [InstanceStateName::Stopped]);
    let restore = Api::<ConfigMap>::namespaced(world.cluster.client(), &ns);
    let ledger = restore
        .get(&restore_config_map_name("sleepy"))
        .await
        .unwrap()
        .data;

    // Before the plan is Hibernated by that cycle, an enforce run refuses.
    let (code, message) = run_runner(&world, "enforce", "exec-enforce-early").await;
    assert_ne!(
        code, 0,
        "enforce must refuse while the plan is not hibernated: {message}"
    );

    plans
        .patch_status(
            "sleepy",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {
                "phase": "Hibernated",
                "currentCycleId": "c20261123t200000z",
                "currentOperation": "shutdown",
                "executions": [{"target": "app", "executor": "ec2", "state": "Completed"}],
            }})),
        )
        .await
        .unwrap();
    // Someone starts the recorded instance by hand, and launches another one
    // with the same tag that the plan never hibernated.
    aws.ec2
        .start_instances()
        .set_instance_ids(Some(recorded.clone()))
        .send()
        .await
        .unwrap();
    let stranger = aws.launch(1, "sleepy-app").await;
    assert_eq!(aws.states(&recorded).await, [InstanceStateName::Running]);

    let (code, message) = run_runner(&world, "enforce", "exec-enforce").await;
    assert_eq!(code, 0, "{message}");
    let report: serde_json::Value =
        serde_json::from_str(&message).unwrap_or_else(|e| panic!("{e}: {message}"));
    assert_eq!(report["rehibernated"], 1, "{report}");
    assert_eq!(aws.states(&recorded).await, [InstanceStateName::Stopped]);
    assert_eq!(
        aws.states(&stranger).await,
        [InstanceStateName::Running],
        "a resource outside the restore ledger is never touched"
    );
    let after = restore
        .get(&restore_config_map_name("sleepy"))
        .await
        .unwrap()
        .data;
    assert_eq!(after, ledger, "an enforcement never rewrites the ledger");
    world.cleanup().await;
}
