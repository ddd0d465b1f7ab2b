//! The restore record of one target and its merge rules.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The record format version this build writes and the newest it reads.
pub const RECORD_VERSION: u32 = 1;

/// The last known awake state of one resource.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreEntry {
    /// Executor-defined awake state (e.g. `{"desiredSize": 3, "minSize": 1}`).
    pub state: serde_json::Value,
    /// The cycle in which this state was observed.
    pub cycle_id: String,
    /// When this state was observed.
    pub observed_at: DateTime<Utc>,
}

/// Restore data of one target of one plan.
///
/// Serialized as camelCase JSON with a `version` field; reading a record with
/// a version newer than [`RECORD_VERSION`] fails with [`UnsupportedVersion`]
/// instead of silently dropping fields a newer operator wrote.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", try_from = "RecordRepr")]
pub struct RestoreRecord {
    /// Format version ([`RECORD_VERSION`] for records this build writes).
    pub version: u32,
    /// Target name within the plan.
    pub target: String,
    /// Executor type of the target.
    pub executor: String,
    /// Per-resource entries, keyed by resource key.
    #[serde(default)]
    pub entries: BTreeMap<String, RestoreEntry>,
    /// The cycle that last changed this record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_cycle_id: Option<String>,
    /// When this record was last changed.
    pub updated_at: DateTime<Utc>,
}

/// Wire form of [`RestoreRecord`], checked for its version on the way in.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RecordRepr {
    version: u32,
    target: String,
    executor: String,
    #[serde(default)]
    entries: BTreeMap<String, RestoreEntry>,
    #[serde(default)]
    last_cycle_id: Option<String>,
    updated_at: DateTime<Utc>,
}

/// A record was written by a newer Hibernator than this one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "restore record of target {target:?} has format version {found}, this build reads up to version {supported}: upgrade Hibernator before touching this plan"
)]
pub struct UnsupportedVersion {
    /// Target the record belongs to.
    pub target: String,
    /// Version found in the record.
    pub found: u32,
    /// Newest version this build reads.
    pub supported: u32,
}

impl TryFrom<RecordRepr> for RestoreRecord {
    type Error = UnsupportedVersion;

    fn try_from(r: RecordRepr) -> Result<Self, Self::Error> {
        if r.version > RECORD_VERSION {
            return Err(UnsupportedVersion {
                target: r.target,
                found: r.version,
                supported: RECORD_VERSION,
            });
        }
        Ok(Self {
            version: r.version,
            target: r.target,
            executor: r.executor,
            entries: r.entries,
            last_cycle_id: r.last_cycle_id,
            updated_at: r.updated_at,
        })
    }
}

impl RestoreRecord {
    /// An empty record for `target`, handled by `executor`.
    pub fn new(target: impl Into<String>, executor: impl Into<String>) -> Self {
        Self {
            version: RECORD_VERSION,
            target: target.into(),
            executor: executor.into(),
            entries: BTreeMap::new(),
            last_cycle_id: None,
            updated_at: Utc::now(),
        }
    }

    /// The entry of a resource.
    pub fn entry(&self, key: &str) -> Option<&RestoreEntry> {
        self.entries.get(key)
    }

    /// True when no resource awaits restoration.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Merges the awake states a shutdown observed in `cycle_id`.
    ///
    /// - an existing entry from the **same** cycle is kept (the first
    ///   observation of a cycle wins: a re-run sees the hibernated state);
    /// - an existing entry from an **earlier** cycle is replaced: the executor
    ///   found the resource awake again, so this is newer awake state;
    /// - entries without a new observation are kept untouched.
    ///
    /// Returns the keys whose entry was added or replaced.
    pub fn merge_shutdown(
        &mut self,
        cycle_id: &str,
        observations: impl IntoIterator<Item = (String, serde_json::Value)>,
    ) -> Vec<String> {
        self.merge_shutdown_at(cycle_id, observations, Utc::now())
    }

    /// [`merge_shutdown`](Self::merge_shutdown) with an explicit observation time.
    pub fn merge_shutdown_at(
        &mut self,
        cycle_id: &str,
        observations: impl IntoIterator<Item = (String, serde_json::Value)>,
        observed_at: DateTime<Utc>,
    ) -> Vec<String> {
        let mut changed = Vec::new();
        for (key, state) in observations {
            let keep = self
                .entries
                .get(&key)
                .is_some_and(|existing| existing.cycle_id == cycle_id);
            if keep {
                continue;
            }
            self.entries.insert(
                key.clone(),
                RestoreEntry {
                    state,
                    cycle_id: cycle_id.to_string(),
                    observed_at,
                },
            );
            changed.push(key);
        }
        self.last_cycle_id = Some(cycle_id.to_string());
        self.updated_at = Utc::now();
        changed
    }

    /// Clears the entries of resources that were restored; every other entry
    /// stays for the next wake-up attempt. Returns the keys that were cleared
    /// (keys without an entry are ignored).
    pub fn mark_restored<'a>(&mut self, keys: impl IntoIterator<Item = &'a str>) -> Vec<String> {
        let mut cleared = Vec::new();
        for key in keys {
            if self.entries.remove(key).is_some() {
                cleared.push(key.to_string());
            }
        }
        self.updated_at = Utc::now();
        cleared
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use serde_json::json;

    fn obs(pairs: &[(&str, serde_json::Value)]) -> Vec<(String, serde_json::Value)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn rerun_of_shutdown_in_same_cycle_keeps_first_observation() {
        let mut r = RestoreRecord::new("eks", "eks");
        let added = r.merge_shutdown("c1", obs(&[("nodegroup/ng-1", json!({"desired": 3}))]));
        assert_eq!(added, ["nodegroup/ng-1"]);
        let first = r.entry("nodegroup/ng-1").cloned().unwrap();
        // A re-run observes the hibernated value; it must not win.
        let added = r.merge_shutdown("c1", obs(&[("nodegroup/ng-1", json!({"desired": 0}))]));
        assert!(added.is_empty());
        assert_eq!(r.entry("nodegroup/ng-1"), Some(&first));
    }

    #[test]
    fn failed_wakeup_then_next_cycle_keeps_unobserved_and_replaces_reawakened() {
        let mut r = RestoreRecord::new("ec2", "ec2");
        r.merge_shutdown(
            "c1",
            obs(&[
                ("instance/a", json!({"state": "running"})),
                ("instance/b", json!({"state": "running", "type": "m5"})),
            ]),
        );
        // Wake-up restored only `a`; `b` failed and stays hibernated.
        let cleared = r.mark_restored(["instance/a"]);
        assert_eq!(cleared, ["instance/a"]);
        // Next cycle: `a` is awake again (observed), `b` is still asleep (not observed).
        r.merge_shutdown(
            "c2",
            obs(&[("instance/a", json!({"state": "running", "v": 2}))]),
        );
        assert_eq!(r.entry("instance/a").unwrap().cycle_id, "c2");
        assert_eq!(
            r.entry("instance/a").unwrap().state,
            json!({"state": "running", "v": 2})
        );
        let b = r.entry("instance/b").unwrap();
        assert_eq!(b.cycle_id, "c1");
        assert_eq!(b.state, json!({"state": "running", "type": "m5"}));
    }

    #[test]
    fn entry_from_earlier_cycle_is_replaced_by_new_awake_observation() {
        let mut r = RestoreRecord::new("t", "x");
        r.merge_shutdown("c1", obs(&[("k", json!(1))]));
        let changed = r.merge_shutdown("c2", obs(&[("k", json!(2))]));
        assert_eq!(changed, ["k"]);
        assert_eq!(r.entry("k").unwrap().state, json!(2));
    }

    #[test]
    fn partial_restore_clears_only_restored_keys() {
        let mut r = RestoreRecord::new("t", "x");
        r.merge_shutdown(
            "c1",
            obs(&[("a", json!(1)), ("b", json!(2)), ("c", json!(3))]),
        );
        let cleared = r.mark_restored(["a", "c", "unknown"]);
        assert_eq!(cleared, ["a", "c"]);
        assert_eq!(r.entries.keys().collect::<Vec<_>>(), ["b"]);
        r.mark_restored(["b"]);
        assert!(r.is_empty());
    }

    #[test]
    fn json_is_camel_case_and_round_trips() {
        let mut r = RestoreRecord::new("t", "x");
        r.merge_shutdown("c1", obs(&[("a", json!({"n": 1}))]));
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["version"], json!(RECORD_VERSION));
        assert_eq!(v["entries"]["a"]["cycleId"], json!("c1"));
        assert!(v["entries"]["a"]["observedAt"].is_string());
        assert!(v["updatedAt"].is_string());
        let back: RestoreRecord = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn newer_version_is_a_clear_error() {
        let mut v = serde_json::to_value(RestoreRecord::new("web", "x")).unwrap();
        v["version"] = json!(RECORD_VERSION + 1);
        let err = serde_json::from_value::<RestoreRecord>(v)
            .unwrap_err()
            .to_string();
        assert!(err.contains("format version 2"), "{err}");
        assert!(err.contains("\"web\""), "{err}");
    }
}
