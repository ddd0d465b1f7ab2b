//! The apply step: status first (guarded by resourceVersion), then Jobs,
//! then Events, pruning, metrics and — on deletion — cleanup.

use std::sync::Arc;

use hibernator_core::types::HibernatePlan;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams, PropagationPolicy};
use kube::runtime::reflector::ObjectRef;

use super::Context;
use super::error::{Error, is_already_exists, is_conflict, is_not_found};
use super::finalizer::set_finalizer;
use super::metrics::plan_key;
use hibernator_core::wellknown::{LABEL_PLAN, plan_label, restore_config_map_name};
use hibernator_kube::{build_enforce_job, build_job};
use hibernator_reconcile::Decision;

/// Writes the status when it changed and returns the written object. Uses
/// `replace_status` with the resourceVersion the plan was read at, so a
/// decision made on a stale cache fails with [`Error::Conflict`] instead of
/// overwriting newer state.
pub async fn write_status(
    ctx: &Arc<Context>,
    api: &Api<HibernatePlan>,
    plan: &HibernatePlan,
    decision: &Decision,
) -> Result<Option<HibernatePlan>, Error> {
    if plan.status.as_ref() == Some(&decision.status) {
        return Ok(None);
    }
    let name = plan.metadata.name.clone().unwrap_or_default();
    let key = plan_key(
        plan.metadata.namespace.as_deref().unwrap_or_default(),
        &name,
    );
    let mut updated = plan.clone();
    updated.status = Some(decision.status.clone());
    updated.metadata.managed_fields = None;
    // the watch's events of the plan wait for the response (`echo`)
    let write = ctx.own_writes.sending(plan);
    let result = api
        .replace_status(&name, &PostParams::default(), &updated)
        .await;
    let held_back = match &result {
        Ok(written) => write.record(written),
        Err(_) => write.failed(),
    };
    if held_back {
        ctx.job_checks.request(ObjectRef::from_obj(plan));
    }
    match result {
        Ok(written) => Ok(Some(written)),
        Err(e) if is_conflict(&e) => Err(Error::Conflict { plan: key }),
        Err(e) => Err(Error::kube("update status of", key, e)),
    }
}

/// Creates `job` for `plan`, recording what the create returned so that
/// the Job watch's echo of it reconciles nothing (`echo::OwnCreates`);
/// another event of the Job the watch showed meanwhile reconciles the plan.
async fn create_recorded(
    ctx: &Arc<Context>,
    plan: &HibernatePlan,
    jobs: &Api<Job>,
    job: &Job,
) -> Result<Job, kube::Error> {
    let create = ctx.own_creates.sending(job);
    let result = jobs.create(&PostParams::default(), job).await;
    let held_back = match &result {
        Ok(created) => create.record(created),
        Err(_) => create.failed(),
    };
    if held_back {
        ctx.job_checks.request(ObjectRef::from_obj(plan));
    }
    result
}

/// Creates the decision's runner Jobs: `AlreadyExists` counts as done; a
/// Job the ledger recorded that was missing is logged at WARN and counted.
/// Returns how many creates failed and the first error.
async fn create_jobs(
    ctx: &Arc<Context>,
    plan: &HibernatePlan,
    decision: &Decision,
    jobs: &Api<Job>,
) -> Result<Option<(usize, kube::Error)>, Error> {
    let name = plan.metadata.name.clone().unwrap_or_default();
    let key = plan_key(
        plan.metadata.namespace.as_deref().unwrap_or_default(),
        &name,
    );
    let mut failed: Option<(usize, kube::Error)> = None;
    for request in &decision.create {
        let job = build_job(plan, request, &ctx.config.runner).map_err(|source| Error::Build {
            plan: key.clone(),
            source,
        })?;
        let job_name = request.name(&name);
        let recorded = decision.missing.contains(&job_name);
        match create_recorded(ctx, plan, jobs, &job).await {
            Ok(_) if recorded => {
                ctx.metrics.record_job_recreated();
                tracing::warn!(
                    plan = %key,
                    job = %job_name,
                    target = %request.target,
                    "runner Job recorded in status was missing; created it again"
                );
            }
            Ok(_) => tracing::info!(plan = %key, job = %job_name, "created runner Job"),
            Err(e) if is_already_exists(&e) => {
                tracing::debug!(plan = %key, job = %job_name, "runner Job exists already");
            }
            Err(e) => {
                tracing::warn!(
                    plan = %key,
                    job = %job_name,
                    error = %e,
                    "could not create runner Job; retrying after backoff"
                );
                failed = Some(match failed {
                    Some((count, first)) => (count + 1, first),
                    None => (1, e),
                });
            }
        }
    }
    for request in &decision.enforce_create {
        let job = build_enforce_job(plan, request, &ctx.config.runner).map_err(|source| {
            Error::Build {
                plan: key.clone(),
                source,
            }
        })?;
        let job_name = request.name(&name);
        match create_recorded(ctx, plan, jobs, &job).await {
            Ok(_) => tracing::info!(plan = %key, job = %job_name, "created enforce Job"),
            Err(e) if is_already_exists(&e) => {
                tracing::debug!(plan = %key, job = %job_name, "enforce Job exists already");
            }
            Err(e) => {
                tracing::warn!(
                    plan = %key,
                    job = %job_name,
                    error = %e,
                    "could not create enforce Job; retrying after backoff"
                );
                failed = Some(match failed {
                    Some((count, first)) => (count + 1, first),
                    None => (1, e),
                });
            }
        }
    }
    Ok(failed)
}

/// Applies a decision: status, Jobs, Events, metrics, pruning, cleanup.
/// Fails with [`Error::CreateJobs`] when a Job could not be created (after
/// the status write and the Events).
pub async fn apply(
    ctx: &Arc<Context>,
    plan: &HibernatePlan,
    decision: &Decision,
    restore_bytes: usize,
) -> Result<(), Error> {
    let namespace = plan.metadata.namespace.clone().unwrap_or_default();
    let name = plan.metadata.name.clone().unwrap_or_default();
    let key = plan_key(&namespace, &name);
    let plans: Api<HibernatePlan> = Api::namespaced(ctx.client.clone(), &namespace);
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), &namespace);

    // 1. status first: Jobs exist only for cycles recorded in status
    //    (its watch echo reconciles nothing: see `echo`)
    write_status(ctx, &plans, plan, decision).await?;

    // 1b. stop enforce Jobs that must not act any more (a wake-up holds its
    //     Jobs until these are gone): foreground, so each stays observed
    //     until its runner Pod has terminated
    let foreground = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Foreground),
        ..DeleteParams::default()
    };
    for job in &decision.stop_jobs {
        match jobs.delete(job, &foreground).await {
            Ok(_) => tracing::info!(plan = %key, %job, "stopping enforce Job"),
            Err(e) if is_not_found(&e) => {}
            Err(e) => {
                tracing::warn!(plan = %key, %job, error = %e, "could not stop enforce Job; retrying on the next reconcile")
            }
        }
    }

    // 2. Jobs (deterministic names: AlreadyExists means already done). Every
    //    create is tried; failures fail the reconcile after the Events below,
    //    so `error_policy` backs off and the next reconcile creates them again.
    let failed = create_jobs(ctx, plan, decision, &jobs).await?;

    // 3. Events (queued: published in the background) and metrics
    for event in &decision.events {
        ctx.events.publish(plan, event);
    }
    ctx.metrics.record_finished(&key, &decision.finished);
    ctx.metrics.record_enforced(&key, &decision.enforced);
    ctx.metrics.record_plan(
        &key,
        decision.status.phase,
        restore_bytes,
        decision.status.next_transition.map(|t| t.timestamp()),
    );
    // the status was written (or unchanged): count what it accrued
    ctx.metrics.record_accounting(
        &key,
        plan.status.as_ref().and_then(|s| s.accounting.as_deref()),
        decision.status.accounting.as_deref(),
    );

    // 4. prune finished Jobs of old cycles
    let background = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..DeleteParams::default()
    };
    for job in &decision.delete_jobs {
        match jobs.delete(job, &background).await {
            Ok(_) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => tracing::warn!(plan = %key, %job, error = %e, "could not prune old Job"),
        }
    }

    if let Some((count, source)) = failed {
        return Err(Error::CreateJobs {
            plan: key,
            failed: count,
            requested: decision.create.len() + decision.enforce_create.len(),
            source,
        });
    }

    // 5. deletion: remove Jobs and the restore ConfigMap, then the finalizer
    if decision.cleanup {
        let selector = format!("{LABEL_PLAN}={}", plan_label(&name));
        jobs.delete_collection(&background, &ListParams::default().labels(&selector))
            .await
            .map_err(|e| Error::kube("delete Jobs of", key.clone(), e))?;
        let config_maps: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &namespace);
        let config_map = restore_config_map_name(&name);
        match config_maps
            .delete(&config_map, &DeleteParams::default())
            .await
        {
            Ok(_) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => {
                return Err(Error::kube(
                    "delete restore ConfigMap",
                    format!("{namespace}/{config_map}"),
                    e,
                ));
            }
        }
        let fresh = plans
            .get_opt(&name)
            .await
            .map_err(|e| Error::kube("get", key.clone(), e))?;
        if let Some(fresh) = fresh {
            set_finalizer(&plans, &fresh, false).await?;
        }
        ctx.metrics.forget_plan(&key);
        ctx.own_writes.forget(&namespace, &name);
        tracing::info!(plan = %key, "plan cleaned up; finalizer removed");
    }
    Ok(())
}
