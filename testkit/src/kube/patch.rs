//! Patch bodies: JSON merge patch, JSON patch, strategic merge patch (treated
//! as a merge patch) and server-side apply (a best-effort merge).

use serde_json::Value;

use super::error::ApiError;

/// The patch flavours Kubernetes accepts, by `Content-Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PatchKind {
    /// `application/merge-patch+json` (RFC 7386).
    Merge,
    /// `application/json-patch+json` (RFC 6902).
    Json,
    /// `application/strategic-merge-patch+json`, applied as a merge patch.
    Strategic,
    /// `application/apply-patch+yaml`: server-side apply, merged.
    Apply,
}

impl PatchKind {
    /// The kind for a `Content-Type` header value.
    pub fn from_content_type(ct: &str) -> Result<Self, ApiError> {
        let ct = ct.split(';').next().unwrap_or_default().trim();
        match ct {
            "application/merge-patch+json" => Ok(Self::Merge),
            "application/json-patch+json" => Ok(Self::Json),
            "application/strategic-merge-patch+json" => Ok(Self::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Ok(Self::Apply),
            other => Err(ApiError::new(
                415,
                "UnsupportedMediaType",
                format!(
                    "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml; got {other:?}"
                ),
            )),
        }
    }
}

/// Parses a patch body as JSON (or YAML for apply).
pub(crate) fn parse_body(kind: PatchKind, body: &[u8]) -> Result<Value, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(v) => Ok(v),
        Err(json_err) if kind == PatchKind::Apply => {
            yaml_serde::from_slice::<Value>(body).map_err(|e| {
                ApiError::bad_request(format!(
                    "apply patch body is neither JSON ({json_err}) nor YAML ({e})"
                ))
            })
        }
        Err(e) => Err(ApiError::bad_request(format!(
            "patch body is not valid JSON: {e}"
        ))),
    }
}

/// Applies a parsed patch to a document and returns the result.
pub(crate) fn apply(kind: PatchKind, target: &Value, patch: &Value) -> Result<Value, ApiError> {
    let mut doc = target.clone();
    match kind {
        PatchKind::Merge | PatchKind::Strategic | PatchKind::Apply => {
            if !patch.is_object() {
                return Err(ApiError::bad_request("a merge patch must be a JSON object"));
            }
            json_patch::merge(&mut doc, patch);
        }
        PatchKind::Json => {
            let ops: json_patch::Patch = serde_json::from_value(patch.clone())
                .map_err(|e| ApiError::bad_request(format!("invalid JSON patch: {e}")))?;
            // Operations apply one by one on a copy, so a failure leaves the
            // stored object untouched. As on a real API server, `test` with
            // `null` succeeds on a missing path (kube's finalizer helper
            // relies on it).
            for op in ops.0 {
                if let json_patch::PatchOperation::Test(t) = &op
                    && t.value.is_null()
                    && doc.pointer(t.path.as_str()).is_none()
                {
                    continue;
                }
                json_patch::patch(&mut doc, &[op]).map_err(|e| {
                    ApiError::invalid(format!("the JSON patch could not be applied: {e}"))
                })?;
            }
        }
    }
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn merge_json_and_apply() {
        let doc =
            json!({"spec": {"replicas": 3, "paused": false}, "metadata": {"labels": {"a": "1"}}});
        let merged = apply(
            PatchKind::Merge,
            &doc,
            &json!({"spec": {"replicas": 0, "paused": null}}),
        )
        .unwrap();
        assert_eq!(merged["spec"], json!({"replicas": 0}));
        let patched = apply(
            PatchKind::Json,
            &doc,
            &json!([{"op": "replace", "path": "/spec/replicas", "value": 5}]),
        )
        .unwrap();
        assert_eq!(patched["spec"]["replicas"], 5);
        let failed = apply(
            PatchKind::Json,
            &doc,
            &json!([{"op": "test", "path": "/spec/replicas", "value": 9}]),
        );
        assert_eq!(failed.unwrap_err().code, 422);
        let absent_is_null = apply(
            PatchKind::Json,
            &doc,
            &json!([
                {"op": "test", "path": "/metadata/finalizers", "value": null},
                {"op": "add", "path": "/metadata/finalizers", "value": ["f"]}
            ]),
        )
        .unwrap();
        assert_eq!(absent_is_null["metadata"]["finalizers"], json!(["f"]));
        let yaml = parse_body(PatchKind::Apply, b"spec:\n  replicas: 2\n").unwrap();
        assert_eq!(
            apply(PatchKind::Apply, &doc, &yaml).unwrap()["spec"]["replicas"],
            2
        );
        assert!(PatchKind::from_content_type("text/plain").is_err());
    }
}
