//! `GetProgress` and `WatchProgress` on any controller replica: the local
//! [`ProgressHub`](crate::progress::ProgressHub) first (reports this replica
//! received), else the plan status written by whichever replica received
//! them, resolved through the runner Job of the execution.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::watch;
use tonic::Status;

use crate::auth::{Authenticator, ExecutionInfo};
use crate::ingest::Ingest;
use crate::metrics::ConnectionGuard;
use crate::progress::{Polled, ProgressEvent, StatusPollers, is_news};
use crate::status::StoredProgress;
use crate::wire::Progress;

/// The stream `WatchProgress` answers with.
pub type ProgressStream = Pin<Box<dyn Stream<Item = Result<Progress, Status>> + Send>>;

/// Answers progress queries from the local hub and the plan status.
pub struct ProgressQueries {
    auth: Arc<Authenticator>,
    ingest: Arc<Ingest>,
    pollers: StatusPollers,
}

impl ProgressQueries {
    /// Queries over `auth`'s execution directory and `ingest`'s hub and
    /// status sink, polling the plan status every `poll_interval` for
    /// watched executions.
    pub fn new(auth: Arc<Authenticator>, ingest: Arc<Ingest>, poll_interval: Duration) -> Self {
        let pollers = StatusPollers::new(ingest.status().clone(), poll_interval);
        Self {
            auth,
            ingest,
            pollers,
        }
    }

    /// Number of running plan-status pollers (one per watched execution
    /// whose watch relies on the status).
    pub fn active_pollers(&self) -> usize {
        self.pollers.active()
    }

    async fn resolve(&self, id: &str) -> Result<Option<ExecutionInfo>, Status> {
        self.auth
            .directory()
            .execution(id)
            .await
            .map_err(|e| Status::unavailable(e.to_string()))
    }

    async fn stored(&self, execution: &ExecutionInfo) -> Result<StoredProgress, Status> {
        self.ingest
            .status()
            .latest(execution)
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?
            .ok_or_else(|| {
                Status::not_found(format!(
                    "no progress for execution {}: HibernatePlan {}/{} has no status.executions[] \
                     entry with this executionId (a newer attempt replaced it, or the plan is gone)",
                    execution.execution_id, execution.namespace, execution.plan
                ))
            })
    }

    /// The latest progress of `id` (final progress of a completed execution):
    /// the newer of what this replica received and what the plan status
    /// holds (a webhook runner's reports may land on several replicas).
    pub async fn get(&self, id: &str) -> Result<Progress, Status> {
        let local = self.ingest.hub().get(id);
        if let Some((p, true)) = local {
            // Completed here: nothing newer can exist.
            return Ok(p);
        }
        let local = local.map(|(p, _)| p);
        let execution = match self.resolve(id).await {
            Ok(Some(execution)) => execution,
            Ok(None) => return local.ok_or_else(|| unknown(id)),
            Err(e) => return local.ok_or(e),
        };
        match (local, self.stored(&execution).await) {
            (Some(local), Ok(stored)) if is_news(Some(&local), &stored.progress) => {
                Ok(stored.progress)
            }
            (Some(local), _) => Ok(local),
            (None, stored) => Ok(stored?.progress),
        }
    }

    /// The latest progress of `id`, then every new one until the execution
    /// ends (completion reported to this replica, or its status entry is
    /// finished or gone). `connection` is held while the stream lives.
    pub async fn watch(
        &self,
        id: String,
        connection: ConnectionGuard,
    ) -> Result<ProgressStream, Status> {
        // Subscribe before reading, so no update falls in between.
        let hub = self.ingest.hub().subscribe();
        let local = self.ingest.hub().get(&id);
        let execution = match self.resolve(&id).await {
            Ok(execution) => execution,
            // Reports reached this replica: follow them even without the Job.
            Err(e) if local.is_some() => {
                tracing::warn!(execution_id = %id, error = %e.message(), "watching progress without the plan status");
                None
            }
            Err(e) => return Err(e),
        };
        let (initial, finished) = match local {
            Some((p, completed)) => (p, completed),
            None => {
                let execution = execution.as_ref().ok_or_else(|| unknown(&id))?;
                let stored = self.stored(execution).await?;
                (stored.progress, stored.finished)
            }
        };
        let polled = if finished {
            None
        } else {
            execution.as_ref().map(|e| {
                let mut rx = self.pollers.subscribe(e);
                rx.mark_changed();
                rx
            })
        };
        let state = Watch {
            id,
            hub: Some(hub),
            polled,
            last: Some(initial.clone()),
            done: finished,
            _connection: connection,
        };
        let first = futures::stream::iter([Ok::<_, Status>(initial)]);
        Ok(Box::pin(first.chain(futures::stream::unfold(
            state,
            |mut state| async move {
                let next = state.next().await?;
                Some((Ok(next), state))
            },
        ))))
    }
}

fn unknown(id: &str) -> Status {
    Status::not_found(format!(
        "no progress for execution {id}: no report reached this replica and no runner Job \
         carries this execution id"
    ))
}

/// State of one `WatchProgress` stream.
struct Watch {
    id: String,
    /// Updates received by this replica (`None` once the hub is gone).
    hub: Option<broadcast::Receiver<ProgressEvent>>,
    /// The plan-status poller (`None` when the status is not followed).
    polled: Option<watch::Receiver<Polled>>,
    last: Option<Progress>,
    done: bool,
    _connection: ConnectionGuard,
}

enum Step {
    Emit(Progress),
    End,
    Continue,
}

impl Watch {
    /// The next update to send, `None` when the watch is over.
    async fn next(&mut self) -> Option<Progress> {
        loop {
            if self.done || (self.hub.is_none() && self.polled.is_none()) {
                return None;
            }
            let step = tokio::select! {
                event = recv(&mut self.hub) => self.on_hub(event),
                changed = changed(&mut self.polled) => self.on_poll(changed.is_ok()),
            };
            match step {
                Step::Emit(p) => return Some(p),
                Step::End => return None,
                Step::Continue => {}
            }
        }
    }

    fn on_hub(&mut self, event: Result<ProgressEvent, RecvError>) -> Step {
        match event {
            Ok(ProgressEvent::Updated(p)) if p.execution_id == self.id => self.offer(p),
            Ok(ProgressEvent::Completed { execution_id }) if execution_id == self.id => Step::End,
            Ok(_) | Err(RecvError::Lagged(_)) => Step::Continue,
            Err(RecvError::Closed) => {
                self.hub = None;
                Step::Continue
            }
        }
    }

    /// A poll result; `alive` is false when the poller stopped (the
    /// execution is over: its last value is final).
    fn on_poll(&mut self, alive: bool) -> Step {
        let Some(rx) = self.polled.as_mut() else {
            return Step::Continue;
        };
        let value = rx.borrow_and_update().clone();
        if !alive {
            self.polled = None;
        }
        match value {
            Polled::Unknown if alive => Step::Continue,
            Polled::Found(stored) if alive && !stored.finished => self.offer(stored.progress),
            Polled::Found(stored) => {
                self.done = true;
                self.offer(stored.progress)
            }
            Polled::Unknown | Polled::Gone => Step::End,
        }
    }

    fn offer(&mut self, p: Progress) -> Step {
        if is_news(self.last.as_ref(), &p) {
            self.last = Some(p.clone());
            Step::Emit(p)
        } else if self.done {
            Step::End
        } else {
            Step::Continue
        }
    }
}

async fn recv(
    hub: &mut Option<broadcast::Receiver<ProgressEvent>>,
) -> Result<ProgressEvent, RecvError> {
    match hub {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn changed(
    polled: &mut Option<watch::Receiver<Polled>>,
) -> Result<(), watch::error::RecvError> {
    match polled {
        Some(rx) => rx.changed().await,
        None => std::future::pending().await,
    }
}
