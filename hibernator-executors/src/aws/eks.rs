//! The `eks` executor: hibernates EKS managed node groups by scaling them to
//! min 0 / desired 0 (keeping `maxSize`, which managed node groups require to
//! be at least 1) and restores their exact min/desired/max on wake-up.
//!
//! API use: ListNodegroups is paginated (only when `nodeGroups` is empty);
//! DescribeNodegroup and UpdateNodegroupConfig are one call per node group
//! because EKS has no batch API for either. Update ids are not tracked
//! (DescribeUpdate): completion is judged from DescribeNodegroup alone
//! (`ACTIVE` with the target scaling configuration).
//!
//! Enforce (drift re-enforcement while hibernated) describes exactly the
//! node groups of the restore record and scales those found with min or
//! desired above 0 back to min 0 / desired 0 (keeping their current
//! `maxSize`), as shutdown does, without recording anything.
//!
//! Restore entries: `nodegroup/<name>` → `{"minSize","desiredSize","maxSize"}`.

mod scaling;

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_eks::Client;
use aws_sdk_eks::types::NodegroupScalingConfig;
use hibernator_core::executor::{
    EnforceOutcome, ExecutionContext, ExecutorError, ShutdownOutcome, TypedExecutor, WakeupOutcome,
    category,
};
use hibernator_core::restore::RestoreRecord;

use crate::aws::error::classify;
use crate::aws::wait::DEFAULT_POLL_INTERVAL;
use crate::eks::Parameters;

pub use scaling::{
    KEY_PREFIX, NodeGroupSize, NodeGroupView, ShutdownDecision, WaitFailure, await_node_groups,
    decide_shutdown, node_group_key, node_group_of_key,
};

/// Hibernates and wakes up EKS managed node groups.
#[derive(Clone, Debug)]
pub struct EksExecutor {
    client: Client,
    poll_interval: Duration,
    list_page_size: Option<i32>,
}

impl EksExecutor {
    /// An executor using the given SDK configuration (region, credentials, endpoint).
    pub fn new(config: &SdkConfig) -> Self {
        Self::from_client(Client::new(config))
    }

    /// An executor using an existing EKS client.
    pub fn from_client(client: Client) -> Self {
        Self {
            client,
            poll_interval: DEFAULT_POLL_INTERVAL,
            list_page_size: None,
        }
    }

    /// How often to poll DescribeNodegroup while waiting (default
    /// [`DEFAULT_POLL_INTERVAL`]).
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// `maxResults` of ListNodegroups pages (1–100; default: the service's, 100).
    pub fn with_list_page_size(mut self, size: i32) -> Self {
        self.list_page_size = Some(size.clamp(1, 100));
        self
    }

    /// Every managed node group of `cluster`, through the paginated ListNodegroups.
    pub async fn list_node_groups(&self, cluster: &str) -> Result<Vec<String>, ExecutorError> {
        let mut pages = self
            .client
            .list_nodegroups()
            .cluster_name(cluster)
            .set_max_results(self.list_page_size)
            .into_paginator()
            .send();
        let mut names = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| {
                let error = classify(&e, "eks:ListNodegroups");
                if error.category == category::NOT_FOUND {
                    ExecutorError::permanent(
                        category::NOT_FOUND,
                        format!("EKS cluster {cluster:?} not found ({})", error.message),
                    )
                } else {
                    error
                }
            })?;
            names.extend(page.nodegroups().iter().cloned());
        }
        Ok(names)
    }

    /// One node group, through DescribeNodegroup. A missing node group (or
    /// cluster) is a permanent `not_found` error naming both.
    pub async fn describe_node_group(
        &self,
        cluster: &str,
        name: &str,
    ) -> Result<NodeGroupView, ExecutorError> {
        let output = self
            .client
            .describe_nodegroup()
            .cluster_name(cluster)
            .nodegroup_name(name)
            .send()
            .await
            .map_err(|e| {
                let error = classify(&e, "eks:DescribeNodegroup");
                if error.category == category::NOT_FOUND {
                    ExecutorError::permanent(
                        category::NOT_FOUND,
                        format!(
                            "node group {name:?} not found in EKS cluster {cluster:?} ({})",
                            error.message
                        ),
                    )
                } else {
                    error
                }
                .with_resource(node_group_key(name))
            })?;
        let node_group = output.nodegroup();
        let size = node_group.and_then(|ng| ng.scaling_config()).and_then(|s| {
            Some(NodeGroupSize {
                min_size: s.min_size()?,
                desired_size: s.desired_size()?,
                max_size: s.max_size()?,
            })
        });
        let status = node_group
            .and_then(|ng| ng.status())
            .map_or("UNKNOWN", |s| s.as_str());
        Ok(NodeGroupView {
            name: name.to_string(),
            status: status.to_string(),
            size,
        })
    }

    /// Sets the scaling configuration of one node group (UpdateNodegroupConfig;
    /// absolute values, so repeating it is harmless).
    pub async fn set_size(
        &self,
        cluster: &str,
        name: &str,
        size: NodeGroupSize,
    ) -> Result<(), ExecutorError> {
        let config = NodegroupScalingConfig::builder()
            .min_size(size.min_size)
            .desired_size(size.desired_size)
            .max_size(size.max_size)
            .build();
        self.client
            .update_nodegroup_config()
            .cluster_name(cluster)
            .nodegroup_name(name)
            .scaling_config(config)
            .send()
            .await
            .map_err(|e| {
                classify(&e, "eks:UpdateNodegroupConfig").with_resource(node_group_key(name))
            })?;
        Ok(())
    }

    /// The node groups a target covers: the named ones (deduplicated, in
    /// order) or, when none are named, every node group of the cluster.
    async fn selected_node_groups(
        &self,
        params: &Parameters,
    ) -> Result<Vec<String>, ExecutorError> {
        if params.node_groups.is_empty() {
            return self.list_node_groups(&params.cluster_name).await;
        }
        let mut names: Vec<String> = Vec::with_capacity(params.node_groups.len());
        for name in &params.node_groups {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
        Ok(names)
    }

    async fn await_sizes(
        &self,
        ctx: &ExecutionContext,
        params: &Parameters,
        targets: &BTreeMap<String, NodeGroupSize>,
    ) -> Result<(), WaitFailure> {
        let cluster = params.cluster_name.as_str();
        ctx.info(&format!(
            "waiting up to {} for {} node group(s) of EKS cluster {cluster} to finish scaling",
            hibernator_core::duration::format_duration(params.await_completion.timeout()),
            targets.len()
        ));
        await_node_groups(
            ctx,
            cluster,
            targets,
            params.await_completion.timeout(),
            self.poll_interval,
            |name| async move { self.describe_node_group(cluster, &name).await },
        )
        .await
    }

    /// Restores one entry; `Ok(Some(target))` when the node group must still
    /// be waited for, `Ok(None)` when it is restored already.
    async fn restore_entry(
        &self,
        cluster: &str,
        key: &str,
        state: &serde_json::Value,
    ) -> Result<Option<(String, NodeGroupSize)>, String> {
        let name = node_group_of_key(key).ok_or_else(|| {
            format!("{key:?} is not a node group restore key (expected {KEY_PREFIX}<name>)")
        })?;
        let target = NodeGroupSize::from_state(state).map_err(|e| {
            format!("restore data of node group {name:?} is not a min/desired/max size: {e}")
        })?;
        let view = match self.describe_node_group(cluster, name).await {
            Ok(view) => view,
            Err(e) if e.category == category::NOT_FOUND => {
                return Err(format!(
                    "node group {name:?} no longer exists in EKS cluster {cluster:?}; its recorded size ({target}) is kept: {}",
                    e.message
                ));
            }
            Err(e) => return Err(e.to_string()),
        };
        if view.reached(target) {
            return Ok(None);
        }
        if view.size != Some(target) {
            self.set_size(cluster, name, target)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(Some((name.to_string(), target)))
    }
}

fn percent(done: usize, total: usize) -> u8 {
    u8::try_from(done * 100 / total.max(1)).unwrap_or(100)
}

#[async_trait]
impl TypedExecutor for EksExecutor {
    const TYPE: &'static str = crate::eks::TYPE;
    type Params = Parameters;

    async fn shutdown(
        &self,
        ctx: &ExecutionContext,
        params: &Parameters,
    ) -> Result<ShutdownOutcome, ExecutorError> {
        let cluster = params.cluster_name.as_str();
        let names = self.selected_node_groups(params).await?;
        // Describe everything first: a missing node group fails the target
        // before any node group was changed.
        let mut views = Vec::with_capacity(names.len());
        for name in &names {
            ctx.check_cancelled()?;
            match self.describe_node_group(cluster, name).await {
                Ok(view) => views.push(view),
                Err(e) if e.category == category::NOT_FOUND && params.node_groups.is_empty() => {
                    ctx.warn(&format!(
                        "node group {name} of EKS cluster {cluster} disappeared after it was listed; skipped"
                    ));
                }
                Err(e) => return Err(e),
            }
        }
        // States recorded by earlier attempts of this run (retries): those node
        // groups were changed by us and are waited for like fresh ones.
        let recorded_earlier = ctx.recorded_awake_states();
        let mut outcome = ShutdownOutcome::default();
        let mut targets = BTreeMap::new();
        let total = views.len();
        for (done, view) in views.into_iter().enumerate() {
            ctx.check_cancelled()?;
            let key = node_group_key(&view.name);
            let size = view.size.ok_or_else(|| {
                ExecutorError::permanent(
                    category::INTERNAL,
                    format!(
                        "node group {} of EKS cluster {cluster} has no complete scaling configuration (status {})",
                        view.name, view.status
                    ),
                )
                .with_resource(key.clone())
            })?;
            let has_prior = ctx.prior_record().is_some_and(|r| r.entry(&key).is_some());
            match decide_shutdown(size, has_prior) {
                ShutdownDecision::Hibernate(awake) => {
                    let state = awake.to_state();
                    ctx.record_awake_state(key.clone(), state.clone());
                    let target = awake.hibernated();
                    self.set_size(cluster, &view.name, target).await?;
                    ctx.info(&format!(
                        "node group {} of EKS cluster {cluster}: {awake} -> {target}",
                        view.name
                    ));
                    outcome.observations.insert(key.clone(), state);
                    targets.insert(view.name, target);
                }
                ShutdownDecision::StillHibernated | ShutdownDecision::AlreadyAsleep
                    if recorded_earlier.contains_key(&key) =>
                {
                    targets.insert(view.name, size);
                }
                ShutdownDecision::StillHibernated => ctx.info(&format!(
                    "node group {} of EKS cluster {cluster} is still hibernated from an earlier cycle; its restore entry is kept",
                    view.name
                )),
                ShutdownDecision::AlreadyAsleep => ctx.info(&format!(
                    "node group {} of EKS cluster {cluster} is already at {size} with no restore entry: left as is",
                    view.name
                )),
            }
            outcome.resources.push(key);
            ctx.progress(percent(done + 1, total), "node groups scaled to zero");
        }
        if params.await_completion.enabled && !targets.is_empty() {
            self.await_sizes(ctx, params, &targets)
                .await
                .map_err(|f| f.error)?;
        }
        Ok(outcome)
    }

    async fn wakeup(
        &self,
        ctx: &ExecutionContext,
        params: &Parameters,
        record: &RestoreRecord,
    ) -> Result<WakeupOutcome, ExecutorError> {
        let cluster = params.cluster_name.as_str();
        let mut outcome = WakeupOutcome::default();
        // node group name -> (restore key, target size)
        let mut waiting: BTreeMap<String, (String, NodeGroupSize)> = BTreeMap::new();
        let total = record.entries.len();
        for (done, (key, entry)) in record.entries.iter().enumerate() {
            ctx.check_cancelled()?;
            match self.restore_entry(cluster, key, &entry.state).await {
                Ok(None) => outcome.restored.push(key.clone()),
                Ok(Some((name, target))) => {
                    ctx.info(&format!(
                        "node group {name} of EKS cluster {cluster}: restoring {target}"
                    ));
                    if params.await_completion.enabled {
                        waiting.insert(name, (key.clone(), target));
                    } else {
                        outcome.restored.push(key.clone());
                    }
                }
                Err(message) => {
                    ctx.warn(&format!("{key}: {message}"));
                    outcome.failed.insert(key.clone(), message);
                }
            }
            ctx.progress(percent(done + 1, total), "node groups restored");
        }
        if waiting.is_empty() {
            return Ok(outcome);
        }
        let targets = waiting
            .iter()
            .map(|(name, (_, target))| (name.clone(), *target))
            .collect();
        let pending = match self.await_sizes(ctx, params, &targets).await {
            Ok(()) => Vec::new(),
            Err(failure) if failure.error.category == category::CANCELLED => {
                return Err(failure.error);
            }
            Err(failure) => {
                let message = failure.error.to_string();
                for name in &failure.pending {
                    if let Some((key, _)) = waiting.get(name) {
                        outcome.failed.insert(key.clone(), message.clone());
                    }
                }
                failure.pending
            }
        };
        for (name, (key, _)) in waiting {
            if !pending.contains(&name) {
                outcome.restored.push(key);
            }
        }
        Ok(outcome)
    }
    const SUPPORTS_ENFORCE: bool = true;

    async fn enforce(
        &self,
        ctx: &ExecutionContext,
        params: &Parameters,
        record: &RestoreRecord,
    ) -> Result<EnforceOutcome, ExecutorError> {
        let cluster = params.cluster_name.as_str();
        let mut outcome = EnforceOutcome::default();
        let mut targets = BTreeMap::new();
        for key in record.entries.keys() {
            ctx.check_cancelled()?;
            let Some(name) = node_group_of_key(key) else {
                ctx.warn(&format!(
                    "{key:?} is not a node group restore key ({KEY_PREFIX}<name>); not checked"
                ));
                continue;
            };
            let view = match self.describe_node_group(cluster, name).await {
                Ok(view) => view,
                Err(e) if e.category == category::NOT_FOUND => {
                    ctx.warn(&format!(
                        "node group {name} of the restore record no longer exists in EKS cluster {cluster}; not checked"
                    ));
                    continue;
                }
                Err(e) => return Err(e),
            };
            outcome.checked.push(key.clone());
            let Some(size) = view.size else {
                continue;
            };
            if size.is_hibernated() {
                continue;
            }
            let target = size.hibernated();
            ctx.warn(&format!(
                "node group {name} of EKS cluster {cluster} is at {size} while the plan is hibernated; scaling it back to {target}"
            ));
            self.set_size(cluster, name, target).await?;
            outcome.rehibernated.push(key.clone());
            targets.insert(name.to_string(), target);
        }
        if params.await_completion.enabled && !targets.is_empty() {
            self.await_sizes(ctx, params, &targets)
                .await
                .map_err(|f| f.error)?;
        }
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_is_bounded() {
        assert_eq!(percent(0, 0), 0);
        assert_eq!(percent(1, 2), 50);
        assert_eq!(percent(2, 2), 100);
    }
}
