//! Runner Jobs as the controller sees them: deterministic names, and what a
//! Job (and its pod's termination message) says about an attempt. Building
//! the Job object is `hibernator-kube`'s part.

use hibernator_core::duration::parse_duration;
use hibernator_core::types::{DEFAULT_TARGET_TIMEOUT, Operation, Target};
use hibernator_core::wellknown::{
    ANNOTATION_TARGET, LABEL_ATTEMPT, LABEL_CYCLE_ID, LABEL_OPERATION, LABEL_TARGET, MAX_LABEL_LEN,
    dns_label,
};
use k8s_openapi::api::batch::v1::Job;

use crate::model::{JobObservation, JobPhase, JobRequest};
use crate::termination::TerminationMessage;

/// Short operation code used in Job names.
fn op_code(operation: Operation) -> &'static str {
    match operation {
        Operation::Shutdown => "sd",
        Operation::Wakeup => "wu",
    }
}

/// The Job name (and execution id) of one attempt: deterministic from
/// (plan, target, operation, cycle id, attempt), a DNS label of at most 63
/// characters (hash suffix when cut).
pub fn job_name(
    plan: &str,
    target: &str,
    operation: Operation,
    cycle_id: &str,
    attempt: u32,
) -> String {
    let full = format!(
        "{plan}-{target}-{}-{cycle_id}-a{attempt}",
        op_code(operation)
    );
    dns_label(&full, MAX_LABEL_LEN)
}

impl JobRequest {
    /// The Job name (= execution id) of this request for `plan`.
    pub fn name(&self, plan: &str) -> String {
        job_name(
            plan,
            &self.target,
            self.operation,
            &self.cycle_id,
            self.attempt,
        )
    }
}

/// The target's operation timeout (`target.timeout`, default 1h) in seconds.
/// An unparsable timeout (rejected by validation) falls back to the default.
pub fn timeout_seconds(target: &Target) -> i64 {
    let timeout = target
        .timeout
        .as_deref()
        .and_then(|t| parse_duration(t).ok())
        .unwrap_or(DEFAULT_TARGET_TIMEOUT);
    i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX).max(1)
}

/// The result a runner wrote to its termination message, as far as the
/// controller needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunnerResult {
    /// The runner reported success.
    pub success: bool,
    /// Its summary message.
    pub message: Option<String>,
    /// False when the runner classified the failure as permanent.
    pub retryable: bool,
}

/// Reads a runner's termination message ([`TerminationMessage`] JSON) or,
/// with `FallbackToLogsOnError`, the tail of its log.
///
/// The runner already retried transient errors in-process with the plan's
/// policy, so a failure it *reported* is final (`retryable: false`); a Job
/// that failed without a result (crash, eviction, deadline) is retryable.
pub fn parse_termination_message(text: &str) -> Option<RunnerResult> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return None;
    }
    match TerminationMessage::parse(trimmed) {
        Some(message) => Some(RunnerResult {
            success: message.success,
            message: Some(message.message).filter(|m| !m.is_empty()),
            retryable: false,
        }),
        None => Some(RunnerResult {
            success: false,
            message: Some(tail(trimmed, 512)),
            retryable: true,
        }),
    }
}

fn tail(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("…{}", &text[start..])
}

/// Reads a runner Job. `termination` is the runner container's termination
/// message when known. Returns `None` for Jobs without the runner labels.
pub fn observe_job(job: &Job, termination: Option<&str>) -> Option<JobObservation> {
    let labels = job.metadata.labels.as_ref()?;
    let annotations = job.metadata.annotations.as_ref();
    let target = annotations
        .and_then(|a| a.get(ANNOTATION_TARGET))
        .or_else(|| labels.get(LABEL_TARGET))?
        .clone();
    let operation = labels.get(LABEL_OPERATION)?.parse::<Operation>().ok()?;
    let cycle_id = labels.get(LABEL_CYCLE_ID)?.clone();
    let attempt = labels
        .get(LABEL_ATTEMPT)
        .and_then(|a| a.parse::<u32>().ok())
        .unwrap_or(1);
    let status = job.status.as_ref();
    let conditions = status.and_then(|s| s.conditions.as_deref()).unwrap_or(&[]);
    let condition = |kind: &str| {
        conditions
            .iter()
            .find(|c| c.type_ == kind && c.status == "True")
    };
    let failed_condition = condition("Failed");
    let succeeded =
        status.and_then(|s| s.succeeded).unwrap_or(0) > 0 || condition("Complete").is_some();
    let failed = !succeeded
        && (status.and_then(|s| s.failed).unwrap_or(0) > 0 || failed_condition.is_some());
    let result = termination.and_then(parse_termination_message);
    let (phase, message, retryable) = if succeeded {
        (JobPhase::Succeeded, result.and_then(|r| r.message), true)
    } else if failed {
        match result {
            Some(r) => (
                JobPhase::Failed,
                r.message.or_else(|| Some("runner failed".to_string())),
                r.retryable,
            ),
            None => {
                let reason = failed_condition
                    .map(|c| {
                        let reason = c.reason.as_deref().unwrap_or("Failed");
                        match c.message.as_deref() {
                            Some(m) if !m.is_empty() => format!("Job failed: {reason}: {m}"),
                            _ => format!("Job failed: {reason}"),
                        }
                    })
                    .unwrap_or_else(|| "Job failed without a termination message".to_string());
                (JobPhase::Failed, Some(reason), true)
            }
        }
    } else {
        (JobPhase::Running, None, true)
    };
    Some(JobObservation {
        name: job.metadata.name.clone().unwrap_or_default(),
        target,
        operation,
        cycle_id,
        attempt,
        phase,
        message,
        retryable,
        started_at: status
            .and_then(|s| s.start_time.as_ref())
            .map(crate::time::from_k8s),
        finished_at: status
            .and_then(|s| s.completion_time.as_ref())
            .map(crate::time::from_k8s)
            .or_else(|| {
                failed_condition
                    .and_then(|c| c.last_transition_time.as_ref())
                    .map(crate::time::from_k8s)
            }),
    })
}

#[cfg(test)]
#[path = "jobs_tests.rs"]
mod tests;
