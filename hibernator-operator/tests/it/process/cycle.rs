//! A whole cycle with every component a separate process: `hibernator
//! controller` (in-cluster config, streaming server), one `hibernator
//! runner` process per Job (projected stream token, termination log), on a
//! real wall clock across both boundaries of a plan's window.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use aws_sdk_ec2::types::{InstanceStateName, ResourceType, Tag, TagSpecification};
use hibernator_core::types::{HibernatePlan, PlanPhase};
use hibernator_kube::ConfigMapRestoreStore;
use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use serde_json::json;

use super::support::{Child, Ports, REGION, World, get, metric, next_window, wait_ok, wait_phase};

/// The AWS clients of the estate, on moto.
pub struct Aws {
    pub ec2: aws_sdk_ec2::Client,
    pub rds: aws_sdk_rds::Client,
}

impl Aws {
    pub fn new(endpoint: &str) -> Aws {
        let creds = aws_sdk_ec2::config::Credentials::new("testing", "testing", None, None, "test");
        let ec2 = aws_sdk_ec2::Config::builder()
            .behavior_version(aws_sdk_ec2::config::BehaviorVersion::latest())
            .endpoint_url(endpoint)
            .region(aws_sdk_ec2::config::Region::new(REGION))
            .credentials_provider(creds.clone())
            .build();
        let rds = aws_sdk_rds::Config::builder()
            .behavior_version(aws_sdk_rds::config::BehaviorVersion::latest())
            .endpoint_url(endpoint)
            .region(aws_sdk_rds::config::Region::new(REGION))
            .credentials_provider(creds)
            .build();
        Aws {
            ec2: aws_sdk_ec2::Client::from_conf(ec2),
            rds: aws_sdk_rds::Client::from_conf(rds),
        }
    }

    pub async fn launch(&self, count: i32, role: &str) -> Vec<String> {
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

    pub async fn states(&self, ids: &[String]) -> Vec<InstanceStateName> {
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

    pub async fn create_db(&self, id: &str) {
        self.rds
            .create_db_instance()
            .db_instance_identifier(id)
            .engine("postgres")
            .db_instance_class("db.t3.micro")
            .allocated_storage(20)
            .master_username("admin")
            .master_user_password("password123")
            .send()
            .await
            .unwrap();
    }

    pub async fn db_status(&self, id: &str) -> String {
        let out = self
            .rds
            .describe_db_instances()
            .db_instance_identifier(id)
            .send()
            .await
            .unwrap();
        out.db_instances()[0]
            .db_instance_status()
            .unwrap_or_default()
            .to_string()
    }
}

/// Connectors (a CloudProvider with static keys from a Secret, a K8SCluster
/// reached with the runner's in-cluster config) and a Deployment `web`.
pub async fn estate(world: &World) {
    let client = world.cluster.client();
    let ns = world.ns();
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
    for object in [
        json!({"apiVersion": "hibernator.dev/v1alpha1", "kind": "CloudProvider",
            "metadata": {"name": "aws-dev"},
            "spec": {"type": "aws", "aws": {"accountId": "123456789012", "region": REGION,
                "auth": {"static": {"secretRef": {"name": "aws-keys"}}}}}}),
        json!({"apiVersion": "hibernator.dev/v1alpha1", "kind": "K8SCluster",
            "metadata": {"name": "here"},
            "spec": {"k8s": {"inCluster": true}}}),
    ] {
        let kind = object["kind"].as_str().unwrap().to_string();
        let ar = kube::core::ApiResource {
            group: "hibernator.dev".into(),
            version: "v1alpha1".into(),
            api_version: "hibernator.dev/v1alpha1".into(),
            kind: kind.clone(),
            plural: format!("{}s", kind.to_lowercase()),
        };
        let obj: kube::api::DynamicObject = serde_json::from_value(object).unwrap();
        Api::<kube::api::DynamicObject>::namespaced_with(client.clone(), &ns, &ar)
            .create(&PostParams::default(), &obj)
            .await
            .unwrap();
    }
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web", "labels": {"tier": "web"}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx"}]}}},
    }))
    .unwrap();
    Api::<Deployment>::namespaced(client, &ns)
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();
}

/// A DAG plan: the workloads go down first, then the EC2 instances and the
/// database; wake-up mirrors it. Its window starts at the next minute.
pub fn plan(ns: &str) -> (HibernatePlan, chrono::DateTime<chrono::Utc>) {
    let (start, end, at) = next_window(Duration::from_secs(8));
    let plan = serde_json::from_value(json!({
        "apiVersion": "hibernator.dev/v1alpha1", "kind": "HibernatePlan",
        "metadata": {"name": "nightly"},
        "spec": {
            "schedule": {"timezone": "UTC", "offHours": [
                {"start": start, "end": end,
                 "daysOfWeek": ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"]},
            ]},
            "execution": {"strategy": {"type": "DAG", "maxConcurrency": 2, "dependencies": [
                {"from": "workloads", "to": "batch"},
                {"from": "workloads", "to": "orders-db"},
            ]}},
            "behavior": {"mode": "Strict", "retries": 0},
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
                {"name": "orders-db", "type": "rds",
                 "connectorRef": {"kind": "CloudProvider", "name": "aws-dev"},
                 // The RDS defaults: wait for `stopped`/`available`, no
                 // connectivity check (the runner has no path to moto's
                 // endpoint addresses, as runners often have none to
                 // private subnets).
                 "parameters": {"selector": {"instanceIds": ["orders-db"]},
                    "snapshotBeforeStop": false}},
            ],
        },
    }))
    .unwrap();
    (plan, at)
}

/// Polls `/healthz`, `/readyz` and `/metrics` until stopped; counts answers
/// and failures.
struct Probes {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU32>,
    failures: Arc<std::sync::Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Probes {
    fn start(ports: Ports) -> Probes {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU32::new(0));
        let failures = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (s, o, f) = (stop.clone(), ok.clone(), failures.clone());
        let task = tokio::spawn(async move {
            while !s.load(Ordering::SeqCst) {
                for url in [
                    format!("http://127.0.0.1:{}/healthz", ports.health),
                    format!("http://127.0.0.1:{}/readyz", ports.health),
                    format!("http://127.0.0.1:{}/metrics", ports.metrics),
                ] {
                    match get(&url).await {
                        Ok((200, _)) => {
                            o.fetch_add(1, Ordering::SeqCst);
                        }
                        Ok((code, body)) => f.lock().unwrap().push(format!("{url}: {code} {body}")),
                        Err(e) => f.lock().unwrap().push(e),
                    }
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        });
        Probes {
            stop,
            ok,
            failures,
            task,
        }
    }

    async fn finish(self) -> (u32, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.task.await;
        let failures = self.failures.lock().unwrap().clone();
        (self.ok.load(Ordering::SeqCst), failures)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dag_cycle_across_both_boundaries_as_processes() {
    let world = World::start("proc-cycle").await;
    let aws = Aws::new(world.moto.endpoint());
    let batch = aws.launch(2, "batch").await;
    let bystander = aws.launch(1, "web").await;
    aws.create_db("orders-db").await;
    estate(&world).await;
    let plans: Api<HibernatePlan> = Api::namespaced(world.cluster.client(), &world.ns());
    let (plan, start) = plan(&world.ns());
    plans.create(&PostParams::default(), &plan).await.unwrap();

    let ports = Ports::free();
    let mut controller: Child = world.start_controller(&ports, "grpc").await;
    wait_ok(
        &format!("http://127.0.0.1:{}/readyz", ports.health),
        &controller,
        Duration::from_secs(60),
    )
    .await;
    wait_phase(
        &plans,
        "nightly",
        PlanPhase::Active,
        Duration::from_secs(60),
        &controller,
    )
    .await;
    let probes = Probes::start(ports);

    // The window's start: the controller wakes up by itself (its requeue at
    // the next transition) and creates the Jobs; the processes run them.
    let until_start = (start - chrono::Utc::now()).to_std().unwrap_or_default();
    let hibernated = wait_phase(
        &plans,
        "nightly",
        PlanPhase::Hibernated,
        until_start + Duration::from_secs(90),
        &controller,
    )
    .await;
    assert!(
        aws.states(&batch)
            .await
            .iter()
            .all(|s| *s == InstanceStateName::Stopped),
        "{:#?}",
        hibernated.status
    );
    assert_eq!(
        aws.states(&bystander).await,
        vec![InstanceStateName::Running]
    );
    assert_eq!(aws.db_status("orders-db").await, "stopped");
    assert_eq!(world.web_replicas().await, Some(0));
    let restore = Api::<ConfigMap>::namespaced(world.cluster.client(), &world.ns())
        .get(&hibernator_core::wellknown::restore_config_map_name(
            "nightly",
        ))
        .await
        .unwrap();
    let owner = &restore
        .metadata
        .owner_references
        .clone()
        .unwrap_or_default()[0];
    assert_eq!(owner.kind, "HibernatePlan");
    assert_eq!(Some(owner.uid.clone()), hibernated.metadata.uid);
    let shutdown_jobs = world.job_names().await;
    assert_eq!(
        shutdown_jobs.len(),
        3,
        "one Job per target: {shutdown_jobs:?}"
    );

    // Runners streamed their logs over gRPC with their projected tokens.
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

    // The window's end: mirrored wake-up, everything back exactly.
    let active = wait_phase(
        &plans,
        "nightly",
        PlanPhase::Active,
        Duration::from_secs(150),
        &controller,
    )
    .await;
    assert!(
        aws.states(&batch)
            .await
            .iter()
            .all(|s| *s == InstanceStateName::Running),
        "{:#?}",
        active.status
    );
    assert_eq!(aws.db_status("orders-db").await, "available");
    assert_eq!(world.web_replicas().await, Some(2));
    let store = ConfigMapRestoreStore::new(world.cluster.client(), &world.ns(), "nightly");
    for target in ["workloads", "batch", "orders-db"] {
        use hibernator_core::restore::RestoreStore;
        let record = store.load(target).await.unwrap().map(|r| r.value);
        assert!(
            record.as_ref().is_none_or(|r| r.is_empty()),
            "{target}: entries consumed after the restore: {record:?}"
        );
    }
    let all_jobs = world.job_names().await;
    assert_eq!(
        all_jobs.len(),
        6,
        "one Job per target and operation: {all_jobs:?}"
    );
    world.assert_no_job_ran_twice();

    // The probes answered all along, while Jobs were running.
    let (answers, failures) = probes.finish().await;
    assert!(
        failures.is_empty(),
        "probe failures during the cycle: {failures:#?}"
    );
    assert!(
        answers > 30,
        "only {answers} probe answers during the cycle"
    );

    let exit = controller.terminate().await;
    assert_eq!(exit.code, 0, "controller exit after SIGTERM: {exit:?}");
    world.cleanup().await;
}
