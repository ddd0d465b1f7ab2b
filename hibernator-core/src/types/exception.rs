//! `ScheduleException`: time-bounded changes to a plan's schedule.

use chrono::{DateTime, Utc};
use kube_derive::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ObjectRef, OffHourWindow};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

/// Desired state of a `ScheduleException`.
#[derive(CustomResource, Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "hibernator.dev",
    version = "v1alpha1",
    kind = "ScheduleException",
    doc = "A time-bounded change to a HibernatePlan schedule: extend, suspend or replace its off-hours.",
    plural = "scheduleexceptions",
    shortname = "schedex",
    namespaced,
    status = "ScheduleExceptionStatus",
    crates(
        kube_core = "::kube_core",
        k8s_openapi = "::k8s_openapi",
        schemars = "::schemars",
        serde = "::serde",
        serde_json = "::serde_json"
    ),
    printcolumn = r#"{"name":"Plan","type":"string","jsonPath":".spec.planRef.name"}"#,
    printcolumn = r#"{"name":"Type","type":"string","jsonPath":".spec.type"}"#,
    printcolumn = r#"{"name":"From","type":"date","jsonPath":".spec.validFrom"}"#,
    printcolumn = r#"{"name":"Until","type":"date","jsonPath":".spec.validUntil"}"#,
    printcolumn = r#"{"name":"State","type":"string","jsonPath":".status.state"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleExceptionSpec {
    /// The plan this exception applies to (same namespace unless given).
    pub plan_ref: ObjectRef,
    /// Start of validity (inclusive), RFC 3339.
    pub valid_from: DateTime<Utc>,
    /// End of validity (exclusive), RFC 3339.
    pub valid_until: DateTime<Utc>,
    /// `extend` adds off-hours, `suspend` keeps targets awake, `replace` swaps the plan's windows.
    #[serde(rename = "type")]
    pub kind: ExceptionType,
    /// For `suspend`: a hibernation that would begin less than this before a suspend window
    /// does not begin, e.g. `1h`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lead_time: Option<String>,
    /// Windows, in the plan's time zone, with the same semantics as `spec.schedule.offHours`.
    pub windows: Vec<OffHourWindow>,
}

/// Exception types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExceptionType {
    /// OR extra off-hours windows into the schedule.
    Extend,
    /// Force targets awake while a window is off.
    Suspend,
    /// Use these windows instead of the plan's while valid.
    Replace,
}

impl ExceptionType {
    /// The lowercase CRD name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Extend => "extend",
            Self::Suspend => "suspend",
            Self::Replace => "replace",
        }
    }
}

/// Observed state of a `ScheduleException`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleExceptionStatus {
    /// `Pending`, `Active` or `Expired`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}
