//! The Job check: each runner Job a reconcile created must be seen by the
//! Job watch within `job_check` (default 15 s). A plan one of whose created
//! Jobs was not seen by then (the create said it was made, the watch never
//! showed it) is reconciled again, which creates the Job once more when it
//! is missing. A Job the watch showed needs no check: every later change of
//! it, its deletion included, reconciles its plan anyway.
//!
//! The same stream carries the reconciles held back during the controller's
//! own status writes and Job creates ([`JobChecks::request`],
//! `echo::InFlight`).
//!
//! This used to be a requeue of every plan `job_check` after any reconcile
//! that created Jobs: one reconcile and one restore ConfigMap GET per plan
//! and boundary, a fifth of a shared boundary's requests
//! (docs/performance.md, "At scale").

use std::sync::Arc;

use futures::Stream;
use hibernator_core::types::HibernatePlan;
use kube::runtime::controller::{ReconcileReason, ReconcileRequest};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use tokio::sync::{Mutex, mpsc};

use super::Context;

/// Scheduled Job checks and the reconcile requests of those that failed.
#[derive(Debug)]
pub struct JobChecks {
    tx: mpsc::UnboundedSender<ObjectRef<HibernatePlan>>,
    rx: Arc<Mutex<mpsc::UnboundedReceiver<ObjectRef<HibernatePlan>>>>,
}

impl Default for JobChecks {
    fn default() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Self {
            tx,
            rx: Arc::new(Mutex::new(rx)),
        }
    }
}

impl JobChecks {
    /// Checks, `ctx.config.job_check` from now, that the watch has shown
    /// every Job of `jobs` (names in the plan's namespace) that this
    /// controller created; requests a reconcile of `plan` when not.
    pub fn schedule(&self, ctx: &Arc<Context>, plan: ObjectRef<HibernatePlan>, jobs: Vec<String>) {
        let (tx, ctx) = (self.tx.clone(), ctx.clone());
        tokio::spawn(async move {
            tokio::time::sleep(ctx.config.job_check).await;
            let namespace = plan.namespace.clone().unwrap_or_default();
            if ctx.own_creates.any_unseen(&namespace, &jobs) {
                tracing::debug!(plan = %plan, "a created runner Job was not seen by the watch; reconciling");
                let _ = tx.send(plan);
            }
        });
    }

    /// Requests a reconcile of `plan` now (a watch event held back during
    /// a status write or Job create that was not that write's echo).
    pub fn request(&self, plan: ObjectRef<HibernatePlan>) {
        let _ = self.tx.send(plan);
    }

    /// The reconcile requests of failed checks and of [`JobChecks::request`], for the Controller's queue
    /// (one Controller at a time reads them).
    pub fn requests(
        &self,
    ) -> impl Stream<Item = Result<ReconcileRequest<HibernatePlan>, watcher::Error>> + Send + 'static
    {
        futures::stream::unfold(self.rx.clone(), |rx| async move {
            let next = rx.lock().await.recv().await;
            next.map(|obj_ref| {
                let request = ReconcileRequest {
                    obj_ref,
                    reason: ReconcileReason::Unknown,
                };
                (Ok(request), rx)
            })
        })
    }
}
