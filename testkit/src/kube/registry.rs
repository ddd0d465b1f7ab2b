//! Known resources (built-ins and registered CRDs) and the discovery
//! documents built from them.

use std::collections::BTreeMap;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::{Value, json};

/// Paths of the scale subresource inside an object (`.spec.replicas` style).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ScaleDef {
    /// Path of the desired replica count.
    pub spec_replicas: String,
    /// Path of the observed replica count.
    pub status_replicas: String,
    /// Path of the label selector (a string or a `LabelSelector` object).
    pub label_selector: Option<String>,
}

impl ScaleDef {
    fn standard() -> Self {
        Self {
            spec_replicas: ".spec.replicas".into(),
            status_replicas: ".status.replicas".into(),
            label_selector: Some(".spec.selector".into()),
        }
    }
}

/// One resource kind served by the server.
#[derive(Clone, Debug)]
pub(crate) struct ResourceDef {
    /// API group (`""` for the core group).
    pub group: String,
    /// Served versions; the first one is preferred.
    pub versions: Vec<String>,
    /// Plural (the URL segment).
    pub plural: String,
    /// Singular name.
    pub singular: String,
    /// Kind.
    pub kind: String,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// Short names for discovery.
    pub short_names: Vec<String>,
    /// Whether a `/status` subresource exists.
    pub status: bool,
    /// The `/scale` subresource, when the resource has one.
    pub scale: Option<ScaleDef>,
    /// Other subresources (`log`, `token`), served by dedicated handlers.
    pub extra_subresources: Vec<&'static str>,
    /// Whether only `create` is served (TokenReview).
    pub create_only: bool,
    /// Whether the resource came from a CRD (removed when the CRD is deleted).
    pub from_crd: bool,
}

impl ResourceDef {
    fn builtin(group: &str, version: &str, plural: &str, kind: &str, namespaced: bool) -> Self {
        Self {
            group: group.into(),
            versions: vec![version.into()],
            plural: plural.into(),
            singular: kind.to_ascii_lowercase(),
            kind: kind.into(),
            namespaced,
            short_names: Vec::new(),
            status: false,
            scale: None,
            extra_subresources: Vec::new(),
            create_only: false,
            from_crd: false,
        }
    }

    fn with_status(mut self) -> Self {
        self.status = true;
        self
    }

    fn with_scale(mut self) -> Self {
        self.scale = Some(ScaleDef::standard());
        self
    }

    fn with_extra(mut self, sub: &'static str) -> Self {
        self.extra_subresources.push(sub);
        self
    }

    fn with_version(mut self, version: &str) -> Self {
        self.versions.push(version.to_string());
        self
    }

    fn with_short(mut self, names: &[&str]) -> Self {
        self.short_names = names.iter().map(|s| (*s).to_string()).collect();
        self
    }

    /// `apiVersion` for a version of this resource.
    pub fn api_version(&self, version: &str) -> String {
        if self.group.is_empty() {
            version.to_string()
        } else {
            format!("{}/{}", self.group, version)
        }
    }

    /// `(group, plural)` of the store the objects are kept in: their own,
    /// except for events.k8s.io Events, which are core/v1 Events.
    pub fn storage_key(&self) -> (&str, &str) {
        if super::events::is_events_v1(self) {
            ("", "events")
        } else {
            (&self.group, &self.plural)
        }
    }

    /// `plural.group` (or `plural` for the core group), as in error messages.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// Builds a definition from a CRD. Errors name the missing field.
    pub fn from_crd(crd: &CustomResourceDefinition) -> Result<Self, String> {
        let spec = &crd.spec;
        let names = &spec.names;
        if spec.versions.is_empty() {
            return Err("spec.versions is empty".into());
        }
        let served: Vec<_> = spec.versions.iter().filter(|v| v.served).collect();
        if served.is_empty() {
            return Err("no version has served: true".into());
        }
        let sub_version = spec
            .versions
            .iter()
            .find(|v| v.storage)
            .or_else(|| served.first().copied());
        let subresources = sub_version.and_then(|v| v.subresources.as_ref());
        let scale = subresources
            .and_then(|s| s.scale.as_ref())
            .map(|s| ScaleDef {
                spec_replicas: s.spec_replicas_path.clone(),
                status_replicas: s.status_replicas_path.clone(),
                label_selector: s.label_selector_path.clone(),
            });
        Ok(Self {
            group: spec.group.clone(),
            versions: served.iter().map(|v| v.name.clone()).collect(),
            plural: names.plural.clone(),
            singular: names
                .singular
                .clone()
                .unwrap_or_else(|| names.kind.to_ascii_lowercase()),
            kind: names.kind.clone(),
            namespaced: spec.scope == "Namespaced",
            short_names: names.short_names.clone().unwrap_or_default(),
            status: subresources.is_some_and(|s| s.status.is_some()),
            scale,
            extra_subresources: Vec::new(),
            create_only: false,
            from_crd: true,
        })
    }
}

/// Every resource the server knows, keyed by `(group, plural)`.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    resources: BTreeMap<(String, String), ResourceDef>,
}

impl Registry {
    /// A registry with the built-in resources.
    pub fn with_builtins() -> Self {
        let mut r = Self::default();
        let core = |p: &str, k: &str, ns: bool| ResourceDef::builtin("", "v1", p, k, ns);
        for def in [
            core("namespaces", "Namespace", false)
                .with_status()
                .with_short(&["ns"]),
            core("pods", "Pod", true)
                .with_status()
                .with_extra("log")
                .with_short(&["po"]),
            core("configmaps", "ConfigMap", true).with_short(&["cm"]),
            core("secrets", "Secret", true),
            core("serviceaccounts", "ServiceAccount", true)
                .with_extra("token")
                .with_short(&["sa"]),
            core("nodes", "Node", false)
                .with_status()
                .with_short(&["no"]),
            core("events", "Event", true).with_short(&["ev"]),
            core("services", "Service", true)
                .with_status()
                .with_short(&["svc"]),
            core("endpoints", "Endpoints", true).with_short(&["ep"]),
            core("persistentvolumeclaims", "PersistentVolumeClaim", true)
                .with_status()
                .with_short(&["pvc"]),
            ResourceDef::builtin("apps", "v1", "deployments", "Deployment", true)
                .with_status()
                .with_scale()
                .with_short(&["deploy"]),
            ResourceDef::builtin("apps", "v1", "statefulsets", "StatefulSet", true)
                .with_status()
                .with_scale()
                .with_short(&["sts"]),
            ResourceDef::builtin("apps", "v1", "replicasets", "ReplicaSet", true)
                .with_status()
                .with_scale()
                .with_short(&["rs"]),
            ResourceDef::builtin("apps", "v1", "daemonsets", "DaemonSet", true)
                .with_status()
                .with_short(&["ds"]),
            ResourceDef::builtin("batch", "v1", "jobs", "Job", true).with_status(),
            ResourceDef::builtin("batch", "v1", "cronjobs", "CronJob", true)
                .with_status()
                .with_short(&["cj"]),
            ResourceDef::builtin("events.k8s.io", "v1", "events", "Event", true)
                .with_short(&["ev"]),
            ResourceDef::builtin("coordination.k8s.io", "v1", "leases", "Lease", true),
            ResourceDef::builtin(
                "autoscaling",
                "v2",
                "horizontalpodautoscalers",
                "HorizontalPodAutoscaler",
                true,
            )
            .with_status()
            .with_short(&["hpa"])
            .with_version("v1"),
            ResourceDef::builtin(
                "policy",
                "v1",
                "poddisruptionbudgets",
                "PodDisruptionBudget",
                true,
            )
            .with_status()
            .with_short(&["pdb"]),
            ResourceDef::builtin("rbac.authorization.k8s.io", "v1", "roles", "Role", true),
            ResourceDef::builtin(
                "rbac.authorization.k8s.io",
                "v1",
                "rolebindings",
                "RoleBinding",
                true,
            ),
            ResourceDef::builtin(
                "rbac.authorization.k8s.io",
                "v1",
                "clusterroles",
                "ClusterRole",
                false,
            ),
            ResourceDef::builtin(
                "rbac.authorization.k8s.io",
                "v1",
                "clusterrolebindings",
                "ClusterRoleBinding",
                false,
            ),
            ResourceDef::builtin(
                "apiextensions.k8s.io",
                "v1",
                "customresourcedefinitions",
                "CustomResourceDefinition",
                false,
            )
            .with_status()
            .with_short(&["crd", "crds"]),
            {
                let mut d = ResourceDef::builtin(
                    "authentication.k8s.io",
                    "v1",
                    "tokenreviews",
                    "TokenReview",
                    false,
                );
                d.create_only = true;
                d
            },
        ] {
            r.insert(def);
        }
        r
    }

    /// Adds or replaces a resource.
    pub fn insert(&mut self, def: ResourceDef) {
        self.resources
            .insert((def.group.clone(), def.plural.clone()), def);
    }

    /// Removes a resource (a deleted CRD).
    pub fn remove(&mut self, group: &str, plural: &str) -> Option<ResourceDef> {
        self.resources
            .remove(&(group.to_string(), plural.to_string()))
    }

    /// The resource `group/plural`, whatever the version.
    pub fn find_any(&self, group: &str, plural: &str) -> Option<&ResourceDef> {
        self.resources.get(&(group.to_string(), plural.to_string()))
    }

    /// The resource of `kind` in `group`, whatever the version.
    pub fn find_kind(&self, group: &str, kind: &str) -> Option<&ResourceDef> {
        self.resources
            .values()
            .find(|d| d.group == group && d.kind == kind)
    }

    /// The resource served at `group/version/plural`.
    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceDef> {
        self.resources
            .get(&(group.to_string(), plural.to_string()))
            .filter(|d| d.versions.iter().any(|v| v == version))
    }

    /// `/api` (core versions).
    pub fn core_versions(&self, server_address: &str) -> Value {
        json!({
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
        })
    }

    fn groups(&self) -> BTreeMap<&str, Vec<&str>> {
        let mut groups: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for def in self.resources.values().filter(|d| !d.group.is_empty()) {
            let versions = groups.entry(def.group.as_str()).or_default();
            for v in &def.versions {
                if !versions.contains(&v.as_str()) {
                    versions.push(v.as_str());
                }
            }
        }
        groups
    }

    fn group_doc(name: &str, versions: &[&str]) -> Value {
        let vs: Vec<Value> = versions
            .iter()
            .map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v}))
            .collect();
        let preferred = vs.first().cloned().unwrap_or(Value::Null);
        json!({"name": name, "versions": vs, "preferredVersion": preferred})
    }

    /// `/apis` (every non-core group).
    pub fn group_list(&self) -> Value {
        let groups: Vec<Value> = self
            .groups()
            .iter()
            .map(|(name, versions)| Self::group_doc(name, versions))
            .collect();
        json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
    }

    /// `/apis/{group}`.
    pub fn group(&self, group: &str) -> Option<Value> {
        self.groups().get(group).map(|versions| {
            let mut doc = Self::group_doc(group, versions);
            if let Value::Object(m) = &mut doc {
                m.insert("kind".into(), json!("APIGroup"));
                m.insert("apiVersion".into(), json!("v1"));
            }
            doc
        })
    }

    /// `/api/v1` or `/apis/{group}/{version}`; `None` when nothing is served there.
    pub fn resource_list(&self, group: &str, version: &str) -> Option<Value> {
        let mut resources = Vec::new();
        for def in self
            .resources
            .values()
            .filter(|d| d.group == group && d.versions.iter().any(|v| v == version))
        {
            let verbs: Vec<&str> = if def.create_only {
                vec!["create"]
            } else {
                vec![
                    "create",
                    "delete",
                    "deletecollection",
                    "get",
                    "list",
                    "patch",
                    "update",
                    "watch",
                ]
            };
            resources.push(json!({
                "name": def.plural,
                "singularName": def.singular,
                "namespaced": def.namespaced,
                "kind": def.kind,
                "verbs": verbs,
                "shortNames": def.short_names,
            }));
            if def.status {
                resources.push(json!({
                    "name": format!("{}/status", def.plural),
                    "singularName": "",
                    "namespaced": def.namespaced,
                    "kind": def.kind,
                    "verbs": ["get", "patch", "update"],
                }));
            }
            if def.scale.is_some() {
                resources.push(json!({
                    "name": format!("{}/scale", def.plural),
                    "singularName": "",
                    "namespaced": def.namespaced,
                    "group": "autoscaling",
                    "version": "v1",
                    "kind": "Scale",
                    "verbs": ["get", "patch", "update"],
                }));
            }
            for sub in &def.extra_subresources {
                let (kind, verbs, g, v) = match *sub {
                    "token" => (
                        "TokenRequest",
                        vec!["create"],
                        "authentication.k8s.io",
                        "v1",
                    ),
                    _ => ("Pod", vec!["get"], "", "v1"),
                };
                resources.push(json!({
                    "name": format!("{}/{}", def.plural, sub),
                    "singularName": "",
                    "namespaced": def.namespaced,
                    "group": g,
                    "version": v,
                    "kind": kind,
                    "verbs": verbs,
                }));
            }
        }
        if resources.is_empty() {
            return None;
        }
        let group_version = if group.is_empty() {
            version.to_string()
        } else {
            format!("{group}/{version}")
        };
        Some(json!({
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": group_version,
            "resources": resources,
        }))
    }
}
