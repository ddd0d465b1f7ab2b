//! List with label/field selectors and `limit`/`continue` pages, and
//! deletecollection.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::error::ApiError;
use super::events;
use super::objects::State;
use super::registry::ResourceDef;
use super::selectors::{FieldSelector, LabelSelector};
use super::store::ObjKey;

/// List query parameters.
#[derive(Debug, Default)]
pub(crate) struct ListQuery {
    pub label_selector: Option<LabelSelector>,
    pub field_selector: Option<FieldSelector>,
    pub limit: Option<usize>,
    pub continue_token: Option<String>,
}

impl ListQuery {
    /// The query with the field selector paths of `def` (see
    /// [`events::selector_path`]); 400 for a field a real server does not
    /// select on.
    pub fn for_resource(mut self, def: &ResourceDef) -> Result<Self, ApiError> {
        self.field_selector = self
            .field_selector
            .map(|f| f.map_paths(|field| events::selector_path(def, field)))
            .transpose()
            .map_err(ApiError::bad_request)?;
        Ok(self)
    }

    /// Whether an object passes both selectors.
    pub fn matches(&self, obj: &Value) -> bool {
        self.label_selector.as_ref().is_none_or(|s| s.matches(obj))
            && self.field_selector.as_ref().is_none_or(|s| s.matches(obj))
    }
}

impl State {
    /// `GET` on a collection.
    pub fn list(
        &self,
        def: &ResourceDef,
        version: &str,
        ns: Option<&str>,
        q: &ListQuery,
    ) -> Result<Value, ApiError> {
        let start: Option<ObjKey> = match &q.continue_token {
            Some(token) if !token.is_empty() => Some(decode_continue(token)?),
            _ => None,
        };
        let mut items = Vec::new();
        let mut next = None;
        let mut remaining = 0u64;
        for (key, obj) in self.store.list(def, ns) {
            if start.as_ref().is_some_and(|s| key <= s) || !q.matches(&Self::view(def, obj)) {
                continue;
            }
            if next.is_some() {
                remaining += 1;
                continue;
            }
            if q.limit.is_some_and(|l| l > 0 && items.len() == l) {
                next = Some(encode_continue(&items_last_key(&items)));
                remaining += 1;
                continue;
            }
            items.push((key.clone(), Self::output(def, version, obj.clone())));
        }
        let mut metadata = json!({"resourceVersion": self.store.current_rv().to_string()});
        if let Some(token) = next {
            metadata["continue"] = json!(token);
            metadata["remainingItemCount"] = json!(remaining);
        }
        Ok(json!({
            "apiVersion": def.api_version(version),
            "kind": format!("{}List", def.kind),
            "metadata": metadata,
            "items": items.into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
        }))
    }

    /// `DELETE` on a collection: deletes every matching object.
    pub fn delete_collection(
        &mut self,
        def: &ResourceDef,
        version: &str,
        ns: Option<&str>,
        q: &ListQuery,
        options: &Value,
    ) -> Result<Value, ApiError> {
        let keys: Vec<ObjKey> = self
            .store
            .list(def, ns)
            .filter(|(_, o)| q.matches(&Self::view(def, o)))
            .map(|(k, _)| k.clone())
            .collect();
        let mut items = Vec::new();
        for (obj_ns, obj_name) in keys {
            items.push(Self::output(
                def,
                version,
                self.delete(def, &obj_ns, &obj_name, options)?,
            ));
        }
        Ok(json!({
            "apiVersion": def.api_version(version),
            "kind": format!("{}List", def.kind),
            "metadata": {"resourceVersion": self.store.current_rv().to_string()},
            "items": items,
        }))
    }
}

fn items_last_key(items: &[(ObjKey, Value)]) -> ObjKey {
    items.last().map(|(k, _)| k.clone()).unwrap_or_default()
}

fn encode_continue(key: &ObjKey) -> String {
    URL_SAFE_NO_PAD.encode(json!([key.0, key.1]).to_string())
}

fn decode_continue(token: &str) -> Result<ObjKey, ApiError> {
    let bad = || ApiError::bad_request(format!("invalid continue token {token:?}"));
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| bad())?;
    let (ns, name): (String, String) = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    Ok((ns, name))
}
