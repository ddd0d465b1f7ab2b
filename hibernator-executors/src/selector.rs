//! Kubernetes-style label selectors (`matchLabels` + `matchExpressions`),
//! used for namespaces, workloads and NodePools, and the set-based
//! requirements also used by the EC2 tag selector.

use std::collections::BTreeMap;

use hibernator_core::diag::Diagnostics;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{check_label_key, check_label_value};

/// Operator of a set-based requirement, with Kubernetes semantics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum Operator {
    /// The key is present and its value is one of `values`.
    In,
    /// The key is absent, or its value is none of `values`.
    NotIn,
    /// The key is present (any value); `values` must be empty.
    Exists,
    /// The key is absent; `values` must be empty.
    DoesNotExist,
}

/// One set-based requirement, e.g. `{key: tier, operator: In, values: [web]}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Requirement {
    /// The label (or tag) key the requirement is about.
    pub key: String,
    /// How the key's value is compared with `values`.
    pub operator: Operator,
    /// Values for `In`/`NotIn` (non-empty); must be empty for `Exists`/`DoesNotExist`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

impl Requirement {
    /// Whether `labels` satisfy the requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.key);
        match self.operator {
            Operator::In => value.is_some_and(|v| self.values.contains(v)),
            Operator::NotIn => value.is_none_or(|v| !self.values.contains(v)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
        }
    }

    /// Checks the operator/values combination; `field` is the requirement's path.
    /// Key and value syntax is checked by the caller (label or tag rules).
    pub(crate) fn validate_shape(&self, field: &str, d: &mut Diagnostics) {
        if self.key.is_empty() {
            d.error(format!("{field}.key"), "must not be empty");
        }
        match self.operator {
            Operator::In | Operator::NotIn if self.values.is_empty() => d.error(
                format!("{field}.values"),
                format!("operator {:?} needs at least one value", self.operator),
            ),
            Operator::Exists | Operator::DoesNotExist if !self.values.is_empty() => d.error(
                format!("{field}.values"),
                format!("operator {:?} takes no values; remove them", self.operator),
            ),
            _ => {}
        }
    }
}

/// Whether every `(key, value)` of `required` is present in `labels` with the same value.
pub fn exact_match(required: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    required.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// A Kubernetes label selector. An empty selector matches everything; all
/// `matchLabels` entries and all `matchExpressions` must hold (logical AND).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelector {
    /// Labels that must be present with exactly these values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
    /// Set-based requirements (`In`, `NotIn`, `Exists`, `DoesNotExist`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_expressions: Vec<Requirement>,
}

impl LabelSelector {
    /// Whether `labels` are selected, with Kubernetes semantics.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        exact_match(&self.match_labels, labels)
            && self.match_expressions.iter().all(|r| r.matches(labels))
    }

    /// True when the selector has no requirement at all (matches everything).
    pub fn is_empty(&self) -> bool {
        self.match_labels.is_empty() && self.match_expressions.is_empty()
    }

    /// Checks label keys, values and operator/values combinations; `field`
    /// is the selector's path.
    pub fn validate(&self, field: &str, d: &mut Diagnostics) {
        for (key, value) in &self.match_labels {
            let path = format!("{field}.matchLabels.{key}");
            if let Err(e) = check_label_key(key) {
                d.error(path.clone(), e);
            }
            if let Err(e) = check_label_value(value) {
                d.error(path, e);
            }
        }
        for (i, req) in self.match_expressions.iter().enumerate() {
            let path = format!("{field}.matchExpressions[{i}]");
            req.validate_shape(&path, d);
            if !req.key.is_empty()
                && let Err(e) = check_label_key(&req.key)
            {
                d.error(format!("{path}.key"), e);
            }
            for (j, value) in req.values.iter().enumerate() {
                if let Err(e) = check_label_value(value) {
                    d.error(format!("{path}.values[{j}]"), e);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn req(key: &str, operator: Operator, values: &[&str]) -> Requirement {
        Requirement {
            key: key.into(),
            operator,
            values: values.iter().map(|v| v.to_string()).collect(),
        }
    }

    fn selector(json: serde_json::Value) -> LabelSelector {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn operators_follow_kubernetes_semantics() {
        let l = labels(&[("tier", "web"), ("env", "dev")]);
        assert!(req("tier", Operator::In, &["web", "api"]).matches(&l));
        assert!(!req("tier", Operator::In, &["api"]).matches(&l));
        assert!(!req("missing", Operator::In, &["web"]).matches(&l));
        assert!(req("tier", Operator::NotIn, &["api"]).matches(&l));
        assert!(!req("tier", Operator::NotIn, &["web"]).matches(&l));
        assert!(req("missing", Operator::NotIn, &["web"]).matches(&l));
        assert!(req("env", Operator::Exists, &[]).matches(&l));
        assert!(!req("missing", Operator::Exists, &[]).matches(&l));
        assert!(req("missing", Operator::DoesNotExist, &[]).matches(&l));
        assert!(!req("env", Operator::DoesNotExist, &[]).matches(&l));
    }

    #[test]
    fn selector_ands_labels_and_expressions() {
        let s = selector(serde_json::json!({
            "matchLabels": {"env": "dev"},
            "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["db"]}]
        }));
        assert!(s.matches(&labels(&[("env", "dev"), ("tier", "web")])));
        assert!(s.matches(&labels(&[("env", "dev")])));
        assert!(!s.matches(&labels(&[("env", "dev"), ("tier", "db")])));
        assert!(!s.matches(&labels(&[("env", "prod"), ("tier", "web")])));
        assert!(LabelSelector::default().matches(&labels(&[])));
        assert!(LabelSelector::default().is_empty());
    }

    #[test]
    fn validation_names_the_field() {
        let s = selector(serde_json::json!({
            "matchLabels": {"bad key!": "v", "ok": "bad value!"},
            "matchExpressions": [
                {"key": "a", "operator": "In", "values": []},
                {"key": "b", "operator": "Exists", "values": ["x"]},
                {"key": "c", "operator": "NotIn", "values": ["ok", "-bad"]},
                {"key": "", "operator": "Exists"}
            ]
        }));
        let mut d = Diagnostics::new();
        s.validate("sel", &mut d);
        let fields: Vec<_> = d.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "sel.matchLabels.bad key!",
                "sel.matchLabels.ok",
                "sel.matchExpressions[0].values",
                "sel.matchExpressions[1].values",
                "sel.matchExpressions[2].values[1]",
                "sel.matchExpressions[3].key",
            ]
        );
    }

    #[test]
    fn unknown_operator_is_a_parse_error() {
        let r: Result<LabelSelector, _> = serde_json::from_value(serde_json::json!({
            "matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]
        }));
        assert!(r.is_err());
    }

    fn label_map() -> impl Strategy<Value = BTreeMap<String, String>> {
        proptest::collection::btree_map("[a-e]", "[x-z]", 0..5)
    }

    proptest! {
        #[test]
        fn any_subset_of_own_labels_matches(l in label_map(), keep in any::<u8>()) {
            let match_labels: BTreeMap<_, _> = l
                .iter()
                .enumerate()
                .filter(|(i, _)| keep & (1 << (i % 8)) != 0)
                .map(|(_, (k, v))| (k.clone(), v.clone()))
                .collect();
            let s = LabelSelector { match_labels, match_expressions: vec![] };
            prop_assert!(s.matches(&l));
        }

        #[test]
        fn in_and_notin_are_complements(l in label_map(), key in "[a-e]", values in proptest::collection::vec("[x-z]", 1..3)) {
            let values: Vec<&str> = values.iter().map(String::as_str).collect();
            let inn = req(&key, Operator::In, &values).matches(&l);
            let notin = req(&key, Operator::NotIn, &values).matches(&l);
            prop_assert_ne!(inn, notin);
            prop_assert_eq!(inn, l.get(&key).is_some_and(|v| values.contains(&v.as_str())));
        }

        #[test]
        fn exists_and_does_not_exist_are_complements(l in label_map(), key in "[a-e]") {
            let exists = req(&key, Operator::Exists, &[]).matches(&l);
            prop_assert_ne!(exists, req(&key, Operator::DoesNotExist, &[]).matches(&l));
            prop_assert_eq!(exists, l.contains_key(&key));
        }

        #[test]
        fn selector_is_conjunction(l in label_map(), key in "[a-e]", value in "[x-z]") {
            let a = req(&key, Operator::Exists, &[]);
            let b = req(&key, Operator::NotIn, &[value.as_str()]);
            let both = LabelSelector { match_labels: BTreeMap::new(), match_expressions: vec![a.clone(), b.clone()] };
            prop_assert_eq!(both.matches(&l), a.matches(&l) && b.matches(&l));
        }
    }
}
