//! Parameters of the `eks` executor: scale EKS managed node groups to zero
//! (min 0, desired 0, max kept) and restore their exact sizes on wake-up.

use hibernator_core::diag::Diagnostics;
use hibernator_core::params::ValidateParameters;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{AwaitCompletion, warn_duplicates};

/// Executor type name.
pub const TYPE: &str = "eks";

/// Parameters of an `eks` target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Parameters {
    /// Name of the EKS cluster (required).
    pub cluster_name: String,
    /// Managed node groups to hibernate; empty (the default) means every
    /// managed node group of the cluster.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub node_groups: Vec<String>,
    /// Wait until node group updates finish (`ACTIVE` with the new sizes).
    #[serde(default)]
    pub await_completion: AwaitCompletion,
}

impl Parameters {
    /// Whether the node group `name` is covered by this target.
    pub fn includes_node_group(&self, name: &str) -> bool {
        self.node_groups.is_empty() || self.node_groups.iter().any(|n| n == name)
    }
}

/// Checks an EKS cluster name: 1–100 characters, letters, digits, `-` and
/// `_`, starting with a letter or digit.
pub fn check_cluster_name(name: &str) -> Result<(), String> {
    check_eks_name(name, 100)
}

/// Checks a managed node group name: 1–63 characters, letters, digits, `-`
/// and `_`, starting with a letter or digit.
pub fn check_node_group_name(name: &str) -> Result<(), String> {
    check_eks_name(name, 63)
}

fn check_eks_name(name: &str, max: usize) -> Result<(), String> {
    if name.is_empty() {
        Err("must not be empty".to_string())
    } else if name.len() > max {
        Err(format!("{name:?} is longer than {max} characters"))
    } else if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        Err(format!("{name:?} must start with a letter or digit"))
    } else if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        Err(format!(
            "{name:?} may only contain letters, digits, '-' and '_'"
        ))
    } else {
        Ok(())
    }
}

impl ValidateParameters for Parameters {
    fn validate(&self, field: &str, d: &mut Diagnostics) {
        if let Err(e) = check_cluster_name(&self.cluster_name) {
            d.error(format!("{field}.clusterName"), e);
        }
        let path = format!("{field}.nodeGroups");
        for (i, name) in self.node_groups.iter().enumerate() {
            if let Err(e) = check_node_group_name(name) {
                d.error(format!("{path}[{i}]"), e);
            }
        }
        warn_duplicates(&self.node_groups, &path, d);
        self.await_completion
            .validate(&format!("{field}.awaitCompletion"), d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hibernator_core::params::{ParameterCheck, TypedParameters};
    use serde_json::json;

    const P: &str = "spec.targets[2].parameters";

    fn check(v: serde_json::Value) -> Diagnostics {
        TypedParameters::<Parameters>::new(TYPE).check(Some(&v), P)
    }

    #[test]
    fn valid_examples_parse() {
        for v in [
            json!({"clusterName": "dev"}),
            json!({"clusterName": "Dev_Cluster-1", "nodeGroups": ["ng-1", "ng_2"],
                   "awaitCompletion": {"enabled": false}}),
        ] {
            let d = check(v.clone());
            assert!(d.errors.is_empty() && d.warnings.is_empty(), "{v}: {d:?}");
        }
    }

    #[test]
    fn rejections_name_the_field() {
        let cases = [
            (json!({}), P.to_string()),
            (json!({"clusterName": ""}), format!("{P}.clusterName")),
            (json!({"clusterName": "-dev"}), format!("{P}.clusterName")),
            (json!({"clusterName": "a.b"}), format!("{P}.clusterName")),
            (
                json!({"clusterName": "x".repeat(101)}),
                format!("{P}.clusterName"),
            ),
            (
                json!({"clusterName": "dev", "nodeGroups": ["ok", "bad name"]}),
                format!("{P}.nodeGroups[1]"),
            ),
            (
                json!({"clusterName": "dev", "nodeGroups": ["x".repeat(64)]}),
                format!("{P}.nodeGroups[0]"),
            ),
            (
                json!({"clusterName": "dev", "nodeGroups": "ng-1"}),
                format!("{P}.nodeGroups"),
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
    fn missing_cluster_name_is_reported() {
        let d = check(json!({"nodeGroups": []}));
        assert!(d.errors[0].message.contains("clusterName"), "{d:?}");
    }

    #[test]
    fn empty_node_groups_means_all() {
        let all: Parameters = serde_json::from_value(json!({"clusterName": "dev"})).unwrap();
        assert!(all.includes_node_group("anything"));
        let some: Parameters =
            serde_json::from_value(json!({"clusterName": "dev", "nodeGroups": ["a"]})).unwrap();
        assert!(some.includes_node_group("a"));
        assert!(!some.includes_node_group("b"));
    }

    #[test]
    fn duplicate_node_groups_warn() {
        let d = check(json!({"clusterName": "dev", "nodeGroups": ["a", "a"]}));
        assert!(d.errors.is_empty());
        assert_eq!(d.warnings[0].field, format!("{P}.nodeGroups[1]"));
    }
}
