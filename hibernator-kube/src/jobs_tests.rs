//! Tests of the Job builder.

use hibernator_core::input::PlanDocuments;
use hibernator_core::types::Operation;

use super::*;

fn plan() -> HibernatePlan {
    let mut plan = PlanDocuments::from_yaml(
        "apiVersion: hibernator.dev/v1alpha1\nkind: HibernatePlan\nmetadata: {name: dev, namespace: team-a}\nspec:\n  schedule: {timezone: UTC}\n  targets:\n    - {name: db, type: rds, timeout: 30m, connectorRef: {kind: CloudProvider, name: aws}}\n    - {name: web, type: ec2, connectorRef: {kind: CloudProvider, name: aws}}\n",
    )
    .unwrap()
    .plan;
    plan.metadata.uid = Some("1234".into());
    plan
}

fn request(target: &str, attempt: u32) -> JobRequest {
    JobRequest {
        target: target.into(),
        operation: Operation::Shutdown,
        cycle_id: "c20261123t210000z".into(),
        attempt,
    }
}

#[test]
fn builds_the_runner_job_of_the_contract() {
    let settings = RunnerSettings {
        grpc_endpoint: Some("http://hibernator:9090".into()),
        ..RunnerSettings::default()
    };
    let job = build_job(&plan(), &request("db", 1), &settings).unwrap();
    let meta = &job.metadata;
    assert_eq!(meta.name.as_deref(), Some("dev-db-sd-c20261123t210000z-a1"));
    assert_eq!(meta.namespace.as_deref(), Some("team-a"));
    let labels = meta.labels.as_ref().unwrap();
    for (k, v) in [
        (LABEL_PLAN, "dev"),
        (LABEL_TARGET, "db"),
        (LABEL_OPERATION, "shutdown"),
        (LABEL_CYCLE_ID, "c20261123t210000z"),
        (LABEL_EXECUTION_ID, "dev-db-sd-c20261123t210000z-a1"),
    ] {
        assert_eq!(labels.get(k).map(String::as_str), Some(v), "{k}");
    }
    let annotations = meta.annotations.as_ref().unwrap();
    assert_eq!(
        annotations.get(ANNOTATION_PLAN).map(String::as_str),
        Some("dev")
    );
    assert_eq!(
        annotations.get(ANNOTATION_TARGET).map(String::as_str),
        Some("db")
    );
    let owner = &meta.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
        ("HibernatePlan", "1234", Some(true))
    );
    let spec = job.spec.as_ref().unwrap();
    assert_eq!(spec.backoff_limit, Some(0));
    assert_eq!(spec.active_deadline_seconds, Some(1800));
    let pod = spec.template.spec.as_ref().unwrap();
    assert_eq!(
        pod.service_account_name.as_deref(),
        Some("hibernator-runner")
    );
    assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
    let container = &pod.containers[0];
    assert_eq!(container.args.as_deref(), Some(&["runner".to_string()][..]));
    assert_eq!(
        container.termination_message_policy.as_deref(),
        Some("FallbackToLogsOnError")
    );
    let env: std::collections::BTreeMap<_, _> = container
        .env
        .as_ref()
        .unwrap()
        .iter()
        .map(|e| (e.name.as_str(), e.value.clone().unwrap()))
        .collect();
    assert_eq!(env["HIBERNATOR_PLAN"], "dev");
    assert_eq!(env["HIBERNATOR_PLAN_NAMESPACE"], "team-a");
    assert_eq!(env["HIBERNATOR_TARGET"], "db");
    assert_eq!(env["HIBERNATOR_OPERATION"], "shutdown");
    assert_eq!(
        env["HIBERNATOR_EXECUTION_ID"],
        "dev-db-sd-c20261123t210000z-a1"
    );
    assert_eq!(env["HIBERNATOR_CYCLE_ID"], "c20261123t210000z");
    assert_eq!(env["HIBERNATOR_GRPC_ENDPOINT"], "http://hibernator:9090");
    assert_eq!(
        env["HIBERNATOR_STREAM_TOKEN_PATH"],
        "/var/run/secrets/stream/token"
    );
    assert!(!env.contains_key("HIBERNATOR_WEBHOOK_ENDPOINT"));
    let security = container.security_context.as_ref().unwrap();
    assert_eq!(security.allow_privilege_escalation, Some(false));
    assert_eq!(security.run_as_non_root, Some(true));
    let mount = &container.volume_mounts.as_ref().unwrap()[0];
    assert_eq!(mount.mount_path, "/var/run/secrets/stream");
    let projection = pod.volumes.as_ref().unwrap()[0]
        .projected
        .as_ref()
        .unwrap()
        .sources
        .as_ref()
        .unwrap()[0]
        .service_account_token
        .clone()
        .unwrap();
    assert_eq!(
        projection.audience.as_deref(),
        Some("hibernator-control-plane")
    );
    assert_eq!(projection.expiration_seconds, Some(600));
    assert_eq!(projection.path, "token");
    // the default timeout is one hour
    let web = build_job(&plan(), &request("web", 1), &settings).unwrap();
    assert_eq!(web.spec.unwrap().active_deadline_seconds, Some(3600));
    assert!(matches!(
        build_job(&plan(), &request("nope", 1), &settings),
        Err(JobBuildError::UnknownTarget { .. })
    ));
}

#[test]
fn builds_the_enforce_job_of_a_check_like_a_runner_job() {
    let request = EnforceJobRequest {
        target: "db".into(),
        cycle_id: "c20261123t210000z".into(),
        check_id: "e20261123t220000z".into(),
    };
    let job = build_enforce_job(&plan(), &request, &RunnerSettings::default()).unwrap();
    let name = "dev-db-ef-e20261123t220000z";
    assert_eq!(job.metadata.name.as_deref(), Some(name));
    let labels = job.metadata.labels.as_ref().unwrap();
    for (k, v) in [
        (LABEL_OPERATION, "enforce"),
        (LABEL_CYCLE_ID, "c20261123t210000z"),
        (LABEL_ENFORCE_CHECK, "e20261123t220000z"),
        (LABEL_EXECUTION_ID, name),
    ] {
        assert_eq!(labels.get(k).map(String::as_str), Some(v), "{k}");
    }
    let pod = job.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
    let env = pod.containers[0].env.as_ref().unwrap();
    let value = |n: &str| {
        env.iter()
            .find(|e| e.name == n)
            .and_then(|e| e.value.clone())
    };
    assert_eq!(value(ENV_OPERATION).as_deref(), Some("enforce"));
    assert_eq!(value(ENV_CYCLE_ID).as_deref(), Some("c20261123t210000z"));
    // The observation the controller reads back.
    let o = hibernator_reconcile::enforce::observe_enforce_job(&job, None).unwrap();
    assert_eq!((o.name.as_str(), o.target.as_str()), (name, "db"));
    // A cycle Job carries no check label.
    let cycle = build_job(
        &plan(),
        &request_for_enforce_check(),
        &RunnerSettings::default(),
    )
    .unwrap();
    assert!(
        !cycle
            .metadata
            .labels
            .unwrap()
            .contains_key(LABEL_ENFORCE_CHECK)
    );
}

fn request_for_enforce_check() -> JobRequest {
    request("db", 1)
}
