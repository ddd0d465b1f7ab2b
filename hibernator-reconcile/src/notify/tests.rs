//! Unit tests of the notification logic.

use chrono::{DateTime, Utc};
use hibernator_core::types::{
    CycleRecord, EnforceResult, EnforcementStatus, ExecutionState, ExecutionStatus,
    HibernatePlanSpec, HibernatePlanStatus, NotificationEvent, NotificationFilter, OffHourWindow,
    Operation, QuietHours, Readiness, Severity, SinkType, WakeUp, WakeUpStatus,
};

use super::filter::{Filter, Verdict};
use super::redact::{redact_url, scrub};
use super::render::{check_template, render};
use super::sign::signature;
use super::*;

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn spec(retries: u32) -> HibernatePlanSpec {
    let yaml = format!(
        "apiVersion: hibernator.dev/v1alpha1\nkind: HibernatePlan\nmetadata: {{name: p}}\nspec:\n  schedule: {{timezone: UTC, offHours: [{{start: \"20:00\", end: \"06:00\", daysOfWeek: [MON]}}]}}\n  behavior: {{retries: {retries}}}\n  execution: {{strategy: {{type: Sequential}}}}\n  targets:\n    - {{name: db, type: ec2, connectorRef: {{kind: CloudProvider, name: aws}}, parameters: {{selector: {{tags: {{a: b}}}}}}}}\n"
    );
    hibernator_core::input::PlanDocuments::from_yaml(&yaml)
        .unwrap()
        .plan
        .spec
}

fn exec(
    target: &str,
    state: ExecutionState,
    attempts: u32,
    message: Option<&str>,
) -> ExecutionStatus {
    ExecutionStatus {
        target: target.into(),
        executor: "ec2".into(),
        state,
        attempts,
        started_at: Some(t("2026-11-23T20:00:00Z")),
        finished_at: state.is_terminal().then(|| t("2026-11-23T20:01:30Z")),
        message: message.map(str::to_string),
        ..ExecutionStatus::default()
    }
}

fn finished_status() -> HibernatePlanStatus {
    HibernatePlanStatus {
        current_cycle_id: Some("c1".into()),
        current_operation: Some(Operation::Shutdown),
        cycle_started_at: Some(t("2026-11-23T20:00:00Z")),
        executions: vec![
            exec("web", ExecutionState::Completed, 1, None),
            exec("db", ExecutionState::Failed, 3, Some("AccessDenied")),
        ],
        history: vec![CycleRecord {
            cycle_id: "c1".into(),
            operation: Operation::Shutdown,
            started_at: Some(t("2026-11-23T20:00:00Z")),
            finished_at: Some(t("2026-11-23T20:01:30Z")),
            success: false,
            completed: 1,
            failed: 1,
            aborted: 0,
            message: Some("db: AccessDenied".into()),
        }],
        ..HibernatePlanStatus::default()
    }
}

fn view<'a>(spec: &'a HibernatePlanSpec, status: &'a HibernatePlanStatus) -> PlanView<'a> {
    PlanView {
        namespace: "dev",
        name: "app",
        spec,
        status,
    }
}

#[test]
fn a_failed_cycle_shows_start_failure_exhaustion_and_finish_with_target_summary() {
    let spec = spec(2);
    let status = finished_status();
    let notices = derive(view(&spec, &status), t("2026-11-23T21:00:00Z"));
    let keys: Vec<String> = notices.iter().map(Notice::key).collect();
    assert_eq!(
        keys,
        [
            "app/c1/CycleStarted",
            "app/c1/CycleFinished",
            "app/c1/TargetFailed/db/3",
            "app/c1/RetriesExhausted/db",
        ]
    );
    let finished = &notices[1];
    assert_eq!(finished.severity, Severity::Error);
    assert_eq!(finished.targets.len(), 2);
    assert_eq!(finished.targets[1].state, "Failed");
    assert_eq!(finished.targets[1].duration_seconds, Some(90));
    assert_eq!(finished.targets[1].error.as_deref(), Some("AccessDenied"));
    assert_eq!(finished.targets[0].error, None);
    assert!(finished.message.contains("first error: db: AccessDenied"));
}

#[test]
fn the_same_status_derives_the_same_keys_so_a_restart_dedupes() {
    let spec = spec(2);
    let status = finished_status();
    let a: Vec<String> = derive(view(&spec, &status), t("2026-11-23T21:00:00Z"))
        .iter()
        .map(Notice::key)
        .collect();
    let b: Vec<String> = derive(view(&spec, &status), t("2026-11-24T09:00:00Z"))
        .iter()
        .map(Notice::key)
        .collect();
    assert_eq!(a, b);
}

#[test]
fn without_retries_a_failure_is_not_retries_exhausted_and_a_scheduled_retry_is_a_warning() {
    let spec0 = spec(0);
    let mut status = finished_status();
    status.history.clear();
    status.executions[1].attempts = 1;
    let events: Vec<NotificationEvent> = derive(view(&spec0, &status), t("2026-11-23T21:00:00Z"))
        .iter()
        .map(|n| n.event)
        .collect();
    assert_eq!(
        events,
        [
            NotificationEvent::CycleStarted,
            NotificationEvent::TargetFailed
        ]
    );
    // attempt 1 failed, retry scheduled: a warning with its own attempt key
    let spec2 = spec(2);
    status.executions[1].state = ExecutionState::Running;
    status.executions[1].next_retry_at = Some(t("2026-11-23T20:02:00Z"));
    let now = t("2026-11-23T20:01:40Z");
    let notices = derive(view(&spec2, &status), now);
    let failed = notices
        .iter()
        .find(|n| n.event == NotificationEvent::TargetFailed)
        .unwrap();
    assert_eq!(failed.severity, Severity::Warning);
    assert_eq!(failed.key(), "app/c1/TargetFailed/db/1");
    assert_eq!(failed.at, now);
}

#[test]
fn re_enforcement_and_late_wake_ups_are_derived() {
    let mut spec = spec(0);
    spec.wake_up = Some(WakeUp {
        ready_by: true,
        ..WakeUp::default()
    });
    let status = HibernatePlanStatus {
        enforcement: Some(EnforcementStatus {
            cycle_id: Some("c1".into()),
            last_check_at: Some(t("2026-11-24T01:00:00Z")),
            last_result: Some(EnforceResult::ReHibernated),
            check_id: Some("k7".into()),
            check_rehibernated: 2,
            woke_up_count: 5,
            ..EnforcementStatus::default()
        }),
        wake_up: Some(WakeUpStatus {
            readiness: vec![
                Readiness {
                    cycle_id: "w2".into(),
                    window_end: t("2026-11-25T06:00:00Z"),
                    ready_at: Some(t("2026-11-25T06:03:00Z")),
                    early_seconds: Some(-180),
                },
                Readiness {
                    cycle_id: "w1".into(),
                    window_end: t("2026-11-24T06:00:00Z"),
                    ready_at: Some(t("2026-11-24T05:50:00Z")),
                    early_seconds: Some(600),
                },
            ],
            ..WakeUpStatus::default()
        }),
        ..HibernatePlanStatus::default()
    };
    let notices = derive(view(&spec, &status), t("2026-11-25T07:00:00Z"));
    let keys: Vec<String> = notices.iter().map(Notice::key).collect();
    assert_eq!(
        keys,
        ["app/c1/ReEnforced/k7", "app/w2/NotReadyByWindowEnd"],
        "the early wake-up w1 is no event"
    );
    // without readyBy, lateness is not an event
    spec.wake_up = None;
    assert_eq!(
        derive(view(&spec, &status), t("2026-11-25T07:00:00Z")).len(),
        1
    );
}

fn notice(event: NotificationEvent, severity: Severity, at: &str) -> Notice {
    Notice {
        event,
        severity,
        at: t(at),
        ..super::render::sample()
    }
}

#[test]
fn filters_by_event_type_and_minimum_severity() {
    let filter = Filter::new(
        &NotificationFilter {
            events: vec![
                NotificationEvent::CycleFinished,
                NotificationEvent::ReEnforced,
            ],
            min_severity: Severity::Warning,
        },
        None,
    )
    .unwrap();
    let at = "2026-11-23T12:00:00Z";
    assert_eq!(
        filter.verdict(&notice(NotificationEvent::CycleStarted, Severity::Info, at)),
        Verdict::EventFiltered
    );
    assert_eq!(
        filter.verdict(&notice(
            NotificationEvent::CycleFinished,
            Severity::Info,
            at
        )),
        Verdict::BelowSeverity
    );
    assert_eq!(
        filter.verdict(&notice(
            NotificationEvent::CycleFinished,
            Severity::Error,
            at
        )),
        Verdict::Send
    );
    assert_eq!(
        filter.verdict(&notice(
            NotificationEvent::ReEnforced,
            Severity::Warning,
            at
        )),
        Verdict::Send
    );
    // an empty filter sends everything
    let all = Filter::new(&NotificationFilter::default(), None).unwrap();
    for event in NotificationEvent::ALL {
        assert_eq!(
            all.verdict(&notice(event, Severity::Info, at)),
            Verdict::Send
        );
    }
}

fn quiet(start: &str, end: &str, days: &[&str], tz: &str) -> Filter {
    Filter::new(
        &NotificationFilter::default(),
        Some(&QuietHours {
            timezone: tz.into(),
            windows: vec![OffHourWindow {
                start: start.into(),
                end: end.into(),
                days_of_week: days.iter().map(|d| d.to_string()).collect(),
            }],
        }),
    )
    .unwrap()
}

#[test]
fn quiet_hours_drop_non_failures_in_their_timezone_and_never_failures() {
    // 22:00–07:00 Berlin on weekdays; Berlin is UTC+1 in November
    let f = quiet(
        "22:00",
        "07:00",
        &["MON", "TUE", "WED", "THU", "FRI"],
        "Europe/Berlin",
    );
    let started = |at| notice(NotificationEvent::CycleStarted, Severity::Info, at);
    assert_eq!(
        f.verdict(&started("2026-11-23T21:30:00Z")),
        Verdict::QuietHours
    ); // 22:30 local
    assert_eq!(f.verdict(&started("2026-11-23T20:30:00Z")), Verdict::Send); // 21:30 local
    assert_eq!(
        f.verdict(&started("2026-11-24T05:59:00Z")),
        Verdict::QuietHours
    ); // 06:59
    assert_eq!(f.verdict(&started("2026-11-24T06:00:00Z")), Verdict::Send); // 07:00
    let warning = notice(
        NotificationEvent::ReEnforced,
        Severity::Warning,
        "2026-11-23T23:00:00Z",
    );
    assert_eq!(f.verdict(&warning), Verdict::QuietHours);
    let failure = notice(
        NotificationEvent::TargetFailed,
        Severity::Error,
        "2026-11-23T23:00:00Z",
    );
    assert_eq!(
        f.verdict(&failure),
        Verdict::Send,
        "failures are always sent"
    );
}

#[test]
fn quiet_hours_follow_dst_changes() {
    // 01:00–05:00 Berlin every day. On 2026-03-29 clocks go 02:00 → 03:00
    // (UTC+1 → UTC+2): the window is 00:00Z–03:00Z that night, 23:00Z–03:00Z
    // the night after.
    let days = ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"];
    let f = quiet("01:00", "05:00", &days, "Europe/Berlin");
    let at = |s| notice(NotificationEvent::CycleStarted, Severity::Info, s);
    assert_eq!(f.verdict(&at("2026-03-28T23:30:00Z")), Verdict::Send); // 00:30 CET
    assert_eq!(f.verdict(&at("2026-03-29T00:30:00Z")), Verdict::QuietHours); // 01:30 CET
    assert_eq!(f.verdict(&at("2026-03-29T02:30:00Z")), Verdict::QuietHours); // 04:30 CEST
    assert_eq!(f.verdict(&at("2026-03-29T03:00:00Z")), Verdict::Send); // 05:00 CEST
    assert_eq!(f.verdict(&at("2026-03-29T23:30:00Z")), Verdict::QuietHours); // 01:30 CEST
    // autumn: 2026-10-25 03:00 CEST → 02:00 CET; 05:00 CET is 04:00Z
    assert_eq!(f.verdict(&at("2026-10-25T03:30:00Z")), Verdict::QuietHours); // 04:30 CET
    assert_eq!(f.verdict(&at("2026-10-25T04:00:00Z")), Verdict::Send);
}

#[test]
fn bad_quiet_hours_name_the_field() {
    let err = Filter::new(
        &NotificationFilter::default(),
        Some(&QuietHours {
            timezone: "Mars/Olympus".into(),
            windows: vec![],
        }),
    )
    .unwrap_err();
    assert!(err.starts_with("spec.quietHours.timezone"), "{err}");
    let err = Filter::new(
        &NotificationFilter::default(),
        Some(&QuietHours {
            timezone: "UTC".into(),
            windows: vec![OffHourWindow {
                start: "25:00".into(),
                end: "06:00".into(),
                days_of_week: vec!["MON".into()],
            }],
        }),
    )
    .unwrap_err();
    assert!(err.starts_with("spec.quietHours.windows[0].start"), "{err}");
}

/// HMAC-SHA256 computed from RFC 2104 with sha2 alone (not the hmac crate).
fn independent_hmac(key: &[u8], message: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let ipad: Vec<u8> = block.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = block.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::new()
        .chain_update(&ipad)
        .chain_update(message)
        .finalize();
    let outer = Sha256::new()
        .chain_update(&opad)
        .chain_update(inner)
        .finalize();
    outer.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn the_signature_is_hmac_sha256_of_timestamp_dot_body() {
    let body = br#"{"event":"CycleStarted"}"#;
    let sig = signature(b"s3cret", 1_764_000_000, body);
    let expected = independent_hmac(b"s3cret", b"1764000000.{\"event\":\"CycleStarted\"}");
    assert_eq!(sig, format!("sha256={expected}"));
    // RFC 4231 test case 2 through the same construction
    assert_eq!(
        independent_hmac(b"Jefe", b"what do ya want for nothing?"),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
    // a long key (hashed first) and a different timestamp change it
    let long = [7u8; 100];
    assert_eq!(
        signature(&long, 5, b"x"),
        format!("sha256={}", independent_hmac(&long, b"5.x"))
    );
    assert_ne!(signature(b"s3cret", 1_764_000_001, body), sig);
}

#[test]
fn default_templates_render_json_with_the_event_fields() {
    let n = super::render::sample();
    let slack: serde_json::Value =
        serde_json::from_str(&render(SinkType::Slack, None, &n).unwrap()).unwrap();
    assert_eq!(slack["text"], n.title());
    assert_eq!(slack["blocks"][0]["type"], "header");
    assert_eq!(slack["blocks"][1]["text"]["text"], n.message);
    assert!(
        slack["blocks"][2]["text"]["text"]
            .as_str()
            .unwrap()
            .contains("database (rds): Failed, 42s: InvalidDBInstanceState")
    );
    let teams: serde_json::Value =
        serde_json::from_str(&render(SinkType::Teams, None, &n).unwrap()).unwrap();
    assert_eq!(teams["@type"], "MessageCard");
    assert_eq!(teams["themeColor"], "A30200");
    assert_eq!(teams["sections"][0]["facts"][0]["value"], "default/sample");
    let hook: serde_json::Value =
        serde_json::from_str(&render(SinkType::Webhook, None, &n).unwrap()).unwrap();
    assert_eq!(hook["event"], "CycleFinished");
    assert_eq!(hook["severity"], "error");
    assert_eq!(hook["key"], n.key());
    assert_eq!(hook["targets"][0]["error"], "InvalidDBInstanceState");
    // quotes and newlines in messages stay valid JSON
    let mut tricky = n.clone();
    tricky.message = "say \"hi\"\n\\ done".into();
    tricky.targets.clear();
    for kind in [SinkType::Slack, SinkType::Teams, SinkType::Webhook] {
        let body = render(kind, None, &tricky).unwrap();
        assert!(
            serde_json::from_str::<serde_json::Value>(&body).is_ok(),
            "{body}"
        );
    }
}

#[test]
fn custom_templates_render_and_errors_are_reported() {
    let n = super::render::sample();
    let body = render(
        SinkType::Webhook,
        Some(r#"{"text": {{ (plan ~ ": " ~ event)|tojson }}}"#),
        &n,
    )
    .unwrap();
    assert_eq!(body, r#"{"text": "sample: CycleFinished"}"#);
    // syntax error, with its line
    let err = check_template(SinkType::Slack, "{\"a\":\n {{ plan ").unwrap_err();
    assert!(err.message.contains("line 2"), "{}", err.message);
    // an unknown variable (strict undefined)
    let err = check_template(SinkType::Slack, r#"{"a": "{{ nope }}"}"#).unwrap_err();
    assert!(err.message.contains("undefined"), "{}", err.message);
    // not JSON
    let err = check_template(SinkType::Teams, "hello {{ plan }}").unwrap_err();
    assert!(err.message.contains("not JSON"), "{}", err.message);
    // a runaway loop runs out of fuel instead of hanging
    let err = check_template(
        SinkType::Webhook,
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}{}",
    )
    .unwrap_err();
    assert!(!err.message.is_empty());
}

#[test]
fn urls_are_redacted_to_their_host_and_secrets_scrubbed() {
    assert_eq!(
        redact_url("https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXX"),
        "hooks.slack.com"
    );
    assert_eq!(
        redact_url("http://user:pw@127.0.0.1:8080/x?token=1"),
        "127.0.0.1"
    );
    assert_eq!(redact_url("not a url"), "<redacted>");
    let url = "https://hooks.example.com/services/T0123/B0456/secretsecretsecret";
    let text = format!(
        "error sending request for url ({url}): timed out; path /services/T0123/B0456/secretsecretsecret; key k3y-very-long"
    );
    let clean = scrub(&text, &[url, "k3y-very-long"]);
    assert!(!clean.contains("secretsecretsecret"), "{clean}");
    assert!(!clean.contains("k3y-very-long"), "{clean}");
    assert!(clean.contains("timed out"));
}

#[test]
fn validation_names_the_fields() {
    let spec: hibernator_core::types::HibernateNotificationSpec = serde_json::from_value(serde_json::json!({
        "selector": {"planNames": ["app"]},
        "quietHours": {"timezone": "Nowhere/City", "windows": [{"start": "22:00", "end": "07:00", "daysOfWeek": ["XYZ"]}]},
        "sinks": [
            {"name": "slack", "type": "Slack", "urlSecretRef": {"name": "s", "key": "url"}},
            {"name": "hook", "type": "Webhook", "urlSecretRef": {"name": "s", "key": ""},
             "template": "{{ plan"},
            {"name": "slack", "type": "Teams", "urlSecretRef": {"name": "s", "key": "t"}, "timeout": "5m"}
        ]
    }))
    .unwrap();
    let d = validate::check_notification(&spec);
    let fields: Vec<&str> = d.errors.iter().map(|e| e.field.as_str()).collect();
    for expected in [
        "spec.sinks[1].urlSecretRef.key",
        "spec.sinks[1].signingSecretRef",
        "spec.sinks[1].template",
        "spec.sinks[2].name",
        "spec.sinks[2].timeout",
        "spec.quietHours.timezone",
        "spec.quietHours.windows[0].daysOfWeek[0]",
    ] {
        assert!(
            fields.contains(&expected),
            "{expected} missing in {fields:?}"
        );
    }
}

#[test]
fn records_count_once_set_delivery_failing_per_sink_and_prune_past_the_horizon() {
    use super::records::{Delivery, after_horizon, is_recorded, record_outcome};
    use hibernator_core::types::HibernateNotificationStatus;
    let now = t("2026-11-24T08:00:00Z");
    let mut status = HibernateNotificationStatus {
        horizon: Some(t("2026-11-23T00:00:00Z")),
        ..HibernateNotificationStatus::default()
    };
    let failing = |s: &HibernateNotificationStatus| {
        s.conditions
            .iter()
            .find(|c| c.type_ == "DeliveryFailing")
            .map(|c| (c.status.clone(), c.message.clone()))
    };
    record_outcome(
        &mut status,
        "hook",
        "hook/app/c1/CycleStarted",
        t("2026-11-23T20:00:00Z"),
        Delivery::Delivered,
        now,
        3,
    );
    record_outcome(
        &mut status,
        "hook",
        "hook/app/c1/CycleStarted",
        t("2026-11-23T20:00:00Z"),
        Delivery::Delivered,
        now,
        3,
    );
    assert_eq!(status.delivered_count, 1, "a key counts once");
    assert!(is_recorded(&status, "hook/app/c1/CycleStarted"));
    assert_eq!(failing(&status), None);
    record_outcome(
        &mut status,
        "chat",
        "chat/app/c1/CycleStarted",
        t("2026-11-23T20:00:00Z"),
        Delivery::Failed {
            attempts: 5,
            reason: "hooks.slack.com answered 500",
        },
        now,
        3,
    );
    assert_eq!(
        failing(&status),
        Some((
            "True".into(),
            "sink chat: hooks.slack.com answered 500 (5 attempt(s))".into()
        ))
    );
    // another sink's success leaves chat's failure standing; chat's own clears it
    record_outcome(
        &mut status,
        "hook",
        "hook/app/c1/CycleFinished",
        t("2026-11-23T20:05:00Z"),
        Delivery::Delivered,
        now,
        3,
    );
    assert_eq!(failing(&status).unwrap().0, "True");
    record_outcome(
        &mut status,
        "chat",
        "chat/app/c1/CycleFinished",
        t("2026-11-23T20:05:00Z"),
        Delivery::Delivered,
        now,
        3,
    );
    assert_eq!(failing(&status).unwrap().0, "False");
    assert_eq!((status.delivered_count, status.failed_count), (3, 1));
    // bounded: the oldest records went, and the horizon moved past them
    assert_eq!(status.deliveries.len(), 3);
    assert!(!after_horizon(&status, t("2026-11-23T20:00:00Z")));
    assert!(after_horizon(&status, t("2026-11-23T20:05:00Z")));
    let kept: Vec<&str> = status.deliveries.iter().map(|d| d.key.as_str()).collect();
    assert_eq!(
        kept,
        [
            "chat/app/c1/CycleStarted",
            "hook/app/c1/CycleFinished",
            "chat/app/c1/CycleFinished"
        ]
    );
    // no horizon yet: nothing is sent
    assert!(!after_horizon(&HibernateNotificationStatus::default(), now));
}
