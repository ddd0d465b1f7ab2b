//! The well-known names of Hibernator's contract with the cluster: labels
//! and annotations on runner Jobs and restore ConfigMaps, the plan control
//! annotations, the finalizer, the restore ConfigMap name and the runner
//! environment.
//!
//! Every crate (controller, runner, kubectl plugin, streaming server,
//! executors, testkit) takes these from here, so each fact has exactly one
//! definition.
//!
//! ```
//! use hibernator_core::wellknown::{LABEL_PLAN, plan_label, restore_config_map_name};
//! assert_eq!(LABEL_PLAN, "hibernator.dev/plan");
//! assert_eq!(plan_label("nightly"), "nightly");
//! assert_eq!(restore_config_map_name("nightly"), "hibernator-restore-nightly");
//! ```

// ----- labels on runner Jobs (and their Pods) -----

/// Label: the plan a Job (or restore ConfigMap) belongs to, in its
/// label-safe form ([`plan_label`]).
pub const LABEL_PLAN: &str = "hibernator.dev/plan";
/// Label of the ConfigMaps holding iCalendar documents of `HolidayCalendar`s
/// (`spec.ical`): the controller watches only ConfigMaps that carry it.
pub const LABEL_CALENDAR: &str = "hibernator.dev/calendar";
/// Label: the target a Job runs (label-safe form, [`dns_label`]).
pub const LABEL_TARGET: &str = "hibernator.dev/target";
/// Label: the operation of a Job, `shutdown` or `wakeup`.
pub const LABEL_OPERATION: &str = "hibernator.dev/operation";
/// Label: the cycle id of a Job.
pub const LABEL_CYCLE_ID: &str = "hibernator.dev/cycle-id";
/// Label: the execution id of a Job (equal to the Job name).
pub const LABEL_EXECUTION_ID: &str = "hibernator.dev/execution-id";
/// Label: the attempt number of a Job (1-based).
pub const LABEL_ATTEMPT: &str = "hibernator.dev/attempt";
/// Label of an enforce Job: the id of its enforcement check.
pub const LABEL_ENFORCE_CHECK: &str = "hibernator.dev/enforce-check";
/// Label the Kubernetes Job controller puts on a Job's Pods (not ours, but
/// part of how we find a runner's Pods).
pub const LABEL_JOB_NAME: &str = "batch.kubernetes.io/job-name";

// ----- annotations on runner Jobs -----

/// Annotation on runner Jobs: the full plan name (labels may be shortened).
pub const ANNOTATION_PLAN: &str = "hibernator/plan";
/// Annotation on runner Jobs: the full target name (labels may be shortened).
pub const ANNOTATION_TARGET: &str = "hibernator/target";

// ----- plan control annotations (set by users or `kubectl hibernator`) -----

/// Plan annotation: suspend the plan until this RFC 3339 instant.
pub const ANNOTATION_SUSPEND_UNTIL: &str = "hibernator.dev/suspend-until";
/// Plan annotation: why the plan was suspended (shown by `describe`).
pub const ANNOTATION_SUSPEND_REASON: &str = "hibernator.dev/suspend-reason";
/// Plan annotation: force a state now (`hibernate` or `wakeup`).
pub const ANNOTATION_OVERRIDE: &str = "hibernator.dev/override";
/// Plan annotation: when the override expires (RFC 3339); without it the
/// override holds until removed.
pub const ANNOTATION_OVERRIDE_UNTIL: &str = "hibernator.dev/override-until";
/// Plan annotation: retry an `Error` plan now (value: an RFC 3339 instant,
/// so that setting it again is a change).
pub const ANNOTATION_RETRY_NOW: &str = "hibernator.dev/retry-now";

// ----- annotations on managed resources -----

/// Annotation on a workload: leave it out of hibernation (`"true"`).
pub const ANNOTATION_EXCLUDE: &str = "hibernator.dev/exclude";

// ----- other names -----

/// The finalizer the controller puts on plans (wakes the targets up and
/// cleans up before a plan is deleted).
pub const FINALIZER: &str = "hibernator.dev/cleanup";
/// Audience of the projected ServiceAccount token a runner streams with.
pub const STREAM_TOKEN_AUDIENCE: &str = "hibernator-control-plane";
/// Directory the runner's projected stream token is mounted in.
pub const STREAM_TOKEN_DIR: &str = "/var/run/secrets/stream";
/// Full path of the runner's projected stream token.
pub const STREAM_TOKEN_PATH: &str = "/var/run/secrets/stream/token";
/// Prefix of a plan's restore ConfigMap ([`restore_config_map_name`]).
pub const RESTORE_CONFIG_MAP_PREFIX: &str = "hibernator-restore-";

/// Longest Kubernetes label value / DNS label.
pub const MAX_LABEL_LEN: usize = 63;
/// Longest Kubernetes object name (DNS subdomain).
pub const MAX_NAME_LEN: usize = 253;

// ----- runner environment (set on runner Jobs, read by `hibernator runner`) -----

/// Runner environment: the plan name.
pub const ENV_PLAN: &str = "HIBERNATOR_PLAN";
/// Runner environment: the plan namespace.
pub const ENV_PLAN_NAMESPACE: &str = "HIBERNATOR_PLAN_NAMESPACE";
/// Runner environment: the target name.
pub const ENV_TARGET: &str = "HIBERNATOR_TARGET";
/// Runner environment: the operation (`shutdown` or `wakeup`).
pub const ENV_OPERATION: &str = "HIBERNATOR_OPERATION";
/// Runner environment: the execution id (the Job name).
pub const ENV_EXECUTION_ID: &str = "HIBERNATOR_EXECUTION_ID";
/// Runner environment: the cycle id.
pub const ENV_CYCLE_ID: &str = "HIBERNATOR_CYCLE_ID";
/// Log format of a service (`json` or `text`); the controller sets it on
/// runner Jobs.
pub const ENV_LOG_FORMAT: &str = "HIBERNATOR_LOG_FORMAT";

/// The name of `plan`'s restore ConfigMap: `hibernator-restore-<plan>`.
///
/// Names that would be longer than [`MAX_NAME_LEN`] are cut and given a
/// hash suffix, so distinct plans keep distinct ConfigMaps; every shorter
/// name is exactly `hibernator-restore-<plan>`, the name earlier releases
/// used, so existing ledgers are found again.
pub fn restore_config_map_name(plan: &str) -> String {
    let full = format!("{RESTORE_CONFIG_MAP_PREFIX}{plan}");
    if full.len() <= MAX_NAME_LEN {
        return full;
    }
    // FNV-1a 64, low 32 bits: the suffix earlier releases wrote.
    let suffix = format!("-{:08x}", fnv1a64(full.as_bytes()) as u32);
    let mut keep = MAX_NAME_LEN - suffix.len();
    while !full.is_char_boundary(keep) {
        keep -= 1;
    }
    let head = full[..keep].trim_end_matches(['-', '.']);
    format!("{head}{suffix}")
}

fn fnv1a64(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes
        .iter()
        .fold(OFFSET, |h, b| (h ^ u64::from(*b)).wrapping_mul(PRIME))
}

/// 32-bit FNV-1a of `input`, rendered as 8 hex digits: a stable short hash
/// for name suffixes (stable across releases, unlike std's hashers).
pub fn short_hash(input: &str) -> String {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in input.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    format!("{hash:08x}")
}

/// `input` as a valid DNS label / label value of at most `max` characters:
/// lowercase, runs of other characters replaced by `-`, no leading or
/// trailing `-`. Longer results are cut and get `-<hash of input>` so
/// distinct inputs stay distinct.
pub fn dns_label(input: &str, max: usize) -> String {
    let mut out = String::with_capacity(input.len());
    for c in input.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let trimmed = out.trim_matches('-');
    if trimmed == input && trimmed.len() <= max && !trimmed.is_empty() {
        return trimmed.to_string();
    }
    let hash = short_hash(input);
    let keep = max.saturating_sub(hash.len() + 1);
    let prefix = trimmed.get(..keep.min(trimmed.len())).unwrap_or("");
    let prefix = prefix.trim_end_matches('-');
    if prefix.is_empty() {
        hash
    } else {
        format!("{prefix}-{hash}")
    }
}

/// The label-safe form of a plan name: its [`LABEL_PLAN`] label value.
pub fn plan_label(plan: &str) -> String {
    dns_label(plan, MAX_LABEL_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restore_config_map_names_are_prefixed_and_bounded() {
        assert_eq!(restore_config_map_name("web"), "hibernator-restore-web");
        // The longest plan name that is not hashed keeps the plain name.
        let longest_plain = "a".repeat(MAX_NAME_LEN - RESTORE_CONFIG_MAP_PREFIX.len());
        assert_eq!(
            restore_config_map_name(&longest_plain),
            format!("hibernator-restore-{longest_plain}")
        );
        let long = "a".repeat(253);
        let other = format!("{}b", "a".repeat(252));
        let n1 = restore_config_map_name(&long);
        let n2 = restore_config_map_name(&other);
        assert!(n1.len() <= MAX_NAME_LEN, "{}", n1.len());
        assert!(n1.starts_with("hibernator-restore-aaa"));
        assert_ne!(n1, n2);
        let dotted = format!("{}.{}", "a".repeat(225), "b".repeat(27));
        let n3 = restore_config_map_name(&dotted);
        assert!(!n3.contains(".-"), "{n3}");
    }

    #[test]
    fn restore_config_map_names_of_long_plans_are_stable() {
        // Pinned: a changed hash would lose the ledger of existing plans.
        let name = restore_config_map_name(&"p".repeat(240));
        assert_eq!(name.len(), MAX_NAME_LEN);
        assert!(name.ends_with("ppp-23e1a98f"), "{name}");
    }

    #[test]
    fn plan_labels_fit() {
        assert_eq!(plan_label("web"), "web");
        assert!(plan_label(&"x".repeat(200)).len() <= MAX_LABEL_LEN);
        assert_ne!(plan_label("a.b"), plan_label("a-b"));
    }
}
