//! The plan control protocol, writing side: the JSON merge patches that
//! suspend, resume, override and retry a `HibernatePlan` (its control
//! annotations and `spec.suspend`, nothing else). The controller reads the
//! same annotations with `hibernator_reconcile::controls`; the names are in
//! `hibernator_core::wellknown`.

use chrono::{DateTime, Utc};
use hibernator_core::types::HibernatePlan;
use hibernator_core::wellknown::{
    ANNOTATION_OVERRIDE, ANNOTATION_OVERRIDE_UNTIL, ANNOTATION_RETRY_NOW,
    ANNOTATION_SUSPEND_REASON, ANNOTATION_SUSPEND_UNTIL,
};
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::{Map, Value, json};

/// The state an override forces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OverrideState {
    /// Hibernate now.
    Hibernate,
    /// Wake up now.
    Wakeup,
}

impl OverrideState {
    /// The annotation value (`hibernate`, `wakeup`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hibernate => "hibernate",
            Self::Wakeup => "wakeup",
        }
    }
}

/// Formats an instant as the control annotations store it (RFC 3339, UTC,
/// whole seconds).
pub fn format_instant(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Suspend: until `until` (the annotation; `spec.suspend` unchanged), or
/// without it until resumed (`spec.suspend: true`). `reason` replaces the
/// recorded reason (`None` removes it).
pub fn suspend_patch(until: Option<DateTime<Utc>>, reason: Option<&str>) -> Value {
    let mut annotations = Map::new();
    let reason = reason.map_or(Value::Null, |r| Value::String(r.to_string()));
    annotations.insert(ANNOTATION_SUSPEND_REASON.to_string(), reason);
    match until {
        Some(until) => {
            annotations.insert(
                ANNOTATION_SUSPEND_UNTIL.to_string(),
                Value::String(format_instant(until)),
            );
            json!({"metadata": {"annotations": annotations}})
        }
        None => {
            annotations.insert(ANNOTATION_SUSPEND_UNTIL.to_string(), Value::Null);
            json!({"metadata": {"annotations": annotations}, "spec": {"suspend": true}})
        }
    }
}

/// Resume: removes the suspend annotations and sets `spec.suspend: false`.
pub fn resume_patch() -> Value {
    json!({
        "metadata": {"annotations": {ANNOTATION_SUSPEND_UNTIL: null, ANNOTATION_SUSPEND_REASON: null}},
        "spec": {"suspend": false},
    })
}

/// Override: force `state`, until `until` (`None`: until the annotation is
/// removed).
pub fn override_patch(state: OverrideState, until: Option<DateTime<Utc>>) -> Value {
    json!({"metadata": {"annotations": {
        ANNOTATION_OVERRIDE: state.as_str(),
        ANNOTATION_OVERRIDE_UNTIL: until.map(format_instant),
    }}})
}

/// Retry: re-runs the failed targets of a plan in `Error`; `now` makes the
/// value new each time.
pub fn retry_patch(now: DateTime<Utc>) -> Value {
    json!({"metadata": {"annotations": {ANNOTATION_RETRY_NOW: format_instant(now)}}})
}

/// Applies a control patch (a JSON merge patch) to the plan `name`.
pub async fn patch_plan(
    api: &Api<HibernatePlan>,
    name: &str,
    patch: &Value,
) -> Result<HibernatePlan, kube::Error> {
    api.patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn patches_touch_only_the_control_fields() {
        let until = at("2026-11-23T21:00:00.5Z");
        assert_eq!(
            suspend_patch(Some(until), Some("freeze")),
            json!({"metadata": {"annotations": {
                "hibernator.dev/suspend-reason": "freeze",
                "hibernator.dev/suspend-until": "2026-11-23T21:00:00Z",
            }}})
        );
        assert_eq!(
            suspend_patch(None, None),
            json!({"metadata": {"annotations": {
                "hibernator.dev/suspend-reason": null,
                "hibernator.dev/suspend-until": null,
            }}, "spec": {"suspend": true}})
        );
        assert_eq!(
            resume_patch()["spec"],
            json!({"suspend": false}),
            "resume clears spec.suspend"
        );
        assert_eq!(
            override_patch(OverrideState::Wakeup, None),
            json!({"metadata": {"annotations": {
                "hibernator.dev/override": "wakeup",
                "hibernator.dev/override-until": null,
            }}})
        );
        assert_eq!(
            retry_patch(until),
            json!({"metadata": {"annotations": {"hibernator.dev/retry-now": "2026-11-23T21:00:00Z"}}})
        );
    }

    #[test]
    fn the_controller_reads_what_the_patches_write() {
        use hibernator_core::schedule::ScheduleState;
        use hibernator_reconcile::controls::Controls;
        let now = at("2026-11-23T20:00:00Z");
        let until = at("2026-11-23T22:00:00Z");
        let mut plan = hibernator_core::input::PlanDocuments::from_yaml(
            "apiVersion: hibernator.dev/v1alpha1\nkind: HibernatePlan\nmetadata: {name: dev}\nspec:\n  schedule: {timezone: UTC}\n  targets: []\n",
        )
        .unwrap()
        .plan;
        let patch = override_patch(OverrideState::Hibernate, Some(until));
        let annotations = patch["metadata"]["annotations"].as_object().unwrap();
        plan.metadata.annotations = Some(
            annotations
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect(),
        );
        let controls = Controls::read(&plan, now);
        let forced = controls.override_.expect("override read back");
        assert_eq!(forced.state, ScheduleState::Hibernated);
        assert_eq!(forced.until, Some(until));
    }
}
