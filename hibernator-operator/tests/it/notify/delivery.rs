//! `deliver` against real local HTTP receivers.

use std::time::Duration;

use hibernator_core::types::{
    NotificationEvent, NotificationSink, Operation, SecretKeyRef, Severity, SinkType,
};
use hibernator_operator::controller::metrics::Metrics;
use hibernator_operator::controller::notify::NotifyConfig;
use hibernator_operator::controller::notify::deliver::{Outcome, SinkSecrets, deliver};
use hibernator_reconcile::notify::{Notice, TargetSummary};

use super::receiver::{Answer, Receiver};

fn notice() -> Notice {
    Notice {
        event: NotificationEvent::CycleFinished,
        severity: Severity::Error,
        namespace: "dev".into(),
        plan: "app".into(),
        cycle: "20261123-200000".into(),
        operation: Some(Operation::Shutdown),
        target: None,
        detail: None,
        at: "2026-11-23T20:01:30Z".parse().unwrap(),
        message: "shutdown cycle 20261123-200000 failed: 1 completed, 1 failed, 0 aborted".into(),
        targets: vec![
            TargetSummary {
                target: "web".into(),
                executor: "workloadscaler".into(),
                state: "Completed".into(),
                duration_seconds: Some(12),
                resources: Some(4),
                error: None,
            },
            TargetSummary {
                target: "db".into(),
                executor: "rds".into(),
                state: "Failed".into(),
                duration_seconds: Some(90),
                resources: None,
                error: Some("AccessDenied".into()),
            },
        ],
    }
}

fn sink(kind: SinkType) -> NotificationSink {
    NotificationSink {
        name: "s".into(),
        kind,
        url_secret_ref: SecretKeyRef::default(),
        signing_secret_ref: None,
        template: None,
        timeout: None,
    }
}

fn fast() -> NotifyConfig {
    NotifyConfig {
        max_attempts: 5,
        backoff_base: Duration::from_millis(20),
        backoff_max: Duration::from_millis(80),
        request_timeout: Duration::from_secs(5),
        ..NotifyConfig::default()
    }
}

fn counter(metrics: &Metrics, sink: &str, result: &str) -> u64 {
    let text = metrics.encode().unwrap();
    let prefix = format!("hibernator_notifications_total{{sink=\"{sink}\",result=\"{result}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0, |n| n.trim().parse().unwrap())
}

/// HMAC-SHA256 with the hmac crate directly (the test's own computation).
fn expected_signature(key: &[u8], timestamp: &str, body: &[u8]) -> String {
    use hmac::{Hmac, KeyInit as _, Mac as _};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    let bytes = mac.finalize().into_bytes();
    format!(
        "sha256={}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

#[tokio::test]
async fn notify_webhook_sends_the_event_as_json_signed_with_hmac() {
    let receiver = Receiver::start(vec![], None).await;
    let secrets = SinkSecrets {
        url: receiver.url("/hooks/hibernator"),
        signing_key: Some(b"whsec-test-key".to_vec()),
    };
    let metrics = Metrics::new();
    let outcome = deliver(
        &reqwest::Client::new(),
        &fast(),
        &metrics,
        "spec.sinks[0]",
        &sink(SinkType::Webhook),
        &secrets,
        &notice(),
    )
    .await;
    assert_eq!(outcome, Outcome::Delivered { attempts: 1 });
    let got = receiver.accepted();
    assert_eq!(got.len(), 1);
    let request = &got[0];
    assert_eq!(request.path, "/hooks/hibernator");
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.header("x-hibernator-event"), Some("CycleFinished"));
    assert_eq!(
        request.header("x-hibernator-delivery"),
        Some("app/20261123-200000/CycleFinished")
    );
    let body = request.json();
    assert_eq!(body["event"], "CycleFinished");
    assert_eq!(body["severity"], "error");
    assert_eq!(body["namespace"], "dev");
    assert_eq!(body["plan"], "app");
    assert_eq!(body["cycle"], "20261123-200000");
    assert_eq!(body["operation"], "shutdown");
    assert_eq!(body["at"], "2026-11-23T20:01:30+00:00");
    assert_eq!(body["key"], "app/20261123-200000/CycleFinished");
    assert_eq!(body["targets"][0]["target"], "web");
    assert_eq!(body["targets"][0]["resources"], 4);
    assert_eq!(body["targets"][1]["state"], "Failed");
    assert_eq!(body["targets"][1]["duration_seconds"], 90);
    assert_eq!(body["targets"][1]["error"], "AccessDenied");
    // the signature verifies over "<timestamp>.<body>" with the key
    let timestamp = request.header("x-hibernator-timestamp").unwrap();
    let age = chrono::Utc::now().timestamp() - timestamp.parse::<i64>().unwrap();
    assert!((0..300).contains(&age), "timestamp is now: {age}s");
    assert_eq!(
        request.header("x-hibernator-signature").unwrap(),
        expected_signature(b"whsec-test-key", timestamp, &request.body)
    );
    // ...and not with another key or another body
    assert_ne!(
        request.header("x-hibernator-signature").unwrap(),
        expected_signature(b"other-key", timestamp, &request.body)
    );
    assert_eq!(counter(&metrics, "Webhook", "delivered"), 1);
}

#[tokio::test]
async fn notify_slack_gets_block_kit_and_teams_a_message_card() {
    let receiver = Receiver::start(vec![], None).await;
    let secrets = SinkSecrets {
        url: receiver.url("/services/T0/B0/x"),
        signing_key: None,
    };
    let metrics = Metrics::new();
    let http = reqwest::Client::new();
    for kind in [SinkType::Slack, SinkType::Teams] {
        let outcome = deliver(
            &http,
            &fast(),
            &metrics,
            "spec.sinks[0]",
            &sink(kind),
            &secrets,
            &notice(),
        )
        .await;
        assert_eq!(outcome, Outcome::Delivered { attempts: 1 });
    }
    let got = receiver.accepted();
    assert_eq!(got.len(), 2);
    assert_eq!(
        got[0].header("x-hibernator-signature"),
        None,
        "Slack is not signed"
    );
    let slack = got[0].json();
    assert_eq!(slack["text"], "dev/app: shutdown cycle failed");
    assert_eq!(slack["blocks"][0]["type"], "header");
    assert_eq!(
        slack["blocks"][0]["text"]["text"],
        "dev/app: shutdown cycle failed"
    );
    assert_eq!(slack["blocks"][1]["text"]["type"], "mrkdwn");
    let lines = slack["blocks"][2]["text"]["text"].as_str().unwrap();
    assert!(
        lines.contains("web (workloadscaler): Completed, 12s, 4 resources"),
        "{lines}"
    );
    assert!(
        lines.contains("db (rds): Failed, 90s: AccessDenied"),
        "{lines}"
    );
    assert_eq!(slack["blocks"][3]["type"], "context");
    let teams = got[1].json();
    assert_eq!(teams["@type"], "MessageCard");
    assert_eq!(teams["title"], "dev/app: shutdown cycle failed");
    assert_eq!(teams["themeColor"], "A30200");
    let facts = teams["sections"][0]["facts"].as_array().unwrap();
    assert!(
        facts
            .iter()
            .any(|f| f["name"] == "Plan" && f["value"] == "dev/app")
    );
    assert!(
        facts
            .iter()
            .any(|f| f["name"] == "Cycle" && f["value"] == "20261123-200000")
    );
    assert_eq!(counter(&metrics, "Slack", "delivered"), 1);
    assert_eq!(counter(&metrics, "Teams", "delivered"), 1);
}

#[tokio::test]
async fn notify_a_custom_template_shapes_the_body() {
    let receiver = Receiver::start(vec![], None).await;
    let secrets = SinkSecrets {
        url: receiver.url("/"),
        signing_key: Some(b"k".to_vec()),
    };
    let mut custom = sink(SinkType::Webhook);
    custom.template = Some(
        r#"{"summary": {{ title|tojson }}, "failed": [{% for t in targets if t.state == "Failed" %}{{ t.target|tojson }}{% if not loop.last %},{% endif %}{% endfor %}]}"#
            .into(),
    );
    let outcome = deliver(
        &reqwest::Client::new(),
        &fast(),
        &Metrics::new(),
        "spec.sinks[0]",
        &custom,
        &secrets,
        &notice(),
    )
    .await;
    assert_eq!(outcome, Outcome::Delivered { attempts: 1 });
    assert_eq!(
        receiver.accepted()[0].json(),
        serde_json::json!({"summary": "dev/app: shutdown cycle failed", "failed": ["db"]})
    );
}

#[tokio::test]
async fn notify_500s_then_success_is_delivered_once_after_retries() {
    let receiver = Receiver::start(
        vec![Answer::Status(500), Answer::Status(503)],
        Some(Answer::Status(200)),
    )
    .await;
    let secrets = SinkSecrets {
        url: receiver.url("/hook"),
        signing_key: Some(b"k".to_vec()),
    };
    let metrics = Metrics::new();
    let outcome = deliver(
        &reqwest::Client::new(),
        &fast(),
        &metrics,
        "spec.sinks[0]",
        &sink(SinkType::Webhook),
        &secrets,
        &notice(),
    )
    .await;
    assert_eq!(outcome, Outcome::Delivered { attempts: 3 });
    assert_eq!(receiver.requests().len(), 3);
    assert_eq!(receiver.accepted().len(), 1, "delivered once");
    assert_eq!(counter(&metrics, "Webhook", "retried"), 2);
    assert_eq!(counter(&metrics, "Webhook", "delivered"), 1);
}

#[tokio::test]
async fn notify_an_always_failing_receiver_gets_bounded_attempts_and_no_secret_leaks() {
    let receiver = Receiver::start(vec![], Some(Answer::Status(500))).await;
    let secret_path = "/services/T0SECRET/B0SECRET/tokentokentoken";
    let secrets = SinkSecrets {
        url: receiver.url(secret_path),
        signing_key: None,
    };
    let metrics = Metrics::new();
    let config = NotifyConfig {
        max_attempts: 4,
        ..fast()
    };
    let outcome = deliver(
        &reqwest::Client::new(),
        &config,
        &metrics,
        "spec.sinks[0]",
        &sink(SinkType::Slack),
        &secrets,
        &notice(),
    )
    .await;
    let Outcome::Failed { attempts, reason } = outcome else {
        panic!("delivered to an always failing receiver");
    };
    assert_eq!(attempts, 4);
    assert_eq!(receiver.requests().len(), 4, "bounded attempts");
    assert_eq!(reason, "127.0.0.1 answered 500");
    assert_eq!(counter(&metrics, "Slack", "retried"), 3);
    assert_eq!(counter(&metrics, "Slack", "failed"), 1);
    // a 4xx is permanent: one attempt
    let gone = Receiver::start(vec![], Some(Answer::Status(404))).await;
    let secrets = SinkSecrets {
        url: gone.url(secret_path),
        signing_key: None,
    };
    let outcome = deliver(
        &reqwest::Client::new(),
        &config,
        &metrics,
        "spec.sinks[0]",
        &sink(SinkType::Slack),
        &secrets,
        &notice(),
    )
    .await;
    assert!(
        matches!(outcome, Outcome::Failed { attempts: 1, .. }),
        "{outcome:?}"
    );
    // a connection error's reason names the host only
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let secrets = SinkSecrets {
        url: format!("http://{closed}{secret_path}"),
        signing_key: None,
    };
    let outcome = deliver(
        &reqwest::Client::new(),
        &NotifyConfig {
            max_attempts: 2,
            ..fast()
        },
        &metrics,
        "spec.sinks[0]",
        &sink(SinkType::Slack),
        &secrets,
        &notice(),
    )
    .await;
    let Outcome::Failed { reason, .. } = outcome else {
        panic!("delivered to a closed port");
    };
    assert!(
        reason.starts_with("127.0.0.1: connection failed"),
        "{reason}"
    );
    assert!(
        !reason.contains("SECRET") && !reason.contains("tokentoken"),
        "{reason}"
    );
}

#[tokio::test]
async fn notify_a_slow_receiver_times_out_and_is_retried() {
    let receiver = Receiver::start(
        vec![Answer::Delay(Duration::from_secs(5), 200)],
        Some(Answer::Status(200)),
    )
    .await;
    let secrets = SinkSecrets {
        url: receiver.url("/slow"),
        signing_key: Some(b"k".to_vec()),
    };
    let mut slow = sink(SinkType::Webhook);
    slow.timeout = Some("300ms".into());
    let metrics = Metrics::new();
    let outcome = deliver(
        &reqwest::Client::new(),
        &fast(),
        &metrics,
        "spec.sinks[0]",
        &slow,
        &secrets,
        &notice(),
    )
    .await;
    assert_eq!(
        outcome,
        Outcome::Delivered { attempts: 2 },
        "the timed-out attempt is retried"
    );
    assert_eq!(receiver.requests().len(), 2);
    assert_eq!(counter(&metrics, "Webhook", "retried"), 1);
    // every attempt slow: bounded, reported as a timeout
    let stuck = Receiver::start(vec![], Some(Answer::Delay(Duration::from_secs(5), 200))).await;
    let secrets = SinkSecrets {
        url: stuck.url("/slow"),
        signing_key: Some(b"k".to_vec()),
    };
    let outcome = deliver(
        &reqwest::Client::new(),
        &NotifyConfig {
            max_attempts: 2,
            ..fast()
        },
        &metrics,
        "spec.sinks[0]",
        &slow,
        &secrets,
        &notice(),
    )
    .await;
    let Outcome::Failed { attempts, reason } = outcome else {
        panic!("a receiver slower than the timeout was delivered to");
    };
    assert_eq!(attempts, 2);
    assert!(reason.contains("timed out after 300ms"), "{reason}");
}
