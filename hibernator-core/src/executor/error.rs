//! [`ExecutorError`]: classified, metric-friendly executor failures.

use std::time::Duration;

use crate::diag::Diagnostic;
use crate::restore::StoreError;

/// Whether retrying may help.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// Throttling, 5xx, timeouts, conflicts: retried with backoff.
    Transient,
    /// Auth, not found, invalid parameters, missing restore data: never retried.
    Permanent,
}

impl ErrorClass {
    /// `transient` or `permanent`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Transient => "transient",
            Self::Permanent => "permanent",
        }
    }
}

/// Bounded error categories for metric labels. Executors may use their own
/// `&'static str` categories, but should prefer these.
pub mod category {
    /// The API throttled the request.
    pub const THROTTLED: &str = "throttled";
    /// An operation did not finish in time.
    pub const TIMEOUT: &str = "timeout";
    /// Authentication or authorization failed.
    pub const AUTH: &str = "auth";
    /// A resource the parameters name does not exist.
    pub const NOT_FOUND: &str = "not_found";
    /// The target's parameters are invalid.
    pub const INVALID_PARAMETERS: &str = "invalid_parameters";
    /// A concurrent change conflicted with ours.
    pub const CONFLICT: &str = "conflict";
    /// The operation was cancelled.
    pub const CANCELLED: &str = "cancelled";
    /// A wake-up found no restore data for the target.
    pub const MISSING_RESTORE_DATA: &str = "missing_restore_data";
    /// Some resources of a target failed to wake up.
    pub const PARTIAL_RESTORE: &str = "partial_restore";
    /// The restore store failed.
    pub const RESTORE_STORE: &str = "restore_store";
    /// The service is unavailable (5xx, connection refused, I/O).
    pub const UNAVAILABLE: &str = "unavailable";
    /// A bug or an unexpected response.
    pub const INTERNAL: &str = "internal";
    /// The executor does not support the operation (e.g. enforcement).
    pub const UNSUPPORTED: &str = "unsupported";
}

/// A classified executor failure.
///
/// The message is shown to users in plan status, logs and CLI output.
/// **Executors must never put credentials, tokens, connection strings or other
/// secrets into messages or resource names**: `Display` prints them as given.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{category}: {message}{}", resource_suffix(.resource))]
pub struct ExecutorError {
    /// Transient (retried) or permanent.
    pub class: ErrorClass,
    /// Bounded category for metric labels (see [`category`]).
    pub category: &'static str,
    /// Human-readable description, without secrets.
    pub message: String,
    /// Resource key the failure is about, if any.
    pub resource: Option<String>,
}

fn resource_suffix(resource: &Option<String>) -> String {
    resource
        .as_ref()
        .map(|r| format!(" (resource {r})"))
        .unwrap_or_default()
}

impl ExecutorError {
    /// A failure that may succeed when retried.
    pub fn transient(category: &'static str, message: impl Into<String>) -> Self {
        Self {
            class: ErrorClass::Transient,
            category,
            message: message.into(),
            resource: None,
        }
    }

    /// A failure that retrying cannot fix.
    pub fn permanent(category: &'static str, message: impl Into<String>) -> Self {
        Self {
            class: ErrorClass::Permanent,
            category,
            message: message.into(),
            resource: None,
        }
    }

    /// Invalid parameters (permanent), naming the field.
    pub fn invalid_parameters(diagnostic: &Diagnostic) -> Self {
        Self::permanent(category::INVALID_PARAMETERS, diagnostic.to_string())
    }

    /// A wake-up without restore data for `target` (permanent): waking up
    /// with guessed sizes could be worse than staying asleep.
    pub fn missing_restore_data(target: &str) -> Self {
        Self::permanent(
            category::MISSING_RESTORE_DATA,
            format!(
                "no restore data for target {target:?}: it was never hibernated by this plan, or its restore data was deleted; wake its resources up by hand"
            ),
        )
    }

    /// The operation was cancelled (permanent: the caller asked to stop).
    pub fn cancelled() -> Self {
        Self::permanent(category::CANCELLED, "operation cancelled")
    }

    /// `what` did not finish within `after` (transient).
    pub fn timeout(what: &str, after: Duration) -> Self {
        Self::transient(
            category::TIMEOUT,
            format!(
                "{what} did not finish within {}",
                crate::duration::format_duration(after)
            ),
        )
    }

    /// Attaches the resource key the failure is about.
    pub fn with_resource(mut self, resource: impl Into<String>) -> Self {
        self.resource = Some(resource.into());
        self
    }

    /// True for [`ErrorClass::Transient`].
    pub fn is_transient(&self) -> bool {
        self.class == ErrorClass::Transient
    }
}

impl From<StoreError> for ExecutorError {
    fn from(e: StoreError) -> Self {
        let category = if matches!(e, StoreError::Conflict { .. }) {
            category::CONFLICT
        } else {
            category::RESTORE_STORE
        };
        let message = e.to_string();
        if e.is_transient() {
            Self::transient(category, message)
        } else {
            Self::permanent(category, message)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_includes_category_message_and_resource() {
        let e = ExecutorError::transient(category::THROTTLED, "rate exceeded")
            .with_resource("nodegroup/ng-1");
        assert_eq!(
            e.to_string(),
            "throttled: rate exceeded (resource nodegroup/ng-1)"
        );
        assert!(e.is_transient());
    }

    #[test]
    fn constructors_classify() {
        assert!(!ExecutorError::missing_restore_data("web").is_transient());
        assert_eq!(
            ExecutorError::missing_restore_data("web").category,
            category::MISSING_RESTORE_DATA
        );
        assert!(!ExecutorError::cancelled().is_transient());
        let t = ExecutorError::timeout("shutdown of web", Duration::from_secs(90));
        assert!(t.is_transient());
        assert!(t.message.contains("1m30s"), "{t}");
        let p = ExecutorError::invalid_parameters(&Diagnostic::new("parameters.x", "bad"));
        assert_eq!(p.category, category::INVALID_PARAMETERS);
        assert!(p.to_string().contains("parameters.x"));
    }

    #[test]
    fn store_errors_keep_their_class() {
        let conflict = StoreError::Conflict {
            target: "t".into(),
            expected: None,
            found: Some("1".into()),
        };
        let e = ExecutorError::from(conflict);
        assert_eq!(
            (e.class, e.category),
            (ErrorClass::Transient, category::CONFLICT)
        );
        let corrupt = StoreError::Corrupt {
            location: "f".into(),
            message: "bad".into(),
        };
        let e = ExecutorError::from(corrupt);
        assert_eq!(
            (e.class, e.category),
            (ErrorClass::Permanent, category::RESTORE_STORE)
        );
    }
}
