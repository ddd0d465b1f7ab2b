//! `hibernator validate FILE [--output json]`.

use std::process::ExitCode;

use hibernator_core::diag::Diagnostics;
use hibernator_core::input::PlanDocuments;
use hibernator_core::params::ParameterCatalog;
use hibernator_core::validation::validate_documents;
use hibernator_reconcile::notify::validate::check_notification;
use serde_json::json;

use super::{FileArg, Format, output};

/// Arguments of `validate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    file: FileArg,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = Format::Table)]
    output: Format,
}

/// Validates a file's text against the executor types of `catalog` (the
/// binary's executor set).
pub fn diagnose(text: &str, catalog: &ParameterCatalog) -> (Option<PlanDocuments>, Diagnostics) {
    match PlanDocuments::from_yaml(text) {
        Ok(docs) => {
            let mut diagnostics = validate_documents(&docs, catalog);
            check_notifications(&docs, &mut diagnostics);
            (Some(docs), diagnostics)
        }
        Err(error) => {
            let mut diagnostics = Diagnostics::new();
            diagnostics.errors.push(error.to_diagnostic());
            (None, diagnostics)
        }
    }
}

/// Checks the file's HibernateNotifications (sinks, templates, quiet hours:
/// what admission checks) and warns about one that does not route the file's
/// plan.
fn check_notifications(docs: &PlanDocuments, into: &mut Diagnostics) {
    let plan = &docs.plan.metadata;
    let plan_name = plan.name.as_deref().unwrap_or_default();
    let labels = plan.labels.clone().unwrap_or_default();
    for n in &docs.notifications {
        let prefix = format!(
            "HibernateNotification/{}: ",
            n.metadata.name.as_deref().unwrap_or("<unnamed>")
        );
        let found = check_notification(&n.spec);
        for mut e in found.errors {
            e.field = format!("{prefix}{}", e.field);
            into.errors.push(e);
        }
        for mut w in found.warnings {
            w.field = format!("{prefix}{}", w.field);
            into.warnings.push(w);
        }
        let same_namespace = n.metadata.namespace.is_none()
            || plan.namespace.is_none()
            || n.metadata.namespace == plan.namespace;
        if !same_namespace || !n.spec.selector.selects(plan_name, &labels) {
            into.warn(
                format!("{prefix}spec.selector"),
                format!(
                    "does not route plan {plan_name:?} (a notification selects plans of its own namespace by planNames or planSelector)"
                ),
            );
        }
    }
}

pub(crate) fn run(
    args: &Args,
    catalog: &ParameterCatalog,
    out: &mut dyn std::io::Write,
) -> anyhow::Result<ExitCode> {
    let path = &args.file.file;
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let (docs, diagnostics) = diagnose(&text, catalog);
    match args.output {
        Format::Json => output::write_json(
            out,
            &json!({
                "valid": diagnostics.is_valid(),
                "errors": diagnostics.errors,
                "warnings": diagnostics.warnings,
            }),
        )?,
        Format::Table => write_text(out, path, docs.as_ref(), &diagnostics)?,
    }
    Ok(if diagnostics.is_valid() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn write_text(
    out: &mut dyn std::io::Write,
    path: &std::path::Path,
    docs: Option<&PlanDocuments>,
    diagnostics: &Diagnostics,
) -> anyhow::Result<()> {
    for e in &diagnostics.errors {
        writeln!(out, "error: {e}")?;
    }
    for w in &diagnostics.warnings {
        writeln!(out, "warning: {w}")?;
    }
    let name = docs
        .and_then(|d| d.plan.metadata.name.clone())
        .unwrap_or_else(|| path.display().to_string());
    if diagnostics.is_valid() {
        let targets = docs.map(|d| d.plan.spec.targets.len()).unwrap_or(0);
        let exceptions = docs.map(|d| d.exceptions.len()).unwrap_or(0);
        writeln!(
            out,
            "plan {name} is valid: {targets} target(s), {exceptions} exception(s), {} warning(s)",
            diagnostics.warnings.len()
        )?;
    } else {
        writeln!(
            out,
            "plan {name} is invalid: {} error(s), {} warning(s)",
            diagnostics.errors.len(),
            diagnostics.warnings.len()
        )?;
    }
    Ok(())
}
