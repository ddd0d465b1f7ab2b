//! Helpers shared by the Kubernetes executors: paginated lists, patch
//! parameters, labels/annotations of dynamic objects, and (de)serializing
//! restore states.

use std::collections::BTreeMap;

use hibernator_core::executor::{ExecutorError, category};
use kube::api::{Api, DynamicObject, ListParams, PatchParams};
use kube::core::ObjectMeta;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::classify;

/// Field manager of every write the executors make.
pub const FIELD_MANAGER: &str = "hibernator";

/// Page size of list calls.
pub const PAGE_SIZE: u32 = 250;

/// Patch parameters naming the [`FIELD_MANAGER`].
pub fn patch_params() -> PatchParams {
    PatchParams {
        field_manager: Some(FIELD_MANAGER.to_string()),
        ..PatchParams::default()
    }
}

/// Lists every object of `api` matching `params`, following `continue`
/// tokens page by page ([`PAGE_SIZE`] objects per call). `what` names the
/// list in errors.
pub async fn list_all(
    api: &Api<DynamicObject>,
    params: ListParams,
    what: &str,
) -> Result<Vec<DynamicObject>, ExecutorError> {
    let mut params = params.limit(PAGE_SIZE);
    let mut objects = Vec::new();
    loop {
        let page = api
            .list(&params)
            .await
            .map_err(|e| classify(&e, &format!("list {what}")))?;
        objects.extend(page.items);
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(objects),
        }
    }
}

/// Labels of an object (empty when none).
pub fn labels(meta: &ObjectMeta) -> BTreeMap<String, String> {
    meta.labels.clone().unwrap_or_default()
}

/// Annotations of an object (empty when none).
pub fn annotations(meta: &ObjectMeta) -> BTreeMap<String, String> {
    meta.annotations.clone().unwrap_or_default()
}

/// Serializes a restore state.
pub fn to_state<T: Serialize>(state: &T, key: &str) -> Result<serde_json::Value, ExecutorError> {
    serde_json::to_value(state).map_err(|e| {
        ExecutorError::permanent(
            category::INTERNAL,
            format!("cannot serialize the awake state of {key}: {e}"),
        )
        .with_resource(key)
    })
}

/// Reads a restore state; a malformed one is a message for
/// `WakeupOutcome::failed`.
pub fn from_state<T: DeserializeOwned>(state: &serde_json::Value, key: &str) -> Result<T, String> {
    serde_json::from_value(state.clone())
        .map_err(|e| format!("restore entry {key} is not an awake state of this executor: {e}"))
}
