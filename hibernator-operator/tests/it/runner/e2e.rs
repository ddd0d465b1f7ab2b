//! The runner end to end, in-process: plan, connector and Secret in the API
//! server, EC2 instances in moto.

use std::collections::BTreeMap;

use aws_sdk_ec2::Client as Ec2;
use aws_sdk_ec2::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_ec2::types::{InstanceStateName, ResourceType, Tag, TagSpecification};
use hibernator_core::restore::RestoreStore;
use hibernator_core::types::{CloudProvider, HibernatePlan, Operation};
use hibernator_kube::ConfigMapRestoreStore;
use hibernator_operator::runner::{RunnerArgs, RunnerOutcome, TerminationMessage, run};
use hibernator_testkit::kube::TestCluster;
use hibernator_testkit::moto::MotoServer;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, ObjectMeta, PostParams};
use serde_json::json;

use super::cluster;

const REGION: &str = "eu-central-1";

struct Fixture {
    cluster: TestCluster,
    moto: MotoServer,
    ec2: Ec2,
    dir: tempfile::TempDir,
}

async fn fixture(prefix: &str) -> Fixture {
    let cluster = cluster(prefix).await;
    let moto = MotoServer::start().await.expect("moto server");
    let config = aws_sdk_ec2::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(moto.endpoint())
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .build();
    let ns = cluster.namespace().to_string();
    let client = cluster.client();
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some("aws-keys".into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([
            ("AWS_ACCESS_KEY_ID".into(), ByteString(b"testing".to_vec())),
            (
                "AWS_SECRET_ACCESS_KEY".into(),
                ByteString(b"testing".to_vec()),
            ),
        ])),
        ..Default::default()
    };
    Api::<Secret>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let provider: CloudProvider = serde_json::from_value(json!({
        "apiVersion": "hibernator.dev/v1alpha1", "kind": "CloudProvider",
        "metadata": {"name": "aws-dev"},
        "spec": {"type": "aws", "aws": {
            "accountId": "123456789012", "region": REGION,
            "auth": {"static": {"secretRef": {"name": "aws-keys"}}},
        }},
    }))
    .unwrap();
    Api::<CloudProvider>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &provider)
        .await
        .unwrap();
    let plan: HibernatePlan = serde_json::from_value(json!({
        "apiVersion": "hibernator.dev/v1alpha1", "kind": "HibernatePlan",
        "metadata": {"name": "nightly"},
        "spec": {
            "schedule": {"timezone": "UTC", "offHours": [
                {"start": "20:00", "end": "06:00", "daysOfWeek": ["MON", "TUE", "WED", "THU", "FRI"]},
            ]},
            "execution": {"strategy": {"type": "Parallel"}},
            "behavior": {"retries": 0},
            "targets": [
                {"name": "batch", "type": "ec2", "connectorRef": {"kind": "CloudProvider", "name": "aws-dev"},
                 "parameters": {"selector": {"tags": {"role": "batch"}}}},
                {"name": "never-hibernated", "type": "ec2", "connectorRef": {"kind": "CloudProvider", "name": "aws-dev"},
                 "parameters": {"selector": {"tags": {"role": "other"}}}},
            ],
        },
    }))
    .unwrap();
    Api::<HibernatePlan>::namespaced(client, &ns)
        .create(&PostParams::default(), &plan)
        .await
        .unwrap();
    Fixture {
        cluster,
        moto,
        ec2: Ec2::from_conf(config),
        dir: tempfile::tempdir().unwrap(),
    }
}

impl Fixture {
    fn args(&self, target: &str, operation: Operation) -> RunnerArgs {
        let mut args = RunnerArgs::new(
            self.cluster.namespace(),
            "nightly",
            target,
            operation,
            "cycle-1",
            self.dir.path().join(format!("{target}-{operation}.log")),
        );
        args.aws_endpoint_url = Some(self.moto.endpoint().to_string());
        args
    }

    async fn run(&self, target: &str, operation: Operation) -> RunnerOutcome {
        let args = self.args(target, operation);
        let log = args.termination_log.clone();
        let outcome = run(args, self.cluster.client()).await;
        let written = std::fs::read_to_string(&log).unwrap();
        assert!(written.len() <= 4096);
        assert_eq!(
            TerminationMessage::parse(&written).as_ref(),
            Some(&outcome.termination)
        );
        outcome
    }

    async fn launch(&self, count: i32, role: &str) -> Vec<String> {
        let out = self
            .ec2
            .run_instances()
            .image_id("ami-12c6146b")
            .instance_type("t3.micro".into())
            .min_count(count)
            .max_count(count)
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::Instance)
                    .tags(Tag::builder().key("role").value(role).build())
                    .build(),
            )
            .send()
            .await
            .unwrap();
        out.instances()
            .iter()
            .filter_map(|i| i.instance_id().map(str::to_string))
            .collect()
    }

    async fn states(&self, ids: &[String]) -> Vec<InstanceStateName> {
        let out = self
            .ec2
            .describe_instances()
            .set_instance_ids(Some(ids.to_vec()))
            .send()
            .await
            .unwrap();
        out.reservations()
            .iter()
            .flat_map(|r| r.instances())
            .filter_map(|i| i.state().and_then(|s| s.name()).cloned())
            .collect()
    }
}

#[tokio::test]
async fn shutdown_records_restore_data_and_wakeup_restores() {
    let f = fixture("runner-e2e").await;
    let batch = f.launch(2, "batch").await;
    let bystander = f.launch(1, "web").await;

    let out = f.run("batch", Operation::Shutdown).await;
    assert_eq!(out.exit_code, 0, "{:?}", out.termination);
    assert!(out.termination.success);
    assert_eq!(out.termination.resources, 2);
    assert_eq!(out.termination.attempts, 1);
    assert!(
        f.states(&batch)
            .await
            .iter()
            .all(|s| *s == InstanceStateName::Stopped)
    );
    assert_eq!(f.states(&bystander).await, vec![InstanceStateName::Running]);

    // Restore data is in the plan's ConfigMap, owned by the plan.
    let cm = Api::<ConfigMap>::namespaced(f.cluster.client(), f.cluster.namespace())
        .get(&hibernator_core::wellknown::restore_config_map_name(
            "nightly",
        ))
        .await
        .unwrap();
    let plan = Api::<HibernatePlan>::namespaced(f.cluster.client(), f.cluster.namespace())
        .get("nightly")
        .await
        .unwrap();
    let owners = cm.metadata.owner_references.clone().unwrap();
    assert_eq!(owners[0].uid, plan.metadata.uid.clone().unwrap());
    assert_eq!(owners[0].kind, "HibernatePlan");
    let store = ConfigMapRestoreStore::new(f.cluster.client(), f.cluster.namespace(), "nightly");
    let record = store.load("batch").await.unwrap().unwrap().value;
    assert_eq!(record.entries.len(), 2);
    assert_eq!(record.last_cycle_id.as_deref(), Some("cycle-1"));

    let out = f.run("batch", Operation::Wakeup).await;
    assert_eq!(out.exit_code, 0, "{:?}", out.termination);
    assert_eq!(out.termination.resources, 2);
    assert!(
        f.states(&batch)
            .await
            .iter()
            .all(|s| *s == InstanceStateName::Running)
    );
    let record = store.load("batch").await.unwrap().unwrap().value;
    assert!(record.entries.is_empty(), "{:?}", record.entries);
}

#[tokio::test]
async fn wakeup_without_restore_data_fails_clearly() {
    let f = fixture("runner-missing").await;
    f.launch(1, "other").await;
    let out = f.run("never-hibernated", Operation::Wakeup).await;
    assert_eq!(out.exit_code, 1);
    assert!(!out.termination.success);
    assert!(
        out.termination.message.contains("no restore data"),
        "{}",
        out.termination.message
    );
    assert_eq!(out.termination.attempts, 0, "the executor is never called");
}

#[tokio::test]
async fn unknown_target_and_missing_plan_fail_with_names() {
    let f = fixture("runner-unknown").await;
    let out = f.run("nope", Operation::Shutdown).await;
    assert_eq!(out.exit_code, 1);
    assert!(
        out.termination.message.contains("has no target \"nope\""),
        "{}",
        out.termination.message
    );
    let mut args = f.args("batch", Operation::Shutdown);
    args.plan = "ghost".into();
    let out = run(args, f.cluster.client()).await;
    assert_eq!(out.exit_code, 1);
    assert!(
        out.termination.message.contains("HibernatePlan")
            && out.termination.message.contains("ghost"),
        "{}",
        out.termination.message
    );
}

#[test]
fn container_env_becomes_runner_args() {
    let env = BTreeMap::from([
        ("HIBERNATOR_PLAN".to_string(), "nightly".to_string()),
        ("HIBERNATOR_PLAN_NAMESPACE".to_string(), "ns".to_string()),
        ("HIBERNATOR_TARGET".to_string(), "batch".to_string()),
        ("HIBERNATOR_OPERATION".to_string(), "wakeup".to_string()),
        ("HIBERNATOR_CYCLE_ID".to_string(), "c9".to_string()),
        ("HIBERNATOR_EXECUTION_ID".to_string(), "e1".to_string()),
        (
            "HIBERNATOR_STREAM_TRANSPORT".to_string(),
            "webhook".to_string(),
        ),
    ]);
    let args =
        RunnerArgs::from_container(&["runner".into(), "--target=other".into()], &env).unwrap();
    assert_eq!(args.plan, "nightly");
    assert_eq!(args.target, "other", "flags win over variables");
    assert_eq!(args.operation, Operation::Wakeup.into());
    assert_eq!(args.cycle_id, "c9");
    assert_eq!(args.execution_id.as_deref(), Some("e1"));
    assert_eq!(
        args.stream_transport,
        hibernator_streaming::config::Transport::Webhook
    );
    assert_eq!(
        args.stream_token_path,
        std::path::PathBuf::from("/var/run/secrets/stream/token")
    );
    let missing = BTreeMap::from([("HIBERNATOR_PLAN".to_string(), "p".to_string())]);
    assert!(RunnerArgs::from_container(&[], &missing).is_err());
}

/// A `workloadscaler` target through a K8SCluster whose kubeconfig Secret
/// points at the test API server itself.
#[tokio::test]
async fn kubernetes_target_scales_down_and_back() {
    use k8s_openapi::api::apps::v1::Deployment;
    let cluster = cluster("runner-k8s").await;
    let Some(server) = cluster.api_server() else {
        return; // needs the in-process server's kubeconfig
    };
    let ns = cluster.namespace().to_string();
    let client = cluster.client();
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some("kubeconfig".into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(
            "kubeconfig".into(),
            ByteString(server.kubeconfig_yaml().into_bytes()),
        )])),
        ..Default::default()
    };
    Api::<Secret>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let connector: hibernator_core::types::K8SCluster = serde_json::from_value(json!({
        "apiVersion": "hibernator.dev/v1alpha1", "kind": "K8SCluster",
        "metadata": {"name": "self"},
        "spec": {"k8s": {"kubeconfigRef": {"name": "kubeconfig"}}},
    }))
    .unwrap();
    Api::<hibernator_core::types::K8SCluster>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &connector)
        .await
        .unwrap();
    let deployment: Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "c", "image": "nginx"}]}}},
    }))
    .unwrap();
    let deployments = Api::<Deployment>::namespaced(client.clone(), &ns);
    deployments
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();
    let plan: HibernatePlan = serde_json::from_value(json!({
        "apiVersion": "hibernator.dev/v1alpha1", "kind": "HibernatePlan",
        "metadata": {"name": "apps"},
        "spec": {
            "schedule": {"timezone": "UTC", "offHours": [
                {"start": "20:00", "end": "06:00", "daysOfWeek": ["MON"]},
            ]},
            "execution": {"strategy": {"type": "Sequential"}},
            "behavior": {"retries": 0},
            "targets": [{"name": "web", "type": "workloadscaler", "timeout": "20s",
                         "connectorRef": {"kind": "K8SCluster", "name": "self"},
                         "parameters": {"namespace": {"literals": [ns.clone()]},
                                        "awaitCompletion": {"enabled": false}}}],
        },
    }))
    .unwrap();
    Api::<HibernatePlan>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &plan)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let args =
        |operation| RunnerArgs::new(&ns, "apps", "web", operation, "c1", dir.path().join("log"));
    let out = run(args(Operation::Shutdown), client.clone()).await;
    assert_eq!(out.exit_code, 0, "{:?}", out.termination);
    let replicas = |d: Deployment| d.spec.unwrap().replicas;
    assert_eq!(replicas(deployments.get("web").await.unwrap()), Some(0));
    let out = run(args(Operation::Wakeup), client.clone()).await;
    assert_eq!(out.exit_code, 0, "{:?}", out.termination);
    assert_eq!(replicas(deployments.get("web").await.unwrap()), Some(3));
}

/// With a webhook endpoint the runner streams its logs and a completion
/// report, presenting the projected token.
#[tokio::test]
async fn logs_and_completion_are_streamed_to_the_webhook() {
    use std::sync::{Arc, Mutex};

    use axum::http::HeaderMap;
    type Seen = Arc<Mutex<Vec<(String, String, serde_json::Value)>>>;
    let seen: Seen = Arc::default();
    let record = |path: &'static str, seen: Seen| {
        move |headers: HeaderMap, body: axum::body::Bytes| {
            let seen = seen.clone();
            async move {
                let auth = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                let body = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
                seen.lock().unwrap().push((path.to_string(), auth, body));
                "{}"
            }
        }
    };
    let app = axum::Router::new()
        .route("/logs", axum::routing::post(record("logs", seen.clone())))
        .route(
            "/progress",
            axum::routing::post(record("progress", seen.clone())),
        )
        .route(
            "/completion",
            axum::routing::post(record("completion", seen.clone())),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let f = fixture("runner-stream").await;
    f.launch(1, "batch").await;
    let token = f.dir.path().join("token");
    std::fs::write(&token, "projected-token").unwrap();
    let mut args = f.args("batch", Operation::Shutdown);
    args.execution_id = Some("exec-1".into());
    args.webhook_endpoint = Some(format!("http://127.0.0.1:{port}/logs"));
    args.stream_transport = hibernator_streaming::config::Transport::Webhook;
    args.stream_token_path = token;
    let out = run(args, f.cluster.client()).await;
    assert_eq!(out.exit_code, 0, "{:?}", out.termination);

    let seen = seen.lock().unwrap().clone();
    assert!(
        seen.iter()
            .all(|(_, auth, _)| auth == "Bearer projected-token"),
        "{seen:?}"
    );
    let completion = seen
        .iter()
        .find(|(path, _, _)| path == "completion")
        .expect("completion report");
    assert_eq!(completion.2["success"], true, "{completion:?}");
    let progress: Vec<_> = seen
        .iter()
        .filter(|(path, _, _)| path == "progress")
        .collect();
    assert!(!progress.is_empty(), "{seen:?}");
    assert!(
        progress
            .iter()
            .all(|(_, _, body)| body["phase"] == "Shutdown"),
        "progress carries the operation's phase: {progress:?}"
    );
    assert!(
        seen.iter()
            .any(|(path, _, body)| path == "logs" && body.to_string().contains("shutdown done")),
        "{seen:?}"
    );
    server.abort();
}

/// The whole operator path on AWS: the controller decides at the schedule
/// boundary, creates runner Jobs, the Job simulator runs the real runner
/// entry point with each Job's args and env against moto, and the plan goes
/// Hibernated → Active with the instances stopped and then running again.
#[tokio::test]
async fn controller_and_runner_hibernate_and_wake_ec2_on_moto() {
    use crate::controller::support::{Harness, wait_phase};
    use hibernator_core::types::PlanPhase;
    use hibernator_testkit::jobsim::{JobOutcome, JobSimulator};
    use k8s_openapi::api::core::v1::ServiceAccount;
    use std::time::Duration;

    let f = fixture("ctl-aws").await;
    let batch = f.launch(2, "batch").await;
    let bystander = f.launch(1, "web").await;
    let client = f.cluster.client();
    let ns = f.cluster.namespace().to_string();
    let sa = ServiceAccount {
        metadata: ObjectMeta {
            name: Some("hibernator-runner".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<ServiceAccount>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &sa)
        .await
        .unwrap();

    let endpoint = f.moto.endpoint().to_string();
    let logs = f.dir.path().to_path_buf();
    let runner_client = client.clone();
    let _sim = JobSimulator::start(client.clone(), &ns, move |job| {
        let client = runner_client.clone();
        let endpoint = endpoint.clone();
        let log = logs.join(format!("{}.termination", job.job_name));
        Box::pin(async move {
            let mut args = RunnerArgs::from_container(&job.args, &job.env).unwrap();
            args.aws_endpoint_url = Some(endpoint);
            args.termination_log = log;
            let outcome = run(args, client).await;
            JobOutcome {
                exit_code: outcome.exit_code,
                message: outcome.termination.to_json(),
            }
        })
    });

    // Monday 19:00 UTC: awake; 20:00 the off-hours start.
    let mut harness = Harness::new(&f.cluster, "2026-11-23T19:00:00Z".parse().unwrap());
    let plans: Api<HibernatePlan> = Api::namespaced(client.clone(), &ns);
    wait_phase(
        &plans,
        "nightly",
        PlanPhase::Active,
        Duration::from_secs(30),
    )
    .await;

    harness.set_time("2026-11-23T20:00:01Z".parse().unwrap());
    let hibernated = wait_phase(
        &plans,
        "nightly",
        PlanPhase::Hibernated,
        Duration::from_secs(60),
    )
    .await;
    assert!(
        f.states(&batch)
            .await
            .iter()
            .all(|s| *s == InstanceStateName::Stopped),
        "{:#?}",
        hibernated.status
    );
    assert_eq!(f.states(&bystander).await, vec![InstanceStateName::Running]);
    let store = ConfigMapRestoreStore::new(client.clone(), &ns, "nightly");
    let record = store.load("batch").await.unwrap().unwrap().value;
    assert_eq!(record.entries.len(), 2, "one entry per stopped instance");

    // Tuesday 06:00: wake-up restores exactly what was recorded.
    harness.set_time("2026-11-24T06:00:01Z".parse().unwrap());
    let active = wait_phase(
        &plans,
        "nightly",
        PlanPhase::Active,
        Duration::from_secs(60),
    )
    .await;
    assert!(
        f.states(&batch)
            .await
            .iter()
            .all(|s| *s == InstanceStateName::Running),
        "{:#?}",
        active.status
    );
    let record = store.load("batch").await.unwrap().unwrap().value;
    assert!(record.is_empty(), "restore entries consumed: {record:?}");
    let history = active.status.map(|s| s.history).unwrap_or_default();
    assert!(history.len() >= 2, "shutdown and wake-up cycles recorded");
    harness.stop().await;
    f.cluster.cleanup().await.unwrap();
}
