//! Plan-status pollers ([`StatusPollers`]): how a replica follows the
//! progress of executions whose runners report to another replica, one GET
//! of the plan per interval for all its watched executions.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, watch};

use crate::auth::ExecutionInfo;
use crate::status::{StatusSink, StoredProgress};

/// How often a status poller reads its plan (one GET per watched plan).
pub const STATUS_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// What the status poller of an execution last read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Polled {
    /// Nothing read yet, or the plan status has no entry for the execution.
    Unknown,
    /// The execution's entry (followed until it is finished).
    Found(StoredProgress),
    /// The entry was there and is gone (superseded by a newer attempt, or the
    /// plan was deleted); the execution is no longer followed.
    Gone,
}

/// `(namespace, plan)`.
type PlanKey = (String, String);

/// One watched execution of a plan poller.
struct Followed {
    info: ExecutionInfo,
    tx: Arc<watch::Sender<Polled>>,
    /// Its entry was in the status once (a later absence means `Gone`).
    seen: bool,
}

/// The executions one plan poller follows, and how to wake it early.
struct PlanPoller {
    executions: HashMap<String, Followed>,
    /// A new execution joined: poll now rather than at the next tick. Also
    /// the poller task's identity (a task only serves its own entry).
    joined: Arc<Notify>,
}

type Pollers = Arc<Mutex<HashMap<PlanKey, PlanPoller>>>;

/// Plan-status pollers for `WatchProgress`: one poller per *plan*, reading
/// the plan once per interval ([`StatusSink::latest_of_plan`]) for all its
/// watched executions, however many watchers each has. An execution is
/// followed until it is finished or gone or its last watcher left; a
/// poller stops when it follows no execution.
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

    /// Follows the stored progress of `execution`: joins its plan's poller,
    /// or starts one. The receiver sees [`Polled`] changes; its sender is
    /// dropped (so `changed()` fails) when the execution is no longer
    /// followed because it is over.
    pub fn subscribe(&self, execution: &ExecutionInfo) -> watch::Receiver<Polled> {
        let mut active = self.active.lock().unwrap_or_else(|e| e.into_inner());
        let key = (execution.namespace.clone(), execution.plan.clone());
        let mut started = false;
        let poller = active.entry(key.clone()).or_insert_with(|| {
            started = true;
            PlanPoller {
                executions: HashMap::new(),
                joined: Arc::new(Notify::new()),
            }
        });
        if let Some(followed) = poller.executions.get(&execution.execution_id) {
            return followed.tx.subscribe();
        }
        let (tx, rx) = watch::channel(Polled::Unknown);
        poller.executions.insert(
            execution.execution_id.clone(),
            Followed {
                info: execution.clone(),
                tx: Arc::new(tx),
                seen: false,
            },
        );
        if started {
            tokio::spawn(poll_plan(
                self.status.clone(),
                key,
                poller.joined.clone(),
                self.active.clone(),
                self.interval,
            ));
        } else {
            poller.joined.notify_one();
        }
        rx
    }

    /// Number of running pollers (one per plan with watched executions).
    pub fn active(&self) -> usize {
        self.active.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Number of executions followed, over all plans.
    pub fn followed(&self) -> usize {
        self.active
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .map(|p| p.executions.len())
            .sum()
    }
}

/// The entry of the poller task `me` (`None`: it was removed, and maybe
/// replaced by another task's).
fn own<'a>(
    map: &'a mut HashMap<PlanKey, PlanPoller>,
    key: &PlanKey,
    me: &Arc<Notify>,
) -> Option<&'a mut PlanPoller> {
    map.get_mut(key)
        .filter(|poller| Arc::ptr_eq(&poller.joined, me))
}

/// The executions `key`'s poller still follows (those without watchers are
/// dropped); `None` when there are none left: the poller is removed.
fn batch(active: &Pollers, key: &PlanKey, me: &Arc<Notify>) -> Option<Vec<ExecutionInfo>> {
    let mut map = active.lock().unwrap_or_else(|e| e.into_inner());
    let poller = own(&mut map, key, me)?;
    poller
        .executions
        .retain(|_, followed| followed.tx.receiver_count() > 0);
    if poller.executions.is_empty() {
        map.remove(key);
        return None;
    }
    Some(
        poller
            .executions
            .values()
            .map(|followed| followed.info.clone())
            .collect(),
    )
}

/// Hands one read to the followed executions; stops following those that
/// are finished or gone.
fn deliver(
    active: &Pollers,
    key: &PlanKey,
    me: &Arc<Notify>,
    read: Vec<(ExecutionInfo, Option<StoredProgress>)>,
) {
    let mut map = active.lock().unwrap_or_else(|e| e.into_inner());
    let Some(poller) = own(&mut map, key, me) else {
        return;
    };
    for (info, stored) in read {
        let id = &info.execution_id;
        let Some(followed) = poller.executions.get_mut(id) else {
            continue;
        };
        let over = match stored {
            Some(stored) => {
                followed.seen = true;
                let finished = stored.finished;
                let next = Polled::Found(stored);
                followed.tx.send_if_modified(|current| {
                    let changed = *current != next;
                    if changed {
                        *current = next;
                    }
                    changed
                });
                finished
            }
            None if followed.seen => {
                followed.tx.send_replace(Polled::Gone);
                true
            }
            None => false,
        };
        if over {
            // dropping the sender ends its receivers after the last value
            poller.executions.remove(id);
        }
    }
    if poller.executions.is_empty() {
        map.remove(key);
    }
}

async fn poll_plan(
    status: Arc<dyn StatusSink>,
    key: PlanKey,
    me: Arc<Notify>,
    active: Pollers,
    interval: Duration,
) {
    loop {
        let Some(executions) = batch(&active, &key, &me) else {
            return;
        };
        match status.latest_of_plan(&executions).await {
            Ok(stored) if stored.len() == executions.len() => {
                let read = executions.into_iter().zip(stored).collect();
                deliver(&active, &key, &me, read);
            }
            Ok(stored) => tracing::debug!(
                namespace = %key.0, plan = %key.1,
                asked = executions.len(), answered = stored.len(),
                "status sink answered for another number of executions"
            ),
            Err(e) => {
                tracing::debug!(namespace = %key.0, plan = %key.1, error = %e, "reading stored progress failed");
            }
        }
        tokio::select! {
            () = me.notified() => {}
            () = tokio::time::sleep(interval) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use async_trait::async_trait;
    use chrono::Utc;
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
        /// One read of the plan for all (what `KubeStatusSink` does with one GET).
        async fn latest_of_plan(
            &self,
            executions: &[ExecutionInfo],
        ) -> Result<Vec<Option<StoredProgress>>, StatusError> {
            self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let status = self.status.lock().unwrap();
            Ok(executions
                .iter()
                .map(|e| stored_progress(&status, &e.execution_id))
                .collect())
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

    /// Issue 17, item 8: 1,000 watched executions of one plan.
    #[tokio::test(start_paused = true)]
    async fn a_thousand_watched_executions_of_one_plan_cost_one_read_per_interval() {
        let memory = Arc::new(MemoryStatus::default());
        *memory.status.lock().unwrap() = HibernatePlanStatus {
            executions: (0..1000)
                .map(|i| ExecutionStatus {
                    target: format!("t{i}"),
                    execution_id: Some(format!("e{i}")),
                    state: ExecutionState::Running,
                    progress: Some(10),
                    progress_time: Some(Utc::now()),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let pollers = StatusPollers::new(memory.clone(), Duration::from_secs(1));
        let mut watchers: Vec<_> = (0..1000)
            .map(|i| pollers.subscribe(&execution(&format!("e{i}"))))
            .collect();
        assert_eq!(pollers.active(), 1, "one poller for the plan");
        assert_eq!(pollers.followed(), 1000);
        tokio::time::sleep(Duration::from_millis(10_500)).await;
        let reads = memory.reads.load(std::sync::atomic::Ordering::SeqCst);
        eprintln!("{reads} plan status reads for 1000 watched executions in 10.5 intervals");
        assert!(reads <= 13, "{reads} reads");
        for rx in &mut watchers {
            match rx.borrow_and_update().clone() {
                Polled::Found(p) => assert_eq!(p.progress.progress, 10),
                other => panic!("every watcher got its execution: {other:?}"),
            }
        }
        drop(watchers);
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(pollers.active(), 0, "the poller stopped with its watchers");
    }

    #[tokio::test]
    async fn executions_of_one_plan_share_a_poller_and_end_on_their_own() {
        let memory = Arc::new(MemoryStatus::default());
        *memory.status.lock().unwrap() = HibernatePlanStatus {
            executions: ["e1", "e2"]
                .iter()
                .map(|id| ExecutionStatus {
                    target: (*id).into(),
                    execution_id: Some((*id).into()),
                    state: ExecutionState::Running,
                    progress: Some(5),
                    progress_time: Some(Utc::now()),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let pollers = StatusPollers::new(memory.clone(), Duration::from_millis(5));
        let mut one = pollers.subscribe(&execution("e1"));
        let mut two = pollers.subscribe(&execution("e2"));
        let mut other_plan = pollers.subscribe(&ExecutionInfo {
            plan: "q".into(),
            ..execution("e9")
        });
        assert_eq!(pollers.active(), 2, "one poller per plan");
        assert!(matches!(next(&mut one).await, Some(Polled::Found(_))));
        assert!(matches!(next(&mut two).await, Some(Polled::Found(_))));
        // e1 finishes: its watch ends, e2 is still followed
        memory.status.lock().unwrap().executions[0].state = ExecutionState::Completed;
        loop {
            match next(&mut one).await {
                Some(Polled::Found(p)) if p.finished => break,
                Some(_) => continue,
                None => panic!("the final value comes first"),
            }
        }
        assert_eq!(next(&mut one).await, None);
        assert_eq!(pollers.followed(), 2, "e2 and e9");
        memory.status.lock().unwrap().executions[1].progress = Some(70);
        loop {
            match next(&mut two).await {
                Some(Polled::Found(p)) if p.progress.progress == 70 => break,
                Some(_) => continue,
                None => panic!("e2 is still followed"),
            }
        }
        drop(two);
        drop(other_plan.borrow_and_update());
        drop(other_plan);
        for _ in 0..1000 {
            if pollers.active() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(pollers.active(), 0, "pollers stopped (failure guard)");
    }
}
