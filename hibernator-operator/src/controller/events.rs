//! Kubernetes Events about plans: phase changes, target failures, retries.

use hibernator_core::types::HibernatePlan;
use kube::Client;
use kube::Resource;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

use hibernator_reconcile::PlanEvent;

/// Name the controller reports Events as.
pub const REPORTER: &str = "hibernator-controller";

/// Publishes [`PlanEvent`]s through the events API (deduplicated into series by kube-runtime).
#[derive(Clone)]
pub struct EventPublisher {
    recorder: Recorder,
}

impl std::fmt::Debug for EventPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventPublisher").finish_non_exhaustive()
    }
}

impl EventPublisher {
    /// A publisher reporting as [`REPORTER`] from `instance` (the pod name).
    pub fn new(client: Client, instance: Option<String>) -> Self {
        let reporter = Reporter {
            controller: REPORTER.to_string(),
            instance,
        };
        Self {
            recorder: Recorder::new(client, reporter),
        }
    }

    /// Publishes `event` about `plan`. Failures are logged, never fatal:
    /// Events are best-effort by design.
    pub async fn publish(&self, plan: &HibernatePlan, event: &PlanEvent) {
        let reference = plan.object_ref(&());
        let note = truncate(&event.note, 1000);
        let ev = Event {
            type_: if event.warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: event.reason.to_string(),
            note: Some(note),
            action: "Reconcile".to_string(),
            secondary: None,
        };
        if let Err(error) = self.recorder.publish(&ev, &reference).await {
            tracing::warn!(reason = event.reason, %error, "could not publish Event");
        }
    }
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}
