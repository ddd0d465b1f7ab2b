//! Garbage collection by `ownerReferences`, as the garbage collector of a
//! real cluster does it:
//!
//! - an object whose owners are all gone (no object of that kind and name,
//!   or one with another uid) is deleted (background propagation);
//! - an object with at least one existing owner loses the references to
//!   the owners that are gone;
//! - an owner deleted with `propagationPolicy: Foreground` waits (finalizer
//!   `foregroundDeletion`) until its dependents are gone;
//! - `Orphan` (the default for batch/v1 Jobs) removes the owner from its
//!   dependents' references instead.
//!
//! A reference to a kind the server does not know is left alone (a real
//! collector cannot resolve it either). Passes run in the background
//! ([`super::controllers`]), right after every write and once a second.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::objects::State;
use super::registry::ResourceDef;
use super::store::{ObjKey, ResKey};

/// The finalizer of an owner deleted in the foreground.
pub(crate) const FOREGROUND: &str = "foregroundDeletion";

/// Cascades are followed to this depth in one pass.
const MAX_ROUNDS: usize = 32;

/// What happens to the dependents of a deleted object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Propagation {
    /// Dependents are collected after the owner is gone.
    Background,
    /// The owner stays until its dependents are gone.
    Foreground,
    /// Dependents lose their reference to the owner and stay.
    Orphan,
}

/// The propagation a DELETE asks for, with the defaults of a real server
/// (`Orphan` for batch/v1 Jobs, for compatibility; `Background` otherwise).
pub(crate) fn propagation(def: &ResourceDef, options: &Value) -> Propagation {
    match options.get("propagationPolicy").and_then(Value::as_str) {
        Some("Foreground") => return Propagation::Foreground,
        Some("Orphan") => return Propagation::Orphan,
        Some("Background") => return Propagation::Background,
        _ => {}
    }
    match options.get("orphanDependents").and_then(Value::as_bool) {
        Some(true) => Propagation::Orphan,
        Some(false) => Propagation::Background,
        None if def.group == "batch" && def.plural == "jobs" => Propagation::Orphan,
        None => Propagation::Background,
    }
}

/// How one owner reference resolves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Owner {
    /// The owner exists.
    Solid,
    /// The owner is gone, or is being deleted in the foreground.
    Gone,
    /// The kind cannot be resolved: never collected.
    Unknown,
}

fn refs(obj: &Value) -> &[Value] {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn deleting(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null())
}

fn has_finalizer(obj: &Value, name: &str) -> bool {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| f.iter().any(|x| x.as_str() == Some(name)))
}

/// What one pass decided for one object.
enum Action {
    Delete,
    KeepRefs(Vec<Value>),
    DropFinalizer,
}

impl State {
    fn resolve(&self, dependent_ns: &str, dependent_namespaced: bool, r: &Value) -> Owner {
        let api_version = r.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
        let kind = r.get("kind").and_then(Value::as_str).unwrap_or("");
        let (Some(name), Some(uid)) = (
            r.get("name").and_then(Value::as_str),
            r.get("uid").and_then(Value::as_str),
        ) else {
            return Owner::Unknown;
        };
        let Some(def) = self.registry.find_kind(group, kind) else {
            return Owner::Unknown;
        };
        if def.namespaced && !dependent_namespaced {
            // A cluster-scoped dependent cannot have a namespaced owner.
            return Owner::Unknown;
        }
        let ns = if def.namespaced { dependent_ns } else { "" };
        match self.store.get(def, ns, name) {
            Some(o)
                if o.pointer("/metadata/uid").and_then(Value::as_str) == Some(uid)
                    && !(deleting(o) && has_finalizer(o, FOREGROUND)) =>
            {
                Owner::Solid
            }
            _ => Owner::Gone,
        }
    }

    /// The decisions of one round, by storage key and object key.
    fn plan(&self) -> BTreeMap<(ResKey, ObjKey), Action> {
        let mut referenced: BTreeSet<String> = BTreeSet::new();
        let mut actions = BTreeMap::new();
        for (rk, ok, obj) in self.store.all() {
            let owners = refs(obj);
            for r in owners {
                if let Some(uid) = r.get("uid").and_then(Value::as_str) {
                    referenced.insert(uid.to_string());
                }
            }
            if owners.is_empty() {
                continue;
            }
            let namespaced = self
                .registry
                .find_any(&rk.0, &rk.1)
                .is_some_and(|d| d.namespaced);
            let resolved: Vec<Owner> = owners
                .iter()
                .map(|r| self.resolve(&ok.0, namespaced, r))
                .collect();
            let gone = resolved.iter().filter(|o| **o == Owner::Gone).count();
            if gone == 0 || resolved.contains(&Owner::Unknown) {
                // Nothing to do, or (as for a real collector) an owner that
                // cannot be resolved blocks any decision.
                continue;
            }
            let key = (rk.clone(), ok.clone());
            if gone == owners.len() {
                if !deleting(obj) {
                    actions.insert(key, Action::Delete);
                }
            } else {
                let keep = owners
                    .iter()
                    .zip(&resolved)
                    .filter(|(_, o)| **o == Owner::Solid)
                    .map(|(r, _)| r.clone())
                    .collect();
                actions.insert(key, Action::KeepRefs(keep));
            }
        }
        for (rk, ok, obj) in self.store.all() {
            let uid = obj.pointer("/metadata/uid").and_then(Value::as_str);
            if deleting(obj)
                && has_finalizer(obj, FOREGROUND)
                && uid.is_none_or(|u| !referenced.contains(u))
            {
                actions.insert((rk.clone(), ok.clone()), Action::DropFinalizer);
            }
        }
        actions
    }

    fn act(&mut self, def: &ResourceDef, (ns, name): &ObjKey, action: Action) -> bool {
        let Some(old) = self.store.get(def, ns, name).cloned() else {
            return false;
        };
        let mut new = old.clone();
        let Some(meta) = new.get_mut("metadata").and_then(Value::as_object_mut) else {
            return false;
        };
        match action {
            Action::Delete => {
                let options = json!({"propagationPolicy": "Background"});
                return self.delete(def, ns, name, &options).is_ok();
            }
            Action::KeepRefs(keep) if keep.is_empty() => {
                meta.remove("ownerReferences");
            }
            Action::KeepRefs(keep) => {
                meta.insert("ownerReferences".into(), Value::Array(keep));
            }
            Action::DropFinalizer => {
                let left: Vec<Value> = meta
                    .get("finalizers")
                    .and_then(Value::as_array)
                    .map(|f| {
                        f.iter()
                            .filter(|x| x.as_str() != Some(FOREGROUND))
                            .cloned()
                            .collect()
                    })
                    .unwrap_or_default();
                if left.is_empty() {
                    meta.remove("finalizers");
                } else {
                    meta.insert("finalizers".into(), Value::Array(left));
                }
            }
        }
        self.commit(def, ns, name, &old, new).is_ok()
    }

    /// Runs the collector until nothing changes (or [`MAX_ROUNDS`]).
    /// Returns whether anything was written.
    pub(crate) fn collect_garbage(&mut self) -> bool {
        let mut changed = false;
        for _ in 0..MAX_ROUNDS {
            let actions = self.plan();
            if actions.is_empty() {
                break;
            }
            let mut round = false;
            for ((rk, ok), action) in actions {
                if let Some(def) = self.def(&rk.0, &rk.1) {
                    round |= self.act(&def, &ok, action);
                }
            }
            changed |= round;
            if !round {
                break;
            }
        }
        changed
    }

    /// Removes references to `uid` from every object (`Orphan` propagation).
    pub(crate) fn orphan_dependents(&mut self, uid: &str) {
        let dependents: Vec<(ResKey, ObjKey)> = self
            .store
            .all()
            .filter(|(_, _, o)| {
                refs(o)
                    .iter()
                    .any(|r| r.get("uid").and_then(Value::as_str) == Some(uid))
            })
            .map(|(rk, ok, _)| (rk.clone(), ok.clone()))
            .collect();
        for (rk, ok) in dependents {
            let Some(def) = self.def(&rk.0, &rk.1) else {
                continue;
            };
            let keep = self.store.get(&def, &ok.0, &ok.1).map(|o| {
                refs(o)
                    .iter()
                    .filter(|r| r.get("uid").and_then(Value::as_str) != Some(uid))
                    .cloned()
                    .collect()
            });
            if let Some(keep) = keep {
                self.act(&def, &ok, Action::KeepRefs(keep));
            }
        }
    }
}
