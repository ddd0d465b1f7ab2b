//! Parameter pieces shared by several executors: waiting for completion,
//! errors, and the name rules of AWS and Kubernetes identifiers.

use std::collections::BTreeSet;
use std::time::Duration;

use hibernator_core::diag::Diagnostics;
use hibernator_core::duration::parse_duration;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Timeout used when `awaitCompletion.timeout` is not set: 15 minutes.
pub const DEFAULT_AWAIT_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// Errors of the parameter helpers (the validation itself reports
/// [`Diagnostics`] instead).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
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

/// Warns about repeated entries of a list (`field` is the list's path).
pub(crate) fn warn_duplicates(items: &[String], field: &str, d: &mut Diagnostics) {
    let mut seen = BTreeSet::new();
    for (i, item) in items.iter().enumerate() {
        if !seen.insert(item.as_str()) {
            d.warn(
                format!("{field}[{i}]"),
                format!("{item:?} is listed more than once"),
            );
        }
    }
}

fn is_lower_alnum(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// Checks an RFC 1123 DNS label (Kubernetes namespace names): at most 63
/// characters, lowercase letters, digits and `-`, starting and ending with a
/// letter or digit.
pub fn check_dns_label(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".to_string());
    }
    if name.len() > 63 {
        return Err(format!("{name:?} is longer than 63 characters"));
    }
    if !name.chars().all(|c| is_lower_alnum(c) || c == '-') {
        return Err(format!(
            "{name:?} may only contain lowercase letters, digits and '-'"
        ));
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err(format!(
            "{name:?} must start and end with a letter or digit"
        ));
    }
    Ok(())
}

/// Checks an RFC 1123 DNS subdomain (most Kubernetes object names): at most
/// 253 characters, dot-separated DNS labels.
pub fn check_dns_subdomain(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".to_string());
    }
    if name.len() > 253 {
        return Err(format!("{name:?} is longer than 253 characters"));
    }
    for part in name.split('.') {
        check_dns_label(part).map_err(|_| {
            format!(
                "{name:?} must be lowercase letters, digits, '-' and '.', \
                 each dot-separated part starting and ending with a letter or digit"
            )
        })?;
    }
    Ok(())
}

fn is_label_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// Checks a Kubernetes label key (`[prefix/]name`): the optional prefix is a
/// DNS subdomain, the name at most 63 characters of letters, digits, `-`,
/// `_` and `.`, starting and ending with a letter or digit.
pub fn check_label_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        check_dns_subdomain(prefix).map_err(|e| format!("label key prefix: {e}"))?;
    }
    if !is_label_name(name) {
        return Err(format!(
            "label key {key:?}: the name part must be 1-63 letters, digits, '-', '_' or '.', \
             starting and ending with a letter or digit"
        ));
    }
    Ok(())
}

/// Checks a Kubernetes label value: empty, or a valid label name part.
pub fn check_label_value(value: &str) -> Result<(), String> {
    if value.is_empty() || is_label_name(value) {
        Ok(())
    } else {
        Err(format!(
            "label value {value:?} must be at most 63 letters, digits, '-', '_' or '.', \
             starting and ending with a letter or digit"
        ))
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

/// A parameter pair where exactly one of a name list and a label selector
/// must be set (karpenter `nodePools`/`nodeSelector`, workloadscaler
/// `namespace.literals`/`namespace.selector`).
pub(crate) struct NamesOrSelector<'a> {
    /// The names, if set.
    pub names: Option<&'a [String]>,
    /// Field name of the names (`nodePools`).
    pub names_key: &'a str,
    /// Error for an empty name list.
    pub empty_names: &'a str,
    /// Check of one name.
    pub check_name: fn(&str) -> Result<(), String>,
    /// The selector, if set.
    pub selector: Option<&'a crate::selector::LabelSelector>,
    /// Field name of the selector (`nodeSelector`).
    pub selector_key: &'a str,
    /// Warning for an empty selector (it selects everything).
    pub empty_selector: &'a str,
}

impl NamesOrSelector<'_> {
    /// Checks the pair under `field`.
    pub(crate) fn validate(&self, field: &str, d: &mut Diagnostics) {
        if self.names.is_some() == self.selector.is_some() {
            d.error(
                field,
                format!(
                    "set exactly one of {} or {}",
                    self.names_key, self.selector_key
                ),
            );
        }
        if let Some(names) = self.names {
            let path = format!("{field}.{}", self.names_key);
            if names.is_empty() {
                d.error(path.clone(), self.empty_names);
            }
            for (i, name) in names.iter().enumerate() {
                if let Err(e) = (self.check_name)(name) {
                    d.error(format!("{path}[{i}]"), e);
                }
            }
            warn_duplicates(names, &path, d);
        }
        if let Some(selector) = self.selector {
            let path = format!("{field}.{}", self.selector_key);
            if selector.is_empty() {
                d.warn(path.clone(), self.empty_selector);
            }
            selector.validate(&path, d);
        }
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

    #[test]
    fn dns_names() {
        assert!(check_dns_label("team-a1").is_ok());
        for bad in ["", "-a", "a-", "A", "a_b", &"a".repeat(64)] {
            assert!(check_dns_label(bad).is_err(), "{bad}");
        }
        assert!(check_dns_subdomain("default.pool-1").is_ok());
        assert!(check_dns_subdomain("a..b").is_err());
        assert!(check_dns_subdomain(&"a".repeat(254)).is_err());
    }

    #[test]
    fn label_keys_and_values() {
        for ok in ["app", "app.kubernetes.io/name", "a_b.c-d", "x/Y"] {
            assert!(check_label_key(ok).is_ok(), "{ok}");
        }
        for bad in ["", "/app", "-app", "Bad_Prefix/app", "a/b/c", "app-"] {
            assert!(check_label_key(bad).is_err(), "{bad}");
        }
        assert!(check_label_value("").is_ok());
        assert!(check_label_value("v1.2_x").is_ok());
        assert!(check_label_value("has space").is_err());
        assert!(check_label_value(&"v".repeat(64)).is_err());
    }

    #[test]
    fn duplicates_warn_with_index() {
        let mut d = Diagnostics::new();
        warn_duplicates(&["a".into(), "b".into(), "a".into()], "f", &mut d);
        assert_eq!(d.warnings.len(), 1);
        assert_eq!(d.warnings[0].field, "f[2]");
    }
}
