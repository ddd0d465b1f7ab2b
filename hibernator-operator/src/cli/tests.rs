use std::io::Write;
use std::process::ExitCode;

use super::run_capture;

fn demo_path() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/plans/demo.yaml").to_string()
}

fn json(args: &[&str]) -> (ExitCode, serde_json::Value) {
    let (code, out) = run_capture(args.iter().copied()).unwrap();
    (
        code,
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}")),
    )
}

#[test]
fn validate_accepts_the_demo_plan() {
    let (code, v) = json(&["hibernator", "validate", &demo_path(), "--output", "json"]);
    assert_eq!(code, ExitCode::SUCCESS, "{v}");
    assert_eq!(v["valid"], true);
    assert_eq!(v["errors"], serde_json::json!([]));
}

#[test]
fn validate_reports_field_errors_and_exits_1() {
    let text = std::fs::read_to_string(demo_path()).unwrap().replace(
        "{from: batch-workers, to: orders-db}",
        "{from: orders-db, to: app-nodes}",
    );
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    let path = file.path().to_str().unwrap().to_string();
    let (code, v) = json(&["hibernator", "validate", &path, "--output", "json"]);
    assert_eq!(code, ExitCode::FAILURE);
    assert_eq!(v["valid"], false);
    let errors = v["errors"].as_array().unwrap();
    assert!(
        errors.iter().any(|e| e["message"]
            .as_str()
            .unwrap()
            .contains("app-nodes -> orders-db -> app-nodes")
            || e["message"]
                .as_str()
                .unwrap()
                .contains("orders-db -> app-nodes -> orders-db")),
        "{v}"
    );
    assert!(errors.iter().all(|e| e["field"].is_string()));
    // The text form says the same and also exits 1.
    let (code, out) = run_capture(["hibernator", "validate", &path]).unwrap();
    assert_eq!(code, ExitCode::FAILURE);
    assert!(out.contains("is invalid"), "{out}");
}

#[test]
fn validate_reports_yaml_schema_errors_with_the_field() {
    let text = std::fs::read_to_string(demo_path()).unwrap().replacen(
        "mode: BestEffort",
        "mode: Sloppy",
        1,
    );
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    let (code, v) = json(&[
        "hibernator",
        "validate",
        file.path().to_str().unwrap(),
        "-o",
        "json",
    ]);
    assert_eq!(code, ExitCode::FAILURE);
    assert_eq!(v["errors"][0]["field"], "spec.behavior.mode", "{v}");
}

#[test]
fn schedule_json_follows_the_engine() {
    // Monday noon in Berlin: awake; off at 20:00, awake Tuesday 06:00.
    let (code, v) = json(&[
        "hibernator",
        "schedule",
        &demo_path(),
        "--at",
        "2026-11-23T12:00:00+01:00",
        "--next",
        "3",
        "-o",
        "json",
    ]);
    assert_eq!(code, ExitCode::SUCCESS);
    assert_eq!(v["plan"], "demo");
    assert_eq!(v["timezone"], "Europe/Berlin");
    assert_eq!(v["at"], "2026-11-23T12:00:00+01:00");
    assert_eq!(v["state"], "awake");
    let t = v["transitions"].as_array().unwrap();
    assert_eq!(t.len(), 3);
    assert_eq!(
        t[0],
        serde_json::json!({"at": "2026-11-23T20:00:00+01:00", "to": "hibernated"})
    );
    assert_eq!(
        t[1],
        serde_json::json!({"at": "2026-11-24T06:00:00+01:00", "to": "awake"})
    );
    assert_eq!(t[2]["to"], "hibernated");
}

#[test]
fn schedule_applies_the_demo_suspend_exception_with_lead_time() {
    // Thursday 2026-12-03: the base would hibernate at 20:00, one hour before the
    // release-night suspend window (21:00), less than its 2h lead time: it stays
    // awake until the suspend ends on Friday 03:00, then sleeps until 06:00.
    let (_, v) = json(&[
        "hibernator",
        "schedule",
        &demo_path(),
        "--at",
        "2026-12-03T12:00:00+01:00",
        "--next",
        "2",
        "-o",
        "json",
    ]);
    let t = v["transitions"].as_array().unwrap();
    assert_eq!(
        t[0],
        serde_json::json!({"at": "2026-12-04T03:00:00+01:00", "to": "hibernated"}),
        "{v}"
    );
    assert_eq!(
        t[1],
        serde_json::json!({"at": "2026-12-04T06:00:00+01:00", "to": "awake"}),
        "{v}"
    );
}

#[test]
fn schedule_table_shows_local_times_and_durations() {
    let (_, out) = run_capture([
        "hibernator",
        "schedule",
        &demo_path(),
        "--at",
        "2026-11-23T12:00:00+01:00",
    ])
    .unwrap();
    assert!(out.contains("Mon 2026-11-23 20:00 CET"), "{out}");
    assert!(out.contains("10h"), "{out}");
}

#[test]
fn plan_waves_mirror_for_wakeup() {
    let (_, v) = json(&["hibernator", "plan", &demo_path(), "-o", "json"]);
    assert_eq!(v["operation"], "shutdown");
    assert_eq!(v["strategy"], "DAG");
    assert_eq!(
        v["waves"],
        serde_json::json!([
            ["app-nodes", "batch-workers"],
            ["orders-db", "analytics-db"]
        ])
    );
    let (_, v) = json(&[
        "hibernator",
        "plan",
        &demo_path(),
        "--operation",
        "wakeup",
        "-o",
        "json",
    ]);
    assert_eq!(
        v["waves"],
        serde_json::json!([
            ["analytics-db", "orders-db"],
            ["batch-workers", "app-nodes"]
        ])
    );
    let (_, dot) = run_capture(["hibernator", "plan", &demo_path(), "-o", "dot"]).unwrap();
    assert!(dot.starts_with("digraph"), "{dot}");
    assert!(dot.contains("app-nodes"), "{dot}");
}

#[test]
fn crd_prints_every_crd() {
    let (_, out) = run_capture(["hibernator", "crd"]).unwrap();
    assert_eq!(out, hibernator_core::crd::all_yaml().unwrap());
    for name in [
        "hibernateplans",
        "scheduleexceptions",
        "cloudproviders",
        "k8sclusters",
    ] {
        assert!(
            out.contains(&format!("name: {name}.hibernator.dev")),
            "{name}"
        );
    }
}

#[test]
fn unreadable_files_are_errors_not_panics() {
    let err = run_capture(["hibernator", "schedule", "/nonexistent/plan.yaml"]).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/plan.yaml"), "{err}");
}

fn ready_by_path() -> String {
    concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/plans/ready-by.yaml"
    )
    .to_string()
}

#[test]
fn the_ready_by_example_is_valid_and_its_preview_shows_the_moved_wake_up() {
    let (code, v) = json(&["hibernator", "validate", &ready_by_path(), "-o", "json"]);
    assert_eq!(code, ExitCode::SUCCESS, "{v}");
    assert_eq!(v["warnings"], serde_json::json!([]), "{v}");
    // Monday 21:00 Berlin: off. No status in the file, so executor
    // defaults: orders-db (rds, 15m) wakes up before app-servers (ec2, 5m)
    // on the reversed DAG: a 20-minute lead, 06:40 for the 07:00 window end.
    let (code, v) = json(&[
        "hibernator",
        "schedule",
        &ready_by_path(),
        "--at",
        "2026-11-23T21:00:00+01:00",
        "--next",
        "2",
        "-o",
        "json",
    ]);
    assert_eq!(code, ExitCode::SUCCESS);
    assert_eq!(v["state"], "hibernated", "{v}");
    assert_eq!(
        v["transitions"][0]["at"], "2026-11-24T06:40:00+01:00",
        "{v}"
    );
    assert_eq!(v["transitions"][0]["to"], "awake");
    assert_eq!(
        v["transitions"][0]["windowEnd"],
        "2026-11-24T07:00:00+01:00"
    );
    assert_eq!(v["transitions"][1]["at"], "2026-11-24T20:00:00+01:00");
    assert!(v["transitions"][1].get("windowEnd").is_none(), "{v}");
    assert_eq!(v["readyBy"]["leadSeconds"], 1200);
    assert_eq!(v["readyBy"]["source"], "defaults");
    let (_, text) = run_capture([
        "hibernator",
        "schedule",
        &ready_by_path(),
        "--at",
        "2026-11-23T21:00:00+01:00",
    ])
    .unwrap();
    assert!(
        text.contains("ready-by: wake-ups start 20m before the window end"),
        "{text}"
    );
    assert!(text.contains("awake (ready by Tue 07:00)"), "{text}");
}

fn holidays_path() -> String {
    concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/plans/holidays.yaml"
    )
    .to_string()
}

#[test]
fn the_holidays_example_previews_its_calendar_days() {
    let (code, v) = json(&["hibernator", "validate", &holidays_path(), "-o", "json"]);
    assert_eq!(code, ExitCode::SUCCESS, "{v}");
    assert_eq!(v["warnings"], serde_json::json!([]), "{v}");
    // Friday 18 December 2026, noon: awake. Off from 20:00 through the weekend and
    // the shutdown (from Monday 21), awake all Tuesday 22 (release day), off again
    // from Wednesday 00:00 until the shutdown ends: Saturday 2 January is a
    // weekend day, so the targets wake on Monday 4 January at 06:00.
    let (code, v) = json(&[
        "hibernator",
        "schedule",
        &holidays_path(),
        "--at",
        "2026-12-18T12:00:00+01:00",
        "--next",
        "3",
        "-o",
        "json",
    ]);
    assert_eq!(code, ExitCode::SUCCESS, "{v}");
    let at: Vec<&str> = v["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["at"].as_str().unwrap())
        .collect();
    assert_eq!(
        at,
        [
            "2026-12-18T20:00:00+01:00",
            "2026-12-22T00:00:00+01:00",
            "2026-12-23T00:00:00+01:00"
        ],
        "{v}"
    );
    let days = v["calendarDays"].as_array().unwrap();
    let christmas = days
        .iter()
        .find(|d| d["date"] == "2026-12-25" && d["calendar"] == "platform/bavaria")
        .unwrap_or_else(|| panic!("{v}"));
    assert_eq!(christmas["name"], "Christmas Day");
    assert!(
        days.iter()
            .any(|d| d["date"] == "2026-12-22" && d["effect"] == "awake"),
        "{v}"
    );
    assert_eq!(v["warnings"], serde_json::json!([]), "{v}");

    // The table names the days.
    let (_, text) = run_capture([
        "hibernator",
        "schedule",
        &holidays_path(),
        "--at",
        "2026-12-18T12:00:00+01:00",
    ])
    .unwrap();
    assert!(
        text.contains("calendar: Fri 2026-12-25 off all day: Christmas Day (platform/bavaria)"),
        "{text}"
    );
}

#[test]
fn a_calendar_missing_from_the_file_is_a_warning_and_coverage_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plan.yaml");
    let text = std::fs::read_to_string(holidays_path()).unwrap();
    // Drop the release-days calendar: the plan refers to a calendar the file lacks.
    let kept: Vec<&str> = text
        .split("\n---\n")
        .filter(|doc| !doc.contains("name: release-days\n  namespace"))
        .collect();
    std::fs::write(&path, kept.join("\n---\n")).unwrap();
    let file = path.to_str().unwrap();
    let (code, v) = json(&["hibernator", "validate", file, "-o", "json"]);
    assert_eq!(code, ExitCode::SUCCESS, "{v}");
    assert!(
        v["warnings"]
            .to_string()
            .contains("spec.schedule.calendars[2]"),
        "{v}"
    );
    // 2041 lies past the built-in data (2020–2040): the preview warns.
    let (_, v) = json(&[
        "hibernator",
        "schedule",
        file,
        "--at",
        "2040-12-28T12:00:00+01:00",
        "-o",
        "json",
    ]);
    let warnings = v["warnings"].to_string();
    assert!(warnings.contains("release-days"), "{v}");
    assert!(warnings.contains("platform/bavaria covers"), "{v}");
}

#[test]
fn validate_checks_the_files_notifications_and_never_prints_its_secrets() {
    let example = std::fs::read_to_string(holidays_path()).unwrap();
    assert!(example.contains("kind: HibernateNotification"));
    let secret_url =
        "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX";
    assert!(example.contains(secret_url));
    // A broken sink and a notification that routes another plan.
    let text = example
        .replace("planNames: [dev-holidays]", "planNames: [prod]")
        .replace("name: slack\n", "name: Not_A_Label\n");
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    let path = file.path().to_str().unwrap().to_string();
    let (code, v) = json(&["hibernator", "validate", &path, "-o", "json"]);
    assert_eq!(code, ExitCode::FAILURE, "{v}");
    assert!(
        v["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["field"] == "HibernateNotification/dev-alerts: spec.sinks[0].name"),
        "{v}"
    );
    assert!(
        v["warnings"].as_array().unwrap().iter().any(|w| w["field"]
            == "HibernateNotification/dev-alerts: spec.selector"
            && w["message"].as_str().unwrap().contains("\"dev-holidays\"")),
        "{v}"
    );
    for args in [
        vec!["hibernator", "validate", path.as_str()],
        vec!["hibernator", "validate", path.as_str(), "-o", "json"],
        vec!["hibernator", "schedule", path.as_str(), "--next", "2"],
    ] {
        let (_, out) = run_capture(args.iter().copied()).unwrap();
        assert!(!out.contains("hooks.slack.com"), "{out}");
    }
}
