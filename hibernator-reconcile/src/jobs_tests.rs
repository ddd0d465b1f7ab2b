//! Tests of Job names and Job observation.

use std::collections::BTreeMap;

use hibernator_core::wellknown::{ANNOTATION_PLAN, LABEL_EXECUTION_ID, LABEL_PLAN, plan_label};
use k8s_openapi::api::batch::v1::{JobCondition, JobStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::*;

/// A runner Job as the Job builder labels it (attempt `attempt` of the
/// shutdown of `target` in plan `dev`).
fn runner_job(target: &str, attempt: u32) -> Job {
    let name = job_name(
        "dev",
        target,
        Operation::Shutdown,
        "c20261123t210000z",
        attempt,
    );
    let labels = BTreeMap::from([
        (LABEL_PLAN.to_string(), plan_label("dev")),
        (LABEL_TARGET.to_string(), target.to_string()),
        (LABEL_OPERATION.to_string(), "shutdown".to_string()),
        (LABEL_CYCLE_ID.to_string(), "c20261123t210000z".to_string()),
        (LABEL_EXECUTION_ID.to_string(), name.clone()),
        (LABEL_ATTEMPT.to_string(), attempt.to_string()),
    ]);
    let annotations = BTreeMap::from([
        (ANNOTATION_PLAN.to_string(), "dev".to_string()),
        (ANNOTATION_TARGET.to_string(), target.to_string()),
    ]);
    Job {
        metadata: ObjectMeta {
            name: Some(name),
            labels: Some(labels),
            annotations: Some(annotations),
            ..ObjectMeta::default()
        },
        ..Job::default()
    }
}

#[test]
fn names_are_deterministic_valid_and_distinct() {
    let a = job_name("dev", "db", Operation::Shutdown, "c1", 1);
    assert_eq!(a, "dev-db-sd-c1-a1");
    assert_eq!(a, job_name("dev", "db", Operation::Shutdown, "c1", 1));
    assert_ne!(a, job_name("dev", "db", Operation::Wakeup, "c1", 1));
    assert_ne!(a, job_name("dev", "db", Operation::Shutdown, "c1", 2));
    let long_plan = "p".repeat(53);
    let long_target = "t".repeat(63);
    let x = job_name(
        &long_plan,
        &long_target,
        Operation::Shutdown,
        "c20261123t210000z",
        1,
    );
    let y = job_name(
        &long_plan,
        &long_target,
        Operation::Shutdown,
        "c20261123t210000z",
        2,
    );
    for name in [&x, &y] {
        assert!(name.len() <= 63, "{name}");
        assert!(
            hibernator_core::validation::check_dns_label(name, 63).is_ok(),
            "{name}"
        );
    }
    assert_ne!(x, y, "the hash keeps cut names distinct");
    assert_eq!(dns_label("Dev_Plan", 63).len(), "dev-plan".len() + 9);
    assert_eq!(plan_label("dev"), "dev");
}

fn with_status(mut job: Job, status: JobStatus) -> Job {
    job.status = Some(status);
    job
}

#[test]
fn observes_running_succeeded_and_failed_jobs() {
    let job = runner_job("db", 2);
    let running = observe_job(&job, None).unwrap();
    assert_eq!(
        (running.phase, running.attempt, running.target.as_str()),
        (JobPhase::Running, 2, "db")
    );
    let done = observe_job(
        &with_status(
            job.clone(),
            JobStatus {
                succeeded: Some(1),
                ..JobStatus::default()
            },
        ),
        Some(r#"{"success":true,"message":"2 instances stopped","resources":2,"attempts":1}"#),
    )
    .unwrap();
    assert_eq!(done.phase, JobPhase::Succeeded);
    assert_eq!(done.message.as_deref(), Some("2 instances stopped"));
    let failed = with_status(
        job.clone(),
        JobStatus {
            failed: Some(1),
            conditions: Some(vec![JobCondition {
                type_: "Failed".into(),
                status: "True".into(),
                reason: Some("DeadlineExceeded".into()),
                message: Some("Job was active longer than specified deadline".into()),
                ..JobCondition::default()
            }]),
            ..JobStatus::default()
        },
    );
    let deadline = observe_job(&failed, None).unwrap();
    assert_eq!(deadline.phase, JobPhase::Failed);
    assert!(deadline.retryable);
    assert!(deadline.message.unwrap().contains("DeadlineExceeded"));
    let permanent = observe_job(
        &failed,
        Some(
            &crate::termination::TerminationMessage {
                success: false,
                message: "AccessDenied".into(),
                resources: 0,
                attempts: 1,
                rehibernated: None,
            }
            .to_json(),
        ),
    )
    .unwrap();
    assert!(!permanent.retryable);
    assert_eq!(permanent.message.as_deref(), Some("AccessDenied"));
    let logs = observe_job(&failed, Some("panic: something\nat line 3")).unwrap();
    assert!(
        logs.retryable,
        "a crash without a runner result may be retried"
    );
    assert!(logs.message.unwrap().contains("panic"));
}
