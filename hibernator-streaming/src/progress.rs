//! Latest progress per execution, kept in memory for `GetProgress`, and a
//! broadcast of every update for `WatchProgress` ([`ProgressHub`]); plus the
//! plan-status pollers ([`StatusPollers`]) through which a replica follows
//! executions whose reports land on another replica.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::broadcast;

use crate::status::stored_message;
use crate::wire::Progress;

mod pollers;
pub use pollers::{Polled, STATUS_POLL_INTERVAL, StatusPollers};

/// What watchers receive.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProgressEvent {
    /// A new progress report.
    Updated(Progress),
    /// The execution completed; no more updates follow.
    Completed {
        /// Execution id.
        execution_id: String,
    },
}

#[derive(Debug)]
struct Entry {
    progress: Progress,
    completed: bool,
}

/// In-memory progress store with a broadcast of updates.
#[derive(Debug)]
pub struct ProgressHub {
    latest: Mutex<HashMap<String, Entry>>,
    capacity: usize,
    events: broadcast::Sender<ProgressEvent>,
}

impl ProgressHub {
    /// A hub remembering at most `capacity` executions (completed ones are
    /// forgotten first).
    pub fn new(capacity: usize) -> Self {
        let (events, _) = broadcast::channel(1024);
        Self {
            latest: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
            events,
        }
    }

    /// Records `progress` and notifies watchers.
    pub fn update(&self, progress: Progress) {
        {
            let mut latest = self.latest.lock().unwrap_or_else(|e| e.into_inner());
            if latest.len() >= self.capacity && !latest.contains_key(&progress.execution_id) {
                latest.retain(|_, e| !e.completed);
                if latest.len() >= self.capacity {
                    let oldest = latest
                        .iter()
                        .min_by_key(|(_, e)| e.progress.timestamp)
                        .map(|(k, _)| k.clone());
                    if let Some(oldest) = oldest {
                        latest.remove(&oldest);
                    }
                }
            }
            latest.insert(
                progress.execution_id.clone(),
                Entry {
                    progress: progress.clone(),
                    completed: false,
                },
            );
        }
        // No receivers is fine: nobody is watching.
        let _ = self.events.send(ProgressEvent::Updated(progress));
    }

    /// Marks the execution completed and notifies watchers.
    pub fn complete(&self, execution_id: &str) {
        if let Some(e) = self
            .latest
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(execution_id)
        {
            e.completed = true;
        }
        let _ = self.events.send(ProgressEvent::Completed {
            execution_id: execution_id.to_string(),
        });
    }

    /// Latest progress of `execution_id` and whether it completed.
    pub fn get(&self, execution_id: &str) -> Option<(Progress, bool)> {
        self.latest
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(execution_id)
            .map(|e| (e.progress.clone(), e.completed))
    }

    /// Subscribes to all updates.
    pub fn subscribe(&self) -> broadcast::Receiver<ProgressEvent> {
        self.events.subscribe()
    }
}

/// Whether `next` is news to a watcher that last received `last`: a later
/// report, or the same instant with another progress or message (compared as
/// stored in the plan status, so a report seen both in memory and in the
/// status is delivered once; an older one is never delivered after a newer).
pub fn is_news(last: Option<&Progress>, next: &Progress) -> bool {
    let Some(last) = last else { return true };
    next.timestamp > last.timestamp
        || (next.timestamp == last.timestamp
            && (next.progress != last.progress
                || stored_message(&next.message) != stored_message(&last.message)))
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    fn p(id: &str, pct: u8) -> Progress {
        Progress {
            execution_id: id.into(),
            phase: "Shutdown".into(),
            progress: pct,
            message: String::new(),
            timestamp: Utc::now(),
        }
    }

    #[test]
    fn keeps_latest_and_broadcasts() {
        let hub = ProgressHub::new(2);
        let mut rx = hub.subscribe();
        hub.update(p("a", 10));
        hub.update(p("a", 60));
        assert_eq!(hub.get("a").unwrap().0.progress, 60);
        match rx.try_recv().unwrap() {
            ProgressEvent::Updated(first) => assert_eq!(first.progress, 10),
            other => panic!("unexpected {other:?}"),
        }
        hub.complete("a");
        assert!(hub.get("a").unwrap().1);
        hub.update(p("b", 1));
        hub.update(p("c", 1));
        assert!(
            hub.get("a").is_none(),
            "completed entries are evicted first"
        );
        assert!(hub.get("b").is_some() && hub.get("c").is_some());
    }

    #[test]
    fn news_is_later_or_different() {
        let t = Utc::now();
        let p = |pct: u8, message: &str, timestamp| Progress {
            execution_id: "e".into(),
            phase: "Shutdown".into(),
            progress: pct,
            message: message.into(),
            timestamp,
        };
        let first = p(60, "Scaling", t);
        assert!(is_news(None, &first));
        assert!(!is_news(Some(&first), &p(60, "Scaling", t)));
        let mut other_phase = p(60, "Scaling", t);
        other_phase.phase = "running".into();
        assert!(!is_news(Some(&first), &other_phase));
        assert!(is_news(Some(&first), &p(60, "Done", t)));
        assert!(is_news(
            Some(&first),
            &p(60, "Scaling", t + chrono::Duration::seconds(1))
        ));
        assert!(!is_news(
            Some(&first),
            &p(80, "Later?", t - chrono::Duration::seconds(1))
        ));
        let long = "x".repeat(2000);
        assert!(
            !is_news(Some(&p(60, &long, t)), &p(60, &stored_message(&long), t)),
            "a message truncated by the status is the same report"
        );
    }
}
