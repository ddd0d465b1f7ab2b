//! Object storage keyed by group/resource, namespace and name, with one
//! global resourceVersion counter and a bounded event log for watches.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::broadcast;

use super::registry::ResourceDef;

/// Watch event types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    /// The wire name (`ADDED`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// One change, as recorded in the event log.
#[derive(Debug)]
pub(crate) struct StoredEvent {
    pub rv: u64,
    pub group: String,
    pub plural: String,
    pub namespace: String,
    pub etype: EventType,
    pub object: Value,
    /// The state before a MODIFIED event (for selector transitions).
    pub previous: Option<Value>,
}

/// `(group, plural)`.
pub(crate) type ResKey = (String, String);
/// `(namespace, name)`; the namespace is `""` for cluster-scoped objects.
pub(crate) type ObjKey = (String, String);

/// Default number of events retained for watches.
pub(crate) const DEFAULT_HISTORY: usize = 10_000;

/// The object store.
#[derive(Debug)]
pub(crate) struct Store {
    rv: u64,
    objects: HashMap<ResKey, BTreeMap<ObjKey, Value>>,
    events: VecDeque<Arc<StoredEvent>>,
    history_limit: usize,
    compacted: u64,
    tx: broadcast::Sender<Arc<StoredEvent>>,
}

/// Where a resource's objects are kept (see [`ResourceDef::storage_key`]).
pub(crate) fn res_key(def: &ResourceDef) -> ResKey {
    let (group, plural) = def.storage_key();
    (group.to_string(), plural.to_string())
}

/// Sets `metadata.resourceVersion`.
pub(crate) fn set_rv(obj: &mut Value, rv: u64) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("resourceVersion".into(), json!(rv.to_string()));
    }
}

impl Store {
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(4096);
        Self {
            rv: 1,
            objects: HashMap::new(),
            events: VecDeque::new(),
            history_limit: DEFAULT_HISTORY,
            compacted: 0,
            tx,
        }
    }

    /// The latest resourceVersion.
    pub fn current_rv(&self) -> u64 {
        self.rv
    }

    /// Events older than this version are gone (watches from before get 410).
    pub fn compacted_rv(&self) -> u64 {
        self.compacted
    }

    /// Sets how many events are retained.
    pub fn set_history_limit(&mut self, limit: usize) {
        self.history_limit = limit;
        self.trim();
    }

    /// Drops every retained event.
    pub fn compact(&mut self) {
        self.events.clear();
        self.compacted = self.rv;
    }

    fn trim(&mut self) {
        while self.events.len() > self.history_limit {
            if let Some(e) = self.events.pop_front() {
                self.compacted = e.rv;
            }
        }
    }

    pub fn get(&self, def: &ResourceDef, ns: &str, name: &str) -> Option<&Value> {
        self.objects
            .get(&res_key(def))
            .and_then(|m| m.get(&(ns.to_string(), name.to_string())))
    }

    /// Objects of a resource in key order, optionally in one namespace.
    pub fn list<'a>(
        &'a self,
        def: &ResourceDef,
        ns: Option<&'a str>,
    ) -> impl Iterator<Item = (&'a ObjKey, &'a Value)> + 'a {
        self.objects
            .get(&res_key(def))
            .into_iter()
            .flat_map(|m| m.iter())
            .filter(move |((n, _), _)| ns.is_none_or(|want| want == n))
    }

    fn record(
        &mut self,
        def: &ResourceDef,
        ns: &str,
        etype: EventType,
        object: Value,
        previous: Option<Value>,
    ) {
        let (group, plural) = res_key(def);
        let event = Arc::new(StoredEvent {
            rv: self.rv,
            group,
            plural,
            namespace: ns.to_string(),
            etype,
            object,
            previous,
        });
        self.events.push_back(Arc::clone(&event));
        self.trim();
        // No receivers is fine: nobody watches.
        let _ = self.tx.send(event);
    }

    /// Stores an object under a new resourceVersion and returns it.
    pub fn put(&mut self, def: &ResourceDef, ns: &str, name: &str, mut obj: Value) -> Value {
        self.rv += 1;
        set_rv(&mut obj, self.rv);
        let previous = self
            .objects
            .entry(res_key(def))
            .or_default()
            .insert((ns.to_string(), name.to_string()), obj.clone());
        let etype = if previous.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.record(def, ns, etype, obj.clone(), previous);
        obj
    }

    /// Removes an object (recording a DELETED event with a new version).
    pub fn remove(&mut self, def: &ResourceDef, ns: &str, name: &str) -> Option<Value> {
        let mut obj = self
            .objects
            .get_mut(&res_key(def))?
            .remove(&(ns.to_string(), name.to_string()))?;
        self.rv += 1;
        set_rv(&mut obj, self.rv);
        self.record(def, ns, EventType::Deleted, obj.clone(), None);
        Some(obj)
    }

    /// Drops all objects of a resource without events (a deleted CRD).
    pub fn drop_resource(&mut self, group: &str, plural: &str) -> Vec<(ObjKey, Value)> {
        self.objects
            .remove(&(group.to_string(), plural.to_string()))
            .map(|m| m.into_iter().collect())
            .unwrap_or_default()
    }

    /// Every stored object with its storage and object keys.
    pub fn all(&self) -> impl Iterator<Item = (&ResKey, &ObjKey, &Value)> {
        self.objects
            .iter()
            .flat_map(|(rk, m)| m.iter().map(move |(ok, v)| (rk, ok, v)))
    }

    /// Every `(resource, object key)` in a namespace.
    pub fn keys_in_namespace(&self, ns: &str) -> Vec<(ResKey, ObjKey)> {
        self.objects
            .iter()
            .flat_map(|(rk, m)| {
                m.keys()
                    .filter(|(n, _)| n == ns)
                    .map(move |ok| (rk.clone(), ok.clone()))
            })
            .collect()
    }

    /// Retained events newer than `rv` for a resource, plus a receiver for
    /// later ones (taken under the same borrow, so nothing is missed).
    pub fn subscribe_from(
        &self,
        def: &ResourceDef,
        rv: u64,
    ) -> (Vec<Arc<StoredEvent>>, broadcast::Receiver<Arc<StoredEvent>>) {
        let (group, plural) = def.storage_key();
        let backlog = self
            .events
            .iter()
            .filter(|e| e.rv > rv && e.group == group && e.plural == plural)
            .cloned()
            .collect();
        (backlog, self.tx.subscribe())
    }
}
