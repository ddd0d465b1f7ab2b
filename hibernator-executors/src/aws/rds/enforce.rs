//! Enforce: drift re-enforcement while the plan is hibernated.
//!
//! RDS starts a stopped DB instance or cluster by itself after 7 days (and
//! people start databases by hand). Enforcement describes exactly the
//! resources of the restore record and stops again those found `available`;
//! one found `starting` is waited for (bounded by `awaitCompletion.timeout`)
//! and then stopped, since RDS cannot stop a starting database. Nothing is
//! recorded: the entries keep the awake state the next wake-up restores, and
//! no snapshot is taken (the shutdown's snapshot is the one of this cycle).

use std::collections::BTreeMap;

use hibernator_core::executor::{EnforceOutcome, ExecutionContext, ExecutorError, category};
use hibernator_core::restore::RestoreRecord;

use super::RdsExecutor;
use super::inventory::{Scope, StatusClass, describe, status_class};
use super::shutdown::{await_stopped, combine};
use super::wakeup::describe_keys;
use crate::aws::error::classify;
use crate::aws::wait::wait_until;
use crate::rds::{Parameters, ResourceKind};

pub(super) async fn run(
    ex: &RdsExecutor,
    ctx: &ExecutionContext,
    params: &Parameters,
    record: &RestoreRecord,
) -> Result<EnforceOutcome, ExecutorError> {
    let mut wanted: BTreeMap<String, (ResourceKind, String)> = BTreeMap::new();
    for key in record.entries.keys() {
        match super::parse_resource_key(key) {
            Some((kind, id)) => {
                wanted.insert(key.clone(), (kind, id.to_string()));
            }
            None => ctx.warn(&format!(
                "{key:?} is not an rds restore key (instance/<id> or cluster/<id>); not checked"
            )),
        }
    }
    let found = describe_keys(ex, wanted.values()).await?;
    let mut outcome = EnforceOutcome::default();
    let mut stopped = Vec::new();
    let mut failures = Vec::new();
    for (key, (kind, id)) in &wanted {
        ctx.check_cancelled()?;
        let Some(resource) = found.get(key) else {
            ctx.warn(&format!(
                "{key} of the restore record no longer exists; not checked"
            ));
            continue;
        };
        outcome.checked.push(key.clone());
        let status = resource.status.as_str();
        let class = status_class(status);
        if !matches!(class, StatusClass::Awake | StatusClass::Starting) {
            if matches!(class, StatusClass::Busy | StatusClass::Unusable) {
                ctx.warn(&format!(
                    "{key} is {status} while the plan is hibernated; left as it is"
                ));
            }
            continue;
        }
        ctx.warn(&format!(
            "{key} is {status} while the plan is hibernated (RDS starts stopped databases \
             after 7 days); stopping it again"
        ));
        let result = async {
            if class == StatusClass::Starting {
                await_available(ex, ctx, params, *kind, id).await?;
            }
            stop(ex, *kind, id).await
        }
        .await;
        match result {
            Ok(()) => {
                outcome.rehibernated.push(key.clone());
                stopped.push((*kind, id.clone()));
            }
            Err(e) => failures.push(e.with_resource(key.clone())),
        }
    }
    if params.await_completion.enabled && !stopped.is_empty() {
        await_stopped(ex, ctx, &stopped, params.await_completion.timeout()).await?;
    }
    match combine(failures) {
        Some(error) => Err(error),
        None => Ok(outcome),
    }
}

/// `StopDBInstance` (without a snapshot) or `StopDBCluster`.
async fn stop(ex: &RdsExecutor, kind: ResourceKind, id: &str) -> Result<(), ExecutorError> {
    match kind {
        ResourceKind::Instance => ex
            .client
            .stop_db_instance()
            .db_instance_identifier(id)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify(&e, "rds:StopDBInstance")),
        ResourceKind::Cluster => ex
            .client
            .stop_db_cluster()
            .db_cluster_identifier(id)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify(&e, "rds:StopDBCluster")),
    }
}

/// Waits until a starting resource is `available` (RDS cannot stop it
/// before), bounded by `awaitCompletion.timeout`.
async fn await_available(
    ex: &RdsExecutor,
    ctx: &ExecutionContext,
    params: &Parameters,
    kind: ResourceKind,
    id: &str,
) -> Result<(), ExecutorError> {
    let key = super::resource_key(kind, id);
    let what = format!("{key} to finish starting before it can be stopped again");
    let ids = [id.to_string()];
    let (ids, key) = (&ids, &key);
    wait_until(
        ctx,
        &what,
        params.await_completion.timeout(),
        ex.poll_interval,
        || async move {
            let found = describe(&ex.client, kind, Scope::Ids(ids), ex.page_size).await?;
            match found.first().map(|r| status_class(&r.status)) {
                Some(StatusClass::Awake) => Ok(true),
                Some(StatusClass::Starting) => Ok(false),
                Some(_) | None => Err(ExecutorError::transient(
                    category::CONFLICT,
                    format!("{key} left the starting state without becoming available"),
                )),
            }
        },
    )
    .await
}
