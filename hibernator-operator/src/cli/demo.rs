//! `hibernator demo`: the README's first command. Validates the shipped
//! example plan, previews its schedule and prints its execution waves, all
//! from the copy embedded in the binary (so it works from any directory).

use std::process::ExitCode;

use chrono::{DateTime, Utc};
use hibernator_core::Operation;
use hibernator_core::planner::ExecutionPlan;
use hibernator_core::schedule::CompiledSchedule;

use super::plan::{PlanFormat, write_plan};
use super::validate::diagnose;

/// The example plan, embedded at build time.
pub const DEMO_PLAN: &str = include_str!("../../../examples/plans/demo.yaml");

/// Arguments of `demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Instant to preview from, RFC 3339 (default: now).
    #[arg(long, value_parser = super::schedule::parse_instant)]
    at: Option<DateTime<Utc>>,
}

pub(super) fn run(args: &Args, out: &mut dyn std::io::Write) -> anyhow::Result<ExitCode> {
    writeln!(out, "== examples/plans/demo.yaml (embedded)")?;
    let (docs, diagnostics) = diagnose(DEMO_PLAN);
    for e in &diagnostics.errors {
        writeln!(out, "error: {e}")?;
    }
    for w in &diagnostics.warnings {
        writeln!(out, "warning: {w}")?;
    }
    let Some(docs) = docs.filter(|_| diagnostics.is_valid()) else {
        writeln!(out, "the embedded demo plan is invalid")?;
        return Ok(ExitCode::FAILURE);
    };
    writeln!(
        out,
        "valid: {} targets, {} schedule exception(s)\n",
        docs.plan.spec.targets.len(),
        docs.exceptions.len()
    )?;
    let schedule = CompiledSchedule::compile(&docs.plan.spec.schedule, &docs.exceptions)?;
    let at = args.at.unwrap_or_else(Utc::now);
    let tz = schedule.timezone();
    writeln!(
        out,
        "== schedule ({}), now {}: {}",
        tz.name(),
        at.with_timezone(&tz).format("%a %Y-%m-%d %H:%M %Z"),
        schedule.state_at(at)
    )?;
    for t in schedule.transitions(at).take(6) {
        writeln!(
            out,
            "  {}  -> {}",
            t.at.with_timezone(&tz).format("%a %Y-%m-%d %H:%M %Z"),
            t.to
        )?;
    }
    for operation in [Operation::Shutdown, Operation::Wakeup] {
        writeln!(out)?;
        let plan = ExecutionPlan::build(&docs.plan.spec, operation)?;
        write_plan(&plan, PlanFormat::Table, out)?;
    }
    Ok(ExitCode::SUCCESS)
}
