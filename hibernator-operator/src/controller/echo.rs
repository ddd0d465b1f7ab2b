//! The controller's own writes (plan status writes, runner Job creates), so
//! that their watch echoes do not reconcile the plan again.
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
//! in six). So the object is marked before the write is sent
//! ([`OwnWrites::sending`]), and while it is marked the watch's events of it
//! are held back (the store is updated, the trigger waits). When the
//! response arrives ([`InFlight::record`]), the versions held back are
//! compared with the written one: the same version was the echo, and is
//! counted in [`OwnWrites::raced`]; any other version (the watch was behind,
//! or someone changed the object right after the write) and a failed write
//! with anything held back ([`InFlight::failed`]) request the reconcile
//! that was held back. A status write succeeds only on the version the
//! reconcile read (the PUT carries its resourceVersion), and a Job create
//! that finds the Job there already fails, so a version held back and then
//! dropped is always one the reconcile saw or wrote.
//!
//! The same holds for the runner Jobs the controller creates
//! ([`OwnCreates`]): the watch's `ADDED` event of a Job this controller has
//! just created updates the Job store but reconciles nothing; the reconcile
//! that created it already recorded it in the plan's status. Every later
//! change of the Job (it starts, finishes, fails, is deleted) reconciles as
//! before; a created Job's record goes with its first event after the
//! response, echo or not.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use kube::{Resource, ResourceExt};

type Key = (String, String);

fn object_key<K: Resource>(object: &K) -> Key {
    (object.namespace().unwrap_or_default(), object.name_any())
}

/// Writes in flight and answered, by object.
#[derive(Debug, Default)]
struct Tracker {
    /// Writes in flight (by a number of their own, so that only the write
    /// that started a hold ends it), with the versions the watch showed
    /// meanwhile (their triggers held back).
    in_flight: HashMap<Key, (u64, Vec<String>)>,
    /// Versions writes returned whose echo has not arrived yet.
    returned: HashMap<Key, String>,
    /// The number of the next write.
    next: u64,
    /// Writes whose echo came before their response.
    raced: u64,
    /// Writes after which a held-back event was reconciled.
    held_back: u64,
}

impl Tracker {
    /// Ends write `id`'s hold (when it still holds) and returns the
    /// versions held back.
    fn end(&mut self, key: &Key, id: u64) -> Option<Vec<String>> {
        match self.in_flight.get(key) {
            Some((holder, _)) if *holder == id => self.in_flight.remove(key).map(|(_, held)| held),
            _ => None,
        }
    }

    /// Counts a held-back event to reconcile (`reconcile`), passing it on.
    fn count(&mut self, reconcile: bool) -> bool {
        if reconcile {
            self.held_back += 1;
        }
        reconcile
    }
}

/// The shared bookkeeping of [`OwnWrites`] and [`OwnCreates`].
#[derive(Debug, Default)]
struct Echoes {
    state: Mutex<Tracker>,
}

impl Echoes {
    fn state(&self) -> MutexGuard<'_, Tracker> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn sending(&self, key: Key) -> InFlight<'_> {
        let mut state = self.state();
        let id = state.next;
        state.next += 1;
        state.in_flight.insert(key.clone(), (id, Vec::new()));
        InFlight {
            echoes: self,
            key,
            id,
        }
    }

    /// `forget_on_any`: the record of a returned version goes with the
    /// object's next event, echo or not (creates); otherwise only with the
    /// echo (status writes, which the next write replaces).
    fn is_echo(&self, key: Key, version: Option<&str>, forget_on_any: bool) -> bool {
        let Some(version) = version else {
            return false;
        };
        let mut state = self.state();
        if state.returned.get(&key).is_some_and(|v| v == version) {
            // the echo of an earlier write, late: not a change
            state.returned.remove(&key);
            return true;
        }
        if let Some((_, held)) = state.in_flight.get_mut(&key) {
            held.push(version.to_string());
            return true;
        }
        match state.returned.get(&key) {
            Some(returned) if returned == version => {
                state.returned.remove(&key);
                true
            }
            Some(_) if forget_on_any => {
                state.returned.remove(&key);
                false
            }
            _ => false,
        }
    }

    fn forget(&self, key: &Key) {
        let mut state = self.state();
        state.returned.remove(key);
        state.in_flight.remove(key);
    }

    /// Forgets every write (a controller starting: its watches list every
    /// object anew, and each of those events must reconcile).
    fn clear(&self) {
        let mut state = self.state();
        state.returned.clear();
        state.in_flight.clear();
    }

    fn pending(&self) -> usize {
        let state = self.state();
        state.returned.len() + state.in_flight.len()
    }
}

/// A write in flight ([`OwnWrites::sending`], [`OwnCreates::sending`]):
/// the watch's events of its object are held back until its response.
/// Dropping it (a reconcile cancelled mid-write) ends the hold.
#[derive(Debug)]
pub struct InFlight<'a> {
    echoes: &'a Echoes,
    key: Key,
    id: u64,
}

impl InFlight<'_> {
    /// Records `written`, the object the write returned. Returns whether
    /// the object's owner must be reconciled: the watch showed, during the
    /// write, a version other than the written one.
    #[must_use = "a held-back event must be reconciled"]
    pub fn record<K: Resource>(self, written: &K) -> bool {
        let mut state = self.echoes.state();
        let held = state.end(&self.key, self.id).unwrap_or_default();
        let Some(version) = written.resource_version() else {
            return state.count(!held.is_empty());
        };
        if held.contains(&version) {
            // the echo came first, and is done
            state.raced += 1;
        } else {
            state.returned.insert(self.key.clone(), version.clone());
        }
        state.count(held.iter().any(|seen| *seen != version))
    }

    /// Ends the hold after the write failed. Returns whether the watch
    /// showed the object meanwhile (that event must be reconciled).
    #[must_use = "a held-back event must be reconciled"]
    pub fn failed(self) -> bool {
        let mut state = self.echoes.state();
        let held = state
            .end(&self.key, self.id)
            .is_some_and(|held| !held.is_empty());
        state.count(held)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        // after `record`/`failed` this finds nothing; after a cancelled
        // write it ends its hold (the next event reconciles), and only its
        // own: a later write of the object holds under another number
        self.echoes.state().end(&self.key, self.id);
    }
}

/// The controller's status writes of plans.
#[derive(Debug, Default)]
pub struct OwnWrites {
    echoes: Echoes,
}

impl OwnWrites {
    /// Notes that a status write of `plan` is about to be sent.
    pub fn sending<K: Resource>(&self, plan: &K) -> InFlight<'_> {
        self.echoes.sending(object_key(plan))
    }

    /// Whether `seen` (a plan from the watch) reconciles nothing now: the
    /// echo of the last recorded write (answered once and forgotten), or
    /// any event of a plan whose write is in flight (held back until the
    /// write's response, see [`InFlight::record`]).
    pub fn is_echo<K: Resource>(&self, seen: &K) -> bool {
        self.echoes.is_echo(
            object_key(seen),
            seen.meta().resource_version.as_deref(),
            false,
        )
    }

    /// Forgets a plan (deleted, cleaned up).
    pub fn forget(&self, namespace: &str, name: &str) {
        self.echoes
            .forget(&(namespace.to_string(), name.to_string()));
    }

    /// How many writes wait for their response or their echo.
    pub fn pending(&self) -> usize {
        self.echoes.pending()
    }

    /// How many writes were echoed before their response arrived (the echo
    /// was held back and dropped).
    pub fn raced(&self) -> u64 {
        self.echoes.state().raced
    }

    /// How many writes held back an event other than their echo, and so
    /// requested a reconcile after their response.
    pub fn held_back(&self) -> u64 {
        self.echoes.state().held_back
    }

    /// Forgets every write (a controller starting).
    pub fn clear(&self) {
        self.echoes.clear();
    }
}

/// The controller's creates of runner Jobs.
#[derive(Debug, Default)]
pub struct OwnCreates {
    echoes: Echoes,
}

impl OwnCreates {
    /// Notes that `object` is about to be created.
    pub fn sending<K: Resource>(&self, object: &K) -> InFlight<'_> {
        self.echoes.sending(object_key(object))
    }

    /// Whether `seen` (from the watch) reconciles nothing now: the echo of
    /// a recorded create, or any event while the create is in flight (held
    /// back until its response, see [`InFlight::record`]).
    pub fn is_echo<K: Resource>(&self, seen: &K) -> bool {
        self.echoes.is_echo(
            object_key(seen),
            seen.meta().resource_version.as_deref(),
            true,
        )
    }

    /// Whether a Job of `names` in `namespace` that this controller
    /// created has not had its first watch event yet.
    pub fn any_unseen(&self, namespace: &str, names: &[String]) -> bool {
        let state = self.echoes.state();
        names.iter().any(|name| {
            let key = (namespace.to_string(), name.clone());
            state.returned.contains_key(&key)
                || state
                    .in_flight
                    .get(&key)
                    .is_some_and(|(_, held)| held.is_empty())
        })
    }

    /// How many creates wait for their response or their first event.
    pub fn pending(&self) -> usize {
        self.echoes.pending()
    }

    /// How many creates held back an event other than their echo, and so
    /// requested a reconcile after their response.
    pub fn held_back(&self) -> u64 {
        self.echoes.state().held_back
    }

    /// Forgets every create (a controller starting).
    pub fn clear(&self) {
        self.echoes.clear();
    }
}

#[cfg(test)]
mod tests {
    use hibernator_core::types::HibernatePlan;

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
        // the late echo of the previous write, during the next: not a change
        let first = writes.sending(&plan("13"));
        assert!(!first.record(&plan("14")));
        let second = writes.sending(&plan("14"));
        assert!(writes.is_echo(&plan("14")), "the first write's echo");
        assert!(!second.record(&plan("15")), "nothing to reconcile");
        assert!(writes.is_echo(&plan("15")));
        assert_eq!(writes.held_back(), 3);
        // a write cancelled mid-way ends its own hold, not a later one's
        let cancelled = writes.sending(&plan("15"));
        let next = writes.sending(&plan("15"));
        drop(cancelled);
        assert!(writes.is_echo(&plan("16")), "still held by the next write");
        assert!(!next.record(&plan("16")));
        drop(writes.sending(&plan("16")));
        // a controller starting forgets every write
        assert!(!writes.sending(&plan("16")).record(&plan("17")));
        writes.clear();
        assert!(!writes.is_echo(&plan("17")), "listed anew: reconciles");
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
        assert!(!creates.sending(&job("a", "")).record(&job("a", "5")));
        assert!(!creates.sending(&job("b", "")).record(&job("b", "6")));
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
    fn events_during_a_create_wait_for_its_response() {
        let creates = OwnCreates::default();
        // the echo first: dropped
        let create = creates.sending(&job("c", ""));
        assert!(creates.any_unseen("ns", &["c".into()]), "sent, not seen");
        assert!(creates.is_echo(&job("c", "11")), "held back");
        assert!(!creates.any_unseen("ns", &["c".into()]), "seen");
        assert!(!create.record(&job("c", "11")), "it was the echo");
        assert_eq!(creates.pending(), 0);
        assert!(!creates.is_echo(&job("c", "13")));
        // the echo and the Job's next change: the change reconciles
        let create = creates.sending(&job("d", ""));
        assert!(creates.is_echo(&job("d", "14")));
        assert!(creates.is_echo(&job("d", "15")));
        assert!(create.record(&job("d", "14")));
        // a create that finds the Job there already (a store behind the
        // API server): the Job's change seen meanwhile must reconcile
        let create = creates.sending(&job("e", ""));
        assert!(creates.is_echo(&job("e", "20")), "held back");
        assert!(create.failed(), "an event was held back");
        assert!(!creates.sending(&job("e", "")).failed(), "nothing held");
        // a create cancelled mid-way ends the hold
        drop(creates.sending(&job("f", "")));
        assert_eq!(creates.pending(), 0);
        assert!(!creates.is_echo(&job("f", "21")));
    }
}
