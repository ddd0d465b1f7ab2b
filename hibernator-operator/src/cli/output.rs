//! Shared output helpers.

use anyhow::Context;
use hibernator_core::input::PlanDocuments;

/// Reads a plan file, with the path in the error.
pub fn read_plan(path: &std::path::Path) -> anyhow::Result<PlanDocuments> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    PlanDocuments::from_yaml(&text).with_context(|| format!("{}", path.display()))
}

/// Writes pretty JSON followed by a newline.
pub fn write_json(out: &mut dyn std::io::Write, value: &serde_json::Value) -> anyhow::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    writeln!(out)?;
    Ok(())
}

/// A table with the project's style.
pub fn table(header: &[&str]) -> comfy_table::Table {
    let mut table = comfy_table::Table::new();
    table
        .load_style(comfy_table::presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(comfy_table::ContentArrangement::Dynamic)
        .set_header(header.to_vec());
    table
}
