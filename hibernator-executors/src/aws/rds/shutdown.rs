//! Shutdown: select, optionally snapshot, record and stop.
//!
//! RDS has no batch stop: `StopDBInstance` and `StopDBCluster` take one
//! identifier each, so one Stop call per resource is unavoidable. Listing
//! stays at one Describe call per page.

use std::collections::BTreeMap;

use hibernator_core::duration::format_duration;
use hibernator_core::executor::{ErrorClass, ExecutionContext, ExecutorError, ShutdownOutcome};
use serde_json::json;

use super::RdsExecutor;
use super::inventory::{DbResource, Scope, StatusClass, describe, status_class};
use crate::aws::error::classify;
use crate::aws::wait::wait_until;
use crate::rds::{Parameters, ResourceKind, Selector, snapshot_identifier};

/// Logged whenever a shutdown stopped something.
const SEVEN_DAY_NOTE: &str = "note: RDS starts a stopped DB instance or cluster again by itself \
     after 7 days; a hibernation longer than that finds it running, and the next shutdown stops \
     it again";

pub(super) async fn run(
    ex: &RdsExecutor,
    ctx: &ExecutionContext,
    params: &Parameters,
) -> Result<ShutdownOutcome, ExecutorError> {
    let selected = select(ex, ctx, &params.selector).await?;
    let mut outcome = ShutdownOutcome::default();
    let mut to_await = Vec::new();
    let mut failures = Vec::new();
    let total = selected.len().max(1);
    for (i, resource) in selected.iter().enumerate() {
        ctx.check_cancelled()?;
        let key = resource.key();
        outcome.resources.push(key.clone());
        let in_prior = ctx.prior_record().and_then(|r| r.entry(&key)).is_some();
        match status_class(&resource.status) {
            StatusClass::Awake => match hibernate(ex, ctx, params, resource).await {
                Ok(state) => {
                    outcome.observations.insert(key.clone(), state);
                    to_await.push((resource.kind, resource.id.clone()));
                }
                Err(e) => failures.push(e.with_resource(key.clone())),
            },
            StatusClass::Asleep => {
                if in_prior {
                    ctx.info(&format!(
                        "{key} is {}: still hibernated from an earlier cycle, its recorded awake \
                         state is kept",
                        resource.status
                    ));
                    if resource.status == "stopping" {
                        to_await.push((resource.kind, resource.id.clone()));
                    }
                } else {
                    ctx.info(&format!(
                        "{key} is already {}: not recorded, it stays stopped at wake-up",
                        resource.status
                    ));
                }
            }
            StatusClass::Starting => failures.push(
                ExecutorError::transient(
                    hibernator_core::executor::category::CONFLICT,
                    format!("{key} is starting; it can be stopped once it is available"),
                )
                .with_resource(key.clone()),
            ),
            StatusClass::Busy => failures.push(
                ExecutorError::transient(
                    hibernator_core::executor::category::CONFLICT,
                    format!(
                        "{key} is {}; it can be stopped once the running operation ends",
                        resource.status
                    ),
                )
                .with_resource(key.clone()),
            ),
            StatusClass::Unusable => ctx.warn(&format!(
                "skipping {key}: it is {}, a state RDS cannot stop from",
                resource.status
            )),
        }
        let percent = (i + 1) * 90 / total;
        ctx.progress(
            u8::try_from(percent).unwrap_or(90),
            &format!("checked {key}"),
        );
    }
    if !outcome.observations.is_empty() {
        ctx.info(SEVEN_DAY_NOTE);
    }
    if params.await_completion.enabled && !to_await.is_empty() {
        await_stopped(ex, ctx, &to_await, params.await_completion.timeout()).await?;
    }
    ctx.progress(100, "shutdown complete");
    match combine(failures) {
        Some(error) => Err(error),
        None => Ok(outcome),
    }
}

/// Describes what the selector names and keeps what it selects, minus
/// cluster members and read replicas.
async fn select(
    ex: &RdsExecutor,
    ctx: &ExecutionContext,
    selector: &Selector,
) -> Result<Vec<DbResource>, ExecutorError> {
    let broad = selector.include_all || !selector.tags.is_empty();
    let mut selected = Vec::new();
    for (kind, ids, field) in [
        (ResourceKind::Cluster, &selector.cluster_ids, "clusterIds"),
        (
            ResourceKind::Instance,
            &selector.instance_ids,
            "instanceIds",
        ),
    ] {
        if !broad && ids.is_empty() {
            continue;
        }
        let scope = if broad { Scope::All } else { Scope::Ids(ids) };
        let found = describe(&ex.client, kind, scope, ex.page_size).await?;
        for id in ids {
            if !found.iter().any(|r| &r.id == id) {
                ctx.warn(&format!(
                    "{} {id} named in selector.{field} does not exist in this account and \
                     region; skipped",
                    kind_name(kind)
                ));
            }
        }
        for resource in found {
            if !selector.matches_kind(kind, &resource.id, &resource.tags) {
                continue;
            }
            let key = resource.key();
            if let Some(cluster) = &resource.member_of {
                ctx.info(&format!(
                    "skipping {key}: it is a member of cluster {cluster}, which is stopped as a \
                     whole (select cluster {cluster} to hibernate it)"
                ));
            } else if let Some(source) = &resource.replica_of {
                ctx.info(&format!(
                    "skipping {key}: it is a read replica of {source}, and RDS cannot stop read \
                     replicas"
                ));
            } else {
                selected.push(resource);
            }
        }
    }
    Ok(selected)
}

fn kind_name(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::Instance => "DB instance",
        ResourceKind::Cluster => "DB cluster",
    }
}

/// Snapshots (when asked), records and stops one awake resource; returns
/// its recorded awake state.
async fn hibernate(
    ex: &RdsExecutor,
    ctx: &ExecutionContext,
    params: &Parameters,
    resource: &DbResource,
) -> Result<serde_json::Value, ExecutorError> {
    let key = resource.key();
    let snapshot = params
        .snapshot_before_stop
        .then(|| snapshot_identifier(&resource.id, ctx.cycle_id()));
    let state = json!({
        "status": resource.status,
        "engine": resource.engine,
        "dbInstanceClass": resource.class,
        "snapshotIdentifier": snapshot,
    });
    match resource.kind {
        ResourceKind::Cluster => {
            if let Some(name) = &snapshot {
                snapshot_cluster(ex, ctx, params, &resource.id, name).await?;
            }
            ctx.record_awake_state(&key, state.clone());
            ex.client
                .stop_db_cluster()
                .db_cluster_identifier(&resource.id)
                .send()
                .await
                .map_err(|e| classify(&e, "rds:StopDBCluster"))?;
        }
        ResourceKind::Instance => {
            ctx.record_awake_state(&key, state.clone());
            stop_instance(ex, ctx, &resource.id, snapshot.as_deref()).await?;
        }
    }
    match &snapshot {
        Some(name) => ctx.info(&format!("stopped {key} (snapshot {name})")),
        None => ctx.info(&format!("stopped {key}")),
    }
    Ok(state)
}

/// `StopDBInstance`, taking the snapshot in the same call. When the
/// snapshot already exists (an earlier run of this cycle took it), stops
/// without a new one.
async fn stop_instance(
    ex: &RdsExecutor,
    ctx: &ExecutionContext,
    id: &str,
    snapshot: Option<&str>,
) -> Result<(), ExecutorError> {
    let request = ex.client.stop_db_instance().db_instance_identifier(id);
    let result = request
        .set_db_snapshot_identifier(snapshot.map(str::to_string))
        .send()
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(e)
            if snapshot.is_some()
                && e.as_service_error()
                    .is_some_and(|s| s.is_db_snapshot_already_exists_fault()) =>
        {
            ctx.info(&format!(
                "snapshot {} of instance/{id} already exists (taken earlier in this cycle); \
                 stopping without a new one",
                snapshot.unwrap_or_default()
            ));
            ex.client
                .stop_db_instance()
                .db_instance_identifier(id)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| classify(&e, "rds:StopDBInstance"))
        }
        Err(e) => Err(classify(&e, "rds:StopDBInstance")),
    }
}

/// `CreateDBClusterSnapshot` (an existing snapshot of that name is this
/// cycle's), then waits until it is `available`, bounded by the
/// `awaitCompletion` timeout: RDS does not stop a cluster while it is
/// being snapshotted.
async fn snapshot_cluster(
    ex: &RdsExecutor,
    ctx: &ExecutionContext,
    params: &Parameters,
    id: &str,
    name: &str,
) -> Result<(), ExecutorError> {
    let created = ex
        .client
        .create_db_cluster_snapshot()
        .db_cluster_identifier(id)
        .db_cluster_snapshot_identifier(name)
        .send()
        .await;
    match created {
        Ok(_) => ctx.info(&format!("taking snapshot {name} of cluster/{id}")),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_db_cluster_snapshot_already_exists_fault()) =>
        {
            ctx.info(&format!(
                "snapshot {name} of cluster/{id} already exists (taken earlier in this cycle)"
            ));
        }
        Err(e) => return Err(classify(&e, "rds:CreateDBClusterSnapshot")),
    }
    let what = format!("snapshot {name} of cluster/{id}");
    wait_until(
        ctx,
        &what,
        params.await_completion.timeout(),
        ex.poll_interval,
        || async move {
            let out = ex
                .client
                .describe_db_cluster_snapshots()
                .db_cluster_snapshot_identifier(name)
                .send()
                .await
                .map_err(|e| classify(&e, "rds:DescribeDBClusterSnapshots"))?;
            Ok(out
                .db_cluster_snapshots()
                .iter()
                .any(|s| s.status() == Some("available")))
        },
    )
    .await
}

/// Waits until every resource in `pending` is `stopped`.
pub(super) async fn await_stopped(
    ex: &RdsExecutor,
    ctx: &ExecutionContext,
    pending: &[(ResourceKind, String)],
    timeout: std::time::Duration,
) -> Result<(), ExecutorError> {
    let ids = |kind: ResourceKind| -> Vec<String> {
        pending
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, id)| id.clone())
            .collect()
    };
    let (instances, clusters) = (ids(ResourceKind::Instance), ids(ResourceKind::Cluster));
    let what = format!(
        "stopping {} RDS resource(s) ({})",
        pending.len(),
        pending
            .iter()
            .map(|(k, id)| super::resource_key(*k, id))
            .collect::<Vec<_>>()
            .join(", ")
    );
    ctx.info(&format!(
        "waiting up to {} for {} resource(s) to stop",
        format_duration(timeout),
        pending.len()
    ));
    let (instances, clusters) = (&instances, &clusters);
    wait_until(ctx, &what, timeout, ex.poll_interval, || async move {
        let mut statuses = BTreeMap::new();
        for (kind, ids) in [
            (ResourceKind::Instance, instances),
            (ResourceKind::Cluster, clusters),
        ] {
            if ids.is_empty() {
                continue;
            }
            for r in describe(&ex.client, kind, Scope::Ids(ids), ex.page_size).await? {
                statuses.insert(r.key(), r.status);
            }
        }
        Ok(pending.iter().all(|(k, id)| {
            statuses
                .get(&super::resource_key(*k, id))
                .map(String::as_str)
                == Some("stopped")
        }))
    })
    .await
}

/// One error for all per-resource failures: transient only when every one
/// of them is.
pub(super) fn combine(mut failures: Vec<ExecutorError>) -> Option<ExecutorError> {
    if failures.len() <= 1 {
        return failures.pop();
    }
    let permanent = failures.iter().find(|e| e.class == ErrorClass::Permanent);
    let first = permanent.unwrap_or(&failures[0]);
    let message = failures
        .iter()
        .map(|e| match &e.resource {
            Some(r) => format!("{r}: {}", e.message),
            None => e.message.clone(),
        })
        .collect::<Vec<_>>()
        .join("; ");
    let message = format!("{} resources failed to stop ({message})", failures.len());
    Some(match first.class {
        ErrorClass::Permanent => ExecutorError::permanent(first.category, message),
        ErrorClass::Transient => ExecutorError::transient(first.category, message),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hibernator_core::executor::category;

    #[test]
    fn combined_failures_are_transient_only_if_all_are() {
        let t = |r: &str| ExecutorError::transient(category::CONFLICT, "busy").with_resource(r);
        let one = combine(vec![t("instance/a")]).unwrap();
        assert_eq!(one.resource.as_deref(), Some("instance/a"));
        let two = combine(vec![t("instance/a"), t("cluster/b")]).unwrap();
        assert!(two.is_transient());
        assert!(two.message.contains("instance/a: busy"), "{}", two.message);
        assert!(two.message.contains("cluster/b: busy"), "{}", two.message);
        let p = ExecutorError::permanent(category::AUTH, "denied").with_resource("instance/c");
        let mixed = combine(vec![t("instance/a"), p]).unwrap();
        assert!(!mixed.is_transient());
        assert_eq!(mixed.category, category::AUTH);
        assert!(combine(Vec::new()).is_none());
    }
}
