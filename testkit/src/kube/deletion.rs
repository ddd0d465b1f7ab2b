//! Deletion: finalizers, `propagationPolicy`, and the cascades of
//! namespaces and CRDs.

use serde_json::{Value, json};

use super::error::ApiError;
use super::gc::{self, Propagation};
use super::objects::{
    CRD_GROUP, CRD_PLURAL, State, check_rv, has_finalizer, has_finalizers, meta, meta_mut,
    meta_str, now_rfc3339,
};
use super::registry::ResourceDef;

impl State {
    /// Removes an object now (no finalizers), with cascades for namespaces
    /// and CRDs.
    pub(crate) fn remove(&mut self, def: &ResourceDef, ns: &str, name: &str) -> Option<Value> {
        if def.group.is_empty() && def.plural == "namespaces" {
            for ((group, plural), (obj_ns, obj_name)) in self.store.keys_in_namespace(name) {
                if let Some(d) = self.def(&group, &plural) {
                    self.store.remove(&d, &obj_ns, &obj_name);
                }
            }
            self.pod_logs.retain(|(log_ns, _), _| log_ns != name);
        }
        let removed = self.store.remove(def, ns, name)?;
        if def.group == CRD_GROUP
            && def.plural == CRD_PLURAL
            && let (Some(group), Some(plural)) = (
                removed.pointer("/spec/group").and_then(Value::as_str),
                removed
                    .pointer("/spec/names/plural")
                    .and_then(Value::as_str),
            )
            && let Some(gone) = self.registry.remove(group, plural)
        {
            for ((obj_ns, obj_name), _) in self
                .store
                .list(&gone, None)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<Vec<_>>()
            {
                self.store.remove(&gone, &obj_ns, &obj_name);
            }
            self.store.drop_resource(group, plural);
        }
        if def.group.is_empty() && def.plural == "pods" {
            self.pod_logs.remove(&(ns.to_string(), name.to_string()));
        }
        Some(removed)
    }

    /// `DELETE`: marks objects with finalizers, removes the others.
    pub fn delete(
        &mut self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
        options: &Value,
    ) -> Result<Value, ApiError> {
        let old = self.get(def, ns, name)?;
        check_rv(
            def,
            name,
            options
                .pointer("/preconditions/resourceVersion")
                .and_then(Value::as_str),
            &old,
        )?;
        if let Some(uid) = options
            .pointer("/preconditions/uid")
            .and_then(Value::as_str)
            && Some(uid) != meta_str(&old, "uid")
        {
            return Err(ApiError::conflict(&def.group, &def.plural, name));
        }
        let propagation = gc::propagation(def, options);
        if propagation == Propagation::Orphan
            && let Some(uid) = meta_str(&old, "uid")
        {
            let uid = uid.to_string();
            self.orphan_dependents(&uid);
        }
        let mut old = old;
        let deleting = meta(&old)
            .and_then(|m| m.get("deletionTimestamp"))
            .is_some_and(|v| !v.is_null());
        if propagation == Propagation::Foreground
            && !deleting
            && !has_finalizer(&old, gc::FOREGROUND)
        {
            let finalizers = meta_mut(&mut old)?
                .entry("finalizers")
                .or_insert_with(|| json!([]));
            if let Some(f) = finalizers.as_array_mut() {
                f.push(json!(gc::FOREGROUND));
            }
        }
        if has_finalizers(&old) {
            if deleting {
                return Ok(old);
            }
            let mut marked = old.clone();
            let m = meta_mut(&mut marked)?;
            m.insert("deletionTimestamp".into(), json!(now_rfc3339()));
            m.insert("deletionGracePeriodSeconds".into(), json!(0));
            // Like the real server, marking for deletion bumps the generation.
            let generation = m.get("generation").and_then(Value::as_i64).unwrap_or(1);
            m.insert("generation".into(), json!(generation + 1));
            return Ok(self.store.put(def, ns, name, marked));
        }
        self.remove(def, ns, name)
            .ok_or_else(|| ApiError::not_found(&def.group, &def.plural, name))
    }
}
