//! The `/scale` subresource: an `autoscaling/v1` Scale view of an object
//! whose writes change only the replicas path.

use serde_json::{Value, json};

use super::error::ApiError;
use super::objects::{State, get_path, set_path};
use super::patch::{self, PatchKind};
use super::registry::{ResourceDef, ScaleDef};

fn scale_def(def: &ResourceDef) -> Result<&ScaleDef, ApiError> {
    def.scale
        .as_ref()
        .ok_or_else(|| ApiError::not_found(&def.group, &format!("{}/scale", def.plural), "scale"))
}

/// A label selector rendered as a string (`a=b,c=d`).
fn selector_string(sel: &Value) -> String {
    match sel {
        Value::String(s) => s.clone(),
        Value::Object(_) => {
            let mut terms: Vec<String> = sel
                .get("matchLabels")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                        .collect()
                })
                .unwrap_or_default();
            for expr in sel
                .get("matchExpressions")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let key = expr.get("key").and_then(Value::as_str).unwrap_or_default();
                let values: Vec<&str> = expr
                    .get("values")
                    .and_then(Value::as_array)
                    .map(|v| v.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                match expr.get("operator").and_then(Value::as_str) {
                    Some("In") => terms.push(format!("{key} in ({})", values.join(","))),
                    Some("NotIn") => terms.push(format!("{key} notin ({})", values.join(","))),
                    Some("Exists") => terms.push(key.to_string()),
                    Some("DoesNotExist") => terms.push(format!("!{key}")),
                    _ => {}
                }
            }
            terms.join(",")
        }
        _ => String::new(),
    }
}

impl State {
    /// The Scale view of an object.
    pub fn get_scale(&self, def: &ResourceDef, ns: &str, name: &str) -> Result<Value, ApiError> {
        let sd = scale_def(def)?;
        let obj = self.get(def, ns, name)?;
        let m = obj.get("metadata").cloned().unwrap_or_else(|| json!({}));
        let mut metadata = json!({});
        for field in [
            "name",
            "namespace",
            "uid",
            "resourceVersion",
            "creationTimestamp",
        ] {
            if let Some(v) = m.get(field) {
                metadata[field] = v.clone();
            }
        }
        let spec_replicas = get_path(&obj, &sd.spec_replicas)
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let status_replicas = get_path(&obj, &sd.status_replicas)
            .and_then(Value::as_i64)
            .unwrap_or(0);
        // As a real server encodes it: `spec.replicas` and `status.selector`
        // are `omitempty` (a 0 or "" is left out), `status.replicas` is not.
        let mut status = json!({"replicas": status_replicas});
        if let Some(sel) = sd.label_selector.as_ref().and_then(|p| get_path(&obj, p)) {
            let sel = selector_string(sel);
            if !sel.is_empty() {
                status["selector"] = json!(sel);
            }
        }
        let mut spec = json!({});
        if spec_replicas != 0 {
            spec["replicas"] = json!(spec_replicas);
        }
        Ok(json!({
            "apiVersion": "autoscaling/v1",
            "kind": "Scale",
            "metadata": metadata,
            "spec": spec,
            "status": status,
        }))
    }

    /// Replaces the Scale: only the replicas path of the object changes.
    pub fn update_scale(
        &mut self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
        body: &Value,
    ) -> Result<Value, ApiError> {
        let sd = scale_def(def)?.clone();
        // A missing `spec.replicas` is 0, as Go decodes it (and encodes 0).
        let replicas = match body.pointer("/spec/replicas") {
            None | Some(Value::Null) => Some(0),
            Some(v) => v.as_i64().filter(|r| *r >= 0),
        }
        .ok_or_else(|| {
                ApiError::invalid(format!(
                    "Scale.autoscaling \"{name}\" is invalid: spec.replicas: must be a non-negative integer"
                ))
            })?;
        let mut obj = self.get(def, ns, name)?;
        if let Some(rv) = body
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            && !rv.is_empty()
            && Some(rv)
                != obj
                    .pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str)
        {
            return Err(ApiError::conflict(&def.group, &def.plural, name));
        }
        set_path(&mut obj, &sd.spec_replicas, json!(replicas))?;
        // `update` keeps the stored status, so only the replicas path changes.
        self.update(def, ns, name, super::objects::Part::Main, obj)?;
        self.get_scale(def, ns, name)
    }

    /// Patches the Scale view; only the replicas path of the object changes.
    pub fn patch_scale(
        &mut self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
        kind: PatchKind,
        patch_body: &Value,
    ) -> Result<Value, ApiError> {
        let current = self.get_scale(def, ns, name)?;
        let patched = patch::apply(kind, &current, patch_body)?;
        self.update_scale(def, ns, name, &patched)
    }
}
