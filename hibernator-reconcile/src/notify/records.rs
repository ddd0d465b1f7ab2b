//! A notification's delivery records (`status.deliveries`): what makes each
//! event go out once per sink, bounded, with the horizon moved past what is
//! pruned.

use chrono::{DateTime, TimeDelta, Utc};
use hibernator_core::types::{DeliveryRecord, HibernateNotificationStatus};

use crate::status::set_condition;

/// Condition: the spec is valid and every Secret it names is readable.
pub const READY: &str = "Ready";
/// Condition: the last delivery to some sink failed (names the sink).
pub const DELIVERY_FAILING: &str = "DeliveryFailing";

/// How one delivery ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery<'a> {
    /// The sink answered 2xx.
    Delivered,
    /// Attempts used up, or a permanent error; `reason` is redacted.
    Failed {
        /// Attempts made.
        attempts: u32,
        /// Why (no URL, no key).
        reason: &'a str,
    },
}

/// Whether `key` (`<sink>/<event key>`) is recorded, i.e. never sent again.
pub fn is_recorded(status: &HibernateNotificationStatus, key: &str) -> bool {
    status.deliveries.iter().any(|d| d.key == key)
}

/// Whether an event that happened at `at` may still be sent (not before
/// the horizon; `None` horizon: the notification is not initialised yet).
pub fn after_horizon(status: &HibernateNotificationStatus, at: DateTime<Utc>) -> bool {
    status.horizon.is_some_and(|h| at >= h)
}

/// Records `outcome` for `key` of sink `sink` (an event of time `at`):
/// appends the record, counts it, sets `lastDeliveryTime` and
/// `DeliveryFailing`, and keeps the newest `max_records` records, moving
/// the horizon past the pruned ones. Recording a key twice changes nothing.
pub fn record_outcome(
    status: &mut HibernateNotificationStatus,
    sink: &str,
    key: &str,
    at: DateTime<Utc>,
    outcome: Delivery<'_>,
    now: DateTime<Utc>,
    max_records: usize,
) {
    if is_recorded(status, key) {
        return;
    }
    // DeliveryFailing is about deliveries, not about a generation
    let generation = None;
    let prefix = format!("sink {sink}:");
    match outcome {
        Delivery::Delivered => {
            status.delivered_count += 1;
            status.last_delivery_time = Some(now);
            let failing_here = status.conditions.iter().any(|c| {
                c.type_ == DELIVERY_FAILING && c.status == "True" && c.message.starts_with(&prefix)
            });
            if failing_here {
                set_condition(
                    &mut status.conditions,
                    DELIVERY_FAILING,
                    false,
                    "Delivered",
                    format!("{prefix} delivered again"),
                    generation,
                    now,
                );
            }
        }
        Delivery::Failed { attempts, reason } => {
            status.failed_count += 1;
            set_condition(
                &mut status.conditions,
                DELIVERY_FAILING,
                true,
                "DeliveryFailed",
                format!("{prefix} {reason} ({attempts} attempt(s))"),
                generation,
                now,
            );
        }
    }
    status.deliveries.push(DeliveryRecord {
        key: key.to_string(),
        at,
        result: match outcome {
            Delivery::Delivered => "Delivered",
            Delivery::Failed { .. } => "Failed",
        }
        .to_string(),
    });
    status.deliveries.sort_by_key(|d| d.at);
    let max = max_records.max(1);
    if status.deliveries.len() > max {
        let drop = status.deliveries.len() - max;
        let pruned: Vec<DeliveryRecord> = status.deliveries.drain(..drop).collect();
        if let Some(last) = pruned.iter().map(|d| d.at).max() {
            let past = last + TimeDelta::milliseconds(1);
            status.horizon = Some(status.horizon.map_or(past, |h| h.max(past)));
        }
    }
}
