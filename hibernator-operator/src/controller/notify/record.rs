//! The notification's status: `Ready` and the horizon when its generation
//! changes ([`refresh`]), and one delivery's outcome ([`record`]). Writes
//! use `replace_status` guarded by resourceVersion and retry conflicts;
//! one writer per notification at a time.

use std::sync::Arc;

use chrono::{DateTime, SubsecRound as _, Utc};
use hibernator_core::types::{
    HibernateNotification, HibernateNotificationStatus, NotificationSink,
};
use hibernator_reconcile::notify::records::{Delivery, READY, record_outcome};
use hibernator_reconcile::notify::validate::check_notification;
use hibernator_reconcile::status::set_condition;
use kube::Api;
use kube::api::PostParams;

use super::deliver::Outcome;
use super::{Worker, read_secrets};
use crate::controller::error::is_conflict;

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
        for (index, sink) in notification.spec.sinks.iter().enumerate() {
            let field = format!("spec.sinks[{index}]");
            if let Err(problem) = read_secrets(&worker.client, &namespace, &field, sink).await {
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
    // whole seconds: Kubernetes dates events (Job completions) in seconds,
    // and an event of the second the notification appeared is sent
    let horizon = now.trunc_subsecs(0);
    update(worker, notification, |status| {
        status.horizon.get_or_insert(horizon);
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

/// Records one delivery's outcome in the notification's status
/// ([`record_outcome`]): the key (so it is never sent again), counters,
/// `lastDeliveryTime`, `DeliveryFailing`, pruning.
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
    let max = worker.config.max_records;
    let api: Api<HibernateNotification> = Api::namespaced(worker.client.clone(), namespace);
    let Ok(Some(current)) = api.get_opt(name).await else {
        return;
    };
    let delivery = match outcome {
        Outcome::Delivered { .. } => Delivery::Delivered,
        Outcome::Failed { attempts, reason } => Delivery::Failed {
            attempts: *attempts,
            reason,
        },
    };
    update_with(worker, &api, current, |status| {
        record_outcome(status, &sink.name, &key, at, delivery, now, max);
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
