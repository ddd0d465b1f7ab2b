//! The demo's output: the same validation, table style and plan rendering
//! as the `hibernator` CLI's `validate` and `plan` commands.

use chrono::{DateTime, Utc};
use hibernator_core::diag::Diagnostics;
use hibernator_core::input::PlanDocuments;
use hibernator_core::params::ParameterCatalog;
use hibernator_core::planner::ExecutionPlan;
use hibernator_core::validation::validate_documents;

/// Parses a plan and validates it against `catalog`.
pub fn diagnose(text: &str, catalog: &ParameterCatalog) -> (Option<PlanDocuments>, Diagnostics) {
    match PlanDocuments::from_yaml(text) {
        Ok(docs) => {
            let diagnostics = validate_documents(&docs, catalog);
            (Some(docs), diagnostics)
        }
        Err(error) => {
            let mut diagnostics = Diagnostics::new();
            diagnostics.errors.push(error.to_diagnostic());
            (None, diagnostics)
        }
    }
}

/// Parses an RFC 3339 instant.
pub fn parse_instant(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            format!("{text:?} is not an RFC 3339 instant such as 2026-11-23T20:00:00+01:00: {e}")
        })
}

/// A table in the CLI's style.
pub fn table(header: &[&str]) -> comfy_table::Table {
    let mut table = comfy_table::Table::new();
    table
        .load_style(comfy_table::presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(comfy_table::ContentArrangement::Dynamic)
        .set_header(header.to_vec());
    table
}

/// Writes a plan's waves as `hibernator plan` does.
pub fn write_plan(plan: &ExecutionPlan, out: &mut dyn std::io::Write) -> anyhow::Result<()> {
    let waves = plan.waves();
    writeln!(
        out,
        "{} plan, strategy {}: {} target(s) in {} wave(s) (one time unit per target)",
        plan.operation(),
        plan.strategy().as_str(),
        plan.len(),
        waves.len()
    )?;
    let mut table = table(&["Wave", "Targets started together"]);
    for (i, wave) in waves.iter().enumerate() {
        table.add_row(vec![(i + 1).to_string(), wave.join(", ")]);
    }
    writeln!(out, "{table}")?;
    Ok(())
}
