//! What a real API server does to built-in objects on every write:
//! defaulting (`SetDefaults_*` of k8s.io/kubernetes), the fields its
//! strategies set on create, and dropping zero values of `omitempty`
//! non-pointer fields (Go's encoder never writes them, so they are absent
//! from responses and watch events).
//!
//! Only built-in kinds are defaulted; CRD schema defaults are not applied.

use serde_json::{Map, Value, json};

use super::registry::ResourceDef;

/// Sets `key` unless it holds a value (`null` counts as absent: Go decodes
/// it to nil, which defaulting then fills).
fn set_default(map: &mut Map<String, Value>, key: &str, value: Value) {
    if map.get(key).is_none_or(Value::is_null) {
        map.insert(key.to_string(), value);
    }
}

/// The object under `key`, created when absent (a non-pointer struct field
/// always exists in Go). `None` when the field holds something else.
fn object<'a>(map: &'a mut Map<String, Value>, key: &str) -> Option<&'a mut Map<String, Value>> {
    if map.get(key).is_none_or(Value::is_null) {
        map.insert(key.to_string(), json!({}));
    }
    map.get_mut(key).and_then(Value::as_object_mut)
}

/// The object under `key` when the request has one.
fn existing<'a>(map: &'a mut Map<String, Value>, key: &str) -> Option<&'a mut Map<String, Value>> {
    map.get_mut(key).and_then(Value::as_object_mut)
}

/// `Always` for `:latest` or untagged images, `IfNotPresent` otherwise.
fn pull_policy(image: &str) -> &'static str {
    if image.contains('@') {
        return "IfNotPresent";
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, tag)) if tag != "latest" => "IfNotPresent",
        _ => "Always",
    }
}

fn containers(spec: &mut Map<String, Value>, key: &str) {
    let Some(list) = spec.get_mut(key).and_then(Value::as_array_mut) else {
        return;
    };
    for c in list.iter_mut().filter_map(Value::as_object_mut) {
        set_default(c, "terminationMessagePath", json!("/dev/termination-log"));
        set_default(c, "terminationMessagePolicy", json!("File"));
        let policy = pull_policy(c.get("image").and_then(Value::as_str).unwrap_or_default());
        set_default(c, "imagePullPolicy", json!(policy));
        set_default(c, "resources", json!({}));
        if let Some(ports) = c.get_mut("ports").and_then(Value::as_array_mut) {
            for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                set_default(p, "protocol", json!("TCP"));
            }
        }
    }
}

/// `SetDefaults_PodSpec` and `SetDefaults_Container`.
fn pod_spec(spec: &mut Map<String, Value>) {
    set_default(spec, "restartPolicy", json!("Always"));
    set_default(spec, "dnsPolicy", json!("ClusterFirst"));
    set_default(spec, "terminationGracePeriodSeconds", json!(30));
    set_default(spec, "securityContext", json!({}));
    set_default(spec, "schedulerName", json!("default-scheduler"));
    containers(spec, "initContainers");
    containers(spec, "containers");
}

/// Pod defaults of a `template` (when the request has a pod spec).
fn template(spec: &mut Map<String, Value>) {
    if let Some(pod) = existing(spec, "template").and_then(|t| existing(t, "spec")) {
        pod_spec(pod);
    }
}

fn deployment(spec: &mut Map<String, Value>) {
    set_default(spec, "replicas", json!(1));
    set_default(spec, "revisionHistoryLimit", json!(10));
    set_default(spec, "progressDeadlineSeconds", json!(600));
    if let Some(strategy) = object(spec, "strategy") {
        set_default(strategy, "type", json!("RollingUpdate"));
        if strategy.get("type") == Some(&json!("RollingUpdate"))
            && let Some(rolling) = object(strategy, "rollingUpdate")
        {
            set_default(rolling, "maxUnavailable", json!("25%"));
            set_default(rolling, "maxSurge", json!("25%"));
        }
    }
    template(spec);
}

fn statefulset(spec: &mut Map<String, Value>) {
    set_default(spec, "replicas", json!(1));
    set_default(spec, "podManagementPolicy", json!("OrderedReady"));
    set_default(spec, "revisionHistoryLimit", json!(10));
    if let Some(strategy) = object(spec, "updateStrategy") {
        set_default(strategy, "type", json!("RollingUpdate"));
        if strategy.get("type") == Some(&json!("RollingUpdate"))
            && let Some(rolling) = object(strategy, "rollingUpdate")
        {
            set_default(rolling, "partition", json!(0));
        }
    }
    if let Some(policy) = object(spec, "persistentVolumeClaimRetentionPolicy") {
        set_default(policy, "whenDeleted", json!("Retain"));
        set_default(policy, "whenScaled", json!("Retain"));
    }
    template(spec);
}

fn daemonset(spec: &mut Map<String, Value>) {
    set_default(spec, "revisionHistoryLimit", json!(10));
    if let Some(strategy) = object(spec, "updateStrategy") {
        set_default(strategy, "type", json!("RollingUpdate"));
        if strategy.get("type") == Some(&json!("RollingUpdate"))
            && let Some(rolling) = object(strategy, "rollingUpdate")
        {
            set_default(rolling, "maxUnavailable", json!(1));
            set_default(rolling, "maxSurge", json!(0));
        }
    }
    template(spec);
}

fn job(spec: &mut Map<String, Value>) {
    if spec.get("completions").is_none_or(Value::is_null)
        && spec.get("parallelism").is_none_or(Value::is_null)
    {
        spec.insert("completions".into(), json!(1));
    }
    set_default(spec, "parallelism", json!(1));
    set_default(spec, "backoffLimit", json!(6));
    set_default(spec, "completionMode", json!("NonIndexed"));
    set_default(spec, "suspend", json!(false));
    let replacement = if spec.get("podFailurePolicy").is_some_and(|p| !p.is_null()) {
        "Failed"
    } else {
        "TerminatingOrFailed"
    };
    set_default(spec, "podReplacementPolicy", json!(replacement));
    template(spec);
}

fn cronjob(spec: &mut Map<String, Value>) {
    set_default(spec, "suspend", json!(false));
    set_default(spec, "concurrencyPolicy", json!("Allow"));
    set_default(spec, "successfulJobsHistoryLimit", json!(3));
    set_default(spec, "failedJobsHistoryLimit", json!(1));
    if let Some(job_spec) = existing(spec, "jobTemplate").and_then(|t| existing(t, "spec")) {
        template(job_spec);
    }
}

fn service(spec: &mut Map<String, Value>) {
    set_default(spec, "type", json!("ClusterIP"));
    set_default(spec, "sessionAffinity", json!("None"));
    set_default(spec, "internalTrafficPolicy", json!("Cluster"));
    if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
        for p in ports.iter_mut().filter_map(Value::as_object_mut) {
            set_default(p, "protocol", json!("TCP"));
            if let Some(port) = p.get("port").cloned() {
                set_default(p, "targetPort", port);
            }
        }
    }
}

/// Applies the defaults of a built-in kind to an object being written.
pub(crate) fn apply(def: &ResourceDef, obj: &mut Value) {
    if def.from_crd {
        return;
    }
    let Some(m) = obj.as_object_mut() else {
        return;
    };
    let kind: fn(&mut Map<String, Value>) = match (def.group.as_str(), def.plural.as_str()) {
        ("apps", "deployments") => deployment,
        ("apps", "statefulsets") => statefulset,
        ("apps", "replicasets") => |s| {
            set_default(s, "replicas", json!(1));
            template(s);
        },
        ("apps", "daemonsets") => daemonset,
        ("batch", "jobs") => job,
        ("batch", "cronjobs") => cronjob,
        ("", "services") => service,
        ("", "pods") => |s| {
            pod_spec(s);
            set_default(s, "enableServiceLinks", json!(true));
        },
        ("", "persistentvolumeclaims") => |s| set_default(s, "volumeMode", json!("Filesystem")),
        ("", "secrets") => {
            set_default(m, "type", json!("Opaque"));
            return;
        }
        ("", "namespaces") => {
            let name = m
                .get("metadata")
                .and_then(|meta| meta.get("name"))
                .cloned()
                .unwrap_or(Value::Null);
            if let Some(labels) = object(m, "metadata").and_then(|meta| object(meta, "labels")) {
                labels.insert("kubernetes.io/metadata.name".into(), name);
            }
            return;
        }
        _ => return,
    };
    if let Some(spec) = object(m, "spec") {
        kind(spec);
    }
}

/// The fields a real server's strategy sets when an object is created:
/// the initial status of kinds with a status subresource, a namespace's
/// `kubernetes` finalizer, a Job's generated selector and pod labels.
pub(crate) fn on_create(def: &ResourceDef, obj: &mut Value, uid: &str) {
    if def.from_crd {
        return;
    }
    let Some(m) = obj.as_object_mut() else {
        return;
    };
    let status = match (def.group.as_str(), def.plural.as_str()) {
        ("", "namespaces") => {
            if let Some(spec) = object(m, "spec") {
                set_default(spec, "finalizers", json!(["kubernetes"]));
            }
            json!({"phase": "Active"})
        }
        ("", "pods") => json!({"phase": "Pending", "qosClass": qos_class(m)}),
        ("", "persistentvolumeclaims") => json!({"phase": "Pending"}),
        ("", "services") => json!({"loadBalancer": {}}),
        ("batch", "jobs") => {
            job_selector(m, uid);
            json!({})
        }
        ("", "nodes") => return,
        _ if def.status => json!({}),
        _ => return,
    };
    if m.get("status").is_none_or(Value::is_null) {
        m.insert("status".into(), status);
    }
}

/// A Job without `manualSelector` selects its pods by its uid; its pod
/// template carries the labels that select them.
fn job_selector(m: &mut Map<String, Value>, uid: &str) {
    let name = m
        .get("metadata")
        .and_then(|meta| meta.get("name"))
        .cloned()
        .unwrap_or(Value::Null);
    let Some(spec) = object(m, "spec") else {
        return;
    };
    if spec.get("manualSelector") == Some(&json!(true)) {
        return;
    }
    spec.insert(
        "selector".into(),
        json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}),
    );
    if let Some(labels) = object(spec, "template")
        .and_then(|t| object(t, "metadata"))
        .and_then(|meta| object(meta, "labels"))
    {
        for (key, value) in [
            ("batch.kubernetes.io/controller-uid", json!(uid)),
            ("batch.kubernetes.io/job-name", name.clone()),
            ("controller-uid", json!(uid)),
            ("job-name", name),
        ] {
            labels.insert(key.into(), value);
        }
    }
}

/// `Guaranteed` when every container limits cpu and memory with requests
/// equal to the limits, `BestEffort` without any requests or limits,
/// `Burstable` otherwise.
fn qos_class(pod: &Map<String, Value>) -> &'static str {
    let all: Vec<&Value> = ["initContainers", "containers"]
        .iter()
        .filter_map(|k| pod.get("spec").and_then(|s| s.get(*k)))
        .filter_map(Value::as_array)
        .flatten()
        .collect();
    let resources = |c: &Value, which: &str| {
        c.pointer(&format!("/resources/{which}"))
            .and_then(Value::as_object)
            .filter(|m| !m.is_empty())
            .cloned()
    };
    if all
        .iter()
        .all(|c| resources(c, "requests").is_none() && resources(c, "limits").is_none())
    {
        return "BestEffort";
    }
    let guaranteed = all.iter().all(|c| {
        let Some(limits) = resources(c, "limits") else {
            return false;
        };
        let requests = resources(c, "requests").unwrap_or_else(|| limits.clone());
        ["cpu", "memory"].iter().all(|r| limits.contains_key(*r))
            && requests.iter().all(|(k, v)| limits.get(k) == Some(v))
            && limits.keys().all(|k| requests.contains_key(k))
    });
    if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// `omitempty` fields without a pointer type, by `(group, plural)` of the
/// stored object: a zero value (`0`, `""`, `false`) is not written.
const OMIT_EMPTY: &[(&str, &str, &[&str])] = &[
    (
        "apps",
        "deployments",
        &[
            "spec.paused",
            "spec.minReadySeconds",
            "status.observedGeneration",
            "status.replicas",
            "status.updatedReplicas",
            "status.readyReplicas",
            "status.availableReplicas",
            "status.unavailableReplicas",
        ],
    ),
    (
        "apps",
        "statefulsets",
        &[
            "spec.minReadySeconds",
            "status.observedGeneration",
            "status.readyReplicas",
            "status.currentReplicas",
            "status.updatedReplicas",
            "status.currentRevision",
            "status.updateRevision",
        ],
    ),
    (
        "apps",
        "replicasets",
        &[
            "spec.minReadySeconds",
            "status.observedGeneration",
            "status.fullyLabeledReplicas",
            "status.readyReplicas",
            "status.availableReplicas",
        ],
    ),
    (
        "apps",
        "daemonsets",
        &[
            "spec.minReadySeconds",
            "status.observedGeneration",
            "status.updatedNumberScheduled",
            "status.numberAvailable",
            "status.numberUnavailable",
        ],
    ),
    (
        "batch",
        "jobs",
        &["status.active", "status.succeeded", "status.failed"],
    ),
    (
        "",
        "events",
        &["count", "reason", "message", "type", "action"],
    ),
];

/// Whether a JSON value is Go's zero value of a scalar.
pub(crate) fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(_) | Value::Object(_) => false,
    }
}

/// Removes zero values of `omitempty` scalar fields of a stored object.
pub(crate) fn omit_zero(storage: (&str, &str), obj: &mut Value) {
    let Some((_, _, paths)) = OMIT_EMPTY.iter().find(|(g, p, _)| (*g, *p) == storage) else {
        return;
    };
    for path in *paths {
        let (parent, field) = match path.rsplit_once('.') {
            Some((parent, field)) => (Some(parent), field),
            None => (None, *path),
        };
        let holder = match parent {
            Some(p) => p.split('.').try_fold(&mut *obj, |cur, k| cur.get_mut(k)),
            None => Some(&mut *obj),
        };
        if let Some(map) = holder.and_then(Value::as_object_mut)
            && map.get(field).is_some_and(is_zero)
        {
            map.remove(field);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_pull_policies() {
        assert_eq!(pull_policy("nginx"), "Always");
        assert_eq!(pull_policy("nginx:latest"), "Always");
        assert_eq!(pull_policy("nginx:1.27"), "IfNotPresent");
        assert_eq!(pull_policy("localhost:5000/app"), "Always");
        assert_eq!(pull_policy("localhost:5000/app:v1"), "IfNotPresent");
        assert_eq!(pull_policy("app@sha256:abc"), "IfNotPresent");
    }

    #[test]
    fn zero_values_of_omitempty_fields_are_dropped() {
        let mut d = json!({"spec": {"replicas": 0, "paused": false},
            "status": {"replicas": 0, "readyReplicas": 2, "conditions": []}});
        omit_zero(("apps", "deployments"), &mut d);
        assert_eq!(
            d,
            json!({"spec": {"replicas": 0}, "status": {"readyReplicas": 2, "conditions": []}})
        );
    }

    #[test]
    fn qos_classes() {
        let pod = |resources: Value| {
            json!({"spec": {"containers": [{"name": "c", "resources": resources}]}})
                .as_object()
                .cloned()
                .unwrap_or_default()
        };
        assert_eq!(qos_class(&pod(json!({}))), "BestEffort");
        assert_eq!(
            qos_class(&pod(json!({"requests": {"cpu": "1"}}))),
            "Burstable"
        );
        assert_eq!(
            qos_class(&pod(json!({"limits": {"cpu": "1", "memory": "1Gi"}}))),
            "Guaranteed"
        );
    }
}
