//! Tests of Job names, the Job builder and Job observation.

use hibernator_core::input::PlanDocuments;
use k8s_openapi::api::batch::v1::{JobCondition, JobStatus};

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
fn names_are_deterministic_valid_and_distinct() {
    let a = job_name("dev", "db", Operation::Shutdown, "c1", 1);
    assert_eq!(a, "dev-db-sd-c1-a1");
    assert_eq!(a, job_name("dev", "db", Operation::Shutdown, "c1", 1));
    assert_ne!(a, job_name("dev", "db", Operation::Wakeup, "c1", 1));
    assert_ne!(a, job_name("dev", "db", Operation::Shutdown, "c1", 2));
    let long_plan = "p".repeat(53);
    let long_target = "t".repeat(63);
    let x = job_name(
        &long_plan,
        &long_target,
        Operation::Shutdown,
        "c20261123t210000z",
        1,
    );
    let y = job_name(
        &long_plan,
        &long_target,
        Operation::Shutdown,
        "c20261123t210000z",
        2,
    );
    for name in [&x, &y] {
        assert!(name.len() <= 63, "{name}");
        assert!(
            hibernator_core::validation::check_dns_label(name, 63).is_ok(),
            "{name}"
        );
    }
    assert_ne!(x, y, "the hash keeps cut names distinct");
    assert_eq!(dns_label("Dev_Plan", 63).len(), "dev-plan".len() + 9);
    assert_eq!(plan_label("dev"), "dev");
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

fn with_status(mut job: Job, status: JobStatus) -> Job {
    job.status = Some(status);
    job
}

#[test]
fn observes_running_succeeded_and_failed_jobs() {
    let job = build_job(&plan(), &request("db", 2), &RunnerSettings::default()).unwrap();
    let running = observe_job(&job, None).unwrap();
    assert_eq!(
        (running.phase, running.attempt, running.target.as_str()),
        (JobPhase::Running, 2, "db")
    );
    let done = observe_job(
        &with_status(
            job.clone(),
            JobStatus {
                succeeded: Some(1),
                ..JobStatus::default()
            },
        ),
        Some(r#"{"success":true,"message":"2 instances stopped","resources":2,"attempts":1}"#),
    )
    .unwrap();
    assert_eq!(done.phase, JobPhase::Succeeded);
    assert_eq!(done.message.as_deref(), Some("2 instances stopped"));
    let failed = with_status(
        job.clone(),
        JobStatus {
            failed: Some(1),
            conditions: Some(vec![JobCondition {
                type_: "Failed".into(),
                status: "True".into(),
                reason: Some("DeadlineExceeded".into()),
                message: Some("Job was active longer than specified deadline".into()),
                ..JobCondition::default()
            }]),
            ..JobStatus::default()
        },
    );
    let deadline = observe_job(&failed, None).unwrap();
    assert_eq!(deadline.phase, JobPhase::Failed);
    assert!(deadline.retryable);
    assert!(deadline.message.unwrap().contains("DeadlineExceeded"));
    let permanent = observe_job(
        &failed,
        Some(
            &crate::runner::TerminationMessage {
                success: false,
                message: "AccessDenied".into(),
                resources: 0,
                attempts: 1,
            }
            .to_json(),
        ),
    )
    .unwrap();
    assert!(!permanent.retryable);
    assert_eq!(permanent.message.as_deref(), Some("AccessDenied"));
    let logs = observe_job(&failed, Some("panic: something\nat line 3")).unwrap();
    assert!(
        logs.retryable,
        "a crash without a runner result may be retried"
    );
    assert!(logs.message.unwrap().contains("panic"));
}

/// The Job's container args and env are exactly what `hibernator runner`
/// accepts, with and without streaming (the contract between the two).
/// A self-signed CA certificate (PEM).
fn ca_pem(name: &str) -> String {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let key = rcgen::KeyPair::generate().unwrap();
    params.self_signed(&key).unwrap().pem()
}

/// Runner settings as the controller derives them from a streaming
/// configuration with gRPC TLS on (the chart's `streaming.yaml` shape).
fn tls_settings(certs: &std::path::Path) -> RunnerSettings {
    let mut setup = super::super::streaming::StreamingSetup::default();
    setup.server.grpc.endpoint =
        Some("https://hibernator-controller.hibernator-system.svc:50051".into());
    setup.server.webhook.endpoint =
        Some("http://hibernator-controller.hibernator-system.svc:8082/logs".into());
    setup.server.grpc.tls.enabled = true;
    setup.server.grpc.tls.cert_path = certs.join("tls.crt");
    setup.server.grpc.tls.key_path = certs.join("tls.key");
    let mut settings = RunnerSettings::default();
    setup.apply_to(&mut settings).unwrap();
    settings
}

/// The runner's parsed arguments of a Job's container.
fn runner_args(job: &Job) -> crate::runner::RunnerArgs {
    let container = &job
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0];
    let env: std::collections::BTreeMap<String, String> = container
        .env
        .iter()
        .flatten()
        .map(|e| (e.name.clone(), e.value.clone().unwrap_or_default()))
        .collect();
    crate::runner::RunnerArgs::from_container(container.args.as_deref().unwrap_or_default(), &env)
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn the_runner_accepts_the_jobs_args_and_env() {
    let streaming = RunnerSettings {
        grpc_endpoint: Some("hibernator-controller.hibernator-system.svc:50051".into()),
        webhook_endpoint: Some(
            "http://hibernator-controller.hibernator-system.svc:8082/logs".into(),
        ),
        stream_transport: "auto".into(),
        log_format: Some(crate::logging::LogFormat::Json),
        extra_env: vec![
            ("HIBERNATOR_STREAM_MAX_RETRIES".into(), "5".into()),
            ("HIBERNATOR_STREAM_TIMEOUT".into(), "45s".into()),
            ("HIBERNATOR_STREAM_QUEUE_SIZE".into(), "2500".into()),
        ],
        ..RunnerSettings::default()
    };
    let certs = tempfile::tempdir().unwrap();
    let ca = ca_pem("runner-ca");
    std::fs::write(certs.path().join("ca.crt"), &ca).unwrap();
    let mut tls = tls_settings(certs.path());
    tls.log_format = Some(crate::logging::LogFormat::Text);
    for (settings, tls_expected) in [
        (RunnerSettings::default(), false),
        (streaming, false),
        (tls, true),
    ] {
        let job = build_job(&plan(), &request("db", 1), &settings).unwrap();
        let args = runner_args(&job);
        assert_eq!(args.target, "db");
        assert_eq!(args.plan, "dev");
        assert_eq!(args.operation, Operation::Shutdown);
        assert_eq!(args.execution_id, job.metadata.name.clone());
        assert_eq!(args.grpc_tls, tls_expected, "{}", settings.stream_transport);
        // The runner logs in the format the controller asked for (unset:
        // the runner's default).
        assert_eq!(args.log_format, settings.log_format);
        // Every streaming setting the Job carries reaches the runner.
        for (name, value) in &settings.extra_env {
            match name.as_str() {
                "HIBERNATOR_STREAM_MAX_RETRIES" => {
                    assert_eq!(args.stream_max_retries, Some(value.parse().unwrap()));
                }
                "HIBERNATOR_STREAM_TIMEOUT" => assert_eq!(
                    args.stream_timeout,
                    Some(hibernator_core::duration::parse_duration(value).unwrap())
                ),
                "HIBERNATOR_STREAM_QUEUE_SIZE" => {
                    assert_eq!(args.stream_queue_size, Some(value.parse().unwrap()));
                }
                _ => {}
            }
        }
        if tls_expected {
            // The runner has a trust root: the controller's CA, inline.
            assert_eq!(args.grpc_tls_ca, None);
            assert_eq!(args.grpc_tls_ca_pem.as_deref(), Some(ca.as_str()));
        }
    }
}

#[test]
fn each_job_gets_the_current_runner_ca() {
    let certs = tempfile::tempdir().unwrap();
    let path = certs.path().join("ca.crt");
    std::fs::write(&path, ca_pem("first")).unwrap();
    let settings = tls_settings(certs.path());
    assert_eq!(settings.grpc_tls_ca.as_deref(), Some(path.as_path()));
    assert!(
        !settings
            .extra_env
            .iter()
            .any(|(k, _)| k == "HIBERNATOR_GRPC_TLS_CA_PEM"),
        "the CA is not frozen at start-up"
    );

    let rotated = ca_pem("rotated");
    std::fs::write(&path, &rotated).unwrap();
    let job = build_job(&plan(), &request("db", 2), &settings).unwrap();
    assert_eq!(
        runner_args(&job).grpc_tls_ca_pem.as_deref(),
        Some(rotated.as_str())
    );

    std::fs::remove_file(&path).unwrap();
    let error = build_job(&plan(), &request("db", 3), &settings)
        .unwrap_err()
        .to_string();
    assert!(error.contains("streaming.grpc.tls.caPath"), "{error}");
    assert!(error.contains(&path.display().to_string()), "{error}");
}
