//! `HibernateNotification`: routes what happens to plans (cycles, failures,
//! drift re-enforcement, late wake-ups) to Slack, Teams and signed webhooks.
//!
//! The resource is namespaced and selects the plans of its namespace by name
//! and/or label; credentials (webhook URLs, signing keys) come from Secrets
//! of the same namespace only. See `docs/notifications.md`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube_derive::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::OffHourWindow;
use crate::selector::LabelSelector;

/// Desired state of a `HibernateNotification`.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "hibernator.dev",
    version = "v1alpha1",
    kind = "HibernateNotification",
    doc = "Routes HibernatePlan events (cycles, failures, drift re-enforcement, late wake-ups) to Slack, Teams and signed webhooks.",
    plural = "hibernatenotifications",
    shortname = "hnotify",
    namespaced,
    status = "HibernateNotificationStatus",
    crates(
        kube_core = "::kube_core",
        k8s_openapi = "::k8s_openapi",
        schemars = "::schemars",
        serde = "::serde",
        serde_json = "::serde_json"
    ),
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Delivered","type":"integer","jsonPath":".status.deliveredCount"}"#,
    printcolumn = r#"{"name":"Failed","type":"integer","jsonPath":".status.failedCount"}"#,
    printcolumn = r#"{"name":"Last","type":"date","jsonPath":".status.lastDeliveryTime"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct HibernateNotificationSpec {
    /// Which plans of this namespace are routed: a plan is selected when its
    /// name is in `planNames` or its labels match `planSelector`. Both empty
    /// selects no plan.
    #[serde(default)]
    pub selector: PlanSelection,
    /// Which events are sent (default: every event type, severity `info`).
    #[serde(default)]
    pub filter: NotificationFilter,
    /// Periods in which only failures (severity `error`) are sent; other
    /// events that happen then are dropped, not delayed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiet_hours: Option<QuietHours>,
    /// Where events go; every selected event is sent to every sink.
    pub sinks: Vec<NotificationSink>,
}

/// The plans a notification routes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlanSelection {
    /// Plans by name (in the notification's namespace).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plan_names: Vec<String>,
    /// Plans by label; `{}` selects every plan of the namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_selector: Option<LabelSelector>,
}

impl PlanSelection {
    /// Whether the plan `name` with `labels` is selected.
    pub fn selects(&self, name: &str, labels: &BTreeMap<String, String>) -> bool {
        self.plan_names.iter().any(|n| n == name)
            || self
                .plan_selector
                .as_ref()
                .is_some_and(|selector| selector.matches(labels))
    }
}

/// Event types of notifications.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
pub enum NotificationEvent {
    /// A shutdown or wake-up cycle started.
    CycleStarted,
    /// A cycle finished (with a per-target summary).
    CycleFinished,
    /// An attempt of a target failed (sent at once, also when a retry follows).
    TargetFailed,
    /// A target failed after using every automatic retry.
    RetriesExhausted,
    /// Resources that woke up while the plan was hibernated were put back to sleep.
    ReEnforced,
    /// A wake-up with `readyBy` was ready only after the window end.
    NotReadyByWindowEnd,
}

impl NotificationEvent {
    /// Every event type, in a stable order.
    pub const ALL: [NotificationEvent; 6] = [
        Self::CycleStarted,
        Self::CycleFinished,
        Self::TargetFailed,
        Self::RetriesExhausted,
        Self::ReEnforced,
        Self::NotReadyByWindowEnd,
    ];

    /// The CRD name (PascalCase).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CycleStarted => "CycleStarted",
            Self::CycleFinished => "CycleFinished",
            Self::TargetFailed => "TargetFailed",
            Self::RetriesExhausted => "RetriesExhausted",
            Self::ReEnforced => "ReEnforced",
            Self::NotReadyByWindowEnd => "NotReadyByWindowEnd",
        }
    }
}

/// Severity of a notification event, ordered `info < warning < error`.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Routine progress (a cycle started or completed).
    #[default]
    Info,
    /// Something needs a look but nothing failed (drift, late wake-up).
    Warning,
    /// A failure.
    Error,
}

impl Severity {
    /// The lowercase CRD name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Error => "error",
        }
    }
}

/// Which events are sent.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NotificationFilter {
    /// Event types to send; empty: all of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<NotificationEvent>,
    /// Lowest severity sent (`info`, `warning` or `error`; default `info`).
    #[serde(default)]
    pub min_severity: Severity,
}

/// Quiet hours: windows (same semantics as a plan's `offHours`, in
/// `timezone`) in which only failures are sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct QuietHours {
    /// IANA time zone of the windows, e.g. `Europe/Berlin`.
    pub timezone: String,
    /// Quiet windows: `{start, end, daysOfWeek}` like `spec.schedule.offHours`.
    pub windows: Vec<OffHourWindow>,
}

/// Kind of a sink.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum SinkType {
    /// Slack incoming webhook (Block Kit message).
    Slack,
    /// Microsoft Teams (or compatible) incoming webhook (MessageCard).
    Teams,
    /// Any HTTP endpoint: a JSON body signed with HMAC-SHA256.
    Webhook,
}

impl SinkType {
    /// The CRD name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Slack => "Slack",
            Self::Teams => "Teams",
            Self::Webhook => "Webhook",
        }
    }
}

/// A reference to one key of a Secret in the notification's namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Name of the Secret.
    pub name: String,
    /// Key in the Secret's `data`.
    pub key: String,
}

/// One destination of events.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NotificationSink {
    /// Name of the sink (unique in the notification; used in status and metrics).
    pub name: String,
    /// `Slack`, `Teams` or `Webhook`.
    #[serde(rename = "type")]
    pub kind: SinkType,
    /// The Secret key holding the URL to POST to (an incoming-webhook URL
    /// carries its credential, so it is never written in the spec).
    pub url_secret_ref: SecretKeyRef,
    /// `Webhook` only: the Secret key holding the HMAC-SHA256 signing key
    /// (required for `Webhook`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_secret_ref: Option<SecretKeyRef>,
    /// A minijinja template replacing the sink type's default body; it must
    /// render JSON (use the `tojson` filter for values). Variables and the
    /// defaults: `docs/notifications.md`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// Per-request timeout (default `10s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

/// A delivered (or given-up) event, kept to deliver each event once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryRecord {
    /// `<sink>/<plan>/<cycle>/<event>[/<target>][/<attempt or check id>]`.
    pub key: String,
    /// When the event happened.
    pub at: DateTime<Utc>,
    /// `Delivered` or `Failed` (attempts used up).
    pub result: String,
}

/// Observed state of a `HibernateNotification`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HibernateNotificationStatus {
    /// `Ready` (spec valid, Secrets readable) and `DeliveryFailing`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Generation the conditions describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Events that happened before this instant are never sent (set when
    /// the controller first sees the notification, then moved forward past
    /// pruned records).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub horizon: Option<DateTime<Utc>>,
    /// Recent deliveries (bounded), newest last.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deliveries: Vec<DeliveryRecord>,
    /// When the last delivery succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_delivery_time: Option<DateTime<Utc>>,
    /// Deliveries that succeeded.
    #[serde(default)]
    pub delivered_count: u64,
    /// Deliveries given up after every attempt failed.
    #[serde(default)]
    pub failed_count: u64,
}
