//! Latest progress per execution, kept in memory for `GetProgress`, and a
//! broadcast of every update for `WatchProgress` ([`ProgressHub`]); plus the
//! plan-status pollers ([`StatusPollers`]) through which a replica follows
//! executions whose reports land on another replica.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{broadcast, watch};

use crate::auth::ExecutionInfo;
use crate::status::{StatusSink, StoredProgress, stored_message};

/// Progress of an execution, transport-neutral.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Execution id.
    pub execution_id: String,
    /// Operation phase (`Shutdown`, `WakeUp`).
    pub phase: String,
    /// Percent done, 0–100.
    pub progress: u8,
    /// Human-readable status.
    pub message: String,
    /// When the runner observed it.
    pub timestamp: DateTime<Utc>,
}

/// What watchers receive.
#[derive(Clone, Debug, PartialEq, Eq)]
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

/// How often a status poller reads the plan (one GET per watched execution).
pub const STATUS_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// What the status poller of an execution last read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Polled {
    /// Nothing read yet, or the plan status has no entry for the execution.
    Unknown,
    /// The execution's entry (the poller stops once it is finished).
    Found(StoredProgress),
    /// The entry was there and is gone (superseded by a newer attempt, or the
    /// plan was deleted); the poller stopped.
    Gone,
}

type Pollers = Arc<Mutex<HashMap<String, Arc<watch::Sender<Polled>>>>>;

/// At most one plan-status poller per watched execution, shared by all its
/// watchers and stopped when the last watcher goes away or the execution is
/// over.
pub struct StatusPollers {
    status: Arc<dyn StatusSink>,
    interval: Duration,
    active: Pollers,
}

impl StatusPollers {
    /// Pollers reading `status` every `interval`.
    pub fn new(status: Arc<dyn StatusSink>, interval: Duration) -> Self {
        Self {
            status,
            interval,
            active: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Follows the stored progress of `execution`: joins its poller, or starts
    /// one. The receiver sees [`Polled`] changes; its sender is dropped (so
    /// `changed()` fails) when the poller stopped because the execution is
    /// over.
    pub fn subscribe(&self, execution: &ExecutionInfo) -> watch::Receiver<Polled> {
        let mut active = self.active.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(tx) = active.get(&execution.execution_id) {
            return tx.subscribe();
        }
        let (tx, rx) = watch::channel(Polled::Unknown);
        let tx = Arc::new(tx);
        active.insert(execution.execution_id.clone(), tx.clone());
        tokio::spawn(poll(
            self.status.clone(),
            execution.clone(),
            tx,
            self.active.clone(),
            self.interval,
        ));
        rx
    }

    /// Number of running pollers.
    pub fn active(&self) -> usize {
        self.active.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

async fn poll(
    status: Arc<dyn StatusSink>,
    execution: ExecutionInfo,
    tx: Arc<watch::Sender<Polled>>,
    active: Pollers,
    interval: Duration,
) {
    let id = execution.execution_id.clone();
    let mut seen = false;
    loop {
        match status.latest(&execution).await {
            Ok(Some(stored)) => {
                seen = true;
                let finished = stored.finished;
                let next = Polled::Found(stored);
                tx.send_if_modified(|current| {
                    let changed = *current != next;
                    if changed {
                        *current = next;
                    }
                    changed
                });
                if finished {
                    break;
                }
            }
            Ok(None) if seen => {
                tx.send_replace(Polled::Gone);
                break;
            }
            Ok(None) => {}
            Err(e) => {
                tracing::debug!(execution_id = %id, error = %e, "reading stored progress failed");
            }
        }
        tokio::select! {
            () = tx.closed() => {
                // Subscribers join under the lock: re-check there.
                let mut map = active.lock().unwrap_or_else(|e| e.into_inner());
                if tx.receiver_count() == 0 {
                    remove(&mut map, &id, &tx);
                    return;
                }
            }
            () = tokio::time::sleep(interval) => {}
        }
    }
    let mut map = active.lock().unwrap_or_else(|e| e.into_inner());
    remove(&mut map, &id, &tx);
}

fn remove(
    map: &mut HashMap<String, Arc<watch::Sender<Polled>>>,
    id: &str,
    tx: &Arc<watch::Sender<Polled>>,
) {
    if map.get(id).is_some_and(|current| Arc::ptr_eq(current, tx)) {
        map.remove(id);
    }
}

#[cfg(test)]
mod tests {
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
}

#[cfg(test)]
mod poller_tests {
    use async_trait::async_trait;
    use hibernator_core::types::{ExecutionState, ExecutionStatus, HibernatePlanStatus};

    use super::*;
    use crate::status::{StatusChange, StatusError, stored_progress};

    /// A plan status in memory, counting reads.
    #[derive(Default)]
    struct MemoryStatus {
        status: Mutex<HibernatePlanStatus>,
        reads: std::sync::atomic::AtomicUsize,
    }

    #[async_trait]
    impl StatusSink for MemoryStatus {
        async fn record(&self, _: &ExecutionInfo, _: StatusChange) -> Result<(), StatusError> {
            Ok(())
        }
        async fn latest(
            &self,
            execution: &ExecutionInfo,
        ) -> Result<Option<StoredProgress>, StatusError> {
            self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let status = self.status.lock().unwrap();
            Ok(stored_progress(&status, &execution.execution_id))
        }
    }

    fn execution(id: &str) -> ExecutionInfo {
        ExecutionInfo {
            execution_id: id.into(),
            namespace: "team-a".into(),
            plan: "p".into(),
            target: "db".into(),
            ..ExecutionInfo::default()
        }
    }

    fn set(memory: &MemoryStatus, id: &str, pct: u8, state: ExecutionState) {
        *memory.status.lock().unwrap() = HibernatePlanStatus {
            executions: vec![ExecutionStatus {
                target: "db".into(),
                execution_id: Some(id.into()),
                state,
                progress: Some(pct),
                progress_time: Some(Utc::now()),
                ..Default::default()
            }],
            ..Default::default()
        };
    }

    async fn next(rx: &mut watch::Receiver<Polled>) -> Option<Polled> {
        let changed = tokio::time::timeout(Duration::from_secs(10), rx.changed())
            .await
            .expect("no poll result in time (failure guard)");
        changed.ok().map(|()| rx.borrow_and_update().clone())
    }

    #[tokio::test]
    async fn one_poller_per_execution_until_it_finishes() {
        let memory = Arc::new(MemoryStatus::default());
        set(&memory, "e1", 10, ExecutionState::Running);
        let pollers = StatusPollers::new(memory.clone(), Duration::from_millis(5));
        let mut a = pollers.subscribe(&execution("e1"));
        let mut b = pollers.subscribe(&execution("e1"));
        assert_eq!(
            pollers.active(),
            1,
            "watchers of one execution share a poller"
        );
        match next(&mut a).await {
            Some(Polled::Found(p)) => assert_eq!(p.progress.progress, 10),
            other => panic!("unexpected {other:?}"),
        }
        set(&memory, "e1", 100, ExecutionState::Completed);
        loop {
            match next(&mut b).await {
                Some(Polled::Found(p)) if p.finished => {
                    assert_eq!(p.progress.progress, 100);
                    break;
                }
                Some(_) => continue,
                None => panic!("the final value is delivered before the poller stops"),
            }
        }
        assert_eq!(next(&mut b).await, None, "the poller stopped");
        assert_eq!(pollers.active(), 0);
    }

    #[tokio::test]
    async fn a_superseded_execution_is_gone() {
        let memory = Arc::new(MemoryStatus::default());
        set(&memory, "e1", 10, ExecutionState::Running);
        let pollers = StatusPollers::new(memory.clone(), Duration::from_millis(5));
        let mut rx = pollers.subscribe(&execution("e1"));
        assert!(matches!(next(&mut rx).await, Some(Polled::Found(_))));
        set(&memory, "e2", 0, ExecutionState::Running);
        let mut last = None;
        while let Some(v) = next(&mut rx).await {
            last = Some(v);
        }
        assert_eq!(last, Some(Polled::Gone));
    }

    #[tokio::test]
    async fn the_poller_stops_when_its_watchers_leave() {
        let memory = Arc::new(MemoryStatus::default());
        set(&memory, "e1", 10, ExecutionState::Running);
        let pollers = StatusPollers::new(memory.clone(), Duration::from_millis(5));
        let mut rx = pollers.subscribe(&execution("e1"));
        assert!(matches!(next(&mut rx).await, Some(Polled::Found(_))));
        drop(rx);
        for _ in 0..1000 {
            if pollers.active() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(pollers.active(), 0, "poller stopped (failure guard)");
        let reads = memory.reads.load(std::sync::atomic::Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            memory.reads.load(std::sync::atomic::Ordering::SeqCst),
            reads,
            "no reads after the poller stopped"
        );
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
