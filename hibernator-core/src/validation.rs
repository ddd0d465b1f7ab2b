//! One validation module for every entry point: `hibernator validate`, the
//! admission webhook and the controller all call these functions.
//!
//! Every diagnostic names the field path it is about
//! (`spec.targets[2].connectorRef.name`) and says what is wrong. Errors make
//! an object invalid; warnings are shown (and returned as admission
//! warnings) but accepted.

use std::collections::BTreeMap;

use crate::diag::Diagnostics;
use crate::duration::parse_duration;
use crate::input::PlanDocuments;
use crate::params::{ConnectorUse, ParameterCatalog};
use crate::types::{
    CloudProvider, CloudProviderType, HibernatePlan, HibernatePlanSpec, K8SCluster,
    MAX_ENFORCE_INTERVAL, MIN_ENFORCE_INTERVAL, ScheduleException, Target,
};

/// Upper bound of `spec.behavior.retries`.
pub const MAX_RETRIES: u32 = 10;
/// Longest target timeout accepted.
pub const MAX_TARGET_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Validates a whole `HibernatePlan` object: metadata, schedule, execution
/// strategy, behaviour and every target's type and parameters.
pub fn validate_plan(plan: &HibernatePlan, catalog: &ParameterCatalog) -> Diagnostics {
    let mut d = Diagnostics::new();
    match plan.metadata.name.as_deref() {
        None | Some("") => d.error("metadata.name", "is required"),
        Some(name) => {
            if let Err(problem) = check_dns_label(name, 63 - 10) {
                d.error(
                    "metadata.name",
                    format!("{problem} (plan names become part of Job and ConfigMap names)"),
                );
            }
        }
    }
    d.extend(validate_plan_spec(&plan.spec, catalog));
    d
}

/// Validates a plan spec; field paths start with `spec.`.
pub fn validate_plan_spec(spec: &HibernatePlanSpec, catalog: &ParameterCatalog) -> Diagnostics {
    let mut d = Diagnostics::new();
    d.extend(crate::schedule::check_schedule(
        &spec.schedule,
        "spec.schedule",
    ));
    check_targets(spec, catalog, &mut d);
    crate::readyby::check_wake_up(spec, &mut d);
    if spec.behavior.retries > MAX_RETRIES {
        d.error(
            "spec.behavior.retries",
            format!(
                "{} is more than the maximum of {MAX_RETRIES}",
                spec.behavior.retries
            ),
        );
    }
    check_enforce(spec, &mut d);
    // Structural checks of the strategy need unique target names to be meaningful.
    d.extend(crate::planner::check_execution(spec));
    d
}

/// `spec.behavior.enforce`: the interval is a duration within
/// [`MIN_ENFORCE_INTERVAL`]..=[`MAX_ENFORCE_INTERVAL`].
fn check_enforce(spec: &HibernatePlanSpec, d: &mut Diagnostics) {
    let Some(interval) = spec
        .behavior
        .enforce
        .as_ref()
        .and_then(|e| e.interval.as_deref())
    else {
        return;
    };
    const FIELD: &str = "spec.behavior.enforce.interval";
    match parse_duration(interval) {
        Err(problem) => d.error(FIELD, problem),
        Ok(t) if t < MIN_ENFORCE_INTERVAL => d.error(
            FIELD,
            format!("{interval} is shorter than the minimum of 5m"),
        ),
        Ok(t) if t > MAX_ENFORCE_INTERVAL => d.error(
            FIELD,
            format!("{interval} is longer than the maximum of 24h"),
        ),
        Ok(_) => {}
    }
}

fn check_targets(spec: &HibernatePlanSpec, catalog: &ParameterCatalog, d: &mut Diagnostics) {
    if spec.targets.is_empty() {
        d.error("spec.targets", "at least one target is required");
    }
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, target) in spec.targets.iter().enumerate() {
        let field = format!("spec.targets[{i}]");
        if target.name.is_empty() {
            d.error(format!("{field}.name"), "is required");
        } else if let Err(problem) = check_dns_label(&target.name, 63) {
            d.error(
                format!("{field}.name"),
                format!("{problem} (target names are used in labels and Job names)"),
            );
        }
        if let Some(first) = seen.insert(target.name.as_str(), i) {
            d.error(
                format!("{field}.name"),
                format!(
                    "duplicate target name {:?} (also spec.targets[{first}].name)",
                    target.name
                ),
            );
            // keep the first index for later duplicates
            seen.insert(target.name.as_str(), first);
        }
        if let Some(reference) = &target.connector_ref
            && reference.name.is_empty()
        {
            d.error(format!("{field}.connectorRef.name"), "is required");
        }
        if let Some(connector) = catalog.connector(&target.kind) {
            check_connector(target, connector, &field, d);
        }
        if let Some(timeout) = &target.timeout {
            match parse_duration(timeout) {
                Err(problem) => d.error(format!("{field}.timeout"), problem),
                Ok(t) if t.is_zero() => d.error(format!("{field}.timeout"), "must be positive"),
                Ok(t) if t > MAX_TARGET_TIMEOUT => d.error(
                    format!("{field}.timeout"),
                    format!("{timeout} is longer than the maximum of 24h"),
                ),
                Ok(_) => {}
            }
        }
        if target.kind.is_empty() {
            d.error(format!("{field}.type"), "is required");
            continue;
        }
        match catalog.get(&target.kind) {
            Some(check) => {
                d.extend(check.check(target.parameters.as_ref(), &format!("{field}.parameters")))
            }
            None => {
                let known: Vec<&str> = catalog.types().collect();
                d.error(
                    format!("{field}.type"),
                    format!(
                        "unknown executor type {:?}; this binary knows: {}",
                        target.kind,
                        if known.is_empty() {
                            "none".to_string()
                        } else {
                            known.join(", ")
                        }
                    ),
                );
            }
        }
    }
}

/// Checks a target's `connectorRef` against the connector its executor type
/// works with.
fn check_connector(target: &Target, connector: &ConnectorUse, field: &str, d: &mut Diagnostics) {
    let kind = &target.kind;
    match (connector, &target.connector_ref) {
        (ConnectorUse::Any, _) => {}
        (ConnectorUse::Kind(needed), None) => d.error(
            format!("{field}.connectorRef"),
            format!("is required: executor type {kind:?} needs a connector of kind {needed}"),
        ),
        (ConnectorUse::Kind(needed), Some(reference)) if reference.kind != *needed => d.error(
            format!("{field}.connectorRef.kind"),
            format!(
                "executor type {kind:?} needs a connector of kind {needed}, not {}",
                reference.kind
            ),
        ),
        (ConnectorUse::Kind(_), Some(_)) => {}
        (ConnectorUse::None, Some(_)) => d.warn(
            format!("{field}.connectorRef"),
            format!("executor type {kind:?} needs no connector; connectorRef is ignored"),
        ),
        (ConnectorUse::None, None) => {}
    }
}

/// Validates a `ScheduleException` on its own (the plan it refers to is not needed).
pub fn validate_exception(exception: &ScheduleException) -> Diagnostics {
    let mut d = Diagnostics::new();
    if exception.spec.plan_ref.name.is_empty() {
        d.error("spec.planRef.name", "is required");
    }
    d.extend(crate::schedule::check_exception(&exception.spec, "spec"));
    d
}

/// Validates a `CloudProvider`.
pub fn validate_cloud_provider(provider: &CloudProvider) -> Diagnostics {
    let mut d = Diagnostics::new();
    match provider.spec.kind {
        CloudProviderType::Aws => match &provider.spec.aws {
            None => d.error("spec.aws", "is required when type is aws"),
            Some(aws) => {
                if aws.account_id.len() != 12 || !aws.account_id.chars().all(|c| c.is_ascii_digit())
                {
                    d.error(
                        "spec.aws.accountId",
                        format!("{:?} is not a 12-digit AWS account id", aws.account_id),
                    );
                }
                if !is_aws_region(&aws.region) {
                    d.error(
                        "spec.aws.region",
                        format!(
                            "{:?} is not an AWS region name such as eu-central-1",
                            aws.region
                        ),
                    );
                }
                if let Some(arn) = &aws.assume_role_arn
                    && !(arn.starts_with("arn:aws")
                        && arn.contains(":iam::")
                        && arn.contains(":role/"))
                {
                    d.error(
                        "spec.aws.assumeRoleArn",
                        format!(
                            "{arn:?} is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)"
                        ),
                    );
                }
                match (&aws.auth.service_account, &aws.auth.static_keys) {
                    (Some(_), Some(_)) => d.error(
                        "spec.aws.auth",
                        "set exactly one of serviceAccount and static, not both",
                    ),
                    (None, None) => d.error(
                        "spec.aws.auth",
                        "set one of serviceAccount (IRSA / default chain) and static (keys in a Secret)",
                    ),
                    (None, Some(s)) if s.secret_ref.name.is_empty() => {
                        d.error("spec.aws.auth.static.secretRef.name", "is required")
                    }
                    _ => {}
                }
            }
        },
    }
    d
}

/// Validates a `K8SCluster`: exactly one of `eks` and `k8s`, and a complete form of it.
pub fn validate_cluster(cluster: &K8SCluster) -> Diagnostics {
    let mut d = Diagnostics::new();
    let spec = &cluster.spec;
    match (&spec.eks, &spec.k8s) {
        (Some(_), Some(_)) => d.error(
            "spec",
            "eks and k8s are mutually exclusive: set eks (with providerRef) for an EKS cluster or k8s for any other cluster",
        ),
        (None, None) => d.error("spec", "set one of eks and k8s"),
        (Some(eks), None) => {
            if eks.name.is_empty() {
                d.error("spec.eks.name", "is required");
            }
            if !is_aws_region(&eks.region) {
                d.error(
                    "spec.eks.region",
                    format!("{:?} is not an AWS region name such as eu-central-1", eks.region),
                );
            }
            match &spec.provider_ref {
                None => d.error(
                    "spec.providerRef",
                    "is required with eks: it names the CloudProvider whose credentials sign the EKS token",
                ),
                Some(r) if r.name.is_empty() => d.error("spec.providerRef.name", "is required"),
                Some(_) => {}
            }
        }
        (None, Some(k8s)) => match (&k8s.kubeconfig_ref, k8s.in_cluster) {
            (Some(_), Some(true)) => d.error(
                "spec.k8s",
                "kubeconfigRef and inCluster are mutually exclusive",
            ),
            (None, None | Some(false)) => d.error(
                "spec.k8s",
                "set kubeconfigRef (a Secret with a kubeconfig key) or inCluster: true",
            ),
            (Some(r), _) if r.name.is_empty() => d.error("spec.k8s.kubeconfigRef.name", "is required"),
            _ => {}
        },
    }
    d
}

/// Validates every object of a plan file. Fields of objects other than the
/// plan are prefixed with `Kind/name:` so the user knows which document they
/// belong to.
pub fn validate_documents(docs: &PlanDocuments, catalog: &ParameterCatalog) -> Diagnostics {
    let mut d = validate_plan(&docs.plan, catalog);
    d.warnings.extend(docs.warnings.iter().cloned());
    for e in &docs.exceptions {
        prefixed(
            &mut d,
            "ScheduleException",
            e.metadata.name.as_deref(),
            validate_exception(e),
        );
    }
    for p in &docs.cloud_providers {
        prefixed(
            &mut d,
            "CloudProvider",
            p.metadata.name.as_deref(),
            validate_cloud_provider(p),
        );
    }
    for c in &docs.clusters {
        prefixed(
            &mut d,
            "K8SCluster",
            c.metadata.name.as_deref(),
            validate_cluster(c),
        );
    }
    for c in &docs.calendars {
        prefixed(
            &mut d,
            "HolidayCalendar",
            c.metadata.name.as_deref(),
            validate_calendar(c),
        );
    }
    if d.is_valid() {
        // Only a valid schedule and exceptions can be compiled together. A
        // calendar the file does not resolve is a warning: the plan still runs
        // on its windows (the controller resolves it from the cluster).
        match docs.compile_schedule(chrono::Utc::now().date_naive()) {
            Err(e) => d.error(e.field.clone(), e.message.clone()),
            Ok((_, problems)) => {
                for p in problems {
                    d.warn(p.field, p.message);
                }
            }
        }
    }
    d
}

/// Checks a `HolidayCalendar` on its own: its date lists and built-in sets (its
/// iCalendar documents are read where it is resolved).
pub fn validate_calendar(calendar: &crate::types::HolidayCalendar) -> Diagnostics {
    let mut d = Diagnostics::new();
    let spec = &calendar.spec;
    if spec.dates.is_empty() && spec.public_holidays.is_empty() && spec.ical.is_empty() {
        d.error(
            "spec",
            "a calendar needs at least one source: dates, publicHolidays or ical",
        );
    }
    for (field, list) in [("spec.dates", &spec.dates), ("spec.exclude", &spec.exclude)] {
        for (i, text) in list.iter().enumerate() {
            if let Err(m) = crate::calendar::parse_date_range(text) {
                d.error(format!("{field}[{i}]"), m);
            }
        }
    }
    for (i, p) in spec.public_holidays.iter().enumerate() {
        if let Err((sub, m)) =
            crate::calendar::public_holidays(&p.country, p.subdivision.as_deref())
        {
            d.error(format!("spec.publicHolidays[{i}].{sub}"), m);
        }
    }
    for (i, s) in spec.ical.iter().enumerate() {
        let r = &s.config_map_ref;
        if r.name.trim().is_empty() {
            d.error(
                format!("spec.ical[{i}].configMapRef.name"),
                "a ConfigMap name is required",
            );
        }
        if r.key.trim().is_empty() {
            d.error(
                format!("spec.ical[{i}].configMapRef.key"),
                "the key of the document is required",
            );
        }
    }
    d
}

fn prefixed(into: &mut Diagnostics, kind: &str, name: Option<&str>, diags: Diagnostics) {
    let prefix = format!("{kind}/{}: ", name.unwrap_or("<unnamed>"));
    for mut e in diags.errors {
        e.field = format!("{prefix}{}", e.field);
        into.errors.push(e);
    }
    for mut w in diags.warnings {
        w.field = format!("{prefix}{}", w.field);
        into.warnings.push(w);
    }
}

/// Checks an RFC 1123 DNS label of at most `max` characters.
pub fn check_dns_label(name: &str, max: usize) -> Result<(), String> {
    if name.len() > max {
        return Err(format!("{name:?} is longer than {max} characters"));
    }
    let valid_chars = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    let valid_ends = name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if !valid_chars || !valid_ends {
        return Err(format!(
            "{name:?} is not a DNS label: use lower-case letters, digits and '-', starting and ending with a letter or digit"
        ));
    }
    Ok(())
}

fn is_aws_region(region: &str) -> bool {
    // e.g. eu-central-1, us-gov-west-1, ap-southeast-3
    let parts: Vec<&str> = region.split('-').collect();
    parts.len() >= 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
        && parts
            .last()
            .is_some_and(|p| p.chars().all(|c| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests;
