//! Selecting resources the way Kubernetes does, for executors' parameters:
//! label selectors (`matchLabels` + `matchExpressions`) with Kubernetes
//! semantics and field-naming validation, the "a name list or a selector"
//! pair ([`NamesOrSelector`]), and the name rules of Kubernetes objects and
//! labels. The built-in executors use exactly these; so can yours.
//!
//! ```
//! use hibernator_core::diag::Diagnostics;
//! use hibernator_core::selector::{LabelSelector, NamesOrSelector, check_dns_subdomain};
//!
//! let selector: LabelSelector =
//!     serde_json::from_value(serde_json::json!({"matchLabels": {"env": "dev"}})).unwrap();
//! let pair = NamesOrSelector {
//!     names: None,
//!     names_key: "applications",
//!     empty_names: "list at least one application",
//!     check_name: check_dns_subdomain,
//!     selector: Some(&selector),
//!     selector_key: "selector",
//!     empty_selector: "an empty selector selects every application",
//! };
//! let mut d = Diagnostics::new();
//! pair.validate("spec.targets[0].parameters", &mut d);
//! assert!(d.is_valid());
//! ```

use std::collections::{BTreeMap, BTreeSet};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::diag::Diagnostics;

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
    pub fn validate_shape(&self, field: &str, d: &mut Diagnostics) {
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

/// Warns about repeated entries of a list (`field` is the list's path).
pub fn warn_duplicates(items: &[String], field: &str, d: &mut Diagnostics) {
    let mut seen = BTreeSet::new();
    for (i, item) in items.iter().enumerate() {
        if !seen.insert(item.as_str()) {
            d.warn(
                format!("{field}[{i}]"),
                format!("{item:?} is listed more than once"),
            );
        }
    }
}

fn is_lower_alnum(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// Checks an RFC 1123 DNS label (Kubernetes namespace names): at most 63
/// characters, lowercase letters, digits and `-`, starting and ending with a
/// letter or digit.
pub fn check_dns_label(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".to_string());
    }
    if name.len() > 63 {
        return Err(format!("{name:?} is longer than 63 characters"));
    }
    if !name.chars().all(|c| is_lower_alnum(c) || c == '-') {
        return Err(format!(
            "{name:?} may only contain lowercase letters, digits and '-'"
        ));
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err(format!(
            "{name:?} must start and end with a letter or digit"
        ));
    }
    Ok(())
}

/// Checks an RFC 1123 DNS subdomain (most Kubernetes object names): at most
/// 253 characters, dot-separated DNS labels.
pub fn check_dns_subdomain(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".to_string());
    }
    if name.len() > 253 {
        return Err(format!("{name:?} is longer than 253 characters"));
    }
    for part in name.split('.') {
        check_dns_label(part).map_err(|_| {
            format!(
                "{name:?} must be lowercase letters, digits, '-' and '.', \
                 each dot-separated part starting and ending with a letter or digit"
            )
        })?;
    }
    Ok(())
}

fn is_label_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// Checks a Kubernetes label key (`[prefix/]name`): the optional prefix is a
/// DNS subdomain, the name at most 63 characters of letters, digits, `-`,
/// `_` and `.`, starting and ending with a letter or digit.
pub fn check_label_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        check_dns_subdomain(prefix).map_err(|e| format!("label key prefix: {e}"))?;
    }
    if !is_label_name(name) {
        return Err(format!(
            "label key {key:?}: the name part must be 1-63 letters, digits, '-', '_' or '.', \
             starting and ending with a letter or digit"
        ));
    }
    Ok(())
}

/// Checks a Kubernetes label value: empty, or a valid label name part.
pub fn check_label_value(value: &str) -> Result<(), String> {
    if value.is_empty() || is_label_name(value) {
        Ok(())
    } else {
        Err(format!(
            "label value {value:?} must be at most 63 letters, digits, '-', '_' or '.', \
             starting and ending with a letter or digit"
        ))
    }
}

/// A parameter pair where exactly one of a name list and a label selector
/// must be set (karpenter `nodePools`/`nodeSelector`, workloadscaler
/// `namespace.literals`/`namespace.selector`), with the messages of its
/// checks: both or neither set, an empty name list, invalid or repeated
/// names (a warning), an empty selector (a warning: it selects everything),
/// and the selector's own checks.
pub struct NamesOrSelector<'a> {
    /// The names, if set.
    pub names: Option<&'a [String]>,
    /// Field name of the names (`nodePools`).
    pub names_key: &'a str,
    /// Error for an empty name list.
    pub empty_names: &'a str,
    /// Check of one name.
    pub check_name: fn(&str) -> Result<(), String>,
    /// The selector, if set.
    pub selector: Option<&'a LabelSelector>,
    /// Field name of the selector (`nodeSelector`).
    pub selector_key: &'a str,
    /// Warning for an empty selector (it selects everything).
    pub empty_selector: &'a str,
}

impl NamesOrSelector<'_> {
    /// Checks the pair under `field`.
    pub fn validate(&self, field: &str, d: &mut Diagnostics) {
        if self.names.is_some() == self.selector.is_some() {
            d.error(
                field,
                format!(
                    "set exactly one of {} or {}",
                    self.names_key, self.selector_key
                ),
            );
        }
        if let Some(names) = self.names {
            let path = format!("{field}.{}", self.names_key);
            if names.is_empty() {
                d.error(path.clone(), self.empty_names);
            }
            for (i, name) in names.iter().enumerate() {
                if let Err(e) = (self.check_name)(name) {
                    d.error(format!("{path}[{i}]"), e);
                }
            }
            warn_duplicates(names, &path, d);
        }
        if let Some(selector) = self.selector {
            let path = format!("{field}.{}", self.selector_key);
            if selector.is_empty() {
                d.warn(path.clone(), self.empty_selector);
            }
            selector.validate(&path, d);
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

    #[test]
    fn dns_names() {
        assert!(check_dns_label("team-a1").is_ok());
        for bad in ["", "-a", "a-", "A", "a_b", &"a".repeat(64)] {
            assert!(check_dns_label(bad).is_err(), "{bad}");
        }
        assert!(check_dns_subdomain("default.pool-1").is_ok());
        assert!(check_dns_subdomain("a..b").is_err());
        assert!(check_dns_subdomain(&"a".repeat(254)).is_err());
    }

    #[test]
    fn label_keys_and_values() {
        for ok in ["app", "app.kubernetes.io/name", "a_b.c-d", "x/Y"] {
            assert!(check_label_key(ok).is_ok(), "{ok}");
        }
        for bad in ["", "/app", "-app", "Bad_Prefix/app", "a/b/c", "app-"] {
            assert!(check_label_key(bad).is_err(), "{bad}");
        }
        assert!(check_label_value("").is_ok());
        assert!(check_label_value("v1.2_x").is_ok());
        assert!(check_label_value("has space").is_err());
        assert!(check_label_value(&"v".repeat(64)).is_err());
    }

    #[test]
    fn duplicates_warn_with_index() {
        let mut d = Diagnostics::new();
        warn_duplicates(&["a".into(), "b".into(), "a".into()], "f", &mut d);
        assert_eq!(d.warnings.len(), 1);
        assert_eq!(d.warnings[0].field, "f[2]");
    }
}
