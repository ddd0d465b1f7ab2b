//! The verbs on stored objects: get, create, update, patch, with
//! resourceVersion, generation, finalizer, status subresource, namespace
//! and CRD semantics, and the defaults of built-in kinds. Delete is in
//! `deletion`, list and deletecollection in `list`.

use std::borrow::Cow;
use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use rand::Rng as _;
use serde_json::{Map, Value, json};

use super::defaults;
use super::error::ApiError;
use super::events;
use super::namespaces::PLACEHOLDER_CA_PEM;
use super::patch::{self, PatchKind};
use super::registry::{Registry, ResourceDef};
use super::store::Store;

/// Everything the server keeps, behind one lock.
#[derive(Debug)]
pub(crate) struct State {
    pub registry: Registry,
    pub store: Store,
    pub pod_logs: HashMap<(String, String), String>,
    /// What every namespace's `kube-root-ca.crt` carries.
    pub root_ca_pem: String,
}

/// Which part of an object a write targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Part {
    /// The main resource: status is kept as stored (when it has a status subresource).
    Main,
    /// `/status`: only status changes.
    Status,
}

pub(crate) const CRD_GROUP: &str = "apiextensions.k8s.io";
pub(crate) const CRD_PLURAL: &str = "customresourcedefinitions";
const NAME_CHARS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// Random lowercase suffix, like generateName's.
pub(crate) fn random_suffix(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(NAME_CHARS[rng.random_range(0..NAME_CHARS.len())]))
        .collect()
}

fn new_uid() -> String {
    let b: [u8; 16] = rand::rng().random();
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

pub(crate) fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub(crate) fn meta(obj: &Value) -> Option<&Map<String, Value>> {
    obj.get("metadata").and_then(Value::as_object)
}

pub(crate) fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    meta(obj).and_then(|m| m.get(field)).and_then(Value::as_str)
}

pub(crate) fn meta_mut(obj: &mut Value) -> Result<&mut Map<String, Value>, ApiError> {
    let m = obj
        .as_object_mut()
        .ok_or_else(|| ApiError::bad_request("the request body must be a JSON object"))?;
    let meta = m.entry("metadata").or_insert_with(|| json!({}));
    meta.as_object_mut()
        .ok_or_else(|| ApiError::invalid("metadata must be an object"))
}

/// Everything but metadata, status and type fields: what `generation` tracks.
fn spec_part(obj: &Value) -> Map<String, Value> {
    obj.as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| {
                    !matches!(k.as_str(), "metadata" | "status" | "apiVersion" | "kind")
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) fn has_finalizer(obj: &Value, name: &str) -> bool {
    meta(obj)
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .is_some_and(|f| f.iter().any(|x| x.as_str() == Some(name)))
}

pub(crate) fn has_finalizers(obj: &Value) -> bool {
    meta(obj)
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .is_some_and(|f| !f.is_empty())
}

/// Fails with 409 Conflict when `resourceVersion` is set and stale.
pub(crate) fn check_rv(
    def: &ResourceDef,
    name: &str,
    wanted: Option<&str>,
    stored: &Value,
) -> Result<(), ApiError> {
    match wanted {
        Some(rv) if !rv.is_empty() && Some(rv) != meta_str(stored, "resourceVersion") => {
            Err(ApiError::conflict(&def.group, &def.plural, name))
        }
        _ => Ok(()),
    }
}

/// A Secret's `stringData` is write-only: merged into `data` (base64).
fn fold_string_data(def: &ResourceDef, obj: &mut Value) {
    if !(def.group.is_empty() && def.plural == "secrets") {
        return;
    }
    let Some(m) = obj.as_object_mut() else {
        return;
    };
    let Some(Value::Object(plain)) = m.remove("stringData") else {
        return;
    };
    let data = m.entry("data").or_insert_with(|| json!({}));
    if !data.is_object() {
        *data = json!({});
    }
    if let Some(data) = data.as_object_mut() {
        for (k, v) in plain {
            let text = v.as_str().map_or_else(|| v.to_string(), str::to_string);
            data.insert(k, json!(STANDARD.encode(text)));
        }
    }
}

/// Sets the value at a `.a.b.c` path, creating objects on the way.
pub(crate) fn set_path(obj: &mut Value, path: &str, value: Value) -> Result<(), ApiError> {
    let parts: Vec<&str> = path.trim_start_matches('.').split('.').collect();
    let mut cur = obj;
    for (i, part) in parts.iter().enumerate() {
        let map = cur
            .as_object_mut()
            .ok_or_else(|| ApiError::invalid(format!("{path}: not an object on the way")))?;
        if i + 1 == parts.len() {
            map.insert((*part).to_string(), value);
            return Ok(());
        }
        cur = map.entry(*part).or_insert_with(|| json!({}));
    }
    Ok(())
}

/// The value at a `.a.b.c` path.
pub(crate) fn get_path<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    path.trim_start_matches('.')
        .split('.')
        .try_fold(obj, |cur, part| cur.get(part))
}

impl State {
    pub fn new() -> Self {
        let mut state = Self {
            registry: Registry::with_builtins(),
            store: Store::new(),
            pod_logs: HashMap::new(),
            root_ca_pem: PLACEHOLDER_CA_PEM.to_string(),
        };
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let def = state.def("", "namespaces");
            if let Some(def) = def {
                // Creating a fresh namespace in a fresh store cannot fail.
                let _ = state.create(&def, "v1", "", json!({"metadata": {"name": ns}}));
            }
        }
        state
    }

    /// A copy of the resource definition for `group/plural`.
    pub fn def(&self, group: &str, plural: &str) -> Option<ResourceDef> {
        let d = self.registry.find_any(group, plural)?;
        Some(d.clone())
    }

    /// A stored object as a client of `def` sees it (events.k8s.io Events
    /// are stored as core/v1 ones), for selectors.
    pub fn view<'a>(def: &ResourceDef, obj: &'a Value) -> Cow<'a, Value> {
        if events::is_events_v1(def) {
            Cow::Owned(events::core_to_v1(obj.clone()))
        } else {
            Cow::Borrowed(obj)
        }
    }

    /// A stored object in the version a client asked for: its `apiVersion`
    /// and `kind`, and the fields of events.k8s.io Events.
    pub fn output(def: &ResourceDef, version: &str, obj: Value) -> Value {
        let mut obj = if events::is_events_v1(def) {
            events::core_to_v1(obj)
        } else {
            obj
        };
        if let Some(m) = obj.as_object_mut() {
            m.insert("apiVersion".into(), json!(def.api_version(version)));
            m.insert("kind".into(), json!(def.kind));
        }
        obj
    }

    pub fn get(&self, def: &ResourceDef, ns: &str, name: &str) -> Result<Value, ApiError> {
        self.store
            .get(def, ns, name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(&def.group, &def.plural, name))
    }

    fn namespace_exists(&self, ns: &str) -> bool {
        self.registry
            .find_any("", "namespaces")
            .is_some_and(|d| self.store.get(d, "", ns).is_some())
    }

    pub fn create(
        &mut self,
        def: &ResourceDef,
        version: &str,
        ns: &str,
        mut body: Value,
    ) -> Result<Value, ApiError> {
        if let Some(kind) = body.get("kind").and_then(Value::as_str)
            && kind != def.kind
        {
            return Err(ApiError::bad_request(format!(
                "the body is a {kind}, but the request is for {} ({})",
                def.kind,
                def.qualified()
            )));
        }
        if def.namespaced && !self.namespace_exists(ns) {
            return Err(ApiError::not_found("", "namespaces", ns));
        }
        let api_version = if events::is_events_v1(def) {
            body = events::v1_to_core(body);
            "v1".to_string()
        } else {
            def.api_version(version)
        };
        let meta = meta_mut(&mut body)?;
        match meta.get("namespace").and_then(Value::as_str) {
            Some(n) if def.namespaced && n != ns => {
                return Err(ApiError::bad_request(format!(
                    "the namespace of the provided object ({n}) does not match the namespace sent on the request ({ns})"
                )));
            }
            _ => {}
        }
        let name = match meta.get("name").and_then(Value::as_str) {
            Some(n) if !n.is_empty() => n.to_string(),
            _ => match meta.get("generateName").and_then(Value::as_str) {
                Some(prefix) if !prefix.is_empty() => format!("{prefix}{}", random_suffix(5)),
                _ => {
                    return Err(ApiError::invalid(format!(
                        "{} is invalid: metadata.name: Required value: name or generateName is required",
                        def.kind
                    )));
                }
            },
        };
        if self.store.get(def, ns, &name).is_some() {
            return Err(ApiError::already_exists(&def.group, &def.plural, &name));
        }
        meta.insert("name".into(), json!(name));
        if def.namespaced {
            meta.insert("namespace".into(), json!(ns));
        } else {
            meta.remove("namespace");
        }
        let uid = new_uid();
        meta.insert("uid".into(), json!(uid));
        meta.insert("creationTimestamp".into(), json!(now_rfc3339()));
        meta.insert("generation".into(), json!(1));
        meta.remove("deletionTimestamp");
        meta.remove("managedFields");
        if let Some(m) = body.as_object_mut() {
            m.insert("apiVersion".into(), json!(api_version));
            m.insert("kind".into(), json!(def.kind));
            if def.status {
                m.remove("status");
            }
        }
        defaults::apply(def, &mut body);
        defaults::on_create(def, &mut body, &uid);
        self.default_scale(def, &mut body)?;
        defaults::omit_zero(def.storage_key(), &mut body);
        fold_string_data(def, &mut body);
        if def.group == CRD_GROUP && def.plural == CRD_PLURAL {
            self.accept_crd(&mut body)?;
        }
        let created = self.store.put(def, ns, &name, body);
        if def.group.is_empty() && def.plural == "namespaces" {
            self.publish_namespace(&name);
        }
        Ok(created)
    }

    /// Built-in scalable kinds have `replicas` (1 when absent).
    fn default_scale(&self, def: &ResourceDef, obj: &mut Value) -> Result<(), ApiError> {
        if !def.from_crd
            && let Some(scale) = &def.scale
            && get_path(obj, &scale.spec_replicas).is_none_or(Value::is_null)
        {
            set_path(obj, &scale.spec_replicas, json!(1))?;
        }
        Ok(())
    }

    /// Validates a CRD body, registers its resource and marks it Established.
    fn accept_crd(&mut self, body: &mut Value) -> Result<(), ApiError> {
        let crd: CustomResourceDefinition = serde_json::from_value(body.clone())
            .map_err(|e| ApiError::invalid(format!("CustomResourceDefinition is invalid: {e}")))?;
        let name = crd.metadata.name.clone().unwrap_or_default();
        let def = ResourceDef::from_crd(&crd).map_err(|e| {
            ApiError::invalid(format!("CustomResourceDefinition {name} is invalid: {e}"))
        })?;
        let expected = format!("{}.{}", def.plural, def.group);
        if name != expected {
            return Err(ApiError::invalid(format!(
                "CustomResourceDefinition {name} is invalid: metadata.name: must be spec.names.plural+\".\"+spec.group ({expected})"
            )));
        }
        let now = now_rfc3339();
        let names = serde_json::to_value(&crd.spec.names)
            .map_err(|e| ApiError::invalid(format!("CustomResourceDefinition {name}: {e}")))?;
        set_path(
            body,
            ".status",
            json!({
                "acceptedNames": names,
                "storedVersions": crd.spec.versions.iter().filter(|v| v.storage).map(|v| v.name.clone()).collect::<Vec<_>>(),
                "conditions": [
                    {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": now},
                    {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": now},
                ],
            }),
        )?;
        self.registry.insert(def);
        Ok(())
    }

    /// Stores a new state of an existing object: defaults, generation,
    /// finalizers.
    pub(crate) fn commit(
        &mut self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
        old: &Value,
        mut new: Value,
    ) -> Result<Value, ApiError> {
        defaults::apply(def, &mut new);
        self.default_scale(def, &mut new)?;
        defaults::omit_zero(def.storage_key(), &mut new);
        let generation = meta(old)
            .and_then(|m| m.get("generation"))
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let bumped = if spec_part(old) != spec_part(&new) {
            generation + 1
        } else {
            generation
        };
        let meta = meta_mut(&mut new)?;
        meta.insert("generation".into(), json!(bumped));
        let deleting = meta.get("deletionTimestamp").is_some_and(|v| !v.is_null());
        if deleting && !has_finalizers(&new) {
            return Ok(self.remove(def, ns, name).unwrap_or(new));
        }
        if def.group == CRD_GROUP && def.plural == CRD_PLURAL {
            self.accept_crd(&mut new)?;
        }
        Ok(self.store.put(def, ns, name, new))
    }

    /// Replaces an object (`PUT`), or its status (`PUT .../status`).
    pub fn update(
        &mut self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
        part: Part,
        body: Value,
    ) -> Result<Value, ApiError> {
        let old = self.get(def, ns, name)?;
        if !body.is_object() {
            return Err(ApiError::bad_request(
                "the request body must be a JSON object",
            ));
        }
        let body = if events::is_events_v1(def) {
            events::v1_to_core(body)
        } else {
            body
        };
        if let Some(body_name) = meta_str(&body, "name")
            && body_name != name
        {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        // Custom resources, unlike most built-ins, reject unconditional updates.
        if def.from_crd && meta_str(&body, "resourceVersion").is_none_or(str::is_empty) {
            return Err(ApiError::invalid(format!(
                "{} \"{name}\" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update",
                def.kind
            )));
        }
        check_rv(def, name, meta_str(&body, "resourceVersion"), &old)?;
        let new = match part {
            Part::Status => {
                let mut new = old.clone();
                set_path(
                    &mut new,
                    ".status",
                    body.get("status").cloned().unwrap_or(Value::Null),
                )?;
                new
            }
            Part::Main => {
                let mut new = body;
                let old_meta = meta(&old).cloned().unwrap_or_default();
                let m = meta_mut(&mut new)?;
                for field in [
                    "uid",
                    "creationTimestamp",
                    "generation",
                    "deletionTimestamp",
                    "namespace",
                    "name",
                ] {
                    match old_meta.get(field) {
                        Some(v) => m.insert(field.to_string(), v.clone()),
                        None => m.remove(field),
                    };
                }
                m.remove("managedFields");
                if let Some(o) = new.as_object_mut() {
                    o.insert(
                        "apiVersion".into(),
                        old.get("apiVersion").cloned().unwrap_or(Value::Null),
                    );
                    o.insert("kind".into(), json!(def.kind));
                    if def.status {
                        match old.get("status") {
                            Some(s) => o.insert("status".into(), s.clone()),
                            None => o.remove("status"),
                        };
                    }
                }
                fold_string_data(def, &mut new);
                new
            }
        };
        self.commit(def, ns, name, &old, new)
    }

    /// Applies a patch to an object or its status. Apply patches create
    /// missing objects.
    pub fn patch(
        &mut self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
        part: Part,
        kind: PatchKind,
        patch_body: &Value,
    ) -> Result<Value, ApiError> {
        let old = match self.store.get(def, ns, name) {
            Some(o) => o.clone(),
            None if kind == PatchKind::Apply && part == Part::Main => {
                let mut body = patch_body.clone();
                meta_mut(&mut body)?.insert("name".into(), json!(name));
                let version = def.versions.first().cloned().unwrap_or_default();
                return self.create(def, &version, ns, body);
            }
            None => return Err(ApiError::not_found(&def.group, &def.plural, name)),
        };
        let patched = patch::apply(kind, &Self::view(def, &old), patch_body)?;
        if meta_str(&patched, "name").is_some_and(|n| n != name) {
            return Err(ApiError::invalid(format!(
                "{} {name} is invalid: metadata.name: the name cannot be changed",
                def.kind
            )));
        }
        // A resourceVersion in the patch is a precondition; otherwise the
        // patched object carries the stored one.
        let wanted = meta_str(&patched, "resourceVersion").map(str::to_string);
        check_rv(def, name, wanted.as_deref(), &old)?;
        self.update(def, ns, name, part, patched)
    }
}
