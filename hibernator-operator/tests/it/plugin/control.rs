//! `suspend`, `resume`, `override`, `retry`: annotations round-trip and
//! nothing else on the plan changes.

use chrono::{DateTime, Utc};
use hibernator_core::types::HibernatePlan;
use hibernator_core::wellknown::{
    ANNOTATION_OVERRIDE as OVERRIDE, ANNOTATION_OVERRIDE_UNTIL as OVERRIDE_UNTIL,
    ANNOTATION_RETRY_NOW as RETRY_NOW, ANNOTATION_SUSPEND_REASON as SUSPEND_REASON,
    ANNOTATION_SUSPEND_UNTIL as SUSPEND_UNTIL,
};
use hibernator_operator::plugin::PluginError;
use kube::ResourceExt;

use super::Env;

fn ann(plan: &HibernatePlan, key: &str) -> Option<String> {
    plan.annotations().get(key).cloned()
}

/// The plan with the fields the plugin may touch removed, for comparing
/// "nothing else changed".
fn untouched_part(plan: &HibernatePlan) -> serde_json::Value {
    let mut spec = plan.spec.clone();
    spec.suspend = false;
    let mut annotations = plan.annotations().clone();
    for key in [
        SUSPEND_UNTIL,
        SUSPEND_REASON,
        OVERRIDE,
        OVERRIDE_UNTIL,
        RETRY_NOW,
    ] {
        annotations.remove(key);
    }
    serde_json::json!({"spec": spec, "annotations": annotations, "labels": plan.labels()})
}

#[tokio::test]
async fn suspend_with_until_and_reason_then_without_then_resume() {
    let env = Env::start("plugin-suspend").await;
    let before = env.create_plan("p").await;

    let out = env
        .run(&[
            "suspend",
            "p",
            "--until",
            "2h",
            "--reason",
            "release freeze",
        ])
        .await;
    assert!(out.contains("suspended until"), "{out}");
    let plan = env.plan("p").await;
    let until: DateTime<Utc> = ann(&plan, SUSPEND_UNTIL).unwrap().parse().unwrap();
    let ahead = until - Utc::now();
    assert!(
        ahead > chrono::Duration::minutes(100) && ahead <= chrono::Duration::hours(2),
        "{ahead}"
    );
    assert_eq!(
        ann(&plan, SUSPEND_REASON).as_deref(),
        Some("release freeze")
    );
    assert!(!plan.spec.suspend, "--until must not set spec.suspend");
    assert_eq!(untouched_part(&plan), untouched_part(&before));

    env.run(&["suspend", "p", "--until", "2030-01-01T10:00:00+01:00"])
        .await;
    let plan = env.plan("p").await;
    assert_eq!(
        ann(&plan, SUSPEND_UNTIL).as_deref(),
        Some("2030-01-01T09:00:00Z")
    );
    assert_eq!(
        ann(&plan, SUSPEND_REASON),
        None,
        "a new suspend replaces the reason"
    );

    env.run(&["suspend", "p", "--reason", "incident"]).await;
    let plan = env.plan("p").await;
    assert!(plan.spec.suspend);
    assert_eq!(ann(&plan, SUSPEND_UNTIL), None);
    assert_eq!(ann(&plan, SUSPEND_REASON).as_deref(), Some("incident"));

    let described = env.json(&["describe", "p", "-o", "json"]).await;
    assert_eq!(described["suspend"]["spec"], true);
    assert_eq!(described["suspend"]["reason"], "incident");

    env.run(&["resume", "p"]).await;
    let plan = env.plan("p").await;
    assert!(!plan.spec.suspend);
    assert_eq!(ann(&plan, SUSPEND_UNTIL), None);
    assert_eq!(ann(&plan, SUSPEND_REASON), None);
    assert_eq!(untouched_part(&plan), untouched_part(&before));
    assert_eq!(
        ann(&plan, "team.example/owner").as_deref(),
        Some("platform")
    );
    env.tc.cleanup().await.unwrap();
}

#[tokio::test]
async fn override_with_and_without_until_and_retry() {
    let env = Env::start("plugin-override").await;
    let before = env.create_plan("p").await;

    env.run(&[
        "override",
        "p",
        "--to",
        "wakeup",
        "--until",
        "2030-06-01T08:00:00Z",
    ])
    .await;
    let plan = env.plan("p").await;
    assert_eq!(ann(&plan, OVERRIDE).as_deref(), Some("wakeup"));
    assert_eq!(
        ann(&plan, OVERRIDE_UNTIL).as_deref(),
        Some("2030-06-01T08:00:00Z")
    );

    env.run(&["override", "p", "--to", "hibernate"]).await;
    let plan = env.plan("p").await;
    assert_eq!(ann(&plan, OVERRIDE).as_deref(), Some("hibernate"));
    assert_eq!(
        ann(&plan, OVERRIDE_UNTIL),
        None,
        "the old expiry must not linger"
    );

    let described = env.json(&["describe", "p", "-o", "json"]).await;
    assert_eq!(described["override"]["to"], "hibernate");

    env.run(&["retry", "p"]).await;
    let plan = env.plan("p").await;
    let at: DateTime<Utc> = ann(&plan, RETRY_NOW).unwrap().parse().unwrap();
    assert!((Utc::now() - at).num_seconds().abs() < 300, "{at}");
    assert_eq!(untouched_part(&plan), untouched_part(&before));
    env.tc.cleanup().await.unwrap();
}

#[tokio::test]
async fn bad_until_and_missing_plan_are_clear_errors_and_change_nothing() {
    let env = Env::start("plugin-errors").await;
    env.create_plan("p").await;

    let err = env
        .try_run(&["suspend", "p", "--until", "yesterday"])
        .await
        .unwrap_err();
    assert!(matches!(err, PluginError::InvalidUntil { .. }), "{err}");
    let err = env
        .try_run(&[
            "override",
            "p",
            "--to",
            "wakeup",
            "--until",
            "2001-01-01T00:00:00Z",
        ])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not in the future"), "{err}");
    let plan = env.plan("p").await;
    assert_eq!(ann(&plan, SUSPEND_UNTIL), None);
    assert_eq!(ann(&plan, OVERRIDE), None);

    for args in [
        vec!["suspend", "nope"],
        vec!["resume", "nope"],
        vec!["retry", "nope"],
        vec!["describe", "nope"],
        vec!["preview", "nope"],
        vec!["logs", "nope"],
        vec!["restore", "inspect", "nope"],
    ] {
        let err = env.try_run(&args).await.unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(err, PluginError::NotFound { .. })
                && text.contains("\"nope\"")
                && text.contains(env.ns()),
            "{args:?}: {text}"
        );
    }
    env.tc.cleanup().await.unwrap();
}

#[tokio::test]
async fn unreachable_cluster_gives_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    // Port 1 on loopback: nothing listens there.
    std::fs::write(
        &path,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:1\nusers:\n- name: u\n  user: {}\ncontexts:\n- name: c\n  context: {cluster: c, user: u}\ncurrent-context: c\n",
    )
    .unwrap();
    let path = path.display().to_string();
    let err = hibernator_operator::plugin::run_capture([
        "kubectl-hibernator",
        "list",
        "--kubeconfig",
        &path,
    ])
    .await
    .unwrap_err();
    assert!(matches!(err, PluginError::Unreachable { .. }), "{err}");
    assert!(err.to_string().contains("hint"), "{err}");

    let err = hibernator_operator::plugin::run_capture([
        "kubectl-hibernator",
        "list",
        "--kubeconfig",
        &path,
        "--context",
        "missing",
    ])
    .await
    .unwrap_err();
    assert!(matches!(err, PluginError::Config { .. }), "{err}");
    assert!(err.to_string().contains("\"missing\""), "{err}");
}
