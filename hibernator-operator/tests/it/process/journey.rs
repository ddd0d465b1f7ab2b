//! The streaming user journey ("Manage Runner Streaming Config",
//! charts/hibernator/ci/journeys/runner-streaming.md) walked against the
//! real thing: the chart rendered by Helm from the journey's values blocks
//! exactly as they appear (scripts/render-chart.py --journey), the
//! controller started as that Deployment describes it, and the journey's
//! requests sent to it:
//!
//! - step 8: gRPC health over a port-forward (plaintext from loopback, with
//!   the journey's TLS on), `/metrics` holding the journey's names;
//! - step 5: `GetProgress` without a token from loopback; from another
//!   address a token is still required;
//! - step 4: the journey's `curl -X POST http://hibernator-webhook:8080/logs`
//!   line, verbatim, from a shell in a copy of a runner pod (what `kubectl
//!   debug --copy-to` gives), with the real projected token it reads from
//!   `$HIBERNATOR_STREAM_TOKEN_PATH`;
//! - step 6/7: a plan's runner logs reach the Datadog and Splunk intakes
//!   and S3, and `status.executions[].logsRef` names the S3 object.
//!
//! What only a cluster provides is layered over the journey's values, not
//! changed in them: the image, ports free on this shared machine instead of
//! 50051/8080/8081/8082, the namespace to watch, AWS credentials (IRSA in
//! a cluster), the intakes' local addresses, and the address runners post
//! to (kube-proxy's job: runners here are processes on this host, so they
//! get 127.0.0.1; the journey's `hibernator-webhook:8080` is checked on the
//! rendered Service and reached through `curl --connect-to`). Log lines are
//! not asserted on their format.

use std::net::SocketAddr;
use std::time::Duration;

use futures::StreamExt;
use hibernator_core::types::{HibernatePlan, PlanPhase};
use hibernator_streaming::wire::proto::GetProgressRequest;
use hibernator_streaming::wire::proto::execution_service_client::ExecutionServiceClient;
use k8s_openapi::api::batch::v1::Job;
use kube::Api;
use kube::api::{ListParams, PostParams};
use serde_json::json;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

use super::cycle::{Aws, estate};
use super::journey_support::{
    Intake, create_config, journey_block, render_chart, rendered, service_ports, start_controller,
};
use super::support::{IMAGE, World, free_port, get, metric, wait_ok, wait_phase};

const EXEC: &str = "exec-123";
const BUCKET: &str = "hibernator-execution-logs";

/// Ports of this run (the journey's own are checked on the rendered Services).
struct Ports {
    grpc: u16,
    webhook: u16,
    metrics: u16,
    health: u16,
}

/// The cluster's part: what an installation gets from elsewhere (see the
/// module comment).
fn cluster_layer(ns: &str, ports: &Ports, datadog: &Intake, splunk: &Intake) -> serde_json::Value {
    let (repository, tag) = IMAGE.split_once(':').unwrap();
    json!({
        "image": {"repository": repository, "tag": tag},
        "prometheus": {"port": ports.metrics},
        "controller": {
            "replicaCount": 1,
            "healthPort": ports.health,
            "extraArgs": [format!("--namespace={ns}")],
            "extraEnv": [
                {"name": "AWS_ACCESS_KEY_ID", "value": "testing"},
                {"name": "AWS_SECRET_ACCESS_KEY", "value": "testing"},
                {"name": "AWS_REGION", "value": super::support::REGION},
                {"name": "AWS_ALLOW_HTTP", "value": "true"},
            ],
            "streaming": {
                "externalEndpoints": true,
                "grpc": {"port": ports.grpc},
                "webhook": {"port": ports.webhook,
                            "endpoint": format!("http://127.0.0.1:{}/logs", ports.webhook)},
            },
        },
        "datadog": {"endpoint": format!("http://{}/v1/input", datadog.addr)},
        "splunk": {"endpoint": format!("http://{}/services/collector", splunk.addr)},
    })
}

/// This machine's address on its default route, if it has one.
fn non_loopback_ip() -> Option<std::net::IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.254:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

async fn plaintext(port: u16) -> Channel {
    Channel::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .connect()
        .await
        .expect("plaintext gRPC through the port-forward")
}

async fn tls(addr: SocketAddr, ca: &[u8], name: &str) -> Channel {
    Channel::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(ca))
                .domain_name(name),
        )
        .unwrap()
        .connect()
        .await
        .expect("gRPC over TLS")
}

fn query() -> GetProgressRequest {
    GetProgressRequest {
        execution_id: EXEC.into(),
    }
}

/// A plan that is off all the time: it hibernates as soon as it exists.
fn plan() -> HibernatePlan {
    serde_json::from_value(json!({
        "apiVersion": "hibernator.dev/v1alpha1", "kind": "HibernatePlan",
        "metadata": {"name": "prod-offhours"},
        "spec": {
            "schedule": {"timezone": "UTC", "offHours": [{"start": "00:00", "end": "24:00",
                "daysOfWeek": ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"]}]},
            "execution": {"strategy": {"type": "Sequential"}},
            "behavior": {"mode": "Strict", "retries": 0},
            "targets": [{"name": "ec2", "type": "ec2",
                "connectorRef": {"kind": "CloudProvider", "name": "aws-dev"},
                "parameters": {"selector": {"tags": {"role": "batch"}}}}],
        },
    }))
    .unwrap()
}

/// A copy of the runner Job's pod (what `kubectl debug --copy-to` makes)
/// claiming execution `exec-123`, whose container is a shell running
/// `script`: same ServiceAccount, same projected token, same environment.
fn debug_copy(runner: &Job, script: &str) -> Job {
    let mut template = runner.spec.clone().unwrap().template;
    let labels = std::collections::BTreeMap::from([
        (
            hibernator_core::wellknown::LABEL_EXECUTION_ID.to_string(),
            EXEC.to_string(),
        ),
        (
            hibernator_core::wellknown::LABEL_PLAN.to_string(),
            "journey-debug".to_string(),
        ),
        (
            hibernator_core::wellknown::LABEL_TARGET.to_string(),
            "ec2".to_string(),
        ),
    ]);
    template.metadata = Some(kube::api::ObjectMeta {
        labels: Some(labels.clone()),
        ..Default::default()
    });
    let pod = template.spec.as_mut().unwrap();
    let container = &mut pod.containers[0];
    container.command = Some(vec!["/bin/sh".into(), "-c".into(), script.to_string()]);
    container.args = None;
    Job {
        metadata: kube::api::ObjectMeta {
            name: Some("hibernator-runner-xyz".into()),
            labels: Some(labels),
            ..Default::default()
        },
        spec: Some(k8s_openapi::api::batch::v1::JobSpec {
            backoff_limit: Some(0),
            template,
            ..Default::default()
        }),
        status: None,
    }
}

async fn wait_job(jobs: &Api<Job>, name: &str, world: &World) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let status = jobs.get(name).await.unwrap().status.unwrap_or_default();
        if status.succeeded.unwrap_or(0) > 0 || status.failed.unwrap_or(0) > 0 {
            return status.succeeded.unwrap_or(0) > 0;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "Job {name} did not finish: {:?}",
            world.jobs.as_ref().map(|j| j.finished())
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The object `key` of the bucket, as the controller's S3 client reads it
/// (signed requests; waits for the sink's periodic flush).
async fn read_s3(moto: &str, key: &str, controller: &super::support::Child) -> String {
    use object_store::ObjectStoreExt;
    let store = object_store::aws::AmazonS3Builder::new()
        .with_bucket_name(BUCKET)
        .with_region(super::support::REGION)
        .with_endpoint(moto)
        .with_allow_http(true)
        .with_access_key_id("testing")
        .with_secret_access_key("testing")
        .build()
        .unwrap();
    let path = object_store::path::Path::from(key);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    loop {
        match store.get(&path).await {
            Ok(found) => return String::from_utf8(found.bytes().await.unwrap().to_vec()).unwrap(),
            Err(error) => assert!(
                tokio::time::Instant::now() < deadline,
                "no object {key} in s3://{BUCKET}: {error}; controller:\n{}",
                controller.tail()
            ),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The tail of the log of the Pod `pod_prefix-…` (the kubelet's log files).
fn pod_log(world: &World, pod_prefix: &str) -> String {
    std::fs::read_dir(world.dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(pod_prefix))
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_streaming_journey_works_as_written() {
    let world = World::start("proc-journey").await;
    if world.jobs.is_none() {
        eprintln!("a real cluster runs the Jobs: this journey needs the testkit's processes");
        return;
    }
    let ns = world.ns();
    estate(&world).await;
    let aws = Aws::new(world.moto.endpoint());
    let instances = aws.launch(2, "batch").await;
    let moto = world.moto.endpoint().trim_end_matches('/').to_string();
    let http = reqwest::Client::new();
    assert!(
        http.put(format!("{moto}/{BUCKET}"))
            .send()
            .await
            .unwrap()
            .status()
            .is_success()
    );
    let (datadog, splunk) = (Intake::start().await, Intake::start().await);
    let ports = Ports {
        grpc: free_port(),
        webhook: free_port(),
        metrics: free_port(),
        health: free_port(),
    };

    // The chart, from the journey's values blocks.
    let objects = render_chart(&ns, &cluster_layer(&ns, &ports, &datadog, &splunk));
    // Steps 3, 4, 8: the names the journey uses are Services of the chart.
    let grpc_alias = service_ports(&objects, "hibernator-grpc-service");
    assert_eq!(
        grpc_alias.get(&u64::from(ports.grpc)).map(String::as_str),
        Some("grpc")
    );
    let webhook_alias = service_ports(&objects, "hibernator-webhook");
    assert_eq!(
        webhook_alias.get(&8080).map(String::as_str),
        Some("http-stream")
    );
    let controller_service = service_ports(&objects, "hibernator-controller");
    assert_eq!(
        controller_service
            .get(&u64::from(ports.grpc))
            .map(String::as_str),
        Some("grpc")
    );
    create_config(&world, &objects).await;
    let mut controller = start_controller(&world, &objects).await;
    wait_ok(
        &format!("http://127.0.0.1:{}/readyz", ports.health),
        &controller,
        Duration::from_secs(60),
    )
    .await;

    // Step 8: `kubectl port-forward svc/hibernator-controller 50051:50051`
    // arrives on the pod's loopback; `grpcurl -plaintext localhost:50051
    // grpc.health.v1.Health/Check`, with the journey's TLS on.
    let channel = plaintext(ports.grpc).await;
    let health = tonic_health::pb::health_client::HealthClient::new(channel.clone())
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .expect("health over the port-forward")
        .into_inner();
    assert_eq!(
        health.status(),
        tonic_health::pb::health_check_response::ServingStatus::Serving
    );

    // A plan runs: its runner streams to the controller, which forwards to
    // Datadog, Splunk and S3 (steps 6 and 7).
    let plans: Api<HibernatePlan> = Api::namespaced(world.cluster.client(), &ns);
    plans.create(&PostParams::default(), &plan()).await.unwrap();
    let hibernated = wait_phase(
        &plans,
        "prod-offhours",
        PlanPhase::Hibernated,
        Duration::from_secs(120),
        &controller,
    )
    .await;
    assert!(
        aws.states(&instances)
            .await
            .iter()
            .all(|s| s.as_str() == "stopped")
    );
    let execution = &hibernated.status.as_ref().unwrap().executions[0];
    let execution_id = execution.execution_id.clone().unwrap();
    // RFC: logsRef points at the stored object.
    let logs_ref = execution.logs_ref.clone().unwrap();
    let key = logs_ref
        .strip_prefix(&format!("s3://{BUCKET}/"))
        .unwrap_or_else(|| panic!("logsRef {logs_ref} is not in s3://{BUCKET}/"));
    assert!(
        key.starts_with("hibernation/")
            && key.ends_with(&format!("prod-offhours-ec2-{execution_id}.log")),
        "{logs_ref}"
    );
    let object = read_s3(&moto, key, &controller).await;
    assert!(
        object.contains("[INFO]") && object.contains("instances"),
        "the runner's lines are in {logs_ref}:\n{object}"
    );
    let datadog_got = datadog.containing(&execution_id).await;
    assert!(
        !datadog_got.is_empty(),
        "Datadog received the runner's lines"
    );
    assert_eq!(
        datadog_got[0].path, "/v1/input",
        "the journey's full intake URL"
    );
    // `export DATADOG_API_KEY="..."` in the journey, passed with --set.
    assert_eq!(datadog_got[0].headers["dd-api-key"], "...");
    let splunk_got = splunk.containing(&execution_id).await;
    assert!(!splunk_got.is_empty(), "Splunk received the runner's lines");
    assert_eq!(
        splunk_got[0].headers["authorization"],
        "Splunk splunk-hec-token-from-the-shell"
    );

    // Step 4, from a shell in a copy of the runner pod: the token comes from
    // the file the pod names in HIBERNATOR_STREAM_TOKEN_PATH.
    let jobs: Api<Job> = Api::namespaced(world.cluster.client(), &ns);
    let runner = jobs.get(&execution_id).await.unwrap();
    let runner_env = runner
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0]
        .env
        .clone()
        .unwrap_or_default();
    assert!(
        runner_env
            .iter()
            .any(|e| e.name == "HIBERNATOR_STREAM_TOKEN_PATH"
                && e.value.as_deref() == Some("/var/run/secrets/stream/token")),
        "the runner pod names its token file: {runner_env:?}"
    );
    let script = format!(
        "set -eu\n\
         # docs/streaming.md: how a script in the runner pod gets the token.\n\
         export HIBERNATOR_STREAM_TOKEN=\"$(cat \"$HIBERNATOR_STREAM_TOKEN_PATH\")\"\n\
         # The Service hibernator-webhook:8080, routed to this controller's port as kube-proxy would.\n\
         curl() {{ command curl --silent --show-error --fail --connect-to hibernator-webhook:8080:127.0.0.1:{port} \"$@\"; echo; }}\n\
         {journey}\n\
         curl -X POST http://hibernator-webhook:8080/progress \\\n  -H \"Authorization: Bearer $HIBERNATOR_STREAM_TOKEN\" \\\n  -d '{{\"executionId\": \"exec-123\", \"phase\": \"Shutdown\", \"progress\": 60, \"message\": \"Scaling EC2 instances\"}}'\n",
        port = ports.webhook,
        journey = journey_block("# POST request from runner to controller"),
    );
    jobs.create(&PostParams::default(), &debug_copy(&runner, &script))
        .await
        .unwrap();
    let succeeded = wait_job(&jobs, "hibernator-runner-xyz", &world).await;
    let shell_log = pod_log(&world, "hibernator-runner-xyz");
    assert!(
        succeeded,
        "the journey's curl failed:\n{shell_log}\ncontroller:\n{}",
        controller.tail()
    );
    assert!(shell_log.contains(r#"{"accepted":1}"#), "{shell_log}");

    // Step 5: `grpcurl -plaintext -d '{"executionId": "exec-123"}' localhost:50051 …/GetProgress`, no token.
    let mut grpc = ExecutionServiceClient::new(channel);
    let progress = grpc
        .get_progress(query())
        .await
        .expect("GetProgress")
        .into_inner();
    assert_eq!(
        (
            progress.execution_id.as_str(),
            progress.phase.as_str(),
            progress.progress,
            progress.message.as_str()
        ),
        (EXEC, "Shutdown", 60, "Scaling EC2 instances")
    );
    assert!(progress.timestamp.is_some());
    let mut watch = grpc.watch_progress(query()).await.unwrap().into_inner();
    assert_eq!(watch.next().await.unwrap().unwrap().progress, 60);
    drop(watch);
    // With `-cacert ca.crt` through the port-forward: TLS for `localhost`.
    let secret: k8s_openapi::api::core::v1::Secret =
        serde_json::from_value(rendered(&objects, "Secret", "hibernator-grpc-tls").clone())
            .unwrap();
    let ca = secret.data.unwrap()["ca.crt"].0.clone();
    let local_tls = tls(([127, 0, 0, 1], ports.grpc).into(), &ca, "localhost").await;
    let mut over_tls = ExecutionServiceClient::new(local_tls);
    assert_eq!(
        over_tls
            .get_progress(query())
            .await
            .unwrap()
            .into_inner()
            .progress,
        60
    );
    // Any other address still needs a token.
    if let Some(ip) = non_loopback_ip() {
        let service = format!("hibernator-controller.{ns}.svc");
        let remote = tls((ip, ports.grpc).into(), &ca, &service).await;
        let refused = ExecutionServiceClient::new(remote)
            .get_progress(query())
            .await
            .unwrap_err();
        assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
    }

    // Step 8: `curl http://hibernator-controller:8080/metrics | grep streaming`,
    // and the metrics the journey lists in prometheus.metrics.
    let (status, text) = get(&format!("http://127.0.0.1:{}/metrics", ports.metrics))
        .await
        .unwrap();
    assert_eq!(status, 200);
    // Step 8's names, and those of prometheus.metrics that have a sample
    // (labelled series such as hibernator_execution_failure_total appear
    // with their first sample, here: no attempt failed).
    for name in [
        "hibernator_streaming_connections_active",
        "hibernator_streaming_logs_total",
        "hibernator_streaming_bytes_sent_total",
        "hibernator_execution_duration_seconds",
        "hibernator_execution_success_total",
    ] {
        assert!(text.contains(name), "{name} is not in /metrics:\n{text}");
    }
    assert!(metric(&text, "hibernator_streaming_logs_total") >= 1.0);
    assert!(metric(&text, "hibernator_streaming_bytes_sent_total") > 0.0);
    assert_eq!(metric(&text, "hibernator_execution_success_total"), 1.0);

    let exit = controller.terminate().await;
    assert_eq!(exit.code, 0, "{}", controller.tail());
    let runner_jobs = jobs.list(&ListParams::default()).await.unwrap().items.len();
    assert_eq!(runner_jobs, 2, "the plan's runner and the debug copy");
}
