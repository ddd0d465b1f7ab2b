//! Parameters of the `workloadscaler` executor: scale Kubernetes workloads
//! to zero through their scale subresource (CronJobs are suspended, KEDA
//! ScaledObjects paused) and restore them exactly on wake-up.

use std::collections::BTreeMap;

use hibernator_core::diag::Diagnostics;
use hibernator_core::params::ValidateParameters;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{
    AwaitCompletion, NamesOrSelector, ParamsError, check_dns_label, check_dns_subdomain,
    warn_duplicates,
};
use crate::selector::LabelSelector;

/// Executor type name.
pub const TYPE: &str = "workloadscaler";

/// Workloads annotated `hibernator.dev/exclude: "true"` are never touched.
pub const EXCLUDE_ANNOTATION: &str = hibernator_core::wellknown::ANNOTATION_EXCLUDE;

/// Whether a workload's annotations opt it out (`hibernator.dev/exclude: "true"`).
pub fn is_excluded(annotations: &BTreeMap<String, String>) -> bool {
    annotations
        .get(EXCLUDE_ANNOTATION)
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// Parameters of a `workloadscaler` target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Parameters {
    /// Kinds of workloads to act on (default `["deployments"]`): `deployments`,
    /// `statefulsets`, `replicasets`, `cronjobs`, `scaledobjects` (KEDA), or
    /// any `group/version/resource` with a scale subresource.
    #[serde(default = "default_groups")]
    pub included_groups: Vec<String>,
    /// Namespaces to act in (required).
    pub namespace: NamespaceSelector,
    /// Only workloads whose labels match (default: every workload).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_selector: Option<LabelSelector>,
    /// Wait until pods are gone (shutdown) or the workloads report their
    /// restored replicas ready (wake-up).
    #[serde(default)]
    pub await_completion: AwaitCompletion,
}

fn default_groups() -> Vec<String> {
    vec!["deployments".to_string()]
}

/// Exactly one of `literals` or `selector`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceSelector {
    /// Namespace names (DNS labels).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub literals: Option<Vec<String>>,
    /// Namespaces whose labels match this selector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
}

impl NamespaceSelector {
    /// Whether the namespace `name` with `labels` is covered.
    pub fn matches(&self, name: &str, labels: &BTreeMap<String, String>) -> bool {
        match (&self.literals, &self.selector) {
            (Some(names), None) => names.iter().any(|n| n == name),
            (None, Some(selector)) => selector.matches(labels),
            _ => false,
        }
    }

    fn validate(&self, field: &str, d: &mut Diagnostics) {
        NamesOrSelector {
            names: self.literals.as_deref(),
            names_key: "literals",
            empty_names: "must list at least one namespace",
            check_name: check_dns_label,
            selector: self.selector.as_ref(),
            selector_key: "selector",
            empty_selector: "an empty selector selects every namespace, including kube-system",
        }
        .validate(field, d);
    }
}

/// A kind of workload the executor acts on.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WorkloadGroup {
    /// `apps/v1/deployments`, scaled to 0.
    Deployments,
    /// `apps/v1/statefulsets`, scaled to 0.
    StatefulSets,
    /// `apps/v1/replicasets` not owned by a Deployment, scaled to 0.
    ReplicaSets,
    /// `batch/v1/cronjobs`, suspended.
    CronJobs,
    /// KEDA `keda.sh/v1alpha1/scaledobjects`, paused at 0 replicas.
    ScaledObjects,
    /// Any resource with a scale subresource.
    Custom {
        /// API group, e.g. `argoproj.io`.
        group: String,
        /// API version, e.g. `v1alpha1`.
        version: String,
        /// Plural resource name, e.g. `rollouts`.
        resource: String,
    },
}

impl WorkloadGroup {
    /// Parses an `includedGroups` entry.
    pub fn parse(entry: &str) -> Result<Self, ParamsError> {
        let invalid = |reason: String| ParamsError::InvalidWorkloadGroup {
            value: entry.to_string(),
            reason,
        };
        match entry {
            "deployments" => return Ok(Self::Deployments),
            "statefulsets" => return Ok(Self::StatefulSets),
            "replicasets" => return Ok(Self::ReplicaSets),
            "cronjobs" => return Ok(Self::CronJobs),
            "scaledobjects" => return Ok(Self::ScaledObjects),
            _ => {}
        }
        let parts: Vec<&str> = entry.split('/').collect();
        let [group, version, resource] = parts.as_slice() else {
            return Err(invalid(
                "expected deployments, statefulsets, replicasets, cronjobs, scaledobjects \
                 or group/version/resource (e.g. argoproj.io/v1alpha1/rollouts)"
                    .to_string(),
            ));
        };
        check_dns_subdomain(group).map_err(|e| invalid(format!("group: {e}")))?;
        if !is_api_version(version) {
            return Err(invalid(format!(
                "version {version:?} must look like v1, v2beta1 or v1alpha1"
            )));
        }
        check_dns_label(resource).map_err(|e| invalid(format!("resource: {e}")))?;
        Ok(Self::Custom {
            group: (*group).to_string(),
            version: (*version).to_string(),
            resource: (*resource).to_string(),
        })
    }

    /// The `(group, version, resource)` this kind stands for.
    pub fn gvr(&self) -> (&str, &str, &str) {
        match self {
            Self::Deployments => ("apps", "v1", "deployments"),
            Self::StatefulSets => ("apps", "v1", "statefulsets"),
            Self::ReplicaSets => ("apps", "v1", "replicasets"),
            Self::CronJobs => ("batch", "v1", "cronjobs"),
            Self::ScaledObjects => ("keda.sh", "v1alpha1", "scaledobjects"),
            Self::Custom {
                group,
                version,
                resource,
            } => (group, version, resource),
        }
    }
}

/// `v<digits>` optionally followed by `alpha<digits>` or `beta<digits>`.
fn is_api_version(version: &str) -> bool {
    let Some(rest) = version.strip_prefix('v') else {
        return false;
    };
    let digits = rest.chars().take_while(char::is_ascii_digit).count();
    if digits == 0 || rest.starts_with('0') {
        return false;
    }
    let suffix = &rest[digits..];
    if suffix.is_empty() {
        return true;
    }
    ["alpha", "beta"].iter().any(|stage| {
        suffix.strip_prefix(stage).is_some_and(|n| {
            !n.is_empty() && !n.starts_with('0') && n.chars().all(|c| c.is_ascii_digit())
        })
    })
}

impl Parameters {
    /// The parsed `includedGroups`, skipping invalid entries (which
    /// validation rejects) and duplicates.
    pub fn groups(&self) -> Vec<WorkloadGroup> {
        let mut groups: Vec<WorkloadGroup> = Vec::new();
        for group in self
            .included_groups
            .iter()
            .filter_map(|g| WorkloadGroup::parse(g).ok())
        {
            if !groups.contains(&group) {
                groups.push(group);
            }
        }
        groups
    }

    /// Whether a workload with `labels` and `annotations` is covered
    /// (namespace selection is separate: [`NamespaceSelector::matches`]).
    pub fn selects_workload(
        &self,
        labels: &BTreeMap<String, String>,
        annotations: &BTreeMap<String, String>,
    ) -> bool {
        !is_excluded(annotations)
            && self
                .workload_selector
                .as_ref()
                .is_none_or(|s| s.matches(labels))
    }
}

impl ValidateParameters for Parameters {
    fn validate(&self, field: &str, d: &mut Diagnostics) {
        let path = format!("{field}.includedGroups");
        if self.included_groups.is_empty() {
            d.error(path.clone(), "must list at least one workload group");
        }
        for (i, entry) in self.included_groups.iter().enumerate() {
            if let Err(e) = WorkloadGroup::parse(entry) {
                d.error(format!("{path}[{i}]"), e.to_string());
            }
        }
        warn_duplicates(&self.included_groups, &path, d);
        self.namespace.validate(&format!("{field}.namespace"), d);
        if let Some(selector) = &self.workload_selector {
            selector.validate(&format!("{field}.workloadSelector"), d);
        }
        self.await_completion
            .validate(&format!("{field}.awaitCompletion"), d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hibernator_core::params::{ParameterCheck, TypedParameters};
    use serde_json::json;

    const P: &str = "spec.targets[4].parameters";

    fn check(v: serde_json::Value) -> Diagnostics {
        TypedParameters::<Parameters>::new(TYPE).check(Some(&v), P)
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn valid_examples_parse() {
        for v in [
            json!({"namespace": {"literals": ["team-a", "team-b"]}}),
            json!({"includedGroups": ["deployments", "statefulsets", "cronjobs", "scaledobjects",
                                      "replicasets", "argoproj.io/v1alpha1/rollouts"],
                   "namespace": {"selector": {"matchLabels": {"env": "dev"}}},
                   "workloadSelector": {"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["db"]}]}}),
        ] {
            let d = check(v.clone());
            assert!(d.errors.is_empty() && d.warnings.is_empty(), "{v}: {d:?}");
        }
        let p: Parameters =
            serde_json::from_value(json!({"namespace": {"literals": ["a"]}})).unwrap();
        assert_eq!(p.included_groups, ["deployments"]);
        assert_eq!(p.groups(), [WorkloadGroup::Deployments]);
    }

    #[test]
    fn rejections_name_the_field() {
        let ns = json!({"literals": ["a"]});
        let cases = [
            (json!({}), P.to_string()),
            (json!({"namespace": {}}), format!("{P}.namespace")),
            (
                json!({"namespace": {"literals": ["a"], "selector": {}}}),
                format!("{P}.namespace"),
            ),
            (
                json!({"namespace": {"literals": []}}),
                format!("{P}.namespace.literals"),
            ),
            (
                json!({"namespace": {"literals": ["ok", "Team_A"]}}),
                format!("{P}.namespace.literals[1]"),
            ),
            (
                json!({"namespace": {"selector": {"matchExpressions": [{"key": "a", "operator": "NotIn"}]}}}),
                format!("{P}.namespace.selector.matchExpressions[0].values"),
            ),
            (
                json!({"namespace": ns, "includedGroups": []}),
                format!("{P}.includedGroups"),
            ),
            (
                json!({"namespace": ns, "includedGroups": ["deployments", "Deployments"]}),
                format!("{P}.includedGroups[1]"),
            ),
            (
                json!({"namespace": ns, "includedGroups": ["apps/deployments"]}),
                format!("{P}.includedGroups[0]"),
            ),
            (
                json!({"namespace": ns, "includedGroups": ["argoproj.io/1/rollouts"]}),
                format!("{P}.includedGroups[0]"),
            ),
            (
                json!({"namespace": ns, "workloadSelector": {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["b"]}]}}),
                format!("{P}.workloadSelector.matchExpressions[0].values"),
            ),
        ];
        for (value, field) in cases {
            let fields: Vec<_> = check(value.clone())
                .errors
                .into_iter()
                .map(|e| e.field)
                .collect();
            assert_eq!(fields, [field], "{value}");
        }
    }

    #[test]
    fn workload_groups_parse() {
        assert_eq!(
            WorkloadGroup::parse("cronjobs"),
            Ok(WorkloadGroup::CronJobs)
        );
        assert_eq!(
            WorkloadGroup::ScaledObjects.gvr(),
            ("keda.sh", "v1alpha1", "scaledobjects")
        );
        let custom = WorkloadGroup::parse("argoproj.io/v1alpha1/rollouts").unwrap();
        assert_eq!(custom.gvr(), ("argoproj.io", "v1alpha1", "rollouts"));
        for ok in ["v1", "v2beta1", "v10alpha3"] {
            assert!(is_api_version(ok), "{ok}");
        }
        for bad in ["1", "v", "v0", "v1gamma1", "v1beta", "v1beta01", "V1"] {
            assert!(!is_api_version(bad), "{bad}");
        }
        for bad in ["", "a/b", "Apps.io/v1/x", "a.io/v1/Rollouts", "a/v1/b/c"] {
            assert!(WorkloadGroup::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn namespace_and_workload_selection() {
        let p: Parameters = serde_json::from_value(json!({
            "namespace": {"selector": {"matchLabels": {"env": "dev"}}},
            "workloadSelector": {"matchLabels": {"app": "web"}}
        }))
        .unwrap();
        assert!(p.namespace.matches("x", &map(&[("env", "dev")])));
        assert!(!p.namespace.matches("x", &map(&[("env", "prod")])));
        assert!(p.selects_workload(&map(&[("app", "web")]), &map(&[])));
        assert!(!p.selects_workload(&map(&[("app", "db")]), &map(&[])));
        assert!(!p.selects_workload(
            &map(&[("app", "web")]),
            &map(&[(EXCLUDE_ANNOTATION, "true")])
        ));
        assert!(p.selects_workload(
            &map(&[("app", "web")]),
            &map(&[(EXCLUDE_ANNOTATION, "false")])
        ));
        let literal = NamespaceSelector {
            literals: Some(vec!["team-a".into()]),
            selector: None,
        };
        assert!(literal.matches("team-a", &map(&[])));
        assert!(!literal.matches("team-b", &map(&[])));
    }

    #[test]
    fn empty_namespace_selector_and_duplicates_warn() {
        let d = check(
            json!({"namespace": {"selector": {}}, "includedGroups": ["cronjobs", "cronjobs"]}),
        );
        assert!(d.errors.is_empty(), "{d:?}");
        let fields: Vec<_> = d.warnings.iter().map(|w| w.field.clone()).collect();
        assert_eq!(
            fields,
            [
                format!("{P}.includedGroups[1]"),
                format!("{P}.namespace.selector")
            ]
        );
    }
}
