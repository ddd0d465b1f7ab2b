//! The controller's own status writes, so that their watch echoes do not
//! reconcile the plan again.
//!
//! A status write changes the plan's resourceVersion, and the plan watch
//! sends the new version back. Reconciling it would decide the same thing
//! again (the decision is a fixed point of its own status) at the cost of a
//! reconcile and its restore ConfigMap GET per write: at start-up, one per
//! plan; at a shared boundary, one per plan and cycle step. The echo still
//! reaches the plan store (the next reconcile reads the written status);
//! only its trigger is dropped, and only when the version the watch sends is
//! exactly the one the write returned: any other change to the plan (spec,
//! labels, annotations, finalizers, deletion, another writer's status) has
//! another resourceVersion and reconciles as before.
//!
//! The watch may deliver the echo before the write's response arrives (the
//! API server sends both at about the same time; at start-up about one write
//! in six). So the plan is marked before the write is sent, and while it is
//! marked the watch's events of the plan are held back (the store is
//! updated, the trigger waits). When the response arrives, the last version
//! held back is compared with the written one: the same version was the
//! echo, and is counted in [`OwnWrites::raced`]; another version (the watch
//! was behind, or someone changed the plan right after the write) and a
//! failed write both request the reconcile that was held back. A write
//! succeeds only on the version the reconcile read (the status PUT carries
//! its resourceVersion), so nothing the reconcile did not see is dropped.

//!
//! The same holds for the runner Jobs the controller creates
//! ([`OwnCreates`]): the watch's `ADDED` event of a Job this controller has
//! just created updates the Job store but reconciles nothing; the reconcile
//! that created it already recorded it in the plan's status. Unlike a status
//! write's echo, a create's echo is recognised also when it arrives before
//! the create's response: the Job's name is marked before the create is
//! sent, and the first event of a marked name is the echo. Every later
//! change of the Job (it starts, finishes, fails, is deleted) reconciles as
//! before.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use hibernator_core::types::HibernatePlan;
use kube::{Resource, ResourceExt};

/// resourceVersions returned by the controller's status writes, by plan.
#[derive(Debug, Default)]
pub struct OwnWrites {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Written versions whose echo has not arrived yet.
    written: HashMap<(String, String), String>,
    /// Writes in flight, with the versions the watch showed meanwhile
    /// (their triggers held back).
    writing: HashMap<(String, String), Vec<String>>,
    /// Writes whose echo came before their response.
    raced: u64,
}

fn key(plan: &HibernatePlan) -> (String, String) {
    (
        plan.metadata.namespace.clone().unwrap_or_default(),
        plan.metadata.name.clone().unwrap_or_default(),
    )
}

impl OwnWrites {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Notes that a status write of `plan` is about to be sent: until its
    /// response ([`WriteInFlight::record`] or [`WriteInFlight::failed`]),
    /// the watch's events of the plan are held back. Dropping the guard
    /// (a reconcile cancelled mid-write) ends the hold.
    pub fn sending(&self, plan: &HibernatePlan) -> WriteInFlight<'_> {
        let key = key(plan);
        self.state().writing.insert(key.clone(), Vec::new());
        WriteInFlight { writes: self, key }
    }

    /// Whether `seen` (a plan from the watch) reconciles nothing now: the
    /// echo of the last recorded write (answered once and forgotten), or
    /// any event of a plan whose write is in flight (held back until the
    /// write's response, see [`OwnWrites::record`]).
    pub fn is_echo(&self, seen: &HibernatePlan) -> bool {
        let Some(version) = seen.metadata.resource_version.as_deref() else {
            return false;
        };
        let key = key(seen);
        let mut state = self.state();
        if let Some(held) = state.writing.get_mut(&key) {
            held.push(version.to_string());
            return true;
        }
        if state.written.get(&key).is_some_and(|v| v == version) {
            state.written.remove(&key);
            return true;
        }
        false
    }

    /// Forgets a plan (deleted, cleaned up).
    pub fn forget(&self, namespace: &str, name: &str) {
        let key = (namespace.to_string(), name.to_string());
        let mut state = self.state();
        state.written.remove(&key);
        state.writing.remove(&key);
    }

    /// How many writes wait for their response or their echo.
    pub fn pending(&self) -> usize {
        let state = self.state();
        state.written.len() + state.writing.len()
    }

    /// How many writes were echoed before their response arrived (the echo
    /// was held back and dropped).
    pub fn raced(&self) -> u64 {
        self.state().raced
    }
}

/// A status write in flight ([`OwnWrites::sending`]).
#[derive(Debug)]
pub struct WriteInFlight<'a> {
    writes: &'a OwnWrites,
    key: (String, String),
}

impl WriteInFlight<'_> {
    /// Records `written`, the object the write returned. Returns whether
    /// the plan must be reconciled: the watch showed, during the write, a
    /// version other than the written one.
    #[must_use = "a held-back event must be reconciled"]
    pub fn record(self, written: &HibernatePlan) -> bool {
        let mut state = self.writes.state();
        let held = state.writing.remove(&self.key).unwrap_or_default();
        let Some(version) = written.metadata.resource_version.clone() else {
            return !held.is_empty();
        };
        if held.contains(&version) {
            // the echo came first, and is done
            state.raced += 1;
        } else {
            state.written.insert(self.key.clone(), version.clone());
        }
        held.iter().any(|seen| *seen != version)
    }

    /// Ends the hold after the write failed. Returns whether the watch
    /// showed the plan meanwhile (that event must be reconciled).
    #[must_use = "a held-back event must be reconciled"]
    pub fn failed(self) -> bool {
        self.writes
            .state()
            .writing
            .remove(&self.key)
            .is_some_and(|held| !held.is_empty())
    }
}

impl Drop for WriteInFlight<'_> {
    fn drop(&mut self) {
        // after `record`/`failed` this finds nothing; after a cancelled
        // write it ends the hold (the next event reconciles)
        self.writes.state().writing.remove(&self.key);
    }
}

/// The controller's creates (runner Jobs), by object, until the object's
/// first watch event.
#[derive(Debug, Default)]
pub struct OwnCreates {
    created: Mutex<HashMap<(String, String), Create>>,
}

/// Where one create stands.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Create {
    /// Sent, no response and no watch event yet.
    Sent,
    /// The watch showed the object before the create's
    /// response arrived.
    SeenFirst,
    /// The create returned this version; its echo has not arrived yet.
    Returned(String),
}

fn object_key<K: Resource>(object: &K) -> (String, String) {
    (object.namespace().unwrap_or_default(), object.name_any())
}

impl OwnCreates {
    fn created(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Create>> {
        self.created.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Notes that `object` is about to be created (call before sending the
    /// create): the watch may show it before the create's response arrives.
    pub fn sending<K: Resource>(&self, object: &K) {
        self.created().insert(object_key(object), Create::Sent);
    }

    /// Records `created`, the object a create returned. When the watch has
    /// shown it already, its echo is done and nothing is kept.
    pub fn record<K: Resource>(&self, created: &K) {
        let key = object_key(created);
        let mut state = self.created();
        match (state.get(&key), created.resource_version()) {
            (Some(Create::SeenFirst), _) | (_, None) => {
                state.remove(&key);
            }
            (_, Some(version)) => {
                state.insert(key, Create::Returned(version));
            }
        }
    }

    /// Forgets `object` after its create failed.
    pub fn failed<K: Resource>(&self, object: &K) {
        self.created().remove(&object_key(object));
    }

    /// Whether `seen` (from the watch) is the echo of a create of this
    /// controller. The record goes with the object's first event, echo or
    /// not: a newly created object's first event is its `ADDED`, the echo,
    /// whether it arrives after the create's response (same version as the
    /// response) or while the create is still in flight (the object can
    /// only be the one being created: a Job of that name already there
    /// would fail the create). Every later event reconciles.
    pub fn is_echo<K: Resource>(&self, seen: &K) -> bool {
        let Some(version) = seen.meta().resource_version.as_deref() else {
            return false;
        };
        let key = object_key(seen);
        let mut state = self.created();
        match state.get(&key) {
            Some(Create::Sent) => {
                state.insert(key, Create::SeenFirst);
                true
            }
            Some(Create::SeenFirst) => false,
            Some(Create::Returned(recorded)) => {
                let echo = recorded == version;
                state.remove(&key);
                echo
            }
            None => false,
        }
    }

    /// Whether a Job of `names` in `namespace` that this controller
    /// created has not had its first watch event yet.
    pub fn any_unseen(&self, namespace: &str, names: &[String]) -> bool {
        let created = self.created();
        names.iter().any(|name| {
            matches!(
                created.get(&(namespace.to_string(), name.clone())),
                Some(Create::Sent | Create::Returned(_))
            )
        })
    }

    /// How many creates wait for their response or their first event.
    pub fn pending(&self) -> usize {
        self.created().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(version: &str) -> HibernatePlan {
        let mut plan: HibernatePlan = serde_json::from_value(serde_json::json!({
            "apiVersion": "hibernator.dev/v1alpha1", "kind": "HibernatePlan",
            "metadata": {"name": "p", "namespace": "ns"},
            "spec": {"schedule": {"timezone": "UTC", "offHours": []}, "targets": []},
        }))
        .unwrap();
        plan.metadata.resource_version = Some(version.into());
        plan
    }

    /// A write sent and answered with `version`, nothing seen meanwhile.
    fn write(writes: &OwnWrites, version: &str) {
        let write = writes.sending(&plan("0"));
        assert!(!write.record(&plan(version)), "nothing held back");
    }

    #[test]
    fn only_the_written_version_is_an_echo_and_only_once() {
        let writes = OwnWrites::default();
        assert!(!writes.is_echo(&plan("1")));
        write(&writes, "5");
        // an older version (the watch was behind) and a newer one (someone
        // else changed the plan after the write) both reconcile
        assert!(!writes.is_echo(&plan("4")));
        assert!(writes.is_echo(&plan("5")));
        assert!(!writes.is_echo(&plan("5")), "answered once");
        write(&writes, "7");
        assert!(!writes.is_echo(&plan("8")));
        writes.forget("ns", "p");
        assert_eq!(writes.pending(), 0);
        assert!(!writes.is_echo(&plan("7")));
    }

    #[test]
    fn events_during_the_write_wait_for_its_response() {
        let writes = OwnWrites::default();
        // the echo before the response: held back, then dropped
        let write = writes.sending(&plan("8"));
        assert!(writes.is_echo(&plan("9")), "held back");
        assert!(!write.record(&plan("9")), "it was the echo");
        assert_eq!((writes.pending(), writes.raced()), (0, 1));
        assert!(!writes.is_echo(&plan("9")), "answered once");
        // the echo and then someone else's change, both before the response
        let write = writes.sending(&plan("9"));
        assert!(writes.is_echo(&plan("10")));
        assert!(writes.is_echo(&plan("11")));
        assert!(write.record(&plan("10")), "the change must reconcile");
        assert_eq!((writes.pending(), writes.raced()), (0, 2), "echo done");
        // the watch behind: an older version held back reconciles too, and
        // the echo still to come is recognised
        let write = writes.sending(&plan("11"));
        assert!(writes.is_echo(&plan("11")));
        assert!(write.record(&plan("12")));
        assert!(writes.is_echo(&plan("12")));
        // a failed write: reconcile what was held back, if anything
        assert!(!writes.sending(&plan("12")).failed());
        let write = writes.sending(&plan("12"));
        assert!(writes.is_echo(&plan("13")));
        assert!(write.failed());
        // a write cancelled mid-way ends the hold
        drop(writes.sending(&plan("13")));
        assert_eq!(writes.pending(), 0);
        assert!(!writes.is_echo(&plan("14")), "nothing in flight");
    }

    fn job(name: &str, version: &str) -> k8s_openapi::api::batch::v1::Job {
        let mut job = k8s_openapi::api::batch::v1::Job::default();
        job.metadata.namespace = Some("ns".into());
        job.metadata.name = Some(name.into());
        job.metadata.resource_version = Some(version.into());
        job
    }

    #[test]
    fn a_created_job_s_first_event_at_its_version_is_the_echo() {
        let creates = OwnCreates::default();
        assert!(!creates.is_echo(&job("a", "3")), "not created here");
        creates.record(&job("a", "5"));
        creates.record(&job("b", "6"));
        assert_eq!(creates.pending(), 2);
        assert!(creates.is_echo(&job("a", "5")));
        assert!(!creates.is_echo(&job("a", "5")), "answered once");
        assert!(
            !creates.is_echo(&job("a", "9")),
            "a change of the Job reconciles"
        );
        // a watch behind the create: the next event clears the record
        assert!(creates.any_unseen("ns", &["x".into(), "b".into()]));
        assert!(!creates.any_unseen("other", &["b".into()]));
        assert!(!creates.is_echo(&job("b", "7")));
        assert_eq!(creates.pending(), 0);
        assert!(!creates.any_unseen("ns", &["a".into(), "b".into()]));
    }

    #[test]
    fn the_echo_before_the_create_s_response_is_the_echo_too() {
        let creates = OwnCreates::default();
        creates.sending(&job("c", ""));
        assert!(creates.any_unseen("ns", &["c".into()]), "sent, not seen");
        assert!(creates.is_echo(&job("c", "11")), "first event in flight");
        assert!(!creates.any_unseen("ns", &["c".into()]), "seen");
        assert!(
            !creates.is_echo(&job("c", "12")),
            "the Job changed before the response: reconciles"
        );
        creates.record(&job("c", "11"));
        assert_eq!(creates.pending(), 0, "the response finds its echo done");
        assert!(!creates.is_echo(&job("c", "13")));
        // a failed create leaves nothing behind
        creates.sending(&job("d", ""));
        creates.failed(&job("d", ""));
        assert_eq!(creates.pending(), 0);
        assert!(!creates.is_echo(&job("d", "14")));
    }
}
