//! Notifications from the controller process: a signed webhook delivery is
//! in flight (the receiver holds it) when the controller is SIGKILLed; the
//! next controller process delivers each event exactly once.

use std::collections::BTreeMap;
use std::time::Duration;

use hibernator_core::types::{HibernateNotification, HibernatePlan, PlanPhase};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::PostParams;
use serde_json::json;

use super::cycle::estate;
use super::support::{Ports, World, get, metric, next_window, wait_ok, wait_phase};
use crate::notify::receiver::{Answer, Receiver};

fn verify(request: &crate::notify::receiver::Received, key: &[u8]) {
    use hmac::{Hmac, KeyInit as _, Mac as _};
    let timestamp = request.header("x-hibernator-timestamp").unwrap();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(&request.body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        request.header("x-hibernator-signature").unwrap(),
        format!("sha256={hex}")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_the_controller_killed_mid_delivery_sends_each_event_once() {
    let world = World::start("proc-notify").await;
    estate(&world).await;
    let ns = world.ns();
    let client = world.cluster.client();
    // every request held until released (then answered 500): a slow sink
    let receiver = Receiver::start(vec![], Some(Answer::Hold(500))).await;
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("hooks".into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([
            (
                "url".to_string(),
                ByteString(receiver.url("/hook").into_bytes()),
            ),
            ("key".to_string(), ByteString(b"proc-signing-key".to_vec())),
        ])),
        ..Default::default()
    };
    Api::<Secret>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let notification: HibernateNotification = serde_json::from_value(json!({
        "apiVersion": "hibernator.dev/v1alpha1", "kind": "HibernateNotification",
        "metadata": {"name": "ops"},
        "spec": {
            "selector": {"planNames": ["nightly"]},
            "filter": {"events": ["CycleStarted", "CycleFinished"]},
            "sinks": [{"name": "hook", "type": "Webhook",
                "urlSecretRef": {"name": "hooks", "key": "url"},
                "signingSecretRef": {"name": "hooks", "key": "key"},
                "timeout": "30s"}],
        },
    }))
    .unwrap();
    let notifications: Api<HibernateNotification> = Api::namespaced(client.clone(), &ns);
    notifications
        .create(&PostParams::default(), &notification)
        .await
        .unwrap();
    // the window starts at the next minute (at least 8s away) and lasts 10
    // minutes: the kill, the Lease expiry and the restart all fall inside it
    let (start, _, at) = next_window(Duration::from_secs(8));
    let end = {
        use chrono::Timelike;
        let end = at + chrono::Duration::minutes(10);
        if end.hour() == 0 && end.minute() == 0 {
            "24:00".to_string()
        } else {
            end.format("%H:%M").to_string()
        }
    };
    let plan: HibernatePlan = serde_json::from_value(json!({
        "apiVersion": "hibernator.dev/v1alpha1", "kind": "HibernatePlan",
        "metadata": {"name": "nightly"},
        "spec": {
            "schedule": {"timezone": "UTC", "offHours": [
                {"start": start, "end": end,
                 "daysOfWeek": ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"]},
            ]},
            "execution": {"strategy": {"type": "Sequential"}},
            "behavior": {"retries": 0},
            "targets": [
                {"name": "workloads", "type": "workloadscaler",
                 "connectorRef": {"kind": "K8SCluster", "name": "here"},
                 "parameters": {"includedGroups": ["deployments"],
                    "namespace": {"literals": [ns]},
                    "workloadSelector": {"matchLabels": {"tier": "web"}},
                    "awaitCompletion": {"enabled": false}}},
            ],
        },
    }))
    .unwrap();
    let plans: Api<HibernatePlan> = Api::namespaced(client.clone(), &ns);
    plans.create(&PostParams::default(), &plan).await.unwrap();

    let ports = Ports::free();
    let mut first = world.start_controller(&ports, "webhook").await;
    // the cycle starts at the window; its CycleStarted delivery is held
    // up to a minute until the window starts, then the first reconcile
    receiver
        .wait_for_within("CycleStarted in flight", Duration::from_secs(150), |r| {
            r.iter()
                .any(|r| r.header("x-hibernator-event") == Some("CycleStarted"))
        })
        .await;
    first.process.signal(9).unwrap();
    let killed = first.process.wait_timeout(Duration::from_secs(10)).await;
    assert_eq!(
        killed.map(|e| e.code),
        Some(137),
        "SIGKILL ends the process"
    );
    assert!(receiver.accepted().is_empty());
    let n = notifications.get("ops").await.unwrap();
    assert!(
        n.status.as_ref().is_none_or(|s| s.deliveries.is_empty()),
        "nothing was recorded: {:?}",
        n.status
    );

    // the receiver recovers; a new controller process takes over
    receiver.answer_from_now(Answer::Status(200));
    receiver.release();
    let second = world.start_controller(&ports, "webhook").await;
    wait_ok(
        &format!("http://127.0.0.1:{}/healthz", ports.health),
        &second,
        Duration::from_secs(60),
    )
    .await;
    wait_phase(
        &plans,
        "nightly",
        PlanPhase::Hibernated,
        Duration::from_secs(120),
        &second,
    )
    .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        let n = notifications.get("ops").await.unwrap();
        if let Some(status) = n.status.filter(|s| s.deliveries.len() == 2) {
            break status;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "2 deliveries not recorded; controller log:\n{}",
            second.tail()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status.delivered_count, 2);
    let accepted = receiver.accepted();
    let mut events: Vec<&str> = accepted
        .iter()
        .map(|r| r.header("x-hibernator-event").unwrap())
        .collect();
    events.sort();
    assert_eq!(events, ["CycleFinished", "CycleStarted"], "each event once");
    for request in &accepted {
        verify(request, b"proc-signing-key");
    }
    let (_, metrics) = get(&format!("http://127.0.0.1:{}/metrics", ports.metrics))
        .await
        .unwrap();
    assert_eq!(
        metric(&metrics, "hibernator_notifications_total"),
        2.0,
        "{metrics}"
    );
    // the process logs hold neither the URL's path nor the key
    let logs = second.tail();
    assert!(!logs.contains("proc-signing-key"));
    assert!(!logs.contains(&receiver.url("/hook")));
    drop(second);
    world.cleanup().await;
}
