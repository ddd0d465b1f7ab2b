//! The restore data of one plan in a ConfigMap (`hibernator-restore-<plan>`,
//! [`restore_config_map_name`]).
//!
//! One data key per target (target names are DNS labels, so they are valid
//! ConfigMap keys); each value is the target's [`RestoreRecord`] as compact
//! JSON. Writes are optimistic: every replace carries the ConfigMap's
//! `resourceVersion`, so two writers can never overwrite each other's keys.

use std::collections::BTreeMap;

use async_trait::async_trait;
use hibernator_core::restore::{RestoreRecord, RestoreStore, StoreError, Versioned, decode_record};
use hibernator_core::wellknown::{LABEL_PLAN, plan_label, restore_config_map_name};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams};

/// Maximum total size of a ConfigMap's data (keys plus values), as enforced by
/// the Kubernetes API server.
pub const CONFIG_MAP_LIMIT_BYTES: usize = 1024 * 1024;

/// How often one `save`/`delete` re-reads the ConfigMap itself when another
/// writer changed a *different* key between the read and the write, before it
/// reports [`StoreError::Conflict`] to the caller.
const MAX_INTERNAL_RETRIES: u32 = 32;

/// [`RestoreStore`] backed by the ConfigMap `hibernator-restore-<plan>` in the
/// plan's namespace.
///
/// A record's version is `<resourceVersion>/<content hash>`. A save succeeds
/// when the target's stored value still has the content the caller read (or
/// is still absent); it is then written with the ConfigMap's current
/// `resourceVersion`, and when another writer changed a different key in
/// between, the store re-reads and re-applies the single-key change itself.
/// When the same key changed, the save fails with [`StoreError::Conflict`]
/// and `update_record` re-reads and merges.
#[derive(Clone)]
pub struct ConfigMapRestoreStore {
    api: Api<ConfigMap>,
    namespace: String,
    plan: String,
    name: String,
    owner: Option<OwnerReference>,
}

impl std::fmt::Debug for ConfigMapRestoreStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigMapRestoreStore")
            .field("namespace", &self.namespace)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Errors specific to the ConfigMap store, wrapped in [`StoreError::Backend`].
#[derive(Debug, thiserror::Error)]
pub enum ConfigMapStoreError {
    /// Writing the record would exceed the ConfigMap size limit.
    #[error(
        "restore data of plan {namespace}/{plan} would be {size} bytes after writing target {target:?}, \
         over the {limit}-byte ConfigMap limit; reduce the number of resources per target or split the plan"
    )]
    TooLarge {
        /// Plan namespace.
        namespace: String,
        /// Plan name.
        plan: String,
        /// Target being written.
        target: String,
        /// Total data size the ConfigMap would have.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A Kubernetes API call failed.
    #[error("{verb} of ConfigMap {namespace}/{name} failed: {source}")]
    Api {
        /// What was attempted (get, create, replace, delete).
        verb: &'static str,
        /// ConfigMap namespace.
        namespace: String,
        /// ConfigMap name.
        name: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
}

impl ConfigMapRestoreStore {
    /// A store for `plan` in `namespace` (the ConfigMap is created on first write).
    pub fn new(client: kube::Client, namespace: &str, plan: &str) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_string(),
            plan: plan.to_string(),
            name: restore_config_map_name(plan),
            owner: None,
        }
    }

    /// Sets the owner reference (normally the plan) put on the ConfigMap when
    /// this store creates it, or added when an existing one lacks it.
    pub fn with_owner(mut self, owner: OwnerReference) -> Self {
        self.owner = Some(owner);
        self
    }

    /// Name of the ConfigMap this store uses.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Namespace of the ConfigMap.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Total size in bytes of the stored data (keys plus values); 0 when the
    /// ConfigMap does not exist.
    pub async fn data_bytes(&self) -> Result<usize, StoreError> {
        Ok(self.get().await?.map_or(0, |cm| data_size(&cm)))
    }

    /// Deletes the whole ConfigMap; returns whether it existed.
    pub async fn delete_all(&self) -> Result<bool, StoreError> {
        match self.api.delete(&self.name, &DeleteParams::default()).await {
            Ok(_) => Ok(true),
            Err(e) if status_code(&e) == Some(404) => Ok(false),
            Err(e) => Err(self.api_error("delete", e)),
        }
    }

    async fn get(&self) -> Result<Option<ConfigMap>, StoreError> {
        self.api
            .get_opt(&self.name)
            .await
            .map_err(|e| self.api_error("get", e))
    }

    fn location(&self, target: &str) -> String {
        format!("ConfigMap {}/{} key {target:?}", self.namespace, self.name)
    }

    fn api_error(&self, verb: &'static str, source: kube::Error) -> StoreError {
        let transient = is_transient(&source);
        StoreError::Backend {
            transient,
            source: Box::new(ConfigMapStoreError::Api {
                verb,
                namespace: self.namespace.clone(),
                name: self.name.clone(),
                source,
            }),
        }
    }

    fn decode(
        &self,
        target: &str,
        raw: &str,
        rv: &str,
    ) -> Result<Versioned<RestoreRecord>, StoreError> {
        let value: serde_json::Value =
            serde_json::from_str(raw).map_err(|e| StoreError::Corrupt {
                location: self.location(target),
                message: e.to_string(),
            })?;
        let record = decode_record(value, &self.location(target))?;
        if record.target != target {
            return Err(StoreError::Corrupt {
                location: self.location(target),
                message: format!("record names target {:?}", record.target),
            });
        }
        Ok(Versioned {
            value: record,
            version: version_of(rv, raw),
        })
    }

    fn check_size(&self, cm: &ConfigMap, target: &str) -> Result<(), StoreError> {
        let size = data_size(cm);
        if size > CONFIG_MAP_LIMIT_BYTES {
            return Err(StoreError::Backend {
                transient: false,
                source: Box::new(ConfigMapStoreError::TooLarge {
                    namespace: self.namespace.clone(),
                    plan: self.plan.clone(),
                    target: target.to_string(),
                    size,
                    limit: CONFIG_MAP_LIMIT_BYTES,
                }),
            });
        }
        Ok(())
    }

    fn new_config_map(&self, target: &str, raw: String) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                namespace: Some(self.namespace.clone()),
                labels: Some(BTreeMap::from([(
                    LABEL_PLAN.to_string(),
                    plan_label(&self.plan),
                )])),
                owner_references: self.owner.clone().map(|o| vec![o]),
                ..ObjectMeta::default()
            },
            data: Some(BTreeMap::from([(target.to_string(), raw)])),
            ..ConfigMap::default()
        }
    }

    fn ensure_owner(&self, cm: &mut ConfigMap) {
        if let Some(owner) = &self.owner {
            let refs = cm.metadata.owner_references.get_or_insert_with(Vec::new);
            if !refs.iter().any(|r| r.uid == owner.uid) {
                // A plan deleted and re-created under the same name has a new
                // uid: its stale reference goes (only one controller allowed).
                refs.retain(|r| !(r.kind == owner.kind && r.api_version == owner.api_version));
                refs.push(owner.clone());
            }
        }
    }

    fn conflict(target: &str, expected: Option<&str>, found: Option<String>) -> StoreError {
        StoreError::Conflict {
            target: target.to_string(),
            expected: expected.map(str::to_string),
            found,
        }
    }
}

#[async_trait]
impl RestoreStore for ConfigMapRestoreStore {
    async fn load(&self, target: &str) -> Result<Option<Versioned<RestoreRecord>>, StoreError> {
        let Some(cm) = self.get().await? else {
            return Ok(None);
        };
        let rv = cm.metadata.resource_version.as_deref().unwrap_or_default();
        match cm.data.as_ref().and_then(|d| d.get(target)) {
            Some(raw) => self.decode(target, raw, rv).map(Some),
            None => Ok(None),
        }
    }

    async fn load_all(&self) -> Result<Vec<Versioned<RestoreRecord>>, StoreError> {
        let Some(cm) = self.get().await? else {
            return Ok(Vec::new());
        };
        let rv = cm.metadata.resource_version.as_deref().unwrap_or_default();
        // BTreeMap iteration is sorted by key, i.e. by target.
        cm.data
            .iter()
            .flatten()
            .map(|(target, raw)| self.decode(target, raw, rv))
            .collect()
    }

    async fn save(
        &self,
        record: &RestoreRecord,
        expected_version: Option<&str>,
    ) -> Result<String, StoreError> {
        let target = record.target.as_str();
        let raw = serde_json::to_string(record).map_err(|source| StoreError::Encode {
            target: target.to_string(),
            source,
        })?;
        let expected_hash = expected_version.map(content_hash_of);
        for _ in 0..MAX_INTERNAL_RETRIES {
            let Some(mut cm) = self.get().await? else {
                if expected_version.is_some() {
                    return Err(Self::conflict(target, expected_version, None));
                }
                let cm = self.new_config_map(target, raw.clone());
                self.check_size(&cm, target)?;
                match self.api.create(&PostParams::default(), &cm).await {
                    Ok(created) => {
                        let rv = created.metadata.resource_version.unwrap_or_default();
                        return Ok(version_of(&rv, &raw));
                    }
                    // Created concurrently by another writer: re-read.
                    Err(e) if status_code(&e) == Some(409) => continue,
                    Err(e) => return Err(self.api_error("create", e)),
                }
            };
            let rv = cm.metadata.resource_version.clone().unwrap_or_default();
            let current = cm.data.as_ref().and_then(|d| d.get(target));
            let current_hash = current.map(|c| format!("{:016x}", fnv1a(c.as_bytes())));
            if current_hash.as_deref() != expected_hash {
                return Err(Self::conflict(
                    target,
                    expected_version,
                    current.map(|c| version_of(&rv, c)),
                ));
            }
            cm.data
                .get_or_insert_with(BTreeMap::new)
                .insert(target.to_string(), raw.clone());
            self.check_size(&cm, target)?;
            self.ensure_owner(&mut cm);
            match self
                .api
                .replace(&self.name, &PostParams::default(), &cm)
                .await
            {
                Ok(written) => {
                    let rv = written.metadata.resource_version.unwrap_or_default();
                    return Ok(version_of(&rv, &raw));
                }
                // Another key changed (or the map was deleted) meanwhile: re-read.
                Err(e) if matches!(status_code(&e), Some(409 | 404)) => continue,
                Err(e) => return Err(self.api_error("replace", e)),
            }
        }
        Err(Self::conflict(target, expected_version, None))
    }

    async fn delete(&self, target: &str) -> Result<bool, StoreError> {
        for _ in 0..MAX_INTERNAL_RETRIES {
            let Some(mut cm) = self.get().await? else {
                return Ok(false);
            };
            let removed = cm.data.as_mut().and_then(|d| d.remove(target));
            if removed.is_none() {
                return Ok(false);
            }
            match self
                .api
                .replace(&self.name, &PostParams::default(), &cm)
                .await
            {
                Ok(_) => return Ok(true),
                Err(e) if status_code(&e) == Some(409) => continue,
                Err(e) if status_code(&e) == Some(404) => return Ok(false),
                Err(e) => return Err(self.api_error("replace", e)),
            }
        }
        Err(Self::conflict(target, None, None))
    }
}

/// Total size of a ConfigMap's data and binary data (keys plus values).
fn data_size(cm: &ConfigMap) -> usize {
    let data: usize = cm
        .data
        .iter()
        .flatten()
        .map(|(k, v)| k.len() + v.len())
        .sum();
    let binary: usize = cm
        .binary_data
        .iter()
        .flatten()
        .map(|(k, v)| k.len() + v.0.len())
        .sum();
    data + binary
}

/// The opaque record version: the ConfigMap's `resourceVersion` and a hash of
/// the stored value.
fn version_of(resource_version: &str, raw: &str) -> String {
    format!("{resource_version}/{:016x}", fnv1a(raw.as_bytes()))
}

/// The content-hash part of a version produced by [`version_of`].
fn content_hash_of(version: &str) -> &str {
    version.rsplit_once('/').map_or(version, |(_, h)| h)
}

/// 64-bit FNV-1a: a stable (cross-process, cross-release) content hash.
fn fnv1a(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes
        .iter()
        .fold(OFFSET, |h, b| (h ^ u64::from(*b)).wrapping_mul(PRIME))
}

/// The HTTP status of an API error, if it is one.
pub fn status_code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

/// True when retrying a failed Kubernetes call may succeed.
pub fn is_transient(e: &kube::Error) -> bool {
    match status_code(e) {
        Some(code) => code == 429 || code >= 500 || code == 409,
        None => !matches!(
            e,
            kube::Error::SerdeError(_) | kube::Error::BuildRequest(_) | kube::Error::Discovery(_)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_by_content() {
        let v1 = version_of("10", "{\"a\":1}");
        let v2 = version_of("11", "{\"a\":1}");
        assert_ne!(v1, v2);
        assert_eq!(content_hash_of(&v1), content_hash_of(&v2));
        assert_ne!(
            content_hash_of(&v1),
            content_hash_of(&version_of("10", "{\"a\":2}"))
        );
    }

    #[test]
    fn size_counts_keys_and_values() {
        let cm = ConfigMap {
            data: Some(BTreeMap::from([("ab".to_string(), "cde".to_string())])),
            ..ConfigMap::default()
        };
        assert_eq!(data_size(&cm), 5);
    }
}
