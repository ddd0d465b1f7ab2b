//! The object store behind the persistence sink: S3 (or S3-compatible) and
//! the local filesystem, built from the `persistence` section.

use std::sync::Arc;

use object_store::ObjectStore;
use object_store::aws::{AmazonS3Builder, S3ConditionalPut};
use object_store::local::LocalFileSystem;

use crate::sink::config::{BackendKind, ConfigError, PersistenceConfig, invalid};

/// Builds the object store of the persistence section. S3 credentials come
/// from the usual AWS environment (static keys, web identity / IRSA, pod
/// identity, instance profile); `env` overrides the static keys and region.
pub fn store_from_config(
    config: &PersistenceConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Arc<dyn ObjectStore>, ConfigError> {
    match config.backend {
        BackendKind::S3 => {
            let s3 = config
                .s3
                .as_ref()
                .ok_or_else(|| invalid("persistence.s3", "required when backend is s3"))?;
            if s3.bucket.trim().is_empty() {
                return Err(invalid("persistence.s3.bucket", "must not be empty"));
            }
            let mut builder = AmazonS3Builder::from_env().with_bucket_name(s3.bucket.trim());
            if !s3.conditional_writes.unwrap_or(true) {
                builder = builder.with_conditional_put(S3ConditionalPut::Disabled);
            }
            for name in [
                "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY",
                "AWS_SESSION_TOKEN",
                "AWS_DEFAULT_REGION",
                "AWS_REGION",
            ] {
                if let (Some(value), Ok(key)) = (env(name), name.to_ascii_lowercase().parse()) {
                    builder = builder.with_config(key, value);
                }
            }
            let region = s3
                .region
                .clone()
                .or_else(|| env("AWS_REGION"))
                .or_else(|| env("AWS_DEFAULT_REGION"))
                .unwrap_or_else(|| "us-east-1".to_string());
            builder = builder.with_region(region);
            // `allowHttp`, else object_store's own AWS_ALLOW_HTTP (set next to
            // AWS_ENDPOINT_URL for a local S3-compatible store).
            let allow_http = s3.allow_http
                || env("AWS_ALLOW_HTTP").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
            if let Some(endpoint) = &s3.endpoint {
                let url = reqwest::Url::parse(endpoint)
                    .map_err(|e| invalid("persistence.s3.endpoint", format!("not a URL ({e})")))?;
                if url.scheme() == "http" && !allow_http {
                    return Err(invalid(
                        "persistence.s3.endpoint",
                        "is http:// but allowHttp is not true",
                    ));
                }
                builder = builder
                    .with_endpoint(endpoint.trim_end_matches('/'))
                    .with_virtual_hosted_style_request(false);
            }
            let store = builder.with_allow_http(allow_http).build().map_err(|e| {
                ConfigError::ObjectStore {
                    field: "persistence.s3".to_string(),
                    message: e.to_string(),
                }
            })?;
            Ok(Arc::new(store))
        }
        BackendKind::Filesystem => {
            let fs = config.filesystem.as_ref().ok_or_else(|| {
                invalid(
                    "persistence.filesystem",
                    "required when backend is filesystem",
                )
            })?;
            if fs.path.trim().is_empty() {
                return Err(invalid("persistence.filesystem.path", "must not be empty"));
            }
            std::fs::create_dir_all(&fs.path).map_err(|e| {
                invalid(
                    "persistence.filesystem.path",
                    format!("cannot create {}: {e}", fs.path),
                )
            })?;
            let store = LocalFileSystem::new_with_prefix(&fs.path).map_err(|e| {
                ConfigError::ObjectStore {
                    field: "persistence.filesystem.path".to_string(),
                    message: e.to_string(),
                }
            })?;
            Ok(Arc::new(store))
        }
    }
}
