//! Validation of a `HibernateNotification` spec (the admission webhook and
//! the controller's `Ready` condition); every diagnostic names its field.

use std::collections::BTreeSet;

use hibernator_core::diag::Diagnostics;
use hibernator_core::schedule::check_windows;
use hibernator_core::selector::check_dns_label;
use hibernator_core::types::{HibernateNotificationSpec, SinkType};

use super::render::check_template;

/// Checks `spec`: sinks (names, Secret references, templates, timeouts),
/// plan selection and quiet hours.
pub fn check_notification(spec: &HibernateNotificationSpec) -> Diagnostics {
    let mut d = Diagnostics::new();
    if spec.sinks.is_empty() {
        d.error("spec.sinks", "at least one sink is required");
    }
    let mut names = BTreeSet::new();
    for (i, sink) in spec.sinks.iter().enumerate() {
        let field = format!("spec.sinks[{i}]");
        if let Err(e) = check_dns_label(&sink.name) {
            d.error(format!("{field}.name"), e);
        } else if !names.insert(sink.name.as_str()) {
            d.error(
                format!("{field}.name"),
                format!("duplicate sink name {:?}", sink.name),
            );
        }
        for (name, reference) in [
            ("urlSecretRef", Some(&sink.url_secret_ref)),
            ("signingSecretRef", sink.signing_secret_ref.as_ref()),
        ] {
            let Some(reference) = reference else { continue };
            if reference.name.is_empty() {
                d.error(format!("{field}.{name}.name"), "must name a Secret");
            }
            if reference.key.is_empty() {
                d.error(
                    format!("{field}.{name}.key"),
                    "must name a key of the Secret",
                );
            }
        }
        match sink.kind {
            SinkType::Webhook if sink.signing_secret_ref.is_none() => d.error(
                format!("{field}.signingSecretRef"),
                "a Webhook sink signs its requests: name the Secret key holding the HMAC key",
            ),
            SinkType::Slack | SinkType::Teams if sink.signing_secret_ref.is_some() => d.warn(
                format!("{field}.signingSecretRef"),
                format!(
                    "{} does not verify signatures; the key is not used",
                    sink.kind.as_str()
                ),
            ),
            _ => {}
        }
        if let Some(template) = &sink.template
            && let Err(e) = check_template(sink.kind, template)
        {
            d.error(format!("{field}.template"), e.message);
        }
        if let Some(timeout) = &sink.timeout {
            match hibernator_core::duration::parse_duration(timeout) {
                Ok(t) if t.is_zero() || t.as_secs() > 60 => d.error(
                    format!("{field}.timeout"),
                    "must be more than 0s and at most 60s",
                ),
                Ok(_) => {}
                Err(e) => d.error(format!("{field}.timeout"), e),
            }
        }
    }
    if spec.selector.plan_names.is_empty() && spec.selector.plan_selector.is_none() {
        d.warn(
            "spec.selector",
            "selects no plan: name plans in planNames or set planSelector ({} selects every plan of the namespace)",
        );
    }
    for (i, name) in spec.selector.plan_names.iter().enumerate() {
        if name.is_empty() {
            d.error(format!("spec.selector.planNames[{i}]"), "must not be empty");
        }
    }
    if let Some(selector) = &spec.selector.plan_selector {
        selector.validate("spec.selector.planSelector", &mut d);
    }
    if let Some(quiet) = &spec.quiet_hours {
        if quiet.timezone.parse::<chrono_tz::Tz>().is_err() {
            d.error(
                "spec.quietHours.timezone",
                format!(
                    "unknown time zone {:?}: use an IANA name such as Europe/Berlin",
                    quiet.timezone
                ),
            );
        }
        if quiet.windows.is_empty() {
            d.error("spec.quietHours.windows", "at least one window is required");
        }
        d.extend(check_windows(&quiet.windows, "spec.quietHours.windows"));
    }
    d
}
