//! Two controller replicas behind one Service, sharing one API server: the
//! runner reports to replica A; `GetProgress` and `WatchProgress` answer on
//! replica B from the plan status.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use hibernator_core::types::{
    ExecutionState, ExecutionStatus, HibernatePlan, HibernatePlanStatus, Operation,
};
use hibernator_streaming::auth::{Authenticator, KubeExecutionDirectory, KubeTokenReviewer};
use hibernator_streaming::client::StreamClient;
use hibernator_streaming::config::{ClientConfig, Transport};
use hibernator_streaming::ingest::Ingest;
use hibernator_streaming::metrics::StreamingMetrics;
use hibernator_streaming::server::{GrpcService, RunningServer, StreamingServer};
use hibernator_streaming::status::KubeStatusSink;
use hibernator_streaming::wire::proto::execution_service_client::ExecutionServiceClient;
use hibernator_streaming::wire::proto::execution_service_server::ExecutionService;
use hibernator_streaming::wire::proto::{GetProgressRequest, ProgressUpdate};
use hibernator_testkit::kube::TestCluster;
use kube::Api;
use kube::api::PostParams;
use kube::runtime::events::Reporter;
use prometheus_client::registry::Registry;
use tonic::transport::Channel;

use crate::kube::{AUD, SA, create_plan, create_runner, create_service_account, token};
use crate::support::loopback;

/// Failure guard only: tests never assert on timing.
const GUARD: Duration = Duration::from_secs(20);

async fn guard<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(GUARD, f)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

fn reporter() -> Reporter {
    Reporter {
        controller: "hibernator-controller".into(),
        instance: None,
    }
}

async fn replica(tc: &TestCluster) -> RunningServer {
    let mut registry = Registry::default();
    StreamingServer::kube(
        loopback(),
        tc.client(),
        reporter(),
        Vec::new(),
        &mut registry,
    )
    .start()
    .await
    .unwrap()
}

/// Read–modify–replace of the plan status, as the controller writes it.
async fn edit_status(tc: &TestCluster, plan: &str, edit: impl Fn(&mut HibernatePlanStatus)) {
    let api: Api<HibernatePlan> = Api::namespaced(tc.client(), tc.namespace());
    for _ in 0..20 {
        let mut current = api.get(plan).await.unwrap();
        edit(current.status.get_or_insert_with(Default::default));
        match api
            .replace_status(plan, &PostParams::default(), &current)
            .await
        {
            Ok(_) => return,
            Err(kube::Error::Api(status)) if status.code == 409 => continue,
            Err(e) => panic!("status write: {e}"),
        }
    }
    panic!("status write kept conflicting");
}

/// The controller's ledger entry of the running attempt.
async fn running_entry(tc: &TestCluster, plan: &str, execution_id: &str) {
    let id = execution_id.to_string();
    edit_status(tc, plan, move |s| {
        s.current_operation = Some(Operation::Shutdown);
        s.executions = vec![ExecutionStatus {
            target: "database".into(),
            executor: "rds".into(),
            state: ExecutionState::Running,
            attempts: 1,
            started_at: Some(chrono::Utc::now()),
            execution_id: Some(id.clone()),
            ..ExecutionStatus::default()
        }];
    })
    .await;
}

fn request(id: &str, token: &str) -> tonic::Request<GetProgressRequest> {
    let mut r = tonic::Request::new(GetProgressRequest {
        execution_id: id.into(),
    });
    r.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    r
}

async fn grpc(server: &RunningServer) -> ExecutionServiceClient<Channel> {
    ExecutionServiceClient::connect(format!("http://{}", server.grpc_addr().unwrap()))
        .await
        .unwrap()
}

/// GetProgress on `client` until `done` holds for the answer.
async fn get_until(
    client: &mut ExecutionServiceClient<Channel>,
    id: &str,
    token: &str,
    done: impl Fn(&ProgressUpdate) -> bool,
) -> ProgressUpdate {
    guard("GetProgress answer", async {
        loop {
            if let Ok(answer) = client.get_progress(request(id, token)).await {
                let answer = answer.into_inner();
                if done(&answer) {
                    return answer;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
}

/// Two replicas on one API server, a plan whose status has the running
/// entry of a runner Job, and that runner's projected token in `token_dir`.
struct Replicas {
    tc: TestCluster,
    plan: String,
    id: String,
    a: RunningServer,
    b: RunningServer,
    token_dir: tempfile::TempDir,
}

impl Replicas {
    async fn start(name: &str) -> Self {
        let tc = TestCluster::start(name).await.unwrap();
        create_service_account(&tc, SA).await;
        let plan = tc.unique_name("plan");
        create_plan(&tc, &plan).await;
        let runner = create_runner(&tc, &plan, "database").await;
        let id = runner.execution_id.clone();
        running_entry(&tc, &plan, &id).await;
        let a = replica(&tc).await;
        let b = replica(&tc).await;
        let token_dir = tempfile::tempdir().unwrap();
        let runner_token = token(&tc, SA, AUD, 600, Some((&runner.pod, &runner.pod_uid))).await;
        std::fs::write(token_dir.path().join("token"), &runner_token).unwrap();
        Self {
            tc,
            plan,
            id,
            a,
            b,
            token_dir,
        }
    }
}

/// The runner's client configuration, reporting over gRPC to `server`.
fn reporter_config(
    id: &str,
    token_dir: &tempfile::TempDir,
    server: &RunningServer,
) -> ClientConfig {
    let mut config = ClientConfig::new(id);
    config.transport = Transport::Grpc;
    config.grpc_endpoint = server.grpc_addr().map(|x| x.to_string());
    config.token_path = token_dir.path().join("token");
    config
}

#[tokio::test]
async fn progress_answers_on_the_replica_that_did_not_receive_it() {
    let Replicas {
        tc,
        plan,
        id,
        a,
        b,
        token_dir: dir,
    } = Replicas::start("stream-replicas").await;

    // The runner reports to replica A only.
    let client = StreamClient::connect(reporter_config(&id, &dir, &a))
        .await
        .unwrap();
    client
        .progress("Shutdown", 60, "Scaling EC2 instances")
        .await
        .unwrap();

    let viewer = token(&tc, SA, AUD, 600, None).await;
    let mut on_a = grpc(&a).await;
    let mut on_b = grpc(&b).await;
    let from_a = on_a
        .get_progress(request(&id, &viewer))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((from_a.progress, from_a.phase.as_str()), (60, "Shutdown"));
    let from_b = get_until(&mut on_b, &id, &viewer, |p| p.progress == 60).await;
    assert_eq!(
        from_b, from_a,
        "B answers the same progress, message, phase and time from the plan status"
    );

    let unknown = on_b
        .get_progress(request("exec-nobody-knows", &viewer))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);
    assert!(unknown.message().contains("no runner Job"), "{unknown:?}");

    // A watch on B follows updates reported to A.
    let mut watch_b = on_b
        .watch_progress(request(&id, &viewer))
        .await
        .unwrap()
        .into_inner();
    let first = guard("initial value", watch_b.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first, from_a);
    client
        .progress("Shutdown", 80, "Waiting for instances to stop")
        .await
        .unwrap();
    let second = guard("update on B", watch_b.next()).await.unwrap().unwrap();
    assert_eq!(
        (
            second.progress,
            second.message.as_str(),
            second.phase.as_str()
        ),
        (80, "Waiting for instances to stop", "Shutdown")
    );
    let time = |p: &ProgressUpdate| p.timestamp.map(|t| (t.seconds, t.nanos));
    assert!(time(&second) > time(&first), "{second:?} after {first:?}");

    // A watch on A ends with the completion A receives.
    let mut watch_a = on_a
        .watch_progress(request(&id, &viewer))
        .await
        .unwrap()
        .into_inner();
    let on_a_first = guard("initial value on A", watch_a.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(on_a_first.progress, 80);
    client.complete(true, None).await.unwrap();
    let final_on_a = guard("final progress on A", watch_a.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (final_on_a.progress, final_on_a.message.as_str()),
        (100, "completed successfully")
    );
    assert!(
        guard("end of the watch on A", watch_a.next())
            .await
            .is_none()
    );

    // B sees the final progress written by A, and ends when the entry is
    // terminal (the controller marks it when the runner Job succeeded).
    let last = guard("final progress on B", watch_b.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (last.progress, last.message.as_str()),
        (100, "completed successfully")
    );
    edit_status(&tc, &plan, |s| {
        s.executions[0].state = ExecutionState::Completed;
        s.executions[0].finished_at = Some(chrono::Utc::now());
    })
    .await;
    assert!(
        guard("end of the watch on B", watch_b.next())
            .await
            .is_none()
    );
    let final_on_b = on_b
        .get_progress(request(&id, &viewer))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        final_on_b, last,
        "completed executions answer their final progress"
    );

    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    tc.cleanup().await.unwrap();
}

#[tokio::test]
async fn watchers_share_one_poller_that_stops_with_them() {
    let tc = TestCluster::start("stream-pollers").await.unwrap();
    create_service_account(&tc, SA).await;
    let plan = tc.unique_name("plan");
    create_plan(&tc, &plan).await;
    let runner = create_runner(&tc, &plan, "database").await;
    let superseded = create_runner(&tc, &plan, "database").await;
    let id = runner.execution_id.clone();
    running_entry(&tc, &plan, &id).await;

    let metrics = StreamingMetrics::default();
    let auth = Arc::new(Authenticator::new(
        Arc::new(KubeTokenReviewer::new(tc.client())),
        Arc::new(KubeExecutionDirectory::new(tc.client())),
        metrics.clone(),
    ));
    let status = KubeStatusSink::spawn(tc.client(), reporter());
    let ingest = Arc::new(Ingest::new(status, Vec::new(), metrics));
    let service = GrpcService::with_poll_interval(auth, ingest, Duration::from_millis(50));
    let viewer = token(&tc, SA, AUD, 600, None).await;

    let first = service
        .get_progress(request(&id, &viewer))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((first.progress, first.phase.as_str()), (0, "Shutdown"));
    let missing = service
        .get_progress(request(&superseded.execution_id, &viewer))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
    assert!(
        missing.message().contains("status.executions[]"),
        "{missing:?}"
    );

    let mut one = service
        .watch_progress(request(&id, &viewer))
        .await
        .unwrap()
        .into_inner();
    let mut two = service
        .watch_progress(request(&id, &viewer))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(service.active_pollers(), 1, "one poller per watched plan");
    assert_eq!(guard("initial", one.next()).await.unwrap().unwrap(), first);
    assert_eq!(guard("initial", two.next()).await.unwrap().unwrap(), first);

    // An update written by another replica reaches both watchers once.
    edit_status(&tc, &plan, |s| {
        s.executions[0].progress = Some(40);
        s.executions[0].message = Some("Stopping instances".into());
        s.executions[0].progress_time = Some(chrono::Utc::now());
    })
    .await;
    for watch in [&mut one, &mut two] {
        let update = guard("polled update", watch.next()).await.unwrap().unwrap();
        assert_eq!(
            (update.progress, update.message.as_str()),
            (40, "Stopping instances")
        );
    }

    drop(one);
    assert_eq!(service.active_pollers(), 1, "still watched");
    drop(two);
    guard("poller stop", async {
        while service.active_pollers() > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;

    // A superseded attempt (another executionId in the entry) ends the watch.
    let mut three = service
        .watch_progress(request(&id, &viewer))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        guard("initial", three.next())
            .await
            .unwrap()
            .unwrap()
            .progress,
        40
    );
    let newer = superseded.execution_id.clone();
    edit_status(&tc, &plan, move |s| {
        s.executions[0].execution_id = Some(newer.clone());
    })
    .await;
    assert!(
        guard("end of a superseded watch", three.next())
            .await
            .is_none()
    );
    tc.cleanup().await.unwrap();
}

/// A webhook runner's reports may land on either replica: `GetProgress`
/// answers the newer of the replica's own report and the plan status.
#[tokio::test]
async fn get_progress_prefers_a_newer_report_received_by_the_other_replica() {
    let Replicas {
        tc,
        id,
        a,
        b,
        token_dir: dir,
        ..
    } = Replicas::start("stream-replicas-newer").await;
    let to_b = StreamClient::connect(reporter_config(&id, &dir, &b))
        .await
        .unwrap();
    to_b.progress("Shutdown", 30, "Stopping").await.unwrap();
    let to_a = StreamClient::connect(reporter_config(&id, &dir, &a))
        .await
        .unwrap();
    to_a.progress("Shutdown", 50, "Half stopped").await.unwrap();

    let viewer = token(&tc, SA, AUD, 600, None).await;
    let mut on_b = grpc(&b).await;
    let answer = get_until(&mut on_b, &id, &viewer, |p| p.progress != 30).await;
    assert_eq!(
        (answer.progress, answer.message.as_str()),
        (50, "Half stopped"),
        "B answers A's newer report, not its own older one"
    );

    to_a.close().await.unwrap();
    to_b.close().await.unwrap();
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    tc.cleanup().await.unwrap();
}
