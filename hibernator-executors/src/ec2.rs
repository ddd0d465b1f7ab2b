//! Parameters of the `ec2` executor: stop (or hibernate) selected EC2
//! instances and start exactly those again on wake-up.
//!
//! Instances managed by an Auto Scaling group (`aws:autoscaling:groupName`
//! tag) or by Karpenter (`karpenter.sh/nodepool` tag) are always excluded,
//! even when listed by id: stopping them makes their manager replace them.
//! Use the `eks` or `karpenter` executor for those. See [`is_managed_instance`].

use std::collections::BTreeMap;

use hibernator_core::diag::Diagnostics;
use hibernator_core::params::ValidateParameters;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{AwaitCompletion, check_aws_tag_key, check_aws_tag_value, warn_duplicates};
use crate::selector::{Requirement, exact_match};

/// Executor type name.
pub const TYPE: &str = "ec2";

/// Tag AWS puts on instances launched by an Auto Scaling group.
pub const ASG_TAG: &str = "aws:autoscaling:groupName";
/// Tag Karpenter puts on the instances it launches.
pub const KARPENTER_TAG: &str = "karpenter.sh/nodepool";
/// Tag used by Karpenter before v1 (`Provisioner` API).
pub const KARPENTER_LEGACY_TAG: &str = "karpenter.sh/provisioner-name";

/// Parameters of an `ec2` target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Parameters {
    /// Which instances the target covers.
    pub selector: Selector,
    /// Hibernate (suspend to disk) instead of stop, for instances launched
    /// with hibernation enabled (default `false`). Instances that do not
    /// support it are stopped and the executor reports which.
    #[serde(default)]
    pub hibernate: bool,
    /// Wait until instances are `stopped` (shutdown) or `running` (wake-up).
    #[serde(default)]
    pub await_completion: AwaitCompletion,
}

/// Exactly one of `instanceIds`, `tags` or `tagSelector`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Selector {
    /// Explicit instance ids (`i-` followed by 8 or 17 hex digits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_ids: Option<Vec<String>>,
    /// Instances carrying all of these tags with exactly these values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
    /// Instances matched by tag requirements (label-selector semantics).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag_selector: Option<TagSelector>,
}

/// Tag-based selection: `matchTags` (exact) AND every `matchExpressions`
/// requirement, with Kubernetes label-selector semantics applied to tags.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TagSelector {
    /// Tags that must be present with exactly these values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_tags: BTreeMap<String, String>,
    /// Requirements on tags: `In`, `NotIn`, `Exists`, `DoesNotExist`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_expressions: Vec<Requirement>,
}

impl TagSelector {
    /// Whether an instance with `tags` is selected.
    pub fn matches(&self, tags: &BTreeMap<String, String>) -> bool {
        exact_match(&self.match_tags, tags)
            && self.match_expressions.iter().all(|r| r.matches(tags))
    }

    fn validate(&self, field: &str, d: &mut Diagnostics) {
        if self.match_tags.is_empty() && self.match_expressions.is_empty() {
            d.error(
                field,
                "an empty tagSelector would select every instance; add matchTags or matchExpressions",
            );
        }
        validate_tag_map(&self.match_tags, &format!("{field}.matchTags"), d);
        for (i, req) in self.match_expressions.iter().enumerate() {
            let path = format!("{field}.matchExpressions[{i}]");
            req.validate_shape(&path, d);
            if !req.key.is_empty()
                && let Err(e) = check_aws_tag_key(&req.key)
            {
                d.error(format!("{path}.key"), e);
            }
            for (j, value) in req.values.iter().enumerate() {
                if let Err(e) = check_aws_tag_value(value) {
                    d.error(format!("{path}.values[{j}]"), e);
                }
            }
        }
    }
}

fn validate_tag_map(tags: &BTreeMap<String, String>, field: &str, d: &mut Diagnostics) {
    for (key, value) in tags {
        let path = format!("{field}.{key}");
        if let Err(e) = check_aws_tag_key(key) {
            d.error(path.clone(), e);
        }
        if let Err(e) = check_aws_tag_value(value) {
            d.error(path, e);
        }
    }
}

impl Selector {
    /// Whether the instance `instance_id` with `tags` is selected. This is
    /// selection only; [`Parameters::selects`] also excludes managed instances.
    pub fn matches(&self, instance_id: &str, tags: &BTreeMap<String, String>) -> bool {
        if let Some(ids) = &self.instance_ids {
            ids.iter().any(|id| id == instance_id)
        } else if let Some(required) = &self.tags {
            exact_match(required, tags)
        } else if let Some(selector) = &self.tag_selector {
            selector.matches(tags)
        } else {
            false
        }
    }

    fn validate(&self, field: &str, d: &mut Diagnostics) {
        let given = [
            self.instance_ids.is_some(),
            self.tags.is_some(),
            self.tag_selector.is_some(),
        ]
        .iter()
        .filter(|g| **g)
        .count();
        if given != 1 {
            d.error(
                field,
                format!("set exactly one of instanceIds, tags or tagSelector ({given} given)"),
            );
        }
        if let Some(ids) = &self.instance_ids {
            let path = format!("{field}.instanceIds");
            if ids.is_empty() {
                d.error(path.clone(), "must list at least one instance id");
            }
            for (i, id) in ids.iter().enumerate() {
                if !is_instance_id(id) {
                    d.error(
                        format!("{path}[{i}]"),
                        format!("{id:?} is not an instance id (i- followed by 8 or 17 hex digits)"),
                    );
                }
            }
            warn_duplicates(ids, &path, d);
        }
        if let Some(tags) = &self.tags {
            let path = format!("{field}.tags");
            if tags.is_empty() {
                d.error(
                    path.clone(),
                    "an empty tag map would select every instance; name at least one tag",
                );
            }
            validate_tag_map(tags, &path, d);
        }
        if let Some(selector) = &self.tag_selector {
            selector.validate(&format!("{field}.tagSelector"), d);
        }
    }
}

/// Whether `id` looks like an EC2 instance id: `i-` and 8 or 17 lowercase hex digits.
pub fn is_instance_id(id: &str) -> bool {
    id.strip_prefix("i-").is_some_and(|hex| {
        matches!(hex.len(), 8 | 17)
            && hex
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    })
}

/// Why an instance must not be touched by the `ec2` executor, if it is
/// managed by an Auto Scaling group or by Karpenter; `None` when it is free.
pub fn is_managed_instance(tags: &BTreeMap<String, String>) -> Option<&'static str> {
    if tags.contains_key(ASG_TAG) {
        Some(
            "managed by an Auto Scaling group (aws:autoscaling:groupName tag): \
             the group would replace a stopped instance; hibernate the group or node group instead",
        )
    } else if tags.contains_key(KARPENTER_TAG) || tags.contains_key(KARPENTER_LEGACY_TAG) {
        Some(
            "managed by Karpenter (karpenter.sh/nodepool tag): \
             use the karpenter executor for its NodePool instead",
        )
    } else {
        None
    }
}

impl Parameters {
    /// Whether the executor acts on this instance: selected and not managed.
    pub fn selects(&self, instance_id: &str, tags: &BTreeMap<String, String>) -> bool {
        self.selector.matches(instance_id, tags) && is_managed_instance(tags).is_none()
    }
}

impl ValidateParameters for Parameters {
    fn validate(&self, field: &str, d: &mut Diagnostics) {
        self.selector.validate(&format!("{field}.selector"), d);
        self.await_completion
            .validate(&format!("{field}.awaitCompletion"), d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hibernator_core::params::{ParameterCheck, TypedParameters};
    use serde_json::json;

    const P: &str = "spec.targets[0].parameters";

    fn check(v: serde_json::Value) -> Diagnostics {
        TypedParameters::<Parameters>::new(TYPE).check(Some(&v), P)
    }

    fn error_fields(v: serde_json::Value) -> Vec<String> {
        check(v).errors.into_iter().map(|e| e.field).collect()
    }

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn valid_examples_parse() {
        for v in [
            json!({"selector": {"instanceIds": ["i-0123456789abcdef0", "i-12345678"]}}),
            json!({"selector": {"tags": {"env": "dev"}}, "hibernate": true}),
            json!({"selector": {"tagSelector": {
                "matchTags": {"env": "dev"},
                "matchExpressions": [{"key": "team", "operator": "In", "values": ["a", "b"]},
                                     {"key": "keep-awake", "operator": "DoesNotExist"}]}},
                   "awaitCompletion": {"enabled": true, "timeout": "10m"}}),
        ] {
            let d = check(v.clone());
            assert!(d.errors.is_empty() && d.warnings.is_empty(), "{v}: {d:?}");
        }
        let p: Parameters =
            serde_json::from_value(json!({"selector": {"tags": {"env": "dev"}}})).unwrap();
        assert!(!p.hibernate);
        assert_eq!(p.await_completion, AwaitCompletion::default());
    }

    #[test]
    fn rejections_name_the_field() {
        let cases = [
            (json!({}), P.to_string()),
            (json!({"selector": {}}), format!("{P}.selector")),
            (
                json!({"selector": {"instanceIds": ["i-12345678"], "tags": {"a": "b"}}}),
                format!("{P}.selector"),
            ),
            (
                json!({"selector": {"instanceIds": []}}),
                format!("{P}.selector.instanceIds"),
            ),
            (
                json!({"selector": {"instanceIds": ["i-0123456789abcdef0", "i-XYZ"]}}),
                format!("{P}.selector.instanceIds[1]"),
            ),
            (
                json!({"selector": {"tags": {}}}),
                format!("{P}.selector.tags"),
            ),
            (
                json!({"selector": {"tags": {"": "x"}}}),
                format!("{P}.selector.tags."),
            ),
            (
                json!({"selector": {"tagSelector": {}}}),
                format!("{P}.selector.tagSelector"),
            ),
            (
                json!({"selector": {"tagSelector": {"matchExpressions": [
                    {"key": "a", "operator": "Exists"},
                    {"key": "b", "operator": "In", "values": []}]}}}),
                format!("{P}.selector.tagSelector.matchExpressions[1].values"),
            ),
            (
                json!({"selector": {"tagSelector": {"matchExpressions": [
                    {"key": "a", "operator": "DoesNotExist", "values": ["x"]}]}}}),
                format!("{P}.selector.tagSelector.matchExpressions[0].values"),
            ),
            (
                json!({"selector": {"tagSelector": {"matchExpressions": [
                    {"key": "a", "operator": "Maybe"}]}}}),
                format!("{P}.selector.tagSelector.matchExpressions[0].operator"),
            ),
            (
                json!({"selector": {"tags": {"a": "b"}}, "hibernate": "yes"}),
                format!("{P}.hibernate"),
            ),
            (
                json!({"selector": {"tags": {"a": "b"}}, "awaitCompletion": {"timeout": "30"}}),
                format!("{P}.awaitCompletion.timeout"),
            ),
        ];
        for (value, field) in cases {
            assert_eq!(error_fields(value.clone()), [field], "{value}");
        }
    }

    #[test]
    fn duplicates_and_unknown_fields_warn() {
        let d = check(
            json!({"selector": {"instanceIds": ["i-12345678", "i-12345678"]}, "hybernate": true}),
        );
        assert!(d.errors.is_empty());
        let fields: Vec<_> = d.warnings.iter().map(|w| w.field.as_str()).collect();
        assert!(fields.contains(&format!("{P}.selector.instanceIds[1]").as_str()));
        assert!(fields.contains(&format!("{P}.hybernate").as_str()));
    }

    #[test]
    fn tag_selector_matches() {
        let s: TagSelector = serde_json::from_value(json!({
            "matchTags": {"env": "dev"},
            "matchExpressions": [{"key": "team", "operator": "NotIn", "values": ["core"]}]
        }))
        .unwrap();
        assert!(s.matches(&tags(&[("env", "dev"), ("team", "web")])));
        assert!(s.matches(&tags(&[("env", "dev")])));
        assert!(!s.matches(&tags(&[("env", "dev"), ("team", "core")])));
        assert!(!s.matches(&tags(&[("env", "prod")])));
    }

    #[test]
    fn selector_forms_match() {
        let by_id = Selector {
            instance_ids: Some(vec!["i-12345678".into()]),
            ..Selector::default()
        };
        assert!(by_id.matches("i-12345678", &tags(&[])));
        assert!(!by_id.matches("i-87654321", &tags(&[])));
        let by_tags = Selector {
            tags: Some(tags(&[("env", "dev"), ("app", "x")])),
            ..Selector::default()
        };
        assert!(by_tags.matches("i-1", &tags(&[("env", "dev"), ("app", "x"), ("o", "p")])));
        assert!(!by_tags.matches("i-1", &tags(&[("env", "dev")])));
        assert!(!by_tags.matches("i-1", &tags(&[("env", "dev"), ("app", "y")])));
        assert!(!Selector::default().matches("i-1", &tags(&[])));
    }

    #[test]
    fn managed_instances_are_excluded() {
        assert!(is_managed_instance(&tags(&[("env", "dev")])).is_none());
        let asg = tags(&[(ASG_TAG, "web-asg"), ("env", "dev")]);
        assert!(is_managed_instance(&asg).unwrap().contains("Auto Scaling"));
        let kp = tags(&[(KARPENTER_TAG, "default")]);
        assert!(is_managed_instance(&kp).unwrap().contains("Karpenter"));
        let p: Parameters =
            serde_json::from_value(json!({"selector": {"instanceIds": ["i-12345678"]}})).unwrap();
        assert!(p.selects("i-12345678", &tags(&[])));
        assert!(!p.selects("i-12345678", &asg));
        assert!(!p.selects("i-12345678", &kp));
    }

    #[test]
    fn instance_id_shape() {
        assert!(is_instance_id("i-0123456789abcdef0"));
        assert!(is_instance_id("i-deadbeef"));
        for bad in [
            "i-",
            "i-DEADBEEF",
            "0123456789abcdef0",
            "i-123",
            "i-0123456789abcdefg",
        ] {
            assert!(!is_instance_id(bad), "{bad}");
        }
    }
}
