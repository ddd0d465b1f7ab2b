//! Holiday calendars through the controller: a missing calendar is reported and
//! the plan follows its windows; a calendar and its iCalendar ConfigMap take
//! effect by watch, and so does an edit of the document.

use std::collections::BTreeMap;
use std::time::Duration;

use hibernator_core::types::{HibernatePlan, HolidayCalendar, PlanPhase};
use hibernator_testkit::jobsim::JobSimulator;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};

use super::support::*;

/// Tuesday 8 December 2026, noon UTC: awake by the weeknight window.
fn tuesday_noon() -> chrono::DateTime<chrono::Utc> {
    "2026-12-08T12:00:00Z".parse().unwrap()
}

fn ics(day: &str) -> String {
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:day\r\nSUMMARY:Company day\r\nDTSTART;VALUE=DATE:{day}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
}

fn document(day: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some("company-days".into()),
            labels: Some(BTreeMap::from([(
                hibernator_core::wellknown::LABEL_CALENDAR.to_string(),
                "true".to_string(),
            )])),
            ..Default::default()
        },
        data: Some(BTreeMap::from([("calendar.ics".to_string(), ics(day))])),
        ..Default::default()
    }
}

/// Waits until the plan's `CalendarsReady` condition has `status`; returns the plan.
async fn wait_calendars_ready(
    plans: &Api<HibernatePlan>,
    name: &str,
    status: &str,
) -> HibernatePlan {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let plan = plans.get(name).await.unwrap();
        let found = plan.status.as_ref().and_then(|s| {
            s.conditions
                .iter()
                .find(|c| c.type_ == "CalendarsReady")
                .map(|c| c.status.clone())
        });
        if found.as_deref() == Some(status) {
            return plan;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "CalendarsReady never became {status}: {:#?}",
            plan.status
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calendars_and_their_documents_take_effect_by_watch() {
    let cluster = cluster("ctl-calendars").await;
    let client = cluster.client();
    let ns = cluster.namespace().to_string();
    let log = RunnerLog::default();
    let _sim = JobSimulator::start(
        client.clone(),
        &ns,
        runner(client.clone(), log.clone(), no_failures()),
    );
    let plans: Api<HibernatePlan> = Api::namespaced(client.clone(), &ns);
    let mut p = plan("cal", 1, "{type: Parallel}");
    p.spec.schedule.calendars = vec![hibernator_core::types::ObjectRef {
        name: "company".into(),
        namespace: None,
    }];
    plans.create(&PostParams::default(), &p).await.unwrap();
    let mut harness = Harness::new(&cluster, tuesday_noon());

    // No calendar yet: reported, and the plan follows its windows.
    let plan = wait_calendars_ready(&plans, "cal", "False").await;
    let status = plan.status.unwrap();
    let condition = status
        .conditions
        .iter()
        .find(|c| c.type_ == "CalendarsReady")
        .unwrap();
    assert!(
        condition.message.contains("spec.schedule.calendars[0]")
            && condition.message.contains("does not exist"),
        "{condition:?}"
    );
    assert_eq!(status.phase, PlanPhase::Active);
    assert_eq!(
        status.next_transition,
        Some("2026-12-08T20:00:00Z".parse().unwrap())
    );

    // The document and the calendar: today is a company day, the plan hibernates.
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    config_maps
        .create(&PostParams::default(), &document("20261208"))
        .await
        .unwrap();
    let calendar: HolidayCalendar = serde_json::from_value(serde_json::json!({
        "apiVersion": "hibernator.dev/v1alpha1",
        "kind": "HolidayCalendar",
        "metadata": {"name": "company"},
        "spec": {"ical": [{"configMapRef": {"name": "company-days", "key": "calendar.ics"}}]}
    }))
    .unwrap();
    Api::<HolidayCalendar>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &calendar)
        .await
        .unwrap();
    let plan = wait_phase(
        &plans,
        "cal",
        PlanPhase::Hibernated,
        Duration::from_secs(60),
    )
    .await;
    let status = plan.status.unwrap();
    // Off until the weeknight window's Wednesday 06:00 wake (the holiday runs into it).
    assert_eq!(
        status.next_transition,
        Some("2026-12-09T06:00:00Z".parse().unwrap())
    );
    assert!(
        status
            .conditions
            .iter()
            .any(|c| c.type_ == "CalendarsReady" && c.status == "True"),
        "{:#?}",
        status.conditions
    );

    // Moving the day in the document (a ConfigMap edit) wakes the plan up.
    let mut edited = config_maps.get("company-days").await.unwrap();
    edited.data = document("20261210").data;
    config_maps
        .replace("company-days", &PostParams::default(), &edited)
        .await
        .unwrap();
    let plan = wait_phase(&plans, "cal", PlanPhase::Active, Duration::from_secs(60)).await;
    assert_eq!(
        plan.status.unwrap().next_transition,
        Some("2026-12-08T20:00:00Z".parse().unwrap())
    );
    let runs = log.runs();
    assert!(
        runs.iter().any(|(_, op, _)| op == "shutdown")
            && runs.iter().any(|(_, op, _)| op == "wakeup"),
        "{runs:?}"
    );
    harness.stop().await;
}
