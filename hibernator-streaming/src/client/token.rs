//! The runner's projected ServiceAccount token, re-read when the kubelet
//! rotates it.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

/// The token file could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Reading failed.
    #[error("reading the stream token {path}: {source}")]
    Read {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The file is empty.
    #[error("the stream token {path} is empty")]
    Empty {
        /// File.
        path: PathBuf,
    },
}

/// Reads the token file, caching it until the file's modification time or
/// size changes (the kubelet replaces projected tokens atomically).
#[derive(Debug)]
pub struct TokenFile {
    path: PathBuf,
    cached: Mutex<Option<(SystemTime, u64, String)>>,
}

impl TokenFile {
    /// A token read from `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            cached: Mutex::new(None),
        }
    }

    /// The token file path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The current token.
    pub fn token(&self) -> Result<String, TokenError> {
        let read_err = |source| TokenError::Read {
            path: self.path.clone(),
            source,
        };
        let meta = std::fs::metadata(&self.path).map_err(read_err)?;
        let stamp = (
            meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            meta.len(),
        );
        let mut cached = self.cached.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((modified, len, token)) = cached.as_ref()
            && (*modified, *len) == stamp
        {
            return Ok(token.clone());
        }
        let token = std::fs::read_to_string(&self.path)
            .map_err(read_err)?
            .trim()
            .to_string();
        if token.is_empty() {
            return Err(TokenError::Empty {
                path: self.path.clone(),
            });
        }
        *cached = Some((stamp.0, stamp.1, token.clone()));
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_is_picked_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        let file = TokenFile::new(&path);
        assert!(matches!(file.token(), Err(TokenError::Read { .. })));
        std::fs::write(&path, "first\n").unwrap();
        assert_eq!(file.token().unwrap(), "first");
        std::fs::write(&path, "second-token").unwrap();
        assert_eq!(file.token().unwrap(), "second-token");
        std::fs::write(&path, "  ").unwrap();
        assert!(matches!(file.token(), Err(TokenError::Empty { .. })));
    }
}
