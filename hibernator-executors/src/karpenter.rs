//! Parameters of the `karpenter` executor: stop Karpenter NodePools from
//! provisioning (CPU limit 0), remove their nodes, and restore the exact
//! `spec.limits` on wake-up.

use std::collections::BTreeMap;

use hibernator_core::diag::Diagnostics;
use hibernator_core::params::ValidateParameters;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{AwaitCompletion, NamesOrSelector, check_dns_subdomain};
use crate::selector::LabelSelector;

/// Executor type name.
pub const TYPE: &str = "karpenter";

/// Parameters of a `karpenter` target: exactly one of `nodePools` or `nodeSelector`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Parameters {
    /// NodePools by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_pools: Option<Vec<String>>,
    /// NodePools whose own labels match this selector (Kubernetes semantics;
    /// an empty selector matches every NodePool).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<LabelSelector>,
    /// Wait until the pools' NodeClaims are gone (shutdown) or the pools are
    /// `Ready` again (wake-up).
    #[serde(default)]
    pub await_completion: AwaitCompletion,
}

impl Parameters {
    /// Whether the NodePool `name` with `labels` is covered by this target.
    pub fn selects(&self, name: &str, labels: &BTreeMap<String, String>) -> bool {
        match (&self.node_pools, &self.node_selector) {
            (Some(pools), None) => pools.iter().any(|p| p == name),
            (None, Some(selector)) => selector.matches(labels),
            _ => false,
        }
    }
}

impl ValidateParameters for Parameters {
    fn validate(&self, field: &str, d: &mut Diagnostics) {
        NamesOrSelector {
            names: self.node_pools.as_deref(),
            names_key: "nodePools",
            empty_names: "must list at least one NodePool",
            check_name: check_dns_subdomain,
            selector: self.node_selector.as_ref(),
            selector_key: "nodeSelector",
            empty_selector: "an empty nodeSelector selects every NodePool in the cluster",
        }
        .validate(field, d);
        self.await_completion
            .validate(&format!("{field}.awaitCompletion"), d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hibernator_core::params::{ParameterCheck, TypedParameters};
    use serde_json::json;

    const P: &str = "spec.targets[3].parameters";

    fn check(v: serde_json::Value) -> Diagnostics {
        TypedParameters::<Parameters>::new(TYPE).check(Some(&v), P)
    }

    #[test]
    fn valid_examples_parse() {
        for v in [
            json!({"nodePools": ["default", "gpu.spot"]}),
            json!({"nodeSelector": {"matchLabels": {"hibernator.dev/sleep": "true"},
                   "matchExpressions": [{"key": "team", "operator": "In", "values": ["a"]}]},
                   "awaitCompletion": {"timeout": "30m"}}),
        ] {
            let d = check(v.clone());
            assert!(d.errors.is_empty() && d.warnings.is_empty(), "{v}: {d:?}");
        }
    }

    #[test]
    fn rejections_name_the_field() {
        let cases = [
            (json!({}), P.to_string()),
            (
                json!({"nodePools": ["a"], "nodeSelector": {"matchLabels": {"a": "b"}}}),
                P.to_string(),
            ),
            (json!({"nodePools": []}), format!("{P}.nodePools")),
            (
                json!({"nodePools": ["ok", "Bad_Pool"]}),
                format!("{P}.nodePools[1]"),
            ),
            (
                json!({"nodeSelector": {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}}),
                format!("{P}.nodeSelector.matchExpressions[0].values"),
            ),
            (
                json!({"nodeSelector": {"matchLabels": {"a": "not valid"}}}),
                format!("{P}.nodeSelector.matchLabels.a"),
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
    fn empty_selector_warns() {
        let d = check(json!({"nodeSelector": {}}));
        assert!(d.errors.is_empty());
        assert_eq!(d.warnings[0].field, format!("{P}.nodeSelector"));
    }

    #[test]
    fn selects_by_name_or_labels() {
        let labels: BTreeMap<String, String> = [("env".to_string(), "dev".to_string())].into();
        let by_name: Parameters = serde_json::from_value(json!({"nodePools": ["a"]})).unwrap();
        assert!(by_name.selects("a", &BTreeMap::new()));
        assert!(!by_name.selects("b", &labels));
        let by_labels: Parameters =
            serde_json::from_value(json!({"nodeSelector": {"matchLabels": {"env": "dev"}}}))
                .unwrap();
        assert!(by_labels.selects("anything", &labels));
        assert!(!by_labels.selects("a", &BTreeMap::new()));
    }
}
