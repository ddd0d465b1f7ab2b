//! Parameters of the `rds` executor: stop RDS DB instances and Aurora
//! clusters (optionally after a snapshot) and start what was running again.

use std::collections::BTreeMap;
use std::time::Duration;

use hibernator_core::diag::Diagnostics;
use hibernator_core::params::ValidateParameters;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{
    AwaitCompletion, ParamsError, check_aws_tag_key, check_aws_tag_value, positive_duration,
    warn_duplicates,
};
use crate::selector::exact_match;

/// Executor type name.
pub const TYPE: &str = "rds";

/// Longest RDS snapshot identifier.
pub const MAX_SNAPSHOT_ID_LEN: usize = 255;

/// Timeout of the wake-up connectivity check when
/// `connectivityCheck.timeout` is not set: 1 minute.
pub const DEFAULT_CONNECTIVITY_TIMEOUT: Duration = Duration::from_secs(60);

/// Parameters of an `rds` target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Parameters {
    /// Which DB instances and Aurora clusters the target covers.
    pub selector: Selector,
    /// Take a manual snapshot of each resource before stopping it (default
    /// `false`); names come from [`snapshot_identifier`].
    #[serde(default)]
    pub snapshot_before_stop: bool,
    /// Wait until resources are `stopped` (shutdown) or `available`
    /// (wake-up).
    #[serde(default)]
    pub await_completion: AwaitCompletion,
    /// After a wake-up, also check that each endpoint accepts TCP
    /// connections from the runner (default: off).
    #[serde(default)]
    pub connectivity_check: ConnectivityCheck,
}

/// The wake-up check that each started database's endpoint accepts a TCP
/// connection *from the runner*, once RDS reports it `available`.
///
/// Off by default: a runner in a management cluster often has no network
/// path to databases in private subnets, and an `available` database must
/// not fail its wake-up for that. Turn it on where runners do reach the
/// databases and "done" should mean "clients can connect". It runs only
/// with `awaitCompletion.enabled`, after the wait for `available`, and is
/// bounded by its own `timeout`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectivityCheck {
    /// Check that each endpoint accepts a TCP connection before reporting
    /// the wake-up done (default `false`). A failed check fails the
    /// resource's wake-up (its restore data is kept for the next attempt).
    #[serde(default)]
    pub enabled: bool,
    /// Longest time to wait for the endpoints to accept connections once
    /// the resources are `available`, as a duration such as `30s` or `2m`
    /// (default `1m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

impl ConnectivityCheck {
    /// The timeout, or [`DEFAULT_CONNECTIVITY_TIMEOUT`] when not set.
    pub fn try_timeout(&self) -> Result<Duration, ParamsError> {
        match &self.timeout {
            None => Ok(DEFAULT_CONNECTIVITY_TIMEOUT),
            Some(text) => {
                positive_duration(text).map_err(|reason| ParamsError::InvalidConnectivityTimeout {
                    value: text.clone(),
                    reason,
                })
            }
        }
    }

    /// The timeout for validated parameters. An invalid value (which
    /// validation rejects) falls back to [`DEFAULT_CONNECTIVITY_TIMEOUT`].
    pub fn timeout(&self) -> Duration {
        self.try_timeout().unwrap_or(DEFAULT_CONNECTIVITY_TIMEOUT)
    }

    /// Checks the timeout and that the check can run; `field` is the path
    /// of the `connectivityCheck` object.
    fn validate(&self, field: &str, await_completion: &AwaitCompletion, d: &mut Diagnostics) {
        if let Err(ParamsError::InvalidConnectivityTimeout { reason, .. }) = self.try_timeout() {
            d.error(format!("{field}.timeout"), reason);
        }
        if !self.enabled && self.timeout.is_some() {
            d.warn(
                format!("{field}.timeout"),
                "timeout has no effect while connectivityCheck.enabled is false",
            );
        }
        if self.enabled && !await_completion.enabled {
            d.warn(
                format!("{field}.enabled"),
                "the connectivity check runs once the databases are available, which needs \
                 awaitCompletion.enabled: true; without it nothing is checked",
            );
        }
    }
}

/// Which resources to act on. At least one of `instanceIds`, `clusterIds`,
/// `tags` or `includeAll`; `includeAll` excludes the other three.
/// `excludeTags` always applies.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Selector {
    /// DB instance identifiers (non-Aurora instances).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instance_ids: Vec<String>,
    /// Aurora DB cluster identifiers (the cluster is stopped, not its members).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cluster_ids: Vec<String>,
    /// Resources carrying all of these tags with exactly these values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// Resources carrying any of these tags with exactly these values are skipped.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub exclude_tags: BTreeMap<String, String>,
    /// Every DB instance and cluster of the account and region (default `false`).
    #[serde(default)]
    pub include_all: bool,
}

/// The kind of an RDS resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    /// A DB instance.
    Instance,
    /// An Aurora DB cluster.
    Cluster,
}

impl Selector {
    /// Whether a resource with identifier `id` (instance or cluster) and
    /// `tags` is selected: excluded if any `excludeTags` entry matches, else
    /// selected by `includeAll`, by id in either list, or by `tags`.
    pub fn matches(&self, id: &str, tags: &BTreeMap<String, String>) -> bool {
        self.matches_ids(id, self.instance_ids.iter().chain(&self.cluster_ids), tags)
    }

    /// Like [`matches`](Self::matches) but only looks up `id` in the list of
    /// its own kind (`instanceIds` or `clusterIds`).
    pub fn matches_kind(
        &self,
        kind: ResourceKind,
        id: &str,
        tags: &BTreeMap<String, String>,
    ) -> bool {
        let ids = match kind {
            ResourceKind::Instance => &self.instance_ids,
            ResourceKind::Cluster => &self.cluster_ids,
        };
        self.matches_ids(id, ids.iter(), tags)
    }

    fn matches_ids<'a>(
        &self,
        id: &str,
        mut ids: impl Iterator<Item = &'a String>,
        tags: &BTreeMap<String, String>,
    ) -> bool {
        if self.is_excluded(tags) {
            return false;
        }
        self.include_all
            || ids.any(|candidate| candidate == id)
            || (!self.tags.is_empty() && exact_match(&self.tags, tags))
    }

    /// Whether `tags` hit one of the `excludeTags` entries.
    pub fn is_excluded(&self, tags: &BTreeMap<String, String>) -> bool {
        self.exclude_tags
            .iter()
            .any(|(k, v)| tags.get(k) == Some(v))
    }

    fn validate(&self, field: &str, d: &mut Diagnostics) {
        let by_ids_or_tags =
            !self.instance_ids.is_empty() || !self.cluster_ids.is_empty() || !self.tags.is_empty();
        if self.include_all && by_ids_or_tags {
            d.error(
                format!("{field}.includeAll"),
                "includeAll cannot be combined with instanceIds, clusterIds or tags",
            );
        } else if self.include_all {
            d.warn(
                format!("{field}.includeAll"),
                "includeAll hibernates every DB instance and Aurora cluster in the account and \
                 region (except those matching excludeTags)",
            );
        } else if !by_ids_or_tags {
            d.error(
                field,
                "select resources with instanceIds, clusterIds, tags or includeAll: true",
            );
        }
        for (name, ids) in [
            ("instanceIds", &self.instance_ids),
            ("clusterIds", &self.cluster_ids),
        ] {
            let path = format!("{field}.{name}");
            for (i, id) in ids.iter().enumerate() {
                if let Err(e) = check_db_identifier(id) {
                    d.error(format!("{path}[{i}]"), e);
                }
            }
            warn_duplicates(ids, &path, d);
        }
        for (name, map) in [("tags", &self.tags), ("excludeTags", &self.exclude_tags)] {
            for (key, value) in map {
                let path = format!("{field}.{name}.{key}");
                if let Err(e) = check_aws_tag_key(key).and_then(|()| check_aws_tag_value(value)) {
                    d.error(path, e);
                }
            }
        }
        for (key, value) in &self.tags {
            if self.exclude_tags.get(key) == Some(value) {
                d.warn(
                    format!("{field}.excludeTags.{key}"),
                    "excludes every resource the tags selector selects",
                );
            }
        }
    }
}

/// Checks a DB instance or cluster identifier: 1–63 letters, digits and
/// hyphens, starting with a letter, no `--`, not ending with `-`.
pub fn check_db_identifier(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > 63 {
        return Err(format!("{id:?} must be 1-63 characters long"));
    }
    check_identifier_rules(id).map_err(|e| format!("{id:?} {e}"))
}

fn check_identifier_rules(id: &str) -> Result<(), &'static str> {
    if !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        Err("may only contain letters, digits and hyphens")
    } else if !id.starts_with(|c: char| c.is_ascii_alphabetic()) {
        Err("must start with a letter")
    } else if id.contains("--") {
        Err("must not contain two consecutive hyphens")
    } else if id.ends_with('-') {
        Err("must not end with a hyphen")
    } else {
        Ok(())
    }
}

/// The snapshot identifier for `resource_id` in cycle `cycle_id`: the same
/// inputs always give the same name, so a retried shutdown finds its
/// snapshot instead of taking another.
///
/// The result is `hibernator-<resource>-<cycle>`, lowercased, with every
/// character other than letters and digits turned into a hyphen, runs of
/// hyphens collapsed and no trailing hyphen. When longer than 255 characters
/// it is cut and ends with a 16-hex-digit hash of both inputs, so distinct
/// inputs still give distinct names.
pub fn snapshot_identifier(resource_id: &str, cycle_id: &str) -> String {
    let raw = format!("hibernator-{resource_id}-{cycle_id}");
    let mut name = String::with_capacity(raw.len());
    for c in raw.chars() {
        let c = if c.is_ascii_alphanumeric() {
            c.to_ascii_lowercase()
        } else {
            '-'
        };
        if !(c == '-' && name.ends_with('-')) {
            name.push(c);
        }
    }
    let mut name = name.trim_end_matches('-').to_string();
    if name.len() > MAX_SNAPSHOT_ID_LEN {
        let hash = format!("{:016x}", fnv1a(&[resource_id, cycle_id]));
        name.truncate(MAX_SNAPSHOT_ID_LEN - hash.len() - 1);
        let kept = name.trim_end_matches('-').len();
        name.truncate(kept);
        name.push('-');
        name.push_str(&hash);
    }
    name
}

/// 64-bit FNV-1a over the parts, separated by a zero byte (stable across
/// Rust versions, unlike `DefaultHasher`).
fn fnv1a(parts: &[&str]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for (i, part) in parts.iter().enumerate() {
        let separator: &[u8] = if i == 0 { &[] } else { &[0] };
        for byte in separator.iter().chain(part.as_bytes()) {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    hash
}

impl ValidateParameters for Parameters {
    fn validate(&self, field: &str, d: &mut Diagnostics) {
        self.selector.validate(&format!("{field}.selector"), d);
        self.await_completion
            .validate(&format!("{field}.awaitCompletion"), d);
        self.connectivity_check.validate(
            &format!("{field}.connectivityCheck"),
            &self.await_completion,
            d,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hibernator_core::params::{ParameterCheck, TypedParameters};
    use proptest::prelude::*;
    use serde_json::json;

    const P: &str = "spec.targets[1].parameters";

    fn check(v: serde_json::Value) -> Diagnostics {
        TypedParameters::<Parameters>::new(TYPE).check(Some(&v), P)
    }

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn is_valid_snapshot_id(s: &str) -> bool {
        (1..=MAX_SNAPSHOT_ID_LEN).contains(&s.len()) && check_identifier_rules(s).is_ok()
    }

    #[test]
    fn valid_examples_parse() {
        for v in [
            json!({"selector": {"instanceIds": ["db-1"], "clusterIds": ["aurora-a"]}}),
            json!({"selector": {"tags": {"env": "dev"}, "excludeTags": {"keep": "true"}},
                   "snapshotBeforeStop": true,
                   "awaitCompletion": {"enabled": true, "timeout": "20m"}}),
            json!({"selector": {"instanceIds": ["db-1"]},
                   "connectivityCheck": {"enabled": true, "timeout": "30s"}}),
        ] {
            let d = check(v.clone());
            assert!(d.errors.is_empty() && d.warnings.is_empty(), "{v}: {d:?}");
        }
        let p: Parameters =
            serde_json::from_value(json!({"selector": {"clusterIds": ["a"]}})).unwrap();
        assert!(!p.snapshot_before_stop && !p.selector.include_all);
        assert_eq!(p.connectivity_check, ConnectivityCheck::default());
        assert!(!p.connectivity_check.enabled, "off by default");
        assert_eq!(p.connectivity_check.timeout(), DEFAULT_CONNECTIVITY_TIMEOUT);
    }

    #[test]
    fn connectivity_check_timeout_and_warnings() {
        let p: Parameters = serde_json::from_value(json!({
            "selector": {"clusterIds": ["a"]},
            "connectivityCheck": {"enabled": true, "timeout": "2m30s"},
        }))
        .unwrap();
        assert_eq!(p.connectivity_check.timeout(), Duration::from_secs(150));
        for (value, field) in [
            (
                json!({"selector": {"clusterIds": ["a"]}, "connectivityCheck": {"timeout": "1m"}}),
                format!("{P}.connectivityCheck.timeout"),
            ),
            (
                json!({"selector": {"clusterIds": ["a"]},
                       "awaitCompletion": {"enabled": false},
                       "connectivityCheck": {"enabled": true}}),
                format!("{P}.connectivityCheck.enabled"),
            ),
        ] {
            let d = check(value.clone());
            assert!(d.errors.is_empty(), "{value}: {d:?}");
            let fields: Vec<_> = d.warnings.into_iter().map(|w| w.field).collect();
            assert_eq!(fields, [field], "{value}");
        }
        let bad = ConnectivityCheck {
            enabled: true,
            timeout: Some("0s".into()),
        };
        let error = bad.try_timeout().unwrap_err().to_string();
        assert!(error.contains("connectivityCheck.timeout"), "{error}");
        assert_eq!(bad.timeout(), DEFAULT_CONNECTIVITY_TIMEOUT);
    }

    #[test]
    fn include_all_warns() {
        let d = check(json!({"selector": {"includeAll": true}}));
        assert!(d.errors.is_empty());
        assert_eq!(d.warnings[0].field, format!("{P}.selector.includeAll"));
    }

    #[test]
    fn rejections_name_the_field() {
        let cases = [
            (json!({"selector": {}}), format!("{P}.selector")),
            (
                json!({"selector": {"excludeTags": {"a": "b"}}}),
                format!("{P}.selector"),
            ),
            (
                json!({"selector": {"includeAll": true, "instanceIds": ["db"]}}),
                format!("{P}.selector.includeAll"),
            ),
            (
                json!({"selector": {"instanceIds": ["ok", "1db"]}}),
                format!("{P}.selector.instanceIds[1]"),
            ),
            (
                json!({"selector": {"clusterIds": ["a--b"]}}),
                format!("{P}.selector.clusterIds[0]"),
            ),
            (
                json!({"selector": {"clusterIds": ["a-"]}}),
                format!("{P}.selector.clusterIds[0]"),
            ),
            (
                json!({"selector": {"tags": {"": "x"}}}),
                format!("{P}.selector.tags."),
            ),
            (
                json!({"selector": {"includeAll": "yes"}}),
                format!("{P}.selector.includeAll"),
            ),
            (
                json!({"selector": {"clusterIds": ["a"]}, "awaitCompletion": {"timeout": "x"}}),
                format!("{P}.awaitCompletion.timeout"),
            ),
            (
                json!({"selector": {"clusterIds": ["a"]},
                       "connectivityCheck": {"enabled": true, "timeout": "30"}}),
                format!("{P}.connectivityCheck.timeout"),
            ),
            (
                json!({"selector": {"clusterIds": ["a"]}, "connectivityCheck": {"enabled": "yes"}}),
                format!("{P}.connectivityCheck.enabled"),
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
    fn selector_matches_and_excludes() {
        let s: Selector = serde_json::from_value(json!({
            "instanceIds": ["db-1"], "clusterIds": ["aurora-a"],
            "tags": {"env": "dev"}, "excludeTags": {"keep-awake": "true"}
        }))
        .unwrap();
        assert!(s.matches("db-1", &tags(&[])));
        assert!(s.matches("aurora-a", &tags(&[])));
        assert!(s.matches("other", &tags(&[("env", "dev")])));
        assert!(!s.matches("other", &tags(&[("env", "prod")])));
        assert!(!s.matches("db-1", &tags(&[("keep-awake", "true")])));
        assert!(s.matches("db-1", &tags(&[("keep-awake", "false")])));
        assert!(s.matches_kind(ResourceKind::Cluster, "aurora-a", &tags(&[])));
        assert!(!s.matches_kind(ResourceKind::Instance, "aurora-a", &tags(&[])));
        let all = Selector {
            include_all: true,
            exclude_tags: tags(&[("keep", "1")]),
            ..Selector::default()
        };
        assert!(all.matches("anything", &tags(&[])));
        assert!(!all.matches("anything", &tags(&[("keep", "1")])));
        assert!(!Selector::default().matches("x", &tags(&[])));
    }

    #[test]
    fn snapshot_names_follow_rds_rules() {
        let a = snapshot_identifier("db-1", "2026-11-22T20:00:00Z");
        assert_eq!(a, snapshot_identifier("db-1", "2026-11-22T20:00:00Z"));
        assert!(is_valid_snapshot_id(&a), "{a}");
        assert!(a.starts_with("hibernator-db-1-"));
        assert_ne!(a, snapshot_identifier("db-1", "2026-11-23T20:00:00Z"));
        assert_ne!(a, snapshot_identifier("db-2", "2026-11-22T20:00:00Z"));
        let long = snapshot_identifier(&"x".repeat(63), &"c".repeat(400));
        assert!(is_valid_snapshot_id(&long), "{long}");
        assert_ne!(long, snapshot_identifier(&"x".repeat(63), &"c".repeat(401)));
    }

    proptest! {
        #[test]
        fn snapshot_identifier_is_always_valid(resource in ".{0,80}", cycle in ".{0,300}") {
            let id = snapshot_identifier(&resource, &cycle);
            prop_assert!(is_valid_snapshot_id(&id), "{}", id);
            prop_assert_eq!(&id, &snapshot_identifier(&resource, &cycle));
        }
    }
}
