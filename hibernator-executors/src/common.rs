//! Parameter pieces shared by several executors: waiting for completion,
//! errors, and the name rules of AWS identifiers. The Kubernetes name rules
//! and [`NamesOrSelector`] live in [`hibernator_core::selector`] and are
//! re-exported here.

use std::time::Duration;

use hibernator_core::diag::Diagnostics;
use hibernator_core::duration::parse_duration;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use hibernator_core::selector::{
    NamesOrSelector, check_dns_label, check_dns_subdomain, check_label_key, check_label_value,
    warn_duplicates,
};

/// Timeout used when `awaitCompletion.timeout` is not set: 15 minutes.
pub const DEFAULT_AWAIT_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// Errors of the parameter helpers (the validation itself reports
/// [`Diagnostics`] instead).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParamsError {
    /// `awaitCompletion.timeout` is not a valid duration.
    #[error("invalid awaitCompletion.timeout {value:?}: {reason}")]
    InvalidTimeout {
        /// The text as written.
        value: String,
        /// Why it was rejected.
        reason: String,
    },
    /// `connectivityCheck.timeout` (rds) is not a valid duration.
    #[error("invalid connectivityCheck.timeout {value:?}: {reason}")]
    InvalidConnectivityTimeout {
        /// The text as written.
        value: String,
        /// Why it was rejected.
        reason: String,
    },
    /// An `includedGroups` entry is neither a known alias nor `group/version/resource`.
    #[error("invalid workload group {value:?}: {reason}")]
    InvalidWorkloadGroup {
        /// The entry as written.
        value: String,
        /// Why it was rejected.
        reason: String,
    },
}

/// Whether (and how long) an operation waits until the cloud or cluster
/// reports the resources in their target state.
///
/// `enabled` defaults to **true**: a target only counts as done once its
/// resources really are stopped (shutdown) or available (wake-up), so
/// dependency ordering (`DAG`, `Staged`) means what it says and a wake-up
/// that never becomes ready is reported as a failure instead of a silent
/// success. Set `enabled: false` for fire-and-forget operations.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AwaitCompletion {
    /// Wait for the target state before reporting the target done (default `true`).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Longest wait, as a duration such as `10m` or `1h` (default `15m`).
    /// Must stay below the target's own `timeout` (default `1h`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

fn default_true() -> bool {
    true
}

impl Default for AwaitCompletion {
    fn default() -> Self {
        Self {
            enabled: true,
            timeout: None,
        }
    }
}

impl AwaitCompletion {
    /// The timeout, or [`DEFAULT_AWAIT_TIMEOUT`] when not set.
    pub fn try_timeout(&self) -> Result<Duration, ParamsError> {
        match &self.timeout {
            None => Ok(DEFAULT_AWAIT_TIMEOUT),
            Some(text) => positive_duration(text).map_err(|reason| ParamsError::InvalidTimeout {
                value: text.clone(),
                reason,
            }),
        }
    }

    /// The timeout for validated parameters. An invalid value (which
    /// validation rejects) falls back to [`DEFAULT_AWAIT_TIMEOUT`].
    pub fn timeout(&self) -> Duration {
        self.try_timeout().unwrap_or(DEFAULT_AWAIT_TIMEOUT)
    }

    /// Checks the timeout; `field` is the path of the `awaitCompletion` object.
    pub fn validate(&self, field: &str, d: &mut Diagnostics) {
        if let Err(ParamsError::InvalidTimeout { reason, .. }) = self.try_timeout() {
            d.error(format!("{field}.timeout"), reason);
        }
        if !self.enabled && self.timeout.is_some() {
            d.warn(
                format!("{field}.timeout"),
                "timeout has no effect while awaitCompletion.enabled is false",
            );
        }
    }
}

/// Parses a duration such as `30s` or `10m` that must be greater than zero;
/// the error says why it is not.
pub(crate) fn positive_duration(text: &str) -> Result<Duration, String> {
    match parse_duration(text) {
        Ok(d) if d.is_zero() => Err("must be greater than zero".to_string()),
        Ok(d) => Ok(d),
        Err(reason) => Err(reason),
    }
}

/// Checks an AWS tag key (1–128 characters) as used in filters.
pub fn check_aws_tag_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        Err("tag keys must not be empty".to_string())
    } else if key.chars().count() > 128 {
        Err(format!("tag key {key:?} is longer than 128 characters"))
    } else {
        Ok(())
    }
}

/// Checks an AWS tag value (at most 256 characters).
pub fn check_aws_tag_value(value: &str) -> Result<(), String> {
    if value.chars().count() > 256 {
        Err(format!("tag value {value:?} is longer than 256 characters"))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn await_completion_defaults_and_timeout() {
        let a: AwaitCompletion = serde_json::from_value(serde_json::json!({})).unwrap();
        assert!(a.enabled);
        assert_eq!(a.timeout(), DEFAULT_AWAIT_TIMEOUT);
        assert_eq!(a, AwaitCompletion::default());
        let a = AwaitCompletion {
            enabled: true,
            timeout: Some("1h30m".into()),
        };
        assert_eq!(a.timeout(), Duration::from_secs(5400));
    }

    #[test]
    fn await_completion_rejects_bad_timeouts() {
        for bad in ["30", "soon", "0s", ""] {
            let a = AwaitCompletion {
                enabled: true,
                timeout: Some(bad.into()),
            };
            assert!(a.try_timeout().is_err(), "{bad}");
            assert_eq!(a.timeout(), DEFAULT_AWAIT_TIMEOUT);
            let mut d = Diagnostics::new();
            a.validate("p.awaitCompletion", &mut d);
            assert_eq!(d.errors[0].field, "p.awaitCompletion.timeout", "{bad}");
        }
    }

    #[test]
    fn disabled_with_timeout_warns() {
        let a = AwaitCompletion {
            enabled: false,
            timeout: Some("5m".into()),
        };
        let mut d = Diagnostics::new();
        a.validate("x", &mut d);
        assert!(d.errors.is_empty());
        assert_eq!(d.warnings[0].field, "x.timeout");
    }
}
