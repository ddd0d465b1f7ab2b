//! A complete custom Hibernator executor: `file-replicas`.
//!
//! It hibernates "services" described by JSON files in a directory, one file
//! per service (`<directory>/<name>.json`, e.g. `{"replicas": 3, "image": …}`).
//! Shutdown scales every selected service to `replicas: 0` and records the
//! original count; wake-up restores exactly the recorded count. Other fields
//! of the files are preserved.
//!
//! It shows everything a real executor needs: typed parameters with
//! [`ValidateParameters`], the restore-ledger contract (report only services
//! found awake, record before changing), error classes, cooperative
//! cancellation, logging and progress. [`fixture::TempServices`] is its
//! [`ConformanceFixture`](hibernator_core::executor::testing::ConformanceFixture);
//! `tests/conformance.rs` runs the conformance kit against it.
//!
//! ```
//! use hibernator_core::executor::typed;
//! use hibernator_example_custom_executor::FileReplicas;
//! use hibernator_executors::ExecutorSet;
//!
//! // A standalone executor: its targets name no connector.
//! let executors = ExecutorSet::empty().standalone(typed(FileReplicas));
//! assert!(executors.get("file-replicas").is_some());
//! // The same set yields the parameter checks validation uses.
//! let catalog = executors.catalog();
//! assert!(catalog.get("file-replicas").is_some());
//! ```

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use hibernator_core::diag::Diagnostics;
use hibernator_core::executor::{
    ExecutionContext, ExecutorError, ShutdownOutcome, TypedExecutor, WakeupOutcome, category,
};
use hibernator_core::params::ValidateParameters;
use hibernator_core::restore::RestoreRecord;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value, json};

pub mod fixture;

/// Parameters of a `file-replicas` target.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileReplicasParams {
    /// Directory holding one `<service>.json` file per service.
    pub directory: PathBuf,
    /// Services to hibernate (file names without `.json`); all when omitted.
    #[serde(default)]
    pub services: Option<Vec<String>>,
}

impl ValidateParameters for FileReplicasParams {
    fn validate(&self, field: &str, diagnostics: &mut Diagnostics) {
        if self.directory.as_os_str().is_empty() {
            diagnostics.error(format!("{field}.directory"), "must not be empty");
        }
        if let Some(services) = &self.services {
            if services.is_empty() {
                diagnostics.error(
                    format!("{field}.services"),
                    "list at least one service, or omit the field to select all",
                );
            }
            for (i, name) in services.iter().enumerate() {
                if !is_service_name(name) {
                    diagnostics.error(
                        format!("{field}.services[{i}]"),
                        format!("{name:?} is not a service name: use letters, digits, '-', '_' and '.', not starting with '.'"),
                    );
                }
            }
        }
    }
}

fn is_service_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The restore-entry key of a service.
pub fn resource_key(service: &str) -> String {
    format!("service/{service}")
}

/// The `file-replicas` executor.
#[derive(Clone, Copy, Debug, Default)]
pub struct FileReplicas;

/// One service file, parsed.
#[derive(Debug)]
pub struct ServiceFile {
    /// Path of the file.
    pub path: PathBuf,
    /// The whole JSON object (other fields are preserved on write).
    pub document: Map<String, Value>,
    /// Its `replicas` value.
    pub replicas: u64,
}

fn io_error(path: &Path, e: &std::io::Error, service: &str) -> ExecutorError {
    let message = format!("{}: {e}", path.display());
    let error = match e.kind() {
        std::io::ErrorKind::NotFound => ExecutorError::permanent(category::NOT_FOUND, message),
        std::io::ErrorKind::PermissionDenied => ExecutorError::permanent(category::AUTH, message),
        _ => ExecutorError::transient(category::UNAVAILABLE, message),
    };
    error.with_resource(resource_key(service))
}

/// Reads `<directory>/<service>.json`.
pub async fn read_service(directory: &Path, service: &str) -> Result<ServiceFile, ExecutorError> {
    let path = directory.join(format!("{service}.json"));
    let bytes = tokio::fs::read(&path)
        .await
        .map_err(|e| io_error(&path, &e, service))?;
    let invalid = |why: String| {
        ExecutorError::permanent(category::INTERNAL, format!("{}: {why}", path.display()))
            .with_resource(resource_key(service))
    };
    let document: Map<String, Value> =
        serde_json::from_slice(&bytes).map_err(|e| invalid(format!("not a JSON object: {e}")))?;
    let replicas = document
        .get("replicas")
        .and_then(Value::as_u64)
        .ok_or_else(|| invalid("has no non-negative integer \"replicas\" field".to_string()))?;
    Ok(ServiceFile {
        path,
        document,
        replicas,
    })
}

/// Writes `replicas` into a service file atomically (temp file + rename).
pub async fn write_replicas(
    file: &ServiceFile,
    service: &str,
    replicas: u64,
) -> Result<(), ExecutorError> {
    let mut document = file.document.clone();
    document.insert("replicas".to_string(), json!(replicas));
    let bytes = serde_json::to_vec_pretty(&document).map_err(|e| {
        ExecutorError::permanent(
            category::INTERNAL,
            format!("cannot encode {}: {e}", file.path.display()),
        )
    })?;
    let tmp = file.path.with_extension("json.tmp");
    tokio::fs::write(&tmp, bytes)
        .await
        .map_err(|e| io_error(&tmp, &e, service))?;
    tokio::fs::rename(&tmp, &file.path)
        .await
        .map_err(|e| io_error(&file.path, &e, service))
}

/// The services a target selects: the listed ones, or every `*.json` file.
pub async fn select_services(params: &FileReplicasParams) -> Result<Vec<String>, ExecutorError> {
    if let Some(services) = &params.services {
        return Ok(services.clone());
    }
    let dir = &params.directory;
    let mut entries = tokio::fs::read_dir(dir)
        .await
        .map_err(|e| io_error(dir, &e, "*"))?;
    let mut names = Vec::new();
    while let Some(entry) = entries
        .next_entry()
        .await
        .map_err(|e| io_error(dir, &e, "*"))?
    {
        let path = entry.path();
        if path.extension().is_some_and(|ext| ext == "json")
            && let Some(stem) = path.file_stem().and_then(|s| s.to_str())
            && is_service_name(stem)
        {
            names.push(stem.to_string());
        }
    }
    names.sort();
    Ok(names)
}

fn percent(done: usize, total: usize) -> u8 {
    u8::try_from(done * 100 / total.max(1)).unwrap_or(100)
}

#[async_trait]
impl TypedExecutor for FileReplicas {
    const TYPE: &'static str = "file-replicas";
    type Params = FileReplicasParams;

    async fn shutdown(
        &self,
        ctx: &ExecutionContext,
        params: &FileReplicasParams,
    ) -> Result<ShutdownOutcome, ExecutorError> {
        let services = select_services(params).await?;
        let mut outcome = ShutdownOutcome::default();
        for (done, service) in services.iter().enumerate() {
            ctx.check_cancelled()?;
            let key = resource_key(service);
            let file = read_service(&params.directory, service).await?;
            outcome.resources.push(key.clone());
            if file.replicas == 0 {
                // Asleep already: either hibernated in an earlier cycle whose
                // wake-up failed (its entry holds the awake count) or scaled to
                // zero by its owner. Either way there is no awake state to report.
                let from_earlier_cycle =
                    ctx.prior_record().is_some_and(|r| r.entry(&key).is_some());
                ctx.debug(&format!(
                    "{service} already has 0 replicas{}",
                    if from_earlier_cycle {
                        " (hibernated in an earlier cycle)"
                    } else {
                        ""
                    }
                ));
                continue;
            }
            let awake = json!({"replicas": file.replicas});
            // Record before changing, so a failure later cannot lose it.
            ctx.record_awake_state(&key, awake.clone());
            write_replicas(&file, service, 0).await?;
            outcome.observations.insert(key, awake);
            ctx.log(
                hibernator_core::executor::LogLevel::Info,
                "scaled service to 0",
                &[
                    ("service", service),
                    ("replicas", &file.replicas.to_string()),
                ],
            );
            ctx.progress(
                percent(done + 1, services.len()),
                &format!("{service} hibernated"),
            );
        }
        Ok(outcome)
    }

    async fn wakeup(
        &self,
        ctx: &ExecutionContext,
        params: &FileReplicasParams,
        record: &RestoreRecord,
    ) -> Result<WakeupOutcome, ExecutorError> {
        let mut outcome = WakeupOutcome::default();
        let total = record.entries.len();
        for (done, (key, entry)) in record.entries.iter().enumerate() {
            ctx.check_cancelled()?;
            let Some(service) = key.strip_prefix("service/") else {
                outcome
                    .failed
                    .insert(key.clone(), "not a file-replicas resource key".to_string());
                continue;
            };
            let Some(replicas) = entry.state.get("replicas").and_then(Value::as_u64) else {
                outcome.failed.insert(
                    key.clone(),
                    "restore entry has no replicas count".to_string(),
                );
                continue;
            };
            let restored = async {
                let file = read_service(&params.directory, service).await?;
                write_replicas(&file, service, replicas).await
            }
            .await;
            match restored {
                Ok(()) => {
                    outcome.restored.push(key.clone());
                    ctx.progress(
                        percent(done + 1, total),
                        &format!("{service} restored to {replicas}"),
                    );
                }
                Err(e) => {
                    ctx.warn(&format!("{service} failed to wake up: {e}"));
                    outcome.failed.insert(key.clone(), e.to_string());
                }
            }
        }
        Ok(outcome)
    }
}
