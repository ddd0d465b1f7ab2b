//! What controllers of a real cluster put into every namespace: the
//! `kube-root-ca.crt` ConfigMap (the root CA publisher) and the `default`
//! ServiceAccount (the service account controller). Both are created with
//! the namespace and put back when deleted or changed.

use serde_json::{Value, json};

use super::objects::State;

/// The ConfigMap with the cluster's CA bundle in every namespace.
pub(crate) const ROOT_CA_CONFIG_MAP: &str = "kube-root-ca.crt";

/// Its key.
pub(crate) const ROOT_CA_KEY: &str = "ca.crt";

/// The ServiceAccount every namespace has.
pub(crate) const DEFAULT_SERVICE_ACCOUNT: &str = "default";

/// The annotation a real cluster puts on `kube-root-ca.crt`.
const DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";

/// The CA bundle published until a TLS listener sets its own: a
/// self-signed CA certificate whose key was thrown away (the plain HTTP
/// listener has no CA).
pub(crate) const PLACEHOLDER_CA_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBpjCCAU2gAwIBAgIUKu5FU4zhnJeHHm3Nq4x9UI+YXQowCgYIKoZIzj0EAwIw
IDEeMBwGA1UEAwwVaGliZXJuYXRvci10ZXN0a2l0LWNhMCAXDTI2MTIwNDAzMDYz
MFoYDzIxMjYxMTEwMDMwNjMwWjAgMR4wHAYDVQQDDBVoaWJlcm5hdG9yLXRlc3Rr
aXQtY2EwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAASAtdgUoPrgEhF28CY26eGe
O15PIMLxzUKPQ0AtzPvIr/HwmRYEBJHHjZinRwIK55YG6Xu4nKlLf8vRaf+NkXmt
o2MwYTAdBgNVHQ4EFgQUWOGdl0B21RHyuVOt/IRSks6tkPYwHwYDVR0jBBgwFoAU
WOGdl0B21RHyuVOt/IRSks6tkPYwDwYDVR0TAQH/BAUwAwEB/zAOBgNVHQ8BAf8E
BAMCAYYwCgYIKoZIzj0EAwIDRwAwRAIgVemacBHkfWIO0vJL1rjXyGXrEZHfN+S4
Js7Qse2JcpQCIFRQH/sI5r/HA8s3DG7Jbe8BrFq1lh80c7lC+o7a6aPj
-----END CERTIFICATE-----
";

impl State {
    /// Sets the CA bundle `kube-root-ca.crt` publishes (a TLS listener's
    /// CA) and updates every namespace's copy.
    pub(crate) fn set_root_ca_pem(&mut self, pem: &str) {
        self.root_ca_pem = pem.to_string();
        self.publish_namespaces();
    }

    /// Creates or repairs the per-namespace objects of every namespace that
    /// is not being deleted. Returns whether anything was written.
    pub(crate) fn publish_namespaces(&mut self) -> bool {
        let Some(ns_def) = self.def("", "namespaces") else {
            return false;
        };
        let names: Vec<String> = self
            .store
            .list(&ns_def, None)
            .filter(|(_, ns)| {
                ns.pointer("/metadata/deletionTimestamp")
                    .is_none_or(Value::is_null)
            })
            .map(|((_, name), _)| name.clone())
            .collect();
        let mut changed = false;
        for name in names {
            changed |= self.publish_namespace(&name);
        }
        changed
    }

    /// Creates or repairs `kube-root-ca.crt` and the `default`
    /// ServiceAccount in one namespace. Returns whether anything was written.
    pub(crate) fn publish_namespace(&mut self, ns: &str) -> bool {
        let mut changed = false;
        if let Some(cm_def) = self.def("", "configmaps") {
            let want = json!({ROOT_CA_KEY: self.root_ca_pem});
            match self.store.get(&cm_def, ns, ROOT_CA_CONFIG_MAP).cloned() {
                None => {
                    let cm = json!({
                        "metadata": {
                            "name": ROOT_CA_CONFIG_MAP,
                            "annotations": {"kubernetes.io/description": DESCRIPTION},
                        },
                        "data": want,
                    });
                    changed |= self.create(&cm_def, "v1", ns, cm).is_ok();
                }
                Some(cm)
                    if cm.get("data") != Some(&want)
                        || cm
                            .pointer("/metadata/annotations/kubernetes.io~1description")
                            .and_then(Value::as_str)
                            .is_none_or(str::is_empty) =>
                {
                    let mut fixed = cm.clone();
                    fixed["data"] = want;
                    if let Some(meta) = fixed.get_mut("metadata").and_then(Value::as_object_mut) {
                        let annotations = meta.entry("annotations").or_insert_with(|| json!({}));
                        if !annotations.is_object() {
                            *annotations = json!({});
                        }
                        annotations["kubernetes.io/description"] = json!(DESCRIPTION);
                    }
                    changed |= self
                        .commit(&cm_def, ns, ROOT_CA_CONFIG_MAP, &cm, fixed)
                        .is_ok();
                }
                Some(_) => {}
            }
        }
        if let Some(sa_def) = self.def("", "serviceaccounts")
            && self
                .store
                .get(&sa_def, ns, DEFAULT_SERVICE_ACCOUNT)
                .is_none()
        {
            let sa = json!({"metadata": {"name": DEFAULT_SERVICE_ACCOUNT}});
            changed |= self.create(&sa_def, "v1", ns, sa).is_ok();
        }
        changed
    }
}
