//! The contract between the Job builder and `hibernator runner`: the
//! runner accepts exactly the args and environment the controller's Jobs
//! carry.

use hibernator_core::input::PlanDocuments;
use hibernator_core::types::{HibernatePlan, Operation};
use hibernator_kube::jobs::{RunnerSettings, build_job};
use hibernator_reconcile::JobRequest;
use k8s_openapi::api::batch::v1::Job;

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
    let mut setup = super::streaming::StreamingSetup::default();
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
        log_format: Some("json".into()),
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
    tls.log_format = Some("text".into());
    for (settings, tls_expected) in [
        (RunnerSettings::default(), false),
        (streaming, false),
        (tls, true),
    ] {
        let job = build_job(&plan(), &request("db", 1), &settings).unwrap();
        let args = runner_args(&job);
        assert_eq!(args.target, "db");
        assert_eq!(args.plan, "dev");
        assert_eq!(args.operation, Operation::Shutdown.into());
        assert_eq!(args.execution_id, job.metadata.name.clone());
        assert_eq!(args.grpc_tls, tls_expected, "{}", settings.stream_transport);
        // The runner logs in the format the controller asked for (unset:
        // the runner's default).
        assert_eq!(
            args.log_format.map(|f| f.as_str().to_string()),
            settings.log_format
        );
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
