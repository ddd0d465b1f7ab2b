//! Drift re-enforcement while a plan is hibernated: the
//! `spec.behavior.enforce` settings and the `status.enforcement` block.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Default interval between two enforcement checks of a hibernated plan.
pub const DEFAULT_ENFORCE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3600);
/// Shortest accepted `spec.behavior.enforce.interval`.
pub const MIN_ENFORCE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5 * 60);
/// Longest accepted `spec.behavior.enforce.interval`.
pub const MAX_ENFORCE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(24 * 3600);
/// Target types enforced when `spec.behavior.enforce.enabled` is unset: RDS
/// starts stopped instances and clusters by itself after 7 days.
pub const DEFAULT_ENFORCED_TYPES: &[&str] = &["rds"];

/// Drift re-enforcement while hibernated (see `docs/enforcement.md`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Enforce {
    /// `true`: re-check every target whose executor supports enforcement;
    /// `false`: never; unset: only `rds` targets (RDS restarts stopped
    /// databases by itself after 7 days).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Time between two checks while the plan is hibernated, e.g. `30m`
    /// (default `1h`, between `5m` and `24h`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
}

/// Which targets are re-checked while a plan is hibernated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnforceMode {
    /// Only target types in [`DEFAULT_ENFORCED_TYPES`] (the default).
    DefaultTypes,
    /// Every target whose executor supports enforcement.
    All,
    /// None.
    Off,
}

impl EnforceMode {
    /// Whether a target of `executor_type` is enforced in this mode (given
    /// that its executor supports enforcement).
    pub fn covers(self, executor_type: &str) -> bool {
        match self {
            Self::DefaultTypes => DEFAULT_ENFORCED_TYPES.contains(&executor_type),
            Self::All => true,
            Self::Off => false,
        }
    }
}

impl Enforce {
    /// The mode of an optional `spec.behavior.enforce`.
    pub fn mode_of(enforce: Option<&Enforce>) -> EnforceMode {
        match enforce.and_then(|e| e.enabled) {
            None => EnforceMode::DefaultTypes,
            Some(true) => EnforceMode::All,
            Some(false) => EnforceMode::Off,
        }
    }

    /// The interval of an optional `spec.behavior.enforce` (default
    /// [`DEFAULT_ENFORCE_INTERVAL`]). An unparsable value (rejected by
    /// validation) falls back to the default.
    pub fn interval_of(enforce: Option<&Enforce>) -> std::time::Duration {
        enforce
            .and_then(|e| e.interval.as_deref())
            .and_then(|i| crate::duration::parse_duration(i).ok())
            .unwrap_or(DEFAULT_ENFORCE_INTERVAL)
    }
}

/// Result of the last finished enforcement check.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum EnforceResult {
    /// Every checked resource was still asleep.
    #[default]
    NoDrift,
    /// Resources were found awake and put back to sleep.
    ReHibernated,
    /// At least one target's check failed.
    Failed,
}

impl EnforceResult {
    /// The name used in status and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoDrift => "NoDrift",
            Self::ReHibernated => "ReHibernated",
            Self::Failed => "Failed",
        }
    }
}

/// `status.enforcement`: drift re-enforcement while hibernated.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnforcementStatus {
    /// The shutdown cycle whose resources are being kept asleep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cycle_id: Option<String>,
    /// When the last check started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_check_at: Option<DateTime<Utc>>,
    /// When the next check is due (unset while a check runs or the plan is
    /// not hibernated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_check_at: Option<DateTime<Utc>>,
    /// How many resources woke up behind the plan's back while it was
    /// hibernated and were put back to sleep (cumulative).
    #[serde(default)]
    pub woke_up_count: u64,
    /// Result of the last finished check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_result: Option<EnforceResult>,
    /// Summary of the last finished check (no secrets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Id of the running or last check (part of its enforce Jobs' names).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_id: Option<String>,
    /// Targets whose enforce Job of the running check has not finished.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_targets: Vec<String>,
    /// Resources put back to sleep by the running or last check.
    #[serde(default)]
    pub check_rehibernated: u64,
    /// Per-target results of the running or last check (`target: summary`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub results: Vec<String>,
}

/// The operation of one runner execution: a cycle's shutdown or wake-up of
/// a target, or an enforcement check of a hibernated target
/// (`HIBERNATOR_OPERATION` / `--operation`: `shutdown`, `wakeup`, `enforce`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RunnerOperation {
    /// A cycle's operation.
    Cycle(super::Operation),
    /// Drift re-enforcement while hibernated.
    Enforce,
}

/// The name of the enforce runner operation (label and environment value).
pub const ENFORCE_OPERATION: &str = "enforce";

impl RunnerOperation {
    /// The lowercase name (`shutdown`, `wakeup`, `enforce`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cycle(op) => op.as_str(),
            Self::Enforce => ENFORCE_OPERATION,
        }
    }

    /// The cycle operation, `None` for enforcement.
    pub fn cycle(self) -> Option<super::Operation> {
        match self {
            Self::Cycle(op) => Some(op),
            Self::Enforce => None,
        }
    }
}

impl From<super::Operation> for RunnerOperation {
    fn from(op: super::Operation) -> Self {
        Self::Cycle(op)
    }
}

impl std::fmt::Display for RunnerOperation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for RunnerOperation {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case(ENFORCE_OPERATION) {
            return Ok(Self::Enforce);
        }
        s.parse::<super::Operation>()
            .map(Self::Cycle)
            .map_err(|_| format!("unknown operation {s:?}: expected shutdown, wakeup or enforce"))
    }
}
