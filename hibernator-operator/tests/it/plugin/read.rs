//! `list`, `describe`, `preview`, `restore inspect`, `logs`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use hibernator_core::planner::ExecutionPlan;
use hibernator_core::restore::{RestoreEntry, RestoreRecord};
use hibernator_core::schedule::CompiledSchedule;
use hibernator_core::types::{Operation, ScheduleException};
use hibernator_core::wellknown::{
    LABEL_CYCLE_ID as LABEL_CYCLE, LABEL_JOB_NAME, LABEL_OPERATION, LABEL_PLAN, LABEL_TARGET,
    restore_config_map_name,
};
use hibernator_operator::plugin::PluginError;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::api::events::v1::Event;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use serde_json::json;

use super::Env;

fn record(target: &str, executor: &str, keys: &[&str]) -> RestoreRecord {
    let mut record = RestoreRecord::new(target, executor);
    for (i, key) in keys.iter().enumerate() {
        record.entries.insert(
            (*key).to_string(),
            RestoreEntry {
                state: json!({"desiredSize": i + 2}),
                cycle_id: "c1".to_string(),
                observed_at: Utc::now(),
            },
        );
    }
    record.last_cycle_id = Some("c1".to_string());
    record
}

async fn create_restore(env: &Env, plan: &str, records: &[RestoreRecord]) {
    let data: BTreeMap<String, String> = records
        .iter()
        .map(|r| (r.target.clone(), serde_json::to_string(r).unwrap()))
        .collect();
    let cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some(restore_config_map_name(plan)),
            ..Default::default()
        },
        data: Some(data),
        ..Default::default()
    };
    Api::<ConfigMap>::namespaced(env.tc.client(), env.ns())
        .create(&PostParams::default(), &cm)
        .await
        .unwrap();
}

#[tokio::test]
async fn list_shows_phase_next_transition_and_targets() {
    let env = Env::start("plugin-list").await;
    env.create_plan("alpha").await;
    env.create_plan("beta").await;
    env.set_status(
        "alpha",
        json!({"phase": "Hibernated", "nextTransition": "2030-01-06T05:00:00Z", "targetsSummary": "4/4 hibernated"}),
    )
    .await;
    env.run(&["suspend", "beta"]).await;

    let rows = env.json(&["list", "-o", "json"]).await;
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0]["name"], "alpha");
    assert_eq!(rows[0]["phase"], "Hibernated");
    assert_eq!(rows[0]["nextTransition"], "2030-01-06T05:00:00Z");
    assert_eq!(rows[0]["targets"], 4);
    assert_eq!(rows[0]["targetsSummary"], "4/4 hibernated");
    assert_eq!(rows[0]["suspended"], false);
    assert_eq!(rows[1]["name"], "beta");
    assert_eq!(rows[1]["suspended"], true);

    let all = env.json(&["list", "-A", "-o", "json"]).await;
    let mine: Vec<_> = all
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["namespace"] == env.ns())
        .collect();
    assert_eq!(mine.len(), 2);

    let table = env.run(&["list"]).await;
    assert!(
        table.contains("alpha") && table.contains("Hibernated"),
        "{table}"
    );
    assert!(table.contains("4 (4/4 hibernated)"), "{table}");
    assert!(table.contains("(suspended)"), "{table}");
    env.tc.cleanup().await.unwrap();
}

#[tokio::test]
async fn describe_shows_waves_targets_restore_and_events() {
    let env = Env::start("plugin-describe").await;
    let plan = env.create_plan("p").await;
    env.set_status(
        "p",
        json!({
            "phase": "Error",
            "currentCycleId": "c1",
            "currentOperation": "shutdown",
            "executions": [
                {"target": "app-nodes", "executor": "eks", "state": "Completed", "attempts": 1},
                {"target": "orders-db", "executor": "rds", "state": "Failed", "attempts": 3, "message": "throttled"},
            ],
        }),
    )
    .await;
    create_restore(
        &env,
        "p",
        &[record(
            "app-nodes",
            "eks",
            &["nodegroup/general", "nodegroup/spot"],
        )],
    )
    .await;
    let event = Event {
        metadata: ObjectMeta {
            generate_name: Some("p-".to_string()),
            ..Default::default()
        },
        regarding: Some(k8s_openapi::api::core::v1::ObjectReference {
            api_version: Some("hibernator.dev/v1alpha1".to_string()),
            kind: Some("HibernatePlan".to_string()),
            name: Some("p".to_string()),
            namespace: Some(env.ns().to_string()),
            uid: plan.metadata.uid.clone(),
            ..Default::default()
        }),
        reason: Some("TargetFailed".to_string()),
        note: Some("orders-db: throttled".to_string()),
        type_: Some("Warning".to_string()),
        action: Some("Shutdown".to_string()),
        event_time: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
            k8s_openapi::jiff::Timestamp::now(),
        )),
        reporting_controller: Some("hibernator.dev/controller".to_string()),
        reporting_instance: Some("test".to_string()),
        ..Default::default()
    };
    Api::<Event>::namespaced(env.tc.client(), env.ns())
        .create(&PostParams::default(), &event)
        .await
        .unwrap();

    let d = env.json(&["describe", "p", "-o", "json"]).await;
    assert_eq!(d["phase"], "Error");
    assert_eq!(d["cycleId"], "c1");
    let expected = |op| ExecutionPlan::build(&plan.spec, op).unwrap().waves();
    assert_eq!(d["waves"]["shutdown"], json!(expected(Operation::Shutdown)));
    assert_eq!(d["waves"]["wakeup"], json!(expected(Operation::Wakeup)));
    let targets = d["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 4);
    assert_eq!(targets[0]["name"], "app-nodes");
    assert_eq!(targets[0]["state"], "Completed");
    assert_eq!(targets[2]["name"], "orders-db");
    assert_eq!(targets[2]["state"], "Failed");
    assert_eq!(targets[2]["attempts"], 3);
    assert_eq!(targets[2]["message"], "throttled");
    assert_eq!(targets[1]["state"], serde_json::Value::Null);
    assert_eq!(d["restore"][0]["target"], "app-nodes");
    assert_eq!(d["restore"][0]["resources"], 2);
    assert_eq!(
        d["restore"][0]["keys"],
        json!(["nodegroup/general", "nodegroup/spot"])
    );
    let events = d["events"].as_array().unwrap();
    assert!(
        events
            .iter()
            .any(|e| e["reason"] == "TargetFailed" && e["type"] == "Warning"),
        "{events:?}"
    );
    // Times in the plan's zone by default, in --timezone when given.
    assert_eq!(d["schedule"]["displayTimezone"], "Europe/Berlin");
    let first = d["schedule"]["transitions"][0]["at"].as_str().unwrap();
    assert!(
        first.ends_with("+01:00") || first.ends_with("+02:00"),
        "{first}"
    );
    let utc = env
        .json(&["describe", "p", "-o", "json", "--timezone", "UTC"])
        .await;
    let first_utc = utc["schedule"]["transitions"][0]["at"].as_str().unwrap();
    assert!(first_utc.ends_with("+00:00"), "{first_utc}");
    assert_eq!(
        DateTime::parse_from_rfc3339(first).unwrap(),
        DateTime::parse_from_rfc3339(first_utc).unwrap()
    );

    let table = env.run(&["describe", "p"]).await;
    for needle in [
        "Phase:      Error",
        "app-nodes",
        "nodegroup/general",
        "TargetFailed",
        "wave",
    ] {
        assert!(table.contains(needle), "{needle}: {table}");
    }
    let err = env
        .try_run(&["describe", "p", "--timezone", "Mars/Olympus"])
        .await
        .unwrap_err();
    assert!(matches!(err, PluginError::InvalidTimezone(_)), "{err}");
    env.tc.cleanup().await.unwrap();
}

#[tokio::test]
async fn preview_applies_the_namespace_exceptions_like_the_core_engine() {
    let env = Env::start("plugin-preview").await;
    let plan = env.create_plan("p").await;
    let now = Utc::now();
    // Extra off-hours every day at noon, valid from yesterday for ten days.
    let exception: ScheduleException = serde_json::from_value(json!({
        "apiVersion": "hibernator.dev/v1alpha1",
        "kind": "ScheduleException",
        "metadata": {"name": "lunch", "namespace": env.ns()},
        "spec": {
            "planRef": {"name": "p"},
            "type": "extend",
            "validFrom": (now - chrono::Duration::days(1)).to_rfc3339(),
            "validUntil": (now + chrono::Duration::days(10)).to_rfc3339(),
            "windows": [{"start": "12:00", "end": "13:00",
                "daysOfWeek": ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"]}],
        },
    }))
    .unwrap();
    // An exception of another plan must not count.
    let mut other = exception.clone();
    other.metadata.name = Some("other".to_string());
    other.spec.plan_ref.name = "not-p".to_string();
    other.spec.kind = hibernator_core::types::ExceptionType::Suspend;
    let api = Api::<ScheduleException>::namespaced(env.tc.client(), env.ns());
    let exception = api
        .create(&PostParams::default(), &exception)
        .await
        .unwrap();
    api.create(&PostParams::default(), &other).await.unwrap();

    let out = env
        .json(&["preview", "p", "--days", "3", "-o", "json"])
        .await;
    let at: DateTime<Utc> = out["at"].as_str().unwrap().parse().unwrap();
    let got: Vec<(DateTime<Utc>, String)> = out["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["at"].as_str().unwrap().parse().unwrap(),
                t["to"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected = |exceptions: &[ScheduleException]| -> Vec<(DateTime<Utc>, String)> {
        let schedule = CompiledSchedule::compile(&plan.spec.schedule, exceptions).unwrap();
        schedule
            .transitions(at)
            .take_while(|t| t.at <= at + chrono::Duration::days(3))
            .map(|t| (t.at, t.to.to_string()))
            .collect()
    };
    let with = expected(std::slice::from_ref(&exception));
    assert_eq!(got, with);
    assert_ne!(with, expected(&[]), "the exception must change the preview");
    assert!(!got.is_empty());

    let table = env.run(&["preview", "p", "--days", "1"]).await;
    assert!(table.contains("plan p (Europe/Berlin)"), "{table}");
    env.tc.cleanup().await.unwrap();
}

#[tokio::test]
async fn restore_inspect_decodes_every_record_or_one_target() {
    let env = Env::start("plugin-restore").await;
    env.create_plan("p").await;
    let table = env.run(&["restore", "inspect", "p"]).await;
    assert!(table.contains("no restore data"), "{table}");

    let app = record("app-nodes", "eks", &["nodegroup/general", "nodegroup/spot"]);
    let db = record("orders-db", "rds", &["instance/orders-db"]);
    create_restore(&env, "p", &[app.clone(), db.clone()]).await;

    let all = env.json(&["restore", "inspect", "p", "-o", "json"]).await;
    assert_eq!(all["configMap"], "hibernator-restore-p");
    let records = all["records"].as_array().unwrap();
    assert_eq!(records.len(), 2);
    let decoded: RestoreRecord = serde_json::from_value(records[0]["record"].clone()).unwrap();
    assert_eq!(decoded, app);

    let one = env
        .json(&["restore", "inspect", "p", "orders-db", "-o", "json"])
        .await;
    let records = one["records"].as_array().unwrap();
    assert_eq!(records.len(), 1);
    let decoded: RestoreRecord = serde_json::from_value(records[0]["record"].clone()).unwrap();
    assert_eq!(decoded, db);

    let table = env.run(&["restore", "inspect", "p", "app-nodes"]).await;
    assert!(
        table.contains("nodegroup/spot") && table.contains("desiredSize"),
        "{table}"
    );
    let table = env.run(&["restore", "inspect", "p"]).await;
    assert!(table.contains("instance/orders-db"), "{table}");

    let err = env
        .try_run(&["restore", "inspect", "p", "ghost"])
        .await
        .unwrap_err();
    assert!(matches!(err, PluginError::UnknownTarget { .. }), "{err}");
    assert!(err.to_string().contains("app-nodes"), "{err}");
    env.tc.cleanup().await.unwrap();
}

fn job(name: &str, target: &str, cycle: &str) -> Job {
    serde_json::from_value(json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": {
            LABEL_PLAN: "p", LABEL_TARGET: target, LABEL_OPERATION: "shutdown", LABEL_CYCLE: cycle,
        }},
        "spec": {"template": {"spec": {"restartPolicy": "Never",
            "containers": [{"name": "runner", "image": "hibernator"}]}}},
    }))
    .unwrap()
}

fn pod(name: &str, job: &str) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {LABEL_JOB_NAME: job}},
        "spec": {"containers": [{"name": "runner", "image": "hibernator"}]},
    }))
    .unwrap()
}

#[tokio::test]
async fn logs_follow_jobs_of_the_current_cycle_to_their_pods() {
    let env = Env::start("plugin-logs").await;
    let Some(server) = env.tc.api_server() else {
        // A real cluster would run these pods; their logs are not ours to set.
        return env.tc.cleanup().await.unwrap();
    };
    env.create_plan("p").await;
    let err = env.try_run(&["logs", "p"]).await.unwrap_err();
    assert!(matches!(err, PluginError::NoRunners { .. }), "{err}");

    let jobs = Api::<Job>::namespaced(env.tc.client(), env.ns());
    let pods = Api::<Pod>::namespaced(env.tc.client(), env.ns());
    for (j, target, cycle) in [
        ("p-app-old", "app-nodes", "c1"),
        ("p-app-new", "app-nodes", "c2"),
        ("p-db-new", "orders-db", "c2"),
    ] {
        jobs.create(&PostParams::default(), &job(j, target, cycle))
            .await
            .unwrap();
        let pod_name = format!("{j}-pod");
        pods.create(&PostParams::default(), &pod(&pod_name, j))
            .await
            .unwrap();
        server.set_pod_log(env.ns(), &pod_name, &format!("log of {j}\n"));
    }
    env.set_status("p", json!({"phase": "Hibernating", "currentCycleId": "c2"}))
        .await;

    let all = env.json(&["logs", "p", "-o", "json"]).await;
    let mut seen: Vec<(String, String)> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["target"].as_str().unwrap().to_string(),
                e["log"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        vec![
            ("app-nodes".to_string(), "log of p-app-new\n".to_string()),
            ("orders-db".to_string(), "log of p-db-new\n".to_string()),
        ]
    );

    let text = env.run(&["logs", "p", "orders-db"]).await;
    assert!(text.contains("log of p-db-new"), "{text}");
    assert!(!text.contains("p-app-new"), "{text}");

    // With the status naming the old cycle, its Job is the one shown.
    env.set_status("p", json!({"currentCycleId": "c1"})).await;
    let text = env.run(&["logs", "p", "app-nodes"]).await;
    assert!(text.contains("log of p-app-old"), "{text}");
    env.tc.cleanup().await.unwrap();
}

#[tokio::test]
async fn preview_and_describe_show_the_ready_by_lead_readiness_and_enforcement() {
    let env = Env::start("plugin-readyby").await;
    env.create_plan("p").await;
    env.plans()
        .patch(
            "p",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(
                json!({"spec": {"wakeUp": {"readyBy": true, "maxLead": "2h"}}}),
            ),
        )
        .await
        .unwrap();
    // Learned: every target took 4 minutes, except orders-db (12 minutes).
    let durations: Vec<serde_json::Value> =
        ["app-nodes", "batch-workers", "orders-db", "analytics-db"]
            .iter()
            .map(|t| json!({"target": t, "seconds": [if *t == "orders-db" { 720 } else { 240 }]}))
            .collect();
    env.set_status(
        "p",
        json!({
            "phase": "Active",
            "wakeUp": {
                "durations": durations,
                "readiness": [{"cycleId": "c20261124t045000z", "windowEnd": "2026-11-24T05:00:00Z",
                    "readyAt": "2026-11-24T05:03:00Z", "earlySeconds": -180}],
            },
            "enforcement": {
                "wokeUpCount": 3, "lastCheckAt": "2026-11-24T02:00:00Z",
                "nextCheckAt": "2026-11-24T03:00:00Z", "lastResult": "ReHibernated",
                "message": "check e1: 1 resources found awake and put back to sleep; orders-db: 1 checked, 1 re-hibernated",
            },
        }),
    )
    .await;
    let plan = env.plan("p").await;
    let lead = hibernator_core::readyby::wake_lead(
        &plan.spec,
        plan.status.as_ref().and_then(|s| s.wake_up.as_ref()),
    );
    // Wake-up reverses the DAG: the databases first (12m), then the nodes
    // and workers (4m): 16 minutes.
    assert_eq!(lead.lead.as_secs(), 16 * 60);

    let out = env
        .json(&["preview", "p", "--days", "3", "-o", "json"])
        .await;
    assert_eq!(out["readyBy"]["leadSeconds"], 960, "{out}");
    assert_eq!(out["readyBy"]["source"], "history");
    let at: DateTime<Utc> = out["at"].as_str().unwrap().parse().unwrap();
    let schedule = CompiledSchedule::compile(&plan.spec.schedule, &[]).unwrap();
    let moved =
        hibernator_core::readyby::LeadSchedule::new(&schedule, chrono::TimeDelta::minutes(16));
    let expected: Vec<(DateTime<Utc>, String)> = moved
        .transitions(at)
        .take_while(|t| t.at <= at + chrono::Duration::days(3))
        .map(|t| (t.at, t.to.to_string()))
        .collect();
    let got: Vec<(DateTime<Utc>, String)> = out["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["at"].as_str().unwrap().parse().unwrap(),
                t["to"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(got, expected);
    for t in out["transitions"].as_array().unwrap() {
        if t["to"] == "awake" {
            let at: DateTime<Utc> = t["at"].as_str().unwrap().parse().unwrap();
            let end: DateTime<Utc> = t["windowEnd"].as_str().unwrap().parse().unwrap();
            assert_eq!(end - at, chrono::TimeDelta::minutes(16), "{t}");
        }
    }

    let table = env.run(&["describe", "p", "--timezone", "UTC"]).await;
    assert!(
        table.contains("ready-by: wake-ups start 16m before the window end"),
        "{table}"
    );
    assert!(
        table.contains(
            "wake-up c20261124t045000z: ready 3m late for the window end 2026-11-24T05:00:00+00:00"
        ),
        "{table}"
    );
    assert!(
        table.contains("Enforcement: woke up 3 time(s) while hibernated; last check 2026-11-24T02:00:00+00:00 (ReHibernated), next 2026-11-24T03:00:00+00:00"),
        "{table}"
    );
    assert!(
        table.contains("orders-db: 1 checked, 1 re-hibernated"),
        "{table}"
    );
    let d = env.json(&["describe", "p", "-o", "json"]).await;
    assert_eq!(d["wakeUp"]["readiness"][0]["earlySeconds"], -180, "{d}");
    assert_eq!(d["enforcement"]["wokeUpCount"], 3, "{d}");
    env.tc.cleanup().await.unwrap();
}

#[tokio::test]
async fn preview_and_describe_show_calendar_days_and_unusable_calendars() {
    let env = Env::start("plugin-calendars").await;
    let mut plan = env.create_plan("h").await;
    plan.spec.schedule.calendars = vec![
        hibernator_core::types::ObjectRef {
            name: "company".into(),
            namespace: None,
        },
        hibernator_core::types::ObjectRef {
            name: "missing".into(),
            namespace: None,
        },
    ];
    env.plans()
        .replace("h", &PostParams::default(), &plan)
        .await
        .unwrap();
    // Two days from now (in the plan's zone) is a company day, off all day.
    let tz: chrono_tz::Tz = plan.spec.schedule.timezone.parse().unwrap();
    let day = (Utc::now().with_timezone(&tz) + chrono::Duration::days(2)).date_naive();
    let calendar: hibernator_core::types::HolidayCalendar = serde_json::from_value(json!({
        "apiVersion": "hibernator.dev/v1alpha1",
        "kind": "HolidayCalendar",
        "metadata": {"name": "company", "namespace": env.ns()},
        "spec": {"dates": [day.to_string()]},
    }))
    .unwrap();
    Api::<hibernator_core::types::HolidayCalendar>::namespaced(env.tc.client(), env.ns())
        .create(&PostParams::default(), &calendar)
        .await
        .unwrap();

    let out = env
        .json(&["preview", "h", "--days", "4", "-o", "json"])
        .await;
    let days = out["calendarDays"].as_array().unwrap();
    assert!(
        days.iter().any(|d| d["date"] == day.to_string()
            && d["calendar"] == format!("{}/company", env.ns())
            && d["effect"] == "hibernate"),
        "{out}"
    );
    let warnings = out["warnings"].to_string();
    assert!(
        warnings.contains("spec.schedule.calendars[1]") && warnings.contains("does not exist"),
        "{out}"
    );
    // The day is off from its local midnight: the preview agrees with the engine.
    let midnight = day
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_local_timezone(tz)
        .earliest()
        .unwrap()
        .with_timezone(&Utc);
    let noon = midnight + chrono::Duration::hours(12);
    let states: Vec<(DateTime<Utc>, String)> = out["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["at"].as_str().unwrap().parse().unwrap(),
                t["to"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let state_at_noon = states
        .iter()
        .rev()
        .find(|(at, _)| *at <= noon)
        .map(|(_, to)| to.clone())
        .or_else(|| out["state"].as_str().map(String::from));
    assert_eq!(state_at_noon.as_deref(), Some("hibernated"), "{out}");

    let described = env.json(&["describe", "h", "-o", "json"]).await;
    assert!(
        described["schedule"]["calendarDays"]
            .to_string()
            .contains(&day.to_string()),
        "{described}"
    );
    let text = env.run(&["describe", "h"]).await;
    assert!(
        text.contains("calendar: ") && text.contains("warning: "),
        "{text}"
    );
    env.tc.cleanup().await.unwrap();
}
