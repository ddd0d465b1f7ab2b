//! What the `workloadscaler` executor acts on: the resolved kinds of
//! `includedGroups`, restore keys and recorded awake states.

use hibernator_core::executor::{ExecutorError, category};
use kube::Client;
use kube::core::{ApiResource, GroupVersion, GroupVersionKind};
use kube::discovery::{Scope, oneshot};
use serde::{Deserialize, Serialize};

use super::super::error::{classify, is_not_found};
use crate::workloadscaler::WorkloadGroup;

/// The KEDA annotation that pauses a ScaledObject at a replica count.
pub const KEDA_PAUSED_REPLICAS: &str = "autoscaling.keda.sh/paused-replicas";

/// How a kind of workload is put to sleep.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Mode {
    /// `replicas` through the scale subresource.
    Scale,
    /// CronJob `spec.suspend`.
    Suspend,
    /// KEDA `autoscaling.keda.sh/paused-replicas` annotation.
    KedaPause,
}

/// A resolved `includedGroups` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedGroup {
    /// The resource (group, version, kind, plural).
    pub resource: ApiResource,
    /// How its objects are put to sleep.
    pub mode: Mode,
    /// ReplicaSets owned by a Deployment are left to their Deployment.
    pub skip_deployment_owned: bool,
    /// Whether objects report `status.readyReplicas` (built-in workloads).
    pub reports_ready_replicas: bool,
}

fn builtin(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

/// Resolves an `includedGroups` entry. Built-in kinds need no API call; a
/// `group/version/resource` is looked up with discovery and must be
/// namespaced and have a scale subresource.
pub async fn resolve(
    client: &Client,
    group: &WorkloadGroup,
) -> Result<ResolvedGroup, ExecutorError> {
    let scaled = |resource, skip_deployment_owned| ResolvedGroup {
        resource,
        mode: Mode::Scale,
        skip_deployment_owned,
        reports_ready_replicas: true,
    };
    let resolved = match group {
        WorkloadGroup::Deployments => {
            scaled(builtin("apps", "v1", "Deployment", "deployments"), false)
        }
        WorkloadGroup::StatefulSets => {
            scaled(builtin("apps", "v1", "StatefulSet", "statefulsets"), false)
        }
        WorkloadGroup::ReplicaSets => {
            scaled(builtin("apps", "v1", "ReplicaSet", "replicasets"), true)
        }
        WorkloadGroup::CronJobs => ResolvedGroup {
            resource: builtin("batch", "v1", "CronJob", "cronjobs"),
            mode: Mode::Suspend,
            skip_deployment_owned: false,
            reports_ready_replicas: false,
        },
        WorkloadGroup::ScaledObjects => ResolvedGroup {
            resource: builtin("keda.sh", "v1alpha1", "ScaledObject", "scaledobjects"),
            mode: Mode::KedaPause,
            skip_deployment_owned: false,
            reports_ready_replicas: false,
        },
        WorkloadGroup::Custom {
            group,
            version,
            resource,
        } => resolve_custom(client, group, version, resource).await?,
    };
    Ok(resolved)
}

async fn resolve_custom(
    client: &Client,
    group: &str,
    version: &str,
    plural: &str,
) -> Result<ResolvedGroup, ExecutorError> {
    let entry = format!("{group}/{version}/{plural}");
    let invalid = |why: String| {
        ExecutorError::permanent(
            category::INVALID_PARAMETERS,
            format!("parameters.includedGroups: {entry}: {why}"),
        )
    };
    let gv = GroupVersion::gv(group, version);
    let api_group = match oneshot::pinned_group(client, &gv).await {
        Ok(g) => g,
        Err(e) if is_not_found(&e) => {
            return Err(invalid(format!(
                "the cluster does not serve {group}/{version} (is its CRD installed?)"
            )));
        }
        Err(e) => return Err(classify(&e, &format!("discover {group}/{version}"))),
    };
    let Some((resource, caps)) = api_group
        .versioned_resources(version)
        .into_iter()
        .find(|(r, _)| r.plural == plural)
    else {
        return Err(invalid(format!(
            "the cluster serves {group}/{version} but no resource {plural:?}"
        )));
    };
    if caps.scope != Scope::Namespaced {
        return Err(invalid(
            "the resource is cluster-scoped; workloadscaler acts on namespaced workloads".into(),
        ));
    }
    if !caps
        .subresources
        .iter()
        .any(|(sub, _)| sub.plural == "scale")
    {
        return Err(invalid("the resource has no scale subresource".into()));
    }
    Ok(ResolvedGroup {
        resource,
        mode: Mode::Scale,
        skip_deployment_owned: false,
        reports_ready_replicas: false,
    })
}

/// The restore key of a workload: `<group or core>/<Kind>/<namespace>/<name>`,
/// e.g. `apps/Deployment/shop/web`.
pub fn workload_key(resource: &ApiResource, namespace: &str, name: &str) -> String {
    let group = if resource.group.is_empty() {
        "core"
    } else {
        &resource.group
    };
    format!("{group}/{}/{namespace}/{name}", resource.kind)
}

/// The recorded awake state of one workload: where it is and what to put back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadState {
    /// API group (empty for core).
    pub group: String,
    /// API version.
    pub version: String,
    /// Kind.
    pub kind: String,
    /// Plural resource name.
    pub resource: String,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Whether readiness is read from `status.readyReplicas`.
    #[serde(default)]
    pub reports_ready_replicas: bool,
    /// The awake value.
    pub awake: Awake,
}

/// The awake value of a workload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "mode")]
pub enum Awake {
    /// Replicas of the scale subresource.
    #[serde(rename_all = "camelCase")]
    Scale {
        /// `spec.replicas` before shutdown.
        replicas: i32,
    },
    /// A CronJob's `spec.suspend`.
    #[serde(rename_all = "camelCase")]
    Suspend {
        /// `spec.suspend` before shutdown (`None`: the field was absent).
        #[serde(default)]
        suspend: Option<bool>,
    },
    /// A ScaledObject's paused-replicas annotation.
    #[serde(rename_all = "camelCase")]
    KedaPause {
        /// The annotation before shutdown (`None`: it was absent).
        #[serde(default)]
        paused_replicas: Option<String>,
    },
}

impl WorkloadState {
    /// The API resource of the workload.
    pub fn api_resource(&self) -> ApiResource {
        ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(&self.group, &self.version, &self.kind),
            &self.resource,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_name_group_kind_namespace_and_name() {
        let deploy = builtin("apps", "v1", "Deployment", "deployments");
        assert_eq!(
            workload_key(&deploy, "shop", "web"),
            "apps/Deployment/shop/web"
        );
        let core = builtin("", "v1", "ReplicationController", "replicationcontrollers");
        assert_eq!(
            workload_key(&core, "a", "b"),
            "core/ReplicationController/a/b"
        );
    }

    #[test]
    fn states_round_trip_in_a_readable_shape() {
        let state = WorkloadState {
            group: "apps".into(),
            version: "v1".into(),
            kind: "Deployment".into(),
            resource: "deployments".into(),
            namespace: "shop".into(),
            name: "web".into(),
            reports_ready_replicas: true,
            awake: Awake::Scale { replicas: 3 },
        };
        let value = serde_json::to_value(&state).unwrap();
        assert_eq!(value["awake"], json!({"mode": "scale", "replicas": 3}));
        assert_eq!(
            serde_json::from_value::<WorkloadState>(value).unwrap(),
            state
        );
        let keda: Awake =
            serde_json::from_value(json!({"mode": "kedaPause", "pausedReplicas": null})).unwrap();
        assert_eq!(
            keda,
            Awake::KedaPause {
                paused_replicas: None
            }
        );
        assert_eq!(state.api_resource().api_version, "apps/v1");
    }
}
