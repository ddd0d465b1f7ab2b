//! `HolidayCalendar`: named sets of days a plan sleeps through (or stays awake on).

use kube_derive::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Desired state of a `HolidayCalendar`: where its days come from.
///
/// A plan lists calendars in `spec.schedule.calendars`; each day of a calendar is
/// an all-day off-hours window in the plan's time zone, or an all-day awake
/// window when `effect` is `awake` (rule R7 of `docs/schedules.md`).
#[derive(
    CustomResource, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema,
)]
#[kube(
    group = "hibernator.dev",
    version = "v1alpha1",
    kind = "HolidayCalendar",
    doc = "Named days (public holidays, company shutdown days, iCalendar events) that HibernatePlans sleep through, or stay awake on.",
    plural = "holidaycalendars",
    shortname = "holcal",
    namespaced,
    crates(
        kube_core = "::kube_core",
        k8s_openapi = "::k8s_openapi",
        schemars = "::schemars",
        serde = "::serde",
        serde_json = "::serde_json"
    ),
    printcolumn = r#"{"name":"Effect","type":"string","jsonPath":".spec.effect"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct HolidayCalendarSpec {
    /// `hibernate` (the default): each day keeps the plan's targets hibernated
    /// all day. `awake`: each day keeps them awake all day, like a suspend
    /// exception. (Not `off`/`on`: YAML 1.1, which kubectl reads, makes
    /// those booleans.)
    #[serde(default)]
    pub effect: CalendarEffect,
    /// Explicit days: `YYYY-MM-DD`, or an inclusive range `YYYY-MM-DD..YYYY-MM-DD`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dates: Vec<String>,
    /// Built-in public-holiday sets, by country and optionally subdivision
    /// (data of the python-holidays project, years 2020–2040).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub public_holidays: Vec<PublicHolidays>,
    /// iCalendar (RFC 5545) documents in ConfigMaps of the calendar's namespace;
    /// every event (with its `RRULE`, `RDATE` and `EXDATE`) marks the days it covers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ical: Vec<ICalSource>,
    /// Days taken out of the calendar (same syntax as `dates`), e.g. a public
    /// holiday the company works on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
}

/// What a calendar's days do to a plan.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CalendarEffect {
    /// Hibernated all day (an all-day off-hours window).
    #[default]
    Hibernate,
    /// Awake all day (an all-day suspend window).
    Awake,
}

impl CalendarEffect {
    /// The lowercase CRD name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hibernate => "hibernate",
            Self::Awake => "awake",
        }
    }
}

/// A built-in public-holiday set.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PublicHolidays {
    /// ISO 3166-1 alpha-2 country code, e.g. `DE`.
    pub country: String,
    /// Subdivision (state, province, region) code as python-holidays names it, e.g. `BY`;
    /// the national holidays when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subdivision: Option<String>,
}

/// An iCalendar document in a ConfigMap.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ICalSource {
    /// The ConfigMap (in the calendar's namespace) and key holding the document.
    pub config_map_ref: ConfigMapKeyRef,
}

/// One key of a ConfigMap in the referring object's namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigMapKeyRef {
    /// Name of the ConfigMap.
    pub name: String,
    /// Key of the document in the ConfigMap's `data`.
    pub key: String,
}
