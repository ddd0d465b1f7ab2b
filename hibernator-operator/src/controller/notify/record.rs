//! The notification's status: `Ready` and the horizon when its generation
//! changes ([`refresh`]), and one delivery's outcome ([`record`]). Writes
//! use `replace_status` guarded by resourceVersion and retry conflicts;
//! one writer per notification at a time.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use hibernator_core::types::{
    DeliveryRecord, HibernateNotification, HibernateNotificationStatus, NotificationSink,
};
use hibernator_reconcile::notify::validate::check_notification;
use hibernator_reconcile::status::set_condition;
use kube::Api;
use kube::api::PostParams;

use super::deliver::Outcome;
use super::{Worker, read_secrets};
use crate::controller::error::is_conflict;

/// Condition: the spec is valid and every Secret it names is readable.
pub const READY: &str = "Ready";
/// Condition: the last delivery to some sink failed (names the sink).
pub const DELIVERY_FAILING: &str = "DeliveryFailing";

/// Sets `Ready`, `observedGeneration` and (once) the horizon when the
/// notification's generation is not the observed one. Does nothing (sends
/// no request) otherwise.
pub(crate) async fn refresh(worker: &Arc<Worker>, notification: &HibernateNotification) {
    let status = notification.status.clone().unwrap_or_default();
    let generation = notification.metadata.generation;
    if status.horizon.is_some() && status.observed_generation == generation {
        return;
    }
    let namespace = notification.metadata.namespace.clone().unwrap_or_default();
    let diagnostics = check_notification(&notification.spec);
    let (ready, reason, message) = if diagnostics.errors.is_empty() {
        let mut problems = Vec::new();
        for sink in &notification.spec.sinks {
            if let Err(problem) = read_secrets(&worker.client, &namespace, sink).await {
                problems.push(problem);
            }
        }
        if problems.is_empty() {
            (
                true,
                "Ready",
                "spec valid; every Secret readable".to_string(),
            )
        } else {
            (false, "SecretUnavailable", problems.join("; "))
        }
    } else {
        let list: Vec<String> = diagnostics
            .errors
            .iter()
            .map(|d| format!("{}: {}", d.field, d.message))
            .collect();
        (false, "InvalidSpec", list.join("; "))
    };
    let now = worker.clock.now();
    update(worker, notification, |status| {
        status.horizon.get_or_insert(now);
        status.observed_generation = generation;
        set_condition(
            &mut status.conditions,
            READY,
            ready,
            reason,
            message.clone(),
            generation,
            now,
        );
    })
    .await;
}

/// Records one delivery's outcome: the key (so it is never sent again),
/// counters, `lastDeliveryTime` and `DeliveryFailing`; prunes the oldest
/// records beyond `max_records`, moving the horizon past them.
pub(crate) async fn record(
    worker: &Worker,
    namespace: &str,
    name: &str,
    sink: &NotificationSink,
    key: String,
    at: DateTime<Utc>,
    outcome: &Outcome,
) {
    let now = worker.clock.now();
    let max = worker.config.max_records.max(1);
    let api: Api<HibernateNotification> = Api::namespaced(worker.client.clone(), namespace);
    let Ok(Some(current)) = api.get_opt(name).await else {
        return;
    };
    update_with(worker, &api, current, |status| {
        if status.deliveries.iter().any(|d| d.key == key) {
            return;
        }
        // DeliveryFailing is about deliveries, not about a generation
        let generation = None;
        match outcome {
            Outcome::Delivered { .. } => {
                status.delivered_count += 1;
                status.last_delivery_time = Some(now);
                let failing_here = status.conditions.iter().any(|c| {
                    c.type_ == DELIVERY_FAILING
                        && c.status == "True"
                        && c.message.starts_with(&format!("sink {}:", sink.name))
                });
                if failing_here {
                    set_condition(
                        &mut status.conditions,
                        DELIVERY_FAILING,
                        false,
                        "Delivered",
                        format!("sink {}: delivered again", sink.name),
                        generation,
                        now,
                    );
                }
            }
            Outcome::Failed { attempts, reason } => {
                status.failed_count += 1;
                set_condition(
                    &mut status.conditions,
                    DELIVERY_FAILING,
                    true,
                    "DeliveryFailed",
                    format!("sink {}: {reason} ({attempts} attempt(s))", sink.name),
                    generation,
                    now,
                );
            }
        }
        status.deliveries.push(DeliveryRecord {
            key: key.clone(),
            at,
            result: match outcome {
                Outcome::Delivered { .. } => "Delivered",
                Outcome::Failed { .. } => "Failed",
            }
            .to_string(),
        });
        status.deliveries.sort_by_key(|d| d.at);
        if status.deliveries.len() > max {
            let drop = status.deliveries.len() - max;
            let pruned: Vec<DeliveryRecord> = status.deliveries.drain(..drop).collect();
            if let Some(last) = pruned.iter().map(|d| d.at).max() {
                let past = last + TimeDelta::milliseconds(1);
                status.horizon = Some(status.horizon.map_or(past, |h| h.max(past)));
            }
        }
    })
    .await;
}

async fn update(
    worker: &Worker,
    notification: &HibernateNotification,
    change: impl Fn(&mut HibernateNotificationStatus),
) {
    let namespace = notification.metadata.namespace.clone().unwrap_or_default();
    let api: Api<HibernateNotification> = Api::namespaced(worker.client.clone(), &namespace);
    update_with(worker, &api, notification.clone(), change).await;
}

/// Applies `change` to the status and writes it (guarded by
/// resourceVersion); on a conflict reads the object again and retries.
async fn update_with(
    worker: &Worker,
    api: &Api<HibernateNotification>,
    mut current: HibernateNotification,
    change: impl Fn(&mut HibernateNotificationStatus),
) {
    let name = current.metadata.name.clone().unwrap_or_default();
    let namespace = current.metadata.namespace.clone().unwrap_or_default();
    let lock = {
        let Ok(mut locks) = worker.locks.lock() else {
            return;
        };
        locks
            .entry(format!("{namespace}/{name}"))
            .or_default()
            .clone()
    };
    let _held = lock.lock().await;
    for _ in 0..8 {
        let before = current.status.clone().unwrap_or_default();
        let mut status = before.clone();
        change(&mut status);
        if status == before {
            return;
        }
        let mut updated = current.clone();
        updated.status = Some(status);
        updated.metadata.managed_fields = None;
        match api
            .replace_status(&name, &PostParams::default(), &updated)
            .await
        {
            Ok(_) => return,
            Err(e) if is_conflict(&e) => match api.get_opt(&name).await {
                Ok(Some(fresh)) => current = fresh,
                _ => return,
            },
            Err(e) => {
                tracing::warn!(notification = %format!("{namespace}/{name}"), error = %e, "could not update notification status");
                return;
            }
        }
    }
}
