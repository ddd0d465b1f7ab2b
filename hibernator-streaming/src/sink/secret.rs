//! Credentials for forwarders (Splunk HEC token, Datadog API key) and where
//! they come from, kept out of `Debug` output, logs and error messages.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A resolved credential. Its `Debug` prints `Secret(***)` and it has no
/// `Display`, so it cannot end up in a log line or an error by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a credential value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The credential, for building a request header.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Where a credential is read from, as written in the configuration.
///
/// * `$NAME` or `${NAME}`: the environment variable `NAME` (the chart fills
///   it from a Kubernetes Secret);
/// * `file:/path`: the trimmed contents of a file (a mounted Secret);
/// * anything else: the value itself (discouraged; kept out of `Debug`, and
///   serialised as [`REDACTED`]).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum SecretSource {
    /// Read from this environment variable.
    Env(String),
    /// Read from this file.
    File(String),
    /// The literal value.
    Literal(Secret),
}

impl From<String> for SecretSource {
    fn from(raw: String) -> Self {
        let trimmed = raw.trim();
        if let Some(name) = trimmed
            .strip_prefix("${")
            .and_then(|rest| rest.strip_suffix('}'))
        {
            return Self::Env(name.to_string());
        }
        if let Some(name) = trimmed.strip_prefix('$') {
            return Self::Env(name.to_string());
        }
        if let Some(path) = trimmed.strip_prefix("file:") {
            return Self::File(path.to_string());
        }
        Self::Literal(Secret(raw))
    }
}

/// What a literal credential serialises to: configuration written back out
/// (a rendered ConfigMap, a debug dump) never carries the value.
pub const REDACTED: &str = "<redacted>";

impl From<SecretSource> for String {
    fn from(source: SecretSource) -> Self {
        match source {
            SecretSource::Env(name) => format!("${{{name}}}"),
            SecretSource::File(path) => format!("file:{path}"),
            SecretSource::Literal(_) => REDACTED.to_string(),
        }
    }
}

impl fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Env(name) => write!(f, "Env({name})"),
            Self::File(path) => write!(f, "File({path})"),
            Self::Literal(_) => f.write_str("Literal(***)"),
        }
    }
}

impl SecretSource {
    /// Where the value comes from, safe to show (never the value).
    pub fn describe(&self) -> String {
        match self {
            Self::Env(name) => format!("environment variable {name}"),
            Self::File(path) => format!("file {path}"),
            Self::Literal(_) => "inline value".to_string(),
        }
    }

    /// Resolves the credential with `env` as the environment. Returns a
    /// description of the source (never the value) when it is missing or
    /// empty.
    pub fn resolve(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<Secret, String> {
        let value = match self {
            Self::Env(name) => env(name).unwrap_or_default(),
            Self::File(path) => std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {}", self.describe(), e.kind()))?,
            Self::Literal(secret) => secret.0.clone(),
        };
        let value = value.trim().to_string();
        if value.is_empty() {
            return Err(format!("{} is not set or empty", self.describe()));
        }
        Ok(Secret(value))
    }
}
