//! The `karpenter` executor: stops Karpenter NodePools from launching nodes,
//! removes their nodes, and restores their exact `spec.limits` on wake-up.
//!
//! NodePools are never deleted (that would lose their annotations and fight
//! GitOps). Disruption budgets are not changed: NodeClaims deleted directly
//! are not subject to them.
//!
//! - **Shutdown**: selects NodePools by name (every listed pool must exist,
//!   checked before anything changes) or by `nodeSelector` on their labels.
//!   A pool whose CPU limit is not already `"0"` gets its `spec.limits`
//!   recorded under `nodepool/<name>` (absent limits recorded as absent),
//!   then `spec.limits.cpu` set to `"0"` (other limits are kept) so no new
//!   nodes launch. Then every NodeClaim labelled `karpenter.sh/nodepool=<name>`
//!   that is not already being deleted is deleted, so Karpenter drains and
//!   removes its node. A pool already at CPU `"0"` is not recorded, but its
//!   NodeClaims are still deleted (a re-run finishes an interrupted shutdown).
//!   With `awaitCompletion`, waits until no NodeClaim of the pools is left.
//! - **Wake-up**: writes back exactly the recorded `spec.limits`: keys added
//!   since are removed, and a pool that had no limits gets `spec.limits`
//!   removed. A pool that no longer exists fails its entry. With
//!   `awaitCompletion`, waits until each pool's `Ready` condition is `True`
//!   ("back" means the pool can launch nodes again; Karpenter only launches
//!   nodes for pending pods, so no node count is waited for).

use std::time::Duration;

use async_trait::async_trait;
use hibernator_core::executor::{
    ExecutionContext, ExecutorError, Laggards, ShutdownOutcome, TypedExecutor, WakeupOutcome,
    category, describe_laggards, wait_for_all,
};
use hibernator_core::restore::RestoreRecord;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Client, ResourceExt};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::common::{from_state, labels, list_all, patch_params, to_state};
use super::error::{classify, is_not_found};
use crate::karpenter::Parameters;

/// Label Karpenter puts on the NodeClaims (and nodes) of a pool.
pub const NODEPOOL_LABEL: &str = "karpenter.sh/nodepool";
/// Prefix of the restore keys: `nodepool/<name>`.
pub const KEY_PREFIX: &str = "nodepool/";
/// How often NodePools and NodeClaims are polled while waiting.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(10);

/// `karpenter.sh/v1` NodePool.
pub fn nodepool_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("karpenter.sh", "v1", "NodePool"),
        "nodepools",
    )
}

/// `karpenter.sh/v1` NodeClaim.
pub fn nodeclaim_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("karpenter.sh", "v1", "NodeClaim"),
        "nodeclaims",
    )
}

/// The restore key of a NodePool.
pub fn resource_key(pool: &str) -> String {
    format!("{KEY_PREFIX}{pool}")
}

/// The awake state of a NodePool.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolState {
    /// `spec.limits` before shutdown; `None` when the pool had none.
    #[serde(default)]
    pub limits: Option<Map<String, Value>>,
}

/// Whether a pool's CPU limit is zero (`"0"` or `0`).
pub fn cpu_is_zero(limits: Option<&Map<String, Value>>) -> bool {
    match limits.and_then(|l| l.get("cpu")) {
        Some(Value::String(s)) => s.trim() == "0",
        Some(Value::Number(n)) => n.as_f64() == Some(0.0),
        _ => false,
    }
}

/// The merge patch that turns `current` limits back into `recorded` exactly.
pub fn restore_patch(
    recorded: Option<&Map<String, Value>>,
    current: Option<&Map<String, Value>>,
) -> Value {
    match recorded {
        None => json!({"spec": {"limits": null}}),
        Some(recorded) => {
            let mut limits = recorded.clone();
            for key in current.into_iter().flat_map(|c| c.keys()) {
                if !recorded.contains_key(key) {
                    limits.insert(key.clone(), Value::Null);
                }
            }
            json!({"spec": {"limits": limits}})
        }
    }
}

fn limits_of(pool: &DynamicObject) -> Option<Map<String, Value>> {
    pool.data["spec"]["limits"].as_object().cloned()
}

fn is_ready(pool: &DynamicObject) -> bool {
    pool.data["status"]["conditions"]
        .as_array()
        .is_some_and(|conditions| {
            conditions
                .iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

/// The `karpenter` executor. Cheap to clone.
#[derive(Clone)]
pub struct KarpenterExecutor {
    client: Client,
    poll_interval: Duration,
}

impl std::fmt::Debug for KarpenterExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KarpenterExecutor")
            .field("poll_interval", &self.poll_interval)
            .finish_non_exhaustive()
    }
}

impl KarpenterExecutor {
    /// An executor acting in the cluster of `client`.
    pub fn new(client: Client) -> Self {
        Self {
            client,
            poll_interval: DEFAULT_POLL_INTERVAL,
        }
    }

    /// Sets how often pools and claims are polled while waiting.
    #[must_use]
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    fn pools(&self) -> Api<DynamicObject> {
        Api::all_with(self.client.clone(), &nodepool_resource())
    }

    fn claims(&self) -> Api<DynamicObject> {
        Api::all_with(self.client.clone(), &nodeclaim_resource())
    }

    /// The selected NodePools, in name order.
    async fn select(&self, params: &Parameters) -> Result<Vec<DynamicObject>, ExecutorError> {
        let api = self.pools();
        let mut pools = Vec::new();
        if let Some(names) = &params.node_pools {
            let mut missing = Vec::new();
            for name in names {
                match api.get_opt(name).await {
                    Ok(Some(pool)) => pools.push(pool),
                    Ok(None) => missing.push(name.clone()),
                    Err(e) if is_not_found(&e) => return Err(not_installed()),
                    Err(e) => return Err(classify(&e, &format!("get NodePool {name}"))),
                }
            }
            if !missing.is_empty() {
                return Err(ExecutorError::permanent(
                    category::NOT_FOUND,
                    format!(
                        "parameters.nodePools: NodePool(s) {} not found; nothing was changed",
                        missing.join(", ")
                    ),
                ));
            }
        } else {
            let all = match list_all(&api, ListParams::default(), "NodePools").await {
                Err(e) if e.category == category::NOT_FOUND => return Err(not_installed()),
                other => other?,
            };
            pools = all
                .into_iter()
                .filter(|p| params.selects(&p.name_any(), &labels(&p.metadata)))
                .collect();
        }
        pools.sort_by_key(|p| p.name_any());
        pools.dedup_by_key(|p| p.name_any());
        Ok(pools)
    }

    /// NodeClaims of `pool`.
    async fn claims_of(&self, pool: &str) -> Result<Vec<DynamicObject>, ExecutorError> {
        let params = ListParams::default().labels(&format!("{NODEPOOL_LABEL}={pool}"));
        list_all(
            &self.claims(),
            params,
            &format!("NodeClaims of NodePool {pool}"),
        )
        .await
    }

    /// Deletes the NodeClaims of `pool` not already being deleted; returns how many.
    async fn delete_claims(&self, pool: &str) -> Result<usize, ExecutorError> {
        let api = self.claims();
        let mut deleted = 0;
        for claim in self.claims_of(pool).await? {
            if claim.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let name = claim.name_any();
            match api.delete(&name, &DeleteParams::default()).await {
                Ok(_) => deleted += 1,
                Err(e) if is_not_found(&e) => {}
                Err(e) => {
                    return Err(classify(&e, &format!("delete NodeClaim {name}"))
                        .with_resource(resource_key(pool)));
                }
            }
        }
        Ok(deleted)
    }

    /// Polls until `done(pool)` holds for every pool; returns the pools not
    /// there when the timeout ran out, with what was seen.
    async fn wait_pools(
        &self,
        ctx: &ExecutionContext,
        what: &str,
        timeout: Duration,
        pools: &[String],
        gone: bool,
    ) -> Result<Laggards, ExecutorError> {
        if pools.is_empty() {
            return Ok(Laggards::new());
        }
        wait_for_all(ctx, what, timeout, self.poll_interval, || async {
            let mut behind = Laggards::new();
            for pool in pools {
                if gone {
                    let left = self.claims_of(pool).await?.len();
                    if left > 0 {
                        behind.insert(pool.clone(), format!("{left} NodeClaims left"));
                    }
                } else {
                    let object = self
                        .pools()
                        .get(pool)
                        .await
                        .map_err(|e| classify(&e, &format!("get NodePool {pool}")))?;
                    if !is_ready(&object) {
                        behind.insert(pool.clone(), "not Ready".to_string());
                    }
                }
            }
            Ok(behind)
        })
        .await
    }

    async fn restore_one(&self, pool: &str, state: &PoolState) -> Result<(), ExecutorError> {
        let key = resource_key(pool);
        let api = self.pools();
        let current = match api.get(pool).await {
            Ok(p) => p,
            Err(e) if is_not_found(&e) => {
                return Err(ExecutorError::permanent(
                    category::NOT_FOUND,
                    format!("NodePool {pool} no longer exists; its limits cannot be restored (remove its restore entry if it was deleted on purpose)"),
                )
                .with_resource(key));
            }
            Err(e) => return Err(classify(&e, &format!("get NodePool {pool}")).with_resource(key)),
        };
        let patch = restore_patch(state.limits.as_ref(), limits_of(&current).as_ref());
        api.patch(pool, &patch_params(), &Patch::Merge(&patch))
            .await
            .map_err(|e| {
                classify(&e, &format!("restore limits of NodePool {pool}")).with_resource(key)
            })?;
        Ok(())
    }
}

fn not_installed() -> ExecutorError {
    ExecutorError::permanent(
        category::NOT_FOUND,
        "the cluster does not serve karpenter.sh/v1 NodePools (is Karpenter v1 installed?)",
    )
}

#[async_trait]
impl TypedExecutor for KarpenterExecutor {
    const TYPE: &'static str = crate::karpenter::TYPE;
    type Params = Parameters;

    async fn shutdown(
        &self,
        ctx: &ExecutionContext,
        params: &Parameters,
    ) -> Result<ShutdownOutcome, ExecutorError> {
        ctx.check_cancelled()?;
        let pools = self.select(params).await?;
        ctx.progress(20, &format!("{} NodePools selected", pools.len()));
        let mut outcome = ShutdownOutcome::default();
        let mut names = Vec::new();
        for pool in &pools {
            ctx.check_cancelled()?;
            let name = pool.name_any();
            let key = resource_key(&name);
            outcome.resources.push(key.clone());
            let limits = limits_of(pool);
            if cpu_is_zero(limits.as_ref()) {
                ctx.debug(&format!(
                    "NodePool {name} already has a CPU limit of 0; not recorded"
                ));
            } else {
                let state = to_state(&PoolState { limits }, &key)?;
                ctx.record_awake_state(key.clone(), state.clone());
                outcome.observations.insert(key.clone(), state);
                self.pools()
                    .patch(
                        &name,
                        &patch_params(),
                        &Patch::Merge(json!({"spec": {"limits": {"cpu": "0"}}})),
                    )
                    .await
                    .map_err(|e| {
                        classify(&e, &format!("set the CPU limit of NodePool {name} to 0"))
                            .with_resource(&key)
                    })?;
                ctx.info(&format!("NodePool {name}: CPU limit set to 0"));
            }
            let deleted = self.delete_claims(&name).await?;
            if deleted > 0 {
                ctx.info(&format!("NodePool {name}: deleted {deleted} NodeClaims"));
            }
            names.push(name);
        }
        ctx.progress(60, "NodePools capped and NodeClaims deleted");
        if params.await_completion.enabled {
            let timeout = params.await_completion.timeout();
            let what = format!(
                "waiting for the NodeClaims of {} NodePools to be gone",
                names.len()
            );
            let laggards = self.wait_pools(ctx, &what, timeout, &names, true).await?;
            if !laggards.is_empty() {
                return Err(ExecutorError::timeout(
                    &format!("{what} (still there: {})", describe_laggards(&laggards)),
                    timeout,
                ));
            }
        }
        ctx.progress(100, "NodePools hibernated");
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
            let Some(pool) = key.strip_prefix(KEY_PREFIX).filter(|p| !p.is_empty()) else {
                outcome.failed.insert(
                    key.clone(),
                    format!("{key:?} is not a karpenter restore key (nodepool/<name>)"),
                );
                continue;
            };
            let state: PoolState = match from_state(&entry.state, key) {
                Ok(s) => s,
                Err(message) => {
                    outcome.failed.insert(key.clone(), message);
                    continue;
                }
            };
            match self.restore_one(pool, &state).await {
                Ok(()) => {
                    ctx.info(&format!("NodePool {pool}: limits restored"));
                    restored.push(pool.to_string());
                }
                Err(e) if e.is_transient() => return Err(e),
                Err(e) => {
                    outcome.failed.insert(key.clone(), e.message);
                }
            }
        }
        ctx.progress(60, &format!("{} NodePools restored", restored.len()));
        if params.await_completion.enabled {
            let timeout = params.await_completion.timeout();
            let what = format!("waiting for {} NodePools to be Ready", restored.len());
            let laggards = self
                .wait_pools(ctx, &what, timeout, &restored, false)
                .await?;
            for (pool, seen) in &laggards {
                outcome.failed.insert(
                    resource_key(pool),
                    format!(
                        "NodePool {pool} was restored but not Ready within {} ({seen})",
                        hibernator_core::duration::format_duration(timeout)
                    ),
                );
            }
            restored.retain(|p| !laggards.contains_key(p));
        }
        outcome.restored = restored.iter().map(|p| resource_key(p)).collect();
        ctx.progress(100, "NodePools restored");
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn cpu_zero_detection() {
        assert!(cpu_is_zero(Some(&map(json!({"cpu": "0"})))));
        assert!(cpu_is_zero(Some(&map(json!({"cpu": 0, "memory": "1Gi"})))));
        assert!(!cpu_is_zero(Some(&map(json!({"cpu": "100"})))));
        assert!(!cpu_is_zero(Some(&map(json!({"memory": "0"})))));
        assert!(!cpu_is_zero(None));
    }

    #[test]
    fn restore_patch_puts_back_exactly() {
        let recorded = map(json!({"cpu": "100", "memory": "200Gi"}));
        let current = map(json!({"cpu": "0", "memory": "200Gi", "nvidia.com/gpu": "2"}));
        assert_eq!(
            restore_patch(Some(&recorded), Some(&current)),
            json!({"spec": {"limits": {"cpu": "100", "memory": "200Gi", "nvidia.com/gpu": null}}})
        );
        assert_eq!(
            restore_patch(None, Some(&map(json!({"cpu": "0"})))),
            json!({"spec": {"limits": null}})
        );
        assert_eq!(
            restore_patch(Some(&recorded), None),
            json!({"spec": {"limits": {"cpu": "100", "memory": "200Gi"}}})
        );
    }

    #[test]
    fn readiness_reads_the_ready_condition() {
        let mut pool = DynamicObject::new("p", &nodepool_resource());
        assert!(!is_ready(&pool));
        pool.data = json!({"status": {"conditions": [{"type": "Ready", "status": "False"}]}});
        assert!(!is_ready(&pool));
        pool.data = json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        assert!(is_ready(&pool));
    }
}
