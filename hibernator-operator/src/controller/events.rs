//! Kubernetes Events about plans: phase changes, target failures, retries.
//!
//! Events are best-effort (as in client-go's event broadcaster): a
//! reconcile queues them and goes on; one background task publishes them
//! in order through a client with a request budget of its own
//! (`--kube-event-qps`, `--kube-event-burst`), so a burst of Events never
//! holds up a status write or a runner Job. When the queue is full (the API
//! server slower than the Events come), new Events are dropped, counted in
//! `hibernator_events_dropped_total` and logged once per overflow.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use hibernator_core::types::HibernatePlan;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use kube::Resource;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use tokio::sync::mpsc;

use super::metrics::Metrics;
use hibernator_reconcile::PlanEvent;

/// Name the controller reports Events as.
pub const REPORTER: &str = "hibernator-controller";

/// Events waiting to be published at most (about 1 KiB each); a 1,000-plan
/// boundary queues two per plan.
pub const EVENT_QUEUE: usize = 4096;

type Queued = (ObjectReference, Event);

/// Publishes [`PlanEvent`]s through the events API (deduplicated into
/// series by kube-runtime) from a background task.
#[derive(Clone)]
pub struct EventPublisher {
    shared: Arc<Shared>,
}

struct Shared {
    client: Client,
    reporter: Reporter,
    metrics: Arc<Metrics>,
    /// Events the queue holds at most.
    capacity: usize,
    /// The queue, created with its worker on the first Event (a reconcile
    /// always runs on a runtime; the constructor may not).
    queue: OnceLock<mpsc::Sender<Queued>>,
    /// Set while Events are being dropped: one WARN per overflow.
    overflowing: AtomicBool,
}

impl std::fmt::Debug for EventPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventPublisher").finish_non_exhaustive()
    }
}

impl EventPublisher {
    /// A publisher reporting as [`REPORTER`] from `instance` (the pod name),
    /// sending through `client`.
    pub fn new(client: Client, instance: Option<String>, metrics: Arc<Metrics>) -> Self {
        Self::with_capacity(client, instance, metrics, EVENT_QUEUE)
    }

    fn with_capacity(
        client: Client,
        instance: Option<String>,
        metrics: Arc<Metrics>,
        capacity: usize,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                client,
                reporter: Reporter {
                    controller: REPORTER.to_string(),
                    instance,
                },
                metrics,
                capacity,
                queue: OnceLock::new(),
                overflowing: AtomicBool::new(false),
            }),
        }
    }

    /// Queues `event` about `plan` and returns at once. A full queue drops
    /// it (counted, logged once per overflow): Events are best-effort. The
    /// first call starts the publishing task, so it must run on a tokio
    /// runtime (reconciles do).
    pub fn publish(&self, plan: &HibernatePlan, event: &PlanEvent) {
        let reference = plan.object_ref(&());
        let ev = Event {
            type_: if event.warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: event.reason.to_string(),
            note: Some(truncate(&event.note, 1000)),
            action: "Reconcile".to_string(),
            secondary: None,
        };
        let queue = self.shared.queue.get_or_init(|| self.start());
        match queue.try_send((reference, ev)) {
            Ok(()) => {
                self.shared.overflowing.store(false, Ordering::Relaxed);
            }
            Err(mpsc::error::TrySendError::Full((reference, ev))) => {
                self.shared.metrics.record_event_dropped();
                if !self.shared.overflowing.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        reason = %ev.reason,
                        plan = reference.name.as_deref().unwrap_or_default(),
                        queued = self.shared.capacity,
                        "Event queue full: dropping Events until it has room (see hibernator_events_dropped_total)"
                    );
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.shared.metrics.record_event_dropped();
            }
        }
    }

    /// The queue and its worker, which publishes in order until every
    /// publisher is gone.
    fn start(&self) -> mpsc::Sender<Queued> {
        let (tx, mut rx) = mpsc::channel::<Queued>(self.shared.capacity);
        let recorder = Recorder::new(self.shared.client.clone(), self.shared.reporter.clone());
        tokio::spawn(async move {
            while let Some((reference, ev)) = rx.recv().await {
                if let Err(error) = recorder.publish(&ev, &reference).await {
                    tracing::warn!(reason = %ev.reason, %error, "could not publish Event");
                }
            }
        });
        tx
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

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> HibernatePlan {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "hibernator.dev/v1alpha1", "kind": "HibernatePlan",
            "metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
            "spec": {"schedule": {"timezone": "UTC", "offHours": []}, "targets": []},
        }))
        .unwrap()
    }

    fn dropped(metrics: &Metrics) -> u64 {
        let text = metrics.encode().unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix("hibernator_events_dropped_total "))
            .map(|v| v.trim().parse().unwrap())
            .unwrap_or_else(|| panic!("no events_dropped counter in:\n{text}"))
    }

    #[tokio::test]
    async fn a_full_queue_drops_and_counts_instead_of_holding_up_the_reconcile() {
        // an API server that accepts connections and never answers: the
        // worker hangs on its first Event, the queue fills up
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((connection, _)) = listener.accept().await {
                held.push(connection);
            }
        });
        let config = kube::Config::new(format!("http://{addr}").parse().unwrap());
        let client = Client::try_from(config).unwrap();
        let metrics = Arc::new(Metrics::new());
        let publisher = EventPublisher::with_capacity(client, None, metrics.clone(), 2);
        let event = PlanEvent::normal("Hibernating", "shutting down".to_string());
        let plan = plan();
        publisher.publish(&plan, &event);
        // the worker has taken the first Event (and hangs on it)
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        for _ in 0..9 {
            publisher.publish(&plan, &event);
        }
        // 1 in flight, 2 queued: 7 of the last 9 dropped, none waited for
        assert_eq!(dropped(&metrics), 7);
        server.abort();
    }
}
