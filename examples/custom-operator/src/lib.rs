//! An executor the built-ins do not have, and the `hibernator` binary with
//! it: `argocd-autosync` pauses the automated sync of Argo CD
//! `Application`s while a plan is hibernated and restores it exactly.
//!
//! Why a user wants it: Argo CD's self-heal reverts every replica change the
//! `workloadscaler` makes, so the workloads come back up minutes after they
//! were hibernated. Put an `argocd-autosync` target first in a DAG plan; on
//! wake-up the order mirrors, so auto-sync returns only after the workloads
//! are back:
//!
//! ```yaml
//! execution:
//!   strategy:
//!     type: DAG
//!     dependencies: [{from: gitops, to: workloads}]
//! targets:
//!   - name: gitops
//!     type: argocd-autosync
//!     connectorRef: {kind: K8SCluster, name: here}
//!     parameters: {namespace: argocd, selector: {matchLabels: {env: dev}}}
//!   - name: workloads
//!     type: workloadscaler
//!     connectorRef: {kind: K8SCluster, name: here}
//!     parameters: {namespace: {literals: [shop]}}
//! ```
//!
//! - **Shutdown**: for each selected Application whose
//!   `spec.syncPolicy.automated` is set (and not `enabled: false`), record
//!   that object, then remove it (a merge patch; what `argocd app set
//!   --sync-policy none` does). Applications already without automated sync
//!   are not recorded: they were paused by an earlier cycle whose wake-up
//!   failed (their entry holds the awake policy) or are synced by hand on
//!   purpose. With `awaitCompletion` (default on), waits until none of the
//!   selected Applications has a sync operation running, so a sync that
//!   started before the pause cannot undo the next target's work.
//! - **Wake-up**: puts back exactly the recorded `automated` object (fields
//!   set since are removed). An Application that no longer exists fails its
//!   entry, which stays for the next attempt.
//!
//! The executor uses the helpers the built-ins use: `wait_for_all` and
//! `laggards_timeout` (waits), `NamesOrSelector` and `LabelSelector`
//! (parameters), the Kubernetes error classification and paginated lists of
//! `hibernator_executors::kubernetes`.

use std::time::Duration;

use async_trait::async_trait;
use hibernator_core::diag::Diagnostics;
use hibernator_core::executor::{
    ExecutionContext, ExecutorError, Laggards, ShutdownOutcome, TypedExecutor, WakeupOutcome,
    category, laggards_timeout, wait_for_all,
};
use hibernator_core::params::ValidateParameters;
use hibernator_core::restore::RestoreRecord;
use hibernator_core::selector::{
    LabelSelector, NamesOrSelector, check_dns_label, check_dns_subdomain,
};
use hibernator_executors::kubernetes::common::{
    from_state, labels, list_all, patch_params, to_state,
};
use hibernator_executors::kubernetes::error::{classify, is_not_found};
use hibernator_executors::{AwaitCompletion, ExecutorSet};
use kube::api::{Api, DynamicObject, ListParams, Patch};
use kube::core::ApiResource;
use kube::{Client, ResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// Executor type name (the target's `type:`).
pub const TYPE: &str = "argocd-autosync";
/// Namespace of Applications when `namespace` is not set.
pub const DEFAULT_NAMESPACE: &str = "argocd";
/// How often Applications are polled while waiting.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(5);

/// The executors of this binary: the built-ins plus `argocd-autosync`,
/// which acts on the cluster of its target's `K8SCluster` connector.
pub fn executors() -> ExecutorSet {
    ExecutorSet::new().kubernetes(ArgoAutoSync::new)
}

/// `argoproj.io/v1alpha1` Application.
pub fn applications() -> ApiResource {
    ApiResource {
        group: "argoproj.io".into(),
        version: "v1alpha1".into(),
        api_version: "argoproj.io/v1alpha1".into(),
        kind: "Application".into(),
        plural: "applications".into(),
    }
}

/// The restore-entry key of an Application.
pub fn resource_key(namespace: &str, name: &str) -> String {
    format!("argoproj.io/Application/{namespace}/{name}")
}

fn default_namespace() -> String {
    DEFAULT_NAMESPACE.to_string()
}

/// Parameters of an `argocd-autosync` target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Parameters {
    /// Namespace of the Applications (default `argocd`).
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// Applications by name. Exclusive with `selector`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applications: Option<Vec<String>>,
    /// Applications by label. Exclusive with `applications`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
    /// Shutdown waits until no selected Application has a sync running.
    #[serde(default)]
    pub await_completion: AwaitCompletion,
}

impl ValidateParameters for Parameters {
    fn validate(&self, field: &str, d: &mut Diagnostics) {
        if let Err(e) = check_dns_label(&self.namespace) {
            d.error(format!("{field}.namespace"), e);
        }
        NamesOrSelector {
            names: self.applications.as_deref(),
            names_key: "applications",
            empty_names: "list at least one Application, or use selector",
            check_name: check_dns_subdomain,
            selector: self.selector.as_ref(),
            selector_key: "selector",
            empty_selector: "an empty selector selects every Application of the namespace",
        }
        .validate(field, d);
        self.await_completion
            .validate(&format!("{field}.awaitCompletion"), d);
    }
}

/// The awake state of one Application: where it is and its automated sync
/// policy as it was.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AwakeState {
    /// Namespace of the Application.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// `spec.syncPolicy.automated` as found.
    pub automated: Map<String, Value>,
}

/// The automated sync policy of an Application when it is on.
pub fn automated(app: &DynamicObject) -> Option<&Map<String, Value>> {
    let automated = app.data["spec"]["syncPolicy"]["automated"].as_object()?;
    (automated.get("enabled") != Some(&Value::Bool(false))).then_some(automated)
}

/// The merge patch that makes `spec.syncPolicy.automated` exactly
/// `recorded`: its fields, and `null` for fields set since.
pub fn restore_patch(recorded: &Map<String, Value>, current: Option<&Map<String, Value>>) -> Value {
    let mut automated = recorded.clone();
    for key in current.into_iter().flat_map(|c| c.keys()) {
        if !recorded.contains_key(key) {
            automated.insert(key.clone(), Value::Null);
        }
    }
    json!({"spec": {"syncPolicy": {"automated": automated}}})
}

/// The `argocd-autosync` executor. Cheap to clone.
#[derive(Clone)]
pub struct ArgoAutoSync {
    client: Client,
    poll_interval: Duration,
}

impl std::fmt::Debug for ArgoAutoSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArgoAutoSync")
            .field("poll_interval", &self.poll_interval)
            .finish_non_exhaustive()
    }
}

impl ArgoAutoSync {
    /// The executor acting through `client` (the target cluster's).
    pub fn new(client: Client) -> Self {
        Self {
            client,
            poll_interval: DEFAULT_POLL_INTERVAL,
        }
    }

    /// Sets how often Applications are polled while waiting.
    #[must_use]
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    fn api(&self, namespace: &str) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), namespace, &applications())
    }

    /// The selected Applications, sorted by name. A listed Application that
    /// does not exist is a permanent error: the plan names it.
    async fn select(&self, params: &Parameters) -> Result<Vec<DynamicObject>, ExecutorError> {
        let ns = &params.namespace;
        let api = self.api(ns);
        let mut apps = match (&params.applications, &params.selector) {
            (Some(names), _) => {
                let mut apps = Vec::new();
                for name in names {
                    match api.get_opt(name).await {
                        Ok(Some(app)) => apps.push(app),
                        Ok(None) => {
                            return Err(ExecutorError::permanent(
                                category::NOT_FOUND,
                                format!("Application {ns}/{name} does not exist"),
                            )
                            .with_resource(resource_key(ns, name)));
                        }
                        Err(e) => {
                            return Err(classify(&e, &format!("get Application {ns}/{name}")));
                        }
                    }
                }
                apps
            }
            (None, selector) => {
                let all = list_all(
                    &api,
                    ListParams::default(),
                    &format!("Applications in {ns}"),
                )
                .await?;
                all.into_iter()
                    .filter(|app| {
                        selector
                            .as_ref()
                            .is_none_or(|s| s.matches(&labels(&app.metadata)))
                    })
                    .collect()
            }
        };
        apps.sort_by_key(|app| app.name_any());
        apps.dedup_by_key(|app| app.name_any());
        Ok(apps)
    }

    /// Polls until none of `names` has a sync operation running; returns the
    /// Applications still syncing when `timeout` ran out.
    async fn wait_for_syncs(
        &self,
        ctx: &ExecutionContext,
        namespace: &str,
        names: &[String],
        timeout: Duration,
    ) -> Result<Laggards, ExecutorError> {
        let what = format!(
            "waiting for the running syncs of {} Applications",
            names.len()
        );
        let api = self.api(namespace);
        wait_for_all(ctx, &what, timeout, self.poll_interval, || async {
            let mut behind = Laggards::new();
            for name in names {
                let app = api
                    .get(name)
                    .await
                    .map_err(|e| classify(&e, &format!("get Application {namespace}/{name}")))?;
                let phase = app.data["status"]["operationState"]["phase"].as_str();
                if matches!(phase, Some("Running" | "Terminating")) {
                    behind.insert(name.clone(), format!("sync {}", phase.unwrap_or_default()));
                }
            }
            Ok(behind)
        })
        .await
    }

    /// Puts back the recorded automated policy of one Application.
    async fn restore_one(&self, key: &str, state: &AwakeState) -> Result<(), ExecutorError> {
        let (ns, name) = (&state.namespace, &state.name);
        let api = self.api(ns);
        let current = match api.get(name).await {
            Ok(app) => app,
            Err(e) if is_not_found(&e) => {
                return Err(ExecutorError::permanent(
                    category::NOT_FOUND,
                    format!(
                        "Application {ns}/{name} no longer exists; its auto-sync cannot be restored (remove its restore entry if it was deleted on purpose)"
                    ),
                )
                .with_resource(key));
            }
            Err(e) => {
                return Err(
                    classify(&e, &format!("get Application {ns}/{name}")).with_resource(key)
                );
            }
        };
        let patch = restore_patch(
            &state.automated,
            current.data["spec"]["syncPolicy"]["automated"].as_object(),
        );
        api.patch(name, &patch_params(), &Patch::Merge(&patch))
            .await
            .map_err(|e| {
                classify(&e, &format!("restore auto-sync of Application {ns}/{name}"))
                    .with_resource(key)
            })?;
        Ok(())
    }
}

#[async_trait]
impl TypedExecutor for ArgoAutoSync {
    const TYPE: &'static str = TYPE;
    type Params = Parameters;

    async fn shutdown(
        &self,
        ctx: &ExecutionContext,
        params: &Parameters,
    ) -> Result<ShutdownOutcome, ExecutorError> {
        ctx.check_cancelled()?;
        let ns = &params.namespace;
        let apps = self.select(params).await?;
        ctx.progress(20, &format!("{} Applications selected", apps.len()));
        let mut outcome = ShutdownOutcome::default();
        let mut names = Vec::new();
        for app in &apps {
            ctx.check_cancelled()?;
            let name = app.name_any();
            let key = resource_key(ns, &name);
            outcome.resources.push(key.clone());
            names.push(name.clone());
            let Some(policy) = automated(app) else {
                let earlier = ctx.prior_record().is_some_and(|r| r.entry(&key).is_some());
                ctx.debug(&format!(
                    "Application {ns}/{name} has no automated sync{}; not recorded",
                    if earlier {
                        " (paused by an earlier cycle)"
                    } else {
                        ""
                    }
                ));
                continue;
            };
            let state = to_state(
                &AwakeState {
                    namespace: ns.clone(),
                    name: name.clone(),
                    automated: policy.clone(),
                },
                &key,
            )?;
            // Record before changing, so a failure later cannot lose it.
            ctx.record_awake_state(key.clone(), state.clone());
            self.api(ns)
                .patch(
                    &name,
                    &patch_params(),
                    &Patch::Merge(json!({"spec": {"syncPolicy": {"automated": null}}})),
                )
                .await
                .map_err(|e| {
                    classify(&e, &format!("pause auto-sync of Application {ns}/{name}"))
                        .with_resource(&key)
                })?;
            outcome.observations.insert(key, state);
            ctx.info(&format!("Application {ns}/{name}: automated sync paused"));
        }
        ctx.progress(70, "automated sync paused");
        if params.await_completion.enabled && !names.is_empty() {
            let timeout = params.await_completion.timeout();
            let laggards = self.wait_for_syncs(ctx, ns, &names, timeout).await?;
            if !laggards.is_empty() {
                return Err(laggards_timeout(
                    "waiting for running syncs to finish",
                    &laggards,
                    timeout,
                    |name| resource_key(ns, name),
                ));
            }
        }
        ctx.progress(100, "Applications paused");
        Ok(outcome)
    }

    async fn wakeup(
        &self,
        ctx: &ExecutionContext,
        _params: &Parameters,
        record: &RestoreRecord,
    ) -> Result<WakeupOutcome, ExecutorError> {
        ctx.check_cancelled()?;
        let mut outcome = WakeupOutcome::default();
        for (key, entry) in &record.entries {
            ctx.check_cancelled()?;
            let state: AwakeState = match from_state(&entry.state, key) {
                Ok(state) => state,
                Err(message) => {
                    outcome.failed.insert(key.clone(), message);
                    continue;
                }
            };
            match self.restore_one(key, &state).await {
                Ok(()) => {
                    ctx.info(&format!(
                        "Application {}/{}: automated sync restored",
                        state.namespace, state.name
                    ));
                    outcome.restored.push(key.clone());
                }
                Err(e) if e.is_transient() => return Err(e),
                Err(e) => {
                    outcome.failed.insert(key.clone(), e.message);
                }
            }
        }
        ctx.progress(100, "automated sync restored");
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hibernator_core::params::{ParameterCheck, TypedParameters};

    fn check(params: Value) -> Diagnostics {
        TypedParameters::<Parameters>::new(TYPE).check(Some(&params), "p")
    }

    #[test]
    fn parameters_name_the_field() {
        assert!(check(json!({"applications": ["web"]})).is_valid());
        assert!(check(json!({"selector": {"matchLabels": {"env": "dev"}}})).is_valid());
        let d = check(json!({}));
        assert!(
            d.errors[0]
                .message
                .contains("exactly one of applications or selector"),
            "{d:?}"
        );
        let d = check(json!({"namespace": "Argo CD", "applications": ["Web"]}));
        let fields: Vec<_> = d.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["p.namespace", "p.applications[0]"]);
        let d = check(json!({"selector": {}}));
        assert_eq!(d.warnings[0].field, "p.selector");
    }

    #[test]
    fn automated_sync_is_on_unless_absent_or_disabled() {
        let app = |policy: Value| -> DynamicObject {
            serde_json::from_value(json!({
                "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
                "metadata": {"name": "a"}, "spec": {"syncPolicy": policy},
            }))
            .unwrap()
        };
        assert!(automated(&app(json!({"automated": {"prune": true}}))).is_some());
        assert!(automated(&app(json!({"automated": {}}))).is_some());
        assert!(automated(&app(json!({"automated": {"enabled": false}}))).is_none());
        assert!(automated(&app(json!({"syncOptions": ["CreateNamespace=true"]}))).is_none());
    }

    #[test]
    fn restoring_removes_fields_set_since() {
        let recorded = json!({"prune": true, "selfHeal": true});
        let current = json!({"prune": false, "allowEmpty": true});
        let patch = restore_patch(recorded.as_object().unwrap(), current.as_object());
        assert_eq!(
            patch,
            json!({"spec": {"syncPolicy": {"automated": {"prune": true, "selfHeal": true, "allowEmpty": null}}}})
        );
        let patch = restore_patch(recorded.as_object().unwrap(), None);
        assert_eq!(patch["spec"]["syncPolicy"]["automated"], recorded);
    }
}
