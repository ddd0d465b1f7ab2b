//! `status.accounting` of a `HibernatePlan`: how long its targets were
//! actually hibernated, per month, against how long the schedule wanted them
//! off (see `docs/savings-report.md`).
//!
//! The types are plain data; the controller's `hibernator-reconcile` crate
//! accrues them and the kubectl plugin reports them.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Upper bound of `status.accounting.months` entries (newest first).
pub const MAX_ACCOUNTING_MONTHS: usize = 12;

/// Upper bound of resource classes kept per target and month; resources of
/// further classes are counted under [`UNCLASSIFIED`].
pub const MAX_CLASSES_PER_TARGET: usize = 8;

/// Class key of resources whose class is not known (no price applies).
pub const UNCLASSIFIED: &str = "unclassified";

/// Serde of `Option<Arc<T>>` without serde's `rc` feature: an `Arc` of the
/// accounting makes the controller's clones of the status cheap, and its
/// comparisons too (`Arc<T: Eq>` equality checks the pointer first).
pub(crate) mod shared {
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(crate) fn serialize<S: Serializer, T: Serialize>(
        value: &Option<Arc<T>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        value.as_deref().serialize(serializer)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
        deserializer: D,
    ) -> Result<Option<Arc<T>>, D::Error> {
        Option::<T>::deserialize(deserializer).map(|value| value.map(Arc::new))
    }
}

/// Hibernation accounting of a plan (`status.accounting`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlanAccounting {
    /// Everything before this instant is accounted in `months`; the open
    /// intervals of `hibernated` targets after it are not yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accounted_until: Option<DateTime<Utc>>,
    /// IANA time zone the months are cut in (the plan's schedule time zone
    /// when the months were accrued).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// Targets hibernated now (their shutdown finished and no wake-up has
    /// started since), in spec order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hibernated: Vec<HibernatedTarget>,
    /// Monthly totals, newest first, at most [`MAX_ACCOUNTING_MONTHS`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub months: Vec<MonthAccounting>,
}

/// A target that is hibernated now.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HibernatedTarget {
    /// Target name.
    pub target: String,
    /// Executor type of the target.
    #[serde(rename = "type")]
    pub type_: String,
    /// When its shutdown finished.
    pub since: DateTime<Utc>,
    /// Resources the shutdown put to sleep (restore ledger entries).
    #[serde(default)]
    pub resources: u32,
    /// Those resources by price class (`ec2.m5.large`, or `unclassified`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub classes: BTreeMap<String, u32>,
}

/// Totals of one month (in the plan's time zone).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MonthAccounting {
    /// `YYYY-MM`.
    pub month: String,
    /// Off-hours of the schedule in this month (seconds accounted so far).
    #[serde(default)]
    pub scheduled_seconds: u64,
    /// Seconds during which every target of the plan was hibernated.
    #[serde(default)]
    pub hibernated_seconds: u64,
    /// Scheduled seconds during which every target was hibernated
    /// (coverage = covered / scheduled).
    #[serde(default)]
    pub covered_seconds: u64,
    /// Drift re-enforcements made in this month.
    #[serde(default)]
    pub re_enforcements: u64,
    /// Per-target totals (targets hibernated at some time in the month).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<TargetMonth>,
}

/// One target's totals in one month.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetMonth {
    /// Target name.
    pub target: String,
    /// Executor type of the target.
    #[serde(rename = "type")]
    pub type_: String,
    /// Seconds the target was hibernated in this month.
    #[serde(default)]
    pub hibernated_seconds: u64,
    /// Resources counted at its latest shutdown.
    #[serde(default)]
    pub resources: u32,
    /// Resource-seconds hibernated per price class: a resource of class `c`
    /// hibernated for one hour adds 3600 to `c`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resource_seconds: BTreeMap<String, u64>,
}
