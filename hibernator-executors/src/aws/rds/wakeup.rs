//! Wake-up: start what the record holds and, with `awaitCompletion`, wait
//! for `available`; with `connectivityCheck.enabled` as well, then check
//! that each endpoint accepts TCP connections (bounded by the check's own
//! timeout).
//!
//! RDS has no batch start: `StartDBInstance` / `StartDBCluster` take one
//! identifier each, so one Start call per resource is unavoidable. Status
//! polls are one Describe call per page for all pending resources.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use hibernator_core::duration::format_duration;
use hibernator_core::executor::{ExecutionContext, ExecutorError, WakeupOutcome, category};
use hibernator_core::restore::RestoreRecord;
use tokio::time::Instant;

use super::RdsExecutor;
use super::connect::probe;
use super::inventory::{DbResource, Scope, StatusClass, describe, status_class};
use crate::aws::error::classify;
use crate::aws::wait::wait_until;
use crate::rds::{Parameters, ResourceKind};

pub(super) async fn run(
    ex: &RdsExecutor,
    ctx: &ExecutionContext,
    params: &Parameters,
    record: &RestoreRecord,
) -> Result<WakeupOutcome, ExecutorError> {
    let mut outcome = WakeupOutcome::default();
    let mut wanted: BTreeMap<String, (ResourceKind, String)> = BTreeMap::new();
    for key in record.entries.keys() {
        match super::parse_resource_key(key) {
            Some((kind, id)) => {
                wanted.insert(key.clone(), (kind, id.to_string()));
            }
            None => {
                outcome.failed.insert(
                    key.clone(),
                    "not an rds restore key (expected instance/<id> or cluster/<id>)".to_string(),
                );
            }
        }
    }
    let found = describe_keys(ex, wanted.values()).await?;
    let mut started = Vec::new();
    for (key, (kind, id)) in &wanted {
        ctx.check_cancelled()?;
        let Some(resource) = found.get(key) else {
            outcome.failed.insert(
                key.clone(),
                format!("{key} no longer exists, so it cannot be started"),
            );
            continue;
        };
        let status = resource.status.as_str();
        match status_class(status) {
            StatusClass::Asleep if status == "stopped" => match start(ex, *kind, id).await {
                Ok(()) => {
                    ctx.info(&format!("started {key}"));
                    started.push(key.clone());
                }
                Err(e) => {
                    outcome.failed.insert(key.clone(), e.to_string());
                }
            },
            StatusClass::Awake | StatusClass::Starting => {
                ctx.info(&format!("{key} is already {status}"));
                started.push(key.clone());
            }
            StatusClass::Asleep => {
                outcome.failed.insert(
                    key.clone(),
                    format!("{key} is still {status}; it can be started once it is stopped"),
                );
            }
            StatusClass::Busy | StatusClass::Unusable => {
                outcome.failed.insert(
                    key.clone(),
                    format!("{key} is {status}, a state RDS cannot start it from"),
                );
            }
        }
    }
    ctx.progress(50, &format!("started {} resource(s)", started.len()));
    if !params.await_completion.enabled {
        outcome.restored = started;
        return Ok(outcome);
    }
    let timeout = params.await_completion.timeout();
    let ready = await_available(ex, ctx, &wanted, started, timeout, &mut outcome).await?;
    if params.connectivity_check.enabled {
        ctx.progress(80, "checking endpoints");
        let timeout = params.connectivity_check.timeout();
        check_endpoints(ex, ctx, ready, timeout, &mut outcome).await?;
    } else {
        outcome.restored.extend(ready.iter().map(DbResource::key));
    }
    ctx.progress(100, "wake-up complete");
    Ok(outcome)
}

/// Describes the given resources (both kinds), keyed by restore key.
pub(super) async fn describe_keys<'a>(
    ex: &RdsExecutor,
    resources: impl Iterator<Item = &'a (ResourceKind, String)>,
) -> Result<BTreeMap<String, DbResource>, ExecutorError> {
    let (mut instances, mut clusters) = (Vec::new(), Vec::new());
    for (kind, id) in resources {
        match kind {
            ResourceKind::Instance => instances.push(id.clone()),
            ResourceKind::Cluster => clusters.push(id.clone()),
        }
    }
    let mut found = BTreeMap::new();
    for (kind, ids) in [
        (ResourceKind::Instance, &instances),
        (ResourceKind::Cluster, &clusters),
    ] {
        if ids.is_empty() {
            continue;
        }
        for r in describe(&ex.client, kind, Scope::Ids(ids), ex.page_size).await? {
            found.insert(r.key(), r);
        }
    }
    Ok(found)
}

async fn start(ex: &RdsExecutor, kind: ResourceKind, id: &str) -> Result<(), ExecutorError> {
    match kind {
        ResourceKind::Instance => ex
            .client
            .start_db_instance()
            .db_instance_identifier(id)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify(&e, "rds:StartDBInstance")),
        ResourceKind::Cluster => ex
            .client
            .start_db_cluster()
            .db_cluster_identifier(id)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify(&e, "rds:StartDBCluster")),
    }
}

/// Waits until the `started` resources are `available`; those that are not
/// by the timeout go to `outcome.failed`. Returns the available ones.
async fn await_available(
    ex: &RdsExecutor,
    ctx: &ExecutionContext,
    wanted: &BTreeMap<String, (ResourceKind, String)>,
    started: Vec<String>,
    timeout: Duration,
    outcome: &mut WakeupOutcome,
) -> Result<Vec<DbResource>, ExecutorError> {
    struct Progress {
        pending: BTreeMap<String, String>,
        ready: Vec<DbResource>,
    }
    let progress = Mutex::new(Progress {
        pending: started.into_iter().map(|k| (k, String::new())).collect(),
        ready: Vec::new(),
    });
    let lock = || progress.lock().unwrap_or_else(PoisonError::into_inner);
    let what = "RDS resources to become available";
    let waited = wait_until(ctx, what, timeout, ex.poll_interval, || async move {
        let keys: Vec<String> = lock().pending.keys().cloned().collect();
        if keys.is_empty() {
            return Ok(true);
        }
        let found = describe_keys(ex, keys.iter().filter_map(|k| wanted.get(k))).await?;
        let mut p = lock();
        for key in keys {
            match found.get(&key) {
                Some(r) if r.status == "available" => {
                    p.pending.remove(&key);
                    p.ready.push(r.clone());
                }
                Some(r) => {
                    p.pending.insert(key, r.status.clone());
                }
                None => {
                    p.pending.insert(key, "gone".to_string());
                }
            }
        }
        Ok(p.pending.is_empty())
    })
    .await;
    match waited {
        Ok(()) => {}
        Err(e) if e.category == category::TIMEOUT => {
            for (key, status) in &lock().pending {
                outcome.failed.insert(
                    key.clone(),
                    format!(
                        "{key} did not become available within {} (last status: {})",
                        format_duration(timeout),
                        if status.is_empty() { "unknown" } else { status }
                    ),
                );
            }
        }
        Err(e) => return Err(e),
    }
    Ok(progress
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner)
        .ready)
}

/// Checks that each available resource's endpoint accepts a TCP connection,
/// retrying for at most `timeout`; passing ones go to `outcome.restored`,
/// the others to `outcome.failed` with the endpoint, the last connection
/// error and how to turn the check off.
async fn check_endpoints(
    ex: &RdsExecutor,
    ctx: &ExecutionContext,
    ready: Vec<DbResource>,
    timeout: Duration,
    outcome: &mut WakeupOutcome,
) -> Result<(), ExecutorError> {
    let deadline = Instant::now() + timeout;
    let mut pending = BTreeMap::new();
    for r in ready {
        match r.endpoint.clone() {
            Some(endpoint) => {
                pending.insert(r.key(), (endpoint, String::new()));
            }
            None => {
                let key = r.key();
                outcome.failed.insert(
                    key.clone(),
                    format!(
                        "{key} is available but reports no endpoint to check connectivity; \
                         set connectivityCheck.enabled: false in the target's parameters to \
                         skip the check"
                    ),
                );
            }
        }
    }
    let state = Mutex::new((pending, Vec::<String>::new()));
    let lock = || state.lock().unwrap_or_else(PoisonError::into_inner);
    let waited = wait_until(
        ctx,
        "RDS endpoints to accept connections",
        timeout,
        ex.poll_interval,
        || async move {
            let endpoints: Vec<(String, (String, u16))> = lock()
                .0
                .iter()
                .map(|(k, (e, _))| (k.clone(), e.clone()))
                .collect();
            for (key, (host, port)) in endpoints {
                let left = deadline.saturating_duration_since(Instant::now());
                let limit = ex.connect_timeout.min(left).max(Duration::from_millis(100));
                let result = probe(ex.resolver.as_ref(), &host, port, limit).await;
                let mut s = lock();
                match result {
                    Ok(()) => {
                        ctx.info(&format!(
                            "{key}: endpoint {host}:{port} accepts connections"
                        ));
                        s.0.remove(&key);
                        s.1.push(key);
                    }
                    Err(error) => {
                        if let Some(entry) = s.0.get_mut(&key) {
                            entry.1 = error;
                        }
                    }
                }
            }
            Ok(lock().0.is_empty())
        },
    )
    .await;
    let (pending, restored) = state.into_inner().unwrap_or_else(PoisonError::into_inner);
    outcome.restored.extend(restored);
    match waited {
        Ok(()) => Ok(()),
        Err(e) if e.category == category::TIMEOUT => {
            for (key, ((host, port), error)) in pending {
                let message = unreachable_message(&key, &host, port, timeout, &error);
                outcome.failed.insert(key, message);
            }
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Why an available database failed the connectivity check, and what to do.
fn unreachable_message(key: &str, host: &str, port: u16, timeout: Duration, error: &str) -> String {
    let error = if error.is_empty() {
        "no connection attempt finished"
    } else {
        error
    };
    format!(
        "{key} is available (RDS reports it started), but the runner could not open a TCP \
         connection to its endpoint {host}:{port} within {} (connectivityCheck.timeout): {error}. \
         The database itself is available; the runner cannot reach it (security groups, \
         private subnets, NetworkPolicy). Set connectivityCheck.enabled: false in the target's \
         parameters to skip this check",
        format_duration(timeout)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unreachable_message_names_endpoint_port_parameter_and_state() {
        let message = unreachable_message(
            "instance/orders-db",
            "orders-db.abc.eu-central-1.rds.amazonaws.com",
            5432,
            Duration::from_secs(30),
            "connecting to orders-db.abc.eu-central-1.rds.amazonaws.com:5432 did not succeed within 5s",
        );
        for needle in [
            "instance/orders-db is available",
            "endpoint orders-db.abc.eu-central-1.rds.amazonaws.com:5432",
            "within 30s",
            "connectivityCheck.enabled: false",
            "The database itself is available",
        ] {
            assert!(message.contains(needle), "{needle:?} not in {message}");
        }
        assert!(
            unreachable_message("k", "h", 1, Duration::from_secs(1), "")
                .contains("no connection attempt")
        );
    }
}
