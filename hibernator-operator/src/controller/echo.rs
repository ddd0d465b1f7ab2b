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
//! API server sends both at about the same time). Such an echo reconciles as
//! before: the last version the watch showed is kept per plan, and a write
//! whose version was already seen is counted in [`OwnWrites::raced`] instead
//! of being recorded.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use hibernator_core::types::HibernatePlan;

/// resourceVersions returned by the controller's status writes, by plan.
#[derive(Debug, Default)]
pub struct OwnWrites {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Written versions whose echo has not arrived yet.
    written: HashMap<(String, String), String>,
    /// The last version the watch showed, by plan.
    seen: HashMap<(String, String), String>,
    /// Writes whose echo came first.
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

    /// Records `written`, the object a status write returned.
    pub fn record(&self, written: &HibernatePlan) {
        let Some(version) = written.metadata.resource_version.clone() else {
            return;
        };
        let key = key(written);
        let mut state = self.state();
        if state.seen.get(&key) == Some(&version) {
            // the echo came first and reconciles
            state.raced += 1;
            return;
        }
        state.written.insert(key, version);
    }

    /// Whether `seen` (a plan from the watch) is the echo of the last
    /// recorded write; an echo is answered once and forgotten.
    pub fn is_echo(&self, seen: &HibernatePlan) -> bool {
        let Some(version) = seen.metadata.resource_version.as_deref() else {
            return false;
        };
        let key = key(seen);
        let mut state = self.state();
        if state.written.get(&key).is_some_and(|v| v == version) {
            state.written.remove(&key);
            return true;
        }
        state.seen.insert(key, version.to_string());
        false
    }

    /// Forgets a plan (deleted, cleaned up).
    pub fn forget(&self, namespace: &str, name: &str) {
        let key = (namespace.to_string(), name.to_string());
        let mut state = self.state();
        state.written.remove(&key);
        state.seen.remove(&key);
    }

    /// How many writes wait for their echo.
    pub fn pending(&self) -> usize {
        self.state().written.len()
    }

    /// How many writes were echoed before their response arrived (and so
    /// reconciled once more).
    pub fn raced(&self) -> u64 {
        self.state().raced
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

    #[test]
    fn only_the_written_version_is_an_echo_and_only_once() {
        let writes = OwnWrites::default();
        assert!(!writes.is_echo(&plan("1")));
        writes.record(&plan("5"));
        // an older version (the watch was behind) and a newer one (someone
        // else changed the plan after the write) both reconcile
        assert!(!writes.is_echo(&plan("4")));
        assert!(writes.is_echo(&plan("5")));
        assert!(!writes.is_echo(&plan("5")), "answered once");
        writes.record(&plan("7"));
        assert!(!writes.is_echo(&plan("8")));
        writes.forget("ns", "p");
        assert_eq!(writes.pending(), 0);
        assert!(!writes.is_echo(&plan("7")));
        // the echo before the response: counted, not recorded
        assert!(!writes.is_echo(&plan("9")));
        writes.record(&plan("9"));
        assert_eq!((writes.pending(), writes.raced()), (0, 1));
    }
}
