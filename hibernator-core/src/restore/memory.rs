//! An in-memory [`RestoreStore`] for tests, examples and embedders.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;

use super::record::RestoreRecord;
use super::store::{RestoreStore, StoreError, Versioned};

/// Restore records held in memory, with the same optimistic-concurrency
/// semantics as the durable stores. Versions come from a store-wide counter,
/// so a deleted and re-created record never reuses a version.
#[derive(Debug, Default)]
pub struct MemoryRestoreStore {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    counter: u64,
    records: BTreeMap<String, (u64, RestoreRecord)>,
}

impl MemoryRestoreStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl RestoreStore for MemoryRestoreStore {
    async fn load(&self, target: &str) -> Result<Option<Versioned<RestoreRecord>>, StoreError> {
        Ok(self.lock().records.get(target).map(|(v, r)| Versioned {
            value: r.clone(),
            version: v.to_string(),
        }))
    }

    async fn load_all(&self) -> Result<Vec<Versioned<RestoreRecord>>, StoreError> {
        Ok(self
            .lock()
            .records
            .values()
            .map(|(v, r)| Versioned {
                value: r.clone(),
                version: v.to_string(),
            })
            .collect())
    }

    async fn save(
        &self,
        record: &RestoreRecord,
        expected_version: Option<&str>,
    ) -> Result<String, StoreError> {
        let mut inner = self.lock();
        let found = inner
            .records
            .get(&record.target)
            .map(|(v, _)| v.to_string());
        if found.as_deref() != expected_version {
            return Err(StoreError::Conflict {
                target: record.target.clone(),
                expected: expected_version.map(str::to_string),
                found,
            });
        }
        inner.counter += 1;
        let version = inner.counter;
        inner
            .records
            .insert(record.target.clone(), (version, record.clone()));
        Ok(version.to_string())
    }

    async fn delete(&self, target: &str) -> Result<bool, StoreError> {
        Ok(self.lock().records.remove(target).is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::restore::update_record;
    use std::sync::Arc;

    #[tokio::test]
    async fn save_checks_the_expected_version() {
        let store = MemoryRestoreStore::new();
        let r = RestoreRecord::new("t", "x");
        let v1 = store.save(&r, None).await.unwrap();
        let err = store.save(&r, None).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
        let v2 = store.save(&r, Some(&v1)).await.unwrap();
        assert_ne!(v1, v2);
        let err = store.save(&r, Some(&v1)).await.unwrap_err();
        assert!(
            err.to_string()
                .contains(&format!("expected version {v1}, found {v2}")),
            "{err}"
        );
        assert!(store.delete("t").await.unwrap());
        assert!(!store.delete("t").await.unwrap());
        assert!(store.save(&r, Some(&v2)).await.is_err());
        let v3 = store.save(&r, None).await.unwrap();
        assert_ne!(v3, v1, "versions are never reused");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_updates_lose_nothing() {
        let store = Arc::new(MemoryRestoreStore::new());
        let mut tasks = Vec::new();
        for i in 0..12 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                update_record(&*store, "t", "x", |r| {
                    r.merge_shutdown("c1", [(format!("k{i}"), serde_json::json!(i))]);
                })
                .await
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let r = store.load("t").await.unwrap().unwrap().value;
        assert_eq!(r.entries.len(), 12);
    }
}
