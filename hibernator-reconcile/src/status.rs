//! Status bookkeeping: phase conditions, the targets summary and cycle history.

use chrono::{DateTime, Utc};
use hibernator_core::types::{
    CycleRecord, ExecutionState, ExecutionStatus, HibernatePlanStatus, Operation, PlanPhase,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

use crate::time::to_k8s;

/// Condition type: the plan is settled in the state it should be in.
pub const READY: &str = "Ready";
/// Condition type: the targets are hibernated.
pub const HIBERNATED: &str = "Hibernated";
/// Condition type: a cycle is running.
pub const PROGRESSING: &str = "Progressing";
/// Condition type: something failed (targets, spec, controls).
pub const DEGRADED: &str = "Degraded";

/// The name a phase has in the CRD.
pub fn phase_name(phase: PlanPhase) -> &'static str {
    match phase {
        PlanPhase::Pending => "Pending",
        PlanPhase::Active => "Active",
        PlanPhase::Hibernating => "Hibernating",
        PlanPhase::Hibernated => "Hibernated",
        PlanPhase::WakingUp => "WakingUp",
        PlanPhase::Suspended => "Suspended",
        PlanPhase::Error => "Error",
    }
}

/// Every phase, for the plans-by-phase gauge.
pub const ALL_PHASES: [PlanPhase; 7] = [
    PlanPhase::Pending,
    PlanPhase::Active,
    PlanPhase::Hibernating,
    PlanPhase::Hibernated,
    PlanPhase::WakingUp,
    PlanPhase::Suspended,
    PlanPhase::Error,
];

/// Sets condition `kind`, keeping `lastTransitionTime` when its status did
/// not change (so an unchanged plan yields an unchanged status).
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    kind: &str,
    status: bool,
    reason: &str,
    message: impl Into<String>,
    generation: Option<i64>,
    now: DateTime<Utc>,
) {
    let status_str = if status { "True" } else { "False" };
    let message = message.into();
    if let Some(existing) = conditions.iter_mut().find(|c| c.type_ == kind) {
        if existing.status != status_str {
            existing.last_transition_time = to_k8s(now);
        }
        existing.status = status_str.to_string();
        existing.reason = reason.to_string();
        existing.message = message;
        existing.observed_generation = generation;
        return;
    }
    conditions.push(Condition {
        type_: kind.to_string(),
        status: status_str.to_string(),
        reason: reason.to_string(),
        message,
        observed_generation: generation,
        last_transition_time: to_k8s(now),
    });
}

/// Sets the four conditions from the phase and the ledger.
/// `invalid` carries the validation message of an invalid spec.
pub fn update_conditions(
    status: &mut HibernatePlanStatus,
    invalid: Option<&str>,
    generation: Option<i64>,
    now: DateTime<Utc>,
) {
    let phase = status.phase;
    let failed = status
        .executions
        .iter()
        .filter(|e| e.state == ExecutionState::Failed)
        .count();
    let conditions = &mut status.conditions;
    let (ready, ready_reason, ready_message) = match (invalid, phase) {
        (Some(message), _) => (false, "InvalidSpec", message.to_string()),
        (None, PlanPhase::Active) => (true, "Awake", "targets are awake".to_string()),
        (None, PlanPhase::Hibernated) => (true, "Hibernated", "targets are hibernated".to_string()),
        (None, PlanPhase::Error) => (false, "CycleFailed", format!("{failed} target(s) failed")),
        (None, other) => (
            false,
            phase_name(other),
            format!("plan is {}", phase_name(other)),
        ),
    };
    set_condition(
        conditions,
        READY,
        ready,
        ready_reason,
        ready_message,
        generation,
        now,
    );
    let hibernated = phase == PlanPhase::Hibernated;
    set_condition(
        conditions,
        HIBERNATED,
        hibernated,
        if hibernated {
            "Hibernated"
        } else {
            phase_name(phase)
        },
        if hibernated {
            "every target is hibernated"
        } else {
            "targets are not (all) hibernated"
        },
        generation,
        now,
    );
    let (progressing, reason) = match phase {
        PlanPhase::Hibernating => (true, "Hibernating"),
        PlanPhase::WakingUp => (true, "WakingUp"),
        _ => (false, "Idle"),
    };
    let summary = status.targets_summary.clone().unwrap_or_default();
    set_condition(
        conditions,
        PROGRESSING,
        progressing,
        reason,
        summary,
        generation,
        now,
    );
    let (degraded, reason, message) = match invalid {
        Some(message) => (true, "InvalidSpec", message.to_string()),
        None if failed > 0 => {
            let first = status
                .executions
                .iter()
                .find(|e| e.state == ExecutionState::Failed)
                .map(|e| format!("{}: {}", e.target, e.message.as_deref().unwrap_or("failed")))
                .unwrap_or_default();
            (
                true,
                "TargetsFailed",
                format!("{failed} target(s) failed; first: {first}"),
            )
        }
        None => (false, "AsExpected", String::new()),
    };
    set_condition(
        conditions, DEGRADED, degraded, reason, message, generation, now,
    );
}

/// `3/5 hibernated`, `5/5 awake`, `2/4 hibernated, 1 failed`.
pub fn targets_summary(
    operation: Option<Operation>,
    executions: &[ExecutionStatus],
) -> Option<String> {
    let operation = operation?;
    let done = executions
        .iter()
        .filter(|e| e.state == ExecutionState::Completed)
        .count();
    let failed = executions
        .iter()
        .filter(|e| matches!(e.state, ExecutionState::Failed | ExecutionState::Aborted))
        .count();
    let word = match operation {
        Operation::Shutdown => "hibernated",
        Operation::Wakeup => "awake",
    };
    let mut out = format!("{done}/{} {word}", executions.len());
    if failed > 0 {
        out.push_str(&format!(", {failed} failed"));
    }
    Some(out)
}

/// The history record of the cycle in `status` (called when it closes).
pub fn cycle_record(status: &HibernatePlanStatus, now: DateTime<Utc>) -> Option<CycleRecord> {
    let cycle_id = status.current_cycle_id.clone()?;
    let operation = status.current_operation?;
    let count = |state| {
        status
            .executions
            .iter()
            .filter(|e| e.state == state)
            .count()
    };
    let to_u32 = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    let completed = count(ExecutionState::Completed);
    let failed = count(ExecutionState::Failed);
    let aborted = count(ExecutionState::Aborted);
    let message = status
        .executions
        .iter()
        .find(|e| e.state == ExecutionState::Failed)
        .map(|e| format!("{}: {}", e.target, e.message.as_deref().unwrap_or("failed")));
    Some(CycleRecord {
        cycle_id,
        operation,
        started_at: status.cycle_started_at,
        finished_at: Some(now),
        success: completed == status.executions.len(),
        completed: to_u32(completed),
        failed: to_u32(failed),
        aborted: to_u32(aborted),
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn condition_transition_time_changes_only_with_status() {
        let mut conditions = Vec::new();
        set_condition(
            &mut conditions,
            READY,
            true,
            "Awake",
            "m",
            Some(1),
            at("2026-11-22T10:00:00Z"),
        );
        set_condition(
            &mut conditions,
            READY,
            true,
            "Awake",
            "m2",
            Some(2),
            at("2026-11-22T11:00:00Z"),
        );
        assert_eq!(conditions.len(), 1);
        assert_eq!(
            crate::time::from_k8s(&conditions[0].last_transition_time),
            at("2026-11-22T10:00:00Z")
        );
        assert_eq!(conditions[0].message, "m2");
        set_condition(
            &mut conditions,
            READY,
            false,
            "Error",
            "x",
            Some(2),
            at("2026-11-22T12:00:00Z"),
        );
        assert_eq!(
            crate::time::from_k8s(&conditions[0].last_transition_time),
            at("2026-11-22T12:00:00Z")
        );
    }

    #[test]
    fn summary_counts_failures() {
        let exec = |state| ExecutionStatus {
            target: "t".into(),
            executor: "ec2".into(),
            state,
            ..ExecutionStatus::default()
        };
        let list = vec![
            exec(ExecutionState::Completed),
            exec(ExecutionState::Failed),
            exec(ExecutionState::Running),
        ];
        assert_eq!(
            targets_summary(Some(Operation::Shutdown), &list).as_deref(),
            Some("1/3 hibernated, 1 failed")
        );
        assert_eq!(targets_summary(None, &list), None);
    }

    #[test]
    fn degraded_names_the_first_failure() {
        let mut status = HibernatePlanStatus {
            phase: PlanPhase::Error,
            executions: vec![ExecutionStatus {
                target: "db".into(),
                state: ExecutionState::Failed,
                message: Some("AccessDenied".into()),
                ..ExecutionStatus::default()
            }],
            ..HibernatePlanStatus::default()
        };
        update_conditions(&mut status, None, Some(3), at("2026-11-22T10:00:00Z"));
        let degraded = status
            .conditions
            .iter()
            .find(|c| c.type_ == DEGRADED)
            .unwrap();
        assert_eq!(degraded.status, "True");
        assert!(
            degraded.message.contains("db: AccessDenied"),
            "{}",
            degraded.message
        );
        let ready = status.conditions.iter().find(|c| c.type_ == READY).unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "CycleFailed")
        );
    }
}
