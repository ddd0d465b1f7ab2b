//! The `workloadscaler` executor: scales Kubernetes workloads to zero through
//! their scale subresource, suspends CronJobs and pauses KEDA ScaledObjects,
//! and restores exactly what it changed.
//!
//! - **Selection**: every kind of `includedGroups` ([`workload::resolve`]) in
//!   every selected namespace (literals that do not exist are skipped with a
//!   warning; a selector lists namespaces), filtered by `workloadSelector`.
//!   Objects annotated `hibernator.dev/exclude: "true"` and ReplicaSets owned
//!   by a Deployment are skipped.
//! - **Shutdown**: a workload found awake gets its awake value recorded
//!   *before* it is changed: `replicas` of the scale subresource (then a merge
//!   patch of only `spec.replicas: 0` on `/scale`), a CronJob's `spec.suspend`
//!   (then `suspend: true`), a ScaledObject's
//!   `autoscaling.keda.sh/paused-replicas` annotation (then `"0"`; its target
//!   is not touched). A workload already at 0 / suspended / paused at `"0"` is
//!   not recorded. With `awaitCompletion`, waits until every selected scaled
//!   workload reports `status.replicas: 0` on its scale subresource.
//! - **Wake-up**: puts back exactly the recorded value of each entry (an
//!   absent `suspend` field or annotation is removed again). A workload that
//!   no longer exists fails its entry. With `awaitCompletion`, waits until
//!   each restored workload reports its recorded replicas ready
//!   (`status.readyReplicas` for Deployments, StatefulSets and ReplicaSets;
//!   `status.replicas` of the scale subresource for other kinds).

pub mod workload;

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use hibernator_core::executor::{
    ExecutionContext, ExecutorError, Laggards, ShutdownOutcome, TypedExecutor, WakeupOutcome,
    category, describe_laggards, wait_for_all,
};
use hibernator_core::restore::RestoreRecord;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DynamicObject, ListParams, Patch};
use kube::{Client, ResourceExt};
use serde_json::json;

use self::workload::{Awake, KEDA_PAUSED_REPLICAS, Mode, ResolvedGroup, WorkloadState};
use super::common::{annotations, from_state, labels, list_all, patch_params, to_state};
use super::error::{classify, is_not_found};
use crate::workloadscaler::Parameters;

/// How often workloads are polled while waiting.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(5);

/// The `workloadscaler` executor. Cheap to clone.
#[derive(Clone)]
pub struct WorkloadScalerExecutor {
    client: Client,
    poll_interval: Duration,
}

impl std::fmt::Debug for WorkloadScalerExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkloadScalerExecutor")
            .field("poll_interval", &self.poll_interval)
            .finish_non_exhaustive()
    }
}

/// A selected workload.
struct Found {
    key: String,
    group: ResolvedGroup,
    object: DynamicObject,
    namespace: String,
}

impl WorkloadScalerExecutor {
    /// An executor acting in the cluster of `client`.
    pub fn new(client: Client) -> Self {
        Self {
            client,
            poll_interval: DEFAULT_POLL_INTERVAL,
        }
    }

    /// Sets how often workloads are polled while waiting.
    #[must_use]
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    fn api(&self, state: &WorkloadState) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), &state.namespace, &state.api_resource())
    }

    /// The namespaces `params` selects, in name order.
    async fn namespaces(
        &self,
        ctx: &ExecutionContext,
        params: &Parameters,
    ) -> Result<Vec<String>, ExecutorError> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        if let Some(literals) = &params.namespace.literals {
            let mut found = Vec::new();
            for name in literals {
                match api.get_opt(name).await {
                    Ok(Some(_)) => found.push(name.clone()),
                    Ok(None) => ctx.warn(&format!(
                        "namespace {name} is listed in namespace.literals but does not exist; skipped"
                    )),
                    // Without permission to read namespaces, act on the literal as given.
                    Err(kube::Error::Api(s)) if s.code == 403 => found.push(name.clone()),
                    Err(e) => return Err(classify(&e, &format!("get namespace {name}"))),
                }
            }
            found.sort();
            found.dedup();
            return Ok(found);
        }
        let mut names: Vec<String> = list_namespaces(&api)
            .await?
            .into_iter()
            .filter(|ns| {
                params
                    .namespace
                    .matches(&ns.name_any(), &ns.labels().clone())
            })
            .map(|ns| ns.name_any())
            .collect();
        names.sort();
        Ok(names)
    }

    /// Every workload `params` selects.
    async fn select(
        &self,
        ctx: &ExecutionContext,
        params: &Parameters,
    ) -> Result<Vec<Found>, ExecutorError> {
        let mut groups = Vec::new();
        for group in params.groups() {
            groups.push(workload::resolve(&self.client, &group).await?);
        }
        let namespaces = self.namespaces(ctx, params).await?;
        let mut found = Vec::new();
        for group in &groups {
            for namespace in &namespaces {
                ctx.check_cancelled()?;
                let api: Api<DynamicObject> =
                    Api::namespaced_with(self.client.clone(), namespace, &group.resource);
                let what = format!("{} in namespace {namespace}", group.resource.plural);
                let objects = match list_all(&api, ListParams::default(), &what).await {
                    Err(e) if e.category == category::NOT_FOUND => {
                        return Err(ExecutorError::permanent(
                            category::NOT_FOUND,
                            format!(
                                "parameters.includedGroups: the cluster does not serve {}/{} (is its CRD installed?)",
                                group.resource.api_version, group.resource.plural
                            ),
                        ));
                    }
                    other => other?,
                };
                for object in objects {
                    let key =
                        workload::workload_key(&group.resource, namespace, &object.name_any());
                    if !params.selects_workload(&labels(&object.metadata), &BTreeMap::new()) {
                        continue;
                    }
                    if crate::workloadscaler::is_excluded(&annotations(&object.metadata)) {
                        ctx.info(&format!("{key} excluded by hibernator.dev/exclude"));
                        continue;
                    }
                    if group.skip_deployment_owned && owned_by_deployment(&object) {
                        ctx.debug(&format!("{key} is managed by its Deployment; skipped"));
                        continue;
                    }
                    found.push(Found {
                        key,
                        group: group.clone(),
                        object,
                        namespace: namespace.clone(),
                    });
                }
            }
        }
        Ok(found)
    }

    /// Records and changes one workload.
    async fn hibernate_one(
        &self,
        ctx: &ExecutionContext,
        found: &Found,
        outcome: &mut ShutdownOutcome,
    ) -> Result<(), ExecutorError> {
        let name = found.object.name_any();
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), &found.namespace, &found.group.resource);
        let key = &found.key;
        let (awake, patch) = match found.group.mode {
            Mode::Scale => {
                let scale = api
                    .get_scale(&name)
                    .await
                    .map_err(|e| classify(&e, &format!("get scale of {key}")).with_resource(key))?;
                let replicas = scale.spec.and_then(|s| s.replicas).unwrap_or(0);
                if replicas == 0 {
                    ctx.debug(&format!("{key} is at 0 replicas; not recorded"));
                    return Ok(());
                }
                (Awake::Scale { replicas }, json!({"spec": {"replicas": 0}}))
            }
            Mode::Suspend => {
                let suspend = found.object.data["spec"]["suspend"].as_bool();
                if suspend == Some(true) {
                    ctx.debug(&format!("{key} is suspended; not recorded"));
                    return Ok(());
                }
                (
                    Awake::Suspend { suspend },
                    json!({"spec": {"suspend": true}}),
                )
            }
            Mode::KedaPause => {
                let paused = annotations(&found.object.metadata)
                    .get(KEDA_PAUSED_REPLICAS)
                    .cloned();
                if paused.as_deref() == Some("0") {
                    ctx.debug(&format!("{key} is paused at 0 replicas; not recorded"));
                    return Ok(());
                }
                (
                    Awake::KedaPause {
                        paused_replicas: paused,
                    },
                    json!({"metadata": {"annotations": {KEDA_PAUSED_REPLICAS: "0"}}}),
                )
            }
        };
        let state = WorkloadState {
            group: found.group.resource.group.clone(),
            version: found.group.resource.version.clone(),
            kind: found.group.resource.kind.clone(),
            resource: found.group.resource.plural.clone(),
            namespace: found.namespace.clone(),
            name: name.clone(),
            reports_ready_replicas: found.group.reports_ready_replicas,
            awake,
        };
        let value = to_state(&state, key)?;
        ctx.record_awake_state(key.clone(), value.clone());
        outcome.observations.insert(key.clone(), value);
        let result = match found.group.mode {
            Mode::Scale => api
                .patch_scale(&name, &patch_params(), &Patch::Merge(&patch))
                .await
                .map(|_| ()),
            Mode::Suspend | Mode::KedaPause => api
                .patch(&name, &patch_params(), &Patch::Merge(&patch))
                .await
                .map(|_| ()),
        };
        result.map_err(|e| classify(&e, &format!("hibernate {key}")).with_resource(key))?;
        ctx.info(&format!("{key} hibernated"));
        Ok(())
    }

    /// Puts back the awake value of one entry.
    async fn restore_one(&self, key: &str, state: &WorkloadState) -> Result<(), ExecutorError> {
        let api = self.api(state);
        let name = &state.name;
        let result = match &state.awake {
            Awake::Scale { replicas } => api
                .patch_scale(
                    name,
                    &patch_params(),
                    &Patch::Merge(json!({"spec": {"replicas": replicas}})),
                )
                .await
                .map(|_| ()),
            Awake::Suspend { suspend } => api
                .patch(
                    name,
                    &patch_params(),
                    &Patch::Merge(json!({"spec": {"suspend": suspend}})),
                )
                .await
                .map(|_| ()),
            Awake::KedaPause { paused_replicas } => api
                .patch(
                    name,
                    &patch_params(),
                    &Patch::Merge(
                        json!({"metadata": {"annotations": {KEDA_PAUSED_REPLICAS: paused_replicas}}}),
                    ),
                )
                .await
                .map(|_| ()),
        };
        result.map_err(|e| {
            if is_not_found(&e) {
                ExecutorError::permanent(
                    category::NOT_FOUND,
                    format!("{key} no longer exists; it cannot be restored (remove its restore entry if it was deleted on purpose)"),
                )
            } else {
                classify(&e, &format!("restore {key}"))
            }
            .with_resource(key)
        })
    }

    /// Current replicas (scale status) of a workload.
    async fn current_replicas(&self, state: &WorkloadState) -> Result<i32, ExecutorError> {
        let scale = self.api(state).get_scale(&state.name).await.map_err(|e| {
            classify(
                &e,
                &format!("get scale of {}/{}", state.namespace, state.name),
            )
        })?;
        Ok(scale.status.map(|s| s.replicas).unwrap_or(0))
    }

    /// Ready replicas of a workload (see the module docs).
    async fn ready_replicas(&self, state: &WorkloadState) -> Result<i64, ExecutorError> {
        if !state.reports_ready_replicas {
            return Ok(i64::from(self.current_replicas(state).await?));
        }
        let object = self
            .api(state)
            .get(&state.name)
            .await
            .map_err(|e| classify(&e, &format!("get {}/{}", state.namespace, state.name)))?;
        Ok(object.data["status"]["readyReplicas"].as_i64().unwrap_or(0))
    }

    /// Polls until `done(state)` holds for every workload; returns the keys
    /// that were still not there when the timeout ran out.
    async fn wait_all(
        &self,
        ctx: &ExecutionContext,
        what: &str,
        timeout: Duration,
        states: &[(String, WorkloadState, i64)],
        ready: bool,
    ) -> Result<Laggards, ExecutorError> {
        if states.is_empty() {
            return Ok(Laggards::new());
        }
        wait_for_all(ctx, what, timeout, self.poll_interval, || async {
            let mut behind = Laggards::new();
            for (key, state, want) in states {
                let (ok, seen) = if ready {
                    let n = self.ready_replicas(state).await?;
                    (n >= *want, format!("{n} of {want} ready"))
                } else {
                    let n = self.current_replicas(state).await?;
                    (n == 0, format!("{n} replicas left"))
                };
                if !ok {
                    behind.insert(key.clone(), seen);
                }
            }
            Ok(behind)
        })
        .await
    }
}

async fn list_namespaces(api: &Api<Namespace>) -> Result<Vec<Namespace>, ExecutorError> {
    let mut params = ListParams::default().limit(super::common::PAGE_SIZE);
    let mut all = Vec::new();
    loop {
        let page = api
            .list(&params)
            .await
            .map_err(|e| classify(&e, "list namespaces"))?;
        all.extend(page.items);
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(all),
        }
    }
}

fn owned_by_deployment(object: &DynamicObject) -> bool {
    object
        .metadata
        .owner_references
        .as_ref()
        .is_some_and(|refs| refs.iter().any(|r| r.kind == "Deployment"))
}

#[async_trait]
impl TypedExecutor for WorkloadScalerExecutor {
    const TYPE: &'static str = crate::workloadscaler::TYPE;
    type Params = Parameters;

    async fn shutdown(
        &self,
        ctx: &ExecutionContext,
        params: &Parameters,
    ) -> Result<ShutdownOutcome, ExecutorError> {
        ctx.check_cancelled()?;
        let found = self.select(ctx, params).await?;
        ctx.progress(20, &format!("{} workloads selected", found.len()));
        let mut outcome = ShutdownOutcome::default();
        for workload in &found {
            ctx.check_cancelled()?;
            outcome.resources.push(workload.key.clone());
            self.hibernate_one(ctx, workload, &mut outcome).await?;
        }
        ctx.progress(
            60,
            &format!("{} workloads hibernated", outcome.observations.len()),
        );
        if params.await_completion.enabled {
            let timeout = params.await_completion.timeout();
            let scaled: Vec<(String, WorkloadState, i64)> = found
                .iter()
                .filter(|f| f.group.mode == Mode::Scale)
                .map(|f| {
                    let state = WorkloadState {
                        group: f.group.resource.group.clone(),
                        version: f.group.resource.version.clone(),
                        kind: f.group.resource.kind.clone(),
                        resource: f.group.resource.plural.clone(),
                        namespace: f.namespace.clone(),
                        name: f.object.name_any(),
                        reports_ready_replicas: f.group.reports_ready_replicas,
                        awake: Awake::Scale { replicas: 0 },
                    };
                    (f.key.clone(), state, 0)
                })
                .collect();
            let what = format!("waiting for {} workloads to scale to 0", scaled.len());
            let laggards = self.wait_all(ctx, &what, timeout, &scaled, false).await?;
            if !laggards.is_empty() {
                return Err(ExecutorError::timeout(
                    &format!("{what} (still running: {})", describe_laggards(&laggards)),
                    timeout,
                ));
            }
        }
        ctx.progress(100, "workloads hibernated");
        Ok(outcome)
    }

    async fn wakeup(
        &self,
        ctx: &ExecutionContext,
        params: &Parameters,
        record: &RestoreRecord,
    ) -> Result<WakeupOutcome, ExecutorError> {
        ctx.check_cancelled()?;
        let mut outcome = WakeupOutcome::default();
        let mut restored = Vec::new();
        for (key, entry) in &record.entries {
            ctx.check_cancelled()?;
            let state: WorkloadState = match from_state(&entry.state, key) {
                Ok(s) => s,
                Err(message) => {
                    outcome.failed.insert(key.clone(), message);
                    continue;
                }
            };
            match self.restore_one(key, &state).await {
                Ok(()) => {
                    ctx.info(&format!("{key} restored"));
                    restored.push((key.clone(), state));
                }
                Err(e) if e.is_transient() => return Err(e),
                Err(e) => {
                    outcome.failed.insert(key.clone(), e.message);
                }
            }
        }
        ctx.progress(60, &format!("{} workloads restored", restored.len()));
        if params.await_completion.enabled {
            let timeout = params.await_completion.timeout();
            let waiting: Vec<(String, WorkloadState, i64)> = restored
                .iter()
                .filter_map(|(key, state)| match state.awake {
                    Awake::Scale { replicas } if replicas > 0 => {
                        Some((key.clone(), state.clone(), i64::from(replicas)))
                    }
                    _ => None,
                })
                .collect();
            let what = format!("waiting for {} workloads to be ready", waiting.len());
            let laggards = self.wait_all(ctx, &what, timeout, &waiting, true).await?;
            for (key, seen) in &laggards {
                outcome.failed.insert(
                    key.clone(),
                    format!(
                        "{key} was restored but not ready within {} ({seen})",
                        hibernator_core::duration::format_duration(timeout)
                    ),
                );
            }
            restored.retain(|(key, _)| !laggards.contains_key(key));
        }
        outcome.restored = restored.into_iter().map(|(key, _)| key).collect();
        ctx.progress(100, "workloads restored");
        Ok(outcome)
    }
}
