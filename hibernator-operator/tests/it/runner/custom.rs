//! The runner with an executor set of its own: an executor that needs no
//! connector, one whose connector is a kind the Hibernator CRDs do not
//! define (read by its factory), and the errors when a target names the
//! wrong connector or a type the binary does not have.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use hibernator_core::diag::Diagnostics;
use hibernator_core::executor::{
    EnforceOutcome, ExecutionContext, Executor, ExecutorError, ShutdownOutcome, TypedExecutor,
    WakeupOutcome, category, typed,
};
use hibernator_core::params::{ParameterCheck, TypedParameters, ValidateParameters};
use hibernator_core::restore::{RestoreRecord, RestoreStore};
use hibernator_core::types::{ConnectorKind, HibernatePlan, Operation, PlanPhase, RunnerOperation};
use hibernator_executors::{ConnectorFactory, ConnectorRequest, ExecutorSet};
use hibernator_kube::ConfigMapRestoreStore;
use hibernator_operator::runner::{RunnerArgs, run_with};
use hibernator_testkit::kube::TestCluster;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, PostParams};
use kube::core::ApiResource;
use serde::Deserialize;
use serde_json::json;

use super::cluster;

/// Counters that can be put to sleep (0) and woken up to their value.
type Counters = Arc<Mutex<BTreeMap<String, u64>>>;

#[derive(Deserialize, schemars::JsonSchema)]
struct CounterParams {
    names: Vec<String>,
}

impl ValidateParameters for CounterParams {
    fn validate(&self, field: &str, d: &mut Diagnostics) {
        if self.names.is_empty() {
            d.error(format!("{field}.names"), "list at least one counter");
        }
    }
}

/// Type `counter`: hibernates counters of `counters`, keys `<prefix><name>`.
struct CounterExecutor {
    counters: Counters,
    prefix: String,
}

#[async_trait]
impl TypedExecutor for CounterExecutor {
    const TYPE: &'static str = "counter";
    type Params = CounterParams;

    async fn shutdown(
        &self,
        ctx: &ExecutionContext,
        params: &CounterParams,
    ) -> Result<ShutdownOutcome, ExecutorError> {
        let mut outcome = ShutdownOutcome::default();
        for name in &params.names {
            let key = format!("{}{name}", self.prefix);
            let mut counters = self.counters.lock().unwrap();
            let value = counters.get(name).copied().unwrap_or(0);
            outcome.resources.push(key.clone());
            if value > 0 {
                ctx.record_awake_state(&key, json!(value));
                counters.insert(name.clone(), 0);
                outcome.observations.insert(key, json!(value));
            }
        }
        Ok(outcome)
    }

    async fn wakeup(
        &self,
        _ctx: &ExecutionContext,
        _params: &CounterParams,
        record: &RestoreRecord,
    ) -> Result<WakeupOutcome, ExecutorError> {
        let mut outcome = WakeupOutcome::default();
        for (key, entry) in &record.entries {
            let name = key.trim_start_matches(&self.prefix).to_string();
            let value = entry.state.as_u64().unwrap_or_default();
            self.counters.lock().unwrap().insert(name, value);
            outcome.restored.push(key.clone());
        }
        Ok(outcome)
    }
    const SUPPORTS_ENFORCE: bool = true;

    async fn enforce(
        &self,
        _ctx: &ExecutionContext,
        _params: &CounterParams,
        record: &RestoreRecord,
    ) -> Result<EnforceOutcome, ExecutorError> {
        let mut outcome = EnforceOutcome::default();
        for key in record.entries.keys() {
            let name = key.trim_start_matches(&self.prefix).to_string();
            outcome.checked.push(key.clone());
            let mut counters = self.counters.lock().unwrap();
            if counters.get(&name).copied().unwrap_or(0) > 0 {
                counters.insert(name, 0);
                outcome.rehibernated.push(key.clone());
            }
        }
        Ok(outcome)
    }
}

/// The connector kind of `remote-counter` targets: `CounterAccount`
/// (`example.com/v1`), whose `spec.prefix` the factory reads.
fn counter_accounts() -> ApiResource {
    ApiResource {
        group: "example.com".into(),
        version: "v1".into(),
        api_version: "example.com/v1".into(),
        kind: "CounterAccount".into(),
        plural: "counteraccounts".into(),
    }
}

fn counter_account_crd() -> CustomResourceDefinition {
    serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "counteraccounts.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"kind": "CounterAccount", "plural": "counteraccounts",
                "singular": "counteraccount", "listKind": "CounterAccountList"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object",
                    "x-kubernetes-preserve-unknown-fields": true}}}]},
    }))
    .unwrap()
}

/// Builds `remote-counter` executors (the `counter` executor under another
/// type name would need its own TYPE, so this factory wraps it) from a
/// `CounterAccount`.
struct RemoteCounters(Counters);

/// `counter`, registered as `remote-counter`.
struct Renamed(Arc<dyn Executor>);

#[async_trait]
impl Executor for Renamed {
    fn executor_type(&self) -> &str {
        "remote-counter"
    }

    fn parameter_check(&self) -> Arc<dyn ParameterCheck> {
        Arc::new(TypedParameters::<CounterParams>::new("remote-counter"))
    }

    async fn shutdown(
        &self,
        ctx: &ExecutionContext,
        params: &serde_json::Value,
    ) -> Result<ShutdownOutcome, ExecutorError> {
        self.0.shutdown(ctx, params).await
    }

    async fn wakeup(
        &self,
        ctx: &ExecutionContext,
        params: &serde_json::Value,
        record: &RestoreRecord,
    ) -> Result<WakeupOutcome, ExecutorError> {
        self.0.wakeup(ctx, params, record).await
    }
}

#[async_trait]
impl ConnectorFactory for RemoteCounters {
    fn executor_type(&self) -> &str {
        "remote-counter"
    }

    fn parameter_check(&self) -> Arc<dyn ParameterCheck> {
        Arc::new(TypedParameters::<CounterParams>::new("remote-counter"))
    }

    fn connector_kind(&self) -> ConnectorKind {
        ConnectorKind::Other("CounterAccount".into())
    }

    async fn build(
        &self,
        request: ConnectorRequest<'_>,
    ) -> Result<Arc<dyn Executor>, ExecutorError> {
        let api = Api::<DynamicObject>::namespaced_with(
            request.client.clone(),
            request.namespace,
            &counter_accounts(),
        );
        let account = api.get(&request.reference.name).await.map_err(|e| {
            ExecutorError::permanent(
                category::NOT_FOUND,
                format!("CounterAccount {}: {e}", request.reference.name),
            )
        })?;
        let prefix = account.data["spec"]["prefix"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        Ok(Arc::new(Renamed(typed(CounterExecutor {
            counters: self.0.clone(),
            prefix,
        }))))
    }
}

struct Fixture {
    cluster: TestCluster,
    counters: Counters,
    executors: ExecutorSet,
    dir: tempfile::TempDir,
}

async fn fixture(prefix: &str) -> Fixture {
    let cluster = cluster(prefix).await;
    cluster.ensure_crd(&counter_account_crd()).await.unwrap();
    let ns = cluster.namespace().to_string();
    let account: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "example.com/v1", "kind": "CounterAccount",
        "metadata": {"name": "main"}, "spec": {"prefix": "remote/"},
    }))
    .unwrap();
    Api::<DynamicObject>::namespaced_with(cluster.client(), &ns, &counter_accounts())
        .create(&PostParams::default(), &account)
        .await
        .unwrap();
    let plan: HibernatePlan = serde_json::from_value(json!({
        "apiVersion": "hibernator.dev/v1alpha1", "kind": "HibernatePlan",
        "metadata": {"name": "custom"},
        "spec": {
            "schedule": {"timezone": "UTC", "offHours": [
                {"start": "20:00", "end": "06:00", "daysOfWeek": ["MON", "TUE", "WED", "THU", "FRI"]},
            ]},
            "behavior": {"retries": 0},
            "targets": [
                {"name": "local", "type": "counter", "parameters": {"names": ["a", "b"]}},
                {"name": "remote", "type": "remote-counter",
                 "connectorRef": {"kind": "CounterAccount", "name": "main"},
                 "parameters": {"names": ["c"]}},
                {"name": "wrong", "type": "remote-counter",
                 "connectorRef": {"kind": "CloudProvider", "name": "aws"},
                 "parameters": {"names": ["c"]}},
                {"name": "builtin", "type": "ec2",
                 "connectorRef": {"kind": "CloudProvider", "name": "aws"},
                 "parameters": {"selector": {"tags": {"role": "x"}}}},
            ],
        },
    }))
    .unwrap();
    Api::<HibernatePlan>::namespaced(cluster.client(), &ns)
        .create(&PostParams::default(), &plan)
        .await
        .unwrap();
    let counters: Counters = Arc::new(Mutex::new(BTreeMap::from([
        ("a".to_string(), 3),
        ("b".to_string(), 0),
        ("c".to_string(), 7),
    ])));
    let executors = ExecutorSet::empty()
        .standalone(typed(CounterExecutor {
            counters: counters.clone(),
            prefix: "counter/".into(),
        }))
        .connector(RemoteCounters(counters.clone()));
    Fixture {
        cluster,
        counters,
        executors,
        dir: tempfile::tempdir().unwrap(),
    }
}

impl Fixture {
    fn args(&self, target: &str, operation: impl Into<RunnerOperation>) -> RunnerArgs {
        let operation = operation.into();
        RunnerArgs::new(
            self.cluster.namespace(),
            "custom",
            target,
            operation,
            "cycle-1",
            self.dir.path().join(format!("{target}-{operation}.log")),
        )
    }

    fn counters(&self) -> Vec<u64> {
        self.counters.lock().unwrap().values().copied().collect()
    }

    async fn entries(&self, target: &str) -> Vec<String> {
        ConfigMapRestoreStore::new(self.cluster.client(), self.cluster.namespace(), "custom")
            .load(target)
            .await
            .unwrap()
            .map(|r| r.value.entries.keys().cloned().collect())
            .unwrap_or_default()
    }
}

#[tokio::test]
async fn executors_without_a_connector_and_with_a_connector_of_their_own_run() {
    let f = fixture("runner-custom").await;
    let client = f.cluster.client();

    let out = run_with(
        f.args("local", Operation::Shutdown),
        client.clone(),
        &f.executors,
    )
    .await;
    assert_eq!(out.exit_code, 0, "{:?}", out.termination);
    let out = run_with(
        f.args("remote", Operation::Shutdown),
        client.clone(),
        &f.executors,
    )
    .await;
    assert_eq!(out.exit_code, 0, "{:?}", out.termination);
    assert_eq!(f.counters(), [0, 0, 0]);
    assert_eq!(f.entries("local").await, ["counter/a"]);
    // The factory read the CounterAccount: its prefix names the entry.
    assert_eq!(f.entries("remote").await, ["remote/c"]);

    for target in ["local", "remote"] {
        let out = run_with(
            f.args(target, Operation::Wakeup),
            client.clone(),
            &f.executors,
        )
        .await;
        assert_eq!(out.exit_code, 0, "{target}: {:?}", out.termination);
    }
    assert_eq!(f.counters(), [3, 0, 7]);
    assert!(f.entries("local").await.is_empty());
    f.cluster.cleanup().await.unwrap();
}

#[tokio::test]
async fn wrong_connectors_and_unknown_types_are_named() {
    let f = fixture("runner-custom-errors").await;
    let client = f.cluster.client();
    let out = run_with(
        f.args("wrong", Operation::Shutdown),
        client.clone(),
        &f.executors,
    )
    .await;
    assert_eq!(out.exit_code, 1);
    assert!(
        out.termination.message.contains(
            "target \"wrong\" (type \"remote-counter\") needs a connectorRef of kind CounterAccount, but names CloudProvider \"aws\""
        ),
        "{}",
        out.termination.message
    );
    let out = run_with(f.args("builtin", Operation::Shutdown), client, &f.executors).await;
    assert_eq!(out.exit_code, 1);
    assert!(
        out.termination.message.contains(
            "this binary has no executor of type \"ec2\" (it knows: counter, remote-counter)"
        ),
        "{}",
        out.termination.message
    );
    assert_eq!(f.counters(), [3, 0, 7], "nothing ran");
    f.cluster.cleanup().await.unwrap();
}

#[tokio::test]
async fn the_enforce_operation_rehibernates_recorded_resources_only_while_hibernated() {
    let f = fixture("runner-enforce").await;
    let client = f.cluster.client();
    let out = run_with(
        f.args("local", Operation::Shutdown),
        client.clone(),
        &f.executors,
    )
    .await;
    assert_eq!(out.exit_code, 0, "{:?}", out.termination);
    // Drift: `a` (recorded) and `b` (not recorded) wake up behind the plan's back.
    f.counters.lock().unwrap().insert("a".into(), 5);
    f.counters.lock().unwrap().insert("b".into(), 4);

    // The plan's status does not say Hibernated by cycle-1: nothing is touched.
    let out = run_with(
        f.args("local", RunnerOperation::Enforce),
        client.clone(),
        &f.executors,
    )
    .await;
    assert_eq!(out.exit_code, 1, "{:?}", out.termination);
    assert!(
        out.termination.message.contains("no longer hibernated"),
        "{:?}",
        out.termination
    );
    assert_eq!(f.counters(), [5, 4, 7]);

    let plans: Api<HibernatePlan> = Api::namespaced(client.clone(), f.cluster.namespace());
    let mut plan = plans.get("custom").await.unwrap();
    let mut status = plan.status.take().unwrap_or_default();
    status.phase = PlanPhase::Hibernated;
    status.current_cycle_id = Some("cycle-1".into());
    status.current_operation = Some(Operation::Shutdown);
    plan.status = Some(status);
    plans
        .replace_status("custom", &PostParams::default(), &plan)
        .await
        .unwrap();
    let out = run_with(
        f.args("local", RunnerOperation::Enforce),
        client.clone(),
        &f.executors,
    )
    .await;
    assert_eq!(out.exit_code, 0, "{:?}", out.termination);
    assert_eq!(out.termination.rehibernated, Some(1));
    assert_eq!(out.termination.resources, 1, "resources checked");
    assert!(
        out.termination
            .message
            .contains("enforcement of target local"),
        "{:?}",
        out.termination
    );
    assert_eq!(
        f.counters(),
        [0, 4, 7],
        "only the recorded counter is put back to sleep"
    );
    assert_eq!(f.entries("local").await, ["counter/a"]);

    // The wake-up restores the awake state recorded at shutdown (3), not the drifted 5.
    let out = run_with(
        f.args("local", Operation::Wakeup),
        client.clone(),
        &f.executors,
    )
    .await;
    assert_eq!(out.exit_code, 0, "{:?}", out.termination);
    assert_eq!(f.counters(), [3, 4, 7]);
    f.cluster.cleanup().await.unwrap();
}
