//! The plan finalizer: deletion waits until hibernated targets are woken up
//! (`spec.onDelete: WakeUp`) and the plan's Jobs and restore ConfigMap are gone.

use hibernator_core::types::HibernatePlan;
use kube::Api;
use kube::api::{Patch, PatchParams};

use super::error::{Error, is_conflict};

/// The finalizer the controller puts on every plan.
pub const FINALIZER: &str = hibernator_core::wellknown::FINALIZER;

/// Whether `plan` carries the finalizer.
pub fn has_finalizer(plan: &HibernatePlan) -> bool {
    plan.metadata
        .finalizers
        .as_ref()
        .is_some_and(|f| f.iter().any(|x| x == FINALIZER))
}

/// The finalizer list with ours added or removed.
pub fn with_finalizer(plan: &HibernatePlan, present: bool) -> Vec<String> {
    let mut list: Vec<String> = plan
        .metadata
        .finalizers
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|f| f != FINALIZER)
        .collect();
    if present {
        list.push(FINALIZER.to_string());
    }
    list
}

/// Adds or removes the finalizer with a merge patch guarded by the plan's
/// resourceVersion (a concurrent change makes it fail with [`Error::Conflict`]).
pub async fn set_finalizer(
    api: &Api<HibernatePlan>,
    plan: &HibernatePlan,
    present: bool,
) -> Result<(), Error> {
    let name = plan.metadata.name.clone().unwrap_or_default();
    let key = format!(
        "{}/{name}",
        plan.metadata.namespace.as_deref().unwrap_or_default()
    );
    let patch = serde_json::json!({
        "metadata": {
            "finalizers": with_finalizer(plan, present),
            "resourceVersion": plan.metadata.resource_version,
        }
    });
    match api
        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if is_conflict(&e) => Err(Error::Conflict { plan: key }),
        Err(e) if super::error::is_not_found(&e) && !present => Ok(()),
        Err(e) => Err(Error::kube("patch finalizers of", key, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hibernator_core::types::HibernatePlanSpec;

    #[test]
    fn adds_once_and_removes_only_ours() {
        let mut plan = HibernatePlan::new(
            "p",
            HibernatePlanSpec {
                schedule: Default::default(),
                execution: Default::default(),
                behavior: Default::default(),
                suspend: false,
                on_delete: Default::default(),
                wake_up: None,
                targets: vec![],
            },
        );
        assert!(!has_finalizer(&plan));
        plan.metadata.finalizers = Some(vec!["other".into()]);
        assert_eq!(
            with_finalizer(&plan, true),
            vec!["other".to_string(), FINALIZER.to_string()]
        );
        plan.metadata.finalizers = Some(with_finalizer(&plan, true));
        assert!(has_finalizer(&plan));
        assert_eq!(with_finalizer(&plan, true).len(), 2);
        assert_eq!(with_finalizer(&plan, false), vec!["other".to_string()]);
    }
}
