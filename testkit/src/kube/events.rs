//! core/v1 and events.k8s.io/v1 Events are one store, as on a real API
//! server: objects are kept in the core/v1 shape, and requests through
//! events.k8s.io/v1 are converted field by field in both directions.

use serde_json::{Map, Value};

use super::registry::ResourceDef;

/// The events.k8s.io group.
const EVENTS_GROUP: &str = "events.k8s.io";

/// `(core/v1 field, events.k8s.io/v1 field)` for the fields whose names
/// differ; everything else (metadata, reason, type, action, eventTime,
/// series, related, reportingInstance) has the same name in both.
const RENAMED: &[(&str, &str)] = &[
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
    ("reportingComponent", "reportingController"),
];

/// Whether `def` is events.k8s.io/v1 Events (stored as core/v1 Events).
pub(crate) fn is_events_v1(def: &ResourceDef) -> bool {
    def.group == EVENTS_GROUP && def.plural == "events"
}

/// Whether `def` is either group's Events.
pub(crate) fn is_event(def: &ResourceDef) -> bool {
    def.plural == "events" && (def.group.is_empty() || def.group == EVENTS_GROUP)
}

fn rename(obj: Value, from_core: bool) -> Value {
    let Value::Object(mut m) = obj else {
        return obj;
    };
    let mut out = Map::new();
    for (core, v1) in RENAMED {
        let (from, to) = if from_core { (core, v1) } else { (v1, core) };
        // A field of the target's name in the source would be unknown to
        // the source's schema; it loses to the converted one.
        m.remove(*to);
        if let Some(value) = m.remove(*from) {
            out.insert((*to).to_string(), value);
        }
    }
    m.extend(out);
    Value::Object(m)
}

/// A stored (core/v1) Event as events.k8s.io/v1 shows it.
pub(crate) fn core_to_v1(obj: Value) -> Value {
    rename(obj, true)
}

/// An events.k8s.io/v1 Event in the stored (core/v1) shape.
pub(crate) fn v1_to_core(obj: Value) -> Value {
    let mut core = rename(obj, false);
    if let Some(m) = core.as_object_mut() {
        m.insert("apiVersion".into(), Value::String("v1".into()));
    }
    core
}

/// The `involvedObject` / `regarding` fields a field selector can name.
const REFERENCE_FIELDS: &[&str] = &[
    "kind",
    "namespace",
    "name",
    "uid",
    "apiVersion",
    "resourceVersion",
    "fieldPath",
];

/// Whether a real server accepts `field` in a field selector on `def`
/// (Events only; other kinds accept any path here).
fn selectable(def: &ResourceDef, field: &str) -> bool {
    let (reference, component) = if def.group.is_empty() {
        ("involvedObject.", "reportingComponent")
    } else {
        ("regarding.", "reportingController")
    };
    match field.strip_prefix(reference) {
        Some(sub) => REFERENCE_FIELDS.contains(&sub),
        None => {
            field == component
                || matches!(
                    field,
                    "reason" | "source" | "type" | "metadata.name" | "metadata.namespace"
                )
        }
    }
}

/// The object path a field selector names, or the error a real server
/// answers with (`field label not supported`). Most selectable fields of
/// Events are plain paths; `source` selects on the component (in
/// `deprecatedSource` of events.k8s.io Events).
pub(crate) fn selector_path<'a>(def: &ResourceDef, field: &'a str) -> Result<&'a str, String> {
    if !is_event(def) {
        return Ok(field);
    }
    if !selectable(def, field) {
        return Err(format!("field label not supported: {field}"));
    }
    Ok(match field {
        "source" if def.group.is_empty() => "source.component",
        "source" => "deprecatedSource.component",
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn round_trips_and_renames() {
        let core = json!({
            "apiVersion": "v1", "kind": "Event", "metadata": {"name": "e"},
            "involvedObject": {"kind": "Pod", "name": "p"}, "message": "m", "reason": "R",
            "type": "Normal", "count": 2, "source": {"component": "c"},
            "firstTimestamp": "2026-01-01T00:00:00Z", "lastTimestamp": "2026-01-01T00:01:00Z",
            "reportingComponent": "ctl", "reportingInstance": "i",
        });
        let v1 = core_to_v1(core.clone());
        assert_eq!(v1["regarding"]["name"], "p");
        assert_eq!(v1["note"], "m");
        assert_eq!(v1["deprecatedCount"], 2);
        assert_eq!(v1["deprecatedSource"]["component"], "c");
        assert_eq!(v1["deprecatedFirstTimestamp"], "2026-01-01T00:00:00Z");
        assert_eq!(v1["reportingController"], "ctl");
        assert_eq!(v1["reason"], "R");
        assert!(v1.get("involvedObject").is_none() && v1.get("message").is_none());
        assert_eq!(v1_to_core(v1), core);
    }

    #[test]
    fn field_labels_of_each_group() {
        let registry = crate::kube::registry::Registry::with_builtins();
        let def = |group: &str| registry.find_any(group, "events").cloned().unwrap();
        let (core, v1) = (def(""), def(EVENTS_GROUP));
        assert_eq!(
            selector_path(&core, "involvedObject.name"),
            Ok("involvedObject.name")
        );
        assert_eq!(selector_path(&core, "source"), Ok("source.component"));
        assert_eq!(
            selector_path(&v1, "source"),
            Ok("deprecatedSource.component")
        );
        assert_eq!(selector_path(&v1, "regarding.uid"), Ok("regarding.uid"));
        assert!(selector_path(&v1, "involvedObject.name").is_err());
        assert!(selector_path(&core, "regarding.name").is_err());
        assert!(selector_path(&core, "message").is_err());
        assert!(selector_path(&v1, "reportingComponent").is_err());
    }
}
