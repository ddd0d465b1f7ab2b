//! The [`RestoreStore`] trait, its errors and the conflict-safe update loop.

use std::time::Duration;

use async_trait::async_trait;
use rand::Rng;

use super::record::{RECORD_VERSION, RestoreRecord, UnsupportedVersion};

/// A value together with the store version it was read at.
#[derive(Clone, Debug, PartialEq)]
pub struct Versioned<T> {
    /// The value.
    pub value: T,
    /// Opaque store version (a counter, or a Kubernetes `resourceVersion`).
    pub version: String,
}

/// Errors of a [`RestoreStore`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The stored version differs from the one the write expected.
    #[error(
        "restore record of target {target:?} changed concurrently (expected version {}, found {})",
        show(.expected), show(.found)
    )]
    Conflict {
        /// Target whose record changed.
        target: String,
        /// The version the writer read (`None`: expected no record).
        expected: Option<String>,
        /// The version in the store (`None`: no record).
        found: Option<String>,
    },
    /// Stored data cannot be parsed; it is never overwritten silently.
    #[error("restore data at {location} is corrupt and was left untouched: {message}")]
    Corrupt {
        /// File path or object name.
        location: String,
        /// What is wrong.
        message: String,
    },
    /// Stored data was written by a newer Hibernator.
    #[error("restore data at {location} cannot be read: {source}")]
    UnsupportedVersion {
        /// File path or object name.
        location: String,
        /// The version problem.
        #[source]
        source: UnsupportedVersion,
    },
    /// Reading or writing a file failed.
    #[error("restore store I/O on {location} failed: {source}")]
    Io {
        /// File path.
        location: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Encoding a record as JSON failed.
    #[error("cannot encode restore record of target {target:?}: {source}")]
    Encode {
        /// Target of the record.
        target: String,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },
    /// A store backend (e.g. the Kubernetes API) failed.
    #[error("restore store backend failed: {source}")]
    Backend {
        /// True when retrying may succeed (throttling, 5xx, timeouts).
        transient: bool,
        /// The backend error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

fn show(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("none")
}

impl StoreError {
    /// Bounded category for metric labels.
    pub fn category(&self) -> &'static str {
        match self {
            Self::Conflict { .. } => "conflict",
            Self::Corrupt { .. } => "corrupt",
            Self::UnsupportedVersion { .. } => "unsupported_version",
            Self::Io { .. } => "io",
            Self::Encode { .. } => "encode",
            Self::Backend { .. } => "backend",
        }
    }

    /// True when retrying the operation may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Conflict { .. } | Self::Io { .. } => true,
            Self::Backend { transient, .. } => *transient,
            Self::Corrupt { .. } | Self::UnsupportedVersion { .. } | Self::Encode { .. } => false,
        }
    }
}

/// Decodes one stored record, distinguishing a newer format version
/// ([`StoreError::UnsupportedVersion`]) from corrupt data
/// ([`StoreError::Corrupt`]). `location` names where it came from.
pub fn decode_record(
    value: serde_json::Value,
    location: &str,
) -> Result<RestoreRecord, StoreError> {
    let version = value.get("version").and_then(serde_json::Value::as_u64);
    if let Some(found) = version.filter(|v| *v > u64::from(RECORD_VERSION)) {
        let target = value
            .get("target")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_string();
        return Err(StoreError::UnsupportedVersion {
            location: location.to_string(),
            source: UnsupportedVersion {
                target,
                found: u32::try_from(found).unwrap_or(u32::MAX),
                supported: RECORD_VERSION,
            },
        });
    }
    serde_json::from_value(value).map_err(|e| StoreError::Corrupt {
        location: location.to_string(),
        message: e.to_string(),
    })
}

/// Durable storage of the restore records of one plan, with optimistic
/// concurrency.
///
/// Every record carries an opaque version. [`save`](Self::save) succeeds only
/// when the stored version still equals the version the caller read (or, for
/// `None`, when no record exists yet) and returns the new version; otherwise it
/// fails with [`StoreError::Conflict`]. Use [`update_record`] rather than
/// calling `load`/`save` by hand.
#[async_trait]
pub trait RestoreStore: Send + Sync {
    /// The record of `target`, if any.
    async fn load(&self, target: &str) -> Result<Option<Versioned<RestoreRecord>>, StoreError>;

    /// Every record of the plan, sorted by target.
    async fn load_all(&self) -> Result<Vec<Versioned<RestoreRecord>>, StoreError>;

    /// Writes `record` (keyed by `record.target`) if the stored version equals
    /// `expected_version`; returns the new version.
    async fn save(
        &self,
        record: &RestoreRecord,
        expected_version: Option<&str>,
    ) -> Result<String, StoreError>;

    /// Removes the record of `target`; returns whether one existed.
    async fn delete(&self, target: &str) -> Result<bool, StoreError>;
}

/// How many times [`update_record`] re-reads and re-applies after a conflict.
pub const MAX_UPDATE_ATTEMPTS: u32 = 16;

/// Loads the record of `target` (or starts an empty one for `executor`),
/// applies `f`, and saves it with the version that was read. On
/// [`StoreError::Conflict`] it re-reads and re-applies `f` to the fresh record,
/// up to [`MAX_UPDATE_ATTEMPTS`] times with a short jittered pause, so
/// concurrent writers never lose each other's changes. `f` must therefore be a
/// pure function of the record it is given (e.g. a merge).
///
/// Returns the record as saved and its new version.
pub async fn update_record<S, F>(
    store: &S,
    target: &str,
    executor: &str,
    mut f: F,
) -> Result<Versioned<RestoreRecord>, StoreError>
where
    S: RestoreStore + ?Sized,
    F: FnMut(&mut RestoreRecord) + Send,
{
    let mut attempt = 0;
    loop {
        let current = store.load(target).await?;
        let (mut record, expected) = match current {
            Some(v) => (v.value, Some(v.version)),
            None => (RestoreRecord::new(target, executor), None),
        };
        f(&mut record);
        record.version = RECORD_VERSION;
        match store.save(&record, expected.as_deref()).await {
            Ok(version) => {
                return Ok(Versioned {
                    value: record,
                    version,
                });
            }
            Err(e @ StoreError::Conflict { .. }) => {
                attempt += 1;
                if attempt >= MAX_UPDATE_ATTEMPTS {
                    return Err(e);
                }
                tokio::time::sleep(conflict_pause(attempt)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// A random pause of up to `2^attempt` ms (at most 250 ms) between conflicting writes.
fn conflict_pause(attempt: u32) -> Duration {
    let cap = 1u64.checked_shl(attempt).unwrap_or(u64::MAX).min(250);
    Duration::from_millis(rand::rng().random_range(0..=cap))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_distinguishes_newer_version_from_corruption() {
        let mut v = serde_json::to_value(RestoreRecord::new("t", "x")).unwrap();
        v["version"] = serde_json::json!(7);
        let e = decode_record(v, "cm/x").unwrap_err();
        assert!(matches!(e, StoreError::UnsupportedVersion { .. }), "{e}");
        assert!(e.to_string().contains("cm/x"));
        let e = decode_record(serde_json::json!({"version": 1}), "cm/x").unwrap_err();
        assert!(matches!(e, StoreError::Corrupt { .. }), "{e}");
        assert!(!e.is_transient());
    }

    /// A store whose `save` always reports a concurrent change.
    struct AlwaysConflicts {
        saves: std::sync::atomic::AtomicU32,
    }

    #[async_trait]
    impl RestoreStore for AlwaysConflicts {
        async fn load(&self, _: &str) -> Result<Option<Versioned<RestoreRecord>>, StoreError> {
            Ok(None)
        }
        async fn load_all(&self) -> Result<Vec<Versioned<RestoreRecord>>, StoreError> {
            Ok(Vec::new())
        }
        async fn save(&self, r: &RestoreRecord, _: Option<&str>) -> Result<String, StoreError> {
            self.saves.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Err(StoreError::Conflict {
                target: r.target.clone(),
                expected: None,
                found: Some("9".into()),
            })
        }
        async fn delete(&self, _: &str) -> Result<bool, StoreError> {
            Ok(false)
        }
    }

    #[tokio::test(start_paused = true)]
    async fn update_gives_up_after_bounded_conflicts() {
        let store = AlwaysConflicts {
            saves: Default::default(),
        };
        let mut applied = 0;
        let err = update_record(&store, "t", "x", |_| applied += 1)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
        assert_eq!(applied, MAX_UPDATE_ATTEMPTS);
        assert_eq!(
            store.saves.load(std::sync::atomic::Ordering::SeqCst),
            MAX_UPDATE_ATTEMPTS
        );
    }

    #[tokio::test]
    async fn update_reapplies_on_fresh_data_after_a_conflict() {
        use crate::restore::MemoryRestoreStore;
        let store = MemoryRestoreStore::new();
        let mut calls = 0;
        let saved = update_record(&store, "t", "x", |r| {
            calls += 1;
            if calls == 1 {
                // Simulate another writer landing between our load and save.
                let mut other = RestoreRecord::new("t", "x");
                other.merge_shutdown("c1", [("other".to_string(), serde_json::json!(1))]);
                save_now(&store, &other);
            }
            r.merge_shutdown("c1", [("mine".to_string(), serde_json::json!(2))]);
        })
        .await
        .unwrap();
        assert_eq!(calls, 2);
        assert_eq!(
            saved.value.entries.keys().collect::<Vec<_>>(),
            ["mine", "other"]
        );
    }

    /// Saves synchronously from inside an update closure (the memory store
    /// never actually suspends).
    fn save_now(store: &crate::restore::MemoryRestoreStore, r: &RestoreRecord) {
        let fut = store.save(r, None);
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut fut = std::pin::pin!(fut);
        match fut.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(result) => {
                result.unwrap();
            }
            std::task::Poll::Pending => panic!("memory store suspended"),
        }
    }

    #[test]
    fn conflict_pause_is_bounded() {
        for attempt in 0..40 {
            assert!(conflict_pause(attempt) <= Duration::from_millis(250));
        }
    }
}
