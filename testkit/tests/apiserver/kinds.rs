//! Core kinds the operator uses: Events, Leases, pods/log, Jobs.

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event, Pod};
use k8s_openapi::api::events::v1::Event as EventV1;
use kube::api::{Api, ListParams, LogParams, PostParams};
use serde_json::json;

use hibernator_testkit::kube::{ApiServer, TestCluster};

#[tokio::test]
async fn events_of_both_groups_filter_by_involved_object() {
    let tc = TestCluster::start("events").await.unwrap();
    let ns = tc.namespace().to_string();
    let core: Api<Event> = Api::default_namespaced(tc.client());
    for (name, about) in [("e1", "plan-a"), ("e2", "plan-b")] {
        let ev: Event = serde_json::from_value(json!({
            "metadata": {"name": name},
            "involvedObject": {"kind": "HibernatePlan", "name": about, "namespace": ns, "apiVersion": "hibernator.dev/v1alpha1"},
            "reason": "Hibernated", "message": "all targets asleep", "type": "Normal",
            "source": {"component": "hibernator"}
        }))
        .unwrap();
        core.create(&PostParams::default(), &ev).await.unwrap();
    }
    let about_a = core
        .list(&ListParams::default().fields("involvedObject.name=plan-a"))
        .await
        .unwrap();
    assert_eq!(about_a.items.len(), 1);
    assert_eq!(about_a.items[0].reason.as_deref(), Some("Hibernated"));

    let v1: Api<EventV1> = Api::default_namespaced(tc.client());
    let ev: EventV1 = serde_json::from_value(json!({
        "metadata": {"name": "n1"},
        "eventTime": "2026-11-22T03:00:00.000000Z",
        "reportingController": "hibernator.dev/controller", "reportingInstance": "hibernator-0",
        "action": "Hibernate", "reason": "Hibernated", "type": "Normal",
        "regarding": {"kind": "HibernatePlan", "name": "plan-a", "namespace": ns}
    }))
    .unwrap();
    v1.create(&PostParams::default(), &ev).await.unwrap();
    // Both groups are one store: each filter sees the Events of both.
    let names = |items: Vec<String>| {
        let mut items = items;
        items.sort();
        items
    };
    let listed = v1
        .list(&ListParams::default().fields("regarding.name=plan-a"))
        .await
        .unwrap();
    assert_eq!(
        names(
            listed
                .items
                .iter()
                .map(|e| e.metadata.name.clone().unwrap())
                .collect()
        ),
        ["e1", "n1"]
    );
    let listed = core
        .list(&ListParams::default().fields("involvedObject.name=plan-a"))
        .await
        .unwrap();
    assert_eq!(
        names(
            listed
                .items
                .iter()
                .map(|e| e.metadata.name.clone().unwrap())
                .collect()
        ),
        ["e1", "n1"]
    );
    tc.cleanup().await.unwrap();
}

#[tokio::test]
async fn leases_conflict_on_stale_renewals() {
    let tc = TestCluster::start("lease").await.unwrap();
    let api: Api<Lease> = Api::default_namespaced(tc.client());
    let lease: Lease = serde_json::from_value(json!({
        "metadata": {"name": "hibernator-leader"},
        "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15}
    }))
    .unwrap();
    let created = api.create(&PostParams::default(), &lease).await.unwrap();
    let mut by_a = created.clone();
    let mut by_b = created;
    by_b.spec.as_mut().unwrap().holder_identity = Some("b".into());
    api.replace("hibernator-leader", &PostParams::default(), &by_b)
        .await
        .unwrap();
    by_a.spec.as_mut().unwrap().lease_duration_seconds = Some(30);
    let err = api
        .replace("hibernator-leader", &PostParams::default(), &by_a)
        .await
        .unwrap_err();
    assert!(matches!(err, kube::Error::Api(s) if s.code == 409 && s.reason == "Conflict"));
    let now = api.get("hibernator-leader").await.unwrap();
    assert_eq!(now.spec.unwrap().holder_identity.as_deref(), Some("b"));
    tc.cleanup().await.unwrap();
}

#[tokio::test]
async fn pod_logs_come_from_the_test() {
    let server = ApiServer::start().await.unwrap();
    let pods: Api<Pod> = Api::default_namespaced(server.client());
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "runner-1"},
        "spec": {"containers": [{"name": "runner", "image": "hibernator:dev"}]}
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    assert_eq!(
        pods.logs("runner-1", &LogParams::default()).await.unwrap(),
        ""
    );
    server.set_pod_log("default", "runner-1", "line 1\nline 2\nline 3\n");
    assert_eq!(
        pods.logs("runner-1", &LogParams::default()).await.unwrap(),
        "line 1\nline 2\nline 3\n"
    );
    let tail = LogParams {
        tail_lines: Some(1),
        ..LogParams::default()
    };
    assert_eq!(pods.logs("runner-1", &tail).await.unwrap(), "line 3\n");
    let missing = pods
        .logs("absent", &LogParams::default())
        .await
        .unwrap_err();
    assert!(matches!(missing, kube::Error::Api(s) if s.code == 404));
}

#[tokio::test]
async fn jobs_keep_status_until_written() {
    let tc = TestCluster::start("jobs").await.unwrap();
    let api: Api<Job> = Api::default_namespaced(tc.client());
    let job: Job = serde_json::from_value(json!({
        "metadata": {"name": "runner", "labels": {"hibernator.dev/plan": "p"}},
        "spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "r", "image": "busybox:1.37", "command": ["true"]}]}}}
    }))
    .unwrap();
    api.create(&PostParams::default(), &job).await.unwrap();
    let listed = api
        .list(&ListParams::default().labels("hibernator.dev/plan=p"))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    if tc.is_real() {
        return tc.cleanup().await.unwrap();
    }
    // No controller runs in-process: the status is what the test writes.
    assert!(
        listed.items[0]
            .status
            .as_ref()
            .and_then(|s| s.succeeded)
            .is_none()
    );
    tc.cleanup().await.unwrap();
}

#[tokio::test]
async fn kube_event_recorder_creates_then_patches_a_series() {
    use kube::runtime::events::{Event as RecorderEvent, EventType, Recorder, Reporter};

    let tc = TestCluster::start("recorder").await.unwrap();
    let ns = tc.namespace().to_string();
    let pods: Api<Pod> = Api::default_namespaced(tc.client());
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "subject"},
        "spec": {"containers": [{"name": "c", "image": "busybox:1.37"}]}
    }))
    .unwrap();
    let pod = pods.create(&PostParams::default(), &pod).await.unwrap();
    let reference = kube::Resource::object_ref(&pod, &());
    let recorder = Recorder::new(
        tc.client(),
        Reporter {
            controller: "hibernator".into(),
            instance: Some("hibernator-0".into()),
        },
    );
    let ev = RecorderEvent {
        type_: EventType::Normal,
        reason: "Hibernated".into(),
        note: Some("asleep".into()),
        action: "Hibernate".into(),
        secondary: None,
    };
    recorder.publish(&ev, &reference).await.unwrap();
    recorder.publish(&ev, &reference).await.unwrap();
    let events: Api<EventV1> = Api::namespaced(tc.client(), &ns);
    let listed = events.list(&ListParams::default()).await.unwrap();
    // On a real cluster the scheduler and kubelet add their own events.
    let ours: Vec<_> = listed
        .items
        .iter()
        .filter(|e| e.reporting_controller.as_deref() == Some("hibernator"))
        .collect();
    assert_eq!(ours.len(), 1);
    let series = ours[0]
        .series
        .as_ref()
        .expect("a series after the second publish");
    assert_eq!(series.count, 2);
    tc.cleanup().await.unwrap();
}
