//! A [`ConformanceFixture`] for [`FileReplicas`](crate::FileReplicas): a
//! temporary directory with a few service files.

use std::collections::BTreeMap;
use std::path::Path;

use async_trait::async_trait;
use hibernator_core::executor::testing::ConformanceFixture;
use serde_json::{Value, json};

/// Services in a temporary directory, removed on drop.
#[derive(Debug)]
pub struct TempServices {
    dir: tempfile::TempDir,
    awake: BTreeMap<String, u64>,
}

impl TempServices {
    /// `web` (3 replicas), `api` (2), `worker` (1) and `batch`, which is
    /// scaled to 0 by its owner and must stay at 0 after a wake-up.
    pub fn new() -> std::io::Result<Self> {
        Self::with_services(&[("web", 3), ("api", 2), ("worker", 1), ("batch", 0)])
    }

    /// Services with the given awake replica counts.
    pub fn with_services(services: &[(&str, u64)]) -> std::io::Result<Self> {
        Ok(Self {
            dir: tempfile::tempdir()?,
            awake: services.iter().map(|(n, r)| (n.to_string(), *r)).collect(),
        })
    }

    /// The directory holding the service files.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

#[async_trait]
impl ConformanceFixture for TempServices {
    async fn setup(&self) -> Result<Value, String> {
        for (name, replicas) in &self.awake {
            let doc = json!({"replicas": replicas, "image": format!("example/{name}:1.0")});
            let path = self.dir.path().join(format!("{name}.json"));
            let bytes = serde_json::to_vec_pretty(&doc).map_err(|e| e.to_string())?;
            tokio::fs::write(&path, bytes)
                .await
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
        Ok(json!({"directory": self.dir.path()}))
    }

    async fn observe(&self) -> Result<Value, String> {
        let mut entries = tokio::fs::read_dir(self.dir.path())
            .await
            .map_err(|e| e.to_string())?;
        let mut state = serde_json::Map::new();
        while let Some(entry) = entries.next_entry().await.map_err(|e| e.to_string())? {
            let name = entry.file_name().to_string_lossy().into_owned();
            let bytes = tokio::fs::read(entry.path())
                .await
                .map_err(|e| e.to_string())?;
            let value: Value =
                serde_json::from_slice(&bytes).map_err(|e| format!("{name}: {e}"))?;
            state.insert(name, value);
        }
        Ok(Value::Object(state))
    }
}
