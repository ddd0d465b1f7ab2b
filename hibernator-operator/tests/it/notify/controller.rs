//! The controller delivers plan events to HibernateNotification sinks:
//! through the testkit API server (or a real cluster), with runner Jobs
//! played by the JobSimulator, to local HTTP receivers.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hibernator_core::types::{HibernateNotification, HibernatePlan, PlanPhase};
use hibernator_operator::controller::ControllerConfig;
use hibernator_operator::controller::notify::NotifyConfig;
use hibernator_testkit::jobsim::JobSimulator;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{ListParams, PostParams};

use super::receiver::{Answer, Received, Receiver};
use crate::controller::support::*;

fn night() -> chrono::DateTime<chrono::Utc> {
    "2026-11-23T21:00:00Z".parse().unwrap()
}

fn fast(config: &mut ControllerConfig) {
    config.notify = NotifyConfig {
        max_attempts: 3,
        backoff_base: Duration::from_millis(20),
        backoff_max: Duration::from_millis(50),
        request_timeout: Duration::from_secs(5),
        ..NotifyConfig::default()
    };
}

async fn secret(client: &kube::Client, ns: &str, name: &str, data: &[(&str, &str)]) {
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        data: Some(
            data.iter()
                .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                .collect::<BTreeMap<_, _>>(),
        ),
        ..Default::default()
    };
    Api::<Secret>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
}

async fn notification(client: &kube::Client, ns: &str, yaml: &str) -> Api<HibernateNotification> {
    let api: Api<HibernateNotification> = Api::namespaced(client.clone(), ns);
    let object: HibernateNotification = yaml_serde::from_str(yaml).unwrap();
    api.create(&PostParams::default(), &object).await.unwrap();
    api
}

/// Waits until the notification's status satisfies `pred`.
async fn wait_notification(
    api: &Api<HibernateNotification>,
    name: &str,
    what: &str,
    pred: impl Fn(&HibernateNotification) -> bool,
) -> HibernateNotification {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let n = api.get(name).await.unwrap();
        if pred(&n) {
            return n;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "notification {name}: {what}; status {:#?}",
            n.status
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn condition(n: &HibernateNotification, kind: &str) -> Option<(String, String)> {
    n.status.as_ref().and_then(|s| {
        s.conditions
            .iter()
            .find(|c| c.type_ == kind)
            .map(|c| (c.status.clone(), c.message.clone()))
    })
}

fn is_ready(n: &HibernateNotification) -> bool {
    condition(n, "Ready").is_some_and(|(s, _)| s == "True")
        && n.status.as_ref().is_some_and(|s| s.horizon.is_some())
}

fn keys(received: &[Received]) -> Vec<String> {
    received
        .iter()
        .map(|r| {
            r.header("x-hibernator-delivery")
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

fn verify(request: &Received, key: &[u8]) {
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

fn notification_counter(harness: &Harness, sink: &str, result: &str) -> u64 {
    let text = harness.ctx.metrics.encode().unwrap();
    let prefix = format!("hibernator_notifications_total{{sink=\"{sink}\",result=\"{result}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0, |n| n.trim().parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_a_failed_cycle_reaches_slack_and_a_signed_webhook_once() {
    let cluster = cluster("notify-cycle").await;
    let client = cluster.client();
    let ns = cluster.namespace().to_string();
    let receiver = Receiver::start(vec![], None).await;
    secret(
        &client,
        &ns,
        "hooks",
        &[
            ("webhook", &receiver.url("/hook")),
            ("slack", &receiver.url("/slack")),
            ("key", "whsec-cycle-key"),
        ],
    )
    .await;
    let notifications = notification(
        &client,
        &ns,
        "apiVersion: hibernator.dev/v1alpha1\nkind: HibernateNotification\nmetadata: {name: ops}\nspec:\n  selector: {planNames: [app]}\n  sinks:\n    - {name: hook, type: Webhook, urlSecretRef: {name: hooks, key: webhook}, signingSecretRef: {name: hooks, key: key}}\n    - {name: chat, type: Slack, urlSecretRef: {name: hooks, key: slack}}\n",
    )
    .await;
    let log = RunnerLog::default();
    let fail: FailFn = Arc::new(|target, op| target == "t01" && op == "shutdown");
    let _sim = JobSimulator::start(client.clone(), &ns, runner(client.clone(), log, fail));
    let harness = Harness::with(&cluster, night(), fast);
    wait_notification(&notifications, "ops", "Ready", is_ready).await;
    let plans: Api<HibernatePlan> = Api::namespaced(client.clone(), &ns);
    plans
        .create(
            &PostParams::default(),
            &plan("app", 2, "{type: Sequential}"),
        )
        .await
        .unwrap();
    wait_phase(&plans, "app", PlanPhase::Error, Duration::from_secs(60)).await;
    let status = plans.get("app").await.unwrap().status.unwrap();
    let cycle = status.current_cycle_id.clone().unwrap();
    let expected = [
        format!("app/{cycle}/CycleStarted"),
        format!("app/{cycle}/TargetFailed/t01/1"),
        format!("app/{cycle}/CycleFinished"),
    ];
    receiver
        .wait_for("3 events to each sink", |r| r.len() >= 6)
        .await;
    let n = wait_notification(&notifications, "ops", "6 deliveries recorded", |n| {
        n.status.as_ref().is_some_and(|s| s.deliveries.len() == 6)
    })
    .await;
    let accepted = receiver.accepted();
    let hook: Vec<Received> = accepted
        .iter()
        .filter(|r| r.path == "/hook")
        .cloned()
        .collect();
    let slack: Vec<Received> = accepted
        .iter()
        .filter(|r| r.path == "/slack")
        .cloned()
        .collect();
    let mut hook_keys = keys(&hook);
    hook_keys.sort();
    let mut want: Vec<String> = expected.to_vec();
    want.sort();
    assert_eq!(hook_keys, want, "each event once to the webhook");
    let mut slack_keys = keys(&slack);
    slack_keys.sort();
    assert_eq!(slack_keys, want, "each event once to Slack");
    for request in &hook {
        verify(request, b"whsec-cycle-key");
    }
    let finished = hook
        .iter()
        .map(Received::json)
        .find(|b| b["event"] == "CycleFinished")
        .unwrap();
    assert_eq!(finished["severity"], "error");
    assert_eq!(finished["operation"], "shutdown");
    let targets = finished["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 2);
    let t01 = targets.iter().find(|t| t["target"] == "t01").unwrap();
    assert_eq!(t01["state"], "Failed");
    assert_eq!(t01["error"], "t01: simulated failure");
    let t00 = targets.iter().find(|t| t["target"] == "t00").unwrap();
    assert_eq!(t00["state"], "Completed");
    assert!(t00["duration_seconds"].is_number());
    let failed = hook
        .iter()
        .map(Received::json)
        .find(|b| b["event"] == "TargetFailed")
        .unwrap();
    assert_eq!(failed["target"], "t01");
    assert_eq!(failed["severity"], "error");
    let slack_finished = slack
        .iter()
        .map(Received::json)
        .find(|b| {
            b["text"]
                .as_str()
                .is_some_and(|t| t.ends_with("/app: shutdown cycle failed"))
        })
        .unwrap();
    assert_eq!(slack_finished["blocks"][0]["type"], "header");
    let status = n.status.unwrap();
    assert_eq!(status.delivered_count, 6);
    assert_eq!(status.failed_count, 0);
    assert!(status.last_delivery_time.is_some());
    assert!(status.deliveries.iter().all(|d| d.result == "Delivered"));
    assert!(condition(&n_now(&notifications).await, "DeliveryFailing").is_none());
    assert_eq!(notification_counter(&harness, "Webhook", "delivered"), 3);
    assert_eq!(notification_counter(&harness, "Slack", "delivered"), 3);
    // nothing more is sent: the same status derives the same (recorded)
    // keys, and nothing is read or written for notifications (steady state)
    if let Some(server) = cluster.api_server() {
        server.reset_request_counts();
    }
    harness.tick();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.requests().len(), 6);
    if let Some(server) = cluster.api_server() {
        let notification_requests: Vec<_> = server
            .request_counts()
            .into_iter()
            .filter(|((_, resource), n)| {
                *n > 0
                    && (resource.contains("hibernatenotifications") || resource.contains("secrets"))
            })
            .collect();
        assert!(
            notification_requests.is_empty(),
            "steady state: {notification_requests:?}"
        );
        assert!(
            reconciled_since_reset(server),
            "the tick reconciled the plan"
        );
    }
}

/// Whether a plan reconcile ran since the counters were reset (it reads
/// the restore ConfigMap).
fn reconciled_since_reset(server: &hibernator_testkit::kube::ApiServer) -> bool {
    server.request_count("get", "configmaps") > 0
}

async fn n_now(api: &Api<HibernateNotification>) -> HibernateNotification {
    api.get("ops").await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_a_blocked_sink_never_holds_the_plan_and_a_restart_mid_delivery_sends_once() {
    let cluster = cluster("notify-restart").await;
    let client = cluster.client();
    let ns = cluster.namespace().to_string();
    // every request is held until released, then answered 500
    let receiver = Receiver::start(vec![], Some(Answer::Hold(500))).await;
    secret(
        &client,
        &ns,
        "hooks",
        &[("webhook", &receiver.url("/hook")), ("key", "k")],
    )
    .await;
    let notifications = notification(
        &client,
        &ns,
        "apiVersion: hibernator.dev/v1alpha1\nkind: HibernateNotification\nmetadata: {name: ops}\nspec:\n  selector: {planSelector: {matchLabels: {team: a}}}\n  filter: {events: [CycleStarted, CycleFinished]}\n  sinks:\n    - {name: hook, type: Webhook, urlSecretRef: {name: hooks, key: webhook}, signingSecretRef: {name: hooks, key: key}}\n",
    )
    .await;
    let log = RunnerLog::default();
    let _sim = JobSimulator::start(
        client.clone(),
        &ns,
        runner(client.clone(), log, no_failures()),
    );
    let mut first = Harness::with(&cluster, night(), fast);
    wait_notification(&notifications, "ops", "Ready", is_ready).await;
    let plans: Api<HibernatePlan> = Api::namespaced(client.clone(), &ns);
    let mut labelled = plan("app", 2, "{type: Parallel}");
    labelled.metadata.labels = Some([("team".to_string(), "a".to_string())].into());
    plans
        .create(&PostParams::default(), &labelled)
        .await
        .unwrap();
    // the whole cycle completes while the sink holds the first delivery
    wait_phase(
        &plans,
        "app",
        PlanPhase::Hibernated,
        Duration::from_secs(60),
    )
    .await;
    receiver
        .wait_for("both events in flight", |r| r.len() >= 2)
        .await;
    assert!(receiver.accepted().is_empty());
    // crash mid-delivery: nothing was recorded
    first.crash().await;
    let n = notifications.get("ops").await.unwrap();
    assert!(
        n.status.as_ref().unwrap().deliveries.is_empty(),
        "{:?}",
        n.status
    );
    // the held requests now fail; a new controller delivers each event once
    receiver.answer_from_now(Answer::Status(200));
    receiver.release();
    let mut second = Harness::with(&cluster, night(), fast);
    wait_notification(&notifications, "ops", "2 deliveries recorded", |n| {
        n.status.as_ref().is_some_and(|s| s.deliveries.len() == 2)
    })
    .await;
    let cycle = plans
        .get("app")
        .await
        .unwrap()
        .status
        .unwrap()
        .current_cycle_id
        .unwrap();
    let mut delivered = keys(&receiver.accepted());
    delivered.sort();
    assert_eq!(
        delivered,
        [
            format!("app/{cycle}/CycleFinished"),
            format!("app/{cycle}/CycleStarted")
        ]
    );
    // a third controller sends nothing again
    second.crash().await;
    let before = receiver.requests().len();
    let mut third = Harness::with(&cluster, night(), fast);
    wait_reconciled(&third).await;
    third.tick();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        receiver.requests().len(),
        before,
        "an already delivered key was sent again"
    );
    assert_eq!(receiver.accepted().len(), 2);
    third.crash().await;
}

async fn wait_reconciled(harness: &Harness) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let text = harness.ctx.metrics.encode().unwrap();
        let n: u64 = text
            .lines()
            .find_map(|l| l.strip_prefix("hibernator_reconcile_total "))
            .map_or(0, |n| n.trim().parse().unwrap());
        if n > 0 {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "no reconcile");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Collects log output for the assertions.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn notify_secrets_never_appear_in_status_events_logs_or_metrics() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let cluster = cluster("notify-secret").await;
    let client = cluster.client();
    let ns = cluster.namespace().to_string();
    let receiver = Receiver::start(vec![], Some(Answer::Status(500))).await;
    let token = "xoxb-T0SECRET-B0SECRET-tokentokentoken";
    let key = "whsec-super-secret-signing-key";
    secret(
        &client,
        &ns,
        "hooks",
        &[
            ("webhook", &receiver.url(&format!("/hooks/{token}"))),
            (
                "slack",
                &receiver.url(&format!("/services/{token}?auth={token}")),
            ),
            ("key", key),
        ],
    )
    .await;
    let notifications = notification(
        &client,
        &ns,
        "apiVersion: hibernator.dev/v1alpha1\nkind: HibernateNotification\nmetadata: {name: ops}\nspec:\n  selector: {planSelector: {}}\n  filter: {events: [TargetFailed]}\n  sinks:\n    - {name: hook, type: Webhook, urlSecretRef: {name: hooks, key: webhook}, signingSecretRef: {name: hooks, key: key}}\n    - {name: chat, type: Slack, urlSecretRef: {name: hooks, key: slack}}\n",
    )
    .await;
    let log = RunnerLog::default();
    let _sim = JobSimulator::start(
        client.clone(),
        &ns,
        runner(client.clone(), log, Arc::new(|t, _| t == "t00")),
    );
    let harness = Harness::with(&cluster, night(), fast);
    wait_notification(&notifications, "ops", "Ready", is_ready).await;
    let plans: Api<HibernatePlan> = Api::namespaced(client.clone(), &ns);
    plans
        .create(
            &PostParams::default(),
            &plan("app", 1, "{type: Sequential}"),
        )
        .await
        .unwrap();
    let n = wait_notification(&notifications, "ops", "both sinks failed", |n| {
        n.status.as_ref().is_some_and(|s| s.failed_count == 2)
    })
    .await;
    // bounded: 3 attempts per sink
    assert_eq!(receiver.requests().len(), 6);
    let (failing, message) = condition(&n, "DeliveryFailing").unwrap();
    assert_eq!(failing, "True");
    assert!(message.contains("127.0.0.1 answered 500"), "{message}");
    assert!(
        message.starts_with("sink hook:") || message.starts_with("sink chat:"),
        "{message}"
    );
    assert_eq!(notification_counter(&harness, "Webhook", "failed"), 1);
    assert_eq!(notification_counter(&harness, "Slack", "failed"), 1);
    assert_eq!(notification_counter(&harness, "Webhook", "retried"), 2);

    let status_text = serde_json::to_string(&n).unwrap();
    let plan_text = serde_json::to_string(&plans.get("app").await.unwrap()).unwrap();
    let events_text = {
        let core: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client.clone(), &ns);
        let modern: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), &ns);
        format!(
            "{}{}",
            serde_json::to_string(&core.list(&ListParams::default()).await.unwrap().items).unwrap(),
            serde_json::to_string(&modern.list(&ListParams::default()).await.unwrap().items)
                .unwrap()
        )
    };
    let metrics_text = harness.ctx.metrics.encode().unwrap();
    drop(harness);
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("notification not delivered"),
        "the log capture works: {logs}"
    );
    for (what, text) in [
        ("notification status", &status_text),
        ("plan", &plan_text),
        ("Events", &events_text),
        ("metrics", &metrics_text),
        ("logs", &logs),
    ] {
        for secret in [token, "T0SECRET", "tokentoken", key, "super-secret"] {
            assert!(
                !text.contains(secret),
                "{what} contains a secret ({secret})"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_ready_names_a_missing_secret_and_invalid_fields() {
    let cluster = cluster("notify-ready").await;
    let client = cluster.client();
    let ns = cluster.namespace().to_string();
    let mut harness = Harness::with(&cluster, night(), fast);
    let notifications = notification(
        &client,
        &ns,
        "apiVersion: hibernator.dev/v1alpha1\nkind: HibernateNotification\nmetadata: {name: ops}\nspec:\n  selector: {planSelector: {}}\n  sinks:\n    - {name: chat, type: Slack, urlSecretRef: {name: hooks, key: slack}}\n",
    )
    .await;
    let n = wait_notification(&notifications, "ops", "Ready False", |n| {
        condition(n, "Ready").is_some_and(|(s, _)| s == "False")
    })
    .await;
    let (_, message) = condition(&n, "Ready").unwrap();
    assert!(
        message.contains("spec.sinks[0].urlSecretRef: Secret \"hooks\" not found"),
        "{message}"
    );
    assert!(n.status.unwrap().horizon.is_some());
    // an invalid template (no admission webhook here): Ready says which field
    let mut changed = notifications.get("ops").await.unwrap();
    changed.spec.sinks[0].template = Some("{{ plan".into());
    notifications
        .replace("ops", &PostParams::default(), &changed)
        .await
        .unwrap();
    let n = wait_notification(&notifications, "ops", "InvalidSpec", |n| {
        n.status
            .as_ref()
            .is_some_and(|s| s.observed_generation == n.metadata.generation)
            && condition(n, "Ready").is_some_and(|(_, m)| m.contains("spec.sinks[0].template"))
    })
    .await;
    let ready = n
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "InvalidSpec")
    );
    harness.crash().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_quiet_hours_drop_the_night_cycle_and_drift_re_enforcement_is_sent() {
    let cluster = cluster("notify-quiet").await;
    let client = cluster.client();
    let ns = cluster.namespace().to_string();
    let receiver = Receiver::start(vec![], None).await;
    secret(&client, &ns, "hooks", &[("teams", &receiver.url("/teams"))]).await;
    // quiet 20:00–21:15 UTC every day: the 21:00 cycle is inside, the
    // enforcement check at 21:31 outside
    let notifications = notification(
        &client,
        &ns,
        "apiVersion: hibernator.dev/v1alpha1\nkind: HibernateNotification\nmetadata: {name: ops}\nspec:\n  selector: {planNames: [drift]}\n  quietHours:\n    timezone: UTC\n    windows: [{start: \"20:00\", end: \"21:15\", daysOfWeek: [MON, TUE, WED, THU, FRI, SAT, SUN]}]\n  sinks:\n    - {name: teams, type: Teams, urlSecretRef: {name: hooks, key: teams}}\n",
    )
    .await;
    let seen = crate::controller::enforce::Seen::default();
    let _sim = JobSimulator::start(
        client.clone(),
        &ns,
        crate::controller::enforce::runner(client.clone(), seen),
    );
    let harness = Harness::with(&cluster, night(), fast);
    wait_notification(&notifications, "ops", "Ready", is_ready).await;
    let plans: Api<HibernatePlan> = Api::namespaced(client.clone(), &ns);
    let mut drift = plan("drift", 1, "{type: Parallel}");
    drift.spec.behavior.enforce = Some(hibernator_core::types::Enforce {
        enabled: Some(true),
        interval: Some("30m".into()),
    });
    plans.create(&PostParams::default(), &drift).await.unwrap();
    wait_phase(
        &plans,
        "drift",
        PlanPhase::Hibernated,
        Duration::from_secs(60),
    )
    .await;
    harness.set_time(night() + chrono::Duration::minutes(31));
    receiver
        .wait_for("the ReEnforced card", |r| !r.is_empty())
        .await;
    let n = wait_notification(&notifications, "ops", "1 delivery recorded", |n| {
        n.status.as_ref().is_some_and(|s| s.deliveries.len() == 1)
    })
    .await;
    let card = receiver.accepted()[0].json();
    assert_eq!(
        receiver.accepted()[0].header("x-hibernator-event"),
        Some("ReEnforced")
    );
    assert_eq!(card["@type"], "MessageCard");
    assert!(
        card["title"]
            .as_str()
            .unwrap()
            .ends_with("/drift: drift re-enforced"),
        "{card}"
    );
    assert!(
        card["text"]
            .as_str()
            .unwrap()
            .starts_with("2 resources woke up"),
        "{card}"
    );
    assert_eq!(card["themeColor"], "DAA038");
    assert!(
        n.status.unwrap().deliveries[0]
            .key
            .starts_with("teams/drift/")
    );
    // the night cycle's events were dropped, not delayed
    harness.tick();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        receiver.requests().len(),
        1,
        "{:?}",
        keys(&receiver.requests())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_each_failed_attempt_at_once_then_retries_exhausted() {
    let cluster = cluster("notify-retries").await;
    let client = cluster.client();
    let ns = cluster.namespace().to_string();
    let receiver = Receiver::start(vec![], None).await;
    secret(
        &client,
        &ns,
        "hooks",
        &[("url", &receiver.url("/hook")), ("key", "k")],
    )
    .await;
    let notifications = notification(
        &client,
        &ns,
        "apiVersion: hibernator.dev/v1alpha1\nkind: HibernateNotification\nmetadata: {name: ops}\nspec:\n  selector: {planNames: [app]}\n  filter: {events: [TargetFailed, RetriesExhausted]}\n  sinks:\n    - {name: hook, type: Webhook, urlSecretRef: {name: hooks, key: url}, signingSecretRef: {name: hooks, key: key}}\n",
    )
    .await;
    // every runner crashes without a result: retryable
    let _sim = JobSimulator::start(client.clone(), &ns, |_run| {
        Box::pin(async {
            hibernator_testkit::jobsim::JobOutcome {
                exit_code: 137,
                message: "OOMKilled".into(),
            }
        }) as futures::future::BoxFuture<'static, _>
    });
    // the Job simulator dates Job completions by the real clock, and the
    // retry is due by it: run this plan's controller on today's time, in a
    // schedule that is off all week, with retries an hour apart
    let now = chrono::Utc::now();
    let harness = Harness::with(&cluster, now, |config| {
        fast(config);
        config.backoff.base_delay = Duration::from_secs(3600);
        config.backoff.max_delay = Duration::from_secs(3600);
    });
    wait_notification(&notifications, "ops", "Ready", is_ready).await;
    let plans: Api<HibernatePlan> = Api::namespaced(client.clone(), &ns);
    let mut retried = plan("app", 1, "{type: Sequential}");
    retried.spec.behavior.retries = 1;
    retried.spec.schedule.off_hours = vec![hibernator_core::types::OffHourWindow {
        start: "00:00".into(),
        end: "24:00".into(),
        days_of_week: ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"]
            .map(String::from)
            .to_vec(),
    }];
    plans
        .create(&PostParams::default(), &retried)
        .await
        .unwrap();
    // attempt 1 failed: sent at once, before the retry runs
    receiver.wait_for("attempt 1", |r| !r.is_empty()).await;
    let first = receiver.accepted()[0].json();
    assert_eq!(first["event"], "TargetFailed");
    assert_eq!(first["severity"], "warning", "a retry follows");
    assert_eq!(first["detail"], "1");
    assert!(
        first["message"]
            .as_str()
            .unwrap()
            .contains("a retry is scheduled"),
        "{first}"
    );
    // the retry is due: it fails too
    harness.set_time(chrono::Utc::now() + chrono::Duration::hours(2));
    wait_phase(&plans, "app", PlanPhase::Error, Duration::from_secs(60)).await;
    receiver
        .wait_for("attempt 2 and exhaustion", |r| r.len() >= 3)
        .await;
    let cycle = plans
        .get("app")
        .await
        .unwrap()
        .status
        .unwrap()
        .current_cycle_id
        .unwrap();
    let mut got = keys(&receiver.accepted());
    got.sort();
    assert_eq!(
        got,
        [
            format!("app/{cycle}/RetriesExhausted/t00"),
            format!("app/{cycle}/TargetFailed/t00/1"),
            format!("app/{cycle}/TargetFailed/t00/2"),
        ]
    );
    let exhausted = receiver
        .accepted()
        .iter()
        .map(Received::json)
        .find(|b| b["event"] == "RetriesExhausted")
        .unwrap();
    assert_eq!(exhausted["severity"], "error");
    assert_eq!(exhausted["target"], "t00");
}
