//! User controls on a plan: `spec.suspend` and the `hibernator.dev/*`
//! annotations (suspend-until, override + override-until, retry-now).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use hibernator_core::schedule::ScheduleState;
use hibernator_core::types::HibernatePlan;
use hibernator_core::wellknown::{
    ANNOTATION_OVERRIDE as OVERRIDE, ANNOTATION_OVERRIDE_UNTIL as OVERRIDE_UNTIL,
    ANNOTATION_RETRY_NOW as RETRY_NOW, ANNOTATION_SUSPEND_UNTIL as SUSPEND_UNTIL,
};

/// A forced state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Override {
    /// The forced state.
    pub state: ScheduleState,
    /// When it expires (`None`: until the annotation is removed).
    pub until: Option<DateTime<Utc>>,
}

impl Override {
    /// The annotation value of the forced state.
    pub fn as_str(&self) -> &'static str {
        match self.state {
            ScheduleState::Hibernated => "hibernate",
            ScheduleState::Awake => "wakeup",
        }
    }
}

/// The controls of a plan at one instant.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Controls {
    /// `spec.suspend` is true.
    pub spec_suspend: bool,
    /// A `suspend-until` still in the future.
    pub suspend_until: Option<DateTime<Utc>>,
    /// The override in force (expired overrides are dropped).
    pub override_: Option<Override>,
    /// The `retry-now` annotation value, if set.
    pub retry_token: Option<String>,
    /// Malformed annotations, as `annotation: problem` (reported, then ignored).
    pub problems: Vec<String>,
}

impl Controls {
    /// Reads the controls of `plan` at `now`.
    pub fn read(plan: &HibernatePlan, now: DateTime<Utc>) -> Self {
        let empty = BTreeMap::new();
        let annotations = plan.metadata.annotations.as_ref().unwrap_or(&empty);
        let mut controls = Controls {
            spec_suspend: plan.spec.suspend,
            ..Controls::default()
        };
        let mut problems = Vec::new();
        let mut controls_problem_push =
            |key: &str, message: String| problems.push(format!("{key}: {message}"));
        let suspend_until = parse_instant(annotations, SUSPEND_UNTIL, &mut controls_problem_push);
        controls.suspend_until = suspend_until.filter(|until| *until > now);
        if let Some(raw) = annotations.get(OVERRIDE) {
            let state = match raw.trim().to_ascii_lowercase().as_str() {
                "hibernate" | "hibernated" | "shutdown" => Some(ScheduleState::Hibernated),
                "wakeup" | "wake-up" | "awake" | "wake" => Some(ScheduleState::Awake),
                _ => {
                    controls_problem_push(
                        OVERRIDE,
                        format!("{raw:?} is neither hibernate nor wakeup"),
                    );
                    None
                }
            };
            let until = parse_instant(annotations, OVERRIDE_UNTIL, &mut controls_problem_push);
            if let Some(state) = state
                && until.is_none_or(|u| u > now)
            {
                controls.override_ = Some(Override { state, until });
            }
        }
        controls.retry_token = annotations
            .get(RETRY_NOW)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty());
        controls.problems = problems;
        controls
    }

    /// Whether no new work may start now.
    pub fn suspended(&self) -> bool {
        self.spec_suspend || self.suspend_until.is_some()
    }

    /// The earliest instant at which a control expires (a reconcile is due then).
    pub fn next_expiry(&self) -> Option<DateTime<Utc>> {
        [self.suspend_until, self.override_.and_then(|o| o.until)]
            .into_iter()
            .flatten()
            .min()
    }
}

fn parse_instant(
    annotations: &BTreeMap<String, String>,
    key: &str,
    problem: &mut impl FnMut(&str, String),
) -> Option<DateTime<Utc>> {
    let raw = annotations.get(key)?;
    match DateTime::parse_from_rfc3339(raw.trim()) {
        Ok(t) => Some(t.with_timezone(&Utc)),
        Err(e) => {
            problem(key, format!("{raw:?} is not an RFC 3339 instant ({e})"));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hibernator_core::types::HibernatePlanSpec;

    fn plan(annotations: &[(&str, &str)], suspend: bool) -> HibernatePlan {
        let mut plan = HibernatePlan::new(
            "p",
            HibernatePlanSpec {
                schedule: Default::default(),
                execution: Default::default(),
                behavior: Default::default(),
                suspend,
                on_delete: Default::default(),
                wake_up: None,
                targets: vec![],
            },
        );
        plan.metadata.annotations = Some(
            annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        plan
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn suspend_until_in_the_future_suspends_and_expires() {
        let p = plan(&[(SUSPEND_UNTIL, "2026-11-22T10:00:00Z")], false);
        let before = Controls::read(&p, at("2026-11-22T09:00:00Z"));
        assert!(before.suspended());
        assert_eq!(before.next_expiry(), Some(at("2026-11-22T10:00:00Z")));
        let after = Controls::read(&p, at("2026-11-22T10:00:00Z"));
        assert!(!after.suspended());
        assert!(Controls::read(&plan(&[], true), at("2026-11-22T10:00:00Z")).suspended());
    }

    #[test]
    fn override_with_and_without_expiry() {
        let p = plan(
            &[
                (OVERRIDE, "hibernate"),
                (OVERRIDE_UNTIL, "2026-11-22T12:00:00+01:00"),
            ],
            false,
        );
        let c = Controls::read(&p, at("2026-11-22T10:59:00Z"));
        assert_eq!(
            c.override_.map(|o| o.state),
            Some(ScheduleState::Hibernated)
        );
        assert!(
            Controls::read(&p, at("2026-11-22T11:00:00Z"))
                .override_
                .is_none()
        );
        let forever = Controls::read(
            &plan(&[(OVERRIDE, "wakeup")], false),
            at("2030-01-01T00:00:00Z"),
        );
        assert_eq!(
            forever.override_.map(|o| o.state),
            Some(ScheduleState::Awake)
        );
        assert_eq!(forever.next_expiry(), None);
    }

    #[test]
    fn malformed_annotations_are_reported_and_ignored() {
        let p = plan(&[(OVERRIDE, "sleep"), (SUSPEND_UNTIL, "tomorrow")], false);
        let c = Controls::read(&p, at("2026-11-22T10:00:00Z"));
        assert!(c.override_.is_none());
        assert!(!c.suspended());
        assert_eq!(c.problems.len(), 2, "{:?}", c.problems);
        assert!(c.problems.iter().any(|p| p.starts_with(SUSPEND_UNTIL)));
    }

    #[test]
    fn retry_token_is_trimmed() {
        let c = Controls::read(
            &plan(&[(RETRY_NOW, " 1 ")], false),
            at("2026-11-22T10:00:00Z"),
        );
        assert_eq!(c.retry_token.as_deref(), Some("1"));
    }
}
