//! The read step of a reconcile: the plan's Jobs and ScheduleExceptions
//! (from the controller's watch caches, or one list call each), the
//! termination messages of Jobs that just finished (at most one Pod list)
//! and its restore ConfigMap (one GET).

use std::collections::BTreeMap;
use std::sync::Arc;

use hibernator_core::restore::RestoreRecord;
use hibernator_core::types::{HibernatePlan, ScheduleException};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::Api;
use kube::api::ListParams;

use hibernator_core::wellknown::{
    ANNOTATION_PLAN, LABEL_EXECUTION_ID, LABEL_PLAN, plan_label, restore_config_map_name,
};
use hibernator_reconcile::enforce::{EnforceJobObservation, observe_enforce_job};
use hibernator_reconcile::jobs::observe_job;
use hibernator_reconcile::{JobObservation, JobPhase, RestoreView};

use super::Caches;
use super::error::Error;

/// What the read step found.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    /// Runner Jobs of the plan.
    pub jobs: Vec<JobObservation>,
    /// Enforce Jobs of the plan (drift re-enforcement while hibernated).
    pub enforce_jobs: Vec<EnforceJobObservation>,
    /// ScheduleExceptions referring to the plan.
    pub exceptions: Vec<ScheduleException>,
    /// Restore data.
    pub restore: RestoreView,
}

/// Whether `exception` refers to `plan` (same namespace unless given).
pub fn refers_to(exception: &ScheduleException, plan_namespace: &str, plan_name: &str) -> bool {
    let reference = &exception.spec.plan_ref;
    let namespace = reference
        .namespace
        .as_deref()
        .or(exception.metadata.namespace.as_deref())
        .unwrap_or_default();
    reference.name == plan_name && namespace == plan_namespace
}

/// Reads everything `decide` needs about `plan`: Jobs and exceptions from
/// `caches` (the controller's watches) when given and synced, else from the
/// API server; the restore ConfigMap and runner Pods always from the API.
pub async fn read(
    client: &kube::Client,
    plan: &HibernatePlan,
    caches: Option<&Caches>,
) -> Result<Observed, Error> {
    let namespace = plan.metadata.namespace.clone().unwrap_or_default();
    let name = plan.metadata.name.clone().unwrap_or_default();
    let label = plan_label(&name);
    let selector = format!("{LABEL_PLAN}={label}");
    let caches = match caches {
        Some(caches) if caches.ready().await => Some(caches),
        _ => None,
    };
    let jobs: Vec<Arc<Job>> = match caches {
        Some(caches) => caches.jobs.state_filter(|job| {
            job.metadata.namespace.as_deref() == Some(namespace.as_str())
                && job
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(LABEL_PLAN))
                    .is_some_and(|v| *v == label)
        }),
        None => {
            let jobs_api: Api<Job> = Api::namespaced(client.clone(), &namespace);
            jobs_api
                .list(&ListParams::default().labels(&selector))
                .await
                .map_err(|e| Error::kube("list Jobs of", format!("{namespace}/{name}"), e))?
                .items
                .into_iter()
                .map(Arc::new)
                .collect()
        }
    };
    let ours: Vec<&Job> = jobs
        .iter()
        .map(AsRef::as_ref)
        .filter(|job| {
            job.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(ANNOTATION_PLAN))
                .is_none_or(|p| *p == name)
        })
        .collect();
    let mut pairs: Vec<(&Job, JobObservation)> = ours
        .iter()
        .filter_map(|job| observe_job(job, None).map(|o| (*job, o)))
        .collect();
    let mut enforce_pairs: Vec<(&Job, EnforceJobObservation)> = ours
        .iter()
        .filter_map(|job| observe_enforce_job(job, None).map(|o| (*job, o)))
        .collect();
    // termination messages only for finished Jobs the ledger has not recorded yet
    let status = plan.status.clone().unwrap_or_default();
    let needs_message = |o: &JobObservation| {
        o.phase != JobPhase::Running
            && status.current_cycle_id.as_deref() == Some(o.cycle_id.as_str())
            && status.executions.iter().any(|e| {
                e.target == o.target
                    && !e.state.is_terminal()
                    && e.next_retry_at.is_none()
                    && e.attempts <= o.attempt
            })
    };
    // enforce Jobs of the running check that finished
    let enforcement = status.enforcement.clone().unwrap_or_default();
    let enforce_needs_message = |o: &EnforceJobObservation| {
        o.phase != JobPhase::Running
            && enforcement.check_id.as_deref() == Some(o.check_id.as_str())
            && enforcement.pending_targets.contains(&o.target)
    };
    let enforce_pending = enforce_pairs.iter().any(|(_, o)| enforce_needs_message(o));
    if pairs.iter().any(|(_, o)| needs_message(o)) || enforce_pending {
        let pods_api: Api<Pod> = Api::namespaced(client.clone(), &namespace);
        let pods = pods_api
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| Error::kube("list runner Pods of", format!("{namespace}/{name}"), e))?;
        let messages = termination_messages(&pods.items);
        for (job, o) in &mut pairs {
            if let Some(text) = messages.get(&o.name)
                && let Some(updated) = observe_job(job, Some(text))
            {
                *o = updated;
            }
        }
        for (job, o) in &mut enforce_pairs {
            if let Some(text) = messages.get(&o.name)
                && let Some(updated) = observe_enforce_job(job, Some(text))
            {
                *o = updated;
            }
        }
    }
    let enforce_jobs = enforce_pairs.into_iter().map(|(_, o)| o).collect();
    let observed: Vec<JobObservation> = pairs.into_iter().map(|(_, o)| o).collect();
    let exceptions = match caches {
        Some(caches) => caches
            .exceptions
            .state_filter(|e| {
                e.metadata.namespace.as_deref() == Some(namespace.as_str())
                    && refers_to(e, &namespace, &name)
            })
            .into_iter()
            .map(Arc::unwrap_or_clone)
            .collect(),
        None => {
            let exceptions_api: Api<ScheduleException> =
                Api::namespaced(client.clone(), &namespace);
            exceptions_api
                .list(&ListParams::default())
                .await
                .map_err(|e| Error::kube("list ScheduleExceptions in", namespace.clone(), e))?
                .items
                .into_iter()
                .filter(|e| refers_to(e, &namespace, &name))
                .collect()
        }
    };
    let restore = read_restore(client, &namespace, &name).await?;
    Ok(Observed {
        jobs: observed,
        enforce_jobs,
        exceptions,
        restore,
    })
}

/// Termination messages of runner Pods, by execution id (= Job name).
pub fn termination_messages(pods: &[Pod]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for pod in pods {
        let Some(execution) = pod
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(LABEL_EXECUTION_ID))
        else {
            continue;
        };
        let message = pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .into_iter()
            .flatten()
            .filter(|c| c.name == "runner")
            .find_map(|c| c.state.as_ref()?.terminated.as_ref()?.message.clone());
        if let Some(message) = message {
            out.insert(execution.clone(), message);
        }
    }
    out
}

/// Reads the restore ConfigMap: which targets still hold entries, and its size.
pub async fn read_restore(
    client: &kube::Client,
    namespace: &str,
    plan: &str,
) -> Result<RestoreView, Error> {
    let name = restore_config_map_name(plan);
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let config_map = api
        .get_opt(&name)
        .await
        .map_err(|e| Error::kube("get restore ConfigMap", format!("{namespace}/{name}"), e))?;
    Ok(restore_view(name, config_map.as_ref()))
}

/// The restore view of a ConfigMap (absent: no data).
pub fn restore_view(name: String, config_map: Option<&ConfigMap>) -> RestoreView {
    let mut view = RestoreView {
        config_map: name.clone(),
        ..RestoreView::default()
    };
    let Some(data) = config_map.and_then(|c| c.data.as_ref()) else {
        return view;
    };
    for (key, value) in data {
        view.bytes += key.len() + value.len();
        let location = format!("configmap/{name}#{key}");
        let decoded = serde_json::from_str::<RestoreRecord>(value);
        match decoded {
            Ok(record) if !record.is_empty() => {
                let counts = hibernator_reconcile::accounting::resource_counts(&record);
                view.resources.insert(record.target.clone(), counts);
                view.targets.insert(record.target);
            }
            Ok(_) => {}
            Err(error) => {
                // unreadable data is kept and counted as present: never lose restore data
                tracing::warn!(%location, %error, "unreadable restore record");
                view.targets.insert(key.clone());
            }
        }
    }
    view
}

#[cfg(test)]
mod tests {
    use super::*;
    use hibernator_core::restore::RestoreRecord;
    use k8s_openapi::api::core::v1::{
        ContainerState, ContainerStateTerminated, ContainerStatus, PodStatus,
    };

    #[test]
    fn restore_view_lists_targets_with_entries_and_keeps_unreadable_ones() {
        let mut full = RestoreRecord::new("a", "ec2");
        full.merge_shutdown(
            "c1",
            [(
                "instance/i-1".to_string(),
                serde_json::json!({"state": "running"}),
            )],
        );
        let empty = RestoreRecord::new("b", "ec2");
        let config_map = ConfigMap {
            data: Some(
                [
                    ("a".to_string(), serde_json::to_string(&full).unwrap()),
                    ("b".to_string(), serde_json::to_string(&empty).unwrap()),
                    ("c".to_string(), "{not json".to_string()),
                ]
                .into(),
            ),
            ..ConfigMap::default()
        };
        let view = restore_view("hibernator-restore-p".into(), Some(&config_map));
        assert_eq!(
            view.targets.into_iter().collect::<Vec<_>>(),
            vec!["a".to_string(), "c".to_string()]
        );
        assert!(view.bytes > 0);
        // resources for the accounting: one unclassified entry of `a`
        assert_eq!(view.resources["a"].total, 1);
        assert!(!view.resources.contains_key("b"));
        assert!(restore_view("x".into(), None).targets.is_empty());
    }

    #[test]
    fn termination_messages_by_execution_id() {
        let pod = Pod {
            metadata: kube::api::ObjectMeta {
                labels: Some([(LABEL_EXECUTION_ID.to_string(), "job-1".to_string())].into()),
                ..Default::default()
            },
            status: Some(PodStatus {
                container_statuses: Some(vec![ContainerStatus {
                    name: "runner".into(),
                    state: Some(ContainerState {
                        terminated: Some(ContainerStateTerminated {
                            message: Some("{\"success\":true}".into()),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let messages = termination_messages(&[pod]);
        assert_eq!(
            messages.get("job-1").map(String::as_str),
            Some("{\"success\":true}")
        );
    }
}
