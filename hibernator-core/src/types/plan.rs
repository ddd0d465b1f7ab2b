//! `HibernatePlan`: the schedule, the targets and how to execute them.

use chrono::{DateTime, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube_derive::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Desired state of a `HibernatePlan`.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "hibernator.dev",
    version = "v1alpha1",
    kind = "HibernatePlan",
    doc = "A plan that puts targets to sleep during off-hours and wakes them up exactly as they were.",
    plural = "hibernateplans",
    shortname = "hplan",
    namespaced,
    status = "HibernatePlanStatus",
    crates(
        kube_core = "::kube_core",
        k8s_openapi = "::k8s_openapi",
        schemars = "::schemars",
        serde = "::serde",
        serde_json = "::serde_json"
    ),
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Next transition","type":"date","jsonPath":".status.nextTransition"}"#,
    printcolumn = r#"{"name":"Targets","type":"string","jsonPath":".status.targetsSummary"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct HibernatePlanSpec {
    /// When the targets are off.
    pub schedule: Schedule,
    /// How targets are ordered and how many run at once.
    #[serde(default)]
    pub execution: Execution,
    /// Failure handling and retries.
    #[serde(default)]
    pub behavior: Behavior,
    /// Pauses the plan: no new hibernation or wake-up starts while true.
    #[serde(default, skip_serializing_if = "is_false")]
    pub suspend: bool,
    /// What happens to hibernated targets when the plan is deleted.
    #[serde(default)]
    pub on_delete: OnDelete,
    /// When wake-ups start: with `readyBy`, early enough that the plan is
    /// expected to be Active at the window's end (see `docs/wake-up-on-time.md`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wake_up: Option<WakeUp>,
    /// The resources this plan puts to sleep.
    pub targets: Vec<Target>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The off-hours schedule of a plan (see `docs/schedules.md`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Schedule {
    /// IANA time zone name the windows are written in, e.g. `Europe/Berlin`.
    pub timezone: String,
    /// Weekly windows during which the targets are off.
    #[serde(default)]
    pub off_hours: Vec<OffHourWindow>,
    /// `HolidayCalendar`s whose days are all-day off (or awake) windows in this time zone
    /// (rule R7 of `docs/schedules.md`); same namespace as the plan unless given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calendars: Vec<super::ObjectRef>,
}

/// One weekly off-hours window.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OffHourWindow {
    /// Wall-clock time at which hibernation starts, `HH:MM` (00:00–23:59).
    pub start: String,
    /// Wall-clock time at which targets wake up, `HH:MM` (00:00–24:00); may be before `start` (overnight).
    pub end: String,
    /// Days on which the window's start and end events happen: `MON`…`SUN`.
    pub days_of_week: Vec<String>,
}

/// How the targets of a plan are executed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Execution {
    /// Ordering strategy.
    #[serde(default)]
    pub strategy: Strategy,
}

/// Ordering strategy of a plan's targets (see `docs/strategies.md`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Strategy {
    /// `Sequential`, `Parallel`, `DAG` or `Staged`.
    #[serde(rename = "type", default)]
    pub kind: StrategyType,
    /// Upper bound of targets running at once (Parallel, DAG, Staged). Unbounded when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<u32>,
    /// DAG edges: `to` waits for `from` on shutdown (reversed on wake-up). Only valid with `DAG`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependencies: Vec<Dependency>,
    /// Stages run one after another. Only valid with `Staged`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<Stage>,
}

/// The strategy types.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum StrategyType {
    /// One target at a time, in list order.
    #[default]
    Sequential,
    /// All targets at once, bounded by `maxConcurrency`.
    Parallel,
    /// Targets ordered by explicit dependencies.
    #[serde(rename = "DAG")]
    Dag,
    /// Targets grouped into stages that run one after another.
    Staged,
}

impl StrategyType {
    /// The name used in the CRD.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sequential => "Sequential",
            Self::Parallel => "Parallel",
            Self::Dag => "DAG",
            Self::Staged => "Staged",
        }
    }
}

/// A DAG edge.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Dependency {
    /// Target that runs first on shutdown.
    pub from: String,
    /// Target that waits for `from` on shutdown.
    pub to: String,
}

/// One stage of a `Staged` strategy.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Stage {
    /// Stage name, unique within the plan.
    pub name: String,
    /// Run the stage's targets in parallel (bounded by `maxConcurrency`); otherwise one at a time.
    #[serde(default)]
    pub parallel: bool,
    /// Upper bound of this stage's targets running at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<u32>,
    /// Names of the targets in this stage, in order.
    pub targets: Vec<String>,
}

/// Wake-up timing of a plan (`spec.wakeUp`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WakeUp {
    /// Start each wake-up early, by the plan's expected wake-up duration
    /// (learned from its recent wake-ups), so that it is Active at the
    /// window's end instead of starting to wake up then.
    #[serde(default, skip_serializing_if = "is_false")]
    pub ready_by: bool,
    /// Upper bound of the lead, e.g. `45m` (default `1h`, at most `24h`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_lead: Option<String>,
}

/// Default upper bound of a ready-by lead (`spec.wakeUp.maxLead`).
pub const DEFAULT_MAX_LEAD: std::time::Duration = std::time::Duration::from_secs(3600);

/// Failure handling.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Behavior {
    /// `Strict` stops dispatching at the first failure; `BestEffort` aborts only dependents.
    #[serde(default)]
    pub mode: BehaviorMode,
    /// Automatic retries of a failed target (transient errors only), with exponential backoff.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Drift re-enforcement while hibernated (default: `rds` targets, every `1h`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforce: Option<super::Enforce>,
}

/// Default number of retries.
pub const DEFAULT_RETRIES: u32 = 3;

fn default_retries() -> u32 {
    DEFAULT_RETRIES
}

impl Default for Behavior {
    fn default() -> Self {
        Self {
            mode: BehaviorMode::default(),
            retries: DEFAULT_RETRIES,
            enforce: None,
        }
    }
}

/// Failure mode of a plan.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum BehaviorMode {
    /// A failure stops new dispatches; the plan goes to `Error` once running targets finish.
    #[default]
    Strict,
    /// Dependents of a failed target are aborted; everything else continues.
    BestEffort,
}

/// What deleting a plan does to hibernated targets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum OnDelete {
    /// Wake every hibernated target up before the plan goes away.
    #[default]
    WakeUp,
    /// Leave targets as they are and drop the restore data.
    Abandon,
}

/// One resource group the plan hibernates.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    /// Name, unique within the plan (DNS label).
    pub name: String,
    /// Executor type: `ec2`, `rds`, `eks`, `karpenter`, `workloadscaler` or a custom one.
    #[serde(rename = "type")]
    pub kind: String,
    /// The connector the executor uses: a `CloudProvider`, a `K8SCluster`,
    /// or a connector kind of a custom executor. Omitted for executor types
    /// that need no connector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connector_ref: Option<ConnectorRef>,
    /// Executor-specific parameters (see `docs/executors.md`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown_object")]
    pub parameters: Option<serde_json::Value>,
    /// Upper bound of one operation on this target, e.g. `30m` (default `1h`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

/// Default per-target operation timeout.
pub const DEFAULT_TARGET_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3600);

/// Schema of a free-form object whose fields the executor validates.
pub(crate) fn preserve_unknown_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

/// Reference to the connector object of a target.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectorRef {
    /// `CloudProvider`, `K8SCluster`, or the kind of a custom executor's connector.
    pub kind: ConnectorKind,
    /// Name of the connector object.
    pub name: String,
    /// Namespace of the connector object; defaults to the plan's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

impl ConnectorRef {
    /// A reference to the connector `name` of `kind` in the plan's namespace.
    pub fn new(kind: ConnectorKind, name: impl Into<String>) -> Self {
        Self {
            kind,
            name: name.into(),
            namespace: None,
        }
    }
}

/// Kinds of connector objects. Open: an executor set may add executors whose
/// connector is a kind of its own (the CRD accepts any kind name, the
/// executor set of the binary decides which kinds it serves).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConnectorKind {
    /// A `CloudProvider` (AWS account and credentials).
    #[default]
    CloudProvider,
    /// A `K8SCluster` (Kubernetes API access).
    K8sCluster,
    /// Any other kind, served by a custom executor's connector factory.
    Other(String),
}

impl ConnectorKind {
    /// The kind as written in `connectorRef.kind`.
    pub fn as_str(&self) -> &str {
        match self {
            Self::CloudProvider => "CloudProvider",
            Self::K8sCluster => "K8SCluster",
            Self::Other(kind) => kind,
        }
    }

    /// The kind of that name (`CloudProvider` and `K8SCluster` map to their
    /// variants, every other name to [`ConnectorKind::Other`]).
    pub fn from_name(name: &str) -> Self {
        match name {
            "CloudProvider" => Self::CloudProvider,
            "K8SCluster" => Self::K8sCluster,
            other => Self::Other(other.to_string()),
        }
    }
}

impl std::fmt::Display for ConnectorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ConnectorKind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ConnectorKind {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        if name.is_empty() {
            return Err(serde::de::Error::custom(
                "a connector kind must not be empty",
            ));
        }
        Ok(Self::from_name(&name))
    }
}

impl JsonSchema for ConnectorKind {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ConnectorKind".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "minLength": 1,
            "description": "`CloudProvider`, `K8SCluster`, or the connector kind of a custom executor.",
        })
    }
}

/// The operation a cycle performs.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    /// Put targets to sleep.
    Shutdown,
    /// Bring targets back exactly as they were.
    Wakeup,
}

impl Operation {
    /// The lowercase name (`shutdown`/`wakeup`), used in labels and file names.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Shutdown => "shutdown",
            Self::Wakeup => "wakeup",
        }
    }
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Operation {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "shutdown" | "hibernate" => Ok(Self::Shutdown),
            "wakeup" | "wake-up" | "wake" => Ok(Self::Wakeup),
            other => Err(format!(
                "unknown operation {other:?}: expected shutdown or wakeup"
            )),
        }
    }
}

/// Observed state of a `HibernatePlan`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HibernatePlanStatus {
    /// Lifecycle phase.
    #[serde(default)]
    pub phase: PlanPhase,
    /// `Ready`, `Hibernated`, `Progressing` and `Degraded` conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Generation of the spec this status reflects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Id of the running or last cycle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_cycle_id: Option<String>,
    /// Operation of the running or last cycle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_operation: Option<Operation>,
    /// Next instant at which the schedule changes state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_transition: Option<DateTime<Utc>>,
    /// Human summary of target progress, e.g. `3/5 hibernated` (printer column).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targets_summary: Option<String>,
    /// Per-target ledger of the current cycle.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub executions: Vec<ExecutionStatus>,
    /// Past cycles, newest first, at most 10 entries (`MAX_HISTORY`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<CycleRecord>,
    /// When the running or last cycle started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cycle_started_at: Option<DateTime<Utc>>,
    /// The `hibernator.dev/override` in force (`hibernate` or `wakeup`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub override_state: Option<String>,
    /// When the override in force expires (`hibernator.dev/override-until`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub override_until: Option<DateTime<Utc>>,
    /// When a `hibernator.dev/suspend-until` suspension in force ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspended_until: Option<DateTime<Utc>>,
    /// The last `hibernator.dev/retry-now` annotation value acted upon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_retry_token: Option<String>,
    /// Ready-by wake-up: the lead in force, learned wake-up durations and
    /// how early or late recent wake-ups were ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wake_up: Option<WakeUpStatus>,
    /// Hibernated hours against scheduled off-hours, per month and target
    /// (bounded: see `docs/savings-report.md`).
    // Shared (`Arc`): the controller clones and compares the status on
    // every reconcile, and this is its largest part.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "super::accounting::shared"
    )]
    #[schemars(with = "Option<super::PlanAccounting>")]
    pub accounting: Option<std::sync::Arc<super::PlanAccounting>>,
    /// Drift re-enforcement while hibernated (`spec.behavior.enforce`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforcement: Option<super::EnforcementStatus>,
}

/// Upper bound of the learned wake-up durations kept per target and of
/// `status.wakeUp.readiness` entries.
pub const MAX_WAKE_SAMPLES: usize = 10;

/// Ready-by wake-up state of a plan (`status.wakeUp`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WakeUpStatus {
    /// The lead in force, in seconds (0 without `spec.wakeUp.readyBy`).
    #[serde(default)]
    pub lead_seconds: u64,
    /// Where the lead comes from: `history`, `defaults` (no wake-up measured
    /// yet for some target), or `maxLead` (capped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lead_source: Option<String>,
    /// The end of the current (or last) off-hours window, as scheduled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_end: Option<DateTime<Utc>>,
    /// When the next wake-up starts: `windowEnd` minus the lead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_wake_up_start: Option<DateTime<Utc>>,
    /// The window end the running wake-up aims at (set when a scheduled
    /// wake-up starts, cleared when it ends).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cycle_window_end: Option<DateTime<Utc>>,
    /// Measured wake-up durations per target, newest first, at most
    /// [`MAX_WAKE_SAMPLES`] each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub durations: Vec<TargetDurations>,
    /// How early (positive) or late (negative) recent scheduled wake-ups were
    /// ready against the window's end, newest first, at most [`MAX_WAKE_SAMPLES`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub readiness: Vec<Readiness>,
}

/// Measured wake-up durations of one target.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetDurations {
    /// Target name.
    pub target: String,
    /// Durations of successful wake-ups in seconds, newest first.
    #[serde(default)]
    pub seconds: Vec<u64>,
}

/// How one scheduled wake-up went against the window's end.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Readiness {
    /// The wake-up cycle.
    pub cycle_id: String,
    /// The scheduled end of the off-hours window.
    pub window_end: DateTime<Utc>,
    /// When every target was awake (absent when the wake-up failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_at: Option<DateTime<Utc>>,
    /// `windowEnd − readyAt` in seconds: positive when ready early, negative
    /// when late (absent when the wake-up failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub early_seconds: Option<i64>,
}

/// Upper bound of `status.history` entries.
pub const MAX_HISTORY: usize = 10;

impl HibernatePlanStatus {
    /// Prepends a finished cycle to `history`, keeping at most [`MAX_HISTORY`] entries.
    pub fn push_history(&mut self, record: CycleRecord) {
        self.history.insert(0, record);
        self.history.truncate(MAX_HISTORY);
    }
}

/// Lifecycle phase of a plan.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum PlanPhase {
    /// Not reconciled yet.
    #[default]
    Pending,
    /// Targets are awake.
    Active,
    /// A shutdown cycle is running.
    Hibernating,
    /// Targets are asleep.
    Hibernated,
    /// A wake-up cycle is running.
    WakingUp,
    /// `spec.suspend` (or a suspend annotation) is in force.
    Suspended,
    /// The last cycle failed; see `executions` and conditions.
    Error,
}

/// Per-target execution ledger entry.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionStatus {
    /// Target name.
    pub target: String,
    /// Executor type of the target.
    pub executor: String,
    /// Execution state.
    #[serde(default)]
    pub state: ExecutionState,
    /// Attempts made in this cycle.
    #[serde(default)]
    pub attempts: u32,
    /// When the first attempt started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    /// When the target reached a terminal state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// Last reported progress, 0–100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<u8>,
    /// Last message (error text on failure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When the runner reported `progress`/`message` (set together with them
    /// by the streaming server; `GetProgress` answers it as `timestamp`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress_time: Option<DateTime<Utc>>,
    /// `namespace/name` of the runner Job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_ref: Option<String>,
    /// Where the runner's logs are: with execution-log persistence on, the
    /// stored object (`s3://<bucket>/<key>` or the file path), else the
    /// runner Job (`job/<name>`, for `kubectl logs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs_ref: Option<String>,
    /// Restore ledger reference (`configmap-name#key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_ref: Option<String>,
    /// Name of the ConfigMap holding restore data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_config_map_ref: Option<String>,
    /// Execution id of the latest attempt (the runner Job's `hibernator.dev/execution-id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_id: Option<String>,
    /// When the next automatic retry of a failed attempt is due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_retry_at: Option<DateTime<Utc>>,
}

/// State of one target in a cycle.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum ExecutionState {
    /// Not started.
    #[default]
    Pending,
    /// Running.
    Running,
    /// Finished successfully.
    Completed,
    /// Finished with an error (after retries).
    Failed,
    /// Not run because a dependency failed (BestEffort) or the cycle stopped (Strict).
    Aborted,
}

impl ExecutionState {
    /// True for `Completed`, `Failed` and `Aborted`.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Aborted)
    }
}

/// Summary of one finished cycle.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CycleRecord {
    /// Cycle id.
    pub cycle_id: String,
    /// `shutdown` or `wakeup`.
    pub operation: Operation,
    /// When the cycle started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    /// When the cycle finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// True when every target completed.
    pub success: bool,
    /// Number of completed targets.
    #[serde(default)]
    pub completed: u32,
    /// Number of failed targets.
    #[serde(default)]
    pub failed: u32,
    /// Number of aborted targets.
    #[serde(default)]
    pub aborted: u32,
    /// Short summary (first failure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}
