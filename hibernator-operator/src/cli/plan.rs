//! `hibernator plan FILE [--operation shutdown|wakeup] [--output json|table|dot]`.

use std::process::ExitCode;

use anyhow::Context;
use clap::ValueEnum;
use hibernator_core::planner::ExecutionPlan;
use serde_json::json;

use super::{FileArg, OperationArg, output};

/// Output formats of `plan`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    /// Waves as a table.
    Table,
    /// `{"operation", "strategy", "waves"}`.
    Json,
    /// A Graphviz graph.
    Dot,
}

/// Arguments of `plan`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    file: FileArg,
    /// Operation to plan.
    #[arg(long, value_enum, default_value_t = OperationArg::Shutdown)]
    operation: OperationArg,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = PlanFormat::Table)]
    output: PlanFormat,
}

pub(crate) fn run(args: &Args, out: &mut dyn std::io::Write) -> anyhow::Result<ExitCode> {
    let docs = output::read_plan(&args.file.file)?;
    let plan = ExecutionPlan::build(&docs.plan.spec, args.operation.into())
        .with_context(|| format!("{}", args.file.file.display()))?;
    write_plan(&plan, args.output, out)?;
    Ok(ExitCode::SUCCESS)
}

/// Writes a plan's waves in the given format.
pub fn write_plan(
    plan: &ExecutionPlan,
    format: PlanFormat,
    out: &mut dyn std::io::Write,
) -> anyhow::Result<()> {
    let waves = plan.waves();
    match format {
        PlanFormat::Json => output::write_json(
            out,
            &json!({
                "operation": plan.operation(),
                "strategy": plan.strategy().as_str(),
                "waves": waves,
            }),
        )?,
        PlanFormat::Dot => write!(out, "{}", plan.to_dot())?,
        PlanFormat::Table => {
            writeln!(
                out,
                "{} plan, strategy {}: {} target(s) in {} wave(s) (one time unit per target)",
                plan.operation(),
                plan.strategy().as_str(),
                plan.len(),
                waves.len()
            )?;
            let mut table = output::table(&["Wave", "Targets started together"]);
            for (i, wave) in waves.iter().enumerate() {
                table.add_row(vec![(i + 1).to_string(), wave.join(", ")]);
            }
            writeln!(out, "{table}")?;
        }
    }
    Ok(())
}
