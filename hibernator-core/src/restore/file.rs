//! A [`RestoreStore`] in one JSON file per plan, written atomically.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::record::RestoreRecord;
use super::store::{RestoreStore, StoreError, Versioned, decode_record};

/// Format version of the file (the envelope around the records).
const FILE_VERSION: u32 = 1;

/// Restore records of one plan in a single JSON file, as used by `hibernator run`.
///
/// ```json
/// {"version": 1, "counter": 3, "records": {"web": {"revision": 3, "record": {...}}}}
/// ```
///
/// Each record's version is the value of the file-wide `counter` when it was
/// last written, so versions are never reused. Every write goes to a
/// temporary file in the same directory, is flushed to disk, and then renamed
/// over the old file: a crash leaves either the old or the new content, never
/// a torn file. A file that cannot be parsed is reported as
/// [`StoreError::Corrupt`] naming its path and is never overwritten.
///
/// Writers within one process are serialized; the store does not lock
/// against other processes, so give each process its own file.
#[derive(Clone, Debug)]
pub struct FileRestoreStore {
    path: Arc<PathBuf>,
    lock: Arc<tokio::sync::Mutex<()>>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct FileContent {
    version: u32,
    counter: u64,
    #[serde(default)]
    records: BTreeMap<String, StoredRecord>,
}

#[derive(Debug, Serialize, Deserialize)]
struct StoredRecord {
    revision: u64,
    record: serde_json::Value,
}

impl FileRestoreStore {
    /// A store in the file at `path` (created, with its directory, on first write).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: Arc::new(path.into()),
            lock: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// The file this store reads and writes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs a blocking file operation off the async workers while holding the
    /// in-process lock.
    async fn with_file<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Path) -> Result<T, StoreError> + Send + 'static,
    {
        // The guard moves into the blocking task: even if this future is
        // dropped, the lock is held until the file operation has finished.
        let guard = self.lock.clone().lock_owned().await;
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let _guard = guard;
            op(&path)
        })
        .await
        .map_err(|e| StoreError::Io {
            location: self.path.display().to_string(),
            source: std::io::Error::other(e),
        })?
    }
}

fn location(path: &Path) -> String {
    path.display().to_string()
}

fn io_error(path: &Path, source: std::io::Error) -> StoreError {
    StoreError::Io {
        location: location(path),
        source,
    }
}

fn read(path: &Path) -> Result<FileContent, StoreError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(FileContent {
                version: FILE_VERSION,
                ..FileContent::default()
            });
        }
        Err(e) => return Err(io_error(path, e)),
    };
    let raw: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
            location: location(path),
            message: e.to_string(),
        })?;
    let version = raw.get("version").and_then(serde_json::Value::as_u64);
    if let Some(found) = version.filter(|v| *v > u64::from(FILE_VERSION)) {
        return Err(StoreError::Corrupt {
            location: location(path),
            message: format!(
                "file format version {found} is newer than this build reads ({FILE_VERSION}); upgrade Hibernator"
            ),
        });
    }
    serde_json::from_value(raw).map_err(|e| StoreError::Corrupt {
        location: location(path),
        message: e.to_string(),
    })
}

fn decode(
    path: &Path,
    target: &str,
    stored: StoredRecord,
) -> Result<Versioned<RestoreRecord>, StoreError> {
    let value = decode_record(stored.record, &format!("{}#{target}", location(path)))?;
    Ok(Versioned {
        value,
        version: stored.revision.to_string(),
    })
}

fn write_atomically(path: &Path, content: &FileContent) -> Result<(), StoreError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(|e| io_error(&dir, e))?;
    let bytes = serde_json::to_vec_pretty(content).map_err(|source| StoreError::Encode {
        target: location(path),
        source,
    })?;
    let mut tmp = tempfile::NamedTempFile::new_in(&dir).map_err(|e| io_error(&dir, e))?;
    tmp.write_all(&bytes).map_err(|e| io_error(tmp.path(), e))?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| io_error(tmp.path(), e))?;
    tmp.persist(path).map_err(|e| io_error(path, e.error))?;
    sync_dir(&dir);
    Ok(())
}

/// Makes the rename durable. Best effort: not every platform can open a directory.
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = std::fs::File::open(dir)
        && let Err(e) = d.sync_all()
    {
        tracing::debug!(dir = %dir.display(), error = %e, "fsync of restore store directory failed");
    }
    #[cfg(not(unix))]
    let _ = dir;
}

#[async_trait]
impl RestoreStore for FileRestoreStore {
    async fn load(&self, target: &str) -> Result<Option<Versioned<RestoreRecord>>, StoreError> {
        let target = target.to_string();
        self.with_file(move |path| {
            let mut content = read(path)?;
            content
                .records
                .remove(&target)
                .map(|stored| decode(path, &target, stored))
                .transpose()
        })
        .await
    }

    async fn load_all(&self) -> Result<Vec<Versioned<RestoreRecord>>, StoreError> {
        self.with_file(|path| {
            read(path)?
                .records
                .into_iter()
                .map(|(target, stored)| decode(path, &target, stored))
                .collect()
        })
        .await
    }

    async fn save(
        &self,
        record: &RestoreRecord,
        expected_version: Option<&str>,
    ) -> Result<String, StoreError> {
        let record = record.clone();
        let expected = expected_version.map(str::to_string);
        self.with_file(move |path| {
            let mut content = read(path)?;
            let found = content
                .records
                .get(&record.target)
                .map(|s| s.revision.to_string());
            if found != expected {
                return Err(StoreError::Conflict {
                    target: record.target.clone(),
                    expected,
                    found,
                });
            }
            let value = serde_json::to_value(&record).map_err(|source| StoreError::Encode {
                target: record.target.clone(),
                source,
            })?;
            content.version = FILE_VERSION;
            content.counter += 1;
            let revision = content.counter;
            content.records.insert(
                record.target.clone(),
                StoredRecord {
                    revision,
                    record: value,
                },
            );
            write_atomically(path, &content)?;
            Ok(revision.to_string())
        })
        .await
    }

    async fn delete(&self, target: &str) -> Result<bool, StoreError> {
        let target = target.to_string();
        self.with_file(move |path| {
            let mut content = read(path)?;
            if content.records.remove(&target).is_none() {
                return Ok(false);
            }
            content.counter += 1;
            write_atomically(path, &content)?;
            Ok(true)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::restore::update_record;
    use serde_json::json;

    fn store(dir: &tempfile::TempDir) -> FileRestoreStore {
        FileRestoreStore::new(dir.path().join("plans").join("dev.json"))
    }

    #[tokio::test]
    async fn round_trip_and_conflicts() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir);
        assert!(s.load("web").await.unwrap().is_none());
        let mut r = RestoreRecord::new("web", "workloadscaler");
        r.merge_shutdown(
            "c1",
            [("apps/Deployment/ns/a".to_string(), json!({"replicas": 3}))],
        );
        let v1 = s.save(&r, None).await.unwrap();
        let loaded = s.load("web").await.unwrap().unwrap();
        assert_eq!(loaded.value, r);
        assert_eq!(loaded.version, v1);

        let err = s.save(&r, None).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
        let v2 = s.save(&r, Some(&v1)).await.unwrap();
        assert!(matches!(
            s.save(&r, Some(&v1)).await,
            Err(StoreError::Conflict { .. })
        ));

        // A second store on the same file sees the same data (it is durable).
        let again = store(&dir);
        assert_eq!(again.load("web").await.unwrap().unwrap().version, v2);
        let other = RestoreRecord::new("db", "rds");
        again.save(&other, None).await.unwrap();
        let all = s.load_all().await.unwrap();
        assert_eq!(
            all.iter()
                .map(|v| v.value.target.as_str())
                .collect::<Vec<_>>(),
            ["db", "web"]
        );
        assert!(s.delete("web").await.unwrap());
        assert!(!s.delete("web").await.unwrap());
        assert!(s.load("web").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn writes_replace_the_file_and_leave_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir);
        let mut version = None;
        for i in 0..5 {
            let mut r = RestoreRecord::new("web", "x");
            r.merge_shutdown("c", [(format!("k{i}"), json!(i))]);
            version = Some(s.save(&r, version.as_deref()).await.unwrap());
        }
        let files: Vec<_> = std::fs::read_dir(dir.path().join("plans"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(files, ["dev.json"]);
        let raw: serde_json::Value =
            serde_json::from_slice(&std::fs::read(s.path()).unwrap()).unwrap();
        assert_eq!(raw["version"], json!(1));
        assert_eq!(raw["counter"], json!(5));
        assert_eq!(
            raw["records"]["web"]["record"]["entries"]["k4"]["state"],
            json!(4)
        );
    }

    #[tokio::test]
    async fn corrupt_file_is_reported_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir);
        std::fs::create_dir_all(s.path().parent().unwrap()).unwrap();
        std::fs::write(s.path(), b"{\"version\": 1, \"counter\": ").unwrap();
        let err = s.load("web").await.unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("dev.json"), "{err}");
        let err = s
            .save(&RestoreRecord::new("web", "x"), None)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
        assert_eq!(
            std::fs::read(s.path()).unwrap(),
            b"{\"version\": 1, \"counter\": "
        );
    }

    #[tokio::test]
    async fn newer_record_version_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir);
        s.save(&RestoreRecord::new("web", "x"), None).await.unwrap();
        let mut raw: serde_json::Value =
            serde_json::from_slice(&std::fs::read(s.path()).unwrap()).unwrap();
        raw["records"]["web"]["record"]["version"] = json!(99);
        std::fs::write(s.path(), serde_json::to_vec(&raw).unwrap()).unwrap();
        let err = s.load("web").await.unwrap_err();
        assert!(
            matches!(err, StoreError::UnsupportedVersion { .. }),
            "{err}"
        );
        assert!(err.to_string().contains("version 99"), "{err}");
        assert!(err.to_string().contains("dev.json#web"), "{err}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_updates_from_several_tasks_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir);
        let mut tasks = Vec::new();
        for i in 0..8 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                for j in 0..3 {
                    let target = if i % 2 == 0 { "even" } else { "odd" };
                    update_record(&s, target, "x", |r| {
                        r.merge_shutdown("c1", [(format!("k{i}-{j}"), json!([i, j]))]);
                    })
                    .await
                    .unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let all = s.load_all().await.unwrap();
        let total: usize = all.iter().map(|v| v.value.entries.len()).sum();
        assert_eq!(total, 24);
        assert_eq!(all[0].value.entries.len(), 12);
    }
}
