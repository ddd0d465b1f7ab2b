//! `status.executions[].logsRef`: where an execution's logs are. The ledger
//! points it at the runner Job (`job/<name>`, read with `kubectl logs`);
//! with execution-log persistence on, [`fill`] replaces that with the object
//! the streaming server writes (`s3://<bucket>/<key>` or the file path),
//! computed with the same function the persistence sink uses
//! ([`PersistenceConfig::logs_ref`]), dated by the day the runner Job
//! started.

use hibernator_core::types::HibernatePlanStatus;
use hibernator_streaming::sink::PersistenceConfig;

use hibernator_reconcile::JobObservation;

/// Points the `logsRef` of every execution with a runner Job at its
/// persisted log. The date is the Job's `startTime`, else the target's
/// `startedAt` (a Job created in this reconcile); entries with neither keep
/// the ledger's reference.
pub fn fill(
    status: &mut HibernatePlanStatus,
    plan: &str,
    jobs: &[JobObservation],
    persistence: &PersistenceConfig,
) {
    for entry in &mut status.executions {
        let Some(id) = entry.execution_id.as_deref() else {
            continue;
        };
        let started = jobs
            .iter()
            .find(|j| j.name == id)
            .and_then(|j| j.started_at)
            .or(entry.started_at);
        if let Some(reference) =
            started.and_then(|at| persistence.logs_ref(plan, &entry.target, id, at))
        {
            entry.logs_ref = Some(reference);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use hibernator_core::types::ExecutionStatus;
    use hibernator_streaming::sink::{BackendKind, FilesystemConfig, S3Config};

    fn s3() -> PersistenceConfig {
        PersistenceConfig {
            enabled: true,
            backend: BackendKind::S3,
            s3: Some(S3Config {
                bucket: "hibernator-execution-logs".into(),
                prefix: "hibernation/".into(),
                ..S3Config::default()
            }),
            ..PersistenceConfig::default()
        }
    }

    fn status(started: chrono::DateTime<chrono::Utc>) -> HibernatePlanStatus {
        HibernatePlanStatus {
            executions: vec![
                ExecutionStatus {
                    target: "ec2".into(),
                    execution_id: Some("prod-ec2-s-c1-a1".into()),
                    logs_ref: Some("job/prod-ec2-s-c1-a1".into()),
                    started_at: Some(started),
                    ..ExecutionStatus::default()
                },
                ExecutionStatus {
                    target: "pending".into(),
                    ..ExecutionStatus::default()
                },
            ],
            ..HibernatePlanStatus::default()
        }
    }

    #[test]
    fn persisted_logs_are_referenced_by_their_object() {
        let started = chrono::Utc.with_ymd_and_hms(2026, 2, 1, 20, 5, 0).unwrap();
        let mut st = status(started);
        fill(&mut st, "prod", &[], &s3());
        assert_eq!(
            st.executions[0].logs_ref.as_deref(),
            Some(
                "s3://hibernator-execution-logs/hibernation/2026-02-01/prod-ec2-prod-ec2-s-c1-a1.log"
            )
        );
        assert_eq!(st.executions[1].logs_ref, None);

        let fs = PersistenceConfig {
            enabled: true,
            backend: BackendKind::Filesystem,
            filesystem: Some(FilesystemConfig {
                path: "/var/lib/hibernator/logs/".into(),
                ..FilesystemConfig::default()
            }),
            ..PersistenceConfig::default()
        };
        let mut st = status(started);
        fill(&mut st, "prod", &[], &fs);
        assert_eq!(
            st.executions[0].logs_ref.as_deref(),
            Some("/var/lib/hibernator/logs/2026-02-01/prod-ec2-prod-ec2-s-c1-a1.log")
        );

        // Off: the ledger's Job reference stays.
        let mut st = status(started);
        fill(&mut st, "prod", &[], &PersistenceConfig::default());
        assert_eq!(
            st.executions[0].logs_ref.as_deref(),
            Some("job/prod-ec2-s-c1-a1")
        );
    }

    #[test]
    fn the_jobs_start_dates_the_object() {
        let first_attempt = chrono::Utc.with_ymd_and_hms(2026, 2, 1, 23, 59, 0).unwrap();
        let job_started = chrono::Utc.with_ymd_and_hms(2026, 2, 2, 0, 1, 0).unwrap();
        let job = JobObservation {
            name: "prod-ec2-s-c1-a1".into(),
            target: "ec2".into(),
            operation: hibernator_core::types::Operation::Shutdown,
            cycle_id: "c1".into(),
            attempt: 1,
            phase: hibernator_reconcile::JobPhase::Running,
            message: None,
            retryable: true,
            started_at: Some(job_started),
            finished_at: None,
        };
        let mut st = status(first_attempt);
        fill(&mut st, "prod", &[job], &s3());
        assert!(
            st.executions[0]
                .logs_ref
                .as_deref()
                .is_some_and(|r| r.contains("/2026-02-02/")),
            "{:?}",
            st.executions[0].logs_ref
        );
    }
}
