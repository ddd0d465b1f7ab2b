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

/// The object path a field selector names. Most selectable fields of
/// Events are plain paths; `source` (core) and `deprecatedSource`
/// (events.k8s.io) select on the component.
pub(crate) fn selector_path<'a>(def: &ResourceDef, field: &'a str) -> &'a str {
    if !is_event(def) {
        return field;
    }
    match field {
        "source" if def.group.is_empty() => "source.component",
        "deprecatedSource" if def.group == EVENTS_GROUP => "deprecatedSource.component",
        other => other,
    }
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
}
